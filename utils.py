"""Data in: IDX files (and, through readers/, image folders, CIFAR-10, smallNORB) -> checked NumPy
arrays -> train/validation split -> tf.data batches."""
import dataclasses
import gzip
import os
import struct
import zlib

import numpy as np
import tensorflow as tf

import config
import readers
from model_spec import IMAGE_SIZE, NUM_CLASSES, InputSpec
from readers import DataError  # noqa: F401  (utils.DataError, as before the readers/ folder)
from runtime import dataset_files
from runtime.errors import ConfigError

tf1 = tf.compat.v1

IDX_FILES = {
    'train': ('train-images-idx3-ubyte', 'train-labels-idx1-ubyte'),
    'test': ('t10k-images-idx3-ubyte', 't10k-labels-idx1-ubyte'),
}
IMAGE_SHAPE = (IMAGE_SIZE, IMAGE_SIZE)
IDX_UBYTE = 0x08


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


IDX_DATASETS = ('mnist', 'fashion-mnist')
# Conv1 (9x9, stride 1) then PrimaryCaps (9x9, stride 2) need 9 + 8 pixels per side for one grid cell.
MIN_SIDE = 17


def load_data(cfg, split):
    """readers.Dataset of cfg.dataset's 'train' or 'test' split as stored, after --image_size and
    --channels: images uint8 [N, H, W, C], labels [N], class names."""
    image_size = config.parse_size(cfg.image_size) if getattr(cfg, 'image_size', None) else None
    channels = getattr(cfg, 'channels', None)
    if cfg.dataset in IDX_DATASETS:
        from evaluation import metrics  # the class names of the two IDX datasets
        images, labels = load_split(cfg.data_dir, split, cfg.dataset, cfg.verify_data)
        dataset = readers.Dataset(images[..., None], labels, metrics.class_names(cfg.dataset))  # [N, 28, 28, 1]
    elif cfg.dataset == 'folder':
        from readers import image_folder
        return image_folder.read_split(cfg.data_dir, split, image_size, channels)
    elif cfg.dataset == 'cifar10':
        from readers import cifar10
        dataset = cifar10.read_split(cfg.data_dir, split)
    elif cfg.dataset == 'smallnorb':
        from readers import smallnorb
        dataset = smallnorb.read_split(cfg.data_dir, split, channels)
        channels = None  # smallnorb chose its planes itself: they are not gray/RGB to convert
    elif cfg.dataset == MULTIMNIST:
        # Pairs are made per epoch by load_multimnist_train_val; a caller here wants single images.
        raise ConfigError('--dataset=multimnist trains and tests through main.py (and draws with tools.figures) '
                          'only; this command reads single images: give --dataset=mnist')
    else:
        raise ConfigError('unknown --dataset=%s; choose one of: %s' % (cfg.dataset, ', '.join(config.DATASETS)))
    return readers.conform(dataset, image_size, channels, cfg.data_dir)


def load_train_val_data(cfg):
    """(train, validation) readers.Datasets: IDX files keep their split (the last val_size images
    validate); other formats hold out val_size images by class_preserving_split."""
    data = load_data(cfg, 'train')
    if cfg.val_size >= len(data.labels):
        raise DataError('--val_size=%d leaves no training images (%s has %d); give a smaller --val_size'
                        % (cfg.val_size, cfg.data_dir, len(data.labels)))
    if cfg.dataset in IDX_DATASETS:
        cut = len(data.labels) - cfg.val_size
        train, val = np.arange(cut), np.arange(cut, len(data.labels))
    else:
        train, val = class_preserving_split(data.labels, cfg.val_size, cfg.seed, cfg.data_dir)
    return tuple(readers.Dataset(data.images[k], data.labels[k], data.class_names) for k in (train, val))


def class_preserving_split(labels, val_size, seed, where='the data'):
    """(train indices, validation indices), both in file order, drawn with `seed`.

    Each class gives validation a share of val_size in proportion to its size (largest remainders
    round), and keeps at least one image for training, so every class is both learned and checked.
    """
    labels = np.asarray(labels)
    classes, counts = np.unique(labels, return_counts=True)
    if val_size > len(labels) - len(classes):
        raise DataError('--val_size=%d would leave a class of %s without training images (%d images, %d '
                        'classes); give a smaller --val_size' % (val_size, where, len(labels), len(classes)))
    exact = val_size * counts / len(labels)
    share = np.minimum(np.floor(exact).astype(int), counts - 1)
    for k in np.argsort(-(exact - share), kind='stable'):  # hand out what rounding down left over
        if share.sum() == val_size:
            break
        if share[k] < counts[k] - 1:
            share[k] += 1
    while share.sum() < val_size:  # only when rounding met the one-per-class floor: fill elsewhere
        share[np.argmax(counts - 1 - share)] += 1
    rng = np.random.RandomState([seed % (2 ** 32), 11])  # 11: a stream apart from the epochs' orders
    val = np.concatenate([rng.choice(np.flatnonzero(labels == c), n, replace=False)
                          for c, n in zip(classes, share)])
    is_val = np.zeros(len(labels), bool)
    is_val[val] = True
    return np.flatnonzero(~is_val), np.flatnonzero(is_val)


