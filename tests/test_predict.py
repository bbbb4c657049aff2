"""predict.py on images generated here: PNG/JPEG/IDX reading, MNIST-style fitting, per-file errors,
CSV and reconstruction outputs, and the architecture rebuilt from flags.json."""
import csv
import os
from pathlib import Path

import numpy as np
import pytest
import tensorflow as tf
from conftest import REAL_MNIST, make_digits, real_mnist, write_idx

import capsNet
import config
import predict
import utils
from evaluation import digit_images
from runtime import files

tf1 = tf.compat.v1

# Non-default architecture flags: restoring fails unless predict.py rebuilds the model from flags.json.
# A large --stddev for W gives an untrained model capsule lengths that differ between images.
ARCH_FLAGS = ['--digit_caps_bias=True', '--primary_caps_relu=False', '--leaky_routing=True', '--stddev=1.0']


def build_model(cfg):
    images = tf1.placeholder(tf.float32, [None, 28, 28, 1])
    model = capsNet.CapsNet(images, tf.zeros(tf.shape(images)[:1], tf.int32), cfg, training=False)
    return images, model


@pytest.fixture(scope='module')
def logdir(tmp_path_factory):
    """A checkpoint of an untrained model (random weights), saved as a training run would save it."""
    folder = tmp_path_factory.mktemp('predict') / 'logdir'
    flags = config.parse(ARCH_FLAGS + ['--logdir', str(folder)])
    config.save_flags(flags, str(folder / 'flags.json'))
    with tf.Graph().as_default():
        tf1.set_random_seed(3)
        build_model(capsNet.ModelConfig.from_flags(flags))
        step = tf1.train.get_or_create_global_step()
        saver = tf1.train.Saver()
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            bias = [v for v in tf1.global_variables() if v.op.name == 'digit_caps/biases'][0]
            bias.load(np.random.default_rng(0).normal(scale=0.3, size=(10, 16)), sess)
            step.load(42, sess)
            saver.save(sess, str(folder / 'model.ckpt'), global_step=42)
    return folder


def reference_outputs(logdir, digits):
    """Lengths [N, 10] of the checkpoint on float digits [N, 28, 28], computed without predict.py."""
    flags = config.parse(ARCH_FLAGS)
    with tf.Graph().as_default():
        images, model = build_model(capsNet.ModelConfig.from_flags(flags))
        saver = tf1.train.Saver()
        with tf1.Session() as sess:
            saver.restore(sess, tf.train.latest_checkpoint(str(logdir)))
            return sess.run(model.lengths, {images: digits[..., None]})


def read_rows(path):
    with open(path) as f:
        return list(csv.reader(f))


@pytest.mark.slow
def test_folder_of_pngs_idx_and_bad_files(logdir, tmp_path, capsys):
    x, _ = make_digits(6, seed=11)
    folder = tmp_path / 'pngs'
    for k in range(4):
        files.write_pixels(str(folder / ('digit%d.png' % k)), x[k])
    (folder / 'broken.png').write_bytes(b'\x89PNG\r\n\x1a\n not really')
    (folder / 'README.txt').write_text('skipped: no image extension')
    idx = write_idx(tmp_path / 'more-images-idx3-ubyte.gz', x[4:])
    (tmp_path / 'notes.txt').write_text('not an image')
    out_csv, recon = tmp_path / 'out' / 'predictions.csv', tmp_path / 'recon'

    code = predict.main([str(folder), str(idx), str(tmp_path / 'notes.txt'), str(tmp_path / 'gone.png'),
                         '--logdir', str(logdir), '--output', str(out_csv), '--reconstructions', str(recon)])
    out, err = capsys.readouterr()
    assert code == 1  # some files failed; the rest were still predicted
    error_lines = [line for line in err.splitlines() if line.startswith('error: ')]
    assert len(error_lines) == 3
    assert any('broken.png' in e and 'corrupt PNG image (Invalid PNG' in e for e in error_lines)
    assert any('notes.txt' in e and 'not a PNG' in e for e in error_lines)
    assert any('gone.png' in e and 'cannot read' in e for e in error_lines)
    assert 'skipped 1 file' in err

    names = [str(folder / ('digit%d.png' % k)) for k in range(4)] + ['%s[%d]' % (idx, k) for k in range(2)]
    expected = reference_outputs(logdir, x / 255.0)
    rows = read_rows(out_csv)
    assert rows[0] == ['file', 'prediction'] + ['length_%d' % k for k in range(10)] + ['reconstruction']
    assert [r[0] for r in rows[1:]] == names
    lengths = np.array([[float(v) for v in r[2:12]] for r in rows[1:]])
    np.testing.assert_allclose(lengths, expected, atol=2e-6)
    assert [int(r[1]) for r in rows[1:]] == list(expected.argmax(1))
    assert np.ptp(lengths, axis=0).max() > 1e-3  # the images really got different scores
    for name, row in zip(names, rows[1:]):
        assert '%s: %s  lengths ' % (name, row[1]) in out
    assert 'step 42' in out

    # input | reconstruction: the left half is exactly the image the model saw.
    first = Path(rows[1][-1])
    assert first.parent == recon and first.name == 'digit0.png'
    pair = tf.io.decode_png(first.read_bytes()).numpy()[..., 0]
    assert pair.shape == (28, 56) and np.array_equal(pair[:, :28], x[0])
    assert Path(rows[6][-1]).name == 'more-images-idx3-ubyte.gz_1.png'


