"""Files the project writes: atomic writes, the metric CSVs and PNGs (through matplotlib). No TensorFlow here."""
import contextlib
import io
import json
import os

import numpy as np

from runtime.errors import UserError


@contextlib.contextmanager
def naming_the_file(path):
    """Adds the file name to an OSError that lacks it: a write that fills the disk fails in write() or
    flush(), whose errors name no file, and the user's one-line message must say which file it was."""
    try:
        yield
    except OSError as e:
        if e.filename is not None or e.errno is None:
            raise
        raise OSError(e.errno, e.strerror, path) from None


class CsvLog:
    """A metrics CSV such as results/val_acc.csv with header `step,val_acc`; rows flushed at once."""

    def __init__(self, path, header):
        self.path = path
        self.header = header
        os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
        if not os.path.exists(path) or os.path.getsize(path) == 0:
            atomic_write(path, header + '\n')

    def append(self, step, *values):
        with naming_the_file(self.path), open(self.path, 'a') as f:
            f.write(','.join([str(int(step))] + ['%.6g' % v for v in values]) + '\n')
            f.flush()

    def rows(self):
        """Complete rows as lists of strings (a line cut short by a crash is ignored)."""
        return read_rows(self.path, len(self.header.split(',')))[1]

    def truncate_after(self, step):
        """Drops rows past `step` (written after the checkpoint a resumed run restarts from)."""
        kept = [r for r in self.rows() if _is_int(r[0]) and int(r[0]) <= step]
        atomic_write(self.path, self.header + '\n' + ''.join(','.join(r) + '\n' for r in kept))


def read_rows(path, width=None):
    """(header fields, complete rows) of a metrics CSV, every field a string; ([], []) when it is absent.

    The one reader of the project's CSVs, for training's resume, the curves and the records: a final
    line without its newline may be half-written by a running job, and a row of another width is a
    fragment a crash left, so both are left out. width defaults to the header's.
    """
    try:
        with open(path) as f:
            lines = f.read().split('\n')
    except FileNotFoundError:
        return [], []
    if len(lines) < 2:
        return [], []  # not even a complete header line
    header = lines[0].split(',')
    width = len(header) if width is None else width
    # The last element is '' after a complete final line, or a fragment after a crash.
    return header, [line.split(',') for line in lines[1:-1] if len(line.split(',')) == width]


def _is_int(text):
    try:
        int(text)
        return True
    except ValueError:
        return False


def atomic_write(path, data):
    """Writes str or bytes to path through a temp file and os.replace: never a half-written file."""
    os.makedirs(os.path.dirname(path) or '.', exist_ok=True)
    tmp = path + '.tmp'
    with naming_the_file(path), open(tmp, 'wb' if isinstance(data, bytes) else 'w') as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def displayable(images):
    """[N, H, W, C] images as write_pixels draws them: gray [N, H, W] for C = 1, and for 2 channels
    (a stereo pair) the first; RGB stays [N, H, W, 3]. [N, H, W] is returned as it is."""
    images = np.asarray(images)
    if images.ndim == 4 and images.shape[-1] != 3:
        return images[..., 0]
    return images


def image_grid(images, columns):
    """Tiles [N, H, W] (or RGB [N, H, W, 3]) images into one [rows * H, columns * W(, 3)] array
    (missing cells stay black)."""
    images = displayable(images)
    n, h, w = images.shape[:3]
    rows = -(-n // columns)
    grid = np.zeros((rows * h, columns * w) + images.shape[3:], images.dtype)
    for k in range(n):
        r, c = divmod(k, columns)
        grid[r * h:(r + 1) * h, c * w:(c + 1) * w] = images[k]
    return grid


def to_uint8(images):
    """Floats in [0, 1] -> uint8 pixels."""
    return np.clip(np.round(np.asarray(images) * 255.0), 0, 255).astype(np.uint8)


def write_pixels(path, pixels):
    """Writes a uint8 [H, W] (gray) or [H, W, 3] (RGB) array as a PNG of exactly H x W pixels, atomically.

    For raw image grids (digits, reconstructions); charts go through write_figure.
    """
    import matplotlib.image  # imported here: only the commands that write images pay for it
    pixels = np.asarray(pixels, np.uint8)
    if pixels.ndim == 2:
        # An RGB array is stored as it is; a 2-D one would go through a colour map and lose exactness.
        pixels = np.repeat(pixels[..., None], 3, axis=2)
    buffer = io.BytesIO()
    matplotlib.image.imsave(buffer, pixels, format='png')
    atomic_write(path, buffer.getvalue())


def write_figure(path, figure, dpi):
    """Renders a matplotlib Figure (Agg) to a PNG at `dpi` dots per inch, atomically.

    No 'Software' text chunk (it names the matplotlib version): the same data and the same
    matplotlib give the same bytes, so a committed figure redrawn on a clean checkout shows no diff.
    """
    buffer = io.BytesIO()
    figure.savefig(buffer, format='png', dpi=dpi, metadata={'Software': None})
    atomic_write(path, buffer.getvalue())


def read_json(path, default, fix):
    """The JSON in path; `default` when there is no such file; a one-line UserError saying `fix` when
    it cannot be read or parsed."""
    try:
        with open(path) as f:
            return json.load(f)
    except FileNotFoundError:
        return default
    except (OSError, ValueError) as e:
        raise UserError('cannot read %s (%s); %s' % (path, type(e).__name__, fix)) from None
