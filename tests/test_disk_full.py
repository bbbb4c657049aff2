"""A disk that really fills up (a small tmpfs mounted for the test): one line, exit 1, nothing lost.

Needs root and a kernel that lets it mount tmpfs; elsewhere the tests skip and say why.
"""
import contextlib
import errno
import json
import os
import re
import subprocess
import uuid

import pytest
import tensorflow as tf
from conftest import run_main, tiny_run_args

from runtime import checkpoints

CHECKPOINT_MB = 99  # weights + Adam slots of the default model
BEST_MB = 33  # best/ holds the weights and the step only


@contextlib.contextmanager
def small_filesystem(folder, size):
    """A tmpfs of `size` (mount's syntax: '240m') at folder, unmounted afterwards; skips where impossible."""
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip('mounting a small filesystem needs root')
    mounted = subprocess.run(['mount', '-t', 'tmpfs', '-o', 'size=%s' % size, 'tmpfs', str(folder)],
                             capture_output=True, text=True)
    if mounted.returncode != 0:
        pytest.skip('cannot mount a tmpfs here: %s' % mounted.stderr.strip())
    try:
        yield folder
    finally:
        subprocess.run(['umount', '-l', str(folder)], check=False)


def fill_up(folder):
    """Writes a file until the filesystem refuses (ENOSPC); returns it, to delete for room again."""
    path = folder / ('filler-%s' % uuid.uuid4().hex)
    with open(path, 'wb') as f:
        try:
            while True:
                f.write(b'\0' * 65536)
                f.flush()
        except OSError as e:
            assert e.errno == errno.ENOSPC
    return path


def last_line(text):
    return text.rstrip('\n').split('\n')[-1]


def readable(prefix):
    return tf.train.load_checkpoint(str(prefix)).get_tensor('global_step')


@pytest.mark.slow
def test_disk_full_during_a_checkpoint_save(small_data, tmp_path, capsys):
    # Room for best/ (validation at step 3) and model.ckpt-5, and less than a second best/ beside them:
    # the next save (best/ at step 6 if validation improves, else model.ckpt-10) does not fit.
    with small_filesystem(tmp_path / 'disk', '%dm' % int(CHECKPOINT_MB + BEST_MB * 1.5)) as disk:
        args = tiny_run_args(small_data, disk, '--max_steps', '10', '--val_sum_freq', '3')
        code = run_main(args)
        err = capsys.readouterr().err
        assert code == 1 and 'Traceback' not in err, err
        line = last_line(err)
        assert line.startswith('error: cannot write checkpoint ') and '(No space left on device)' in line, line
        assert 'free disk space' in line and 'rerun the same command to resume' in line
        logdir = disk / 'logdir'
        assert not [p for p in logdir.rglob('*') if 'tempstate' in p.name]  # the staged files are gone
        assert [os.path.basename(p) for p in checkpoints.newest_first(str(logdir))] == ['model.ckpt-5']
        assert 'the previous one, model.ckpt-%s, is intact' % (
            json.loads((logdir / 'best' / 'best.json').read_text())['step'] if '/best/' in line else 5) in line
        # Both the latest and the best checkpoint restore.
        assert readable(logdir / 'model.ckpt-5') == 5
        best = json.loads((logdir / 'best' / 'best.json').read_text())
        assert readable(logdir / 'best' / ('model.ckpt-%d' % best['step'])) == best['step']
        assert run_main(tiny_run_args(small_data, disk, '--is_training=False')) == 0
        assert 'at step 5 of' in capsys.readouterr().out


@pytest.mark.slow
def test_disk_full_during_a_csv_write(small_data, tmp_path, capsys):
    with small_filesystem(tmp_path / 'disk', '1m') as disk:
        work = tmp_path / 'work'
        args = ['--results', str(disk / 'results')]
        assert run_main(tiny_run_args(small_data, work, '--max_steps', '5') + args) == 0
        rows_before = (disk / 'results' / 'loss.csv').read_text()
        filler = fill_up(disk)
        # Resuming rewrites each CSV (dropping rows past the checkpoint) through a temporary file.
        code = run_main(tiny_run_args(small_data, work, '--max_steps', '10') + args)
        err = capsys.readouterr().err
        assert code == 1 and 'Traceback' not in err, err
        line = last_line(err)
        # The line names the file in results/ that could not be written (the run lock is written first),
        # though the OS error of a write names no file.
        assert re.match(r"error: cannot write %s/[\w.]+ \(No space left on device\)" % re.escape(str(disk / 'results')),
                        line), line
        assert 'free disk space' in line
        assert (disk / 'results' / 'loss.csv').read_text() == rows_before
        assert readable(work / 'logdir' / 'model.ckpt-5') == 5

        filler.unlink()  # room again: the same command goes on from the checkpoint
        assert run_main(tiny_run_args(small_data, work, '--max_steps', '10') + args) == 0
        assert 'resuming from step 5' in capsys.readouterr().out
        assert [r.split(',')[0] for r in (disk / 'results' / 'loss.csv').read_text().split()[1:]] == [
            '2', '4', '6', '8', '10']
