"""The paper/official-code options (config flags) each change exactly what they should.

References are NumPy re-implementations of Procedure 1 in float64; gradients are checked against
central finite differences of those references.
"""
import numpy as np
import pytest
import tensorflow as tf

import capsLayer
import capsNet
import config

tf1 = tf.compat.v1


# ---------------------------------------------------------------- NumPy references
def np_squash(s):
    n2 = np.sum(s * s, axis=-1, keepdims=True)
    return n2 / (1 + n2) * s / np.sqrt(n2 + capsLayer.SQUASH_EPSILON)


def np_coupling(b, leaky):
    if leaky:  # softmax over [0, b_1 .. b_J], the orphan column dropped
        b = np.concatenate([np.zeros_like(b[..., :1]), b], axis=-1)
    e = np.exp(b - b.max(axis=-1, keepdims=True))
    c = e / e.sum(axis=-1, keepdims=True)
    return c[..., 1:] if leaky else c


def np_routing(u_hat, iters, bias=None, leaky=False, frozen_c=None):
    """Forward pass of Procedure 1. frozen_c replaces the last c_ij (to differentiate with c fixed)."""
    b = np.zeros(u_hat.shape[:3])
    for r in range(iters):
        c = np_coupling(b, leaky)
        if r == iters - 1 and frozen_c is not None:
            c = frozen_c
        s = np.einsum('bij,bijd->bjd', c, u_hat) + (0 if bias is None else bias)
        v = np_squash(s)
        if r < iters - 1:
            b = b + np.einsum('bijd,bjd->bij', u_hat, v)
    return v, c


def finite_difference(f, x, eps=1e-6):
    grad = np.zeros_like(x)
    for idx in np.ndindex(*x.shape):
        hi, lo = x.copy(), x.copy()
        hi[idx] += eps
        lo[idx] -= eps
        grad[idx] = (f(hi) - f(lo)) / (2 * eps)
    return grad


def run(fetches, feed=None):
    with tf1.Session() as sess:
        sess.run(tf1.global_variables_initializer())
        return sess.run(fetches, feed)


# Tiny shapes: batch 2, 5 child capsules of 3-D, 3 parents of 4-D.
B, I, J, D_IN, D_OUT = 2, 5, 3, 3, 4


def tiny_inputs(seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(B, I, D_IN)), rng.normal(scale=0.5, size=(I, J, D_IN, D_OUT))


