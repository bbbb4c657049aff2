"""Reproduce a named experiment over several seeds: train (or resume), test once, tabulate.

    python -m tools.reproduce --flagfile configs/paper.flags --seeds 1 2 3 --out runs/paper \
        --time_limit 120 [-- more main.py flags, e.g. --max_steps 1500 --data_dir data/mnist]

For each seed, OUT/seedN/{logdir,results} is trained by `python main.py --flagfile F --seed N ...
--time_limit T` (each run stops after T minutes and the same command continues it). A run that has
finished its steps is tested on its final checkpoint and on its validation-selected one, each once:
OUT/seedN/tested.json records every tested step, so a rerun never tests a checkpoint again (and the
best checkpoint, when it is the final one, is not tested twice). Then OUT/results.md and
OUT/results.csv get the table: one row per seed and mean +- sample sd over seeds.

Model selection sees only the validation split (--val_size, the end of the training file); the test
set is read only for the two chosen checkpoints of a finished run.

Exit status: 0 when every run is finished and tested; 75 when a run stopped at its time limit (run
the same command to continue); 1 when a run failed; 130 when interrupted.
"""
import csv
import glob
import gzip
import io
import json
import os
import re
import signal
import statistics
import subprocess
import sys
import time

from runtime import cli, files
from runtime.errors import ConfigError, TimeLimitReached, TrainingInterrupted, UserError, run_cli
from tools import provenance

MAIN = os.path.join(provenance.ROOT, 'main.py')
TESTED = 'tested.json'
RUN_RECORD = 'run.json'
TEST_LINE = re.compile(r'test accuracy [0-9.]+ \((\d+) errors / (\d+)\) at step (\d+)')
COLUMNS = ['seed', 'steps', 'epochs', 'val_acc_best', 'test_acc_final', 'test_acc_val_selected',
           'wall_time_min', 'hardware', 'precision', 'commit']


def build_parser():
    p = cli.command_parser('Train, test and tabulate one experiment over several seeds.', 'python -m tools.reproduce')
    p.add_argument('--flagfile', required=True, help='the experiment: a preset such as configs/paper.flags')
    p.add_argument('--seeds', type=int, nargs='+', default=[1, 2, 3], help='one run per seed')
    p.add_argument('--out', required=True, help='folder of the runs (OUT/seedN/) and the table')
    p.add_argument('--time_limit', type=float, default=0, metavar='MINUTES',
                   help='passed to each training run: it stops after this long; rerun to continue (0: none)')
    p.add_argument('main_flags', nargs='*', metavar='-- FLAGS',
                   help='more main.py flags after --, for every run (they override the preset)')
    return p


def subprocess_runner(argv):
    """Runs `python main.py ARGV` with its output shown; returns (exit code, its stdout).

    A SIGTERM sent to this process (`kill PID`) is passed on to main.py, which saves its checkpoint and
    exits 130 like after Ctrl-C; left alone, the child would go on training with nobody to record it.
    """
    process = subprocess.Popen([sys.executable, MAIN] + argv, stdout=subprocess.PIPE, text=True)
    previous = signal.signal(signal.SIGTERM, lambda signum, frame: process.send_signal(signal.SIGTERM))
    lines = []
    try:
        for line in process.stdout:
            sys.stdout.write(line)
            lines.append(line)
        return process.wait(), ''.join(lines)
    except KeyboardInterrupt:
        # The child got the same Ctrl-C and saves its checkpoint; wait for it rather than orphan it.
        process.wait()
        raise
    finally:
        signal.signal(signal.SIGTERM, previous)


