"""The assembled network: parameter count, variable names, shapes, masking and losses."""
import numpy as np
import pytest
import tensorflow as tf

import capsNet

tf1 = tf.compat.v1


def build(config=capsNet.ModelConfig(), training=True):
    graph = tf.Graph()
    with graph.as_default():
        images = tf1.placeholder(tf.float32, [None, 28, 28, 1])
        labels = tf1.placeholder(tf.int32, [None])
        model = capsNet.CapsNet(images, labels, config, training=training)
    return graph, model


def test_parameter_count_of_the_paper():
    graph, _ = build()
    with graph.as_default():
        variables = tf1.trainable_variables()
        shapes = {v.op.name: v.shape.as_list() for v in variables}
        without_decoder = [v for v in variables if not v.op.name.startswith('decoder/')]
        assert capsNet.count_parameters(variables) == 8215568
        assert capsNet.count_parameters(without_decoder) == 6804224
    assert shapes['digit_caps/W'] == [1152, 10, 8, 16]
    assert shapes['conv1/weights'] == [9, 9, 1, 256]
    assert shapes['primary_caps/weights'] == [9, 9, 256, 256]
    assert shapes['decoder/fc3/weights'] == [1024, 784]
    assert sorted(shapes) == sorted(
        ['conv1/weights', 'conv1/biases', 'primary_caps/weights', 'primary_caps/biases', 'digit_caps/W']
        + ['decoder/fc%d/%s' % (k, n) for k in (1, 2, 3) for n in ('weights', 'biases')])


@pytest.mark.slow
def test_forward_shapes_losses_and_masking():
    rng = np.random.default_rng(0)
    x = rng.random((3, 28, 28, 1)).astype(np.float32)
    y = np.array([2, 7, 0])
    for training in (True, False):
        graph, model = build(training=training)
        with tf1.Session(graph=graph) as sess:
            sess.run(tf1.variables_initializer(graph.get_collection('variables')))
            feed = {model.images: x, model.labels: y}
            caps, lengths, masked, recon, pred, margin, rec, total = sess.run(
                [model.digit_caps, model.lengths, model.masked_caps, model.reconstructions,
                 model.predictions, model.margin_loss, model.reconstruction_loss, model.total_loss], feed)
        assert caps.shape == (3, 10, 16) and recon.shape == (3, 784)
        assert np.all((lengths >= 0) & (lengths < 1))
        np.testing.assert_array_equal(pred, lengths.argmax(1))
        kept = y if training else pred  # mask_with_y in training, longest capsule otherwise
        expected_mask = np.zeros((3, 10, 16), np.float32)
        expected_mask[np.arange(3), kept] = caps[np.arange(3), kept]
        np.testing.assert_allclose(masked, expected_mask.reshape(3, 160), rtol=1e-6)
        assert np.all((recon > 0) & (recon < 1))
        np.testing.assert_allclose(rec, np.mean((recon - x.reshape(3, 784)) ** 2), rtol=1e-5)
        assert total == pytest.approx(margin + 0.392 * rec, rel=1e-5)


def test_model_config_from_flags_picks_known_fields():
    class Flags:
        iter_routing = 5
        m_plus = 0.8
        batch_size = 64  # not a model field: ignored
    cfg = capsNet.ModelConfig.from_flags(Flags())
    assert cfg.iter_routing == 5 and cfg.m_plus == 0.8 and cfg.m_minus == 0.1
    assert cfg.regularization_scale == pytest.approx(0.392)


@pytest.mark.slow
def test_one_training_step_lowers_loss_on_a_fixed_batch():
    rng = np.random.default_rng(1)
    x = rng.random((4, 28, 28, 1)).astype(np.float32)
    y = np.array([1, 3, 5, 7])
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(0)
        model = capsNet.CapsNet(tf.constant(x), tf.constant(y))
        step = tf1.train.get_or_create_global_step()
        train_op = capsNet.build_train_op(model, step)
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            before = sess.run(model.total_loss)
            for _ in range(3):
                sess.run(train_op)
            after, global_step = sess.run([model.total_loss, step])
    assert after < before and global_step == 3
