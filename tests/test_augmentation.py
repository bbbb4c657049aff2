"""--shift_pixels: the tf.data pipeline's random shifts, checked pixel for pixel with NumPy."""
import numpy as np
import pytest
import tensorflow as tf

import config
import utils

tf1 = tf.compat.v1
MAX_SHIFT = 2


def shifted(image, dy, dx):
    """image moved dy rows down and dx columns right, zero filled (NumPy reference)."""
    out = np.zeros_like(image)
    h, w = image.shape
    out[max(dy, 0):h + min(dy, 0), max(dx, 0):w + min(dx, 0)] = \
        image[max(-dy, 0):h + min(-dy, 0), max(-dx, 0):w + min(-dx, 0)]
    return out


def find_shift(original, augmented):
    """The (dy, dx) within MAX_SHIFT that turns original into augmented, or None."""
    for dy in range(-MAX_SHIFT, MAX_SHIFT + 1):
        for dx in range(-MAX_SHIFT, MAX_SHIFT + 1):
            if np.array_equal(shifted(original, dy, dx), augmented):
                return dy, dx
    return None


@pytest.fixture(scope='module')
def pipeline():
    graph = tf.Graph()
    with graph.as_default():
        pipe = utils.InputPipeline(16, True, 2, 'train_input', shift_pixels=MAX_SHIFT, seed=3)
        sess = tf1.Session(graph=graph)
    # No zero pixel inside: every shift leaves a distinct zero border, so it can be recovered exactly.
    rng = np.random.default_rng(0)
    images = rng.integers(1, 256, (64, 28, 28)).astype(np.uint8)
    labels = rng.integers(0, 10, 64).astype(np.uint8)
    yield sess, pipe, images, labels
    sess.close()


def read_all(sess, pipe, images, labels, epoch=0, skip=0):
    pipe.initialize(sess, images, labels, skip_batches=skip, epoch=epoch)
    out_images, out_labels = [], []
    while True:
        try:
            x, y = sess.run([pipe.images, pipe.labels])
        except tf.errors.OutOfRangeError:
            return np.concatenate(out_images), np.concatenate(out_labels)
        out_images.append(x)
        out_labels.append(y)


def test_shifts_are_translations_with_zero_fill_and_labels_unchanged(pipeline):
    sess, pipe, images, labels = pipeline
    out_x, out_y = read_all(sess, pipe, images, labels)
    assert out_x.shape == (64, 28, 28, 1) and out_x.dtype == np.float32
    np.testing.assert_array_equal(out_y, labels)
    pixels = np.round(out_x[..., 0] * 255).astype(np.uint8)
    shifts = [find_shift(images[n], pixels[n]) for n in range(64)]
    assert None not in shifts
    # 64 draws from 25 shifts: all zero would mean no augmentation; few distinct would mean one per batch.
    assert len(set(shifts)) >= 10
    assert {dy for dy, _ in shifts} == set(range(-MAX_SHIFT, MAX_SHIFT + 1))


def test_shifts_depend_on_epoch_and_survive_a_resume(pipeline):
    sess, pipe, images, labels = pipeline
    first, _ = read_all(sess, pipe, images, labels, epoch=4)
    again, _ = read_all(sess, pipe, images, labels, epoch=4)
    np.testing.assert_array_equal(first, again)
    other, _ = read_all(sess, pipe, images, labels, epoch=5)
    assert not np.array_equal(first, other)
    # Resuming after 2 of 4 batches replays the very same shifted batches 3 and 4.
    resumed, _ = read_all(sess, pipe, images, labels, epoch=4, skip=2)
    np.testing.assert_array_equal(resumed, first[32:])


def test_no_shift_by_default():
    graph = tf.Graph()
    with graph.as_default():
        pipe = utils.InputPipeline(8, False, 1, 'eval_input')
        with tf1.Session(graph=graph) as sess:
            images = np.full((8, 28, 28), 7, np.uint8)
            x, _ = read_all(sess, pipe, images, np.zeros(8, np.uint8))
    np.testing.assert_allclose(x[..., 0], 7 / 255.0)


@pytest.mark.parametrize('value, message', [('-1', 'shift_pixels must be >= 0'),
                                            ('14', 'shift_pixels=14 would shift')])
def test_shift_flag_is_checked(value, message):
    with pytest.raises(config.ConfigError, match=message):
        config.parse(['--shift_pixels', value])
    assert config.parse(['--shift_pixels', '2']).shift_pixels == 2
