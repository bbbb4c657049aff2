"""MultiMNIST end to end: --dataset multimnist trains, resumes exactly, evaluates and draws Fig. 5.

The data are tiny generated MNIST-format files (conftest.write_dataset): 40 training digits, 40
validation digits and 20 test digits, batch 8, so 5 steps an epoch.
"""
import json

import numpy as np
import pytest
import tensorflow as tf
from conftest import make_digits, read_png, run_main, tiny_run_args, write_idx

import capsNet
import config
import utils
from readers import multimnist

tf1 = tf.compat.v1

MULTI = ['--dataset', 'multimnist']


def final_weights(logdir):
    from runtime import checkpoints
    reader = tf.train.load_checkpoint(checkpoints.newest_first(str(logdir))[0])
    return {name: reader.get_tensor(name) for name in reader.get_variable_to_shape_map()}


def rows(path):
    return path.read_text().splitlines()


@pytest.fixture(scope='module')
def straight_run(small_data, tmp_path_factory):
    """8 steps in one go: into the second epoch, whose pairs are drawn afresh."""
    work = tmp_path_factory.mktemp('multimnist_straight')
    assert run_main(tiny_run_args(small_data, work, *MULTI, '--max_steps', '8', '--train_sum_freq', '1',
                                  '--val_sum_freq', '4')) == 0
    return work


