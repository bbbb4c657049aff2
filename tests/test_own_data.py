"""Other data than MNIST: image folders, CIFAR-10 batches and smallNORB files, all written here in their
published formats; the network built for their size, channels and classes; MNIST unchanged."""
import gzip
import io
import json
import pickle
import struct
import tarfile
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf

import capsNet
import config
import model_spec
import utils
from conftest import make_digits, run_main, tiny_run_args, write_idx
from readers import DataError, cifar10, image_folder, smallnorb

tf1 = tf.compat.v1


def encode_png(pixels):
    """PNG bytes of uint8 [H, W, C], encoded by TensorFlow (lossless, so they decode to the same array)."""
    return tf.io.encode_png(tf.constant(pixels)).numpy()


def write_folder(root, split, images, labels, names, ext='.png'):
    for k, (pixels, label) in enumerate(zip(images, labels)):
        folder = Path(root) / split / names[label]
        folder.mkdir(parents=True, exist_ok=True)
        (folder / ('%05d%s' % (k, ext))).write_bytes(encode_png(pixels))


def blocks(num, height, width, channels, classes, seed):
    """Learnable images: class k lights a bright block at its own place on a noisy background."""
    rng = np.random.default_rng(seed)
    labels = np.arange(num) % classes
    images = (rng.random((num, height, width, channels)) * 40).astype(np.uint8)
    for n, k in enumerate(labels):
        images[n, 2 + 5 * k:8 + 5 * k, 3:9] = 255
    return images, labels


def rgb_folder(root, height=32, width=32, train=60, test=12):
    names = ['cat', 'dog', 'emu']
    x, y = blocks(train, height, width, 3, 3, 0)
    write_folder(root, 'train', x, y, names)
    tx, ty = blocks(test, height, width, 3, 3, 1)
    write_folder(root, 'test', tx, ty, names)
    return Path(root), (x, y), (tx, ty)


def test_folder_reads_rgb_and_gray_images_of_any_size_in_class_order(tmp_path):
    x, y = blocks(12, 30, 44, 3, 3, 0)  # not square, not 28 x 28
    names = ['zebra', 'ant', 'moth']     # classes are labelled in sorted order: ant, moth, zebra
    write_folder(tmp_path / 'rgb', 'train', x, y, names)
    data = image_folder.read_split(str(tmp_path / 'rgb'), 'train')
    assert data.class_names == ['ant', 'moth', 'zebra']
    assert data.images.shape == (12, 30, 44, 3) and data.images.dtype == np.uint8
    # Folder order: class by class, files by name; each image is exactly the one written.
    for name in names:
        written = x[[k for k in range(12) if names[y[k]] == name]]
        got = data.images[data.labels == data.class_names.index(name)]
        np.testing.assert_array_equal(got, written)
    gray, gy = blocks(6, 20, 25, 1, 2, 3)
    write_folder(tmp_path / 'gray', 'train', gray, gy, ['a', 'b'])
    g = image_folder.read_split(str(tmp_path / 'gray'), 'train')
    assert g.images.shape == (6, 20, 25, 1)
    np.testing.assert_array_equal(g.images[g.labels == 0], gray[gy == 0])


def test_image_size_and_channels_convert_every_image(tmp_path, capsys):
    x, _ = blocks(2, 40, 40, 3, 2, 0)
    small, _ = blocks(2, 20, 30, 3, 2, 1)
    files = (('a/big.png', x[0]), ('a/small.png', small[0]), ('b/big.png', x[1]), ('b/small.png', small[1]))
    for name, pixels in files:
        (tmp_path / 'train' / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / 'train' / name).write_bytes(encode_png(pixels))
    with pytest.raises(DataError, match='small.png is 20x30 but .*big.png is 40x40; give --image_size'):
        image_folder.read_split(str(tmp_path), 'train')
    data = image_folder.read_split(str(tmp_path), 'train', image_size=(24, 36), channels=1)
    assert data.images.shape == (4, 24, 36, 1)
    assert 'resized' in capsys.readouterr().err
    # Gray by ITU-R BT.601 luma, as tf.image.rgb_to_grayscale: a pure red 40x40 image stays uniform.
    red = np.zeros((1, 40, 40, 3), np.uint8)
    red[..., 0] = 200
    from readers import ImageOps
    with ImageOps() as ops:
        gray = ops.to_channels(red, 1)
        assert gray.shape == (1, 40, 40, 1) and abs(int(gray[0, 0, 0, 0]) - round(0.299 * 200)) <= 1
        assert ops.resize(red, (20, 20)).shape == (1, 20, 20, 3)