@pytest.mark.slow
def test_architecture_comes_from_flags_json(logdir, tmp_path, capsys):
    x, _ = make_digits(1, seed=12)
    files.write_pixels(str(tmp_path / 'd.png'), x[0])
    bare = tmp_path / 'bare'
    bare.mkdir()
    for f in logdir.iterdir():
        if f.name != 'flags.json':
            os.link(f, bare / f.name)
    with_flags, without = tmp_path / 'with.csv', tmp_path / 'without.csv'
    assert predict.main([str(tmp_path / 'd.png'), '--logdir', str(logdir), '--output', str(with_flags)]) == 0
    assert predict.main([str(tmp_path / 'd.png'), '--logdir', str(bare), '--output', str(without)]) == 0
    assert 'no flags.json in %s; building the model with the default flags' % bare in capsys.readouterr().err
    lengths = [np.array(read_rows(p)[1][2:], float) for p in (with_flags, without)]
    np.testing.assert_allclose(lengths[0], reference_outputs(logdir, x[:1] / 255.0)[0], atol=2e-6)
    # Same weights, other routing/ReLU: different capsule lengths. flags.json is what made them right.
    assert np.abs(lengths[0] - lengths[1]).max() > 1e-4


def test_nothing_readable_or_no_checkpoint_is_one_line_error(logdir, tmp_path, capsys):
    (tmp_path / 'a.png').write_bytes(b'junk')
    assert predict.main([str(tmp_path / 'a.png'), '--logdir', str(logdir)]) != 0
    assert 'error: no image to predict among 1 file' in capsys.readouterr().err
    x, _ = make_digits(1, seed=13)
    files.write_pixels(str(tmp_path / 'b.png'), x[0])
    assert predict.main([str(tmp_path / 'b.png'), '--logdir', str(tmp_path / 'none')]) != 0
    assert 'no checkpoint in' in capsys.readouterr().err
    assert predict.main(['--fit=bogus', str(tmp_path / 'b.png')]) == 2


# ---------------------------------------------------------------- reading and fitting (no model)
@pytest.fixture(scope='module')
def reader():
    r = digit_images.DigitReader('auto')
    yield r
    r.close()


def encode(pixels, kind='png'):
    pixels = tf.constant(np.asarray(pixels, np.uint8))
    data = tf.io.encode_png(pixels) if kind == 'png' else tf.io.encode_jpeg(pixels, quality=100)
    return data.numpy()


def read_bytes(reader, tmp_path, data, name='img.png'):
    path = tmp_path / name
    path.write_bytes(data)
    return reader.read(str(path))


