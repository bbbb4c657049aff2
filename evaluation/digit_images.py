"""Any PNG/JPEG/GIF/BMP or IDX file -> 28x28 float digits in the MNIST convention (white on black).

MNIST's own preprocessing (LeCun et al.): each digit was scaled, aspect ratio kept, to fit a 20x20
box, then placed in the 28x28 field so that its centre of mass sits at the centre. Measured on the
real test set: the longer side of every digit's bounding box is 20 pixels and the centre of mass
is at row 14.0, column 14.0 (+-0.3, i.e. integer shifts). `fit_mnist` does the same.

Fits (the `fit` argument):
  auto    28x28 images are used as they are (they already are MNIST-sized); other sizes: mnist.
  mnist   subtract the background (the median), crop to the ink, scale the longer side to 20,
          centre the centre of mass at (14, 14).
  resize  pad to a square with the background value, then scale the whole image to 28x28
          (for images already framed like MNIST, only larger).

Decoding and resizing use TensorFlow ops (no imaging library) in a private graph and session, so
this works whether or not eager execution is on.
"""
import gzip
import io

import numpy as np
import tensorflow as tf

from runtime.errors import UserError

tf1 = tf.compat.v1

SIZE = 28
BOX = 20           # the longer side of the digit's bounding box
CENTRE = 14.0      # row and column of the centre of mass, in pixel indices
INK_THRESHOLD = 0.2  # ink (after background removal, in [0, 1]) that counts for the bounding box
FITS = ('auto', 'mnist', 'resize')
IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.gif', '.bmp')
# First bytes of the formats tf.io.decode_image reads; anything else is refused before decoding.
SIGNATURES = {b'\x89PNG\r\n\x1a\n': 'PNG', b'\xff\xd8\xff': 'JPEG', b'GIF87a': 'GIF', b'GIF89a': 'GIF',
              b'BM': 'BMP'}
# Luma weights of ITU-R BT.601, as tf.image.rgb_to_grayscale uses.
LUMA = np.array([0.299, 0.587, 0.114])


class ImageError(UserError):
    """A file that cannot be made into a digit image; the caller reports it and goes on."""


class NotImages(ImageError):
    """A readable file that holds no images (an IDX label file): the caller skips it with a note."""


def idx_dimensions(raw):
    """The number of dimensions of an IDX file of unsigned bytes, gzipped or not; None for other files."""
    if raw[:2] == b'\x1f\x8b':
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as f:
                raw = f.read(4)
        except (OSError, EOFError):
            return None
    if len(raw) < 4 or raw[:3] != b'\x00\x00\x08':
        return None
    return raw[3]


def is_idx(raw):
    """True for IDX files of unsigned bytes with 3 dimensions (images), gzipped or not."""
    return idx_dimensions(raw) == 3


def image_format(raw):
    """'PNG', 'JPEG', 'GIF' or 'BMP' from the file's first bytes; None for anything else."""
    for signature, kind in SIGNATURES.items():
        if raw.startswith(signature):
            return kind
    return None


def to_gray(pixels):
    """uint8 [H, W, C] (C = 1 gray, 2 gray+alpha, 3 RGB, 4 RGBA) -> float [H, W] in [0, 1].

    Transparent pixels become white paper, as a browser shows them on a white page.
    """
    pixels = np.asarray(pixels, np.float64) / 255.0
    channels = pixels.shape[-1]
    colour = pixels[..., :3] @ LUMA if channels >= 3 else pixels[..., 0]
    if channels in (2, 4):
        alpha = pixels[..., -1]
        colour = colour * alpha + (1.0 - alpha)
    return colour


def looks_inverted(gray):
    """True when the border is mostly light: dark ink on light paper, the opposite of MNIST."""
    border = np.concatenate([gray[0], gray[-1], gray[:, 0], gray[:, -1]])
    return float(np.mean(border)) > 0.5


