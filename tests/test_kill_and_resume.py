"""Killed, interrupted and terminated runs: nothing lost, nothing repeated, same weights as if never stopped.

One test starts main.py as a real process twice (about 5 s of TensorFlow import each), because a
SIGKILL or a Ctrl-C is only honest when it hits a process of its own.
"""
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, run_main, tiny_run_args, write_dataset

from runtime import checkpoints, errors, files, training

tf1 = tf.compat.v1


@pytest.fixture(scope='module')
def small_data(tmp_path_factory):
    """80 training images: 40 train + 40 validation, so 5 steps of 8 per epoch and a checkpoint each 5."""
    return write_dataset(tmp_path_factory.mktemp('small'), num_train=80, num_test=20)


def start_main(args, workdir):
    """main.py in its own process; output goes to files (a full pipe would stall it)."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2')
    return subprocess.Popen([sys.executable, str(ROOT / 'main.py')] + args, cwd=str(ROOT), env=env,
                            stdout=open(workdir / 'stdout.txt', 'w'), stderr=open(workdir / 'stderr.txt', 'w'))


def wait_for(condition, process, workdir, timeout=180):
    deadline = time.time() + timeout
    while not condition():
        if process.poll() is not None:
            pytest.fail('main.py ended early (%s): %s' % (process.returncode, (workdir / 'stderr.txt').read_text()))
        if time.time() > deadline:
            process.kill()
            pytest.fail('timed out waiting for main.py')
        time.sleep(0.02)


def logged_steps(results):
    """Steps of the complete rows of loss.csv (what a crash can leave: a partial last line)."""
    path = results / 'loss.csv'
    if not path.exists():
        return []
    lines = path.read_text().split('\n')[1:-1]
    return [int(line.split(',')[0]) for line in lines if line.count(',') == 1]


def read_rows(path):
    return [line.split(',') for line in path.read_text().splitlines()[1:]]


def final_weights(logdir):
    reader = tf.train.load_checkpoint(checkpoints.newest_first(str(logdir))[0])
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def test_ctrl_c_then_sigkill_then_same_command_ends_with_the_uninterrupted_weights(tmp_path, capsys):
    # 80 training images: 10 steps per epoch, so epoch-end checkpoints at 10 and (the last step) 16.
    data = write_dataset(tmp_path / 'data', num_train=120, num_test=20)
    extra = ['--max_steps', '16', '--train_sum_freq', '1', '--val_sum_freq', '4', '--keep_checkpoints', '2']
    reference = tmp_path / 'reference'
    assert run_main(tiny_run_args(data, reference, *extra)) == 0

    work = tmp_path / 'stopped'
    args = tiny_run_args(data, work, *extra)
    logdir, results = work / 'logdir', work / 'results'

    # 1. Ctrl-C early in epoch 1: a checkpoint mid-epoch, a one-line message, exit 130.
    process = start_main(args, work / 'first')
    wait_for(lambda: max(logged_steps(results), default=0) >= 2, process, work / 'first')
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == errors.TrainingInterrupted.exit_code
    last_line = (work / 'first' / 'stderr.txt').read_text().rstrip('\n').split('\n')[-1]
    assert last_line.startswith('error: interrupted at step ') and 'run the same command to resume' in last_line
    interrupted_at = int(last_line.split('interrupted at step ')[1].split(';')[0])
    assert 2 <= interrupted_at < 10  # before the first epoch-end checkpoint: only Ctrl-C saved this one
    assert checkpoints.newest_first(str(logdir))[0].endswith('model.ckpt-%d' % interrupted_at)

    # 2. Same command: resumes mid-epoch; SIGKILLed after its next checkpoint, with CSV rows written past it.
    process = start_main(args, work / 'second')

    def past_a_new_checkpoint():
        saved = checkpoints.newest_first(str(logdir))
        newest = checkpoints.step_of(saved[0]) if saved else 0
        return newest > interrupted_at and max(logged_steps(results), default=0) > newest

    wait_for(past_a_new_checkpoint, process, work / 'second')
    process.kill()
    process.wait()
    assert process.returncode == -signal.SIGKILL  # still running when killed
    assert 'resuming from step %d' % interrupted_at in (work / 'second' / 'stdout.txt').read_text()
    saved = checkpoints.step_of(checkpoints.newest_first(str(logdir))[0])
    assert max(logged_steps(results)) > saved and saved < 16

    # 3. Same command again, to the end.
    assert run_main(args) == 0
    assert 'resuming from step %d' % saved in capsys.readouterr().out

    expected, got = final_weights(reference / 'logdir'), final_weights(logdir)
    assert sorted(got) == sorted(expected) and got['global_step'] == 16
    for name in expected:  # Adam slots and beta powers included: the optimizer state was restored
        np.testing.assert_allclose(got[name], expected[name], rtol=1e-5, atol=1e-7, err_msg=name)

    # Every step exactly once, with the values of the run that was never stopped.
    loss_rows = read_rows(results / 'loss.csv')
    assert [int(r[0]) for r in loss_rows] == list(range(1, 17))
    np.testing.assert_allclose([float(r[1]) for r in loss_rows],
                               [float(r[1]) for r in read_rows(reference / 'results' / 'loss.csv')], rtol=1e-5)
    assert read_rows(results / 'val_acc.csv') == read_rows(reference / 'results' / 'val_acc.csv')
    # --keep_checkpoints counts the checkpoints of the stopped runs too.
    kept = [os.path.basename(p) for p in checkpoints.newest_first(str(logdir))]
    assert kept == ['model.ckpt-16', 'model.ckpt-10']
    # TensorBoard is told, at each resume, to forget the events written past its checkpoint.
    restarts = [event.step for events_file in logdir.glob('events.out.tfevents.*')
                for event in readable_events(events_file)
                if event.HasField('session_log') and event.session_log.status == tf1.SessionLog.START]
    assert sorted(restarts) == [interrupted_at, saved]


def readable_events(events_file):
    """The events of a TensorBoard file up to where a kill may have cut its last record."""
    events = tf1.train.summary_iterator(str(events_file))
    while True:
        try:
            yield next(events)
        except (StopIteration, tf.errors.DataLossError):
            return


def test_sigterm_saves_at_the_current_step_and_restores_the_signal_handler(small_data, tmp_path, capsys,
                                                                            monkeypatch):
    def not_handled(signum, frame):
        raise AssertionError('SIGTERM reached the default handler: training did not catch it')

    original_handler = signal.signal(signal.SIGTERM, not_handled)
    train_step = training._train_step

    def step_then_terminate_at_3(*args):
        step = train_step(*args)
        if step == 3:
            os.kill(os.getpid(), signal.SIGTERM)  # as `kill PID` or a cluster scheduler would
        return step

    monkeypatch.setattr(training, '_train_step', step_then_terminate_at_3)
    try:
        code = run_main(tiny_run_args(small_data, tmp_path, '--max_steps', '10'))
        assert signal.getsignal(signal.SIGTERM) is not_handled  # train() put the caller's handler back
    finally:
        signal.signal(signal.SIGTERM, original_handler)
    err = capsys.readouterr().err
    assert code == 130
    assert err.rstrip('\n').split('\n')[-1].startswith('error: interrupted at step 3;')  # one line, last
    newest = checkpoints.newest_first(str(tmp_path / 'logdir'))
    assert [os.path.basename(p) for p in newest] == ['model.ckpt-3']
    weights = final_weights(tmp_path / 'logdir')
    assert weights['global_step'] == 3 and all(np.all(np.isfinite(w)) for w in weights.values()
                                                if np.issubdtype(np.asarray(w).dtype, np.floating))


def test_csv_fragment_left_by_a_crash_is_dropped_on_resume(tmp_path):
    path = tmp_path / 'loss.csv'
    path.write_text('step,loss\n2,0.5\n4,0.4\n6,0.3\n8,0.')  # killed while writing step 8
    log = files.CsvLog(str(path), 'step,loss')
    log.truncate_after(4)  # resuming from the checkpoint of step 4
    log.append(6, 0.25)
    assert path.read_text() == 'step,loss\n2,0.5\n4,0.4\n6,0.25\n'
