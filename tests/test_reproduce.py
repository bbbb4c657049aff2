"""tools.reproduce: seeds trained (or resumed) under a time limit, each chosen checkpoint tested once
even across interruptions, and the results table."""
import contextlib
import csv
import io
import itertools
import json
import os
import signal
import subprocess
import sys
import time

import pytest
from conftest import ROOT, run_main, tiny_run_args

from runtime import training
from tools import reproduce


class InProcessMain:
    """What `python main.py ARGV` does, run here (no TensorFlow start-up per call), with a log of calls."""

    def __init__(self, interrupt_at=None):
        self.calls, self.interrupt_at = [], interrupt_at

    def __call__(self, argv):
        which = argv[argv.index('--checkpoint') + 1] if '--is_training=False' in argv else 'train'
        seed = int(argv[argv.index('--seed') + 1])
        if (seed, which) == self.interrupt_at:
            raise KeyboardInterrupt
        output = io.StringIO()
        with contextlib.redirect_stdout(output):
            code = run_main(argv)
        self.calls.append((seed, which, code, output.getvalue()))
        return code, output.getvalue()

    def tested_steps(self):
        return [(seed, int(out.split(' at step ')[1].split()[0])) for seed, which, code, out in self.calls
                if which != 'train']


def reproduce_argv(data, out, *more):
    run = tiny_run_args(data, out)
    # The tiny run's flags minus the folders (reproduce chooses them per seed).
    per_run = run[:run.index('--logdir')]
    return ['--flagfile', 'configs/official.flags', '--seeds', '1', '2', '--out', str(out)] + list(more) + \
        ['--'] + per_run


@pytest.mark.slow
def test_time_limit_interrupt_and_rerun_never_test_a_checkpoint_twice(tiny_mnist, tmp_path, monkeypatch,
                                                                        capsys):
    out = tmp_path / 'out'
    minutes = itertools.count()
    monkeypatch.setattr(training, 'clock', lambda: 60.0 * next(minutes))  # a minute per step
    # 1. Both seeds stop at their 3-minute limit (step 3 of 6): nothing tested yet, exit 75.
    first = InProcessMain()
    assert reproduce.main(reproduce_argv(tiny_mnist, out, '--time_limit', '3'), first) == 75
    assert [c[:3] for c in first.calls] == [(1, 'train', 75), (2, 'train', 75)]
    assert 'seed(s) 1 2 reached the time limit; run the same command to continue' in capsys.readouterr().err

    # 2. Both finish; seed 1 is tested, then Ctrl-C while seed 2's final checkpoint is being tested.
    second = InProcessMain(interrupt_at=(2, 'latest'))
    assert reproduce.main(reproduce_argv(tiny_mnist, out, '--time_limit', '3'), second) == 130
    assert 'run the same command to resume' in capsys.readouterr().err

    # 3. The same command again: only seed 2's checkpoints are left to test.
    third = InProcessMain()
    assert reproduce.main(reproduce_argv(tiny_mnist, out, '--time_limit', '3'), third) == 0
    tested = second.tested_steps() + third.tested_steps()
    assert len(tested) == len(set(tested))  # no checkpoint tested twice
    assert {seed for seed, _ in third.tested_steps()} == {2}
    for seed in (1, 2):
        record = json.loads((out / ('seed%d' % seed) / 'tested.json').read_text())
        best = json.loads((out / ('seed%d' % seed) / 'logdir' / 'best' / 'best.json').read_text())
        assert set(record) == {'6', str(best['step'])}  # the final and the validation-selected step
        assert all(entry['images'] == 60 for entry in record.values())
        sessions = json.loads((out / ('seed%d' % seed) / 'run.json').read_text())['sessions']
        assert [s['exit_code'] for s in sessions] == [75, 0, 0]  # the third one found it trained
        # Each session's steps continue where the one before stopped: the pace the report reads.
        ranges = [s['steps'] for s in sessions]
        assert ranges[0][0] == 0 and 0 < ranges[0][1] < 6 and ranges[1] == [ranges[0][1], 6] and ranges[2] == [6, 6]

    # 4. The table: one row per seed and mean +- sd, as Markdown and CSV.
    rows = list(csv.DictReader(io.StringIO((out / 'results.csv').read_text())))
    assert [r['seed'] for r in rows] == ['1', '2', 'mean ± sd']
    summary = [reproduce.summarize(str(out / ('seed%d' % s)), s) for s in (1, 2)]
    for row, expected in zip(rows, summary):
        record = json.loads((out / ('seed%s' % row['seed']) / 'tested.json').read_text())
        assert float(row['test_acc_final']) == record['6']['test_acc'] == expected['test_acc_final']
        assert row['steps'] == '6' and row['epochs'] == '0.24'  # 6 steps of 8 of 200 images
        assert row['precision'] == 'float32' and ' x ' in row['hardware'] and row['commit']
    markdown = (out / 'results.md').read_text()
    assert markdown == reproduce.table_markdown(summary)
    assert markdown.count('\n| 1 | 6 | 0.24 |') == 1 and '| **mean ± sd** |' in markdown


