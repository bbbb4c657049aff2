"""MultiMNIST of Sabour et al. (2017), section 6: two digits of different classes overlaid on 36 x 36.

Each 28 x 28 digit is placed on a 36 x 36 canvas (4 pixels of margin on every side), shifted by a
whole number of pixels in [-4, 4] along each axis, and added to a digit of a different class from the
same split; the sum is clipped at 255. NumPy only (no TensorFlow), vectorised: the 55 000 pairs of a
training epoch take well under a second.

    pairs = epoch_pairs(train_images, train_labels, seed, epoch)   # drawn afresh, a function of (seed, epoch)
    test = fixed_pairs(test_images, test_labels, seed)             # the same TEST_PAIRS pairs every time
    singles = on_canvas(test_images)                               # plain digits, centred on 36 x 36

Each returns a `Pairs` (a NamedTuple, so `merged, labels_a, labels_b, digit_a, digit_b = pairs`):
merged uint8 [N, 36, 36], labels_a / labels_b int64 [N] (never equal), digit_a / digit_b uint8
[N, 36, 36], each digit alone on the canvas exactly as it was shifted into `merged` (the targets of
the two reconstructions). `layout` (which images, which shifts) is computed without drawing, for
tests and statistics.

Feeding tf.data (InputPipeline-style: arrays fed into placeholders at each initialisation, nothing
copied into the graph): compute one epoch's arrays before initialising the iterator for that epoch,
and pass `as_feed(pairs)` slices, for example

    pairs = epoch_pairs(images, labels, cfg.seed, epoch)
    ds = tf.data.Dataset.from_tensor_slices(placeholders)     # the dict of as_feed's keys, uint8 / int64
    sess.run(iterator.initializer, {placeholders[k]: v[order] for k, v in as_feed(pairs).items()})

Resuming at epoch e recomputes exactly the pairs of epoch e: no state is carried between calls.
"""
from typing import NamedTuple

import numpy as np

from runtime.errors import UserError

DIGIT_SIDE = 28
CANVAS_SIDE = 36
MAX_SHIFT = 4                                   # the paper: "shifted up to 4 pixels in each direction"
MARGIN = (CANVAS_SIDE - DIGIT_SIDE) // 2        # 4: a centred digit's top-left corner on the canvas
# One pair per test image (each test image is the first digit of exactly one pair). The paper made
# 1 000 per test image (10 M); 10 000 keeps a test pass at the cost of one MNIST test pass, and the
# binomial standard error of an error rate near the paper's 5 % is then 0.22 points. Pass a multiple
# of the test-set size as `count` for a tighter figure: every image is then first digit equally often.
TEST_PAIRS = 10000
# The fixed pairs every MultiMNIST run is validated and tested on (utils.load_multimnist_*): seeds of
# their own, so that neither set depends on --seed and runs stay comparable.
VALIDATION_SEED = 2017
TEST_SEED = 1710
# MNIST digits are size-normalised into a 20 x 20 box centred in the 28 x 28 image; the paper's
# "80 % overlap" is stated for these boxes.
DIGIT_BOX = 20
# Independent random streams, so the fixed test set can never equal some training epoch's draws.
_TRAIN_STREAM, _TEST_STREAM, _SINGLE_STREAM = 0, 1, 2


class PairingError(UserError):
    """A split that cannot make MultiMNIST pairs (one class only, no images, mismatched arrays)."""


class Layout(NamedTuple):
    """What a set of pairs is made of, without the pixels: image indices int64 [N] and shifts
    int64 [N, 2] as (dy, dx) in [-max_shift, max_shift] (positive: down / right)."""
    index_a: np.ndarray
    index_b: np.ndarray
    shift_a: np.ndarray
    shift_b: np.ndarray


class Pairs(NamedTuple):
    merged: np.ndarray      # uint8 [N, 36, 36]: min(digit_a + digit_b, 255)
    labels_a: np.ndarray    # int64 [N]
    labels_b: np.ndarray    # int64 [N], != labels_a everywhere
    digit_a: np.ndarray     # uint8 [N, 36, 36]
    digit_b: np.ndarray     # uint8 [N, 36, 36]


def _rng(seed, stream, *keys):
    # SeedSequence mixes (seed, stream, keys) into independent streams; nothing depends on what was
    # drawn before in this process.
    return np.random.default_rng(np.random.SeedSequence(int(seed) % (2 ** 64),
                                                        spawn_key=(stream,) + tuple(keys)))


