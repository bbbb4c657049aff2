"""Slow, obvious formulations of DigitCaps kept as yardsticks: of speed (bench.py) and of numerics
(tests/test_fast_routing.py checks capsLayer's optimised layer against them to 1e-5).

`reference_digit_caps(predict)` is a drop-in for capsLayer.digit_caps (same variables, same
outputs) whose u_hat comes from `predict` and whose routing follows Procedure 1 literally on a
[B, I, J, D] u_hat, with einsums:
  - tiled_predict_vectors: tiles u and W to [B, I, J * D_out, D_in] as older CapsNet scripts do
    (the benchmark's baseline);
  - capsLayer.predict_vectors (einsum): this project before the parent-major layout.
"""
import functools

import tensorflow as tf

import capsLayer

tf1 = tf.compat.v1


def tiled_predict_vectors(u, W):
    """u_hat by tiling u and W to [B, I, J * D_out, D_in], multiplying and summing over D_in.

    Both tiled tensors are B * 1152 * 160 * 8 floats (755 MB each at batch 128), and so are their
    gradients: the cost the parent-major layout of capsLayer avoids.
    """
    num_in, num_out, in_dim, out_dim = W.shape
    batch = tf.shape(u)[0]
    u_tiled = tf.tile(u[:, :, None, :], [1, 1, num_out * out_dim, 1])           # [B, I, J*E, D]
    W_rows = tf.reshape(tf.transpose(W, [0, 1, 3, 2]), [1, num_in, num_out * out_dim, in_dim])
    W_tiled = tf.tile(W_rows, [batch, 1, 1, 1])                                  # [B, I, J*E, D]
    u_hat = tf.reduce_sum(W_tiled * u_tiled, axis=-1)                            # [B, I, J*E]
    return tf.reshape(u_hat, [-1, num_in, num_out, out_dim])                     # [B, I, J, E]


def straightforward_routing(u_hat, iter_routing, stop_gradient_inner=True, bias=None, leaky=False):
    """Procedure 1 on u_hat [B, I, J, D] with einsums; returns (v_j [B, J, D], c_ij [B, I, J])."""
    u_hat_frozen = tf.stop_gradient(u_hat) if stop_gradient_inner else u_hat
    b_ij = tf.zeros_like(u_hat[..., 0])                                          # [B, I, J]
    v_j = c_ij = None
    for r in range(iter_routing):
        last = r == iter_routing - 1
        if leaky:
            logits = tf.concat([tf.zeros_like(b_ij[..., :1]), b_ij], axis=-1)
            c_ij = tf.nn.softmax(logits, axis=-1)[..., 1:]
        else:
            c_ij = tf.nn.softmax(b_ij, axis=-1)                                  # [B, I, J]
        s_j = tf.einsum('bij,bijd->bjd', c_ij, u_hat if last else u_hat_frozen)  # [B, J, D]
        if bias is not None:
            s_j += bias
        v_j = capsLayer.squash(s_j)
        if not last:
            b_ij += tf.einsum('bijd,bjd->bij', u_hat_frozen, v_j)
    return v_j, c_ij


def reference_digit_caps(predict):
    """A function with capsLayer.digit_caps's signature, variables and outputs, built the slow way."""
    return functools.partial(_reference_digit_caps, predict)


def _reference_digit_caps(predict, u, num_outputs=10, out_dim=16, iter_routing=3, stddev=0.01,
                          stop_gradient_inner=True, use_bias=False, leaky=False, scope='digit_caps'):
    with tf1.variable_scope(scope):
        W, bias = capsLayer.digit_caps_variables(u, num_outputs, out_dim, stddev, use_bias)
        return straightforward_routing(predict(u, W), iter_routing, stop_gradient_inner, bias, leaky)


# ---------------------------------------------------------------------------------------------------
# PrimaryCaps' 9x9 stride-2 convolution as one stride-1 convolution (a speed idea, measured by bench.py)

def space_to_depth_conv(inputs, weights):
    """conv2d(inputs, weights, strides=2, padding='VALID') computed as a 5x5 stride-1 convolution.

    inputs [B, H, W, C] (H, W even), weights [k, k, C, O] with k odd. Row y of the output reads input
    rows 2y + p, p < k; writing p = 2p' + a (a in {0, 1}) it is row y + p' of the phase a of the input
    (its rows a, a + 2, ...). space_to_depth stacks the four phases (a, c) as channels, and the kernel,
    padded to an even side with zeros, is regrouped the same way, so one stride-1 convolution over
    4C channels sums all four. The padding costs (k+1)^2 / k^2 - 1 = 23 % more multiply-adds for k = 9,
    for a shape (and a backward pass) that convolution kernels handle better than stride 2.
    """
    k, _, channels, outputs = weights.shape
    half = (k + 1) // 2
    padded = tf.pad(weights, [[0, 2 * half - k], [0, 2 * half - k], [0, 0], [0, 0]])   # [2h, 2h, C, O]
    # [h, 2, h, 2, C, O] -> [h, h, 2, 2, C, O]: space_to_depth's channel order is (row phase, col phase, C).
    regrouped = tf.transpose(tf.reshape(padded, [half, 2, half, 2, channels, outputs]), [0, 2, 1, 3, 4, 5])
    kernel = tf.reshape(regrouped, [half, half, 4 * channels, outputs])                # [5, 5, 4C, O]
    phases = tf.nn.space_to_depth(inputs, 2)                                            # [B, H/2, W/2, 4C]
    return tf.nn.conv2d(phases, kernel, strides=1, padding='VALID')


def space_to_depth_conv_layer(inputs, filters, kernel_size, stride, activation=tf.nn.relu, scope='conv',
                              as_matmuls=False):
    """capsLayer.conv_layer with the same variables; stride-2 layers go through space_to_depth_conv
    (as_matmuls, capsLayer's other formulation, is what this one replaces, so it is ignored)."""
    if stride != 2 or kernel_size % 2 == 0 or inputs.shape[1] % 2 or inputs.shape[2] % 2:
        return _plain_conv_layer(inputs, filters, kernel_size, stride, activation, scope)
    with tf1.variable_scope(scope):
        weights = tf1.get_variable('weights', [kernel_size, kernel_size, inputs.shape[-1], filters],
                                   initializer=tf1.initializers.glorot_uniform())
        biases = tf1.get_variable('biases', [filters], initializer=tf1.zeros_initializer())
        out = space_to_depth_conv(inputs, weights) + biases
        return activation(out) if activation is not None else out


_plain_conv_layer = capsLayer.conv_layer
