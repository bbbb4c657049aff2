"""Draw the training curves of a run from its CSVs: loss, and train/validation accuracy.

    python -m tools.plot                         # results/*.csv -> results/curves.png
    python -m tools.plot --results runs/a/results --out curves.png

Safe while training runs: a row still being written (no newline yet) is left out.
"""
import os
import sys

import numpy as np

import config
from runtime import files
from runtime.errors import UserError, run_cli
from tools import raster

WIDTH, HEIGHT = 960, 360
MARGIN_LEFT, MARGIN_RIGHT, MARGIN_TOP, MARGIN_BOTTOM = 64, 16, 32, 44


def read_series(path, column):
    """(steps, values) float arrays of the complete rows of a metrics CSV; empty when it is absent.

    A final line without its newline may be half-written by a running job, so it is skipped; rows
    that do not parse (a crash left a fragment) are skipped too.
    """
    if not os.path.exists(path):
        return np.zeros(0), np.zeros(0)
    with open(path) as f:
        text = f.read()
    lines = text.split('\n')[:-1]  # the last element is '' or an unfinished row
    if not lines:
        return np.zeros(0), np.zeros(0)
    header = lines[0].split(',')
    if header[0] != 'step' or column not in header:
        raise UserError('%s has header %r; expected step,%s' % (path, lines[0], column))
    index = header.index(column)
    steps, values = [], []
    for line in lines[1:]:
        fields = line.split(',')
        if len(fields) != len(header):
            continue
        try:
            step, value = float(fields[0]), float(fields[index])
        except ValueError:
            continue
        steps.append(step)
        values.append(value)
    return np.array(steps), np.array(values)


class Panel:
    """One chart: a data rectangle inside an image region, mapping (step, value) to pixels."""

    def __init__(self, image, left, top, right, bottom, x_range, y_range):
        self.image = image
        self.left, self.top = left + MARGIN_LEFT, top + MARGIN_TOP
        self.right, self.bottom = right - MARGIN_RIGHT, bottom - MARGIN_BOTTOM
        self.x_ticks = raster.nice_ticks(*x_range)
        self.y_ticks = raster.nice_ticks(*y_range)
        self.x_lo, self.x_hi = self.x_ticks[0], self.x_ticks[-1]
        self.y_lo, self.y_hi = self.y_ticks[0], self.y_ticks[-1]

    def to_pixels(self, x, y):
        px = self.left + (np.asarray(x) - self.x_lo) / (self.x_hi - self.x_lo) * (self.right - self.left)
        py = self.bottom - (np.asarray(y) - self.y_lo) / (self.y_hi - self.y_lo) * (self.bottom - self.top)
        return px, py

    def draw_axes(self, title, x_label='step'):
        img = self.image
        x_step = self.x_ticks[1] - self.x_ticks[0]
        y_step = self.y_ticks[1] - self.y_ticks[0]
        for x in self.x_ticks:
            px, _ = self.to_pixels(x, self.y_lo)
            raster.line(img, px, self.top, px, self.bottom, raster.GRAY)
            raster.line(img, px, self.bottom, px, self.bottom + 4, raster.BLACK)
            raster.text(img, int(px), self.bottom + 8, raster.tick_label(x, x_step), anchor='center')
        for y in self.y_ticks:
            _, py = self.to_pixels(self.x_lo, y)
            raster.line(img, self.left, py, self.right, py, raster.GRAY)
            raster.line(img, self.left - 4, py, self.left, py, raster.BLACK)
            raster.text(img, self.left - 8, int(py) - 5, raster.tick_label(y, y_step), anchor='right')
        raster.box(img, self.left, self.top, self.right, self.bottom, raster.BLACK)
        raster.text(img, (self.left + self.right) // 2, self.top - 20, title, anchor='center')
        raster.text(img, (self.left + self.right) // 2, self.bottom + 26, x_label, anchor='center')

    def draw_series(self, steps, values, color, markers=False):
        px, py = self.to_pixels(steps, values)
        raster.polyline(self.image, px, py, color)
        if markers or len(steps) == 1:
            for x, y in zip(px, py):
                raster.box(self.image, x - 2, y - 2, x + 2, y + 2, color, fill=True)

    def legend(self, entries):
        """Colour swatches and names in the corner of the panel with the least ink under them."""
        width, height = 140, 16 * len(entries) + 4
        corners = [(self.right - width - 4, self.bottom - height - 4), (self.left + 8, self.bottom - height - 4),
                   (self.right - width - 4, self.top + 6), (self.left + 8, self.top + 6)]

        def ink(corner):
            x, y = corner
            region = self.image[y:y + height, x:x + width]
            return np.sum(np.any(region != np.array(raster.WHITE, np.uint8), axis=-1)
                          & np.any(region != np.array(raster.GRAY, np.uint8), axis=-1))

        x, y = min(corners, key=ink)
        raster.box(self.image, x, y, x + width, y + height, raster.WHITE, fill=True)
        for name, color in entries:
            raster.line(self.image, x + 6, y + 8, x + 26, y + 8, color, width=3)
            raster.text(self.image, x + 32, y + 4, name)
            y += 16


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
    """The two-panel figure as a uint8 [HEIGHT, WIDTH, 3] array. Raises UserError without any data."""
    loss = read_series(os.path.join(results_dir, 'loss.csv'), 'loss')
    train_acc = read_series(os.path.join(results_dir, 'train_acc.csv'), 'train_acc')
    val_acc = read_series(os.path.join(results_dir, 'val_acc.csv'), 'val_acc')
    if not any(len(s[0]) for s in (loss, train_acc, val_acc)):
        raise UserError('no metrics rows in %s (loss.csv, train_acc.csv, val_acc.csv); train first with '
                        'python main.py --results=%s, or pass the --results folder of a run'
                        % (results_dir, results_dir))
    image = raster.canvas(HEIGHT, WIDTH)
    x_range = (0.0, _range(loss[0], train_acc[0], val_acc[0])[1])
    half = WIDTH // 2

    left = Panel(image, 0, 0, half, HEIGHT, x_range, (0.0, _range(loss[1])[1]))
    left.draw_axes('loss (margin + reconstruction)')
    if len(loss[0]):
        left.draw_series(*loss, raster.BLUE)

    right = Panel(image, half, 0, WIDTH, HEIGHT, x_range,
                  _range(train_acc[1], val_acc[1], floor=0.0, ceiling=1.0))
    right.draw_axes('accuracy')
    entries = []
    if len(train_acc[0]):
        right.draw_series(*train_acc, raster.BLUE)
        entries.append(('train', raster.BLUE))
    if len(val_acc[0]):
        right.draw_series(*val_acc, raster.ORANGE, markers=True)
        entries.append(('validation', raster.ORANGE))
    right.legend(entries)
    return image


def build_parser():
    p = config.command_parser('Draw loss and accuracy curves of a run from its CSVs into a PNG.')
    p.add_argument('--results', default='results', help='folder with loss.csv, train_acc.csv, val_acc.csv')
    p.add_argument('--out', default=None, help='PNG to write (default: RESULTS/curves.png)')
    return p


def main(argv=None):
    def body():
        args = build_parser().parse_args(sys.argv[1:] if argv is None else argv)
        out = args.out or os.path.join(args.results, 'curves.png')
        files.write_png(out, draw_curves(args.results))
        print('wrote %s' % out)
    return run_cli(body)


if __name__ == '__main__':
    sys.exit(main())
