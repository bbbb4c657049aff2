"""Impossible or contradictory flags are refused at start-up, in one line naming the flag."""
import pytest
from conftest import run_main, tiny_run_args


@pytest.mark.parametrize('flags, named', [
    (['--batch_size', '500'], '--batch_size=500 is larger than the 200 training images'),
    (['--save_freq', '0'], '--save_freq must be at least 1'),
    (['--dataset', 'imagenet'], 'unknown --dataset=imagenet'),  # cifar10 is a dataset now
    (['--iter_routing', '0'], '--iter_routing must be at least 1'),
    (['--keep_checkpoints', '0'], '--keep_checkpoints must be at least 1'),
    (['--val_size', '240'], '--val_size=240 leaves no training images'),
    (['--m_plus', '0.1', '--m_minus', '0.9'], 'need 0 <= --m_minus < --m_plus'),
    (['--batch_size', 'many'], "invalid int value: 'many'"),
])
def test_impossible_flags_are_refused_before_anything_is_written(flags, named, tiny_mnist, tmp_path, capsys):
    code = run_main(tiny_run_args(tiny_mnist, tmp_path, *flags))
    err = capsys.readouterr().err
    assert code != 0 and err.startswith('error: ') and err.count('\n') == 1, err
    assert named in err
    assert not (tmp_path / 'logdir').exists()
