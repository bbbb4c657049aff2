"""Your own images: DIR/train/<class>/* and DIR/test/<class>/*, one sub-folder per class.

Class names are the sub-folder names of train/, sorted (label k = the k-th name); test/ may lack a
class but may not add one. PNG, JPEG, BMP and GIF (first frame) files are decoded once, with
tf.io.decode_image, into one uint8 array kept in memory for the whole run.
"""
import os

import numpy as np

from readers import DataError, Dataset, ImageOps
from runtime.errors import warn

IMAGE_EXTENSIONS = ('.png', '.jpg', '.jpeg', '.bmp', '.gif')
SPLITS = ('train', 'test')


def class_folders(root):
    """Sorted class names of root (a train/ or test/ folder): its sub-folders, hidden ones skipped."""
    if not os.path.isdir(root):
        raise DataError('no folder %s; a folder dataset needs DIR/train/<class>/ and DIR/test/<class>/ '
                        'with the images (docs/own-data.md), given as --data_dir DIR' % root)
    names = sorted(n for n in os.listdir(root)
                   if not n.startswith('.') and os.path.isdir(os.path.join(root, n)))
    if not names:
        raise DataError('%s has no class folders; put each class\'s images in a sub-folder of it, e.g. '
                        '%s' % (root, os.path.join(root, 'cat', '0001.png')))
    return names


def image_files(folder):
    """The image files of one class folder, sorted by name; a DataError if there is none."""
    names = sorted(n for n in os.listdir(folder) if not n.startswith('.')
                   and n.lower().endswith(IMAGE_EXTENSIONS) and os.path.isfile(os.path.join(folder, n)))
    if not names:
        raise DataError('class folder %s holds no PNG, JPEG, BMP or GIF image; add its images or remove '
                        'the folder' % folder)
    return [os.path.join(folder, n) for n in names]


def read_split(data_dir, split, image_size=None, channels=None):
    """Dataset of DIR/<split>: images uint8 [N, H, W, C], labels int64 [N], the training class names.

    image_size (H, W): resize every image; without it all images must share one size. channels:
    1 or 3 to convert, None to keep what the files hold (all must agree).
    """
    class_names = class_folders(os.path.join(data_dir, 'train'))
    names_here = class_folders(os.path.join(data_dir, split)) if split != 'train' else class_names
    unknown = [n for n in names_here if n not in class_names]
    if unknown:
        raise DataError('%s has class folder(s) %s that %s does not; a model only knows the classes it '
                        'was trained on: rename or remove them' % (os.path.join(data_dir, split),
                                                                  ', '.join(unknown), os.path.join(data_dir, 'train')))
    images, labels = [], []
    resized = converted = 0
    with ImageOps() as ops:
        for name in names_here:
            for path in image_files(os.path.join(data_dir, split, name)):
                pixels = _decode(ops, path)                                   # [h, w, c] uint8
                if pixels.shape[-1] in (2, 4):
                    pixels = pixels[..., :-1]  # gray+alpha, RGBA: the colour planes (alpha is not data)
                if image_size is not None and pixels.shape[:2] != tuple(image_size):
                    pixels = ops.resize(pixels[None], image_size)[0]          # [H, W, c]
                    resized += 1
                if channels is not None and pixels.shape[-1] != channels:
                    pixels = ops.to_channels(pixels[None], channels)[0]       # [H, W, channels]
                    converted += 1
                if images and pixels.shape != images[0][1].shape:
                    _refuse_mix(images[0], (path, pixels))
                images.append((path, pixels))
                labels.append(class_names.index(name))
    where = os.path.join(data_dir, split)
    if resized:
        warn('note: resized %d of the %d images of %s to %dx%d (--image_size)'
             % (resized, len(images), where, image_size[0], image_size[1]))
    if converted:
        warn('note: converted %d of the %d images of %s to %d channel(s) (--channels)'
             % (converted, len(images), where, channels))
    stacked = np.stack([pixels for _, pixels in images])                      # [N, H, W, C]
    return Dataset(stacked, np.asarray(labels, np.int64), class_names)


def _decode(ops, path):
    import tensorflow as tf
    try:
        with open(path, 'rb') as f:
            raw = f.read()
    except OSError as e:
        raise DataError('cannot read %s (%s); fix its permissions or remove it' % (path, e.strerror)) from None
    try:
        return ops.decode(raw)
    except tf.errors.InvalidArgumentError:
        raise DataError('%s is not a readable PNG, JPEG, BMP or GIF image (truncated or corrupt); replace '
                        'or remove it' % path) from None


def _refuse_mix(first, this):
    (first_path, first_pixels), (path, pixels) = first, this
    if first_pixels.shape[:2] != pixels.shape[:2]:
        raise DataError('%s is %dx%d but %s is %dx%d; give --image_size HxW to resize every image to one '
                        'size' % (path, pixels.shape[0], pixels.shape[1], first_path,
                                  first_pixels.shape[0], first_pixels.shape[1]))
    raise DataError('%s has %d channel(s) but %s has %d; give --channels 1 (gray) or --channels 3 (RGB) to '
                    'convert every image' % (path, pixels.shape[2], first_path, first_pixels.shape[2]))
