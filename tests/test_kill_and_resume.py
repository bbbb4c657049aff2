"""Killed, interrupted and terminated runs: nothing lost, nothing repeated, bit for bit the run never stopped.

The subprocess tests start main.py as a real process (about 5 s of TensorFlow import each), because a
SIGKILL or a Ctrl-C is only honest when it hits a process of its own. Resumed runs are compared with
an uninterrupted run for exact equality: every variable (Adam slots and beta powers included) and
every row of loss.csv, train_acc.csv and val_acc.csv. That holds because every op on the CPU is
deterministic here (checked by test_same_seed_gives_bitwise_identical_runs).
"""
import hashlib
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, run_main, tiny_run_args

from runtime import checkpoints, errors, files, training

tf1 = tf.compat.v1

# 40 train + 40 validation images, batch 8: 5 steps per epoch, an epoch-end checkpoint at 5, 10, 15 and 16.
RUN_FLAGS = ['--max_steps', '16', '--train_sum_freq', '1', '--val_sum_freq', '4', '--keep_checkpoints', '2']
CSV_NAMES = ('loss.csv', 'train_acc.csv', 'val_acc.csv')


@pytest.fixture(scope='module')
def reference(small_data, tmp_path_factory):
    """The run never stopped, to which every stopped and resumed run must be identical."""
    work = tmp_path_factory.mktemp('reference')
    assert run_main(tiny_run_args(small_data, work, *RUN_FLAGS)) == 0
    return work


def start_main(args, workdir, **env_extra):
    """main.py in its own process; output goes to files (a full pipe would stall it)."""
    workdir.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONUNBUFFERED='1', **env_extra)
    return subprocess.Popen([sys.executable, str(ROOT / 'main.py')] + args, cwd=str(ROOT), env=env,
                            stdout=open(workdir / 'stdout.txt', 'w'), stderr=open(workdir / 'stderr.txt', 'w'))


def wait_for(condition, process, workdir, timeout=300):
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


def newest_step(logdir):
    saved = checkpoints.newest_first(str(logdir))
    return checkpoints.step_of(saved[0]) if saved else 0


def final_weights(logdir):
    reader = tf.train.load_checkpoint(checkpoints.newest_first(str(logdir))[0])
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def assert_identical_runs(work, reference):
    """Every variable of the last checkpoint and every CSV row exactly as in the reference run."""
    expected, got = final_weights(reference / 'logdir'), final_weights(work / 'logdir')
    assert sorted(got) == sorted(expected) and got['global_step'] == 16
    assert any(name.endswith('/Adam_1') for name in got)  # the optimizer state is part of the comparison
    different = [name for name in expected if not np.array_equal(got[name], expected[name])]
    assert not different, 'not bit-identical to the uninterrupted run: %s' % different
    for name in CSV_NAMES:
        rows = read_rows(work / 'results' / name)
        assert rows == read_rows(reference / 'results' / name), name
    assert [int(r[0]) for r in read_rows(work / 'results' / 'loss.csv')] == list(range(1, 17))


@pytest.mark.slow
def test_same_seed_gives_bitwise_identical_runs(small_data, reference, tmp_path):
    # The precondition of every exact comparison below: no op on this CPU is nondeterministic.
    assert run_main(tiny_run_args(small_data, tmp_path, *RUN_FLAGS)) == 0
    assert_identical_runs(tmp_path, reference)


