"""One module per data format, each returning the same `Dataset` (images, labels, class names).

    image_folder   DIR/train/<class>/*.png|jpg|bmp|gif and DIR/test/<class>/...
    cifar10        the CIFAR-10 python batches (cifar-10-batches-py/, or its .tar.gz)
    smallnorb      the smallNORB binary matrix files (.mat)

The IDX reader of MNIST and Fashion-MNIST stays in utils.py, where the original script had it.
images are uint8 [N, H, W, C], labels int64 [N] in 0..classes-1, class_names a list of str (index =
label). What every format shares (resizing, channel conversion) is here, in TensorFlow ops run in a
private graph, so it works whether or not eager execution is on.
"""
import collections

import numpy as np

from runtime.errors import UserError, warn

Dataset = collections.namedtuple('Dataset', 'images labels class_names')
# Images resized in chunks: a whole smallNORB split at 96x96x2 as float32 would take 1.8 GB.
RESIZE_CHUNK = 1000


class DataError(UserError):
    """A data file or folder that cannot be used; the one-line message names it and the fix."""


class ImageOps:
    """Decoding, resizing and channel conversion with TensorFlow's own ops, in one private graph."""

    def __init__(self):
        import tensorflow as tf
        tf1 = tf.compat.v1
        self._tf = tf
        graph = tf.Graph()
        with graph.as_default():
            self._contents = tf1.placeholder(tf.string, [])
            # expand_animations=False: a GIF gives its first frame as [H, W, C], like the other formats.
            self._decoded = tf.io.decode_image(self._contents, expand_animations=False)     # [H, W, C]
            self._images = tf1.placeholder(tf.uint8, [None, None, None, None])              # [N, H, W, C]
            self._size = tf1.placeholder(tf.int32, [2])
            floats = tf.cast(self._images, tf.float32)
            # Shrinking averages the pixels each output pixel covers (area: 96 -> 48 is an exact 2x2
            # mean), enlarging interpolates (bilinear).
            self._shrunk = tf.image.resize(floats, self._size, method='area')
            self._enlarged = tf.image.resize(floats, self._size, method='bilinear')
            self._gray = tf.image.rgb_to_grayscale(floats)                                  # [N, H, W, 1]
        graph.finalize()
        self._sess = tf1.Session(graph=graph, config=tf1.ConfigProto(device_count={'GPU': 0}))

    def close(self):
        self._sess.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def decode(self, raw):
        """uint8 [H, W, C] of an encoded PNG/JPEG/GIF/BMP; tf.errors.InvalidArgumentError if corrupt."""
        return self._sess.run(self._decoded, {self._contents: raw})

    def resize(self, images, size):
        """uint8 [N, H, W, C] -> uint8 [N, size[0], size[1], C], rounded; unchanged if already that size."""
        if tuple(images.shape[1:3]) == tuple(size):
            return images
        shrinking = size[0] <= images.shape[1] and size[1] <= images.shape[2]
        op = self._shrunk if shrinking else self._enlarged
        out = np.empty((len(images),) + tuple(size) + images.shape[3:], np.uint8)
        for start in range(0, len(images), RESIZE_CHUNK):
            chunk = self._sess.run(op, {self._images: images[start:start + RESIZE_CHUNK], self._size: size})
            out[start:start + RESIZE_CHUNK] = np.clip(np.round(chunk), 0, 255)
        return out

    def to_channels(self, images, channels):
        """uint8 [N, H, W, C] (C = 1 or 3) -> [N, H, W, channels]: RGB to gray by ITU-R BT.601 luma
        (tf.image.rgb_to_grayscale), gray to RGB by repeating it. None: as stored."""
        have = images.shape[-1]
        if channels is None or channels == have:
            return images
        if have not in (1, 3):
            raise ValueError('to_channels converts gray or RGB images, not %d channels' % have)
        if channels == 1:
            out = np.empty(images.shape[:3] + (1,), np.uint8)
            for start in range(0, len(images), RESIZE_CHUNK):
                gray = self._sess.run(self._gray, {self._images: images[start:start + RESIZE_CHUNK]})
                out[start:start + RESIZE_CHUNK] = np.clip(np.round(gray), 0, 255)
            return out
        return np.repeat(images, channels, axis=-1)


def conform(dataset, image_size, channels, where, ops=None):
    """The dataset with --image_size and --channels applied (each said once in a note if it changes
    anything). image_size: (H, W) or None; where: the data folder, for the note."""
    images = dataset.images
    resize = image_size is not None and tuple(images.shape[1:3]) != tuple(image_size)
    convert = channels is not None and images.shape[-1] != channels
    if not (resize or convert):
        return dataset  # no TensorFlow session for nothing
    with _ops(ops) as tools:
        if resize:
            warn('note: resizing the %dx%d images of %s to %dx%d (--image_size)'
                 % (images.shape[1], images.shape[2], where, image_size[0], image_size[1]))
            images = tools.resize(images, image_size)
        if convert:
            warn('note: converting the %d-channel images of %s to %d channel%s (--channels)'
                 % (images.shape[-1], where, channels, '' if channels == 1 else 's'))
            images = tools.to_channels(images, channels)
    return Dataset(images, dataset.labels, dataset.class_names)


class _ops:
    """The caller's ImageOps, or a new one closed on exit (it holds a TensorFlow session)."""

    def __init__(self, ops):
        self._given, self._own = ops, None

    def __enter__(self):
        if self._given is not None:
            return self._given
        self._own = ImageOps()
        return self._own

    def __exit__(self, *exc):
        if self._own is not None:
            self._own.close()