def test_validation_split_keeps_every_class_and_follows_the_seed():
    labels = np.repeat(np.arange(4), [50, 30, 15, 5])
    train, val = utils.class_preserving_split(labels, 20, seed=1)
    assert len(val) == 20 and len(train) == 80 and not set(train) & set(val)
    assert set(labels[train]) == set(labels[val]) == {0, 1, 2, 3}
    assert list(np.bincount(labels[val])) == [10, 6, 3, 1]  # in proportion to the class sizes
    again, other = utils.class_preserving_split(labels, 20, 1)[1], utils.class_preserving_split(labels, 20, 2)[1]
    np.testing.assert_array_equal(val, again)
    assert set(val) != set(other)
    with pytest.raises(DataError, match='--val_size'):
        utils.class_preserving_split(labels, 97, seed=1)  # would leave a class with no training image


def test_reconstruction_weight_is_0_0005_per_summed_value():
    spec = model_spec.InputSpec(24, 20, 3, 4)
    rng = np.random.default_rng(0)
    x = rng.random((2, 24, 20, 3)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        model = capsNet.CapsNet(tf.constant(x), tf.constant([1, 3]), spec=spec)
        assert model.reconstructions.shape.as_list()[1] == 24 * 20 * 3
        shapes = {v.op.name: v.shape.as_list() for v in tf1.trainable_variables()}
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            margin, recon, total = sess.run([model.margin_loss, model.reconstructions, model.total_loss])
    # Conv1 16x12 -> PrimaryCaps 4x2 grid of 32 types; 4 classes; the decoder draws 24 x 20 x 3 values.
    assert shapes['conv1/weights'] == [9, 9, 3, 256]
    assert shapes['digit_caps/W'] == [4 * 2 * 32, 4, 8, 16]
    assert shapes['decoder/fc3/weights'] == [1024, 24 * 20 * 3]
    summed = np.sum((recon - x.reshape(2, -1)) ** 2, axis=1).mean()
    assert total == pytest.approx(margin + 0.0005 * summed, rel=1e-5)
    assert capsNet.reconstruction_weight(capsNet.ModelConfig(), model_spec.MNIST_SPEC) == 0.392


def test_random_crops_are_stateless_and_test_crops_centred():
    images = tf.constant(np.arange(2 * 6 * 7 * 1).reshape(2, 6, 7, 1), tf.float32)
    seed = tf.constant([3, 9], tf.int64)
    first = utils.random_crop_batch(images, (4, 4), seed).numpy()
    again = utils.random_crop_batch(images, (4, 4), seed).numpy()
    np.testing.assert_array_equal(first, again)
    full = images.numpy()
    for n in range(2):  # every crop is a window of its own image
        windows = [full[n, r:r + 4, c:c + 4] for r in range(3) for c in range(4)]
        assert any(np.array_equal(first[n], w) for w in windows)
    others = {utils.random_crop_batch(images, (4, 4), tf.constant([3, s], tf.int64)).numpy().tobytes()
              for s in range(10)}
    assert len(others) > 1
    np.testing.assert_array_equal(utils.centre_crop(full, 4, 5), full[:, 1:5, 1:6])


def write_cifar(folder, per_batch=8, seed=0):
    """The python batches as published: pickled dicts with bytes keys, data rows R, G, B planes."""
    rng = np.random.default_rng(seed)
    folder = Path(folder) / cifar10.FOLDER
    folder.mkdir(parents=True)
    expected = {}
    for name in cifar10.FILES['train'] + cifar10.FILES['test']:
        images = rng.integers(0, 256, (per_batch, 32, 32, 3), dtype=np.uint8)
        labels = [int(v) for v in rng.integers(0, 10, per_batch)]
        rows = images.transpose(0, 3, 1, 2).reshape(per_batch, 3072)
        batch = {b'batch_label': name.encode(), b'labels': labels, b'data': rows, b'filenames': [b'x.png'] * per_batch}
        (folder / name).write_bytes(pickle.dumps(batch, protocol=2))
        expected[name] = (images, labels)
    meta = {b'label_names': [n.encode() for n in cifar10.CLASS_NAMES[::-1]], b'num_vis': 3072}
    (folder / cifar10.META).write_bytes(pickle.dumps(meta, protocol=2))
    return folder, expected


def test_cifar10_batches_read_as_published_folder_or_archive(tmp_path):
    folder, expected = write_cifar(tmp_path / 'c')
    test = cifar10.read_split(str(tmp_path / 'c'), 'test')
    np.testing.assert_array_equal(test.images, expected['test_batch'][0])
    assert list(test.labels) == expected['test_batch'][1]
    assert test.class_names == cifar10.CLASS_NAMES[::-1]  # batches.meta decides the names
    train = cifar10.read_split(str(folder), 'train')
    assert train.images.shape == (40, 32, 32, 3)
    np.testing.assert_array_equal(train.images[8:16], expected['data_batch_2'][0])
    archive = tmp_path / 'a' / cifar10.ARCHIVE
    archive.parent.mkdir()
    with tarfile.open(archive, 'w:gz') as tar:
        tar.add(str(folder), arcname=cifar10.FOLDER)
    from_archive = cifar10.read_split(str(archive.parent), 'train')
    np.testing.assert_array_equal(from_archive.images, train.images)
    # A batch of the wrong size and a file that is no pickle are refused, naming the file.
    bad = pickle.loads((folder / 'test_batch').read_bytes())
    bad[b'data'] = bad[b'data'][:, :3000]
    (folder / 'test_batch').write_bytes(pickle.dumps(bad, protocol=2))
    with pytest.raises(DataError) as refused:
        cifar10.read_split(str(folder), 'test')
    assert 'test_batch holds uint8 [8, 3000] data, expected uint8 [N, 3072] (32x32 RGB rows)' in str(refused.value)
    (folder / 'test_batch').write_bytes(b'\x80\x02}q\x00(X')
    with pytest.raises(DataError, match='test_batch is not a CIFAR-10 python batch'):
        cifar10.read_split(str(folder), 'test')


def norb_matrix(array):
    """A smallNORB binary matrix: magic, ndim, at least 3 dims (int32 little-endian), data."""
    magic = 0x1E3D4C55 if array.dtype == np.uint8 else 0x1E3D4C54
    dims = list(array.shape) + [1] * max(0, 3 - array.ndim)
    return struct.pack('<ii', magic, array.ndim) + struct.pack('<' + 'i' * len(dims), *dims) + array.tobytes()


def write_norb(folder, num=10, seed=0, compress=False):
    rng = np.random.default_rng(seed)
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    out = {}
    for split, prefix in smallnorb.PREFIX.items():
        pairs = rng.integers(0, 256, (num, 2, 96, 96), dtype=np.uint8)
        labels = (np.arange(num) % 5).astype('<i4')
        for kind, array in (('dat', pairs), ('cat', labels)):
            raw = norb_matrix(array)
            name = '%s-%s.mat' % (prefix, kind)
            if compress:
                (folder / (name + '.gz')).write_bytes(gzip.compress(raw))
            else:
                (folder / name).write_bytes(raw)
        out[split] = (pairs, labels)
    return folder, out


def test_smallnorb_files_read_as_stereo_channels(tmp_path):
    folder, written = write_norb(tmp_path / 'n')
    data = smallnorb.read_split(str(folder), 'train')
    pairs, labels = written['train']
    assert data.images.shape == (10, 96, 96, 2) and data.class_names[4] == 'car'
    np.testing.assert_array_equal(data.images[..., 1], pairs[:, 1])
    np.testing.assert_array_equal(data.labels, labels)
    first = smallnorb.read_split(str(folder), 'test', channels=1)
    np.testing.assert_array_equal(first.images[..., 0], written['test'][0][:, 0])
    gz, _ = write_norb(tmp_path / 'z', compress=True)
    np.testing.assert_array_equal(smallnorb.read_split(str(gz), 'train').images, data.images)
    path = folder / ('%s-dat.mat' % smallnorb.PREFIX['train'])
    raw = path.read_bytes()
    path.write_bytes(raw[:-5])
    with pytest.raises(DataError, match='truncated or padded'):
        smallnorb.read_split(str(folder), 'train')
    path.write_bytes(b'\x00\x00\x00\x00' + raw[4:])
    with pytest.raises(DataError, match='not a smallNORB uint8 or int32 matrix'):
        smallnorb.read_split(str(folder), 'train')
    path.write_bytes(raw)
    cat = folder / ('%s-cat.mat' % smallnorb.PREFIX['train'])
    cat.write_bytes(norb_matrix(np.full(10, 7, '<i4')))
    with pytest.raises(DataError, match='has categories outside 0..4'):
        smallnorb.read_split(str(folder), 'train')
    with pytest.raises(config.ConfigError, match=r'--channels 3 does not fit smallNORB \(gray stereo pairs\)'):
        smallnorb.read_split(str(folder), 'test', channels=3)


def test_missing_folders_and_batches_name_the_layout(tmp_path):
    with pytest.raises(DataError, match='no folder .*; a folder dataset needs DIR/train/<class>/ and '
                                        'DIR/test/<class>/'):
        image_folder.class_folders(str(tmp_path / 'nothing'))
    (tmp_path / 'flat').mkdir()
    with pytest.raises(DataError, match='flat has no class folders'):
        image_folder.class_folders(str(tmp_path / 'flat'))
    with pytest.raises(DataError, match='flat holds no PNG, JPEG, BMP or GIF image'):
        image_folder.image_files(str(tmp_path / 'flat'))
    with pytest.raises(DataError, match='no CIFAR-10 batches in '):
        cifar10.read_split(str(tmp_path / 'flat'), 'train')


def last_line(capsys):
    err = capsys.readouterr().err.strip().splitlines()
    return err[-1] if err else ''


def test_bad_folders_and_files_get_one_line_and_train_nothing(tmp_path, capsys):
    root, _, _ = rgb_folder(tmp_path / 'd', train=12, test=3)
    work = tmp_path / 'w'

    def run(*extra):
        return run_main(tiny_run_args(root, work, '--dataset', 'folder', '--val_size', '3', *extra))

    (root / 'train' / 'empty').mkdir()
    assert run() == 1
    assert 'class folder %s holds no PNG' % (root / 'train' / 'empty') in last_line(capsys)
    (root / 'train' / 'empty').rmdir()
    (root / 'test' / 'fox').mkdir()
    (root / 'test' / 'fox' / 'a.png').write_bytes(encode_png(np.zeros((32, 32, 3), np.uint8)))
    assert run('--is_training=False') == 1
    line = last_line(capsys)
    assert 'fox' in line and '%s does not; a model only knows the classes it' % (root / 'train') in line
    truncated = root / 'train' / 'cat' / '00000.png'
    good = truncated.read_bytes()
    truncated.write_bytes(good[:len(good) // 2])
    assert run() == 1
    assert '%s is not a readable PNG, JPEG, BMP or GIF image (truncated or corrupt)' % truncated in last_line(capsys)
    truncated.write_bytes(encode_png(np.zeros((20, 32, 3), np.uint8)))
    assert run() == 1
    line = last_line(capsys)
    assert 'give --image_size HxW to resize every image to one' in line and str(truncated) in line
    truncated.write_bytes(encode_png(np.zeros((32, 32, 1), np.uint8)))  # gray among RGB images
    assert run() == 1
    assert 'give --channels 1 (gray) or --channels 3 (RGB)' in last_line(capsys)
    truncated.write_bytes(good)
    (root / 'test' / 'fox' / 'a.png').unlink()
    (root / 'test' / 'fox').rmdir()
    assert run('--crop', '40x40') == 2
    assert '--crop=40x40 is larger' in last_line(capsys)
    assert run('--image_size', 'big') == 2
    assert '--image_size=big: give HEIGHTxWIDTH in pixels, e.g. 48x48 or 32x40' in last_line(capsys)
    assert run('--image_size', '12x12') == 2
    assert '12x12 inputs are too small for Conv1 and PrimaryCaps (9x9 kernels)' in last_line(capsys)
    assert not (work / 'logdir').exists() or not list((work / 'logdir').glob('model.ckpt*'))


def checkpoint_weights(logdir):
    reader = tf.train.load_checkpoint(str(logdir))
    return {name: reader.get_tensor(name) for name, _ in tf.train.list_variables(str(logdir))}


def test_mnist_as_png_folders_reads_and_trains_like_the_idx_files(tmp_path):
    images, labels = make_digits(120, 5)
    test_x, test_y = make_digits(20, 6)
    idx = tmp_path / 'idx'
    idx.mkdir()
    write_idx(idx / 'train-images-idx3-ubyte.gz', images)
    write_idx(idx / 'train-labels-idx1-ubyte.gz', labels)
    write_idx(idx / 't10k-images-idx3-ubyte.gz', test_x)
    write_idx(idx / 't10k-labels-idx1-ubyte.gz', test_y)
    names = [str(k) for k in range(10)]
    write_folder(tmp_path / 'png', 'train', images[..., None], labels, names)
    write_folder(tmp_path / 'png', 'test', test_x[..., None], test_y, names)
    folder = image_folder.read_split(str(tmp_path / 'png'), 'train')
    order = np.argsort(labels, kind='stable')  # the folder lists class 0's files first, by name
    np.testing.assert_array_equal(folder.images[..., 0], images[order])
    np.testing.assert_array_equal(folder.labels, labels[order])
    # The folder's seeded validation split, written back as IDX files with those images last, so the
    # IDX reader's 'last val_size images' is the same split: both runs must then be the same run.
    cfg = config.parse(['--dataset', 'folder', '--data_dir', str(tmp_path / 'png'), '--val_size', '40'])
    train, val = utils.load_train_val_data(cfg)
    same = tmp_path / 'same'
    same.mkdir()
    write_idx(same / 'train-images-idx3-ubyte.gz', np.concatenate([train.images, val.images])[..., 0])
    write_idx(same / 'train-labels-idx1-ubyte.gz', np.concatenate([train.labels, val.labels]))
    for name in ('t10k-images-idx3-ubyte.gz', 't10k-labels-idx1-ubyte.gz'):
        (same / name).write_bytes((idx / name).read_bytes())
    steps = ['--max_steps', '3', '--train_sum_freq', '1']
    assert run_main(tiny_run_args(same, tmp_path / 'a', *steps)) == 0
    assert run_main(tiny_run_args(tmp_path / 'png', tmp_path / 'b', '--dataset', 'folder', *steps)) == 0
    losses = [(tmp_path / w / 'results' / 'loss.csv').read_text() for w in 'ab']
    assert losses[0] == losses[1] and len(losses[0].splitlines()) == 4
    a, b = checkpoint_weights(tmp_path / 'a' / 'logdir'), checkpoint_weights(tmp_path / 'b' / 'logdir')
    assert sorted(a) == sorted(b)
    for name in a:
        np.testing.assert_array_equal(a[name], b[name], err_msg=name)


@pytest.mark.slow
def test_rgb_folder_trains_tests_and_predicts_by_class_name(tmp_path, capsys):
    import predict
    root, _, (tx, ty) = rgb_folder(tmp_path / 'd', test=27)  # the figures need 25 test images
    args = tiny_run_args(root, tmp_path / 'w', '--dataset', 'folder', '--val_size', '6')
    assert run_main(args) == 0
    flags = json.loads((tmp_path / 'w' / 'logdir' / 'flags.json').read_text())
    assert flags['input_spec']['class_names'] == ['cat', 'dog', 'emu']
    assert flags['input_spec']['channels'] == 3 and flags['input_spec']['height'] == 32
    capsys.readouterr()
    assert run_main(args + ['--is_training=False']) == 0
    out = capsys.readouterr().out
    assert 'test accuracy' in out and '/ 27 (' in out  # all 27 test images, of all three classes
    assert 'emu' in out  # per-class lines by name
    per_class = (tmp_path / 'w' / 'results' / 'per_class_accuracy.csv').read_text().splitlines()
    assert [line.split(',')[1] for line in per_class[1:]] == ['cat', 'dog', 'emu']
    capsys.readouterr()
    assert predict.main([str(root / 'test' / 'dog'), '--logdir', str(tmp_path / 'w' / 'logdir'),
                         '--output', str(tmp_path / 'p.csv'), '--reconstructions', str(tmp_path / 'r')]) == 0
    lines = [line for line in capsys.readouterr().out.splitlines() if 'lengths' in line]
    assert len(lines) == 9 and all(line.split(': ')[1].split()[0] in ('cat', 'dog', 'emu') for line in lines)
    rows = (tmp_path / 'p.csv').read_text().splitlines()
    assert rows[0].startswith('file,prediction,class,length_0,length_1,length_2')
    assert len(list((tmp_path / 'r').glob('*.png'))) == 9
    # The figures and the robustness test take the size, channels and class names from flags.json too.
    from tools import figures
    assert figures.run(args + ['--is_training=False']) == 0
    from conftest import read_png
    recon = read_png(tmp_path / 'w' / 'results' / 'reconstructions.png')
    colour = recon[..., :3].astype(int)
    assert np.abs(colour[..., 0] - colour[..., 1]).max() > 0  # drawn in colour, not as gray digits
    assert run_main(args + ['--is_training=False', '--robustness']) == 0
    assert (tmp_path / 'w' / 'results' / 'robustness.csv').exists()


@pytest.mark.slow
def test_cifar10_and_smallnorb_train_and_test_on_generated_files(tmp_path, capsys):
    write_cifar(tmp_path / 'c', per_batch=12)
    c_args = tiny_run_args(tmp_path / 'c', tmp_path / 'cw', '--dataset', 'cifar10', '--val_size', '20',
                           '--crop', '24x24', '--leaky_routing', '--max_steps', '2')
    assert run_main(c_args) == 0
    spec = json.loads((tmp_path / 'cw' / 'logdir' / 'flags.json').read_text())['input_spec']
    assert (spec['height'], spec['width'], spec['channels'], spec['classes']) == (24, 24, 3, 10)
    assert run_main(c_args + ['--is_training=False']) == 0
    assert 'test accuracy' in capsys.readouterr().out
    write_norb(tmp_path / 'n', num=30)
    n_args = tiny_run_args(tmp_path / 'n', tmp_path / 'nw', '--dataset', 'smallnorb', '--val_size', '10',
                           '--image_size', '48x48', '--crop', '32x32', '--max_steps', '2')
    assert run_main(n_args) == 0
    spec = json.loads((tmp_path / 'nw' / 'logdir' / 'flags.json').read_text())['input_spec']
    assert (spec['height'], spec['channels'], spec['classes'], spec['image_height']) == (32, 2, 5, 48)
    # Testing reads size and crop from flags.json: no --image_size/--crop needed here.
    assert run_main(tiny_run_args(tmp_path / 'n', tmp_path / 'nw', '--dataset', 'smallnorb',
                                  '--is_training=False', '--robustness')) == 0
    assert 'robustness' in capsys.readouterr().out
    # Resuming with another input size is refused (exit 2), not silently trained on.
    assert run_main(n_args[:-2] + ['--max_steps', '4', '--crop', '30x30']) == 2
    line = last_line(capsys)
    assert 'holds a run trained on 32x32x2 crops of 48x48 images' in line
    assert 'but the data and flags now give 30x30x2 crops' in line


def test_test_images_and_predictions_are_prepared_as_the_run_trained(tmp_path):
    import predict
    root, _, (tx, ty) = rgb_folder(tmp_path / 'd', train=6, test=6)
    spec = model_spec.InputSpec(24, 20, 3, 3)
    run = {'input_spec': dict(vars(spec), image_height=32, image_width=32, class_names=['cat', 'dog', 'emu']),
           'crop': '24x20', 'image_size': None, 'channels': None, 'dataset': 'folder'}
    cfg = config.parse(['--dataset', 'folder', '--data_dir', str(root)])
    test = utils.load_test_set(cfg, run)
    order = np.argsort(ty, kind='stable')
    np.testing.assert_array_equal(test.images, tx[order][:, 4:28, 6:26])  # the centre 24 x 20 window
    # The training pipeline's centre crop (validation) is the same window.
    graph = tf.Graph()
    with graph.as_default():
        pipeline = utils.InputPipeline(6, False, 1, image_shape=(32, 32, 3), crop=(24, 20))
        with tf1.Session(graph=graph) as sess:
            pipeline.initialize(sess, tx, ty.astype(np.uint8))
            fed = sess.run(pipeline.images)
    np.testing.assert_allclose(fed, tx[:, 4:28, 6:26] / 255.0, atol=1e-7)
    # predict.py: a file gets the same preparation (here no resize: the files are 32 x 32 already).
    files = sorted(str(p) for p in (root / 'test' / 'dog').glob('*.png'))
    names, images, _, errors = predict.read_as_trained(files, run)
    assert names == files and not errors
    np.testing.assert_allclose(images, test.images[test.labels == 1] / 255.0, atol=1e-7)
    # Another folder's classes, or images the crop does not fit, are refused in one line.
    other, _, _ = rgb_folder(tmp_path / 'o', height=20, width=20, train=6, test=3)
    with pytest.raises(DataError, match='the model was trained on 24x20x3'):
        utils.load_test_set(config.parse(['--dataset', 'folder', '--data_dir', str(other)]), run)
    renamed = dict(run, input_spec=dict(run['input_spec'], class_names=['a', 'b', 'c']))
    with pytest.raises(DataError, match='has the classes cat,dog,emu but the model was trained on a,b,c'):
        utils.load_test_set(cfg, renamed)
