"""Run records kept in the repository, their learning curves, and the results tables drawn from them.

    python -m tools.report --collect RUN_FOLDER --as paper/seed1   # copy a run's small records in
    python -m tools.report                                         # redraw the figure, rewrite the tables
    python -m tools.report --check                                 # exit 1 if the docs lag the records

A run's folder (OUT/seedN of tools.reproduce) holds checkpoints too large to commit and records small
enough to: its metric CSVs, run.json, flags.json, best.json and tested.json. --collect copies those
into docs/results/NAME/ with machine paths made neutral, so the results survive the machine, and
refuses to replace a record by one with fewer rows (a stale copy, or another run by mistake).

Benchmark records (docs/results/bench/NAME/) are a `python -m benchmarks.bench` CSV as it was written,
with an about.json saying what the CSV cannot (the command, what ran beside it; for older CSVs the
commit and the machine) and, where a lean PyTorch CapsNet was timed beside it, a yardstick.csv.
Robustness records (docs/results/robustness/NAME/) are the robustness.csv of
`python main.py --is_training=False --robustness` with the same kind of about.json.

The figure (docs/figures/paper_val_curves.png) and the tables between the marker comments
`<!-- results:NAME begin -->` and `<!-- results:NAME end -->` of README.md, docs/results.md,
docs/performance.md and docs/research-extras.md are made from the committed records alone, each with
the CPU, precision, commit, command and load of the records it shows, so the same command on a clean
checkout changes nothing.
"""
import csv
import json
import os
import re
import sys

import matplotlib
from matplotlib.figure import Figure

from runtime import cli, files
from runtime.errors import ConfigError, UserError, run_cli
from tools import provenance, reproduce

RECORDS = os.path.join('docs', 'results')
FIGURE = os.path.join('docs', 'figures', 'paper_val_curves.png')
DOCS = ('README.md', os.path.join('docs', 'results.md'), os.path.join('docs', 'performance.md'),
        os.path.join('docs', 'research-extras.md'), os.path.join('docs', 'multimnist.md'))
BENCH_RECORDS = os.path.join(RECORDS, 'bench')
ROBUSTNESS_RECORDS = os.path.join(RECORDS, 'robustness')
CSV_NAMES = ('val_acc.csv', 'loss.csv', 'train_acc.csv')
# Record file -> where it is in a run's folder.
SOURCES = {'val_acc.csv': 'results/val_acc.csv', 'loss.csv': 'results/loss.csv',
           'train_acc.csv': 'results/train_acc.csv', 'run.json': 'run.json',
           'flags.json': 'logdir/flags.json', 'best.json': 'logdir/best/best.json',
           'tested.json': 'tested.json', 'multimnist_test.csv': 'results/multimnist_test.csv'}
# Hand-written beside the collected files and never replaced by --collect: what a record cannot say
# about itself (a label, where transcribed numbers came from, the hardware of an old record).
ABOUT = 'about.json'
# MultiMNIST pairs each training image with another once an epoch: as many pairs as MNIST images.
TRAINING_IMAGES = {'mnist': 60000, 'fashion-mnist': 60000, 'multimnist': 60000}
SEED_FOLDER = re.compile(r'^seed(\d+)$')

# The original CapsNet-Tensorflow script's published validation accuracy, 3 routing iterations:
# naturomics/CapsNet-Tensorflow, results/mnist/3_iter_val_acc.csv (commit a84abb4), every 500 steps
# of batch 128 (its defaults), on 4 992 validation images (39 batches). Steps 0-21 500 are kept: its
# default of 50 epochs at 429 steps an epoch, the length the paper preset trains here.
ORIGINAL_SCRIPT_STEPS_PER_EPOCH = 429
ORIGINAL_SCRIPT_VAL_ACC = (
    (500, 0.987980769231), (1000, 0.991586538462), (1500, 0.99358974359), (2000, 0.993790064103),
    (2500, 0.994991987179), (3000, 0.994991987179), (3500, 0.994391025641), (4000, 0.994991987179),
    (4500, 0.994791666667), (5000, 0.995192307692), (5500, 0.996394230769), (6000, 0.994190705128),
    (6500, 0.994991987179), (7000, 0.995592948718), (7500, 0.994991987179), (8000, 0.994991987179),
    (8500, 0.994991987179), (9000, 0.994391025641), (9500, 0.994791666667), (10000, 0.994591346154),
    (10500, 0.994991987179), (11000, 0.994190705128), (11500, 0.994991987179), (12000, 0.995592948718),
    (12500, 0.995192307692), (13000, 0.995192307692), (13500, 0.995192307692), (14000, 0.995392628205),
    (14500, 0.995592948718), (15000, 0.994591346154), (15500, 0.994591346154), (16000, 0.994991987179),
    (16500, 0.995192307692), (17000, 0.995392628205), (17500, 0.995192307692), (18000, 0.995592948718),
    (18500, 0.995192307692), (19000, 0.994791666667), (19500, 0.994991987179), (20000, 0.994991987179),
    (20500, 0.994591346154), (21000, 0.995192307692), (21500, 0.994190705128),
)

# Published MNIST test accuracies of the paper and of other implementations, with how each number
# was chosen: most select on the test set itself, which the rows of this project never do.
PEERS = (
    ('the paper (Sabour et al., 2017, Table 1)', '99.75 % (0.25 ± 0.005 % error)',
     'mean ± sd of 3 trials; how the checkpoint was chosen is not stated', 'arXiv:1710.09829'),
    ('the original TF script (naturomics/CapsNet-Tensorflow)', '99.64 %',
     'the best of more than 200 evaluations made while training', 'its README'),
    ('CapsNet-Keras (XifengGuo/CapsNet-Keras)', '99.66 %', 'mean of 3 trials, each selected on the test set',
     'its README'),
    ('CapsNet-MXNet (samsungsds-rnd/capsnet.mxnet)', '99.70 % (0.303 % error; best 0.29 %)',
     'average over trials of the test error, measured on the test set every epoch',
     'apache/mxnet example/capsnet/README.md'),
    ('gram-ai/capsule-networks (PyTorch)', '99.7 %', 'highest test accuracy, at epoch 443 of its training',
     'its README'),
)


