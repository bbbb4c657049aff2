"""Input and output: IDX files -> checked NumPy arrays -> tf.data batches; CSV rows; PNG grids."""
import gzip
import os
import struct
import zlib

import numpy as np
import tensorflow as tf

from runtime import dataset_files
from runtime.dataset_files import IMAGE_SIZE, NUM_CLASSES
from runtime.errors import UserError

tf1 = tf.compat.v1

IDX_FILES = {
    'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
    'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'),
}
IMAGE_SHAPE = (IMAGE_SIZE, IMAGE_SIZE)
IDX_UBYTE = 0x08


class DataError(UserError):
    pass


def _fix_hint(dataset, path):
    """The command that replaces the file at `path` (in its own folder, which may not be the default)."""
    return 'run: python download_data.py --dataset %s --save_to %s --force' % (dataset,
                                                                              os.path.dirname(path) or '.')


def find_idx_file(data_dir, stem, dataset='mnist'):
    """The .gz file, or the already-decompressed one (`gunzip data/mnist/*.gz`), for `stem` in data_dir."""
    for name in (stem + '.gz', stem):
        path = os.path.join(data_dir, name)
        if os.path.exists(path):
            return path
    raise DataError('missing data file %s.gz in %s; run: python download_data.py --dataset %s --save_to %s'
                    % (stem, data_dir, dataset, data_dir))


def read_idx(path, expected_ndim, dataset='mnist'):
    """Reads an IDX file of unsigned bytes (gzip or raw) into an array, checking the header.

    IDX layout: 2 zero bytes, a type byte (0x08 = ubyte), a byte for the number of dimensions, then
    one big-endian int32 per dimension, then the data in C order.
    """
    try:
        opener = gzip.open if path.endswith('.gz') else open
        with opener(path, 'rb') as f:
            raw = f.read()
    except (OSError, EOFError, zlib.error) as e:
        raise DataError('cannot read %s (%s: truncated or corrupt); %s'
                        % (path, type(e).__name__, _fix_hint(dataset, path))) from None
    if len(raw) < 4:
        raise DataError('%s is too short to be an IDX file; %s' % (path, _fix_hint(dataset, path)))
    zero1, zero2, dtype, ndim = raw[0], raw[1], raw[2], raw[3]
    if zero1 or zero2 or dtype != IDX_UBYTE or ndim != expected_ndim:
        raise DataError('%s has a wrong magic number 0x%s (expected 0x%08x); %s'
                        % (path, raw[:4].hex(), 0x0800 + expected_ndim, _fix_hint(dataset, path)))
    header_size = 4 + 4 * ndim
    if len(raw) < header_size:
        raise DataError('%s is truncated inside its header; %s' % (path, _fix_hint(dataset, path)))
    dims = struct.unpack('>' + 'i' * ndim, raw[4:header_size])
    expected = header_size + int(np.prod(dims))
    if len(raw) != expected:
        raise DataError('%s holds %d bytes but its header %s needs %d (truncated or padded); %s'
                        % (path, len(raw), list(dims), expected, _fix_hint(dataset, path)))
    return np.frombuffer(raw, dtype=np.uint8, offset=header_size).reshape(dims)


def load_split(data_dir, split, dataset='mnist', verify=True):
    """(images uint8 [N, 28, 28], labels uint8 [N]) of the 'train' or 'test' files, checked."""
    image_stem, label_stem = IDX_FILES[split]
    image_path = find_idx_file(data_dir, image_stem, dataset)
    label_path = find_idx_file(data_dir, label_stem, dataset)
    if verify:
        _verify_checksums(dataset, [image_path, label_path])
    images = read_idx(image_path, 3, dataset)
    labels = read_idx(label_path, 1, dataset)
    if images.shape[1:] != IMAGE_SHAPE:
        raise DataError('%s holds %dx%d images, expected 28x28; %s'
                        % (image_path, images.shape[1], images.shape[2], _fix_hint(dataset, image_path)))
    if len(images) != len(labels):
        raise DataError('%s has %d images but %s has %d labels; %s'
                        % (image_path, len(images), label_path, len(labels), _fix_hint(dataset, image_path)))
    if len(labels) and labels.max() >= NUM_CLASSES:
        raise DataError('%s has label %d outside 0-9; %s' % (label_path, labels.max(), _fix_hint(dataset, label_path)))
    return images, labels


def _verify_checksums(dataset, paths):
    for path in paths:
        try:
            # The file's own name says whether it is gzipped or already decompressed.
            dataset_files.verify_file(path, dataset, os.path.basename(path))
        except dataset_files.UnverifiableFile as e:
            raise DataError(str(e)) from None  # already names --verify_data=False
        except dataset_files.DataFileError as e:
            # The message already ends with the download_data.py command that fixes it.
            raise DataError('%s (or pass --verify_data=False for your own files)'
                            % str(e).rstrip('.')) from None


