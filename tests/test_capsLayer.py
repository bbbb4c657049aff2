"""The capsule math against NumPy written here, value by value."""
import numpy as np
import pytest
import tensorflow as tf

import capsLayer

tf1 = tf.compat.v1


def run(fn, *arrays):
    """Builds fn on constants in a fresh graph and evaluates it."""
    with tf.Graph().as_default():
        out = fn(*[tf.constant(a) for a in arrays])
        with tf1.Session() as sess:
            return sess.run(out)


def np_squash(s):
    n2 = np.sum(s ** 2, axis=-1, keepdims=True)
    return n2 / (1 + n2) * s / np.sqrt(n2 + capsLayer.SQUASH_EPSILON)


def np_softmax(x, axis):
    e = np.exp(x - x.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def np_routing(u_hat, iterations):
    """Procedure 1 of the paper with explicit loops over i and j (u_hat: [B, I, J, D])."""
    B, I, J, D = u_hat.shape
    b = np.zeros((B, I, J))
    for r in range(iterations):
        c = np_softmax(b, axis=2)
        s = np.zeros((B, J, D))
        for i in range(I):
            for j in range(J):
                s[:, j] += c[:, i, j, None] * u_hat[:, i, j]
        v = np_squash(s)
        if r < iterations - 1:
            for i in range(I):
                for j in range(J):
                    b[:, i, j] += np.sum(u_hat[:, i, j] * v[:, j], axis=-1)
    return v, c


def test_squash_hand_values():
    # |s| = 5: length 25/26, direction kept.
    v = run(capsLayer.squash, np.array([[3.0, 4.0]], np.float32))
    np.testing.assert_allclose(v, [[3 / 5 * 25 / 26, 4 / 5 * 25 / 26]], rtol=1e-6)
    # Zero stays zero without NaN.
    assert np.all(run(capsLayer.squash, np.zeros((2, 3), np.float32)) == 0)


def test_squash_matches_numpy_and_lengths_below_one():
    s = np.random.default_rng(0).normal(0, 3, (4, 7, 16)).astype(np.float32)
    v = run(capsLayer.squash, s)
    np.testing.assert_allclose(v, np_squash(s.astype(np.float64)), rtol=1e-5, atol=1e-7)
    lengths = np.linalg.norm(v, axis=-1)
    assert np.all(lengths < 1) and np.all(lengths >= 0)


def test_predict_vectors_matches_explicit_matmul():
    rng = np.random.default_rng(1)
    u = rng.normal(size=(3, 5, 8)).astype(np.float32)
    W = rng.normal(size=(5, 4, 8, 16)).astype(np.float32)
    expected = np.zeros((3, 5, 4, 16))
    for i in range(5):
        for j in range(4):
            expected[:, i, j] = u[:, i] @ W[i, j]  # u_hat_{j|i} = W_ij u_i
    np.testing.assert_allclose(run(capsLayer.predict_vectors, u, W), expected, rtol=1e-5, atol=1e-5)


@pytest.mark.parametrize('iterations', [1, 2, 3, 5])
def test_routing_matches_numpy_procedure(iterations):
    u_hat = np.random.default_rng(iterations).normal(0, 0.5, (2, 6, 4, 5)).astype(np.float32)
    v, c = run(lambda x: capsLayer.dynamic_routing(x, iterations), u_hat)
    v_ref, c_ref = np_routing(u_hat.astype(np.float64), iterations)
    np.testing.assert_allclose(v, v_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c, c_ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(c.sum(axis=2), 1.0, rtol=1e-6)  # coupling sums to 1 over parents
    assert np.all(np.linalg.norm(v, axis=-1) < 1)


def test_routing_first_iteration_is_uniform():
    u_hat = np.random.default_rng(7).normal(size=(1, 3, 10, 2)).astype(np.float32)
    _, c = run(lambda x: capsLayer.dynamic_routing(x, 1), u_hat)
    np.testing.assert_allclose(c, 0.1, rtol=1e-6)


def test_routing_agreement_raises_coupling_to_agreeing_parent():
    # Every child predicts the same vector for parent 0, while predictions for parent 1 cancel out
    # (+d and -d): v_1 = 0, so only parent 0 gains agreement and every c_i0 must exceed uniform 0.5.
    u_hat = np.zeros((1, 8, 2, 4), np.float32)
    u_hat[0, :, 0] = [1.0, 0.5, 0.0, 0.0]
    u_hat[0, :, 1] = [[0.0, 0.0, 2.0, 0.0], [0.0, 0.0, -2.0, 0.0]] * 4
    _, c = run(lambda x: capsLayer.dynamic_routing(x, 3), u_hat)
    assert np.all(c[0, :, 0] > 0.6)


@pytest.mark.slow
def test_routing_gradient_flows_through_last_iteration_only():
    u_hat = np.random.default_rng(4).normal(0, 0.5, (2, 6, 3, 4)).astype(np.float32)

    def grad(stop_inner):
        with tf.Graph().as_default():
            x = tf.constant(u_hat)
            v, _ = capsLayer.dynamic_routing(x, 3, stop_gradient_inner=stop_inner)
            g = tf.gradients(tf.reduce_sum(v * v), x)[0]
            # Reference for stop_inner: c_ij of the last iteration held constant.
            with tf1.Session() as sess:
                return sess.run(g)

    g_stop, g_full = grad(True), grad(False)
    # With stop-gradient, dL/du_hat = c_ij * dL/ds_j with c_ij treated as constant.
    v_ref, c_ref = np_routing(u_hat.astype(np.float64), 3)
    s = np.einsum('bij,bijd->bjd', c_ref, u_hat)
    with tf.Graph().as_default():
        s_t = tf.constant(s)
        dv_ds = tf.gradients(tf.reduce_sum(tf.square(capsLayer.squash(s_t))), s_t)[0]
        with tf1.Session() as sess:
            dL_ds = sess.run(dv_ds)
    np.testing.assert_allclose(g_stop, c_ref[..., None] * dL_ds[:, None], rtol=1e-4, atol=1e-6)
    assert not np.allclose(g_stop, g_full, atol=1e-6)


def test_margin_loss_hand_computed():
    lengths = np.array([[0.95, 0.2, 0.05], [0.5, 0.7, 0.0]], np.float32)
    one_hot = np.array([[1, 0, 0], [0, 0, 1]], np.float32)
    # Example 1: true class 0 above m+ (0); class 1: 0.5 * (0.2 - 0.1)^2; class 2 below m-.
    # Example 2: true class 2: (0.9 - 0)^2; class 0: 0.5 * 0.4^2; class 1: 0.5 * 0.6^2.
    expected = (0.5 * 0.1 ** 2 + 0.9 ** 2 + 0.5 * 0.4 ** 2 + 0.5 * 0.6 ** 2) / 2
    got = run(lambda l, t: capsLayer.margin_loss(l, t, 0.9, 0.1, 0.5), lengths, one_hot)
    assert got == pytest.approx(expected, rel=1e-5)


def test_margin_loss_matches_numpy_random():
    rng = np.random.default_rng(5)
    lengths = rng.random((16, 10)).astype(np.float32)
    one_hot = np.eye(10, dtype=np.float32)[rng.integers(0, 10, 16)]
    ref = (one_hot * np.maximum(0, 0.9 - lengths) ** 2
           + 0.5 * (1 - one_hot) * np.maximum(0, lengths - 0.1) ** 2).sum(1).mean()
    assert run(capsLayer.margin_loss, lengths, one_hot) == pytest.approx(ref, rel=1e-5)


def test_capsule_length_is_norm():
    v = np.random.default_rng(6).normal(size=(3, 10, 16)).astype(np.float32)
    np.testing.assert_allclose(run(capsLayer.capsule_length, v), np.linalg.norm(v, axis=-1), rtol=1e-5)


def test_iter_routing_zero_refused():
    with pytest.raises(ValueError, match='iter_routing'):
        run(lambda x: capsLayer.dynamic_routing(x, 0), np.zeros((1, 2, 3, 4), np.float32))
