"""MultiMNIST (paper section 6): the pair generator, the two-target losses and rule of capsLayer, and
the Figure 5 drawing. Generated digits only; no data files, no training."""
import itertools

import numpy as np
import pytest

import capsLayer
from readers import multimnist as mm
from runtime.errors import UserError, run_cli

NUM_CLASSES = 10


def full_digits(num, seed, lo=1, hi=200):
    """Digits whose every pixel is nonzero, so a canvas's nonzero box is exactly where the 28 x 28
    image landed, and labels cycling through all classes."""
    rng = np.random.default_rng(seed)
    images = rng.integers(lo, hi, size=(num, 28, 28)).astype(np.uint8)
    labels = (np.arange(num) % NUM_CLASSES).astype(np.uint8)
    return images, labels


def landed_shift(canvases):
    """(dy, dx) of each full 28 x 28 digit on its canvas, read from its pixels alone: int [N, 2]."""
    rows = canvases.any(axis=2).argmax(axis=1)
    cols = canvases.any(axis=1).argmax(axis=1)
    return np.stack([rows, cols], axis=1) - mm.MARGIN


def test_shifts_stay_within_four_pixels_and_cover_every_value():
    images, labels = full_digits(2000, seed=0)
    pairs = mm.epoch_pairs(images, labels, seed=3, epoch=0)
    layout = mm.epoch_layout(labels, 3, 0)
    for canvas, shift in ((pairs.digit_a, layout.shift_a), (pairs.digit_b, layout.shift_b)):
        seen = landed_shift(canvas)
        np.testing.assert_array_equal(seen, shift)          # the layout says what the pixels show
        assert np.abs(seen).max() <= mm.MAX_SHIFT
        for axis in (0, 1):
            assert set(np.unique(seen[:, axis])) == set(range(-mm.MAX_SHIFT, mm.MAX_SHIFT + 1))
        # A moved digit is still whole: nothing was cropped by the canvas edge.
        assert (canvas > 0).sum(axis=(1, 2)).min() == 28 * 28


def test_each_digit_is_its_own_image_moved_and_merged_is_the_clipped_sum():
    images, labels = full_digits(300, seed=1)
    pairs = mm.epoch_pairs(images, labels, seed=5, epoch=2)
    layout = mm.epoch_layout(labels, 5, 2)
    for n in range(0, 300, 37):
        for canvas, index, shift in ((pairs.digit_a, layout.index_a, layout.shift_a),
                                     (pairs.digit_b, layout.index_b, layout.shift_b)):
            top, left = mm.MARGIN + shift[n]
            np.testing.assert_array_equal(canvas[n][top:top + 28, left:left + 28], images[index[n]])
            assert canvas[n].sum() == images[index[n]].astype(int).sum()   # zero elsewhere
    expected = np.minimum(pairs.digit_a.astype(int) + pairs.digit_b, 255)
    np.testing.assert_array_equal(pairs.merged, expected)
    np.testing.assert_array_equal(pairs.labels_a, labels[layout.index_a])
    np.testing.assert_array_equal(pairs.labels_b, labels[layout.index_b])
    assert pairs.merged.dtype == np.uint8 and pairs.merged.shape == (300, 36, 36)


def test_sums_over_255_saturate_instead_of_wrapping_around():
    images = np.full((20, 28, 28), 200, np.uint8)
    labels = np.arange(20) % 2
    pairs = mm.epoch_pairs(images, labels, seed=0, epoch=0)
    both = (pairs.digit_a > 0) & (pairs.digit_b > 0)
    assert both.any()
    assert (pairs.merged[both] == 255).all()                 # 400 -> 255, not 400 - 256 = 144
    one = (pairs.digit_a > 0) ^ (pairs.digit_b > 0)
    assert (pairs.merged[one] == 200).all()
    assert (pairs.merged[~both & ~one] == 0).all()


