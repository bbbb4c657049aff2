"""Shared fixtures: tiny generated IDX data sets and the argv of a tiny training run."""
import gzip
import hashlib
import os
import struct
from pathlib import Path

import numpy as np
import pytest

from runtime.cpu_kernels import prefer_onednn

ROOT = Path(__file__).resolve().parent.parent
os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '2')
prefer_onednn()  # what every command does before TensorFlow loads: tests run the kernels users run


def project_python_files(root=ROOT):
    """The project's own .py files, sorted: not those of a virtualenv made inside the checkout (CI makes
    .venv-ci there, users make venv/ or .venv/: any folder holding pyvenv.cfg), hidden folders or caches."""
    found = []
    for folder, subfolders, names in os.walk(root):
        subfolders[:] = sorted(d for d in subfolders if not d.startswith('.') and d != '__pycache__'
                               and not (Path(folder) / d / 'pyvenv.cfg').exists())
        found += [Path(folder) / n for n in names if n.endswith('.py')]
    return sorted(found)



def real_mnist(root):
    """The real MNIST folder: the checkout's data/mnist (where download_data.py puts it) if it holds the
    files, else a shared copy beside the checkout; the first one when neither does (tests then skip)."""
    candidates = [root / 'data' / 'mnist', root.parent / 'shared' / 'data' / 'mnist']
    for folder in candidates:
        if any((folder / name).exists() for name in ('train-images-idx3-ubyte.gz', 'train-images-idx3-ubyte')):
            return folder
    return candidates[0]


REAL_MNIST = real_mnist(ROOT)


def run_main(argv):
    """What `python main.py ARGV` does, in this process: parse, train or test, one-line errors.

    main.py is a command and nothing imports it; these lines are its body.
    """
    import config
    from evaluation.evaluate import evaluate
    from runtime.errors import run_cli
    from runtime.training import train

    def body():
        cfg = config.parse(argv)
        train(cfg) if cfg.is_training else evaluate(cfg)
    return run_cli(body)


def read_png(path):
    """uint8 [H, W, C] pixels of a PNG, read back with matplotlib (which reads PNGs as floats in [0, 1])."""
    import matplotlib.image
    pixels = matplotlib.image.imread(str(path), format='png')
    return np.round(pixels * 255).astype(np.uint8)


def read_gray_png(path):
    """uint8 [H, W] of a PNG the project wrote from gray pixels: equal R, G, B and no transparency."""
    pixels = read_png(path)
    assert pixels.ndim == 3 and pixels.shape[2] in (3, 4), pixels.shape
    assert (pixels[..., 1] == pixels[..., 0]).all() and (pixels[..., 2] == pixels[..., 0]).all()
    assert pixels.shape[2] == 3 or (pixels[..., 3] == 255).all()
    return pixels[..., 0]


def write_idx(path, array, compress=True):
    """Writes a uint8 array as an IDX file (header: 0, 0, 0x08, ndim, then big-endian dims)."""
    array = np.asarray(array, dtype=np.uint8)
    raw = struct.pack('>BBBB', 0, 0, 8, array.ndim) + struct.pack('>' + 'I' * array.ndim, *array.shape)
    raw += array.tobytes()
    path = Path(path)
    if compress:
        path.write_bytes(gzip.compress(raw, mtime=0))
    else:
        path.write_bytes(raw)
    return path


def make_digits(num, seed):
    """Images a CapsNet can learn in a few steps: class k lights a 6x6 block at a class-specific place."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 10, num).astype(np.uint8)
    images = (rng.random((num, 28, 28)) * 40).astype(np.uint8)
    for n, k in enumerate(labels):
        r, c = 3 + 8 * (k // 4), 3 + 8 * (k % 4)
        images[n, r:r + 6, c:c + 6] = 255
    return images, labels


def write_dataset(folder, num_train=240, num_test=60, seed=0):
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    train_x, train_y = make_digits(num_train, seed)
    test_x, test_y = make_digits(num_test, seed + 1)
    write_idx(folder / 'train-images-idx3-ubyte.gz', train_x)
    write_idx(folder / 'train-labels-idx1-ubyte.gz', train_y)
    write_idx(folder / 't10k-images-idx3-ubyte.gz', test_x)
    write_idx(folder / 't10k-labels-idx1-ubyte.gz', test_y)
    return folder


def checksum_table(folder):
    """A dataset_files.DATASETS entry describing the four generated .gz files of `folder` by their
    content sha256, so that verification can run on generated data."""
    from runtime import dataset_files
    table = {}
    for name in dataset_files.FILES:
        content = gzip.decompress((Path(folder) / name).read_bytes())
        ndim = content[3]
        shape = tuple(int.from_bytes(content[4 + 4 * k:8 + 4 * k], 'big') for k in range(ndim))
        table[name[:-3]] = dataset_files.idx_entry(shape, hashlib.sha256(content).hexdigest())
    return table


@pytest.fixture(scope='session')
def tiny_mnist(tmp_path_factory):
    """A folder with the four IDX files: 240 training (200 train + 40 validation) and 60 test images."""
    return write_dataset(tmp_path_factory.mktemp('tiny_mnist'))


@pytest.fixture(scope='session')
def small_data(tmp_path_factory):
    """80 training images (40 train + 40 validation) and 20 test: with tiny_run_args' batch of 8, 5 steps
    an epoch and a checkpoint every 5 steps, which the checkpoint and kill tests count on."""
    return write_dataset(tmp_path_factory.mktemp('small'), num_train=80, num_test=20)


def tiny_run_args(data_dir, workdir, *extra):
    """argv of a training run small enough for a unit test (a few seconds on 2 cores)."""
    workdir = Path(workdir)
    return ['--data_dir', str(data_dir), '--verify_data=False', '--val_size', '40',
            '--batch_size', '8', '--eval_batch_size', '32', '--max_steps', '6',
            '--train_sum_freq', '2', '--val_sum_freq', '3', '--save_freq', '1', '--num_threads', '2',
            '--logdir', str(workdir / 'logdir'), '--results', str(workdir / 'results')] + list(extra)


def scripted_validation(monkeypatch, accuracy_at_step):
    """The real validation runs (CSV rows, summaries), but reports the accuracies of the script."""
    from runtime import training
    real = training._validate

    def fake(sess, parts, step, *rest):
        real(sess, parts, step, *rest)
        return accuracy_at_step[step]

    monkeypatch.setattr(training, '_validate', fake)