# ---------------------------------------------------------------------------------------------------
# Collecting a run's records

def neutral_path(path, run):
    """A path as a record keeps it: 'RUN/...' inside the run's folder, else its last two parts
    ('configs/paper.flags', 'data/mnist'), which name the file without naming the machine."""
    if not os.path.isabs(path):
        return path
    path = os.path.normpath(path)
    if path == run or path.startswith(run + os.sep):
        return os.path.join('RUN', os.path.relpath(path, run)) if path != run else 'RUN'
    return '/'.join(path.split(os.sep)[-2:])


def neutral_value(value, run):
    if isinstance(value, str):
        if os.path.isabs(value):
            return neutral_path(value, run)
        # Commands: every absolute path among their words, also in --flag=/path.
        return re.sub(r'(?:(?<=\s)|(?<=^)|(?<==))/\S+', lambda m: neutral_path(m.group(0), run), value)
    if isinstance(value, list):
        return [neutral_value(v, run) for v in value]
    if isinstance(value, dict):
        return {k: neutral_value(v, run) for k, v in value.items()}
    return value


def size_of(name, text):
    """How much a record holds, to refuse replacing it by less: rows, sessions or tested steps."""
    if text is None:
        return 0
    if name.endswith('.csv'):
        return len(csv_rows_of_text(text))
    data = json.loads(text)
    if name == 'run.json':
        return len(data.get('sessions', []))
    return len(data) if name == 'tested.json' else 1


def csv_rows_of_text(text):
    # The same rule as runtime.files.read_rows: complete lines of the header's width.
    lines = text.split('\n')
    if len(lines) < 2:
        return []
    width = len(lines[0].split(','))
    return [line for line in lines[1:-1] if len(line.split(',')) == width]


def read_text(path):
    try:
        with open(path) as f:
            return f.read()
    except FileNotFoundError:
        return None


def collected_text(name, path, run):
    """The record's text of one run file: complete CSV rows only, JSON with neutral paths."""
    if name.endswith('.csv'):
        header, rows = files.read_rows(path)
        return None if not header else ''.join(','.join(r) + '\n' for r in [header] + rows)
    text = read_text(path)
    if text is None:
        return None
    try:
        data = json.loads(text)
    except ValueError:
        raise UserError('cannot read %s (not JSON); nothing was collected' % path) from None
    return json.dumps(neutral_value(data, run), indent=2, sort_keys=True) + '\n'


def collect(run, name, root=provenance.ROOT):
    """Copies the records of the run folder `run` into RECORDS/name; returns the files that changed."""
    if not re.fullmatch(r'[\w.-]+(/[\w.-]+)*', name) or '..' in name.split('/'):
        raise UserError('--as %r: give a name such as paper/seed1 (letters, digits, . - _ and /)' % name)
    run = os.path.normpath(os.path.abspath(run))
    if not any(os.path.exists(os.path.join(run, src)) for src in SOURCES.values()):
        raise UserError('%s holds no run records (results/val_acc.csv, run.json, logdir/flags.json); give '
                        'the folder of one run, such as OUT/seed1 of tools.reproduce' % run)
    destination = os.path.join(root, RECORDS, name)
    new = {n: collected_text(n, os.path.join(run, src), run) for n, src in SOURCES.items()}
    old = {n: read_text(os.path.join(destination, n)) for n in SOURCES}
    # Every file is checked before any is written: a refusal leaves the record as it was.
    for n in SOURCES:
        if size_of(n, new[n]) < size_of(n, old[n]):
            raise UserError('refusing to replace %s/%s (%d rows) with %d rows from %s: the record has more '
                            'than the run; collect the run it came from, or delete the record first'
                            % (os.path.join(RECORDS, name), n, size_of(n, old[n]), size_of(n, new[n]), run))
    changed = [n for n in SOURCES if new[n] is not None and new[n] != old[n]]
    for n in changed:
        files.atomic_write(os.path.join(destination, n), new[n])
    return changed


# ---------------------------------------------------------------------------------------------------
# Reading the records

def read_json(path, default):
    text = read_text(path)
    if text is None:
        return default
    try:
        return json.loads(text)
    except ValueError:
        raise UserError('cannot read %s (not JSON)' % path) from None


def series(path):
    """(steps, values) of a committed metrics CSV."""
    header, rows = files.read_rows(path)
    pairs = [(int(r[0]), float(r[1])) for r in rows if header[:1] == ['step']]
    return [p[0] for p in pairs], [p[1] for p in pairs]


def load_record(folder):
    flags = read_json(os.path.join(folder, 'flags.json'), {})
    record = {'folder': folder, 'name': os.path.basename(folder), 'flags': flags,
              'best': read_json(os.path.join(folder, 'best.json'), {}),
              'tested': read_json(os.path.join(folder, 'tested.json'), {}),
              'sessions': read_json(os.path.join(folder, 'run.json'), {'sessions': []})['sessions'],
              'about': read_json(os.path.join(folder, ABOUT), {}),
              'val': series(os.path.join(folder, 'val_acc.csv'))}
    seed = SEED_FOLDER.match(record['name'])
    record['seed'] = int(seed.group(1)) if seed else None
    images = record['about'].get('training_images') or TRAINING_IMAGES.get(flags.get('dataset', 'mnist'))
    record['steps_per_epoch'] = (images - int(flags.get('val_size', 5000))) // int(flags.get('batch_size', 128))
    last = [record['about'].get('steps') or 0] + [int(s) for s in record['tested']]
    # A test is of the run's last checkpoint, which may lie past the last metrics row.
    for name in CSV_NAMES + ('multimnist_test.csv',):
        last += series(os.path.join(folder, name))[0][-1:]
    record['steps'] = max(last)
    return record


