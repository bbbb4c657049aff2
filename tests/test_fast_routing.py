"""capsLayer's parent-major DigitCaps (the fast one) against slow, obvious formulations, to 1e-5:
NumPy loops over capsules for values, and reference_layers (tiled u_hat, einsum routing) for
values and gradients. Also: the model's variables are those the reference builds (checkpoints load).
"""
import numpy as np
import pytest
import tensorflow as tf

import capsLayer
import capsNet
from benchmarks import reference_layers

tf1 = tf.compat.v1

B, I, J, D_IN, D_OUT = 3, 12, 4, 8, 16


def numpy_squash(s):
    norm2 = np.sum(s ** 2, axis=-1, keepdims=True)
    return norm2 / (1.0 + norm2) * s / np.sqrt(norm2 + capsLayer.SQUASH_EPSILON)


def numpy_predict_vectors(u, W):
    """u_hat[b, i, j] = W[i, j]^T u[b, i], one capsule pair at a time."""
    u_hat = np.zeros((u.shape[0], W.shape[0], W.shape[1], W.shape[3]))
    for b in range(u.shape[0]):
        for i in range(W.shape[0]):
            for j in range(W.shape[1]):
                u_hat[b, i, j] = u[b, i] @ W[i, j]
    return u_hat


def numpy_routing(u_hat, iterations, bias=None, leaky=False):
    """Procedure 1 with a loop over child capsules i; returns (v [B, J, D], c [B, I, J])."""
    batch, num_in, num_out, dim = u_hat.shape
    logits = np.zeros((batch, num_in, num_out))
    for r in range(iterations):
        z = np.concatenate([np.zeros((batch, num_in, 1)), logits], -1) if leaky else logits
        c = np.exp(z - z.max(-1, keepdims=True))
        c = c / c.sum(-1, keepdims=True)
        c = c[..., 1:] if leaky else c
        s = np.zeros((batch, num_out, dim))
        for i in range(num_in):
            s += c[:, i, :, None] * u_hat[:, i]
        if bias is not None:
            s += bias
        v = numpy_squash(s)
        if r < iterations - 1:
            logits = logits + np.sum(u_hat * v[:, None], axis=-1)
    return v, c


def random_inputs(seed=0):
    rng = np.random.default_rng(seed)
    u = numpy_squash(rng.normal(size=(B, I, D_IN))).astype(np.float32)
    # Weights large enough that routing moves c_ij well away from uniform.
    W = rng.normal(scale=0.5, size=(I, J, D_IN, D_OUT)).astype(np.float32)
    bias = rng.normal(scale=0.1, size=(J, D_OUT)).astype(np.float32)
    return u, W, bias


def test_predict_vectors_match_a_loop_over_capsule_pairs():
    u, W, _ = random_inputs()
    expected = numpy_predict_vectors(u.astype(np.float64), W.astype(np.float64))
    with tf.Graph().as_default(), tf1.Session() as sess:
        einsum, tiled, parent_major = sess.run([
            capsLayer.predict_vectors(tf.constant(u), tf.constant(W)),
            reference_layers.tiled_predict_vectors(tf.constant(u), tf.constant(W)),
            capsLayer._predict_vectors_by_parent(tf.constant(u), tf.constant(W))])
    np.testing.assert_allclose(einsum, expected, atol=1e-5)
    np.testing.assert_allclose(tiled, expected, atol=1e-5)
    assert parent_major.shape == (B, J, I, D_OUT)
    np.testing.assert_allclose(parent_major.transpose(0, 2, 1, 3), expected, atol=1e-5)


@pytest.mark.parametrize('iterations,leaky,use_bias', [(1, False, False), (3, False, False),
                                                       (3, True, True)])
def test_dynamic_routing_matches_procedure_1_in_numpy(iterations, leaky, use_bias):
    u, W, bias = random_inputs(1)
    u_hat = numpy_predict_vectors(u.astype(np.float64), W.astype(np.float64))
    expected_v, expected_c = numpy_routing(u_hat, iterations, bias if use_bias else None, leaky)
    with tf.Graph().as_default(), tf1.Session() as sess:
        v, c = sess.run(capsLayer.dynamic_routing(
            tf.constant(u_hat.astype(np.float32)), iterations,
            bias=tf.constant(bias) if use_bias else None, leaky=leaky))
    np.testing.assert_allclose(v, expected_v, atol=1e-5)
    np.testing.assert_allclose(c, expected_c, atol=1e-5)
    # The routing did something: couplings are not all uniform after the first iteration.
    assert iterations == 1 or np.abs(c - c.mean(-1, keepdims=True)).max() > 1e-2


