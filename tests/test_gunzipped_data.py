"""Folders of decompressed IDX files (what `gunzip data/mnist/*.gz` leaves), or a mix of .gz and
plain files, train and test like the .gz originals, verified by the sha256 of their content."""
import gzip
import shutil

import numpy as np
import pytest
from conftest import REAL_MNIST, checksum_table, run_main, tiny_run_args, write_dataset

import utils
from runtime import dataset_files

TRAIN_IMAGES = 'train-images-idx3-ubyte'


def gunzip(folder, names):
    """Replaces folder/NAME.gz by the decompressed folder/NAME, as gunzip does."""
    for name in names:
        packed = folder / (name + '.gz')
        with gzip.open(packed, 'rb') as src, open(folder / name, 'wb') as dst:
            shutil.copyfileobj(src, dst)
        packed.unlink()


def stems():
    return [dataset_files.stem(name) for name in dataset_files.FILES]


@pytest.fixture
def verified_mnist(tmp_path, monkeypatch):
    """Generated data registered as 'mnist' by its content checksums."""
    data = write_dataset(tmp_path / 'data')
    monkeypatch.setitem(dataset_files.DATASETS, 'mnist', checksum_table(data))
    return data


def verifying(args):
    return [a for a in args if a != '--verify_data=False']


@pytest.mark.slow
def test_gunzipped_folder_trains_and_tests_with_verification(verified_mnist, tmp_path, capsys):
    expected = utils.load_split(str(verified_mnist), 'test', verify=True)
    gunzip(verified_mnist, stems())
    assert not list(verified_mnist.glob('*.gz'))
    args = verifying(tiny_run_args(verified_mnist, tmp_path, '--max_steps', '2'))
    assert run_main(args) == 0, capsys.readouterr().err
    assert run_main(args + ['--is_training=False']) == 0, capsys.readouterr().err
    assert 'test accuracy' in capsys.readouterr().out
    images, labels = utils.load_split(str(verified_mnist), 'test', verify=True)
    np.testing.assert_array_equal(images, expected[0])
    np.testing.assert_array_equal(labels, expected[1])


def test_mixed_folder_verifies_both_kinds(verified_mnist):
    gunzip(verified_mnist, [TRAIN_IMAGES, 't10k-labels-idx1-ubyte'])
    (train_x, _), (val_x, _) = utils.load_train_val(str(verified_mnist), 40, verify=True)
    assert len(train_x) == 200 and len(val_x) == 40
    test_x, test_y = utils.load_split(str(verified_mnist), 'test', verify=True)
    assert test_x.shape == (60, 28, 28) and test_y.shape == (60,)


def test_changed_decompressed_file_is_refused(verified_mnist, tmp_path, capsys):
    gunzip(verified_mnist, [TRAIN_IMAGES])
    raw = bytearray((verified_mnist / TRAIN_IMAGES).read_bytes())
    raw[-1] ^= 0xFF  # same size and header, different content
    (verified_mnist / TRAIN_IMAGES).write_bytes(bytes(raw))
    code = run_main(verifying(tiny_run_args(verified_mnist, tmp_path)))
    err = capsys.readouterr().err
    assert code == 1 and err.count('\n') == 1, err
    assert TRAIN_IMAGES in err and 'checksum mismatch: content sha256' in err
    assert 'python download_data.py' in err and '--force' in err
    assert 'not a readable gzip file' not in err


def test_decompressed_fashion_file_says_it_cannot_be_verified(tmp_path, monkeypatch, capsys):
    data = write_dataset(tmp_path / 'data')
    # Like the real Fashion-MNIST table: only md5 sums of the .gz files are known.
    table = {stem: dataset_files.idx_entry(info['shape'], gz_md5='0' * 32)
             for stem, info in checksum_table(data).items()}
    monkeypatch.setitem(dataset_files.DATASETS, 'fashion-mnist', table)
    gunzip(data, [TRAIN_IMAGES])
    code = run_main(verifying(tiny_run_args(data, tmp_path, '--dataset', 'fashion-mnist')))
    err = capsys.readouterr().err
    assert code == 1 and err.startswith('error: ') and err.count('\n') == 1, err
    assert TRAIN_IMAGES in err and 'cannot be verified' in err
    assert '--verify_data=False' in err and 'keep the .gz file' in err
    assert err.count('--verify_data=False') == 1
    assert not (tmp_path / 'logdir').exists()
    # The advice works: without verification the decompressed file is read.
    (train_x, _), _ = utils.load_train_val(str(data), 40, 'fashion-mnist', verify=False)
    assert train_x.shape == (200, 28, 28)


@pytest.mark.slow
def test_real_mnist_gunzipped_verifies_and_loads(tmp_path):
    if not all((REAL_MNIST / name).is_file() for name in dataset_files.FILES):
        pytest.skip('real MNIST not found at %s' % REAL_MNIST)
    for name in dataset_files.FILES:
        shutil.copy(REAL_MNIST / name, tmp_path / name)
    gunzip(tmp_path, stems())
    for name in stems():
        dataset_files.verify_file(tmp_path / name, 'mnist', name)
    (train_x, train_y), (val_x, _) = utils.load_train_val(str(tmp_path), 5000, 'mnist', verify=True)
    test_x, test_y = utils.load_split(str(tmp_path), 'test', 'mnist', verify=True)
    assert train_x.shape == (55000, 28, 28) and val_x.shape == (5000, 28, 28)
    assert test_x.shape == (10000, 28, 28) and sorted(set(test_y)) == list(range(10))
    # One changed label is caught by the content checksum.
    raw = bytearray((tmp_path / 't10k-labels-idx1-ubyte').read_bytes())
    raw[-1] = (raw[-1] + 1) % 10
    (tmp_path / 't10k-labels-idx1-ubyte').write_bytes(bytes(raw))
    with pytest.raises(utils.DataError, match='checksum mismatch'):
        utils.load_split(str(tmp_path), 'test', 'mnist', verify=True)
