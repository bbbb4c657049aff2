"""Model selection on validation only: logdir/best/ follows the best validation accuracy, and
`--is_training=False --checkpoint=best|latest` tests the chosen checkpoint."""
import csv
import json
import re

import pytest
import tensorflow as tf
from conftest import run_main, scripted_validation, tiny_run_args

from runtime import checkpoints
from runtime.errors import UserError


def best_files(logdir):
    return sorted(p.name for p in (logdir / 'best').glob('model.ckpt-*.index'))


@pytest.mark.slow
def test_best_checkpoint_follows_validation_and_survives_resume(tiny_mnist, tmp_path, monkeypatch, capsys):
    logdir = tmp_path / 'logdir'
    # Validation every 2 steps: 0.5, 0.8, 0.8 (a tie keeps the earlier step).
    scripted_validation(monkeypatch, {2: 0.5, 4: 0.8, 6: 0.8, 8: 0.7, 10: 0.9})
    assert run_main(tiny_run_args(tiny_mnist, tmp_path, '--val_sum_freq', '2')) == 0
    assert json.loads((logdir / 'best' / 'best.json').read_text()) == {'step': 4, 'val_acc': 0.8}
    assert best_files(logdir) == ['model.ckpt-4.index']
    assert tf.train.latest_checkpoint(str(logdir)).endswith('model.ckpt-6')  # 'latest' is unaffected

    # The test set is evaluated once per chosen checkpoint.
    capsys.readouterr()
    for which, step in (('best', 4), ('latest', 6)):
        assert run_main(tiny_run_args(tiny_mnist, tmp_path, '--is_training=False',
                                       '--checkpoint', which)) == 0
        out = capsys.readouterr().out
        assert re.search(r'at step %d of .*model\.ckpt-%d\b' % (step, step), out), out
    with open(tmp_path / 'results' / 'test_acc.csv') as f:
        assert [row[0] for row in csv.reader(f)] == ['step', '4', '6']

    # Resumed to step 10: 0.7 at step 8 must not replace the 0.8 of step 4; 0.9 at step 10 must,
    # and the file of step 4 goes (one best kept, even across a restart).
    assert run_main(tiny_run_args(tiny_mnist, tmp_path, '--val_sum_freq', '2', '--max_steps', '10')) == 0
    assert json.loads((logdir / 'best' / 'best.json').read_text()) == {'step': 10, 'val_acc': 0.9}
    assert best_files(logdir) == ['model.ckpt-10.index']


def test_best_without_validation_checkpoint_says_use_latest(tmp_path):
    (tmp_path / 'checkpoint').write_text('model_checkpoint_path: "model.ckpt-5"\n')
    (tmp_path / 'model.ckpt-5.index').write_bytes(b'')
    with pytest.raises(UserError, match='--checkpoint=latest'):
        checkpoints.find(str(tmp_path), 'best')
    with pytest.raises(UserError, match='no checkpoint in'):
        checkpoints.find(str(tmp_path / 'empty'), 'latest')