def input_spec(cfg, dataset):
    """The InputSpec the network is built for: the images' size after --crop, their channels,
    the number of classes; a one-line error when the crop or the images do not fit."""
    height, width, channels = dataset.images.shape[1:]
    if getattr(cfg, 'crop', None):
        crop = config.parse_size(cfg.crop)
        if crop[0] > height or crop[1] > width:
            raise ConfigError('--crop=%s is larger than the %dx%d images of %s; give a smaller --crop or a '
                              'larger --image_size' % (cfg.crop, height, width, cfg.data_dir))
        height, width = crop
    if min(height, width) < MIN_SIDE:
        raise ConfigError('%dx%d inputs are too small for Conv1 and PrimaryCaps (9x9 kernels): they need '
                          'at least %dx%d; give a larger --image_size or --crop' % (height, width, MIN_SIDE, MIN_SIDE))
    return InputSpec(int(height), int(width), int(channels), len(dataset.class_names))


def spec_record(spec, dataset):
    """What flags.json keeps of the input (InputSpec.from_flags reads it back): the spec, the
    stored image size before cropping, and the class names."""
    record = dataclasses.asdict(spec)
    record.update(image_height=int(dataset.images.shape[1]), image_width=int(dataset.images.shape[2]),
                  class_names=[str(name) for name in dataset.class_names])
    return record


INPUT_FLAGS = ('image_size', 'channels', 'crop')


def load_test_set(cfg, run_flags, split='test'):
    """readers.Dataset of cfg.dataset's test split prepared as the run in run_flags (its flags.json)
    was trained: its --image_size, --channels and centre --crop, whatever the command line says.
    images uint8 [N, h, w, C] as the network takes them. A one-line DataError if they do not fit it."""
    data_cfg = argparse_namespace(cfg)
    for name in INPUT_FLAGS:
        if name in run_flags:
            setattr(data_cfg, name, run_flags[name])
    data = load_data(data_cfg, split)
    spec = InputSpec.from_flags(run_flags)
    recorded = run_flags.get('input_spec') or {}
    images = data.images
    if images.shape[1:3] != (spec.height, spec.width) and min(images.shape[1:3]) >= min(spec.height, spec.width):
        images = centre_crop(images, spec.height, spec.width)
    if images.shape[1:] != (spec.height, spec.width, spec.channels):
        raise DataError('the %s images of %s are %s after the run\'s flags, but the model was trained on %dx%dx%d; '
                        'give the --data_dir of the data it was trained on' % (
                            split, cfg.data_dir, 'x'.join(str(d) for d in images.shape[1:]),
                            spec.height, spec.width, spec.channels))
    names = recorded.get('class_names')
    if names and list(names) != list(data.class_names):
        raise DataError('%s has the classes %s but the model was trained on %s; give the --data_dir of the '
                        'data it was trained on' % (cfg.data_dir, ','.join(data.class_names), ','.join(names)))
    return readers.Dataset(images, data.labels, names or data.class_names)


def argparse_namespace(cfg):
    """A shallow copy of a flags namespace, to change a few flags without touching the caller's."""
    import types
    return types.SimpleNamespace(**vars(cfg))


def centre_crop(images, height, width):
    """The centre height x width window of uint8 [N, H, W, C] (the top-left one of two when odd)."""
    top, left = (images.shape[1] - height) // 2, (images.shape[2] - width) // 2
    return images[:, top:top + height, left:left + width]


def epoch_permutation(num_examples, seed, epoch):
    """The data order of one epoch: a pure function of (seed, epoch), so a resumed run replays it."""
    return np.random.RandomState([seed % (2 ** 32), epoch]).permutation(num_examples)