def _check_split(images, labels):
    images, labels = np.asarray(images), np.asarray(labels)
    if images.ndim != 3 or images.shape[1:] != (DIGIT_SIDE, DIGIT_SIDE):
        raise PairingError('MultiMNIST needs 28x28 digit images, got an array of shape %s'
                           % (images.shape,))
    if len(images) != len(labels):
        raise PairingError('MultiMNIST got %d images but %d labels; give one label per image'
                           % (len(images), len(labels)))
    classes = np.unique(labels)
    if len(classes) < 2:
        found = 'no images' if not len(labels) else 'only class %s' % classes[0]
        raise PairingError('cannot make MultiMNIST pairs: the split has %s, and each pair needs two '
                           'digits of different classes' % found)
    return images, labels.astype(np.int64)


def partners(labels, index_a, rng):
    """For each image index_a[n], a uniformly drawn image of another class (int64 [N]).

    The images are grouped by class (argsort); for a first digit of class c there are
    len(labels) - count[c] candidates, numbered by skipping class c's block, so one draw per pair
    suffices (no rejection loop) and every candidate is equally likely.
    """
    order = np.argsort(labels, kind='stable')                                # images grouped by class
    classes, start, count = np.unique(labels[order], return_index=True, return_counts=True)
    group = np.searchsorted(classes, labels[index_a])                        # [N] class of each a
    candidates = len(labels) - count[group]                                  # [N] always >= 1
    r = (rng.random(len(index_a)) * candidates).astype(np.int64)             # [N] in [0, candidates)
    position = r + np.where(r >= start[group], count[group], 0)              # skip a's class block
    return order[position]


def _shifts(rng, num, max_shift):
    return rng.integers(-max_shift, max_shift + 1, size=(num, 2))            # [N, 2] (dy, dx)


def epoch_layout(labels, seed, epoch, max_shift=MAX_SHIFT):
    """The pairs of training epoch `epoch`: every image is the first digit of one pair, in index
    order (shuffle with the pipeline's own order), its partner and both shifts drawn from (seed,
    epoch) alone."""
    labels = np.asarray(labels).astype(np.int64)
    rng = _rng(seed, _TRAIN_STREAM, int(epoch))
    index_a = np.arange(len(labels))
    index_b = partners(labels, index_a, rng)
    return Layout(index_a, index_b, _shifts(rng, len(labels), max_shift), _shifts(rng, len(labels), max_shift))


def fixed_layout(labels, seed, count=TEST_PAIRS, max_shift=MAX_SHIFT):
    """`count` test pairs; image n % N is the first digit of pair n, so with count a multiple of N
    every image leads the same number of pairs."""
    labels = np.asarray(labels).astype(np.int64)
    rng = _rng(seed, _TEST_STREAM, int(count))
    index_a = np.arange(count) % len(labels)
    index_b = partners(labels, index_a, rng)
    return Layout(index_a, index_b, _shifts(rng, count, max_shift), _shifts(rng, count, max_shift))


def place(images, shifts):
    """uint8 [N, 28, 28] digits onto zero [N, 36, 36] canvases, moved by shifts [N, 2] (dy, dx)."""
    num = len(images)
    canvas = np.zeros((num, CANVAS_SIDE, CANVAS_SIDE), np.uint8)
    # Every 28 x 28 window of the canvas, [N, 9, 9, 28, 28], as a writable view: one fancy-index
    # assignment writes each digit into its own window (no loop over images). Windows of one canvas
    # overlap in memory, but each canvas is written through a single window.
    windows = np.lib.stride_tricks.sliding_window_view(canvas, (DIGIT_SIDE, DIGIT_SIDE), axis=(1, 2),
                                                       writeable=True)
    top, left = MARGIN + shifts[:, 0], MARGIN + shifts[:, 1]                 # [N] each, in [0, 8]
    windows[np.arange(num), top, left] = images
    return canvas


def merge(digit_a, digit_b):
    """Pixel-wise sum, clipped at 255 rather than wrapped around: the authors' rule (np.add into
    int32, then np.minimum(..., 255), in shift_write_multi_mnist of
    research/capsules/input_data/mnist/mnist_shift.py, tensorflow/models)."""
    return np.minimum(digit_a.astype(np.uint16) + digit_b, 255).astype(np.uint8)