def test_28x28_png_rgb_and_alpha_are_read_exactly(reader, tmp_path):
    x, _ = make_digits(1, seed=14)
    gray = x[0]
    digits, notes, from_idx = read_bytes(reader, tmp_path, encode(gray[..., None]))
    assert digits.shape == (1, 28, 28) and not from_idx and notes == []
    np.testing.assert_array_equal(digits[0], gray / 255.0)
    rgb, _, _ = read_bytes(reader, tmp_path, encode(np.repeat(gray[..., None], 3, -1)))
    np.testing.assert_allclose(rgb[0], gray / 255.0, atol=1e-12)
    # A fully transparent pixel is white paper whatever its colour; opaque ones keep theirs.
    rgba = np.concatenate([np.repeat(gray[..., None], 3, -1), np.full((28, 28, 1), 255, np.uint8)], -1)
    rgba[0, 0] = [0, 0, 0, 0]
    with_alpha, _, _ = read_bytes(reader, tmp_path, encode(rgba))
    assert with_alpha[0, 0, 0] == 1.0 and with_alpha[0, 1, 1] == pytest.approx(gray[1, 1] / 255.0)


def scan_of_a_digit(tmp_path):
    x, _ = make_digits(1, seed=15)
    path = tmp_path / 'scan.png'
    path.write_bytes(encode((255 - x[0])[..., None]))  # black-on-white scan of the same digit
    return x[0], path


def test_dark_ink_is_inverted_unless_told_otherwise(tmp_path):
    digit, path = scan_of_a_digit(tmp_path)
    auto, notes, _ = digit_images.DigitReader('auto').read(str(path))
    np.testing.assert_allclose(auto[0], digit / 255.0, atol=1e-12)
    assert notes == ['looks like dark ink on light paper: inverted it (--invert=False keeps it as is)']
    forced, notes, _ = digit_images.DigitReader('auto', invert=True).read(str(path))
    np.testing.assert_allclose(forced[0], digit / 255.0, atol=1e-12)
    assert notes == []
    kept, notes, _ = digit_images.DigitReader('auto', invert=False).read(str(path))
    np.testing.assert_allclose(kept[0], 1.0 - digit / 255.0, atol=1e-12)
    assert notes == []
    # A light-ink image is left alone by auto, and inverted when forced.
    path.write_bytes(encode(digit[..., None]))
    light, notes, _ = digit_images.DigitReader('auto').read(str(path))
    np.testing.assert_allclose(light[0], digit / 255.0, atol=1e-12)
    assert notes == []


@pytest.mark.parametrize('flag, inverted, noted', [([], True, True), (['--invert'], True, False),
                                                    (['--invert=True'], True, False),
                                                    (['--invert=False'], False, False)])
def test_predict_inverts_scans_by_itself_and_obeys_invert(flag, inverted, noted, logdir, tmp_path, capsys):
    digit, path = scan_of_a_digit(tmp_path)
    recon = tmp_path / 'recon'
    assert predict.main([str(path), '--logdir', str(logdir), '--reconstructions', str(recon)] + flag) == 0
    err = capsys.readouterr().err
    assert ('inverted it (--invert=False keeps it as is)' in err) is noted
    model_input = tf.io.decode_png((recon / 'scan.png').read_bytes()).numpy()[:, :28, 0]  # input | reconstruction
    np.testing.assert_array_equal(model_input, digit if inverted else 255 - digit)


def test_invert_flag_refuses_other_words(capsys):
    assert predict.main(['a.png', '--invert=sometimes']) == 2
    assert 'error: bad flag: argument --invert: expected True or False' in capsys.readouterr().err


def test_resize_fit_keeps_position_and_averages(tmp_path):
    x, _ = make_digits(1, seed=16)
    big = np.kron(x[0], np.ones((3, 3), np.uint8))  # 84x84, each pixel a 3x3 block
    r = digit_images.DigitReader('resize')
    digits, _, _ = read_bytes(r, tmp_path, encode(big[..., None]))
    np.testing.assert_allclose(digits[0], x[0] / 255.0, atol=1e-5)  # area shrink undoes the blow-up
    # A wide image is padded with its background to a square first: content stays in the middle rows.
    wide = np.zeros((28, 56), np.uint8)
    wide[10:18, 20:36] = 255
    out = r.fit_digit(wide / 255.0)
    assert out[:7].max() == 0 and out[21:].max() == 0 and out[7:21].max() > 0.9