class DigitReader:
    """Reads image files into [N, 28, 28] float digits; one private TF graph for decode and resize."""

    def __init__(self, fit='auto', invert=None):
        # invert: True or False forces it; None inverts image files that look like dark ink on light
        # paper. IDX files are MNIST-style by definition and are inverted only when forced.
        if fit not in FITS:
            raise UserError('unknown fit %r; choose one of: %s' % (fit, ', '.join(FITS)))
        self.fit, self.invert = fit, invert
        graph = tf.Graph()
        with graph.as_default():
            self._contents = tf1.placeholder(tf.string, [])
            self._decoded = tf.io.decode_image(self._contents, expand_animations=False)  # [H, W, C] uint8
            self._image = tf1.placeholder(tf.float32, [None, None])
            self._size = tf1.placeholder(tf.int32, [2])
            # Shrinking averages the pixels each output pixel covers (area), so a large photo's thin
            # strokes survive; enlarging a small image interpolates (bilinear).
            image = self._image[..., None]
            self._shrunk = tf.image.resize(image, self._size, method='area')[..., 0]
            self._enlarged = tf.image.resize(image, self._size, method='bilinear')[..., 0]
        graph.finalize()
        self._sess = tf1.Session(graph=graph, config=tf1.ConfigProto(device_count={'GPU': 0}))

    def close(self):
        self._sess.close()

    def read(self, path):
        """(digits float [N, 28, 28] in [0, 1], notes [str], is_idx) of one file; ImageError if it cannot."""
        try:
            with open(path, 'rb') as f:
                raw = f.read()
        except OSError as e:
            raise ImageError('cannot read (%s)' % (e.strerror or type(e).__name__)) from None
        dimensions = idx_dimensions(raw)
        if dimensions == 3:
            return self._from_idx(path)
        if dimensions == 1:
            raise NotImages('IDX labels (idx1), not images: skipped; its images are the idx3 file beside it')
        kind = image_format(raw)
        if kind is None:
            raise ImageError('not a PNG, JPEG, GIF, BMP or IDX image file')
        try:
            pixels = self._sess.run(self._decoded, {self._contents: raw})
        except tf.errors.InvalidArgumentError as e:
            raise ImageError('corrupt %s image (%s)' % (kind, _decoder_reason(e.message))) from None
        gray = to_gray(pixels)
        notes = []
        invert = self.invert
        if invert is None:  # auto: MNIST is light ink on dark, so a light border means a scan of paper
            invert = looks_inverted(gray)
            if invert:
                notes.append('looks like dark ink on light paper: inverted it (--invert=False keeps it as is)')
        if invert:
            gray = 1.0 - gray
        return self.fit_digit(gray)[None], notes, False

    def _from_idx(self, path):
        import utils  # the checked IDX reader of the training data
        try:
            images = utils.read_idx(path, 3)
        except UserError as e:
            raise ImageError('bad IDX file: %s' % str(e).split(';')[0]) from None
        gray = images.astype(np.float64) / 255.0
        if self.invert:
            gray = 1.0 - gray
        digits = np.stack([self.fit_digit(g) for g in gray]) if len(gray) else np.zeros((0, SIZE, SIZE))
        return digits, [], True

    def fit_digit(self, gray):
        """float [H, W] (white ink on black) -> float [28, 28] by this reader's fit."""
        if self.fit == 'resize':
            return self._fit_resize(gray)
        if self.fit == 'auto' and gray.shape == (SIZE, SIZE):
            return gray.copy()
        return self._fit_mnist(gray)

    def _resize(self, image, height, width):
        op = self._shrunk if height <= image.shape[0] and width <= image.shape[1] else self._enlarged
        out = self._sess.run(op, {self._image: image, self._size: [height, width]})
        return np.clip(out, 0.0, 1.0)

    def _fit_resize(self, gray):
        h, w = gray.shape
        side = max(h, w)
        square = np.full((side, side), np.median(gray))
        top, left = (side - h) // 2, (side - w) // 2
        square[top:top + h, left:left + w] = gray
        return self._resize(square, SIZE, SIZE)

    def _fit_mnist(self, gray):
        ink = remove_background(gray)
        rows = np.flatnonzero((ink >= INK_THRESHOLD).any(axis=1))
        cols = np.flatnonzero((ink >= INK_THRESHOLD).any(axis=0))
        if len(rows) == 0:
            return np.zeros((SIZE, SIZE))  # a blank page stays blank
        crop = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]
        h, w = crop.shape
        scale = BOX / max(h, w)
        patch = self._resize(crop, max(1, round(h * scale)), max(1, round(w * scale)))
        return centre_by_mass(patch)


def _decoder_reason(message):
    """The decoder's own words ('Invalid PNG. ...') out of a multi-line graph-execution message."""
    lines = [line.strip() for line in message.split('\n')]
    skip = ('[[', 'Node:', 'File ', 'Detected at', 'Graph execution')
    reasons = [line for line in lines if line and not line.startswith(skip)]
    return reasons[-1][:120] if reasons else 'the decoder refused it'


def remove_background(gray):
    """Ink in [0, 1]: the median (the paper, as most pixels are) goes to 0, the brightest ink to 1."""
    background, peak = np.median(gray), gray.max()
    if peak - background < 1e-6:
        return np.zeros_like(gray)
    return np.clip((gray - background) / (peak - background), 0.0, 1.0)


def centre_by_mass(patch):
    """Places patch [h, w] (h, w <= 20) in a black 28x28 field with its centre of mass at (14, 14)."""
    h, w = patch.shape
    total = patch.sum()
    if total <= 0:
        cy, cx = (h - 1) / 2.0, (w - 1) / 2.0
    else:
        cy = (patch.sum(axis=1) @ np.arange(h)) / total
        cx = (patch.sum(axis=0) @ np.arange(w)) / total
    # Integer shifts, as MNIST's; clipped so the whole patch stays inside the field.
    top = int(np.clip(round(CENTRE - cy), 0, SIZE - h))
    left = int(np.clip(round(CENTRE - cx), 0, SIZE - w))
    field = np.zeros((SIZE, SIZE))
    field[top:top + h, left:left + w] = patch
    return field