def planned_seeds(group, root=provenance.ROOT):
    """The seeds docs/results/GROUP/about.json says the group is to have ('seeds'), started or not."""
    return [int(seed) for seed in read_json(os.path.join(root, RECORDS, group, ABOUT), {}).get('seeds', [])]


def load_group(group, root=provenance.ROOT):
    """The records of docs/results/GROUP: the seeds' folders (seedN) first by seed, then the others."""
    base = os.path.join(root, RECORDS, group)
    names = sorted(n for n in os.listdir(base) if os.path.isdir(os.path.join(base, n))) if os.path.isdir(base) else []
    records = [load_record(os.path.join(base, n)) for n in names]
    return sorted(records, key=lambda r: (r['seed'] is None, r['seed'] or 0, r['name']))


# ---------------------------------------------------------------------------------------------------
# Tables

def percent(x, digits=2):
    return '-' if x is None else '%.*f %%' % (digits, 100 * x)


def tested_cell(entry):
    return '-' if not entry else '%s (%d errors)' % (percent(entry['test_acc']), entry['errors'])


def tests_of(record):
    """(val-selected, final) tested.json entries; None for a checkpoint not tested (yet)."""
    tested = record['tested']
    selected = tested.get(str(record['best'].get('step')))
    latest = [int(s) for s, e in tested.items() if e.get('tested_as') == 'latest']
    final = tested[str(max(latest))] if latest else None
    return selected, final


def hardware_cell(record):
    about = record['about']
    if not record['sessions']:
        return about.get('hardware', '-')
    # A session recorded before the machine was parsed holds only 'CPU x cores'; about.json may name
    # what such a string stood for (hardware_names: {recorded string: fuller name}).
    known = about.get('hardware_names', {})
    names = [known.get(s['hardware'], s['hardware']) if 'machine' not in s else s['hardware']
             for s in record['sessions'] if s.get('hardware')]
    return ' / '.join(dict.fromkeys(names)) or '-'


def results_table(records, planned=()):
    """The seeds' rows (those of `planned` not started yet included), their mean ± sd, then the other
    runs; the last column is the training time still needed, at the pace the records measured."""
    lines = ['| run | epochs | precision | hardware | best val (step) | test, val-selected | test, final '
             '| still to train |', '|---|---|---|---|---|---|---|---|']
    seeds = [r for r in records if r['seed'] is not None]
    others = [r for r in records if r['seed'] is None]
    measured = pace(seeds)
    seconds_a_step = measured[0] if measured else None
    started = {r['seed'] for r in seeds}
    rows = [(r['seed'], table_row(r, seconds_a_step)) for r in seeds]
    rows += [(seed, unstarted_row(seed, seeds, seconds_a_step)) for seed in planned if seed not in started]
    lines += [row for _, row in sorted(rows)]
    if seeds:
        # Only finished seeds enter the mean: those whose checkpoints were tested (tools.reproduce tests
        # a seed when its training ends). A seed still training would pull in an early epoch's best.
        finished = [s for s in seeds if tests_of(s)[0]]
        lines.append('| **mean ± sd over finished seeds** | | | | %s | %s | %s | |' % (
            reproduce.mean_sd([s['best'].get('val_acc') for s in finished], ' %'),
            reproduce.mean_sd([tests_of(s)[0]['test_acc'] for s in finished], ' %'),
            reproduce.mean_sd([(tests_of(s)[1] or {}).get('test_acc') for s in finished], ' %')))
    # Other runs of the preset (an earlier precision, a transcribed record) after the mean, not in it.
    lines += [table_row(r, None) for r in others]
    text = '\n'.join(lines) + '\n'
    if measured:
        seconds, hardware, count, steps, dates = measured
        text += ('\nStill to train: at %.2f s a step (start-up and validation included), the pace of the %d '
                 'latest training session%s on %s (%s steps, %s).\n'
                 % (seconds, count, '' if count == 1 else 's', hardware, thousands(steps), dates))
    return text


def pace(records):
    """(seconds a step, hardware, sessions, steps, their dates) of the sessions that ran on the machine of
    the latest session recording the steps it trained; None when no session records them."""
    timed = [s for r in records for s in r['sessions']
             if len(s.get('steps') or ()) == 2 and s['steps'][1] > s['steps'][0] and s.get('wall_s')]
    if not timed:
        return None
    latest = max(timed, key=lambda s: s.get('started', ''))['hardware']
    same = [s for s in timed if s['hardware'] == latest]
    steps = sum(s['steps'][1] - s['steps'][0] for s in same)
    dates = sorted(s.get('started', '?')[:10] for s in same)
    return (sum(s['wall_s'] for s in same) / steps, latest, len(same), steps,
            dates[0] if dates[0] == dates[-1] else '%s to %s' % (dates[0], dates[-1]))


def still_to_train(steps_left, seconds_a_step):
    if steps_left <= 0:
        return 'done'
    if seconds_a_step is None:
        return '%s steps' % thousands(steps_left)
    return '%s steps, about %.1f h' % (thousands(steps_left), steps_left * seconds_a_step / 3600)