def test_pair_batches_carry_labels_and_digits_of_their_merged_image():
    images, labels = make_digits(48, seed=3)
    pairs = multimnist.epoch_pairs(images, labels, seed=5, epoch=2)
    order = utils.epoch_permutation(len(labels), 5, 2)
    graph = tf.Graph()
    with graph.as_default():
        pipeline = utils.PairPipeline(8, True, 1, 'pairs')
        fetch = [pipeline.images, pipeline.labels, pipeline.labels_b, pipeline.digit_a, pipeline.digit_b]
        with tf1.Session(graph=graph) as sess:
            pipeline.initialize(sess, pairs, order, skip_batches=1)
            merged, labels_a, labels_b, digit_a, digit_b = sess.run(fetch)
    assert merged.shape == digit_a.shape == digit_b.shape == (8, 36, 36, 1)
    shown = order[8:16]  # the second batch of the epoch's order: one batch was skipped
    np.testing.assert_array_equal(labels_a, pairs.labels_a[shown])
    np.testing.assert_array_equal(labels_b, pairs.labels_b[shown])
    assert (labels_a != labels_b).all()
    to_bytes = lambda x: np.round(x[..., 0] * 255).astype(np.int64)
    # The merged input is the saturated sum of the two targets fed beside it.
    np.testing.assert_array_equal(to_bytes(merged), np.minimum(to_bytes(digit_a) + to_bytes(digit_b), 255))
    # Each target is its own class's digit where its shift put it: make_digits lights a 6x6 block (the
    # only pixels at 255) whose top-left corner is at a place of the class.
    layout = multimnist.epoch_layout(labels, 5, 2)
    for targets, classes, shifts in ((digit_a, labels_a, layout.shift_a[shown]),
                                     (digit_b, labels_b, layout.shift_b[shown])):
        for canvas, label, shift in zip(to_bytes(targets), classes, shifts):
            rows_lit, cols_lit = np.nonzero(canvas == 255)
            assert (rows_lit.min(), cols_lit.min()) == (multimnist.MARGIN + shift[0] + 3 + 8 * (label // 4),
                                                        multimnist.MARGIN + shift[1] + 3 + 8 * (label % 4))


def test_two_digit_model_has_3200_primary_capsules_and_the_papers_reconstruction_weight():
    spec = utils.multimnist_spec()
    rng = np.random.default_rng(0)
    digits = rng.random((2, 2, 36, 36, 1)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(1)
        images = tf.constant(np.minimum(digits[0] + digits[1], 1.0))
        pair = capsNet.Pair(tf.constant([3, 7]), tf.constant(digits[0]), tf.constant(digits[1]))
        model = capsNet.CapsNet(images, tf.constant([1, 2]), capsNet.ModelConfig(), training=True, spec=spec,
                                pair=pair)
        assert model.coupling.shape.as_list() == [2, 3200, 10]  # 10 x 10 x 32 primary capsules
        with tf1.Session(graph=graph) as sess:
            sess.run(tf1.global_variables_initializer())
            total, margin, recon_a, recon_b = sess.run(
                [model.total_loss, model.margin_loss, model.reconstructions, model.reconstructions_b])
    squares = (np.sum((recon_a - digits[0].reshape(2, -1)) ** 2, axis=1)
               + np.sum((recon_b - digits[1].reshape(2, -1)) ** 2, axis=1))          # [B]
    # The paper: 0.0005 x the sum of squared errors of each digit, averaged over the batch.
    np.testing.assert_allclose(total - margin, 0.0005 * squares.mean(), rtol=1e-4)


@pytest.mark.slow
def test_training_logs_pair_accuracy_and_records_the_36x36_input(straight_run):
    results, logdir = straight_run / 'results', straight_run / 'logdir'
    assert [r.split(',')[0] for r in rows(results / 'loss.csv')] == ['step'] + [str(k) for k in range(1, 9)]
    val = rows(results / 'val_acc.csv')
    assert val[0] == 'step,val_acc' and [r.split(',')[0] for r in val[1:]] == ['4', '8']
    # One pair per validation image (40): accuracies are multiples of 1/40.
    assert all(abs(float(r.split(',')[1]) * 40 - round(float(r.split(',')[1]) * 40)) < 1e-6 for r in val[1:])
    flags = json.loads((logdir / 'flags.json').read_text())
    assert flags['dataset'] == 'multimnist'
    assert (flags['input_spec']['height'], flags['input_spec']['width']) == (36, 36)
    weights = final_weights(logdir)
    assert weights['digit_caps/W'].shape[0] == 3200 and weights['decoder/fc3/weights'].shape[-1] == 36 * 36


@pytest.mark.slow
def test_resumed_run_sees_the_same_pairs_and_ends_bit_identical(small_data, straight_run, tmp_path):
    args = lambda steps: tiny_run_args(small_data, tmp_path, *MULTI, '--max_steps', str(steps),
                                       '--train_sum_freq', '1', '--val_sum_freq', '4')
    assert run_main(args(4)) == 0   # stops inside the first epoch
    assert run_main(args(8)) == 0   # resumes at step 4, then draws epoch 1's pairs
    expected, got = final_weights(straight_run / 'logdir'), final_weights(tmp_path / 'logdir')
    assert sorted(got) == sorted(expected) and got['global_step'] == 8
    assert not [name for name in expected if not np.array_equal(got[name], expected[name])]
    for name in ('loss.csv', 'train_acc.csv', 'val_acc.csv'):
        assert rows(tmp_path / 'results' / name) == rows(straight_run / 'results' / name), name


@pytest.mark.slow
def test_evaluation_prints_the_pair_error_and_the_single_digit_accuracy(small_data, straight_run, tmp_path,
                                                                         capsys):
    results = tmp_path / 'results'
    argv = ['--dataset=multimnist', '--data_dir', str(small_data), '--verify_data=False', '--is_training=False',
            '--logdir', str(straight_run / 'logdir'), '--results', str(results)]
    assert run_main(argv) == 0
    out = capsys.readouterr().out
    pair_line = next(line for line in out.splitlines() if line.startswith('MultiMNIST test error '))
    error = float(pair_line.split()[3])
    wrong = int(pair_line.split('(')[1].split()[0])
    assert 'of 20 fixed test pairs' in pair_line and 'at step 8 of' in pair_line
    assert error == pytest.approx(100.0 * wrong / 20, abs=0.01)
    single_line = next(line for line in out.splitlines() if line.startswith('single-digit accuracy '))
    single, single_wrong = float(single_line.split()[2]), int(single_line.split('(')[1].split()[0])
    assert '/ 20 MNIST test digits' in single_line and single == pytest.approx(1 - single_wrong / 20, abs=1e-4)
    test_acc = rows(results / 'test_acc.csv')
    assert test_acc[0] == 'step,test_acc' and test_acc[1].startswith('8,')
    assert float(test_acc[1].split(',')[1]) == pytest.approx(1 - wrong / 20)
    record = rows(results / 'multimnist_test.csv')
    assert record[0] == 'step,pair_error,pair_errors,pairs,single_digit_acc,single_digit_errors,digits'
    step, pair_error, pair_errors, pairs, single_acc, single_errors, digits = record[1].split(',')
    assert (int(step), int(pair_errors), int(pairs), int(single_errors), int(digits)) == (8, wrong, 20, single_wrong, 20)
    assert float(pair_error) == pytest.approx(wrong / 20) and float(single_acc) == pytest.approx(single, abs=1e-4)
    # The same fixed pairs every time: a second evaluation gives the same figures.
    assert run_main(argv) == 0
    assert capsys.readouterr().out.split('at step')[0] == out.split('at step')[0]


@pytest.mark.slow
def test_figure_command_draws_figure_5_from_the_run(small_data, straight_run, tmp_path):
    from tools import figures
    results = tmp_path / 'results'
    assert figures.run(['--data_dir', str(small_data), '--verify_data=False', '--logdir',
                        str(straight_run / 'logdir'), '--results', str(results)]) == 0
    pixels = read_png(results / 'multimnist_reconstructions.png')
    assert pixels.ndim == 3 and pixels.shape[0] > 300
    assert not (results / 'reconstructions.png').exists()  # the MNIST figures are not drawn for it


def test_a_validation_split_of_one_class_is_refused_in_one_line(tmp_path, capsys):
    images, labels = make_digits(80, seed=0)
    labels[40:] = 3
    for name, array in (('train-images-idx3-ubyte.gz', images), ('train-labels-idx1-ubyte.gz', labels),
                        ('t10k-images-idx3-ubyte.gz', images[:20]), ('t10k-labels-idx1-ubyte.gz', labels[:20])):
        write_idx(tmp_path / name, array)
    assert run_main(tiny_run_args(tmp_path, tmp_path / 'work', *MULTI)) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1] == ('error: --val_size=40 leaves the validation images of %s a single class; MultiMNIST '
                       'pairs need two classes: give another --val_size' % tmp_path)


@pytest.mark.parametrize('flag', ['--shift_pixels=2', '--crop=32x32', '--image_size=40x40', '--channels=3'])
def test_input_flags_that_would_break_the_pairs_are_refused(flag):
    with pytest.raises(config.ConfigError, match='does not apply to --dataset=multimnist'):
        config.parse(['--dataset=multimnist', flag])


def test_multimnist_reads_the_mnist_folder_by_default():
    assert config.parse(['--dataset=multimnist']).data_dir == 'data/mnist'


def test_evaluations_numpy_rule_is_top2_correct():
    import capsLayer
    from evaluation.evaluate import pair_correct
    rng = np.random.default_rng(7)
    lengths = rng.random((400, 10)).astype(np.float32)
    labels_a = rng.integers(0, 10, 400)
    labels_b = (labels_a + rng.integers(1, 10, 400)) % 10
    labels_b[:40] = labels_a[:40]  # a pair of one class is never right, whatever the capsules say
    top2 = np.argsort(-lengths, axis=1, kind='stable')[:, :2]
    with tf1.Session(graph=tf.Graph()) as sess:
        expected = sess.run(capsLayer.top2_correct(tf.constant(lengths), tf.constant(labels_a),
                                                   tf.constant(labels_b)))
    got = pair_correct(top2, labels_a, labels_b)
    assert expected.any() and not expected[:40].any()
    np.testing.assert_array_equal(got, expected)


def test_commands_that_read_single_images_refuse_multimnist_in_one_line(small_data):
    cfg = config.parse(['--dataset=multimnist', '--data_dir', str(small_data), '--verify_data=False'])
    with pytest.raises(config.ConfigError, match='trains and tests through main.py'):
        utils.load_train_val_data(cfg)


def test_towers_refuse_multimnist_before_reading_data(small_data, tmp_path):
    from runtime import training
    cfg = config.parse(tiny_run_args(small_data, tmp_path, *MULTI))
    with pytest.raises(config.ConfigError, match='dist_version build single-digit models'):
        training.train(cfg, build_graph=lambda cfg: None)