@pytest.mark.parametrize('make', ['epoch', 'fixed'])
def test_the_two_digits_of_a_pair_always_have_different_classes(make):
    rng = np.random.default_rng(2)
    # Unbalanced classes: class 0 is 90 % of the split, so a careless draw would often repeat it.
    labels = np.where(rng.random(3000) < 0.9, 0, rng.integers(1, 10, 3000)).astype(np.uint8)
    images = rng.integers(0, 255, (3000, 28, 28)).astype(np.uint8)
    pairs = (mm.epoch_pairs(images, labels, 1, 4) if make == 'epoch'
             else mm.fixed_pairs(images, labels, 1, count=6000))
    assert (pairs.labels_a != pairs.labels_b).all()
    # Partners of a class-0 digit are drawn among the other classes only, all of them.
    assert set(pairs.labels_b[pairs.labels_a == 0]) == set(range(1, 10))


def test_partners_are_uniform_over_the_images_of_other_classes():
    labels = np.array([0, 0, 0, 1, 2, 2])
    index_a = np.zeros(60000, np.int64)                      # always image 0, class 0
    picked = mm.partners(labels, index_a, np.random.default_rng(0))
    counts = np.bincount(picked, minlength=6)
    assert counts[:3].sum() == 0                             # never its own class
    assert np.abs(counts[3:] / 60000 - 1 / 3).max() < 0.01   # images 3, 4, 5 equally likely


def test_pairs_of_a_split_use_only_that_splits_images():
    # Training images are odd-valued, test images even-valued: any pixel of a digit canvas tells
    # which split it came from.
    train, train_labels = full_digits(500, seed=3)
    train |= 1
    test, test_labels = full_digits(200, seed=4)
    test &= 0xFE
    test[test == 0] = 2
    train_pairs = mm.epoch_pairs(train, train_labels, 7, 0)
    test_pairs = mm.fixed_pairs(test, test_labels, 7, count=400)
    for canvas in (train_pairs.digit_a, train_pairs.digit_b):
        assert (canvas[canvas > 0] % 2 == 1).all()
    for canvas in (test_pairs.digit_a, test_pairs.digit_b):
        assert (canvas[canvas > 0] % 2 == 0).all()
    assert mm.fixed_layout(test_labels, 7, 400).index_b.max() < 200


def assert_same_pairs(p, q):
    for field, a, b in zip(mm.Pairs._fields, p, q):
        np.testing.assert_array_equal(a, b, err_msg=field)


def test_same_seed_and_epoch_give_identical_pairs_and_a_resumed_epoch_equals_the_sequential_one():
    images, labels = full_digits(400, seed=5)
    sequential = [mm.epoch_pairs(images, labels, seed=11, epoch=e) for e in range(5)]
    resumed = mm.epoch_pairs(images, labels, seed=11, epoch=3)  # a process that starts at epoch 3
    assert_same_pairs(resumed, sequential[3])
    # Drawing other things in between (another split, the global NumPy state) changes nothing.
    np.random.seed(0)
    np.random.rand(100)
    mm.fixed_pairs(images, labels, 11)
    assert_same_pairs(mm.epoch_pairs(images, labels, seed=11, epoch=3), sequential[3])
    for e, f in itertools.combinations(range(5), 2):
        assert not np.array_equal(sequential[e].merged, sequential[f].merged)
        assert (mm.epoch_layout(labels, 11, e).index_b != mm.epoch_layout(labels, 11, f).index_b).mean() > 0.5
    assert not np.array_equal(mm.epoch_pairs(images, labels, seed=12, epoch=3).merged, sequential[3].merged)
    # Every training image leads exactly one pair of each epoch.
    np.testing.assert_array_equal(mm.epoch_layout(labels, 11, 2).index_a, np.arange(400))


def test_the_fixed_test_set_is_fixed_and_each_image_leads_equally_often():
    images, labels = full_digits(250, seed=6)
    first = mm.fixed_pairs(images, labels, seed=1)
    assert len(first.merged) == mm.TEST_PAIRS
    assert_same_pairs(first, mm.fixed_pairs(images, labels, seed=1))
    assert not np.array_equal(mm.fixed_pairs(images, labels, seed=2).merged, first.merged)
    leads = np.bincount(mm.fixed_layout(labels, 1, 1000).index_a, minlength=250)
    assert (leads == 4).all()
    # No test pair is a training epoch's pair in disguise: its draws come from their own stream.
    epoch0 = mm.epoch_layout(labels, 1, 0)
    fixed = mm.fixed_layout(labels, 1, 250)
    assert not np.array_equal(epoch0.index_b, fixed.index_b)


