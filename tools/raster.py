"""Just enough drawing for figures without an imaging library: lines, boxes and a 3x5 pixel font.

A canvas is a uint8 RGB array [H, W, 3]; (x, y) are column and row, y growing downwards.
"""
import numpy as np

WHITE = (255, 255, 255)
BLACK = (0, 0, 0)
GRAY = (200, 200, 200)
BLUE = (31, 119, 180)
ORANGE = (230, 110, 20)
GREEN = (44, 160, 44)

# Each glyph: 5 rows of 3 columns, '#' = ink. Upper case only (text is upper-cased before drawing).
_GLYPHS = {
    '0': ('###', '#.#', '#.#', '#.#', '###'), '1': ('.#.', '##.', '.#.', '.#.', '###'),
    '2': ('###', '..#', '###', '#..', '###'), '3': ('###', '..#', '.##', '..#', '###'),
    '4': ('#.#', '#.#', '###', '..#', '..#'), '5': ('###', '#..', '###', '..#', '###'),
    '6': ('###', '#..', '###', '#.#', '###'), '7': ('###', '..#', '.#.', '.#.', '.#.'),
    '8': ('###', '#.#', '###', '#.#', '###'), '9': ('###', '#.#', '###', '..#', '###'),
    '.': ('...', '...', '...', '...', '.#.'), '-': ('...', '...', '###', '...', '...'),
    '+': ('...', '.#.', '###', '.#.', '...'), ':': ('...', '.#.', '...', '.#.', '...'),
    '/': ('..#', '..#', '.#.', '#..', '#..'), '=': ('...', '###', '...', '###', '...'),
    '(': ('.#.', '#..', '#..', '#..', '.#.'), ')': ('.#.', '..#', '..#', '..#', '.#.'),
    ' ': ('...',) * 5,
    'A': ('.#.', '#.#', '###', '#.#', '#.#'), 'B': ('##.', '#.#', '##.', '#.#', '##.'),
    'C': ('###', '#..', '#..', '#..', '###'), 'D': ('##.', '#.#', '#.#', '#.#', '##.'),
    'E': ('###', '#..', '##.', '#..', '###'), 'F': ('###', '#..', '##.', '#..', '#..'),
    'G': ('###', '#..', '#.#', '#.#', '###'), 'H': ('#.#', '#.#', '###', '#.#', '#.#'),
    'I': ('###', '.#.', '.#.', '.#.', '###'), 'J': ('..#', '..#', '..#', '#.#', '###'),
    'K': ('#.#', '#.#', '##.', '#.#', '#.#'), 'L': ('#..', '#..', '#..', '#..', '###'),
    'M': ('#.#', '###', '###', '#.#', '#.#'), 'N': ('##.', '#.#', '#.#', '#.#', '#.#'),
    'O': ('###', '#.#', '#.#', '#.#', '###'), 'P': ('###', '#.#', '###', '#..', '#..'),
    'Q': ('###', '#.#', '#.#', '###', '..#'), 'R': ('##.', '#.#', '##.', '#.#', '#.#'),
    'S': ('###', '#..', '###', '..#', '###'), 'T': ('###', '.#.', '.#.', '.#.', '.#.'),
    'U': ('#.#', '#.#', '#.#', '#.#', '###'), 'V': ('#.#', '#.#', '#.#', '#.#', '.#.'),
    'W': ('#.#', '#.#', '###', '###', '#.#'), 'X': ('#.#', '#.#', '.#.', '#.#', '#.#'),
    'Y': ('#.#', '#.#', '.#.', '.#.', '.#.'), 'Z': ('###', '..#', '.#.', '#..', '###'),
    '_': ('...', '...', '...', '...', '###'),
}
GLYPH_WIDTH, GLYPH_HEIGHT = 3, 5


def canvas(height, width, color=WHITE):
    out = np.empty((height, width, 3), np.uint8)
    out[:] = color
    return out


