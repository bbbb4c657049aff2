"""--time_limit: a run cut between two steps and continued by the same command ends exactly where an
uncut run of the same seed ends (every variable, every CSV row)."""
import itertools

import numpy as np
import pytest
import tensorflow as tf
from conftest import run_main, tiny_run_args, write_dataset

import config
from runtime import checkpoints, errors, training

EXTRA = ['--max_steps', '10', '--train_sum_freq', '1', '--val_sum_freq', '4', '--intra_op_threads', '1',
         '--inter_op_threads', '1']


def all_variables(logdir):
    reader = tf.train.load_checkpoint(checkpoints.newest_first(str(logdir))[0])
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def a_minute_per_reading(monkeypatch):
    """A clock that advances one minute each time it is read: the loop reads it once per step."""
    minutes = itertools.count()
    monkeypatch.setattr(training, 'clock', lambda: 60.0 * next(minutes))


@pytest.mark.slow
def test_cut_runs_continue_to_the_uncut_weights_and_rows(tmp_path, monkeypatch, capsys):
    # 120 images, 40 held out: 10 steps of 8 per epoch, so every cut lands mid-epoch.
    data = write_dataset(tmp_path / 'data', num_train=120, num_test=20)
    reference = tmp_path / 'reference'
    assert run_main(tiny_run_args(data, reference, *EXTRA)) == 0

    a_minute_per_reading(monkeypatch)
    args = tiny_run_args(data, tmp_path / 'cut', *EXTRA, '--time_limit', '3')
    codes, cut_at = [], []
    for _ in range(5):
        codes.append(run_main(args))
        err = capsys.readouterr().err.rstrip('\n').split('\n')[-1]
        if codes[-1] != errors.TimeLimitReached.exit_code:
            break
        assert err == ('time limit reached at step %d; run the same command to continue'
                            % (3 * len(codes)))
        cut_at.append(checkpoints.step_of(checkpoints.newest_first(str(tmp_path / 'cut' / 'logdir'))[0]))
    assert codes == [75, 75, 75, 0] and cut_at == [3, 6, 9]  # each cut saved the step it stopped at

    expected, got = all_variables(reference / 'logdir'), all_variables(tmp_path / 'cut' / 'logdir')
    assert sorted(got) == sorted(expected) and got['global_step'] == 10
    for name in expected:
        assert np.array_equal(got[name], expected[name]), name
    for csv in ('loss.csv', 'train_acc.csv', 'val_acc.csv'):
        assert ((tmp_path / 'cut' / 'results' / csv).read_text()
                == (reference / 'results' / csv).read_text()), csv
    assert (tmp_path / 'cut' / 'logdir' / 'best' / 'best.json').read_text() == \
        (reference / 'logdir' / 'best' / 'best.json').read_text()


def test_time_limit_flag_default_and_refusal():
    assert config.parse([]).time_limit == 0
    assert config.parse(['--time_limit', '1.5']).time_limit == 1.5
    with pytest.raises(config.ConfigError, match='--time_limit must be >= 0'):
        config.parse(['--time_limit=-1'])