@pytest.mark.slow
def test_sigkill_at_random_steps_then_same_command_ends_exactly_as_the_uninterrupted_run(
        small_data, reference, tmp_path, capsys):
    # One seeded-random step in each third of the run: before the first checkpoint, after it, after the next.
    rng = np.random.default_rng(20261126)
    kill_after = [int(rng.integers(2, 5)), int(rng.integers(6, 10)), int(rng.integers(11, 15))]
    args = tiny_run_args(small_data, tmp_path, *RUN_FLAGS)
    results = tmp_path / 'results'
    resumed_from = []
    for attempt, step in enumerate(kill_after):
        start_step = newest_step(tmp_path / 'logdir')
        process = start_main(args, tmp_path / ('run%d' % attempt))
        wait_for(lambda: max(logged_steps(results), default=0) >= step, process, tmp_path / ('run%d' % attempt))
        process.kill()
        assert process.wait() == -signal.SIGKILL  # still running when killed
        if start_step:
            resumed_from.append(start_step)
            assert 'resuming from step %d' % start_step in (tmp_path / ('run%d' % attempt) / 'stdout.txt').read_text()
    assert run_main(args) == 0
    assert 'resuming from step 10' in capsys.readouterr().out
    assert resumed_from == [5]  # the second run started over, the third resumed from the second's checkpoint
    assert_identical_runs(tmp_path, reference)


@pytest.mark.slow
def test_sigkill_during_a_checkpoint_write_keeps_the_previous_one_and_resumes_exactly(
        small_data, reference, tmp_path, capsys):
    args = tiny_run_args(small_data, tmp_path, *RUN_FLAGS)
    logdir = tmp_path / 'logdir'
    marker = tmp_path / 'save_paused'
    process = start_main(args, tmp_path / 'killed',
                         **{checkpoints.PAUSE_IN_SAVE_ENV: '10:%s' % marker})
    wait_for(marker.exists, process, tmp_path / 'killed')
    # The save of step 10 has written its data under the staging name and not yet put it in place.
    assert sorted(p.name for p in logdir.glob('model.ckpt-10*')) == [
        'model.ckpt-10.tempstate.data-00000-of-00001', 'model.ckpt-10.tempstate.index',
        'model.ckpt-10.tempstate.meta']
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in logdir.glob('model.ckpt-5.*')}
    process.kill()
    assert process.wait() == -signal.SIGKILL
    assert [os.path.basename(p) for p in checkpoints.newest_first(str(logdir))] == ['model.ckpt-5']
    assert tf.train.latest_checkpoint(str(logdir)).endswith('model.ckpt-5')
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in logdir.glob('model.ckpt-5.*')} == before

    assert run_main(args) == 0
    assert 'resuming from step 5' in capsys.readouterr().out
    assert not list(logdir.glob('*tempstate*'))
    assert_identical_runs(tmp_path, reference)


@pytest.mark.slow
def test_ctrl_c_mid_epoch_saves_there_and_resumes_exactly(small_data, reference, tmp_path, capsys):
    args = tiny_run_args(small_data, tmp_path, *RUN_FLAGS)
    logdir, results = tmp_path / 'logdir', tmp_path / 'results'
    process = start_main(args, tmp_path / 'first')
    wait_for(lambda: max(logged_steps(results), default=0) >= 6, process, tmp_path / 'first')
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=120) == errors.TrainingInterrupted.exit_code
    last_line = (tmp_path / 'first' / 'stderr.txt').read_text().rstrip('\n').split('\n')[-1]
    assert last_line.startswith('error: interrupted at step ') and 'run the same command to resume' in last_line
    interrupted_at = int(last_line.split('interrupted at step ')[1].split(';')[0])
    assert interrupted_at % 5  # mid-epoch: the resumed run skips the batches of this epoch already seen
    assert checkpoints.newest_first(str(logdir))[0].endswith('model.ckpt-%d' % interrupted_at)

    assert run_main(args) == 0
    assert 'resuming from step %d' % interrupted_at in capsys.readouterr().out
    assert_identical_runs(tmp_path, reference)
    # --keep_checkpoints counts the checkpoints of the stopped run too.
    assert [os.path.basename(p) for p in checkpoints.newest_first(str(logdir))] == ['model.ckpt-16', 'model.ckpt-15']
    # TensorBoard is told, at the resume, to forget the events written past its checkpoint.
    restarts = [event.step for events_file in logdir.glob('events.out.tfevents.*')
                for event in readable_events(events_file)
                if event.HasField('session_log') and event.session_log.status == tf1.SessionLog.START]
    assert restarts == [interrupted_at]


