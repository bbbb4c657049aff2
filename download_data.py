"""Fetch and verify MNIST / Fashion-MNIST as the four gzipped IDX files.

    python download_data.py [--dataset mnist|fashion-mnist] [--save_to DIR]
                            [--mirror URL] [--force]

Other modules call `verify_file` to refuse corrupt data before training.
"""
import argparse
import gzip
import hashlib
import http.client
import os
import struct
import sys
import tempfile
import urllib.error
import urllib.parse
import urllib.request
import zlib
from pathlib import Path

from tqdm import tqdm

FILES = (
    'train-images-idx3-ubyte.gz',
    'train-labels-idx1-ubyte.gz',
    't10k-images-idx3-ubyte.gz',
    't10k-labels-idx1-ubyte.gz',
)


def _entry(shape, sha256=None, gz_md5=None):
    # An IDX file of unsigned bytes is a 4-byte magic, one 4-byte count per
    # dimension, then the data, so the shape fixes both header and size.
    n = 1
    for dim in shape:
        n *= dim
    return {'shape': shape, 'size': 4 + 4 * len(shape) + n,
            'sha256': sha256, 'gz_md5': gz_md5}


# A file is accepted when EITHER checksum matches: 'sha256' covers the
# decompressed IDX bytes, so mirrors that re-gzip the data still verify;
# 'gz_md5' is what the dataset authors published for their own .gz files.
DATASETS = {
    'mnist': {
        # sha256 of the decompressed official files (computed from the
        # originals); gz_md5 are the md5 sums of the original .gz files on
        # yann.lecun.com, as published and used by torchvision and others.
        'train-images-idx3-ubyte': _entry(
            (60000, 28, 28),
            'ba891046e6505d7aadcbbe25680a0738ad16aec93bde7f9b65e87a2fc25776db',
            'f68b3c2dcbeaaa9fbdd348bbdeb94873'),
        'train-labels-idx1-ubyte': _entry(
            (60000,),
            '65a50cbbf4e906d70832878ad85ccda5333a97f0f4c3dd2ef09a8a9eef7101c5',
            'd53e105ee54ea40749a09fcbcd1e9432'),
        't10k-images-idx3-ubyte': _entry(
            (10000, 28, 28),
            '0fa7898d509279e482958e8ce81c8e77db3f2f8254e26661ceb7762c4d494ce7',
            '9fb629c4189551a2d022fa330f9573f3'),
        't10k-labels-idx1-ubyte': _entry(
            (10000,),
            'ff7bcfd416de33731a308c3f266cc351222c34898ecbeaf847f06e48f7ec33f2',
            'ec29112dd5afa0611ce80d1b7f02629c'),
    },
    'fashion-mnist': {
        # gz_md5 from the zalandoresearch/fashion-mnist README. No trustworthy
        # published checksum of the decompressed files was found, so a
        # re-compressed Fashion-MNIST mirror cannot be verified and is refused.
        'train-images-idx3-ubyte': _entry(
            (60000, 28, 28), gz_md5='8d4fb7e6c68d591d4c3dfef9ec88bf0d'),
        'train-labels-idx1-ubyte': _entry(
            (60000,), gz_md5='25c81989df183df01b3e8a0aad5dffbe'),
        't10k-images-idx3-ubyte': _entry(
            (10000, 28, 28), gz_md5='bef4ecab320f06d8554ea6380940ec79'),
        't10k-labels-idx1-ubyte': _entry(
            (10000,), gz_md5='bb300cfdad3c16e7a12a480ee83cd310'),
    },
}

# Tried in order; the original MNIST site often refuses scripted downloads,
# hence the widely used copies after it.
SOURCES = {
    'mnist': (
        'http://yann.lecun.com/exdb/mnist/',
        'https://ossci-datasets.s3.amazonaws.com/mnist/',
        'https://storage.googleapis.com/cvdf-datasets/mnist/',
    ),
    'fashion-mnist': (
        'http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/',
        'https://raw.githubusercontent.com/zalandoresearch/fashion-mnist/'
        'master/data/fashion/',
    ),
}

TIMEOUT = 60
CHUNK = 1 << 20
MIRROR_FORMS = ('an http(s):// URL, a file:// URL or a folder holding the '
                'four .gz files')


class DownloadError(Exception):
    """A problem the user can fix; the message is one line saying how."""


def _stem(filename):
    name = os.path.basename(str(filename))
    return name[:-3] if name.endswith('.gz') else name


def _table(dataset):
    if dataset not in DATASETS:
        raise DownloadError(f"unknown dataset {dataset!r}; choose one of: "
                            f"{', '.join(sorted(DATASETS))}")
    return DATASETS[dataset]


def _reason(exc):
    if isinstance(exc, urllib.error.HTTPError):
        return f'HTTP {exc.code} {exc.reason}'
    if isinstance(exc, urllib.error.URLError):
        exc = exc.reason
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc) or type(exc).__name__