def test_mean_and_sample_sd():
    assert reproduce.mean_sd([0.99, 0.98, None]) == '98.50 ± 0.71 (n=2)'
    assert reproduce.mean_sd([0.97]) == '97.00 (n=1)'
    assert reproduce.mean_sd([None]) == '-'


def test_missing_preset_and_stray_flags_are_one_line(tmp_path, capsys):
    assert reproduce.main(['--flagfile', str(tmp_path / 'none.flags'), '--out', str(tmp_path)]) == 2
    assert 'no flag file' in capsys.readouterr().err
    assert reproduce.main(['--flagfile', 'configs/paper.flags', '--out', str(tmp_path), '--max_steps', '3']) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: bad flag: unrecognized arguments: --max_steps') and err.count('\n') == 1


def test_sessions_record_the_machine_and_old_plain_string_records_still_read(tmp_path):
    from conftest import ROOT
    args = reproduce.build_parser().parse_args(['--flagfile', str(ROOT / 'configs' / 'paper.flags'),
                                                '--seeds', '1', '--out', str(tmp_path)])
    folder = tmp_path / 'seed1'
    folder.mkdir()
    # A record written before the machine was parsed: 'hardware' is a plain string, no 'machine'.
    (folder / 'run.json').write_text(json.dumps({'sessions': [
        {'wall_s': 60.0, 'exit_code': 75, 'commit': 'abc1234', 'hardware': 'AMD EPYC x 2'}]}))
    assert reproduce.Reproduction(args, runner=lambda argv: (75, '')).train(1) == 75
    sessions = json.loads((folder / 'run.json').read_text())['sessions']
    new = sessions[-1]
    assert new['hardware'] == new['machine']['summary'] and new['machine']['cores'] >= 1
    assert {'cpu_model', 'family', 'model', 'isa', 'onednn', 'load_average'} <= set(new['machine'])
    row = reproduce.summarize(str(folder), 1)
    assert row['hardware'] == 'AMD EPYC x 2 / ' + new['hardware']


@pytest.mark.slow
def test_sigterm_to_reproduce_stops_its_training_child_which_saves(tiny_mnist, tmp_path):
    # `kill PID` of the wrapper must not leave main.py training on, unrecorded, as an orphan.
    out = tmp_path / 'out'
    argv = reproduce_argv(tiny_mnist, out)
    argv[argv.index('--seeds') + 1:argv.index('--seeds') + 3] = ['1']
    argv[argv.index('--max_steps') + 1] = '100000'
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONUNBUFFERED='1')
    process = subprocess.Popen([sys.executable, '-m', 'tools.reproduce'] + argv, cwd=str(ROOT), env=env,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    loss_csv = out / 'seed1' / 'results' / 'loss.csv'
    deadline = time.time() + 300
    while not (loss_csv.exists() and len(loss_csv.read_text().splitlines()) >= 3):
        assert process.poll() is None and time.time() < deadline, process.stderr.read() if process.poll() else ''
        time.sleep(0.1)
    process.send_signal(signal.SIGTERM)
    assert process.wait(timeout=120) == 130
    record = json.loads((out / 'seed1' / 'run.json').read_text())
    session = record['sessions'][-1]
    assert session['exit_code'] == 130                # recorded only once the child had ended
    stopped_at = session['steps'][1]
    assert stopped_at >= 2 and (out / 'seed1' / 'logdir' / ('model.ckpt-%d.index' % stopped_at)).exists()
    rows = loss_csv.read_text().splitlines()
    time.sleep(2)
    assert loss_csv.read_text().splitlines() == rows  # nobody trains on