def build_both_layers(u_value, W_value, bias_value, **layer_args):
    """The fast layer and the tiled reference on one u, with the same W (and bias); returns the
    two (v, c) pairs, gradients of one loss w.r.t. (W, u) for each, and the init op that loads W."""
    u = tf.constant(u_value)
    outputs, grads, loads = [], [], []
    for name, layer in (('fast', capsLayer.digit_caps),
                        ('reference', reference_layers.reference_digit_caps(
                            reference_layers.tiled_predict_vectors))):
        v, c = layer(u, J, D_OUT, scope=name, **layer_args)
        variables = {var.op.name.split('/')[-1]: var for var in tf1.global_variables(name)}
        loads.append(variables['W'].assign(W_value))
        if 'biases' in variables:
            loads.append(variables['biases'].assign(bias_value))
        # A loss that weighs every output differently, so a transposed gradient would show.
        weights = tf.constant(np.arange(B * J * D_OUT, dtype=np.float32).reshape(B, J, D_OUT) / 100)
        loss = tf.reduce_sum(weights * v) + tf.reduce_sum(tf.square(capsLayer.capsule_length(v)))
        outputs.append((v, c))
        grads.append(tf.gradients(loss, [variables['W'], u]))
    return outputs, grads, tf.group(loads)


@pytest.mark.parametrize('layer_args', [
    dict(iter_routing=3),
    dict(iter_routing=2, stop_gradient_inner=False, use_bias=True, leaky=True),
])
@pytest.mark.slow
def test_fast_digit_caps_matches_tiled_reference_values_and_gradients(layer_args):
    u, W, bias = random_inputs(2)
    with tf.Graph().as_default(), tf1.Session() as sess:
        outputs, grads, load = build_both_layers(u, W, bias, **layer_args)
        sess.run(tf1.global_variables_initializer())
        sess.run(load)
        (fast, reference), (fast_grads, reference_grads) = sess.run([outputs, grads])
    for got, want in zip(list(fast) + list(fast_grads), list(reference) + list(reference_grads)):
        assert got.shape == want.shape
        np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5)
    assert np.abs(fast_grads[0]).max() > 1e-3  # the gradients compared are not all zero


@pytest.mark.slow
def test_capsnet_variables_and_loss_unchanged_by_the_fast_layer(monkeypatch):
    """Same variable names and shapes as the straightforward layer (old checkpoints load), same loss."""
    rng = np.random.default_rng(3)
    images = rng.random((2, 28, 28, 1)).astype(np.float32)
    labels = np.array([3, 7], np.int32)

    def build(digit_caps):
        monkeypatch.setattr(capsLayer, 'digit_caps', digit_caps)
        graph = tf.Graph()
        with graph.as_default():
            tf1.set_random_seed(5)
            model = capsNet.CapsNet(tf.constant(images), tf.constant(labels),
                                    capsNet.ModelConfig(stddev=0.3))
            shapes = {v.op.name: v.shape.as_list() for v in tf1.global_variables()}
            with tf1.Session() as sess:
                sess.run(tf1.global_variables_initializer())
                values = sess.run([model.total_loss, model.lengths])
        return shapes, values

    fast_shapes, (fast_loss, fast_lengths) = build(capsLayer.digit_caps)
    ref_shapes, (ref_loss, ref_lengths) = build(
        reference_layers.reference_digit_caps(capsLayer.predict_vectors))
    assert fast_shapes == ref_shapes and fast_shapes['digit_caps/W'] == [1152, 10, 8, 16]
    np.testing.assert_allclose(fast_lengths, ref_lengths, rtol=1e-5, atol=1e-5)
    np.testing.assert_allclose(fast_loss, ref_loss, rtol=1e-5)
