"""PrimaryCaps' stride-2 convolution as matmuls (capsLayer.stride2_conv_as_matmuls), and Conv1 with its
weight and bias gradients as matmuls (capsLayer.conv_with_matmul_gradients), compute what tf.nn.conv2d
and a NumPy loop compute, values and gradients; the model built either way has the same variables and
the same loss and gradients; --primary_caps_impl picks it and a run may change it
when it resumes."""
import argparse

import numpy as np
import pytest
import tensorflow as tf
from conftest import run_main, tiny_run_args

import capsLayer
import capsNet
import config
from runtime import run_record, session
from runtime.errors import ConfigError

tf1 = tf.compat.v1


def numpy_conv_stride2(x, w):
    """VALID stride-2 convolution, one output pixel at a time."""
    k = w.shape[0]
    out_h, out_w = (x.shape[1] - k) // 2 + 1, (x.shape[2] - k) // 2 + 1
    y = np.zeros((x.shape[0], out_h, out_w, w.shape[3]))
    for oy in range(out_h):
        for ox in range(out_w):
            patch = x[:, 2 * oy:2 * oy + k, 2 * ox:2 * ox + k, :]           # [B, k, k, C]
            y[:, oy, ox] = np.tensordot(patch, w, axes=([1, 2, 3], [0, 1, 2]))
    return y


def run_both(x_value, w_value, upstream, input_gradient='matmuls', forward='matmuls'):
    """(conv2d's, the matmuls') (y, dx, dw), in float64."""
    graph = tf.Graph()
    with graph.as_default():
        x, w = tf.constant(x_value), tf.constant(w_value)
        outs = []
        for y in (tf.nn.conv2d(x, w, strides=2, padding='VALID'),
                  capsLayer.stride2_conv_as_matmuls(x, w, input_gradient, forward)):
            outs.append([y] + tf.gradients(y, [x, w], grad_ys=upstream))
        with tf1.Session(graph=graph) as sess:
            return sess.run(outs)


@pytest.mark.parametrize('shape, kernel', [((3, 20, 20, 5), 9),    # PrimaryCaps' own: 6 x 6 out, row 19 unread
                                           ((2, 12, 16, 3), 9),    # not square
                                           ((2, 10, 8, 4), 4),     # an even kernel
                                           ((2, 13, 11, 3), 5),    # odd sides, each fully read
                                           ((1, 14, 15, 2), 9),    # even and odd, last row unread
                                           ((1, 6, 6, 2), 3)])