def best_cell(r):
    """The run's best validation accuracy and its step, '-' before any validation."""
    best = r['best']
    return '%s (%s)' % (percent(best['val_acc']), thousands(best['step'])) if best else '-'


def planned_steps(r):
    planned = r['flags'].get('epoch')
    return planned * r['steps_per_epoch'] if planned else None


def table_row(r, seconds_a_step):
    selected, final = tests_of(r)
    label = r['about'].get('label') or ('seed %d' % r['seed'])
    planned = r['flags'].get('epoch')
    epochs = '%.1f%s (%s steps)' % (r['steps'] / r['steps_per_epoch'], ' of %d' % planned if planned else '',
                                    thousands(r['steps']))
    total = planned_steps(r)
    left = '-' if r['seed'] is None or total is None else still_to_train(total - r['steps'], seconds_a_step)
    return '| %s | %s | %s | %s | %s | %s | %s | %s |' % (
        label, epochs, r['flags'].get('precision', '-'), hardware_cell(r), best_cell(r),
        tested_cell(selected), tested_cell(final), left)


def unstarted_row(seed, seeds, seconds_a_step):
    """A planned seed with no record yet: the length of the other seeds' runs, all of it still to train."""
    totals = [total for total in map(planned_steps, seeds) if total]
    planned = [r['flags']['epoch'] for r in seeds if r['flags'].get('epoch')]
    epochs = 'not started%s' % (' (0 of %d)' % planned[0] if planned else '')
    left = still_to_train(totals[0], seconds_a_step) if totals else '-'
    return '| seed %d | %s | - | - | - | - | - | %s |' % (seed, epochs, left)


