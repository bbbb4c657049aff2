"""Run records kept in the repository, their learning curves, and the results tables drawn from them.

    python -m tools.report --collect RUN_FOLDER --as paper/seed1   # copy a run's small records in
    python -m tools.report                                         # redraw the figure, rewrite the tables
    python -m tools.report --check                                 # exit 1 if the docs lag the records

A run's folder (OUT/seedN of tools.reproduce) holds checkpoints too large to commit and records small
enough to: its metric CSVs, run.json, flags.json, best.json and tested.json. --collect copies those
into docs/results/NAME/ with machine paths made neutral, so the results survive the machine, and
refuses to replace a record by one with fewer rows (a stale copy, or another run by mistake).

The figure (docs/figures/paper_val_curves.png) and the tables between the marker comments
`<!-- results:NAME begin -->` and `<!-- results:NAME end -->` of README.md and docs/results.md are
made from the committed records alone, so the same command on a clean checkout changes nothing.
"""
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
DOCS = ('README.md', os.path.join('docs', 'results.md'))
CSV_NAMES = ('val_acc.csv', 'loss.csv', 'train_acc.csv')
# Record file -> where it is in a run's folder.
SOURCES = {'val_acc.csv': 'results/val_acc.csv', 'loss.csv': 'results/loss.csv',
           'train_acc.csv': 'results/train_acc.csv', 'run.json': 'run.json',
           'flags.json': 'logdir/flags.json', 'best.json': 'logdir/best/best.json',
           'tested.json': 'tested.json'}
# Hand-written beside the collected files and never replaced by --collect: what a record cannot say
# about itself (a label, where transcribed numbers came from, the hardware of an old record).
ABOUT = 'about.json'
TRAINING_IMAGES = {'mnist': 60000, 'fashion-mnist': 60000}
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
    for name in CSV_NAMES:
        last += series(os.path.join(folder, name))[0][-1:]
    record['steps'] = max(last)
    return record


def load_group(group, root=provenance.ROOT):
    """The records of docs/results/GROUP: the seeds' folders (seedN) first by seed, then the others."""
    base = os.path.join(root, RECORDS, group)
    names = sorted(n for n in os.listdir(base) if os.path.isdir(os.path.join(base, n))) if os.path.isdir(base) else []
    records = [load_record(os.path.join(base, n)) for n in names]
    return sorted(records, key=lambda r: (r['seed'] is None, r['seed'] or 0, r['name']))


# ---------------------------------------------------------------------------------------------------
# Tables

def percent(x):
    return '-' if x is None else '%.2f %%' % (100 * x)


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


def results_table(records):
    lines = ['| run | epochs | precision | hardware | best val (step) | test, val-selected | test, final |',
             '|---|---|---|---|---|---|---|']
    seeds = [r for r in records if r['seed'] is not None]
    others = [r for r in records if r['seed'] is None]
    for r in seeds:
        lines.append(table_row(r))
    if seeds:
        lines.append('| **mean ± sd over seeds** | | | | %s | %s | %s |' % (
            reproduce.mean_sd([s['best'].get('val_acc') for s in seeds], ' %'),
            reproduce.mean_sd([(tests_of(s)[0] or {}).get('test_acc') for s in seeds], ' %'),
            reproduce.mean_sd([(tests_of(s)[1] or {}).get('test_acc') for s in seeds], ' %')))
    # Other runs of the preset (an earlier precision, a transcribed record) after the mean, not in it.
    lines += [table_row(r) for r in others]
    return '\n'.join(lines) + '\n'


def table_row(r):
    selected, final = tests_of(r)
    label = r['about'].get('label') or ('seed %d' % r['seed'])
    planned = r['flags'].get('epoch')
    epochs = '%.1f%s (%s steps)' % (r['steps'] / r['steps_per_epoch'], ' of %d' % planned if planned else '',
                                    thousands(r['steps']))
    best = r['best']
    best_cell = '%s (%s)' % (percent(best['val_acc']), thousands(best['step'])) if best else '-'
    return '| %s | %s | %s | %s | %s | %s | %s |' % (
        label, epochs, r['flags'].get('precision', '-'), hardware_cell(r), best_cell,
        tested_cell(selected), tested_cell(final))


def thousands(n):
    return '{:,}'.format(int(n)).replace(',', ' ')  # as the docs write step numbers: 10 296


def peers_table():
    lines = ['| implementation | MNIST test accuracy | how the number was chosen | source |', '|---|---|---|---|']
    lines += ['| %s | %s | %s | %s |' % row for row in PEERS]
    return '\n'.join(lines) + '\n'


def blocks(root=provenance.ROOT):
    """Marker name -> the Markdown that goes between its markers."""
    return {'paper': results_table(load_group('paper', root)), 'peers': peers_table()}


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
                           'results tables.', 'python -m tools.report')
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