class InputPipeline:
    """A tf.data pipeline over NumPy arrays fed at initialisation (no copy of the data in the graph).

    Each initialise() call starts one pass: shuffled by `order` when given, batched, optionally
    skipping the first batches (to resume mid-epoch), scaled to [0, 1] floats and prefetched.
    image_shape: one stored image, (28, 28) for IDX arrays [N, 28, 28] or (H, W, C) for [N, H, W, C].
    crop (h, w): a random h x w window of every image when `random_crop` (training), the centre one
    otherwise (validation, testing).
    With shift_pixels > 0 every image is moved by a random whole number of pixels in
    [-shift_pixels, shift_pixels] along each axis, zero filled (the paper's augmentation). Shifts and
    crops are stateless functions of (seed, epoch, batch index), so a resumed run sees the same ones.
    images: float32 [B, h, w, C] (MNIST [B, 28, 28, 1]), labels: int32 [B].
    """

    def __init__(self, batch_size, drop_remainder, num_threads=8, name='input', shift_pixels=0, seed=0,
                 image_shape=IMAGE_SHAPE, crop=None, random_crop=False):
        self.shift_pixels = shift_pixels
        with tf1.name_scope(name):
            self._images = tf1.placeholder(tf.uint8, [None] + list(image_shape), 'images')
            self._labels = tf1.placeholder(tf.uint8, [None], 'labels')
            self._skip = tf1.placeholder_with_default(tf.constant(0, tf.int64), [], 'skip_batches')
            self._epoch = tf1.placeholder_with_default(tf.constant(0, tf.int64), [], 'epoch')
            ds = tf.data.Dataset.from_tensor_slices((self._images, self._labels))
            # enumerate() before skip(): a batch keeps its index, hence its shifts, when resuming.
            ds = ds.batch(batch_size, drop_remainder=drop_remainder).enumerate().skip(self._skip)
            epoch = self._epoch

            def to_model_input(index, batch):
                images, labels = _to_model_input(*batch)                              # [B, H, W, C]
                batch_number = epoch * (2 ** 24) + index
                if crop is not None and random_crop:
                    # A negative second word: a stream of its own, apart from the shifts' seeds.
                    crop_seed = tf.stack([tf.constant(seed, tf.int64), -1 - batch_number])
                    images = random_crop_batch(images, crop, crop_seed)               # [B, h, w, C]
                elif crop is not None:
                    images = centre_crop(images, *crop)                               # [B, h, w, C]
                if shift_pixels:
                    stateless_seed = tf.stack([tf.constant(seed, tf.int64), batch_number])
                    images = random_shift(images, shift_pixels, stateless_seed)
                return images, labels

            ds = ds.map(to_model_input, num_parallel_calls=num_threads)
            ds = ds.prefetch(tf.data.AUTOTUNE)
            self._iterator = tf1.data.make_initializable_iterator(ds)
            self.images, self.labels = self._iterator.get_next()

    def initialize(self, sess, images, labels, order=None, skip_batches=0, epoch=0):
        if order is not None:
            images, labels = images[order], labels[order]
        if np.ndim(images) == self._images.shape.rank - 1:
            images = np.asarray(images)[..., None]  # gray [N, H, W] into a [N, H, W, 1] pipeline
        sess.run(self._iterator.initializer,
                 {self._images: images, self._labels: labels, self._skip: skip_batches,
                  self._epoch: epoch})


def _to_model_input(images, labels):
    images = tf.cast(images, tf.float32) / 255.0
    if images.shape.rank == 3:
        images = images[..., None]  # IDX arrays [B, 28, 28] -> [B, 28, 28, 1]
    return images, tf.cast(labels, tf.int32)


def random_crop_batch(images, size, seed):
    """Each image of [B, H, W, C] cut to its own random size[0] x size[1] window; `seed` a stateless
    seed (int64 [2]): same seed, same windows."""
    height, width = size
    batch = tf.shape(images)[0]
    max_offsets = tf.constant([images.shape[1] - height + 1, images.shape[2] - width + 1], tf.int32)
    offsets = tf.random.stateless_uniform([batch, 2], seed, minval=0, maxval=tf.int32.max,
                                          dtype=tf.int32) % max_offsets           # [B, 2]
    rows = offsets[:, :1] + tf.range(height)[None, :]                              # [B, h]
    cols = offsets[:, 1:] + tf.range(width)[None, :]                               # [B, w]
    cropped = tf.gather(images, rows, axis=1, batch_dims=1)                        # [B, h, W, C]
    return tf.gather(cropped, cols, axis=2, batch_dims=1)                          # [B, h, w, C]


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


# --- MultiMNIST (section 6): pairs of MNIST digits made by readers/multimnist.py ----------------------

MULTIMNIST = 'multimnist'
# The MNIST files' checksums apply: MultiMNIST is made from them, not stored.
MULTIMNIST_SOURCE = 'mnist'


def multimnist_spec():
    """The input spec of MultiMNIST: one gray 36 x 36 canvas, ten classes."""
    from readers import multimnist
    return InputSpec(multimnist.CANVAS_SIDE, multimnist.CANVAS_SIDE, 1, NUM_CLASSES)


def multimnist_spec_record():
    """What flags.json keeps of a MultiMNIST run's input (as spec_record does for the other datasets)."""
    spec = multimnist_spec()
    record = dataclasses.asdict(spec)
    record.update(image_height=spec.height, image_width=spec.width,
                  class_names=[str(k) for k in range(NUM_CLASSES)])
    return record


