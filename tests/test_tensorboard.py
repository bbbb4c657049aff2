"""`tensorboard --logdir logdir` shows what training writes: read back with TensorBoard's own reader."""
import csv

import numpy as np
import pytest
import tensorflow as tf
from conftest import run_main, tiny_run_args
from tensorboard.backend.event_processing import event_accumulator

SCALARS = ['train/margin_loss', 'train/reconstruction_loss', 'train/total_loss', 'train/accuracy',
           'val/accuracy']
IMAGES = ['reconstruction/image/%d' % k for k in range(8)]  # input | reconstruction, 8 per summary


def csv_column(path, column):
    with open(path) as f:
        rows = list(csv.DictReader(f))
    return [int(r['step']) for r in rows], [float(r[column]) for r in rows]


@pytest.fixture(scope='module')
def events(tiny_mnist, tmp_path_factory):
    work = tmp_path_factory.mktemp('tensorboard_run')
    # 6 steps: training summaries at steps 2, 4, 6 and validation at 3, 6.
    assert run_main(tiny_run_args(tiny_mnist, work)) == 0
    # size_guidance 0 keeps every event instead of TensorBoard's sample of them.
    accumulator = event_accumulator.EventAccumulator(
        str(work / 'logdir'), size_guidance={event_accumulator.SCALARS: 0, event_accumulator.IMAGES: 0})
    accumulator.Reload()
    return accumulator, work


@pytest.mark.slow
def test_scalar_tags_and_steps(events):
    accumulator, work = events
    tags = accumulator.Tags()
    assert set(SCALARS) <= set(tags['scalars']), tags['scalars']
    assert tags['graph']  # the model graph for TensorBoard's Graphs tab
    for tag in SCALARS[:4]:
        assert [e.step for e in accumulator.Scalars(tag)] == [2, 4, 6], tag
    # The same numbers as the CSVs of the run.
    steps, loss = csv_column(work / 'results' / 'loss.csv', 'loss')
    events_loss = accumulator.Scalars('train/total_loss')
    assert steps == [e.step for e in events_loss]
    np.testing.assert_allclose([e.value for e in events_loss], loss, rtol=1e-5)
    steps, val_acc = csv_column(work / 'results' / 'val_acc.csv', 'val_acc')
    validation = accumulator.Scalars('val/accuracy')
    assert steps == [e.step for e in validation] == [3, 6]
    np.testing.assert_allclose([e.value for e in validation], val_acc, rtol=1e-5)
    assert all(0 <= e.value <= 1 for e in accumulator.Scalars('train/accuracy'))


@pytest.mark.slow
def test_reconstruction_images(events):
    accumulator, _ = events
    assert set(IMAGES) <= set(accumulator.Tags()['images']), accumulator.Tags()['images']
    for tag in IMAGES:
        shots = accumulator.Images(tag)
        assert [e.step for e in shots] == [2, 4, 6], tag
        assert (shots[0].height, shots[0].width) == (28, 56)
        pixels = tf.io.decode_png(shots[-1].encoded_image_string).numpy()
        assert pixels.shape[:2] == (28, 56)
        assert pixels[:, :28].max() == 255  # the input digit's lit block (generated data) on the left