@pytest.mark.slow
@pytest.mark.parametrize('precision', ['float32', 'bfloat16'])
def test_ctrl_c_exits_within_seconds_without_a_tensorflow_error(small_data, tmp_path, precision):
    args = tiny_run_args(small_data, tmp_path, '--max_steps', '1000', '--train_sum_freq', '1',
                         '--val_sum_freq', '1000', '--precision', precision)
    process = start_main(args, tmp_path / 'run')
    wait_for(lambda: max(logged_steps(tmp_path / 'results'), default=0) >= 3, process, tmp_path / 'run')
    signalled = time.time()
    process.send_signal(signal.SIGINT)
    code = process.wait(timeout=120)
    took = time.time() - signalled
    err = (tmp_path / 'run' / 'stderr.txt').read_text()
    assert code == errors.TrainingInterrupted.exit_code
    assert 'ERROR:tensorflow' not in err and 'failed to close' not in err, err
    # The rest of a step, a checkpoint save and the exit: seconds, never TensorFlow's 30 s close timeout.
    assert took < 25, 'exit took %.1f s after SIGINT' % took


@pytest.mark.slow
def test_ctrl_c_before_the_first_step_stops_without_training(small_data, tmp_path, capsys, monkeypatch):
    restore_or_initialize = training.restore_or_initialize

    def restore_then_ctrl_c(*args):
        restored = restore_or_initialize(*args)
        os.kill(os.getpid(), signal.SIGINT)  # while the session was being set up
        return restored

    monkeypatch.setattr(training, 'restore_or_initialize', restore_then_ctrl_c)
    code = run_main(tiny_run_args(small_data, tmp_path))
    err = capsys.readouterr().err
    assert code == errors.TrainingInterrupted.exit_code
    assert err.rstrip('\n').split('\n')[-1] == ('error: interrupted at step 0; nothing to save yet; '
                                                 'run the same command to resume')
    assert checkpoints.newest_first(str(tmp_path / 'logdir')) == []
    assert read_rows(tmp_path / 'results' / 'loss.csv') == []


@pytest.mark.slow
def test_second_ctrl_c_stops_at_once_without_saving(small_data, tmp_path, capsys, monkeypatch):
    train_step = training._train_step

    def step_then_ctrl_c_twice_at_7(*args):
        step = train_step(*args)
        if step == 7:
            os.kill(os.getpid(), signal.SIGINT)  # "stop after this step"
            os.kill(os.getpid(), signal.SIGINT)  # "stop now"
        return step

    monkeypatch.setattr(training, '_train_step', step_then_ctrl_c_twice_at_7)
    assert run_main(tiny_run_args(small_data, tmp_path, '--max_steps', '5')) == 0
    logdir = tmp_path / 'logdir'
    before = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in logdir.glob('model.ckpt-5.*')}
    code = run_main(tiny_run_args(small_data, tmp_path, '--max_steps', '10'))
    err = capsys.readouterr().err
    assert code == errors.TrainingInterrupted.exit_code
    assert err.rstrip('\n').split('\n')[-1] == (
        # The second signal lands before the loop has counted step 7 (applied, never saved).
        'error: stopped at once by a second interrupt near step 6, without saving; the last checkpoint '
        '(step 5) is intact; run the same command to resume')
    assert [os.path.basename(p) for p in checkpoints.newest_first(str(logdir))] == ['model.ckpt-5']
    assert {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in logdir.glob('model.ckpt-5.*')} == before
    assert not list(logdir.glob('*tempstate*'))


def readable_events(events_file):
    """The events of a TensorBoard file up to where a kill may have cut its last record."""
    events = tf1.train.summary_iterator(str(events_file))
    while True:
        try:
            yield next(events)
        except (StopIteration, tf.errors.DataLossError):
            return


@pytest.mark.slow
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
