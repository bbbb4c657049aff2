"""The proof that it learns: a short CPU run on real MNIST, fetched through download_data's file:// mirror."""
import csv

import pytest
from conftest import REAL_MNIST, run_main

import download_data

pytestmark = pytest.mark.skipif(not (REAL_MNIST / 'train-images-idx3-ubyte.gz').exists(),
                                reason='real MNIST not present at ../shared/data/mnist')


@pytest.mark.slow
def test_short_run_reaches_95_percent_validation_accuracy(tmp_path):
    data_dir = tmp_path / 'mnist'
    download_data.download('mnist', str(data_dir), mirror=REAL_MNIST.resolve().as_uri(), quiet=True)
    # 150 steps x 64 images (~10 000 images, a sixth of an epoch) on the paper's model; checksums
    # verified (--verify_data default); 2 000 validation images evaluated at the end (enough to tell
    # 95 % from chance, and it keeps the suite within its time on 2 cores).
    argv = ['--data_dir', str(data_dir), '--batch_size', '64', '--max_steps', '150', '--val_size', '2000',
            '--train_sum_freq', '50', '--val_sum_freq', '1000', '--num_threads', '2',
            '--logdir', str(tmp_path / 'logdir'), '--results', str(tmp_path / 'results')]
    assert run_main(argv) == 0
    with open(tmp_path / 'results' / 'val_acc.csv') as f:
        rows = list(csv.reader(f))
    assert rows[-1][0] == '150'
    assert float(rows[-1][1]) >= 0.95, rows
