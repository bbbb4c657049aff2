"""Test images under small random affine transforms: the paper's affNIST experiment in spirit.

The paper trains on MNIST shifted by up to 2 px and tests on affNIST (MNIST digits under random
small affine transforms, 40x40). affNIST cannot be fetched here, so the test images are warped in
place with scipy: rotation, shear and translation drawn from fixed ranges with a fixed seed, so the
same checkpoint always gets the same number. Run with: python main.py --is_training=False --robustness
"""

import numpy as np
from scipy import ndimage

from runtime import files

MAX_ROTATION_DEG = 15.0
MAX_SHEAR = 0.15           # x += shear * y (in pixels per pixel)
MAX_TRANSLATION_PX = 3.0
DESCRIPTION = ('rotation +-%g deg; shear +-%g; translation +-%g px; bilinear; zero fill'
               % (MAX_ROTATION_DEG, MAX_SHEAR, MAX_TRANSLATION_PX))


def affine_matrix(rotation_deg, shear, translation):
    """Forward map in (row, col) pixel coordinates about the image centre: out = A (in - c) + c + t.

    Returns (A [2, 2], t [2]); shear slides columns in proportion to the row, rotation turns
    counter-clockwise as the image is displayed.
    """
    theta = np.deg2rad(rotation_deg)
    # A point right of the centre (row 0, col +1) moves up (row -sin): counter-clockwise on screen.
    rotation = np.array([[np.cos(theta), -np.sin(theta)],
                         [np.sin(theta), np.cos(theta)]])
    shearing = np.array([[1.0, 0.0],
                         [shear, 1.0]])
    return rotation @ shearing, np.asarray(translation, np.float64)


def warp(image, rotation_deg=0.0, shear=0.0, translation=(0.0, 0.0)):
    """One uint8 [H, W] image (or [H, W, C], each channel alike) under the forward map of affine_matrix;
    pixels from outside are 0."""
    if image.ndim == 3:
        return np.stack([warp(image[..., c], rotation_deg, shear, translation)
                         for c in range(image.shape[-1])], axis=-1)
    forward, t = affine_matrix(rotation_deg, shear, translation)
    centre = (np.array(image.shape, np.float64) - 1) / 2
    # scipy maps each OUTPUT coordinate o to the input coordinate matrix @ o + offset,
    # so it needs the inverse: in = A^-1 (o - c - t) + c.
    inverse = np.linalg.inv(forward)
    offset = centre - inverse @ (centre + t)
    out = ndimage.affine_transform(image.astype(np.float32), inverse, offset, order=1,
                                   mode='constant', cval=0.0)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def random_parameters(num, seed):
    """(rotation_deg [N], shear [N], translation [N, 2]) drawn uniformly from the fixed ranges."""
    rng = np.random.default_rng([seed % (2 ** 32), 7])  # 7: a stream of its own, apart from training's
    rotation = rng.uniform(-MAX_ROTATION_DEG, MAX_ROTATION_DEG, num)
    shear = rng.uniform(-MAX_SHEAR, MAX_SHEAR, num)
    translation = rng.uniform(-MAX_TRANSLATION_PX, MAX_TRANSLATION_PX, (num, 2))
    return rotation, shear, translation


def affine_test_set(images, seed):
    """Every image of uint8 [N, H, W(, C)] under its own random transform; same seed, same images."""
    rotation, shear, translation = random_parameters(len(images), seed)
    return np.stack([warp(images[n], rotation[n], shear[n], translation[n])
                     for n in range(len(images))]) if len(images) else np.asarray(images).copy()


def write_report(path, labels, plain_predictions, affine_predictions, seed):
    """robustness.csv: one row for plain test images, one for the warped ones. Returns the rows."""
    labels = np.asarray(labels)
    rows = []
    for condition, predictions, transform in (('plain', plain_predictions, 'none'),
                                              ('affine', affine_predictions, DESCRIPTION)):
        errors = int(np.sum(np.asarray(predictions) != labels))
        accuracy = 1.0 - errors / len(labels)
        rows.append((condition, accuracy, errors, len(labels), transform, seed))
    lines = ['condition,accuracy,errors,total,transform,seed']
    lines += ['%s,%.6g,%d,%d,%s,%d' % row for row in rows]
    files.atomic_write(path, '\n'.join(lines) + '\n')
    return rows