class Reproduction:
    def __init__(self, args, runner=subprocess_runner):
        self.args, self.runner = args, runner
        self.flagfile = os.path.abspath(args.flagfile)
        if not os.path.isfile(self.flagfile):
            raise ConfigError('no flag file %s; give a preset such as configs/paper.flags' % args.flagfile)
        if args.time_limit < 0:
            raise ConfigError('--time_limit must be >= 0, got %s' % args.time_limit)
        self.out = args.out

    def folder(self, seed):
        return os.path.join(self.out, 'seed%d' % seed)

    def run_flags(self, seed):
        folder = self.folder(seed)
        return (['--flagfile', self.flagfile, '--seed', str(seed), '--logdir', os.path.join(folder, 'logdir'),
                 '--results', os.path.join(folder, 'results')] + list(self.args.main_flags))

    def train(self, seed):
        """Trains or resumes one seed's run; returns main.py's exit code (0 finished, 75 time up)."""
        argv = self.run_flags(seed) + (['--time_limit', '%g' % self.args.time_limit]
                                       if self.args.time_limit else [])
        record_path = os.path.join(self.folder(seed), RUN_RECORD)
        record = read_json(record_path, {'sessions': []})
        logdir = os.path.join(self.folder(seed), 'logdir')
        first_step = final_step(logdir) or 0
        start = time.monotonic()
        code = None
        # Before training: the load average then says what else shared the machine, not the run itself.
        machine = provenance.machine()
        try:
            code, _ = self.runner(argv)
        finally:
            # Every training session counts in the wall time, also one cut short by Ctrl-C. 'hardware'
            # stays the one-line string older records hold; 'machine' has the parsed details.
            # The steps it trained (from, to) with wall_s give the pace of this machine, which says how
            # long the unfinished seeds still need.
            record['sessions'].append({'wall_s': round(time.monotonic() - start, 1), 'exit_code': code,
                                       'steps': [first_step, final_step(logdir) or first_step],
                                       'commit': provenance.commit(), 'hardware': machine['summary'],
                                       'machine': machine,
                                       'started': time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime()),
                                       'command': 'python main.py ' + ' '.join(argv)})
            files.atomic_write(record_path, json.dumps(record, indent=2) + '\n')
        return code

    def test(self, seed):
        """Tests the final and the validation-selected checkpoint, each step at most once ever."""
        folder = self.folder(seed)
        tested_path = os.path.join(folder, TESTED)
        tested = read_json(tested_path, {})
        logdir = os.path.join(folder, 'logdir')
        wanted = {'latest': final_step(logdir), 'best': (read_json(os.path.join(logdir, 'best', 'best.json'), {})
                                                         .get('step'))}
        for which, step in wanted.items():
            if step is None:
                continue
            if str(step) not in tested:
                code, output = self.runner(self.run_flags(seed) + ['--is_training=False', '--checkpoint', which])
                match = TEST_LINE.search(output or '')
                if code != 0 or not match or int(match.group(3)) != step:
                    raise UserError('testing the %s checkpoint (step %d) of %s failed (exit %s); see above, '
                                    'then rerun the same command' % (which, step, folder, code))
                errors, total = int(match.group(1)), int(match.group(2))
                tested[str(step)] = {'test_acc': 1.0 - errors / total, 'errors': errors, 'images': total,
                                     'tested_as': which}
                files.atomic_write(tested_path, json.dumps(tested, indent=2, sort_keys=True) + '\n')
        return tested

    def run(self):
        try:
            return self._run()
        except KeyboardInterrupt:
            raise TrainingInterrupted('interrupted; every run keeps its last checkpoint and every test done '
                                      'is recorded; run the same command to resume') from None

    def _run(self):
        unfinished, failed = [], []
        for seed in self.args.seeds:
            code = self.train(seed)
            if code == TimeLimitReached.exit_code:
                unfinished.append(seed)
            elif code == TrainingInterrupted.exit_code:
                raise TrainingInterrupted('interrupted while training seed %d; run the same command to resume'
                                          % seed)
            elif code != 0:
                failed.append(seed)
            else:
                self.test(seed)
        rows = [summarize(self.folder(seed), seed) for seed in self.args.seeds]
        markdown = table_markdown(rows)
        files.atomic_write(os.path.join(self.out, 'results.md'), markdown)
        files.atomic_write(os.path.join(self.out, 'results.csv'), table_csv(rows))
        print(markdown)
        if failed:
            raise UserError('the run of seed(s) %s failed (see above); fix it and rerun the same command'
                            % ' '.join(map(str, failed)))
        if unfinished:
            raise TimeLimitReached('seed(s) %s reached the time limit; run the same command to continue'
                                   % ' '.join(map(str, unfinished)))
        return 0


def read_json(path, default):
    return files.read_json(path, default, 'delete it to rebuild it')


def final_step(logdir):
    """The step of the newest checkpoint of logdir (by file name, as runtime.checkpoints finds them)."""
    steps = [int(m.group(1)) for m in (re.search(r'model\.ckpt-(\d+)\.index$', p)
                                       for p in glob.glob(os.path.join(glob.escape(logdir), '*.index'))) if m]
    return max(steps) if steps else None