def val_by_epoch(record):
    """{epoch: validation accuracy} of the rows that fall on an epoch's end."""
    per_epoch = record['steps_per_epoch']
    steps, values = record['val']
    return {step // per_epoch: value for step, value in zip(steps, values) if step % per_epoch == 0}


def points(x):
    return '-' if x is None else '%+.2f' % (100 * x)


def precision_table(records):
    """Validation accuracy by epoch of a seed trained in float32 beside the same seed in bfloat16, and
    the spread (max - min) of the bfloat16 seeds at each epoch: whether bfloat16 moves the result by
    more than another seed does. Empty without a float32 run that a bfloat16 seed shares."""
    # A seed's own record, else the longest of its lost attempts (same flags, seed and data order: their
    # epochs are as real as any, only their checkpoints are gone).
    bf16 = {}
    for r in sorted(records, key=lambda r: (r['seed'] is None, -len(r['val'][0]))):
        if r['flags'].get('precision') == 'bfloat16' and r['flags'].get('seed') is not None:
            bf16.setdefault(r['flags']['seed'], val_by_epoch(r))
    f32 = [r for r in records if r['seed'] is None and r['flags'].get('precision') == 'float32'
           and r['flags'].get('seed') in bf16]
    if not f32:
        return ''
    seed, f32_val = f32[0]['flags']['seed'], val_by_epoch(f32[0])
    twin, others = bf16[seed], sorted(s for s in bf16 if s != seed)
    lines = ['| epoch | seed %d, float32 | seed %d, bfloat16 | bfloat16 - float32, points | %s'
             'spread of the bfloat16 seeds, points |' % (seed, seed, ''.join('seed %d, bfloat16 | ' % o
                                                                           for o in others)),
             '|---|---|---|---|%s---|' % ('---|' * len(others))]
    differences, spreads = [], []
    for epoch in sorted(f32_val):
        difference = twin[epoch] - f32_val[epoch] if epoch in twin else None
        seen = [v[epoch] for v in bf16.values() if epoch in v]
        spread = max(seen) - min(seen) if len(seen) > 1 else None
        if difference is not None and spread is not None:
            differences.append(difference)
            spreads.append(spread)
        lines.append('| %d | %s | %s | %s | %s%s |' % (
            epoch, percent(f32_val[epoch]), percent(twin.get(epoch)), points(difference),
            ''.join('%s | ' % percent(bf16[o].get(epoch)) for o in others),
            '-' if spread is None else '%.2f' % (100 * spread)))
    if differences:
        mean_difference = sum(abs(d) for d in differences) / len(differences)
        mean_spread = sum(spreads) / len(spreads)
        lines += ['', 'Over the %d epochs with both (one validation image is 0.02 points): bfloat16 and '
                  'float32 of seed %d differ by %.2f points on average (absolute; bfloat16 higher at %d '
                  'of them), the %d bfloat16 seeds among themselves by %.2f: the change from bfloat16 is '
                  '%s the seed-to-seed spread.' % (
                      len(differences), seed, 100 * mean_difference, sum(d > 0 for d in differences),
                      len(bf16), 100 * mean_spread,
                      'within' if mean_difference <= mean_spread else 'larger than')]
    return '\n'.join(lines) + '\n'


def thousands(n):
    return '{:,}'.format(int(n)).replace(',', ' ')  # as the docs write step numbers: 10 296


def peers_table():
    lines = ['| implementation | MNIST test accuracy | how the number was chosen | source |', '|---|---|---|---|']
    lines += ['| %s | %s | %s | %s |' % row for row in PEERS]
    return '\n'.join(lines) + '\n'


def blocks(root=provenance.ROOT):
    """Marker name -> the Markdown that goes between its markers."""
    benches, paper = load_bench_records(root), load_group('paper', root)
    return {'paper': results_table(paper, planned_seeds('paper', root)), 'peers': peers_table(),
            'speed': speed_table(benches), 'yardstick': yardstick_table(benches),
            'baseline': baseline_table(benches), 'profile': profile_table(benches),
            'layers': layers_table(benches), 'ideas': ideas_table(benches),
            'robustness': robustness_table(load_robustness_records(root)),
            'multimnist': multimnist_table(load_group('multimnist', root)),
            'precision': precision_table(paper)}


# The paper's MultiMNIST figure (section 6, 3 routing iterations, with reconstruction): trained on 60 M
# pairs (1 000 per MNIST training image), tested on 10 M.
PAPER_MULTIMNIST = ('the paper (Sabour et al., 2017, section 6)', '60 M (1 000 per training image)', '5.2 %')


def multimnist_table(records):
    """One row per MultiMNIST run: how many training pairs it saw, its validation-selected step, and the
    latest test of multimnist_test.csv (pair error by the top-2 rule, single-digit accuracy); the paper last."""
    lines = ['| run | training pairs seen | precision | hardware | best val pair accuracy (step) | '
             'test error (step) | single-digit accuracy |', '|---|---|---|---|---|---|---|']
    for r in records:
        header, rows = files.read_rows(os.path.join(r['folder'], 'multimnist_test.csv'))
        test = dict(zip(header, rows[-1])) if rows else None
        seen = r['steps'] * int(r['flags'].get('batch_size', 128))
        lines.append('| %s | %s (%.1f epochs) | %s | %s | %s | %s | %s |' % (
            r['about'].get('label') or r['name'], thousands(seen), r['steps'] / r['steps_per_epoch'],
            r['flags'].get('precision', '-'), hardware_cell(r), best_cell(r),
            '%s (%s of %s pairs; step %s)' % (percent(float(test['pair_error'])), test['pair_errors'],
                                               thousands(test['pairs']), thousands(test['step'])) if test else '-',
            '%s (%s errors)' % (percent(float(test['single_digit_acc'])), test['single_digit_errors'])
            if test else '-'))
    name, pairs, error = PAPER_MULTIMNIST
    lines.append('| %s | %s | - | - | - | %s | - |' % (name, pairs, error))
    return '\n'.join(lines) + '\n'


def rewrite(text, contents, path='the document'):
    """text with the part between each `<!-- results:NAME begin -->` and `... end -->` replaced by
    contents[NAME]; everything outside the markers is kept byte for byte."""
    for name, body in contents.items():
        begin, end = '<!-- results:%s begin -->' % name, '<!-- results:%s end -->' % name
        count = text.count(begin)
        if count == 0 and end not in text:
            continue  # this document does not show that table
        if count != 1 or text.count(end) != 1 or text.index(end) < text.index(begin):
            raise UserError('%s: the markers of the %s table are broken (one %r, then one %r expected)'
                            % (path, name, begin, end))
        start, stop = text.index(begin) + len(begin), text.index(end)
        text = text[:start] + '\n' + body + text[stop:]
    return text


# ---------------------------------------------------------------------------------------------------
# Benchmark and robustness records

def read_csv_records(path):
    """The rows of a benchmark, yardstick or robustness CSV as dicts ([] when absent). These are written
    whole by the csv module, whose fields may be quoted (an idea's name holds a comma), unlike the
    metric CSVs that files.read_rows reads while a run may still be appending to them."""
    try:
        with open(path, newline='') as f:
            return list(csv.DictReader(f))
    except FileNotFoundError:
        return []


def record_folders(base):
    if not os.path.isdir(base):
        return []
    return sorted(os.path.join(base, n) for n in os.listdir(base) if os.path.isdir(os.path.join(base, n)))


def by_date(records):
    """Newest first: the docs lead with the latest measurement, older ones follow for comparison."""
    return sorted(records, key=lambda r: (r['about'].get('date', ''), r['name']), reverse=True)


def load_bench_record(folder):
    rows = read_csv_records(os.path.join(folder, 'bench.csv'))
    about = read_json(os.path.join(folder, ABOUT), {})
    first = rows[0] if rows else {}
    # A CSV written before the benchmark had machine or commit columns leaves them to about.json.
    return {'name': os.path.basename(folder), 'about': about, 'rows': rows,
            'yardstick': read_csv_records(os.path.join(folder, 'yardstick.csv')),
            'precision': first.get('precision', '-'), 'batch_size': first.get('batch_size', '-'),
            'machine': first if first.get('cpu_model') else about.get('machine', {}),
            'commit': first.get('commit') or about.get('commit', 'not recorded'),
            'load_before': first.get('load_before') or about.get('load_before', 'not recorded')}


def load_bench_records(root=provenance.ROOT):
    return by_date(load_bench_record(f) for f in record_folders(os.path.join(root, BENCH_RECORDS)))


def bench_value(record, measurement, implementation):
    """One figure of a benchmark record at the run's batch (float), None when the run did not measure it."""
    for row in record['rows']:
        if (row['measurement'], row['implementation'], row['batch_size']) == (
                measurement, implementation, record['batch_size']):
            return float(row['value'])
    return None


def run_precision(record):
    return [record['precision']]


def measured_precisions(record):
    """The precisions the project was timed in: the run's own, then its fastest-precision run's."""
    fastest = [row['implementation'].split('@', 1)[1] for row in record['rows']
               if row['implementation'].startswith('project@')]
    return list(dict.fromkeys([record['precision']] + fastest))


def project_speed(record, precision):
    """{'train', 'infer', 'matmul', 'train_share', 'infer_share', 'rss'} of the project in one
    precision in one run, or None. The shares are of that precision's matmul rate in the same run,
    from the FLOPs per image the run recorded, so every record gets them by the same rule."""
    own = precision == record['precision']
    implementation = 'project' if own else 'project@' + precision
    train = bench_value(record, 'train_images_per_s', implementation)
    if train is None:
        return None
    infer = bench_value(record, 'infer_images_per_s', implementation)
    matmul = bench_value(record, 'matmul_gflops', precision)
    rss = bench_value(record, 'train_peak_rss_mb' if own else 'peak_rss_mib', implementation)
    # main.py's larger evaluation batch is timed in the run's own precision only.
    large = [(float(row['value']), int(row['batch_size'])) for row in record['rows'] if own
             and (row['measurement'], row['implementation']) == ('infer_images_per_s', 'project')
             and row['batch_size'] != record['batch_size']]
    training_flops = bench_value(record, 'train_flops_per_image', 'model')
    forward_flops = bench_value(record, 'forward_flops_per_image', 'model')

    def share(images_per_s, flops):
        return None if None in (images_per_s, flops, matmul) else images_per_s * flops / 1e9 / matmul
    return {'train': train, 'infer': infer, 'matmul': matmul, 'rss': rss,
            'infer_large_batch': large[0] if large else None,  # (images/s, batch)
            'train_share': share(train, training_flops), 'infer_share': share(infer, forward_flops)}


def number(x, digits=1):
    return '-' if x is None else '%.*f' % (digits, x)


def ratio(a, b):
    return '-' if None in (a, b) else '%.2f×' % (a / b)


def machine_summary(columns):
    """The one line of tools.provenance.summary from a benchmark CSV's machine columns (or an
    about.json 'machine' with the same keys)."""
    family, _, model = (columns.get('family_model') or '').partition('/')
    info = {'cpu_model': columns.get('cpu_model') or 'CPU not recorded', 'cores': int(columns.get('cores') or 0),
            'family': int(family) if family else None, 'model': int(model) if model else None,
            'microarchitecture': columns.get('microarchitecture') or None,
            # The CSV joins the instruction sets with spaces, as the summary does: one item keeps them.
            'isa': [columns['isa']] if columns.get('isa') else [],
            'onednn': {'on': True, 'off': False}.get(columns.get('onednn'))}
    return provenance.summary(info)


def run_label(record):
    return '%s (`%s`)' % (record['about'].get('label', record['name']), record['commit'])


def caption(record, precisions):
    """The line that says where a record's figures come from: CPU and instruction sets, oneDNN,
    precision, commit, command, load and what ran beside it."""
    about = record['about']
    command = '`%s`' % about.get('command', 'command not recorded')
    parts = ['%s: %s' % (run_label(record), machine_summary(record['machine'])),
             'precision %s' % ', then '.join(precisions),
             command + (' (%s)' % about['command_note'] if about.get('command_note') else ''),
             'load average %s before it' % record['load_before']]
    if about.get('model'):
        parts.insert(1, about['model'])
    if about.get('beside'):
        parts.append('beside it %s' % about['beside'])
    if about.get('date'):
        parts.append(about['date'])
    return '- ' + '; '.join(parts) + '.'


def captions(records, precisions_of=measured_precisions, extra=lambda record: ''):
    return '\n'.join(caption(r, precisions_of(r)) + extra(r) for r in records) + '\n'


def batch_of(records):
    return '/'.join(dict.fromkeys(r['batch_size'] for r in records)) or '-'


def speed_table(records):
    """Training and inference images/s of every benchmark record, per precision, with their share of
    that precision's matmul rate."""
    records = [r for r in records if project_speed(r, r['precision'])]
    lines = ['| run | precision | training images/s | inference images/s | inference at a larger batch '
             '| matmul GFLOP/s in that precision | training, share of it | inference, share of it '
             '| peak RSS of training, MiB |', '|---|---|---|---|---|---|---|---|---|']
    for r in records:
        for precision in measured_precisions(r):
            f = project_speed(r, precision)
            large = '%.1f (batch %d)' % f['infer_large_batch'] if f['infer_large_batch'] else '-'
            lines.append('| %s | %s | %s | %s | %s | %s | %s | %s | %s |' % (
                run_label(r), precision, number(f['train']), number(f['infer']), large, number(f['matmul']),
                percent(f['train_share'], 0), percent(f['infer_share'], 0), number(f['rss'], 0)))
    return '\n'.join(lines) + '\n\nBatch %s. Where each row comes from:\n\n' % batch_of(records) + captions(records)


def yardstick_table(records):
    """The project beside the lean PyTorch CapsNet timed right after it, per mode and precision."""
    records = [r for r in records if r['yardstick']]
    lines = ['| run | images/s | project | lean PyTorch | project / PyTorch |', '|---|---|---|---|---|']
    for r in records:
        for row in r['yardstick']:
            speed = project_speed(r, row['precision'])
            mine = speed and speed['train' if row['mode'] == 'training' else 'infer']
            theirs = float(row['images_per_s'])
            lines.append('| %s | %s, %s | %s | %s | %s |' % (run_label(r), row['mode'], row['precision'],
                                                          number(mine), number(theirs), ratio(mine, theirs)))

    def yardstick_caption(r):
        yardstick = r['about'].get('yardstick', {})
        return ' Lean PyTorch: %s, %s, `%s`, %s; load average %s (%s).' % (
            r['yardstick'][0]['implementation'], yardstick.get('what', ''),
            yardstick.get('command', 'command not recorded'), yardstick.get('when', ''),
            '/'.join(dict.fromkeys(y['load'] for y in r['yardstick'])), yardstick.get('load', 'when recorded'))
    return ('\n'.join(lines) + '\n\nBatch %s; `-`: not timed in that run. Where each row comes from:\n\n'
            % batch_of(records) + captions(records, extra=yardstick_caption))


def baseline_table(records):
    """The project beside the tiled-û baseline of benchmarks/reference_layers.py, in the same run."""
    records = [r for r in records if bench_value(r, 'train_images_per_s', 'tiled') is not None]
    lines = ['| run | figure | this project | tiled-û baseline | project / baseline |', '|---|---|---|---|---|']
    for r in records:
        for measurement, label, digits in (('train_images_per_s', 'training images/s', 1),
                                           ('infer_images_per_s', 'inference images/s', 1),
                                           ('train_peak_rss_mb', 'peak RSS of training, MiB', 0)):
            mine, tiled = bench_value(r, measurement, 'project'), bench_value(r, measurement, 'tiled')
            lines.append('| %s | %s | %s | %s | %s |' % (run_label(r), label, number(mine, digits),
                                                         number(tiled, digits), ratio(mine, tiled)))
        pipeline = bench_value(r, 'pipeline_images_per_s', 'tf.data')
        training = bench_value(r, 'train_images_per_s', 'project')
        lines.append('| %s | input pipeline alone, images/s | %s = %s× training | | |' % (
            run_label(r), thousands(pipeline), thousands(pipeline / training)))
        # iter_routing -> seconds; the run's own setting is written twice, with the same value.
        steps = {int(row['iter_routing']): float(row['value']) for row in r['rows']
                 if (row['measurement'], row['implementation']) == ('train_step_s', 'project')}
        lines.append('| %s | training step s, iter_routing %s | %s | | |' % (
            run_label(r), ' / '.join(map(str, sorted(steps))),
            ' / '.join('%.3f' % steps[k] for k in sorted(steps))))
    return ('\n'.join(lines) + '\n\nBatch %s; the baseline runs in float32. Where each row comes from:\n\n'
            % batch_of(records) + captions(records, precisions_of=run_precision))


def profile_table(records):
    """Op types of one traced training step by summed time, a column per profiled record."""
    records = [r for r in records if any(row['measurement'] == 'profile_ms' for row in r['rows'])]
    profiles = [{row['implementation']: float(row['value']) for row in r['rows']
                 if row['measurement'] == 'profile_ms'} for r in records]
    ops = list(dict.fromkeys(op for profile in profiles
                             for op in sorted(profile, key=profile.get, reverse=True)))
    lines = ['| op type | %s |' % ' | '.join('%s, %s' % (run_label(r), r['precision']) for r in records),
             '|---|%s' % ('---|' * len(records))]
    for op in ops:
        cells = ['%.1f ms (%s)' % (p[op], percent(p[op] / sum(p.values()), 1)) if op in p else '-'
                 for p in profiles]
        lines.append('| `%s` | %s |' % (op, ' | '.join(cells)))
    return ('\n'.join(lines) + '\n\nShares are of the summed time of the listed op types (ops overlap, so '
            'the sum can exceed the step). Where each column comes from:\n\n'
            + captions(records, precisions_of=run_precision))


def layers_table(records):
    """The traced training step by layer and pass (bench --profile's profile_layer rows): summed time,
    GFLOP/s, and the share of the run's matmul rate at its precision; a row per record and layer pass."""
    records = [r for r in records if any(row['measurement'] == 'profile_layer_ms' for row in r['rows'])]
    lines = ['| run | layer, pass | time in the traced step | GFLOP/s | share of the matmul rate |',
             '|---|---|---|---|---|']
    for r in records:
        roof = bench_value(r, 'matmul_gflops', r['precision'])
        passes = [row['implementation'] for row in r['rows'] if row['measurement'] == 'profile_layer_ms']
        for name in passes:
            rate = bench_value(r, 'profile_layer_gflops', name)  # None for a pass without FLOPs
            lines.append('| %s | %s | %.1f ms | %s | %s |' % (
                run_label(r), name, bench_value(r, 'profile_layer_ms', name), number(rate),
                percent(rate / roof, 0) if roof and rate else '-'))
    if not records:
        return '\n'.join(lines) + '\n'
    return ('\n'.join(lines) + '\n\nThe times are summed op times of one traced step (ops overlap and run '
            'slower under the tracer), so each rate is a lower bound. Where each run comes from:\n\n'
            + captions(records, precisions_of=run_precision))


PROJECT_IDEA = 'idea: parent-major routing (project)'


def ideas_table(records):
    """The --ideas rows of each record: every idea in its own process, beside the run's project row."""
    records = [r for r in records if any(row['implementation'].startswith('idea: ') for row in r['rows'])]
    lines = ['| run | idea | training images/s | vs project | inference images/s | vs project |',
             '|---|---|---|---|---|---|']
    for r in records:
        ideas = list(dict.fromkeys(row['implementation'] for row in r['rows']
                                   if row['implementation'].startswith('idea: ')))
        # The ratios are to the project's own idea row, as the benchmark prints them: every row then
        # comes from a process of its own started the same way.
        base = PROJECT_IDEA if PROJECT_IDEA in ideas else 'project'
        train, infer = bench_value(r, 'train_images_per_s', base), bench_value(r, 'infer_images_per_s', base)
        own_train = bench_value(r, 'train_images_per_s', 'project')
        own_infer = bench_value(r, 'infer_images_per_s', 'project')
        lines.append('| %s | the project, the run\'s main measurement | %s | %s | %s | %s |' % (
            run_label(r), number(own_train), ratio(own_train, train), number(own_infer), ratio(own_infer, infer)))
        for idea in ideas:
            idea_train = bench_value(r, 'train_images_per_s', idea)
            idea_infer = bench_value(r, 'infer_images_per_s', idea)
            lines.append('| %s | %s | %s | %s | %s | %s |' % (
                run_label(r), idea[len('idea: '):], number(idea_train), ratio(idea_train, train),
                number(idea_infer), ratio(idea_infer, infer)))
    return ('\n'.join(lines) + '\n\nBatch %s. Each idea changes only what its name says, on top of the run\'s own '
            'settings (its precision included). Where each row comes from:\n\n' % batch_of(records)
            + captions(records, precisions_of=run_precision))


def load_robustness_record(folder):
    about = read_json(os.path.join(folder, ABOUT), {})
    return {'name': os.path.basename(folder), 'about': about,
            'rows': read_csv_records(os.path.join(folder, 'robustness.csv')),
            'machine': about.get('machine', {}), 'commit': about.get('commit', 'not recorded'),
            'load_before': about.get('load_before', 'not recorded')}


def load_robustness_records(root=provenance.ROOT):
    return by_date(load_robustness_record(f) for f in record_folders(os.path.join(root, ROBUSTNESS_RECORDS)))


def robustness_table(records):
    """Test accuracy on plain and on affine-warped test images, a row each, per record."""
    lines = ['| model | test images | accuracy (errors) | images | transform |', '|---|---|---|---|---|']
    for r in records:
        for row in r['rows']:
            condition = 'plain' if row['condition'] == 'plain' else '%s-warped (seed %s)' % (
                row['condition'], row['seed'])
            lines.append('| %s | %s | %s | %s | %s |' % (
                run_label(r), condition,
                tested_cell({'test_acc': float(row['accuracy']), 'errors': int(row['errors'])}),
                thousands(row['total']), row['transform']))
    return '\n'.join(lines) + '\n\n' + captions(records, precisions_of=lambda r: [r['about'].get('precision', '-')])


# ---------------------------------------------------------------------------------------------------
# The figure

FIGSIZE, DPI = (8.0, 4.5), 120
STYLE = {'font.size': 11, 'axes.titlesize': 12, 'legend.fontsize': 9, 'axes.spines.top': False,
         'axes.spines.right': False, 'axes.grid': True, 'grid.alpha': 0.3, 'lines.linewidth': 1.8}
ORIGINAL_COLOUR = '#7f7f7f'


def draw_val_curves(records):
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=FIGSIZE, layout='constrained')
        axes = figure.subplots()
        for k, r in enumerate(records):
            steps, values = r['val']
            if not steps:
                continue
            label = r['about'].get('label') or 'seed %d' % r['seed']
            precision = r['flags'].get('precision', '?')
            label += '' if precision in label else ', %s' % precision
            axes.plot([s / r['steps_per_epoch'] for s in steps], [100 * v for v in values], marker='o',
                      markersize=3, label=label, color='C%d' % k, linestyle='-' if r['seed'] is not None else '--')
        axes.plot([s / ORIGINAL_SCRIPT_STEPS_PER_EPOCH for s, _ in ORIGINAL_SCRIPT_VAL_ACC],
                  [100 * v for _, v in ORIGINAL_SCRIPT_VAL_ACC], color=ORIGINAL_COLOUR, linewidth=1.2,
                  label='original TF script, its published curve (routing 3)')
        axes.set(title='MNIST validation accuracy (5 000 images), paper preset', xlabel='epoch',
                 ylabel='validation accuracy %', xlim=(0, 50), ylim=(98.6, 99.8))
        axes.legend(loc='lower right')
    return figure