def test_mnist_fit_scales_to_20_and_centres_mass():
    # An off-centre, non-square white L on a 90x60 black canvas.
    canvas = np.zeros((90, 60))
    canvas[10:70, 5:15] = 1.0
    canvas[60:70, 5:35] = 1.0
    out = digit_images.DigitReader('mnist').fit_digit(canvas)
    rows, cols = np.flatnonzero(out.max(1) > 0.2), np.flatnonzero(out.max(0) > 0.2)
    assert rows[-1] - rows[0] + 1 == 20 and cols[-1] - cols[0] + 1 == 10  # 60x30 ink -> 20x10
    mass = out.sum()
    centre = (out.sum(1) @ np.arange(28) / mass, out.sum(0) @ np.arange(28) / mass)
    assert abs(centre[0] - 14) <= 0.5 and abs(centre[1] - 14) <= 0.5

    # The same digit scanned dark on grey paper and given --invert lands in the same place.
    scan = 0.8 - 0.7 * canvas
    again = digit_images.DigitReader('mnist', invert=True).fit_digit(1.0 - scan)
    np.testing.assert_allclose(again, out, atol=1e-6)
    # A blank page stays blank instead of dividing by zero.
    assert digit_images.DigitReader('mnist').fit_digit(np.full((40, 40), 0.5)).max() == 0


@pytest.mark.skipif(not REAL_MNIST.exists(), reason='real MNIST not available')
def test_real_mnist_digits_are_nearly_fixed_points_of_the_mnist_fit():
    images, _ = utils.load_split(str(REAL_MNIST), 'test', verify=False)
    gray = images[:100] / 255.0
    reader = digit_images.DigitReader('mnist')
    fitted = np.stack([reader.fit_digit(g) for g in gray])
    # MNIST digits already fill a 20-pixel box centred by mass: fitting moves little ink.
    assert np.abs(fitted - gray).mean() < 0.005


def test_real_mnist_is_found_in_the_checkout_first_then_beside_it(tmp_path):
    root, shared = tmp_path / 'checkout', tmp_path / 'shared' / 'data' / 'mnist'
    assert real_mnist(root) == root / 'data' / 'mnist'  # neither: the tests skip, naming the usual place
    shared.mkdir(parents=True)
    write_idx(shared / 'train-images-idx3-ubyte.gz', np.zeros((1, 28, 28)))
    assert real_mnist(root) == shared
    (root / 'data' / 'mnist').mkdir(parents=True)
    assert real_mnist(root) == shared  # an empty data/mnist does not hide the shared copy
    write_idx(root / 'data' / 'mnist' / 'train-images-idx3-ubyte', np.zeros((1, 28, 28)), compress=False)
    assert real_mnist(root) == root / 'data' / 'mnist'


# ---------------------------------------------------------------- a real trained model: the shipped one
@pytest.mark.slow
@pytest.mark.skipif(not REAL_MNIST.exists(), reason='real MNIST not available')
def test_real_mnist_test_images_as_png_and_scans(tmp_path, capsys):
    """Real test digits written as PNGs, and as 3x larger black-on-white RGB JPEG 'scans' read with
    auto-inversion (so they go through the MNIST fit), are classified as their labels by the model
    shipped in pretrained/ (trained on real MNIST; a model trained here in seconds would not be)."""
    images, labels = utils.load_split(str(REAL_MNIST), 'test', verify=False)
    n = 20
    for k in range(n):
        files.write_pixels(str(tmp_path / 'png' / ('%02d_label%d.png' % (k, labels[k]))), images[k])
        scan = np.repeat(np.kron(255 - images[k], np.ones((3, 3), np.uint8))[..., None], 3, -1)
        scan = np.pad(scan, ((10, 30), (25, 5), (0, 0)), constant_values=255)  # off-centre on paper
        (tmp_path / 'scan').mkdir(exist_ok=True)
        (tmp_path / 'scan' / ('%02d.jpg' % k)).write_bytes(encode(scan, 'jpeg'))
    for folder in ('png', 'scan'):  # the scans are inverted by themselves
        out = tmp_path / (folder + '.csv')
        assert predict.main([str(tmp_path / folder), '--logdir', str(tmp_path / 'unused'),
                             '--checkpoint', 'pretrained', '--output', str(out)]) == 0
        predicted = np.array([int(r[1]) for r in read_rows(out)[1:]])
        print(folder, 'predicted', predicted.tolist(), 'labels', labels[:n].tolist())
        assert np.mean(predicted == labels[:n]) >= 0.95