def _problem(path, dataset, filename):
    """Return why `path` is not the expected file, or None if it is."""
    info = _table(dataset).get(_stem(filename))
    if info is None:
        raise DownloadError(f'{filename!r} is not a file of the {dataset} '
                            f'dataset; expected one of: {", ".join(FILES)}')
    try:
        gz_md5 = hashlib.md5()
        with open(path, 'rb') as f:
            for chunk in iter(lambda: f.read(CHUNK), b''):
                gz_md5.update(chunk)

        shape = info['shape']
        content = hashlib.sha256()
        size = 0
        with gzip.open(path, 'rb') as f:
            header = f.read(4 + 4 * len(shape))
            # Magic is 0x08 (unsigned byte) in byte 3, dimension count in 4.
            expected = struct.pack('>I', 0x0800 | len(shape)) + struct.pack(
                '>' + 'I' * len(shape), *shape)
            if header != expected:
                return (f'IDX header {header.hex()} is not the expected '
                        f'{expected.hex()} (wrong or damaged file)')
            content.update(header)
            size = len(header)
            for chunk in iter(lambda: f.read(CHUNK), b''):
                content.update(chunk)
                size += len(chunk)
                if size > info['size']:
                    break  # no need to inflate the rest of a wrong file
    except FileNotFoundError:
        return 'file not found'
    except (OSError, EOFError, zlib.error) as e:
        return f'not a readable gzip file ({_reason(e)})'

    if size != info['size']:
        found = 'more than' if size > info['size'] else f'only {size}'
        return (f'decompressed size is {found} bytes, expected '
                f'{info["size"]} (truncated or wrong file)')
    if info['gz_md5'] and gz_md5.hexdigest() == info['gz_md5']:
        return None
    if info['sha256'] and content.hexdigest() == info['sha256']:
        return None
    if info['sha256']:
        return (f'checksum mismatch: content sha256 {content.hexdigest()}, '
                f'expected {info["sha256"]}')
    return (f'checksum mismatch: .gz md5 {gz_md5.hexdigest()}, expected '
            f'{info["gz_md5"]} (only the official .gz files can be verified)')


def verify_file(path, dataset, filename):
    """Raise DownloadError unless `path` holds the expected `filename`."""
    problem = _problem(path, dataset, filename)
    if problem:
        raise DownloadError(
            f'{path}: {problem}; re-download it with: python download_data.py '
            f'--dataset {dataset} --save_to {os.path.dirname(str(path)) or "."}'
            f' --force')


def _sources(dataset, mirror):
    if mirror is None:
        return SOURCES[dataset]
    scheme = urllib.parse.urlsplit(mirror).scheme.lower()
    if scheme in ('http', 'https', 'file'):
        url = mirror
    elif '://' in mirror:
        raise DownloadError(f'unsupported mirror {mirror!r}; use '
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
        raise DownloadError(f'cannot write to {folder} ({_reason(e)}); fix '
                            'its permissions or choose another --save_to')
    failures = []
    bad_content = False
    try:
        for base in sources:
            url = base + name
            try:
                _copy_url(url, tmp, name, quiet)
            except (OSError, ValueError, http.client.HTTPException) as e:
                failures.append(f'{url}: {_reason(e)}')
                continue
            problem = _problem(tmp, dataset, name)
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
    raise DownloadError(f'could not get a valid {name} ('
                        + '; '.join(failures) + f'); {hint} with '
                        + MIRROR_FORMS)


def download(dataset='mnist', save_to=None, mirror=None, force=False,
             quiet=False):
    """Make sure the four verified .gz files are in `save_to`; return paths."""
    _table(dataset)
    save_to = str(save_to or os.path.join('data', dataset))
    sources = _sources(dataset, mirror)
    try:
        os.makedirs(save_to, exist_ok=True)
    except OSError as e:
        raise DownloadError(f'cannot create folder {save_to} ({_reason(e)});'
                            ' fix its permissions or choose another --save_to')

    paths = []
    for name in FILES:
        dest = os.path.join(save_to, name)
        paths.append(dest)
        if not force and os.path.exists(dest):
            problem = _problem(dest, dataset, name)
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
    parser = argparse.ArgumentParser(
        description='Download and verify MNIST or Fashion-MNIST.')
    parser.add_argument('--dataset', default='mnist',
                        help='mnist or fashion-mnist (default: mnist)')
    parser.add_argument('--save_to', default=None,
                        help='target folder (default: data/<dataset>)')
    parser.add_argument('--mirror', default=None,
                        help=MIRROR_FORMS + '; replaces the default sources')
    parser.add_argument('--force', action='store_true',
                        help='download again even if valid files exist')
    args = parser.parse_args(argv)
    try:
        download(args.dataset, args.save_to, args.mirror, args.force)
    except DownloadError as e:
        print(f'error: {e}'.replace('\n', ' '), file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print('error: interrupted; partial files were removed',
              file=sys.stderr)
        return 130
    return 0


if __name__ == '__main__':
    sys.exit(main())