def test_generated_pairs_overlap_about_as_much_as_the_papers():
    # The paper: digits bounded by a 20 x 20 box, "on average 80 % overlap". Our measure (box_overlap):
    # the shared area of the two 20 x 20 boxes over one box's area. With both digits shifted
    # independently and uniformly in [-4, 4] per axis, its expectation is (E[20 - |dy_a - dy_b|]
    # / 20)^2, computed here from the distribution of the difference of two shifts.
    values = np.arange(-mm.MAX_SHIFT, mm.MAX_SHIFT + 1)
    gaps = np.abs(values[:, None] - values[None, :]).ravel()
    expected = np.mean((20 - gaps) / 20.0) ** 2
    images, labels = full_digits(20000, seed=7)
    layout = mm.epoch_layout(labels, 1, 0)
    mean = mm.box_overlap(layout.shift_a, layout.shift_b).mean()
    print('mean 20x20-box overlap of generated pairs: %.1f %% (expected %.1f %%; paper: about 80 %%)'
          % (100 * mean, 100 * expected))
    assert abs(mean - expected) < 0.005
    assert 0.65 < mean < 0.85
    # Whole 28 x 28 digits (every pixel nonzero) overlap by IoU of their boxes, which must be below
    # the shared-area fraction and consistent with the same shifts.
    pairs = mm.render(images[:2000], labels[:2000], mm.epoch_layout(labels[:2000], 1, 0))
    iou = mm.ink_iou(pairs.digit_a, pairs.digit_b)
    shared = mm.box_overlap(*mm.epoch_layout(labels[:2000], 1, 0)[2:], box=28)
    np.testing.assert_allclose(iou, shared / (2 - shared))


def test_box_overlap_and_ink_iou_on_hand_built_cases():
    np.testing.assert_allclose(mm.box_overlap(np.array([[0, 0], [4, -4], [0, 0]]),
                                              np.array([[0, 0], [-4, 4], [20, 0]])),
                               [1.0, 12 * 12 / 400.0, 0.0])
    a = np.zeros((2, 36, 36), np.uint8)
    b = np.zeros((2, 36, 36), np.uint8)
    a[0, 0:4, 0:4] = 1
    b[0, 2:6, 0:4] = 1            # 2 x 4 shared of a 6 x 4 union
    a[1, 5, 5] = 1                # b[1] blank
    np.testing.assert_allclose(mm.ink_iou(a, b), [8 / 24.0, 0.0])


def test_single_digits_on_the_canvas_centred_or_shifted():
    images, _ = full_digits(500, seed=8)
    centred = mm.on_canvas(images)
    assert centred.shape == (500, 36, 36) and centred.dtype == np.uint8
    np.testing.assert_array_equal(centred[:, 4:32, 4:32], images)
    shifted = mm.on_canvas(images, max_shift=2, seed=1)
    seen = landed_shift(shifted)
    assert np.abs(seen).max() == 2 and set(np.unique(seen)) == set(range(-2, 3))
    np.testing.assert_array_equal(shifted, mm.on_canvas(images, max_shift=2, seed=1))


def test_an_epoch_of_the_training_split_generates_in_well_under_a_few_seconds():
    import time
    images, labels = full_digits(55000, seed=9)
    start = time.perf_counter()
    pairs = mm.epoch_pairs(images, labels, seed=1, epoch=0)
    elapsed = time.perf_counter() - start
    assert pairs.merged.shape == (55000, 36, 36)
    assert elapsed < 3.0, elapsed


