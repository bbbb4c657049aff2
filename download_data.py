"""Fetch and verify MNIST / Fashion-MNIST as the four gzipped IDX files.

    python download_data.py [--dataset mnist|fashion-mnist] [--save_to DIR]
                            [--mirror URL] [--force]

The dataset facts (names, shapes, checksums, sources) and `verify_file` are in
runtime/dataset_files.py, which utils.py also uses to refuse corrupt data before training.
"""
import http.client
import os
import sys
import tempfile
import urllib.parse
import urllib.request
from pathlib import Path

from tqdm import tqdm

from runtime.cli import command_parser
from runtime.errors import run_cli
from runtime.dataset_files import (CHUNK, FILES, SOURCES, DataFileError, dataset_table,
                                   problem_with, reason)

TIMEOUT = 60
MIRROR_FORMS = ('an http(s):// URL, a file:// URL or a folder holding the '
                'four .gz files')


def _sources(dataset, mirror):
    if mirror is None:
        return SOURCES[dataset]
    scheme = urllib.parse.urlsplit(mirror).scheme.lower()
    if scheme in ('http', 'https', 'file'):
        url = mirror
    elif '://' in mirror:
        raise DataFileError(f'unsupported mirror {mirror!r}; use '
                            + MIRROR_FORMS)
    else:
        url = Path(mirror).expanduser().resolve().as_uri()
    return (url if url.endswith('/') else url + '/',)


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


def _copy_url(url, path, name, quiet):
    # Some hosts reject urllib's default User-Agent with HTTP 403.
    request = urllib.request.Request(
        url, headers={'User-Agent': 'capsnet-download-data/1.0'})
    with urllib.request.urlopen(request, timeout=TIMEOUT) as resp, \
            open(path, 'wb') as out:
        total = resp.headers.get('Content-Length')
        # disable=None hides the bar when stderr is not a terminal, so logs
        # and error output are not cluttered with carriage-return frames.
        with tqdm(total=int(total) if total else None, desc=name, unit='B',
                  unit_scale=True, unit_divisor=1024, leave=False,
                  disable=True if quiet else None) as bar:
            for chunk in iter(lambda: resp.read(CHUNK), b''):
                out.write(chunk)
                bar.update(len(chunk))


def _fetch(name, dest, dataset, sources, quiet):
    folder = os.path.dirname(dest)
    # The temp file lives next to the target so os.replace stays atomic.
    try:
        fd, tmp = tempfile.mkstemp(prefix=f'.{name}.', suffix='.part',
                                   dir=folder)
        os.close(fd)
    except OSError as e:
        raise DataFileError(f'cannot write to {folder} ({reason(e)}); fix '
                            'its permissions or choose another --save_to')
    failures = []
    bad_content = False
    try:
        for base in sources:
            url = base + name
            try:
                _copy_url(url, tmp, name, quiet)
            except (OSError, ValueError, http.client.HTTPException) as e:
                failures.append(f'{url}: {reason(e)}')
                continue
            problem = problem_with(tmp, dataset, name)
            if problem:
                failures.append(f'{url}: {problem}')
                bad_content = True
                continue
            # mkstemp makes the file private; give it the usual mode.
            os.chmod(tmp, 0o666 & ~_umask())
            os.replace(tmp, dest)
            if not quiet:
                print(f'{name}: downloaded and verified from {base}')
            return
    finally:
        # Covers failures and Ctrl-C alike: never leave a partial file.
        if os.path.exists(tmp):
            os.remove(tmp)
    if bad_content:
        hint = 'the source serves a different or damaged file; pass --mirror'
    else:
        hint = 'check your network connection, or pass --mirror'
    raise DataFileError(f'could not get a valid {name} ('
                        + '; '.join(failures) + f'); {hint} with '
                        + MIRROR_FORMS)


def download(dataset='mnist', save_to=None, mirror=None, force=False,
             quiet=False):
    """Make sure the four verified .gz files are in `save_to`; return paths."""
    dataset_table(dataset)
    save_to = str(save_to or os.path.join('data', dataset))
    sources = _sources(dataset, mirror)
    try:
        os.makedirs(save_to, exist_ok=True)
    except OSError as e:
        raise DataFileError(f'cannot create folder {save_to} ({reason(e)});'
                            ' fix its permissions or choose another --save_to')

    paths = []
    for name in FILES:
        dest = os.path.join(save_to, name)
        paths.append(dest)
        if not force and os.path.exists(dest):
            problem = problem_with(dest, dataset, name)
            if problem is None:
                if not quiet:
                    print(f'{name}: already present and valid, skipping '
                          '(use --force to re-download)')
                continue
            if not quiet:
                print(f'{name}: existing file is invalid ({problem}); '
                      'downloading again')
        _fetch(name, dest, dataset, sources, quiet)
    if not quiet:
        print(f'{dataset} is ready in {save_to}')
    return paths


def main(argv=None):
    parser = command_parser('Download and verify MNIST or Fashion-MNIST.',
                            command='python download_data.py')
    parser.add_argument('--dataset', default='mnist',
                        help='mnist or fashion-mnist (default: mnist)')
    parser.add_argument('--save_to', default=None,
                        help='target folder (default: data/<dataset>)')
    parser.add_argument('--mirror', default=None,
                        help=MIRROR_FORMS + '; replaces the default sources')
    parser.add_argument('--force', action='store_true',
                        help='download again even if valid files exist')

    def body():
        args = parser.parse_args(argv)
        try:
            download(args.dataset, args.save_to, args.mirror, args.force)
        except DataFileError as e:
            print(f'error: {e}'.replace('\n', ' '), file=sys.stderr)
            return 1
        except KeyboardInterrupt:
            print('error: interrupted; partial files were removed',
                  file=sys.stderr)
            return 130
        return 0
    # run_cli: a bad flag is one line (exit 2), and so is a --save_to
    # under a file, on a read-only disk or a full one (exit 1).
    return run_cli(body)

if __name__ == '__main__':
    sys.exit(main())
