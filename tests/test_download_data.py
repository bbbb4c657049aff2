import gzip
import hashlib
import os
import struct
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from conftest import ROOT

import download_data as dd
from runtime import dataset_files
from runtime.dataset_files import FILES, DataFileError, verify_file

# Tiny shapes keep the generated mirror to a few hundred bytes.
SHAPES = {
    'train-images-idx3-ubyte': (6, 4, 4),
    'train-labels-idx1-ubyte': (6,),
    't10k-images-idx3-ubyte': (3, 4, 4),
    't10k-labels-idx1-ubyte': (3,),
}
OLD = 1_000_000_000  # an mtime far in the past, to see whether files change


def idx_bytes(shape, seed):
    data = np.random.default_rng(seed).integers(0, 256, shape, dtype=np.uint8)
    header = struct.pack('>I', 0x0800 | len(shape))
    header += struct.pack('>' + 'I' * len(shape), *shape)
    return header + data.tobytes()


@pytest.fixture
def fake(tmp_path, monkeypatch):
    mirror = tmp_path / 'mirror'
    mirror.mkdir()
    contents, table = {}, {}
    for i, name in enumerate(FILES):
        raw = idx_bytes(SHAPES[name[:-3]], i)
        packed = gzip.compress(raw, mtime=0)
        (mirror / name).write_bytes(packed)
        contents[name] = raw
        table[name[:-3]] = {
            'shape': SHAPES[name[:-3]], 'size': len(raw),
            'sha256': hashlib.sha256(raw).hexdigest(),
            'gz_md5': hashlib.md5(packed).hexdigest()}
    monkeypatch.setitem(dataset_files.DATASETS, 'test', table)
    return SimpleNamespace(mirror=mirror, url=mirror.as_uri(), table=table,
                           contents=contents, out=tmp_path / 'out')


def leftovers(folder):
    return [p.name for p in Path(folder).iterdir() if p.name.endswith('.part')]


def run_main(fake, *extra, mirror=None):
    return dd.main(['--dataset', 'test', '--save_to', str(fake.out),
                    '--mirror', mirror or fake.url, *extra])