def load_multimnist_train_val(cfg):
    """((train digits uint8 [N, 28, 28], labels [N]), validation Pairs): the MNIST training file split
    as for MNIST (the last --val_size images validate), the validation images paired among themselves
    once, by readers.multimnist.VALIDATION_SEED, one pair per image. The training digits are paired
    afresh at each epoch (epoch_pairs)."""
    from readers import multimnist
    (train_x, train_y), (val_x, val_y) = load_train_val(cfg.data_dir, cfg.val_size, MULTIMNIST_SOURCE,
                                                        cfg.verify_data)
    for name, labels in (('training', train_y), ('validation', val_y)):
        if len(np.unique(labels)) < 2:
            raise DataError('--val_size=%d leaves the %s images of %s a single class; MultiMNIST pairs need '
                            'two classes: give another --val_size' % (cfg.val_size, name, cfg.data_dir))
    val = multimnist.fixed_pairs(val_x, val_y, multimnist.VALIDATION_SEED, count=len(val_x))
    return (train_x, train_y.astype(np.int64)), val


def load_multimnist_test(cfg):
    """(the fixed test Pairs, the plain test digits uint8 [N, 28, 28], their labels [N]) of the MNIST
    test file: one pair per test image (10 000 for MNIST), drawn by readers.multimnist.TEST_SEED, the
    same for every run."""
    from readers import multimnist
    test_x, test_y = load_split(cfg.data_dir, 'test', MULTIMNIST_SOURCE, cfg.verify_data)
    pairs = multimnist.fixed_pairs(test_x, test_y, multimnist.TEST_SEED, count=len(test_x))
    return pairs, test_x, test_y.astype(np.int64)


class PairPipeline:
    """InputPipeline for MultiMNIST: the merged images with the four arrays that go with them.

    Each initialize() call feeds one set of readers.multimnist.Pairs (an epoch's, or the fixed
    validation ones), in `order` when given, batched, the first skip_batches skipped (a resumed epoch),
    scaled to [0, 1] and prefetched. No shifts or crops: the generator already moved each digit.
    images, digit_a, digit_b: float32 [B, 36, 36, 1]; labels (the first digit's), labels_b: int32 [B].
    """

    def __init__(self, batch_size, drop_remainder, num_threads=8, name='input', side=36):
        shape = [None, side, side]
        with tf1.name_scope(name):
            self._arrays = {'images': tf1.placeholder(tf.uint8, shape, 'images'),
                            'labels_a': tf1.placeholder(tf.int64, [None], 'labels_a'),
                            'labels_b': tf1.placeholder(tf.int64, [None], 'labels_b'),
                            'digit_a': tf1.placeholder(tf.uint8, shape, 'digit_a'),
                            'digit_b': tf1.placeholder(tf.uint8, shape, 'digit_b')}
            self._skip = tf1.placeholder_with_default(tf.constant(0, tf.int64), [], 'skip_batches')
            ds = tf.data.Dataset.from_tensor_slices(self._arrays)
            ds = ds.batch(batch_size, drop_remainder=drop_remainder).skip(self._skip)

            def to_model_input(batch):
                scaled = lambda key: tf.cast(batch[key], tf.float32)[..., None] / 255.0   # [B, 36, 36, 1]
                return {'images': scaled('images'), 'digit_a': scaled('digit_a'), 'digit_b': scaled('digit_b'),
                        'labels_a': tf.cast(batch['labels_a'], tf.int32),
                        'labels_b': tf.cast(batch['labels_b'], tf.int32)}

            ds = ds.map(to_model_input, num_parallel_calls=num_threads).prefetch(tf.data.AUTOTUNE)
            self._iterator = tf1.data.make_initializable_iterator(ds)
            batch = self._iterator.get_next()
            self.images, self.labels = batch['images'], batch['labels_a']
            self.labels_b, self.digit_a, self.digit_b = batch['labels_b'], batch['digit_a'], batch['digit_b']

    def pair(self):
        """The capsNet.Pair of this pipeline's tensors."""
        import capsNet
        return capsNet.Pair(self.labels_b, self.digit_a, self.digit_b)

    def initialize(self, sess, pairs, order=None, skip_batches=0, epoch=0):
        """epoch: unused (nothing here is random); kept so the training loop calls both pipelines alike."""
        from readers import multimnist
        feed = multimnist.as_feed(pairs)
        if order is not None:
            feed = {key: value[order] for key, value in feed.items()}
        values = {self._arrays[key]: value for key, value in feed.items()}
        values[self._skip] = skip_batches
        sess.run(self._iterator.initializer, values)