@pytest.mark.parametrize('input_gradient', capsLayer.PASS_KERNELS)
@pytest.mark.parametrize('forward', capsLayer.PASS_KERNELS)
def test_matmuls_equal_the_convolution_and_its_gradients(shape, kernel, input_gradient, forward):
    rng = np.random.default_rng(sum(shape) + kernel)
    x = rng.standard_normal(shape)
    w = rng.standard_normal((kernel, kernel, shape[-1], 7))
    out_shape = (shape[0], (shape[1] - kernel) // 2 + 1, (shape[2] - kernel) // 2 + 1, 7)
    upstream = rng.standard_normal(out_shape)
    (y_conv, dx_conv, dw_conv), (y_mm, dx_mm, dw_mm) = run_both(x, w, upstream, input_gradient, forward)
    assert y_mm.shape == out_shape and dx_mm.shape == shape and dw_mm.shape == w.shape
    np.testing.assert_allclose(y_mm, numpy_conv_stride2(x, w), rtol=1e-10, atol=1e-10)
    for mine, theirs in ((y_mm, y_conv), (dx_mm, dx_conv), (dw_mm, dw_conv)):
        np.testing.assert_allclose(mine, theirs, rtol=1e-10, atol=1e-10)
    if shape[1] == 20:
        assert not dx_mm[:, 19].any() and not dx_mm[:, :, 19].any()  # no patch reads the last row/column


def test_input_gradient_matches_numpy_for_a_one_hot_upstream():
    # d y[0, oy, ox, o] / dx is w[..., o] placed at (2 oy, 2 ox): a fold that put a patch in the wrong
    # place, or summed an overlap once too often, shows here pixel by pixel.
    rng = np.random.default_rng(1)
    x, w = rng.standard_normal((1, 12, 12, 2)), rng.standard_normal((5, 5, 2, 3))
    upstream = np.zeros((1, 4, 4, 3))
    upstream[0, 1, 2, 1] = 1.0
    upstream[0, 2, 2, 1] = 2.0                      # overlaps the first patch by three rows
    expected = np.zeros_like(x)
    expected[0, 2:7, 4:9] += w[..., 1]
    expected[0, 4:9, 4:9] += 2.0 * w[..., 1]
    (_, dx_conv, _), (_, dx_mm, _) = run_both(x, w, upstream)
    np.testing.assert_allclose(dx_mm[0], expected[0], rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(dx_conv[0], expected[0], rtol=1e-12, atol=1e-12)


@pytest.mark.parametrize('choices, named', [(('fold', 'matmuls'), 'input_gradient'),
                                             (('conv', 'im2col'), 'forward')])
def test_an_unknown_input_gradient_or_forward_is_refused(choices, named):
    with tf.Graph().as_default(), pytest.raises(ValueError, match=named):
        capsLayer.stride2_conv_as_matmuls(tf.zeros([1, 6, 6, 1]), tf.zeros([3, 3, 1, 2]), *choices)


@pytest.mark.parametrize('input_gradient, library_op', [('matmuls', 'MatMul'), ('conv', 'Conv2DBackpropInput')])
def test_input_gradient_runs_after_the_weight_gradient(input_gradient, library_op):
    # The order that keeps the two gradients' temporaries from being held at once (peak memory): every
    # op of the input gradient waits, directly or through its inputs, for the weight gradient.
    graph = tf.Graph()
    with graph.as_default():
        x, w = tf.zeros([2, 20, 20, 4]), tf.zeros([9, 9, 4, 8])
        tf.gradients(capsLayer.stride2_conv_as_matmuls(x, w, input_gradient), [x, w])
    ops = graph.get_operations()
    weight_ops = {op for op in ops if '/weight_gradient/' in op.name}
    input_ops = [op for op in ops if '/input_gradient/' in op.name and op.type == library_op]
    assert weight_ops and input_ops

    def waits_for_weight_gradient(op, seen):
        if op in seen:
            return False
        seen.add(op)
        ancestors = list(op.control_inputs) + [t.op for t in op.inputs]
        return any(a in weight_ops or waits_for_weight_gradient(a, seen) for a in ancestors)
    assert all(waits_for_weight_gradient(op, set()) for op in input_ops)


@pytest.mark.parametrize('shape, kernel, stride', [((3, 28, 28, 1), 9, 1),   # Conv1's own: 20 x 20 out
                                                   ((2, 13, 11, 3), 4, 1),   # odd, not square, channels
                                                   ((2, 15, 12, 2), 3, 3)])  # another stride
def test_convolution_with_matmul_gradients_equals_the_convolution_and_its_gradients(shape, kernel, stride):
    rng = np.random.default_rng(sum(shape) + kernel + stride)
    x, b = rng.standard_normal(shape), rng.standard_normal(6)
    w = rng.standard_normal((kernel, kernel, shape[-1], 6))
    out_h, out_w = (shape[1] - kernel) // stride + 1, (shape[2] - kernel) // stride + 1
    upstream = rng.standard_normal((shape[0], out_h, out_w, 6))
    graph = tf.Graph()
    with graph.as_default():
        tensors = [tf.constant(v) for v in (x, w, b)]
        library = tf.nn.conv2d(tensors[0], tensors[1], strides=stride, padding='VALID') + tensors[2]
        mine = capsLayer.conv_with_matmul_gradients(*tensors, stride)
        fetches = [[y] + tf.gradients(y, tensors, grad_ys=upstream) for y in (library, mine)]
        with tf1.Session(graph=graph) as sess:
            theirs, ours = sess.run(fetches)
    for a, c in zip(ours, theirs):
        assert a.shape == c.shape
        np.testing.assert_allclose(a, c, rtol=1e-10, atol=1e-10)
    # The weight gradient as a NumPy loop: each window of x times dy, summed over images and outputs.
    expected_dw = np.zeros_like(w)
    for oy in range(out_h):
        for ox in range(out_w):
            window = x[:, stride * oy:stride * oy + kernel, stride * ox:stride * ox + kernel, :]
            expected_dw += np.einsum('bijc,bo->ijco', window, upstream[:, oy, ox])
    np.testing.assert_allclose(ours[2], expected_dw, rtol=1e-10, atol=1e-10)
    np.testing.assert_allclose(ours[3], upstream.sum(axis=(0, 1, 2)), rtol=1e-10, atol=1e-10)


def build_model(impl, images, labels, input_gradient='matmuls', forward='matmuls'):
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(3)
        model = capsNet.CapsNet(tf.constant(images), tf.constant(labels),
                                capsNet.ModelConfig(primary_caps_impl=impl,
                                                    primary_caps_input_gradient=input_gradient,
                                                    primary_caps_forward=forward),
                                training=True)
        grads = tf.gradients(model.total_loss, tf1.trainable_variables())
        names = [(v.name, v.shape.as_list()) for v in tf1.global_variables()]
        with tf1.Session(graph=graph) as sess:
            sess.run(tf1.global_variables_initializer())
            loss, grad_values = sess.run([model.total_loss, grads])
        # The convolution ops of PrimaryCaps (forward and gradients: these live under its name too)
        # and of Conv1's weight gradient.
        ops = {op.type for op in graph.get_operations() if 'primary_caps' in op.name and 'Conv2D' in op.type}
        ops |= {'conv1 ' + op.type for op in graph.get_operations()
                if 'conv1' in op.name and op.type == 'Conv2DBackpropFilter'}
    return names, loss, grad_values, ops


def test_model_built_with_matmuls_has_the_same_variables_loss_and_gradients():
    rng = np.random.default_rng(2)
    images = rng.random((4, 28, 28, 1)).astype(np.float32)
    labels = rng.integers(0, 10, 4).astype(np.int32)
    names_conv, loss_conv, grads_conv, ops_conv = build_model('conv', images, labels)
    names_mm, loss_mm, grads_mm, ops_mm = build_model('matmuls', images, labels)
    assert names_mm == names_conv                   # checkpoints load either way
    assert ops_conv >= {'Conv2D', 'Conv2DBackpropInput', 'Conv2DBackpropFilter', 'conv1 Conv2DBackpropFilter'}
    assert ops_mm == set()
    np.testing.assert_allclose(loss_mm, loss_conv, rtol=1e-5)
    for mine, theirs in zip(grads_mm, grads_conv):
        np.testing.assert_allclose(mine, theirs, rtol=1e-3, atol=1e-4 * np.abs(theirs).max())
    # The library's kernels for some passes: only those passes' ops appear, the values stay the same.
    for input_gradient, forward, library_ops in (('conv', 'matmuls', {'Conv2DBackpropInput'}),
                                                 ('conv', 'conv', {'Conv2D', 'Conv2DBackpropInput'})):
        names, loss, grads, ops = build_model('matmuls', images, labels, input_gradient, forward)
        assert names == names_conv
        assert ops == library_ops                     # the weight gradient stays the products
        np.testing.assert_allclose(loss, loss_conv, rtol=1e-5)
        for mine, theirs in zip(grads, grads_conv):
            np.testing.assert_allclose(mine, theirs, rtol=1e-3, atol=1e-4 * np.abs(theirs).max())


@pytest.mark.parametrize('flags, onednn, gpu, expected', [
    (dict(precision='float32'), True, False, 'matmuls'),
    (dict(precision='bfloat16'), True, False, 'matmuls'),
    (dict(precision='float32'), False, False, 'conv'),       # TensorFlow's own kernels: conv is faster
    (dict(precision='bfloat16'), False, False, 'conv'),
    (dict(precision='bfloat16'), True, True, 'conv'),
    (dict(precision='float32', primary_caps_impl='matmuls'), False, False, 'matmuls'),
    (dict(precision='bfloat16', primary_caps_impl='conv'), True, False, 'conv')])
def test_auto_picks_matmuls_only_where_onednn_runs_on_the_cpu(flags, onednn, gpu, expected, monkeypatch):
    monkeypatch.setattr(session, 'onednn_enabled', lambda: onednn)
    monkeypatch.setattr(tf.config, 'list_physical_devices', lambda kind=None: ['gpu:0'] if gpu else [])
    assert session.primary_caps_impl(argparse.Namespace(**flags)) == expected
    assert session.model_config(argparse.Namespace(**flags)).primary_caps_impl == expected


@pytest.mark.parametrize('flags, expected', [
    (dict(precision='float32'), 'conv'),             # oneDNN's float32 kernels beat the products (AVX2)
    (dict(precision='bfloat16'), 'matmuls'),         # the formulation measured in bfloat16 (AMX)
    (dict(precision='float16'), 'matmuls'),
    (dict(precision='float32', chosen='matmuls'), 'matmuls'),
    (dict(precision='bfloat16', chosen='conv'), 'conv')])
@pytest.mark.parametrize('field', ['primary_caps_input_gradient', 'primary_caps_forward'])
def test_auto_pass_kernels_follow_the_precision(flags, expected, field, monkeypatch):
    monkeypatch.setattr(session, 'onednn_enabled', lambda: True)
    monkeypatch.setattr(tf.config, 'list_physical_devices', lambda kind=None: [])
    flags = dict(flags)
    if 'chosen' in flags:
        flags[field] = flags.pop('chosen')
    assert getattr(session, field)(argparse.Namespace(**flags)) == expected
    assert getattr(session.model_config(argparse.Namespace(**flags)), field) == expected


def test_flag_is_parsed_checked_and_not_part_of_a_runs_identity():
    assert config.parse([]).primary_caps_impl == 'auto'
    assert config.parse(['--primary_caps_impl', 'matmuls']).primary_caps_impl == 'matmuls'
    with pytest.raises(ConfigError, match='--primary_caps_impl: invalid choice'):
        config.parse(['--primary_caps_impl', 'im2col'])
    assert 'primary_caps_impl' not in run_record.IDENTITY_FLAGS
    assert config.parse([]).primary_caps_input_gradient == 'auto'
    assert config.parse(['--primary_caps_input_gradient', 'conv']).primary_caps_input_gradient == 'conv'
    with pytest.raises(ConfigError, match='--primary_caps_input_gradient: invalid choice'):
        config.parse(['--primary_caps_input_gradient', 'fold'])
    assert 'primary_caps_input_gradient' not in run_record.IDENTITY_FLAGS
    assert config.parse([]).primary_caps_forward == 'auto'
    assert config.parse(['--primary_caps_forward', 'matmuls']).primary_caps_forward == 'matmuls'
    with pytest.raises(ConfigError, match='--primary_caps_forward: invalid choice'):
        config.parse(['--primary_caps_forward', 'im2col'])
    assert 'primary_caps_forward' not in run_record.IDENTITY_FLAGS
    assert 'primary_caps_types' in run_record.IDENTITY_FLAGS


@pytest.mark.slow
def test_a_run_resumes_with_the_other_formulation(tiny_mnist, tmp_path):
    args = tiny_run_args(tiny_mnist, tmp_path)
    assert run_main(args + ['--max_steps', '3', '--primary_caps_impl', 'conv']) == 0
    assert run_main(args + ['--max_steps', '6', '--primary_caps_impl', 'matmuls']) == 0
    assert run_main(args + ['--max_steps', '8', '--primary_caps_impl', 'matmuls',
                            '--primary_caps_input_gradient', 'matmuls', '--primary_caps_forward', 'matmuls']) == 0
    rows = (tmp_path / 'results' / 'loss.csv').read_text().split()
    assert rows[0].startswith('step,loss') and rows[-1].startswith('8,')
