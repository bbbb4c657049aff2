"""End to end on tiny generated data: train, resume, evaluate, through run_main() as a user would."""
import csv
import json

import pytest
import tensorflow as tf
from conftest import run_main, tiny_run_args


def read_csv(path):
    with open(path) as f:
        return list(csv.reader(f))


@pytest.mark.slow
def test_train_resume_and_evaluate(tiny_mnist, tmp_path, capsys):
    args = tiny_run_args(tiny_mnist, tmp_path)
    assert run_main(args) == 0
    logdir, results = tmp_path / 'logdir', tmp_path / 'results'

    # 200 training images / batch 8 = 25 steps per epoch; max_steps 6 ends inside epoch 1.
    assert tf.train.latest_checkpoint(str(logdir)).endswith('model.ckpt-6')
    assert list(logdir.glob('events.out.tfevents.*'))
    assert json.loads((logdir / 'flags.json').read_text())['batch_size'] == 8
    loss_rows = read_csv(results / 'loss.csv')
    assert loss_rows[0] == ['step', 'loss'] and [r[0] for r in loss_rows[1:]] == ['2', '4', '6']
    assert all(0.0 < float(r[1]) < 2.0 for r in loss_rows[1:])  # margin loss starts near 0.9
    assert [r[0] for r in read_csv(results / 'train_acc.csv')] == ['step', '2', '4', '6']
    val_rows = read_csv(results / 'val_acc.csv')
    assert [r[0] for r in val_rows] == ['step', '3', '6']
    # 40 validation images: accuracy is a multiple of 1/40.
    assert all(abs(float(r[1]) * 40 - round(float(r[1]) * 40)) < 1e-6 for r in val_rows[1:])

    # Same command with a higher step budget resumes at 6 and appends, without repeating rows.
    assert run_main(tiny_run_args(tiny_mnist, tmp_path, '--max_steps', '10')) == 0
    assert 'resuming from step 6' in capsys.readouterr().out
    assert tf.train.latest_checkpoint(str(logdir)).endswith('model.ckpt-10')
    assert [r[0] for r in read_csv(results / 'loss.csv')] == ['step', '2', '4', '6', '8', '10']
    assert [r[0] for r in read_csv(results / 'val_acc.csv')] == ['step', '3', '6', '9', '10']

    assert run_main(tiny_run_args(tiny_mnist, tmp_path, '--is_training=False')) == 0
    out = capsys.readouterr().out
    assert 'test accuracy' in out and '/ 60) at step 10' in out
    test_rows = read_csv(results / 'test_acc.csv')
    assert test_rows[0] == ['step', 'test_acc'] and test_rows[1][0] == '10'


def test_evaluate_without_checkpoint_is_one_line_error(tiny_mnist, tmp_path, capsys):
    code = run_main(tiny_run_args(tiny_mnist, tmp_path, '--is_training=False'))
    err = capsys.readouterr().err
    assert code != 0
    assert err.count('\n') == 1 and 'no checkpoint in' in err and 'python main.py' in err


def test_missing_data_names_download_command(tmp_path, capsys):
    code = run_main(tiny_run_args(tmp_path / 'nowhere', tmp_path))
    err = capsys.readouterr().err
    assert code != 0 and err.count('\n') == 1
    assert 'missing data file train-images-idx3-ubyte.gz' in err and 'run: python download_data.py' in err