# ---------------------------------------------------------------- routing forward and gradients
@pytest.mark.parametrize('leaky', [False, True])
@pytest.mark.parametrize('with_bias', [False, True])
def test_routing_forward_matches_numpy(leaky, with_bias):
    u, W = tiny_inputs()
    bias = np.linspace(-0.3, 0.3, J * D_OUT).reshape(J, D_OUT) if with_bias else None
    with tf.Graph().as_default():
        u_hat = capsLayer.predict_vectors(tf.constant(u), tf.constant(W))
        v, c = capsLayer.dynamic_routing(u_hat, 3, bias=None if bias is None else tf.constant(bias),
                                         leaky=leaky)
        v_tf, c_tf = run([v, c])
    v_np, c_np = np_routing(np.einsum('bid,ijde->bije', u, W), 3, bias, leaky)
    np.testing.assert_allclose(v_tf, v_np, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(c_tf, c_np, rtol=1e-9, atol=1e-12)


def _routing_gradient_wrt_W(stop_gradient_inner, u, W, readout):
    with tf.Graph().as_default():
        W_t = tf.constant(W)
        v, _ = capsLayer.dynamic_routing(capsLayer.predict_vectors(tf.constant(u), W_t), 3,
                                         stop_gradient_inner=stop_gradient_inner)
        loss = tf.reduce_sum(v * readout)
        return run(tf.gradients(loss, W_t)[0])


@pytest.mark.slow
def test_stop_gradient_routing_changes_gradient_of_W_as_specified():
    u, W = tiny_inputs(1)
    readout = np.random.default_rng(2).normal(size=(B, J, D_OUT))

    def loss_all_iterations(W_):
        return np.sum(np_routing(np.einsum('bid,ijde->bije', u, W_), 3)[0] * readout)

    # Gradients through every iteration (official): the full derivative of the forward pass.
    through_all = _routing_gradient_wrt_W(False, u, W, readout)
    np.testing.assert_allclose(through_all, finite_difference(loss_all_iterations, W), rtol=1e-5, atol=1e-8)

    # Original script: c_ij of the last iteration are constants; only the last weighted sum is
    # differentiated.
    _, c_last = np_routing(np.einsum('bid,ijde->bije', u, W), 3)

    def loss_c_frozen(W_):
        return np.sum(np_routing(np.einsum('bid,ijde->bije', u, W_), 3, frozen_c=c_last)[0] * readout)

    last_only = _routing_gradient_wrt_W(True, u, W, readout)
    np.testing.assert_allclose(last_only, finite_difference(loss_c_frozen, W), rtol=1e-5, atol=1e-8)
    # And the two really differ (otherwise the flag would do nothing).
    assert np.max(np.abs(last_only - through_all)) > 1e-3 * np.max(np.abs(through_all))


def test_single_iteration_gradient_is_the_same_either_way():
    # With one iteration there are no inner iterations: the flag must not matter.
    u, W = tiny_inputs(3)
    readout = np.ones((B, J, D_OUT))
    with tf.Graph().as_default():
        W_t = tf.constant(W)
        grads = []
        for stop in (True, False):
            v, _ = capsLayer.dynamic_routing(capsLayer.predict_vectors(tf.constant(u), W_t), 1,
                                             stop_gradient_inner=stop)
            grads.append(tf.gradients(tf.reduce_sum(v * readout), W_t)[0])
        g_stop, g_all = run(grads)
    np.testing.assert_allclose(g_stop, g_all, rtol=1e-12)


# ---------------------------------------------------------------- leaky routing
def test_leaky_coupling_is_softmax_with_extra_zero_logit_and_sums_below_one():
    b = np.random.default_rng(4).normal(scale=2.0, size=(B, I, J))
    with tf.Graph().as_default():
        leaky, plain = run([capsLayer._coupling(tf.constant(b), True), capsLayer._coupling(tf.constant(b), False)])
    np.testing.assert_allclose(leaky, np_coupling(b, True), rtol=1e-12)
    # By hand for one child: exp(b_j) / (1 + sum_k exp(b_k)).
    np.testing.assert_allclose(leaky[0, 0], np.exp(b[0, 0]) / (1 + np.exp(b[0, 0]).sum()), rtol=1e-12)
    assert np.all(leaky.sum(-1) < 1.0) and np.all(leaky > 0)
    np.testing.assert_allclose(plain.sum(-1), 1.0, rtol=1e-12)


def test_leaky_routing_reaches_the_digit_capsules_through_the_flag():
    cfg = capsNet.ModelConfig.from_flags(config.parse(['--leaky_routing']))
    assert cfg.leaky_routing
    with tf.Graph().as_default():
        tf1.set_random_seed(0)
        images = tf.random.uniform([2, 28, 28, 1], seed=1)
        model = capsNet.CapsNet(images, tf.zeros([2], tf.int32), cfg, training=False)
        sums = run(tf.reduce_sum(model.coupling, -1))
    assert sums.shape == (2, 1152) and np.all(sums < 1.0)


# ---------------------------------------------------------------- digit-capsule bias
def _model_variables(**overrides):
    cfg = capsNet.ModelConfig(**overrides)
    with tf.Graph().as_default():
        capsNet.CapsNet(tf1.placeholder(tf.float32, [None, 28, 28, 1]), tf1.placeholder(tf.int32, [None]),
                        cfg, training=False)
        return {v.op.name: v.shape.as_list() for v in tf1.trainable_variables()}


def test_digit_caps_bias_adds_one_160_parameter_variable():
    without, with_bias = _model_variables(), _model_variables(digit_caps_bias=True)
    assert set(with_bias) - set(without) == {'digit_caps/biases'}
    assert with_bias['digit_caps/biases'] == [10, 16]
    count = lambda shapes: sum(int(np.prod(s)) for s in shapes.values())  # noqa: E731
    assert count(with_bias) - count(without) == 160
    # 8,215,568 is the paper's CapsNet + decoder without that bias (conv1 20,992; primary 5,308,672;
    # W 1,474,560; decoder 1,411,344).
    assert count(without) == 8215568


# ---------------------------------------------------------------- PrimaryCaps ReLU
@pytest.mark.parametrize('relu', [True, False])
def test_primary_caps_relu_decides_if_components_can_be_negative(relu):
    with tf.Graph().as_default():
        tf1.set_random_seed(5)
        inputs = tf.random.normal([2, 12, 12, 3], seed=6)
        u = run(capsLayer.primary_caps(inputs, num_channels=2, caps_dim=4, relu=relu))
    assert u.shape == (2, 2 * 2 * 2, 4)
    if relu:
        assert u.min() >= 0.0
    else:
        assert u.min() < -1e-3
    assert np.all(np.linalg.norm(u, axis=-1) < 1.0)  # squashed either way


# ---------------------------------------------------------------- learning-rate schedule
def _learning_rates(schedule, steps, **decay):
    cfg = capsNet.ModelConfig(lr_schedule=schedule, learning_rate=1e-3, **decay)
    with tf.Graph().as_default():
        step = tf1.placeholder(tf.int64, [])
        lr = capsNet.learning_rate(cfg, step)
        with tf1.Session() as sess:
            return [sess.run(lr, {step: s}) for s in steps]


def test_exponential_schedule_decays_096_every_2000_steps_continuously():
    steps = [0, 1000, 2000, 4000, 10 ** 7]
    rates = _learning_rates('exponential', steps)
    expected = [1e-3, 1e-3 * 0.96 ** 0.5, 1e-3 * 0.96, 1e-3 * 0.96 ** 2, 1e-6]  # last: the 1e-6 floor
    np.testing.assert_allclose(rates, expected, rtol=1e-6)
    np.testing.assert_allclose(_learning_rates('constant', steps), [1e-3] * len(steps), rtol=1e-7)


def test_exponential_schedule_takes_its_period_and_factor_from_the_flags():
    # CapsNet-Keras' x0.9 an epoch (429 steps of batch 128), continuous here.
    cfg = capsNet.ModelConfig.from_flags(config.parse(['--lr_schedule=exponential', '--lr_decay_steps=429',
                                                       '--lr_decay_rate=0.9']))
    assert (cfg.lr_decay_steps, cfg.lr_decay_rate) == (429, 0.9)
    rates = _learning_rates('exponential', [0, 429, 858], lr_decay_steps=429, lr_decay_rate=0.9)
    np.testing.assert_allclose(rates, [1e-3, 9e-4, 8.1e-4], rtol=1e-6)


@pytest.mark.parametrize('flags', [['--lr_decay_steps=0'], ['--lr_decay_rate=0'], ['--lr_decay_rate=1.5']])
def test_a_decay_that_is_no_decay_is_refused_in_one_line(flags):
    with pytest.raises(config.ConfigError, match=r'need --lr_decay_steps >= 1 and 0 < --lr_decay_rate <= 1'):
        config.parse(flags)


@pytest.mark.parametrize('schedule,expected_lr', [('constant', 1e-3), ('exponential', 1e-3 * 0.96 ** 2)])
def test_train_op_steps_with_the_scheduled_rate(schedule, expected_lr):
    # Adam's first update is lr * m / sqrt(v) = lr * sign(g) (up to epsilon): its size is the rate.
    cfg = capsNet.ModelConfig.from_flags(config.parse(['--lr_schedule', schedule]))
    with tf.Graph().as_default():
        global_step = tf1.train.get_or_create_global_step()
        x = tf1.get_variable('x', [], tf.float32, tf1.constant_initializer(1.0))
        train = capsNet.build_optimizer(cfg, global_step).minimize(tf.square(x))
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            global_step.load(4000, sess)
            sess.run(train)
            moved = 1.0 - sess.run(x)
    assert moved == pytest.approx(expected_lr, rel=1e-3)


def test_unknown_lr_schedule_is_a_one_line_config_error():
    with pytest.raises(config.ConfigError, match='lr_schedule'):
        config.parse(['--lr_schedule=cosine'])


def test_every_option_flag_reaches_the_model_config():
    flags = config.parse(['--primary_caps_relu=False', '--stop_gradient_routing=False', '--leaky_routing',
                          '--digit_caps_bias=True', '--lr_schedule=exponential'])
    cfg = capsNet.ModelConfig.from_flags(flags)
    assert (cfg.primary_caps_relu, cfg.stop_gradient_routing, cfg.leaky_routing, cfg.digit_caps_bias,
            cfg.lr_schedule) == (False, False, True, True, 'exponential')
    defaults = capsNet.ModelConfig.from_flags(config.parse([]))
    assert (defaults.primary_caps_relu, defaults.stop_gradient_routing, defaults.leaky_routing,
            defaults.digit_caps_bias, defaults.lr_schedule) == (True, True, False, False, 'constant')