def regenerate(root=provenance.ROOT):
    """Redraws the figure and rewrites the docs' tables; returns the paths whose content changed."""
    changed = []
    figure_path = os.path.join(root, FIGURE)
    before = read_bytes(figure_path)
    files.write_figure(figure_path, draw_val_curves(load_group('paper', root)), DPI)
    if read_bytes(figure_path) != before:
        changed.append(FIGURE)
    contents = blocks(root)
    for doc in DOCS:
        path = os.path.join(root, doc)
        text = read_text(path)
        new = rewrite(text, contents, doc)
        if new != text:
            files.atomic_write(path, new)
            changed.append(doc)
    return changed


def stale_docs(root=provenance.ROOT):
    """The docs whose tables differ from what the records give (nothing is written)."""
    contents = blocks(root)
    return [doc for doc in DOCS if rewrite(read_text(os.path.join(root, doc)), contents, doc)
            != read_text(os.path.join(root, doc))]


def read_bytes(path):
    try:
        with open(path, 'rb') as f:
            return f.read()
    except FileNotFoundError:
        return None


def build_parser():
    p = cli.command_parser('Collect a run\'s records into docs/results/, draw their curves, rewrite the '
                           'results, speed and robustness tables of the docs from the records.',
                           'python -m tools.report')
    p.add_argument('--collect', metavar='RUN_FOLDER', help='a run\'s folder (OUT/seedN of tools.reproduce)')
    p.add_argument('--as', dest='name', metavar='NAME', help='the record to write: docs/results/NAME, e.g. paper/seed1')
    p.add_argument('--check', action='store_true', help='write nothing; exit 1 when a doc lags the records')
    return p


def main(argv=None, root=provenance.ROOT):
    def body():
        args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
        if args.check:
            stale = stale_docs(root)
            if stale:
                raise UserError('%s differ from the records in %s; run python -m tools.report'
                                % (' and '.join(stale), RECORDS))
            print('the tables agree with the records')
            return 0
        if args.collect or args.name:
            if not (args.collect and args.name):
                raise ConfigError('--collect RUN_FOLDER and --as NAME go together')
            changed = collect(args.collect, args.name, root)
            print('%s: %s' % (os.path.join(RECORDS, args.name),
                              'updated ' + ', '.join(changed) if changed else 'already up to date'))
        changed = regenerate(root)
        print('rewrote %s' % ', '.join(changed) if changed else 'figure and tables already up to date')
        return 0
    return run_cli(body)


if __name__ == '__main__':
    sys.exit(main())
