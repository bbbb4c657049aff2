"""Broken data files are refused before training starts, in one line that names the file and the fix."""
import hashlib

import numpy as np
import pytest
from conftest import checksum_table, make_digits, run_main, tiny_run_args, write_dataset, write_idx

import utils
from runtime import dataset_files

TRAIN_IMAGES = 'train-images-idx3-ubyte.gz'
TRAIN_LABELS = 'train-labels-idx1-ubyte.gz'


def drop_file(folder):
    (folder / TRAIN_LABELS).unlink()
    return TRAIN_LABELS, 'missing data file train-labels-idx1-ubyte.gz in'


def truncate_gzip(folder):
    raw = (folder / TRAIN_IMAGES).read_bytes()
    (folder / TRAIN_IMAGES).write_bytes(raw[:len(raw) // 2])
    return TRAIN_IMAGES, 'truncated or corrupt'


def wrong_magic(folder):
    # An images file where labels belong: 3 dimensions (magic 0x0803) instead of 1 (0x0801).
    write_idx(folder / TRAIN_LABELS, np.zeros((240, 28, 28)))
    return TRAIN_LABELS, 'has a wrong magic number'


def count_mismatch(folder):
    _, labels = make_digits(239, 0)
    write_idx(folder / TRAIN_LABELS, labels)
    return TRAIN_LABELS, '240 images but'


def label_out_of_range(folder):
    _, labels = make_digits(240, 0)
    labels[17] = 10
    write_idx(folder / TRAIN_LABELS, labels)
    return TRAIN_LABELS, 'label 10 outside 0-9'


def wrong_image_size(folder):
    write_idx(folder / TRAIN_IMAGES, np.zeros((240, 32, 32)))
    return TRAIN_IMAGES, '32x32 images'


@pytest.mark.parametrize('damage', [drop_file, truncate_gzip, wrong_magic, count_mismatch,
                                    label_out_of_range, wrong_image_size])
def test_broken_data_is_refused_before_training(damage, tmp_path, capsys):
    data = write_dataset(tmp_path / 'data')
    bad_file, problem = damage(data)
    code = run_main(tiny_run_args(data, tmp_path))
    err = capsys.readouterr().err
    assert code != 0
    assert err.startswith('error: ') and err.count('\n') == 1, err  # one line, no traceback
    assert bad_file.replace('.gz', '') in err and problem in err
    assert 'python download_data.py' in err and '--save_to %s' % data in err  # the folder in use
    if damage is not drop_file:
        assert '--force' in err  # a file is there: it must be replaced, not skipped as present
    assert not (tmp_path / 'logdir').exists()  # refused before anything was written


def test_checksum_mismatch_is_refused(tmp_path, capsys, monkeypatch):
    data = write_dataset(tmp_path / 'data')
    table = checksum_table(data)
    monkeypatch.setitem(dataset_files.DATASETS, 'mnist', table)
    utils.load_train_val(data, 40, 'mnist', verify=True)  # the right checksums pass

    table['train-images-idx3-ubyte']['sha256'] = hashlib.sha256(b'other data').hexdigest()
    args = [a for a in tiny_run_args(data, tmp_path) if a != '--verify_data=False']
    code = run_main(args)
    err = capsys.readouterr().err
    assert code != 0 and err.count('\n') == 1, err
    assert TRAIN_IMAGES in err and 'checksum mismatch' in err
    assert 'python download_data.py' in err and '--force' in err
    assert not (tmp_path / 'logdir').exists()
