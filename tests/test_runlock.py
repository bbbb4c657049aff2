"""A second run on the same logdir refuses to start; a lock left by a killed run does not block."""
import errno
import os
import signal
import subprocess
import sys

import pytest
from conftest import ROOT, run_main, tiny_run_args

from runtime import runlock

# Holds the lock of a folder in a small process of its own (no TensorFlow import: fast).
HOLD_LOCK = ('import sys; from runtime import runlock; lock = runlock.RunLock(sys.argv[1]); lock.acquire(); '
             'print("locked", flush=True); sys.stdin.read()')


def hold_lock(folder):
    holder = subprocess.Popen([sys.executable, '-c', HOLD_LOCK, str(folder)], cwd=str(ROOT),
                              stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == 'locked'
    return holder


@pytest.mark.slow
def test_second_run_on_a_logdir_refuses_then_runs_once_the_first_is_killed(tiny_mnist, tmp_path, capsys):
    args = tiny_run_args(tiny_mnist, tmp_path, '--max_steps', '2')
    holder = hold_lock(tmp_path / 'logdir')
    try:
        code = run_main(args)
        err = capsys.readouterr().err
        assert code == runlock.FolderInUse.exit_code and err.count('\n') == 1, err
        assert 'is in use by another run (pid=%d host=' % holder.pid in err
        assert 'wait for it to end, stop it, or choose another --logdir' in err
        assert not (tmp_path / 'logdir' / 'flags.json').exists()  # refused before writing anything
    finally:
        holder.kill()  # SIGKILL: no clean-up, the lock file and its pid stay behind
        holder.wait()
    assert 'pid=%d' % holder.pid in (tmp_path / 'logdir' / runlock.LOCK_NAME).read_text()
    assert run_main(args) == 0  # the stale lock does not block
    assert (tmp_path / 'logdir' / runlock.LOCK_NAME).read_text() == ''  # released at the end


def test_results_folder_is_locked_too(tiny_mnist, tmp_path, capsys):
    holder = hold_lock(tmp_path / 'results')
    try:
        code = run_main(tiny_run_args(tiny_mnist, tmp_path, '--max_steps', '2'))
    finally:
        holder.kill()
        holder.wait()
    assert code != 0 and '--results' in capsys.readouterr().err
    with runlock.RunLock(str(tmp_path / 'logdir')):  # the logdir lock taken first was given back
        pass


def test_without_flock_a_live_pid_blocks_and_a_dead_one_does_not(tmp_path, monkeypatch):
    def no_flock(fd, operation):
        raise OSError(errno.ENOLCK, 'No locks available')

    monkeypatch.setattr(runlock.fcntl, 'flock', no_flock)
    sleeper = subprocess.Popen([sys.executable, '-c', 'import time; time.sleep(60)'])
    lock_file = tmp_path / runlock.LOCK_NAME
    try:
        lock_file.write_text('pid=%d host=%s started=x\n' % (sleeper.pid, runlock.socket.gethostname()))
        with pytest.raises(runlock.FolderInUse, match='pid=%d' % sleeper.pid):
            runlock.RunLock(str(tmp_path)).acquire()
    finally:
        sleeper.send_signal(signal.SIGKILL)
        sleeper.wait()
    with runlock.RunLock(str(tmp_path)):  # the recorded process is gone: a stale lock, taken over
        assert 'pid=%d ' % os.getpid() in lock_file.read_text()