# ---------------------------------------------------------------- outputs and MNIST folders
def test_unwritable_outputs_are_refused_before_predicting(logdir, tmp_path, capsys):
    x, _ = make_digits(1, seed=14)
    files.write_pixels(str(tmp_path / 'd.png'), x[0])
    blocker = tmp_path / 'plain_file'
    blocker.write_text('x')
    cases = [(['--reconstructions', str(blocker)], '--reconstructions=%s is a file, not a folder' % blocker),
             (['--output', str(blocker / 'x.csv')],
              '--output=%s cannot be written: %s is a file, not a folder; choose another --output'
              % (blocker / 'x.csv', blocker)),
             (['--output', str(tmp_path)], '--output=%s is a folder; give a file name' % tmp_path)]
    for extra, message in cases:
        assert predict.main([str(tmp_path / 'd.png'), '--logdir', str(logdir)] + extra) == 1
        out, err = capsys.readouterr()
        assert out == ''  # refused before a single prediction was printed
        assert err.count('\n') == 1 and err.startswith('error: ') and message in err, err


def test_label_files_of_an_mnist_folder_are_skipped_with_a_note(logdir, tmp_path, capsys):
    x, y = make_digits(3, seed=15)
    folder = tmp_path / 'mnist'
    folder.mkdir()
    write_idx(folder / 't10k-images-idx3-ubyte.gz', x)
    write_idx(folder / 't10k-labels-idx1-ubyte.gz', y)
    write_idx(folder / 'train-labels-idx1-ubyte', y, compress=False)
    assert predict.main([str(folder), '--logdir', str(logdir)]) == 0
    out, err = capsys.readouterr()
    assert out.count('t10k-images-idx3-ubyte.gz[') == 3
    assert 'error' not in err
    for name in ('t10k-labels-idx1-ubyte.gz', 'train-labels-idx1-ubyte'):
        assert 'note: %s: IDX labels (idx1), not images: skipped' % (folder / name) in err


def test_missing_best_and_damaged_checkpoints_are_one_line(logdir, tmp_path, capsys):
    x, _ = make_digits(1, seed=16)
    files.write_pixels(str(tmp_path / 'd.png'), x[0])
    empty = tmp_path / 'empty'
    empty.mkdir()
    cases = [(empty, 'latest', 'no checkpoint in %s; train first with: python main.py --logdir=%s' % (empty, empty)),
             (logdir, 'best', 'no validation-selected checkpoint in %s' % (logdir / 'best'))]
    # A chosen checkpoint (best/) whose weights are cut short: no fallback, one line.
    damaged = tmp_path / 'damaged'
    (damaged / 'best').mkdir(parents=True)
    for f in logdir.iterdir():
        if f.is_file():
            (damaged / f.name).write_bytes(f.read_bytes())
            (damaged / 'best' / f.name).write_bytes(f.read_bytes()[:40] if '.data-' in f.name else f.read_bytes())
    cases.append((damaged, 'best', 'pick another one or retrain'))
    for folder, which, message in cases:
        assert predict.main([str(tmp_path / 'd.png'), '--logdir', str(folder), '--checkpoint', which]) == 1
        out, err = capsys.readouterr()
        assert err.count('\n') == 1 and err.startswith('error: ') and message in err, err
    assert 'checkpoint %s cannot be read (' % (damaged / 'best' / 'model.ckpt-42') in err


def test_choices_spelled_out_for_the_parser_match_the_modules():
    assert predict.FIT_CHOICES == digit_images.FITS
