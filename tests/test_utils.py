"""IDX reading and checking, the input pipeline, CSV logs and PNG writing."""
import gzip
import struct

import numpy as np
import pytest
import tensorflow as tf
from conftest import read_gray_png, read_png, write_idx

import utils
from runtime import files

tf1 = tf.compat.v1


def test_read_idx_round_trip_gzip_and_raw(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (5, 28, 28)).astype(np.uint8)
    for compress, name in ((True, 'a.gz'), (False, 'a')):
        path = write_idx(tmp_path / name, images, compress=compress)
        np.testing.assert_array_equal(utils.read_idx(str(path), 3), images)


def test_wrong_magic_number_names_file_and_fix(tmp_path):
    path = write_idx(tmp_path / 'labels.gz', np.zeros(4, np.uint8))
    with pytest.raises(utils.DataError) as e:
        utils.read_idx(str(path), 3)  # a labels file where images are expected
    msg = str(e.value)
    assert 'wrong magic number 0x00000801' in msg and 'labels.gz' in msg and 'download_data.py' in msg
    assert '\n' not in msg


def test_truncated_gzip_refused(tmp_path):
    path = write_idx(tmp_path / 'x.gz', np.zeros((10, 28, 28), np.uint8))
    data = path.read_bytes()
    path.write_bytes(data[:len(data) // 2])
    with pytest.raises(utils.DataError, match='x.gz.*truncated or corrupt'):
        utils.read_idx(str(path), 3)


def test_truncated_content_refused(tmp_path):
    raw = struct.pack('>BBBBiii', 0, 0, 8, 3, 10, 28, 28) + bytes(28 * 28 * 9)  # one image short
    path = tmp_path / 'short.gz'
    path.write_bytes(gzip.compress(raw))
    with pytest.raises(utils.DataError, match=r'holds 7072 bytes but its header \[10, 28, 28\] needs 7856'):
        utils.read_idx(str(path), 3)


def _split_folder(tmp_path, images, labels):
    write_idx(tmp_path / 'train-images-idx3-ubyte.gz', images)
    write_idx(tmp_path / 'train-labels-idx1-ubyte.gz', labels)
    return str(tmp_path)


def test_count_mismatch_refused(tmp_path):
    folder = _split_folder(tmp_path, np.zeros((5, 28, 28)), np.zeros(4))
    with pytest.raises(utils.DataError, match='has 5 images but .* has 4 labels'):
        utils.load_split(folder, 'train', verify=False)


def test_label_out_of_range_refused(tmp_path):
    folder = _split_folder(tmp_path, np.zeros((3, 28, 28)), [1, 10, 2])
    with pytest.raises(utils.DataError, match='label 10 outside 0-9'):
        utils.load_split(folder, 'train', verify=False)


def test_wrong_image_size_refused(tmp_path):
    folder = _split_folder(tmp_path, np.zeros((3, 32, 32)), [1, 2, 3])
    with pytest.raises(utils.DataError, match='32x32 images, expected 28x28'):
        utils.load_split(folder, 'train', verify=False)


def test_train_val_split_takes_last_images_for_validation(tiny_mnist):
    (tx, ty), (vx, vy) = utils.load_train_val(str(tiny_mnist), 40, verify=False)
    all_x, all_y = utils.load_split(str(tiny_mnist), 'train', verify=False)
    assert len(tx) == 200 and len(vx) == 40
    np.testing.assert_array_equal(vx, all_x[-40:])
    np.testing.assert_array_equal(ty, all_y[:200])


def test_epoch_permutation_is_reproducible_and_differs_by_epoch():
    a = utils.epoch_permutation(100, seed=3, epoch=0)
    assert sorted(a) == list(range(100))
    np.testing.assert_array_equal(a, utils.epoch_permutation(100, seed=3, epoch=0))
    assert not np.array_equal(a, utils.epoch_permutation(100, seed=3, epoch=1))
    assert not np.array_equal(a, utils.epoch_permutation(100, seed=4, epoch=0))


def test_input_pipeline_batches_scales_orders_and_skips():
    images = np.arange(10 * 28 * 28, dtype=np.int64).reshape(10, 28, 28) % 256
    images = images.astype(np.uint8)
    labels = np.arange(10, dtype=np.uint8)
    order = np.array([9, 8, 7, 6, 5, 4, 3, 2, 1, 0])
    with tf.Graph().as_default():
        pipe = utils.InputPipeline(batch_size=3, drop_remainder=True, num_threads=1)
        with tf1.Session() as sess:
            pipe.initialize(sess, images, labels, order=order, skip_batches=1)
            x, y = sess.run([pipe.images, pipe.labels])
            assert x.shape == (3, 28, 28, 1) and x.dtype == np.float32
            np.testing.assert_array_equal(y, [6, 5, 4])  # second batch of the reversed order
            np.testing.assert_allclose(x[0, ..., 0], images[6] / 255.0, rtol=1e-6)
            sess.run(pipe.labels)  # [3, 2, 1]; the remainder [0] is dropped
            with pytest.raises(tf.errors.OutOfRangeError):
                sess.run(pipe.labels)


def test_csv_log_appends_and_truncates_and_ignores_cut_line(tmp_path):
    path = tmp_path / 'r' / 'val_acc.csv'
    log = files.CsvLog(str(path), 'step,val_acc')
    for step in (100, 200, 300):
        log.append(step, step / 1000)
    with open(path, 'a') as f:
        f.write('400,0.')  # a crash in the middle of a row
    assert log.rows() == [['100', '0.1'], ['200', '0.2'], ['300', '0.3']]  # the cut row is not one
    log.truncate_after(200)
    assert path.read_text() == 'step,val_acc\n100,0.1\n200,0.2\n'
    files.CsvLog(str(path), 'step,val_acc').append(300, 0.5)  # reopening keeps rows and header
    assert path.read_text().splitlines() == ['step,val_acc', '100,0.1', '200,0.2', '300,0.5']


def test_write_pixels_reads_back_exactly_and_atomically(tmp_path):
    gray = np.random.default_rng(0).integers(0, 256, (5, 7)).astype(np.uint8)
    rgb = np.random.default_rng(1).integers(0, 256, (4, 3, 3)).astype(np.uint8)
    files.write_pixels(str(tmp_path / 'gray.png'), gray)
    files.write_pixels(str(tmp_path / 'rgb.png'), rgb)
    np.testing.assert_array_equal(read_gray_png(tmp_path / 'gray.png'), gray)  # every level 0-255 kept
    np.testing.assert_array_equal(read_png(tmp_path / 'rgb.png')[..., :3], rgb)
    # TensorFlow (predict.py's reader) decodes them to the same pixels.
    decoded = tf.io.decode_png((tmp_path / 'gray.png').read_bytes(), channels=1).numpy()[..., 0]
    np.testing.assert_array_equal(decoded, gray)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['gray.png', 'rgb.png']  # no temp file left


def test_image_grid_layout():
    images = np.stack([np.full((2, 2), k, np.uint8) for k in range(1, 6)])
    grid = files.image_grid(images, columns=3)
    assert grid.shape == (4, 6)
    assert grid[0, 0] == 1 and grid[0, 5] == 3 and grid[2, 2] == 5 and grid[3, 5] == 0