@pytest.mark.parametrize('labels, words', [
    (np.full(50, 3), 'cannot make MultiMNIST pairs: the split has only class 3, and each pair needs '
                     'two digits of different classes'),
    (np.zeros(0), 'cannot make MultiMNIST pairs: the split has no images'),
    (np.arange(49) % 10, 'MultiMNIST got 50 images but 49 labels'),
])
def test_splits_that_cannot_pair_are_refused_in_one_line(labels, words, capsys):
    images = np.zeros((len(labels) if len(labels) != 49 else 50, 28, 28), np.uint8)

    def body():
        mm.epoch_pairs(images, labels, 0, 0)
    assert run_cli(body) == 1
    err = capsys.readouterr().err
    assert err.startswith('error: ' + words) and err.count('\n') == 1
    with pytest.raises(UserError):
        mm.fixed_pairs(images, labels, 0)


def test_wrong_image_size_is_refused():
    with pytest.raises(mm.PairingError, match='28x28 digit images, got an array of shape \\(4, 32, 32\\)'):
        mm.epoch_pairs(np.zeros((4, 32, 32), np.uint8), np.arange(4), 0, 0)


def test_the_feed_arrays_slice_into_tf_data_batches():
    import tensorflow as tf
    images, labels = full_digits(64, seed=10)
    feed = mm.as_feed(mm.epoch_pairs(images, labels, 1, 0))
    batch = next(iter(tf.data.Dataset.from_tensor_slices(feed).batch(16)))
    assert batch['images'].shape == (16, 36, 36) and batch['images'].dtype == tf.uint8
    np.testing.assert_array_equal(batch['labels_b'].numpy(), feed['labels_b'][:16])
    np.testing.assert_array_equal(batch['digit_a'].numpy(), feed['digit_a'][:16])


def run_graph(fn, *arrays):
    """Builds fn on constants in a fresh graph and evaluates it (the capsLayer functions are pure)."""
    import tensorflow as tf
    with tf.Graph().as_default():
        out = fn(*[tf.constant(a) for a in arrays])
        with tf.compat.v1.Session() as sess:
            return sess.run(out)


def test_two_hot_marks_both_classes():
    got = run_graph(lambda a, b: capsLayer.two_hot(a, b, 5), np.array([0, 3, 2]), np.array([4, 1, 2]))
    np.testing.assert_array_equal(got, [[1, 0, 0, 0, 1], [0, 1, 0, 1, 0], [0, 0, 1, 0, 0]])


def test_margin_loss_with_two_hot_targets_is_eq_4_with_both_classes_present():
    rng = np.random.default_rng(11)
    lengths = rng.random((32, 10)).astype(np.float32)
    a = rng.integers(0, 10, 32)
    b = (a + rng.integers(1, 10, 32)) % 10                       # another class
    present = np.zeros((32, 10), np.float32)
    present[np.arange(32), a] = present[np.arange(32), b] = 1
    reference = (present * np.maximum(0, 0.9 - lengths) ** 2
                 + 0.5 * (1 - present) * np.maximum(0, lengths - 0.1) ** 2).sum(1).mean()
    got = run_graph(lambda l, x, y: capsLayer.margin_loss(l, capsLayer.two_hot(x, y, 10)), lengths, a, b)
    assert got == pytest.approx(reference, rel=1e-5)
    # Both true classes are penalised for being short: lengthening either one lowers the loss.
    longer = lengths.copy()
    longer[np.arange(32), b] = 0.95
    assert run_graph(lambda l, x, y: capsLayer.margin_loss(l, capsLayer.two_hot(x, y, 10)),
                     longer, a, b) < got