def one_line_error(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith('error: '), err
    return err[0]


@pytest.mark.parametrize('as_path', [False, True])
def test_download_from_local_mirror(fake, as_path):
    mirror = str(fake.mirror) if as_path else fake.url
    paths = dd.download('test', fake.out, mirror, quiet=True)
    assert [Path(p).name for p in paths] == list(FILES)
    for p in paths:
        assert gzip.decompress(Path(p).read_bytes()) == \
            fake.contents[Path(p).name]
        verify_file(p, 'test', Path(p).name)
    assert leftovers(fake.out) == []


def test_checksum_mismatch_is_refused(fake, capsys):
    raw = bytearray(fake.contents['train-labels-idx1-ubyte.gz'])
    raw[-1] ^= 0xFF  # same size and header, different content
    (fake.mirror / 'train-labels-idx1-ubyte.gz').write_bytes(
        gzip.compress(bytes(raw)))
    assert run_main(fake) != 0
    line = one_line_error(capsys)
    assert 'train-labels-idx1-ubyte.gz' in line and 'checksum mismatch' in line
    assert '--mirror' in line
    assert not (fake.out / 'train-labels-idx1-ubyte.gz').exists()
    assert leftovers(fake.out) == []


def test_valid_existing_files_are_skipped(fake, capsys):
    dd.download('test', fake.out, fake.url, quiet=True)
    for name in FILES:
        os.utime(fake.out / name, (OLD, OLD))
    assert run_main(fake) == 0
    assert capsys.readouterr().out.count('skipping') == 4
    assert all((fake.out / n).stat().st_mtime == OLD for n in FILES)


def test_force_downloads_again_and_replaces_corrupt_file(fake):
    dd.download('test', fake.out, fake.url, quiet=True)
    for name in FILES:
        os.utime(fake.out / name, (OLD, OLD))
    corrupt = fake.out / FILES[0]
    corrupt.write_bytes(b'not a gzip file')
    with pytest.raises(DataFileError, match='gzip'):
        verify_file(corrupt, 'test', FILES[0])

    assert run_main(fake, '--force') == 0
    for name in FILES:
        assert (fake.out / name).stat().st_mtime != OLD
        verify_file(fake.out / name, 'test', name)


def test_invalid_existing_file_is_replaced_without_force(fake):
    dd.download('test', fake.out, fake.url, quiet=True)
    (fake.out / FILES[3]).write_bytes(gzip.compress(b'junk'))
    dd.download('test', fake.out, fake.url, quiet=True)
    verify_file(fake.out / FILES[3], 'test', FILES[3])


def test_recompressed_mirror_verifies_by_content(fake):
    for name in FILES:
        packed = gzip.compress(fake.contents[name], compresslevel=1, mtime=42)
        assert hashlib.md5(packed).hexdigest() != \
            fake.table[name[:-3]]['gz_md5']
        (fake.mirror / name).write_bytes(packed)
    dd.download('test', fake.out, fake.url, quiet=True)
    for name in FILES:
        verify_file(fake.out / name, 'test', name)


def test_gz_md5_alone_accepts_only_the_original_gz(fake):
    # Fashion-MNIST has no content checksum, only the official .gz md5.
    for info in fake.table.values():
        info['sha256'] = None
    dd.download('test', fake.out, fake.url, quiet=True)
    name = FILES[1]
    (fake.out / name).write_bytes(
        gzip.compress(fake.contents[name], mtime=42))
    with pytest.raises(DataFileError, match='md5') as err:
        verify_file(fake.out / name, 'test', name)
    assert '\n' not in str(err.value) and '--force' in str(err.value)


def test_bad_idx_header_is_refused(fake, tmp_path):
    bad = bytearray(fake.contents[FILES[0]])
    bad[3] = 0x01  # claims one dimension instead of three
    path = tmp_path / FILES[0]
    path.write_bytes(gzip.compress(bytes(bad)))
    with pytest.raises(DataFileError, match='IDX header'):
        verify_file(path, 'test', FILES[0])


def test_truncated_content_is_refused(fake, tmp_path):
    path = tmp_path / FILES[0]
    path.write_bytes(gzip.compress(fake.contents[FILES[0]][:-5]))
    with pytest.raises(DataFileError, match='size'):
        verify_file(path, 'test', FILES[0])


@pytest.mark.parametrize('where', ['missing_folder', 'closed_port'])
def test_unreachable_mirror_gives_clear_error(fake, capsys, where):
    mirror = {'missing_folder': (fake.mirror / 'nope').as_uri(),
              # Port 9 (discard) is closed on a normal machine: refused fast.
              'closed_port': 'http://127.0.0.1:9/'}[where]
    assert run_main(fake, mirror=mirror) == 1
    line = one_line_error(capsys)
    assert 'could not get' in line and '--mirror' in line
    assert leftovers(fake.out) == []


def test_sources_are_tried_in_order(fake, monkeypatch):
    monkeypatch.setitem(dataset_files.SOURCES, 'test',
                        ((fake.mirror / 'nope').as_uri() + '/',
                         fake.url + '/'))
    dd.download('test', fake.out, quiet=True)
    for name in FILES:
        verify_file(fake.out / name, 'test', name)


def test_unknown_dataset(capsys):
    assert dd.main(['--dataset', 'cifar10']) == 1
    line = one_line_error(capsys)
    assert 'cifar10' in line and 'mnist' in line


def test_unwritable_folder(fake, capsys):
    blocker = fake.out.parent / 'a_file'
    blocker.write_text('')
    assert dd.main(['--dataset', 'test', '--mirror', fake.url,
                    '--save_to', str(blocker / 'sub')]) == 1
    assert '--save_to' in one_line_error(capsys)


@pytest.mark.slow
def test_real_mnist_verifies(tmp_path):
    real = (ROOT / '..' / 'shared' / 'data' / 'mnist').resolve()
    if not all((real / name).is_file() for name in FILES):
        pytest.skip(f'real MNIST not found at {real}')
    paths = dd.download('mnist', tmp_path, real.as_uri(), quiet=True)
    for path, name in zip(paths, FILES):
        verify_file(path, 'mnist', name)