def put(image, x, y, color):
    """Colours the pixels (x, y) (arrays or scalars) that fall inside the image."""
    x = np.atleast_1d(np.asarray(x, np.int64))
    y = np.atleast_1d(np.asarray(y, np.int64))
    inside = (x >= 0) & (x < image.shape[1]) & (y >= 0) & (y < image.shape[0])
    image[y[inside], x[inside]] = color


def line(image, x0, y0, x1, y1, color, width=1):
    """A straight segment, sampled once per pixel of its longer extent; `width` thickens it downwards."""
    n = int(max(abs(round(x1) - round(x0)), abs(round(y1) - round(y0)))) + 1
    xs = np.round(np.linspace(x0, x1, n))
    ys = np.round(np.linspace(y0, y1, n))
    for d in range(width):
        put(image, xs, ys + d, color)


def polyline(image, xs, ys, color, width=2):
    for k in range(len(xs) - 1):
        line(image, xs[k], ys[k], xs[k + 1], ys[k + 1], color, width)


def box(image, x0, y0, x1, y1, color, fill=False):
    """Rectangle with corners (x0, y0) and (x1, y1) inclusive: outline, or filled."""
    x0, x1 = sorted((int(round(x0)), int(round(x1))))
    y0, y1 = sorted((int(round(y0)), int(round(y1))))
    if fill:
        ys, xs = np.mgrid[y0:y1 + 1, x0:x1 + 1]
        put(image, xs.ravel(), ys.ravel(), color)
        return
    for (a, b, c, d) in ((x0, y0, x1, y0), (x0, y1, x1, y1), (x0, y0, x0, y1), (x1, y0, x1, y1)):
        line(image, a, b, c, d, color)


def text_size(text, scale=2):
    """(width, height) in pixels of `text` drawn at `scale` (one blank column between glyphs)."""
    return (len(text) * (GLYPH_WIDTH + 1) - 1) * scale if text else 0, GLYPH_HEIGHT * scale


def text(image, x, y, string, color=BLACK, scale=2, anchor='left'):
    """Draws `string` with its top at row y; anchor 'left', 'center' or 'right' at column x.

    Characters without a glyph are left blank, so any label is safe to draw.
    """
    string = str(string).upper()
    width, _ = text_size(string, scale)
    if anchor == 'center':
        x -= width // 2
    elif anchor == 'right':
        x -= width
    for k, char in enumerate(string):
        glyph = _GLYPHS.get(char, _GLYPHS[' '])
        left = x + k * (GLYPH_WIDTH + 1) * scale
        for row, pattern in enumerate(glyph):
            for col, ink in enumerate(pattern):
                if ink == '#':
                    box(image, left + col * scale, y + row * scale,
                        left + (col + 1) * scale - 1, y + (row + 1) * scale - 1, color, fill=True)


def nice_ticks(lo, hi, target=5):
    """Round tick values covering [lo, hi]: steps of 1, 2 or 5 times a power of ten."""
    if not np.isfinite(lo) or not np.isfinite(hi):
        return np.array([0.0, 1.0])
    if hi <= lo:
        hi = lo + (abs(lo) or 1.0)
    raw = (hi - lo) / target
    power = 10.0 ** np.floor(np.log10(raw))
    step = next(m * power for m in (1, 2, 5, 10) if m * power >= raw)
    first = np.floor(lo / step + 1e-9) * step
    last = np.ceil(hi / step - 1e-9) * step
    return np.round(np.arange(first, last + step / 2, step), 10)


def tick_label(value, step):
    """'25K' for thousands of steps, enough decimals to tell neighbouring ticks apart otherwise."""
    if step >= 1000 and value % 1000 == 0:
        return '%dK' % (value // 1000)
    if step >= 1:
        return '%d' % round(value)
    decimals = int(np.ceil(-np.log10(step) - 1e-9))
    return '%.*f' % (decimals, value)