def load_train_val(data_dir, val_size, dataset='mnist', verify=True):
    """Training file split into its first N - val_size images (train) and last val_size (validation)."""
    images, labels = load_split(data_dir, 'train', dataset, verify)
    if val_size >= len(images):
        raise DataError('--val_size=%d leaves no training images (the file has %d)' % (val_size, len(images)))
    cut = len(images) - val_size
    return (images[:cut], labels[:cut]), (images[cut:], labels[cut:])


def epoch_permutation(num_examples, seed, epoch):
    """The data order of one epoch: a pure function of (seed, epoch), so a resumed run replays it."""
    return np.random.RandomState([seed % (2 ** 32), epoch]).permutation(num_examples)


class InputPipeline:
    """A tf.data pipeline over NumPy arrays fed at initialisation (no copy of the data in the graph).

    Each initialise() call starts one pass: shuffled by `order` when given, batched, optionally
    skipping the first batches (to resume mid-epoch), scaled to [0, 1] floats and prefetched.
    With shift_pixels > 0 every image is moved by a random whole number of pixels in
    [-shift_pixels, shift_pixels] along each axis, zero filled (the paper's augmentation). The shifts
    are stateless functions of (seed, epoch, batch index), so a resumed run sees the same ones.
    images: float32 [B, 28, 28, 1], labels: int32 [B].
    """

    def __init__(self, batch_size, drop_remainder, num_threads=8, name='input', shift_pixels=0, seed=0):
        self.shift_pixels = shift_pixels
        with tf1.name_scope(name):
            self._images = tf1.placeholder(tf.uint8, [None] + list(IMAGE_SHAPE), 'images')
            self._labels = tf1.placeholder(tf.uint8, [None], 'labels')
            self._skip = tf1.placeholder_with_default(tf.constant(0, tf.int64), [], 'skip_batches')
            self._epoch = tf1.placeholder_with_default(tf.constant(0, tf.int64), [], 'epoch')
            ds = tf.data.Dataset.from_tensor_slices((self._images, self._labels))
            # enumerate() before skip(): a batch keeps its index, hence its shifts, when resuming.
            ds = ds.batch(batch_size, drop_remainder=drop_remainder).enumerate().skip(self._skip)
            epoch = self._epoch

            def to_model_input(index, batch):
                images, labels = _to_model_input(*batch)
                if shift_pixels:
                    stateless_seed = tf.stack([tf.constant(seed, tf.int64), epoch * (2 ** 24) + index])
                    images = random_shift(images, shift_pixels, stateless_seed)
                return images, labels

            ds = ds.map(to_model_input, num_parallel_calls=num_threads)
            ds = ds.prefetch(tf.data.AUTOTUNE)
            self._iterator = tf1.data.make_initializable_iterator(ds)
            self.images, self.labels = self._iterator.get_next()

    def initialize(self, sess, images, labels, order=None, skip_batches=0, epoch=0):
        if order is not None:
            images, labels = images[order], labels[order]
        sess.run(self._iterator.initializer,
                 {self._images: images, self._labels: labels, self._skip: skip_batches,
                  self._epoch: epoch})


def _to_model_input(images, labels):
    images = tf.cast(images, tf.float32)[..., None] / 255.0
    return images, tf.cast(labels, tf.int32)


def random_shift(images, max_shift, seed):
    """Moves each image of [B, H, W, C] by its own (dy, dx) in [-max_shift, max_shift], zero filled.

    Pads by max_shift on every side, then crops an H x W window at a random offset o per axis:
    out[y] = padded[y + o] = image[y + o - max_shift], i.e. a shift by max_shift - o pixels.
    `seed` is a stateless seed (int64 [2]): same seed, same shifts.
    """
    height, width = images.shape[1], images.shape[2]
    batch = tf.shape(images)[0]
    padded = tf.pad(images, [[0, 0], [max_shift, max_shift], [max_shift, max_shift], [0, 0]])
    offsets = tf.random.stateless_uniform([batch, 2], seed, minval=0, maxval=2 * max_shift + 1,
                                          dtype=tf.int32)                          # [B, 2]
    rows = offsets[:, :1] + tf.range(height)[None, :]                              # [B, H]
    cols = offsets[:, 1:] + tf.range(width)[None, :]                               # [B, W]
    cropped = tf.gather(padded, rows, axis=1, batch_dims=1)                        # [B, H, W + 2s, C]
    return tf.gather(cropped, cols, axis=2, batch_dims=1)                          # [B, H, W, C]