def test_pair_reconstruction_loss_reconstructs_each_digit_from_its_own_capsule():
    rng = np.random.default_rng(12)
    batch, classes, dim, side = 6, 10, 16, 36
    caps = rng.normal(size=(batch, classes, dim)).astype(np.float32)
    a = np.array([0, 1, 2, 3, 4, 5])
    b = np.array([9, 8, 7, 6, 5, 4])
    digit_a = rng.random((batch, side, side)).astype(np.float32)
    digit_b = rng.random((batch, side, side, 1)).astype(np.float32)
    # A fixed linear "decoder" to pixels: its output tells which capsule values it was given.
    weights = rng.normal(size=(classes * dim, side * side)).astype(np.float32) / 20

    def reference_recon(labels):
        masked = np.zeros_like(caps)
        masked[np.arange(batch), labels] = caps[np.arange(batch), labels]
        return 1 / (1 + np.exp(-masked.reshape(batch, -1) @ weights))

    calls = []

    def decoder(masked):
        import tensorflow as tf
        calls.append(masked.shape.as_list())
        return tf.sigmoid(tf.matmul(masked, tf.constant(weights)))

    loss, recon_a, recon_b = run_graph(
        lambda *t: capsLayer.pair_reconstruction_loss(decoder, *t), caps, a, b, digit_a, digit_b)
    ref_a, ref_b = reference_recon(a), reference_recon(b)
    np.testing.assert_allclose(recon_a, ref_a, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(recon_b, ref_b, rtol=1e-4, atol=1e-6)
    reference = (np.mean((ref_a - digit_a.reshape(batch, -1)) ** 2)
                 + np.mean((ref_b - digit_b.reshape(batch, -1)) ** 2))
    assert loss == pytest.approx(reference, rel=1e-5)
    assert calls == [[2 * batch, classes * dim]]                 # one decoder pass for both digits
    # Weighed like capsNet today: scale 0.0005 x pixels times this loss is the authors' 0.0005 x
    # per-example sum of squares, summed over the two digits.
    sum_of_squares = (((ref_a - digit_a.reshape(batch, -1)) ** 2).sum(1).mean()
                      + ((ref_b - digit_b.reshape(batch, -1)) ** 2).sum(1).mean())
    assert 0.0005 * side * side * loss == pytest.approx(0.0005 * sum_of_squares, rel=1e-5)


def np_top2_correct(lengths, a, b):
    top = np.argsort(-lengths, axis=1, kind='stable')[:, :2]
    return np.array([set(t) == {x, y} for t, x, y in zip(top, a, b)])


def test_top2_rule_on_hand_built_lengths():
    lengths = np.array([
        [0.9, 0.8, 0.1, 0.0],    # top two {0, 1}, true {0, 1}: right
        [0.9, 0.8, 0.1, 0.0],    # true {1, 0}: order does not matter
        [0.9, 0.1, 0.8, 0.0],    # top two {0, 2}, true {0, 1}: one right is not enough
        [0.1, 0.2, 0.9, 0.8],    # true {0, 1}: both wrong
        [0.95, 0.3, 0.3, 0.0],   # a tie for second place goes to class 1: true {0, 1} right,
        [0.95, 0.3, 0.3, 0.0],   # ... and true {0, 2} wrong
        [0.2, 0.9, 0.0, 0.3],    # the longest capsule alone is right, the second (3) is not
    ], np.float32)
    a = np.array([0, 1, 0, 0, 0, 0, 1])
    b = np.array([1, 0, 1, 1, 1, 2, 0])
    got = run_graph(capsLayer.top2_correct, lengths, a, b)
    np.testing.assert_array_equal(got, [True, True, False, False, True, False, False])
    rng = np.random.default_rng(13)
    lengths = rng.random((200, 10)).astype(np.float32)
    a = rng.integers(0, 10, 200)
    b = (a + rng.integers(1, 10, 200)) % 10
    np.testing.assert_array_equal(run_graph(capsLayer.top2_correct, lengths, a, b),
                                  np_top2_correct(lengths, a, b))


def test_reconstructions_are_drawn_in_red_and_green_over_the_dimmed_input():
    from tools import figures
    merged = np.zeros((1, 36, 36), np.uint8)
    merged[0, 0, :] = 255
    recon_a = np.zeros((1, 36 * 36), np.float32)
    recon_b = np.zeros((1, 36, 36), np.float32)
    recon_a[0, 36 * 10 + 3] = 1.0         # pixel (10, 3)
    recon_b[0, 20, 5] = 1.0
    recon_b[0, 10, 3] = 1.0               # both draw at (10, 3)
    rgb = figures.overlay_reconstructions(merged, recon_a, recon_b)[0]
    dim = round(255 * figures.INPUT_UNDER_RECONSTRUCTION)
    assert tuple(rgb[0, 7]) == (dim, dim, dim)        # input only: gray
    assert tuple(rgb[10, 3]) == (255, 255, 0)         # both: yellow
    assert tuple(rgb[20, 5]) == (0, 255, 0)           # b only: green
    assert tuple(rgb[30, 30]) == (0, 0, 0)


def test_figure_5_writes_a_deterministic_png_of_the_stated_size_with_both_colours(tmp_path):
    from conftest import read_png

    from runtime import files
    from tools import figures
    # Strokes at 255 on black, at class-specific places, so each digit has pixels the other lacks.
    labels = np.arange(40) % NUM_CLASSES
    images = np.zeros((40, 28, 28), np.uint8)
    for n, k in enumerate(labels):
        images[n, 4 + 2 * k:8 + 2 * k, 4:24] = 255
    pairs = mm.fixed_pairs(images, labels, 1, count=20)
    recon_a = pairs.digit_a.reshape(20, -1) / 255.0        # a perfect decoder
    recon_b = pairs.digit_b.reshape(20, -1) / 255.0
    true = np.stack([pairs.labels_a, pairs.labels_b], axis=1)
    predicted = true[:, ::-1].copy()                       # the order of the two does not matter...
    predicted[::3, 1] = (true[::3, 0] + 5) % 10            # ... a missed class does
    predicted[::3][predicted[::3, 1] == true[::3, 1], 1] += 1
    paths = [tmp_path / 'a.png', tmp_path / 'b.png']
    for path in paths:
        files.write_figure(str(path), figures.draw_multimnist(pairs.merged, recon_a, recon_b, true, predicted),
                           figures.DPI)
    assert paths[0].read_bytes() == paths[1].read_bytes()
    pixels = read_png(paths[0])
    width, height = figures.MULTIMNIST_SIZE
    assert pixels.shape[:2] == (round(height * figures.DPI), round(width * figures.DPI))
    r, g, b = (pixels[..., c].astype(int) for c in range(3))
    # Where one digit alone draws: its colour at full strength over the input's dimmed gray.
    assert ((r > 200) & (r - g > 100) & (r - b > 100)).sum() > 100  # digit a's reconstruction, red
    assert ((g > 200) & (g - r > 100) & (g - b > 100)).sum() > 100  # digit b's, green


def test_figure_5_with_no_wrong_example_leaves_that_group_blank(tmp_path):
    from runtime import files
    from tools import figures
    images, labels = full_digits(20, seed=15)
    pairs = mm.fixed_pairs(images, labels, 2, count=3)
    true = np.stack([pairs.labels_a, pairs.labels_b], axis=1)
    recon = np.zeros((3, 36 * 36))
    figure = figures.draw_multimnist(pairs.merged, recon, recon, true, true)
    assert [f._suptitle.get_text().endswith('(none)') for f in figure.subfigs] == [False, True]
    files.write_figure(str(tmp_path / 'f.png'), figure, figures.DPI)
    assert (tmp_path / 'f.png').stat().st_size > 0


def test_the_multimnist_preset_weights_each_digit_as_the_paper_and_states_a_measured_cost():
    from conftest import ROOT

    import capsNet
    import config
    import utils
    path = ROOT / 'configs' / 'multimnist.flags'
    text = path.read_text()
    assert text.startswith('# multimnist:') and '# Cost' in text and 'Reaches' in text
    assert 'to be measured' not in text and 'measured on a shared' in ' '.join(text.split()).lower()
    cfg = config.parse(['--flagfile=' + str(path)])
    assert cfg.dataset == 'multimnist'
    # The weight on each digit's mean squared error over 1 296 pixels: 0.0005 per squared error.
    weight = capsNet.reconstruction_weight(capsNet.ModelConfig.from_flags(cfg), utils.multimnist_spec())
    assert weight == pytest.approx(0.0005 * mm.CANVAS_SIDE ** 2)
    assert (cfg.shift_pixels, cfg.stop_gradient_routing, cfg.lr_schedule) == (0, False, 'exponential')
    # 60 M pairs in epochs of one pair per training image (55 000, the validation images held out).
    assert cfg.epoch == round(60e6 / (60000 - cfg.val_size))
