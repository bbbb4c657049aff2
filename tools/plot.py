"""Draw the training curves of a run from its CSVs: loss, and train/validation accuracy.

    python -m tools.plot                         # results/*.csv -> results/curves.png
    python -m tools.plot --results runs/a/results --out curves.png

Safe while training runs: a row still being written (no newline yet) is left out.
"""
import os
import sys

import matplotlib
import numpy as np
# Figure without pyplot: no global state, no display; savefig renders with Agg.
from matplotlib.figure import Figure

from runtime import cli, files
from runtime.errors import UserError, run_cli

FIGSIZE = (10.0, 4.0)          # inches: two panels side by side
DPI = 120                      # 1200 x 480 pixels
WIDTH, HEIGHT = int(FIGSIZE[0] * DPI), int(FIGSIZE[1] * DPI)
# The first two colours of matplotlib's default cycle, fixed so that a test can find the curves.
BLUE, ORANGE = '#1f77b4', '#ff7f0e'
STYLE = {'font.size': 11, 'axes.titlesize': 12, 'axes.labelsize': 11, 'legend.fontsize': 10,
         'axes.spines.top': False, 'axes.spines.right': False, 'axes.grid': True, 'grid.alpha': 0.3,
         'lines.linewidth': 2.0}


def read_series(path, column):
    """(steps, values) float arrays of the complete rows of a metrics CSV; empty when it is absent.

    Rows come from runtime.files.read_rows (a half-written last row is left out); a row whose
    numbers do not parse is skipped too.
    """
    header, rows = files.read_rows(path)
    if not header:
        return np.zeros(0), np.zeros(0)
    if header[0] != 'step' or column not in header:
        raise UserError('%s has header %r; expected step,%s' % (path, ','.join(header), column))
    index = header.index(column)
    steps, values = [], []
    for fields in rows:
        try:
            step, value = float(fields[0]), float(fields[index])
        except ValueError:
            continue
        steps.append(step)
        values.append(value)
    return np.array(steps), np.array(values)


def _range(*arrays, floor=None, ceiling=None):
    """(lo, hi) of all values, widened when flat (one row so far) and kept inside [floor, ceiling]."""
    values = np.concatenate([a for a in arrays if len(a)]) if any(len(a) for a in arrays) else np.zeros(1)
    lo, hi = float(values.min()), float(values.max())
    if hi - lo < 1e-6:
        lo, hi = lo - 0.05 * max(abs(lo), 1.0), hi + 0.05 * max(abs(hi), 1.0)
    if floor is not None:
        lo = max(lo, floor)
    if ceiling is not None:
        hi = min(hi, ceiling)
    return lo, hi


def draw_curves(results_dir):
    """The two-panel figure (a matplotlib Figure, not yet saved). Raises UserError without any data."""
    loss = read_series(os.path.join(results_dir, 'loss.csv'), 'loss')
    train_acc = read_series(os.path.join(results_dir, 'train_acc.csv'), 'train_acc')
    val_acc = read_series(os.path.join(results_dir, 'val_acc.csv'), 'val_acc')
    if not any(len(s[0]) for s in (loss, train_acc, val_acc)):
        raise UserError('no metrics rows in %s (loss.csv, train_acc.csv, val_acc.csv); train first with '
                        'python main.py --results=%s, or pass the --results folder of a run'
                        % (results_dir, results_dir))
    last_step = _range(loss[0], train_acc[0], val_acc[0])[1]
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=FIGSIZE, layout='constrained')
        loss_axes, accuracy_axes = figure.subplots(1, 2)

        # A single row so far is a point: a marker makes it visible.
        loss_axes.plot(*loss, color=BLUE, marker='o' if len(loss[0]) == 1 else None)
        loss_axes.set(title='loss (margin + reconstruction)', xlabel='step', ylabel='loss',
                      xlim=(0, last_step * 1.02), ylim=(0, _range(loss[1])[1] * 1.05))

        if len(train_acc[0]):
            accuracy_axes.plot(*train_acc, color=BLUE, label='train (batch)',
                               marker='o' if len(train_acc[0]) == 1 else None)
        if len(val_acc[0]):
            accuracy_axes.plot(*val_acc, color=ORANGE, marker='o', markersize=4, label='validation')
        low, high = _range(train_acc[1], val_acc[1], floor=0.0, ceiling=1.0)
        margin = 0.03 * (high - low)
        accuracy_axes.set(title='accuracy', xlabel='step', ylabel='accuracy', xlim=(0, last_step * 1.02),
                          ylim=(max(0.0, low - margin), high + margin))
        if accuracy_axes.lines:
            accuracy_axes.legend(loc='best')
    return figure


def build_parser():
    p = cli.command_parser('Draw loss and accuracy curves of a run from its CSVs into a PNG.', 'python -m tools.plot')
    p.add_argument('--results', default='results', help='folder with loss.csv, train_acc.csv, val_acc.csv')
    p.add_argument('--out', default=None, help='PNG to write (default: RESULTS/curves.png)')
    return p


def main(argv=None):
    def body():
        args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
        out = args.out or os.path.join(args.results, 'curves.png')
        files.write_figure(out, draw_curves(args.results), DPI)
        print('wrote %s' % out)
    return run_cli(body)


if __name__ == '__main__':
    sys.exit(main())