def render(images, labels, layout):
    """The Pairs of a Layout over one split's uint8 [M, 28, 28] images and labels [M]."""
    images, labels = np.asarray(images), np.asarray(labels).astype(np.int64)
    digit_a = place(images[layout.index_a], layout.shift_a)
    digit_b = place(images[layout.index_b], layout.shift_b)
    return Pairs(merge(digit_a, digit_b), labels[layout.index_a], labels[layout.index_b], digit_a, digit_b)


def epoch_pairs(images, labels, seed, epoch, max_shift=MAX_SHIFT):
    """Training pairs of one epoch, a pure function of (images, labels, seed, epoch)."""
    images, labels = _check_split(images, labels)
    return render(images, labels, epoch_layout(labels, seed, epoch, max_shift))


def fixed_pairs(images, labels, seed, count=TEST_PAIRS, max_shift=MAX_SHIFT):
    """The fixed, seeded test (or validation) set: the same `count` pairs for the same seed."""
    images, labels = _check_split(images, labels)
    if count < 1:
        raise PairingError('the MultiMNIST test set needs at least one pair, got count=%d' % count)
    return render(images, labels, fixed_layout(labels, seed, count, max_shift))


def on_canvas(images, max_shift=0, seed=0):
    """Single digits on the 36 x 36 canvas (single-digit accuracy of a MultiMNIST model): centred
    with max_shift=0, else each moved by a seeded shift in [-max_shift, max_shift] per axis."""
    images = np.asarray(images)
    if images.ndim != 3 or images.shape[1:] != (DIGIT_SIDE, DIGIT_SIDE):
        raise PairingError('on_canvas needs 28x28 digit images, got an array of shape %s' % (images.shape,))
    shifts = (_shifts(_rng(seed, _SINGLE_STREAM), len(images), max_shift) if max_shift
              else np.zeros((len(images), 2), np.int64))
    return place(images, shifts)


def as_feed(pairs):
    """The arrays of Pairs under the names an input pipeline feeds: images (the merged input),
    labels_a, labels_b, digit_a, digit_b."""
    return {'images': pairs.merged, 'labels_a': pairs.labels_a, 'labels_b': pairs.labels_b,
            'digit_a': pairs.digit_a, 'digit_b': pairs.digit_b}


def box_overlap(shift_a, shift_b, box=DIGIT_BOX):
    """The paper's notion of overlap, per pair: the area shared by the two digits' nominal box x box
    boxes (centred in each 28 x 28 digit, so offset by shift_b - shift_a) over the area of one box.
    Both boxes have the same size, so this is also the fraction of each box that is covered.
    float [N] in [0, 1]."""
    gap = np.abs(np.asarray(shift_b) - np.asarray(shift_a))                  # [N, 2]
    side = np.clip(box - gap, 0, None)                                       # [N, 2]
    return side[:, 0] * side[:, 1] / float(box * box)


def ink_iou(digit_a, digit_b):
    """Intersection over union of the tight bounding boxes of the nonzero pixels of two canvases
    [N, 36, 36] each, per pair (float [N]); a blank canvas gives 0. Narrow digits (a 1) make this
    smaller than box_overlap."""
    def bounds(canvas):
        rows, cols = canvas.any(axis=2), canvas.any(axis=1)                 # [N, 36] each
        def first_last(mask):
            first = mask.argmax(axis=1)
            last = mask.shape[1] - 1 - mask[:, ::-1].argmax(axis=1)
            return first, last + 1
        (top, bottom), (left, right) = first_last(rows), first_last(cols)
        blank = ~rows.any(axis=1)
        return top, bottom, left, right, blank

    ta, ba, la, ra, blank_a = bounds(np.asarray(digit_a))
    tb, bb, lb, rb, blank_b = bounds(np.asarray(digit_b))
    inter = (np.clip(np.minimum(ba, bb) - np.maximum(ta, tb), 0, None)
             * np.clip(np.minimum(ra, rb) - np.maximum(la, lb), 0, None))
    union = (ba - ta) * (ra - la) + (bb - tb) * (rb - lb) - inter
    iou = inter / np.maximum(union, 1)
    return np.where(blank_a | blank_b, 0.0, iou)