def training_images(data_dir):
    """The number of images in the training IDX file (its header), without reading the images."""
    for name in ('train-images-idx3-ubyte.gz', 'train-images-idx3-ubyte'):
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            opener = gzip.open if name.endswith('.gz') else open
            with opener(path, 'rb') as f:
                return int.from_bytes(f.read(8)[4:8], 'big')
    return None


def summarize(folder, seed):
    """One table row of a run's folder; None for what the run does not have (yet)."""
    logdir = os.path.join(folder, 'logdir')
    flags = read_json(os.path.join(logdir, 'flags.json'), {})
    steps = final_step(logdir)
    best = read_json(os.path.join(logdir, 'best', 'best.json'), {})
    tested = read_json(os.path.join(folder, TESTED), {})
    sessions = read_json(os.path.join(folder, RUN_RECORD), {'sessions': []})['sessions']
    images = training_images(flags['data_dir']) if flags.get('data_dir') else None
    epochs = None
    if steps is not None and images and flags.get('batch_size'):
        per_epoch = (images - flags.get('val_size', 0)) // flags['batch_size']
        epochs = round(steps / per_epoch, 2) if per_epoch > 0 else None

    def test_of(step):
        entry = tested.get(str(step)) if step is not None else None
        return entry['test_acc'] if entry else None

    def distinct(key):
        return ' / '.join(dict.fromkeys(session_value(s, key) for s in sessions if s.get(key))) or None

    return {'seed': seed, 'steps': steps, 'epochs': epochs, 'val_acc_best': best.get('val_acc'),
            'best_step': best.get('step'), 'test_acc_final': test_of(steps),
            'test_acc_val_selected': test_of(best.get('step')),
            'wall_time_min': round(sum(s['wall_s'] for s in sessions) / 60, 1) if sessions else None,
            'hardware': distinct('hardware'), 'precision': flags.get('precision'), 'commit': distinct('commit')}


def session_value(session, key):
    """A session's field as text: a dict (a machine record) by its summary, old plain strings as they are."""
    value = session[key]
    return value.get('summary', '?') if isinstance(value, dict) else str(value)


def percent(x):
    return '-' if x is None else '%.2f' % (100 * x)


def mean_sd(values, unit=''):
    """'98.50 ± 0.71 (n=2)' of accuracies in [0, 1] as percent (None skipped); unit follows the numbers."""
    values = [v for v in values if v is not None]
    if not values:
        return '-'
    if len(values) == 1:
        return '%.2f%s (n=1)' % (100 * values[0], unit)
    return '%.2f ± %.2f%s (n=%d)' % (100 * statistics.mean(values), 100 * statistics.stdev(values), unit,
                                    len(values))


def table_markdown(rows):
    lines = ['| seed | steps | epochs | val acc, best % (step) | test acc, final % | test acc, val-selected % '
             '| train wall time | hardware | precision | commit |',
             '|---|---|---|---|---|---|---|---|---|---|']
    for r in rows:
        lines.append('| %s | %s | %s | %s (%s) | %s | %s | %s | %s | %s | %s |' % (
            r['seed'], dash(r['steps']), dash(r['epochs']), percent(r['val_acc_best']), dash(r['best_step']),
            percent(r['test_acc_final']), percent(r['test_acc_val_selected']),
            '-' if r['wall_time_min'] is None else '%.1f min' % r['wall_time_min'],
            dash(r['hardware']), dash(r['precision']), dash(r['commit'])))
    lines.append('| **mean ± sd** | | | %s | %s | %s | | | | |' % tuple(
        mean_sd([r[k] for r in rows]) for k in ('val_acc_best', 'test_acc_final', 'test_acc_val_selected')))
    return '\n'.join(lines) + '\n'


def dash(x):
    return '-' if x is None else str(x)


def table_csv(rows):
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator='\n')
    writer.writerow(COLUMNS)
    for r in rows:
        writer.writerow(['' if r[c] is None else r[c] for c in COLUMNS])
    stats = []
    for c in COLUMNS:
        values = [r[c] for r in rows if isinstance(r[c], float)] if c.startswith(('val_', 'test_')) else []
        stats.append('%.6g ± %.6g' % (statistics.mean(values), statistics.stdev(values)) if len(values) > 1
                     else '')
    writer.writerow(['mean ± sd'] + stats[1:])
    return buffer.getvalue()


def main(argv=None, runner=subprocess_runner):
    def body():
        return Reproduction(build_parser().parse_args(sys.argv[1:] if argv is None else argv), runner).run()
    return run_cli(body)


if __name__ == '__main__':
    sys.exit(main())
