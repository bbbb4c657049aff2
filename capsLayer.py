"""Capsule layers of Sabour, Frosst & Hinton (2017), "Dynamic Routing Between Capsules".

Pure graph-building functions: they take tensors and plain arguments and return tensors.
No flags, no files, no sessions, so tests can check them against NumPy directly.

Paper symbols used in comments:
  u_i     output of primary capsule i (8-D)
  W_ij    transformation from capsule i to digit capsule j (8x16)
  u_hat   prediction vectors u_hat_{j|i} = W_ij u_i (16-D)
  b_ij    routing logits, c_ij = softmax_j(b_ij) coupling coefficients
  s_j     weighted sum over i of c_ij u_hat_{j|i}; v_j = squash(s_j)
"""
import numpy as np
import tensorflow as tf

tf1 = tf.compat.v1

# Keeps the norm differentiable at s = 0 (d|s|/ds is undefined there).
SQUASH_EPSILON = 1e-9


def squash(s, axis=-1):
    """Eq. 1: v = |s|^2 / (1 + |s|^2) * s / |s|. Lengths land in [0, 1)."""
    squared_norm = tf.reduce_sum(tf.square(s), axis=axis, keepdims=True)
    scale = squared_norm / (1.0 + squared_norm) / tf.sqrt(squared_norm + SQUASH_EPSILON)
    return scale * s


def _glorot():
    return tf1.initializers.glorot_uniform()


def conv_layer(inputs, filters, kernel_size, stride, activation=tf.nn.relu, scope='conv', as_matmuls=False,
               input_gradient='matmuls', forward='matmuls'):
    """A VALID convolution with `weights`/`biases` variables inside `scope` (names checkpoints keep).

    as_matmuls: a stride-2 convolution runs as stride2_conv_as_matmuls (its forward pass and input
    gradient as `forward` and `input_gradient` say); any other keeps tf.nn.conv2d forward but takes
    its weight and bias gradients as matmuls (conv_with_matmul_gradients). The same variables and
    values either way; without as_matmuls every convolution is tf.nn.conv2d.
    """
    with tf1.variable_scope(scope):
        in_channels = inputs.shape[-1]
        weights = tf1.get_variable('weights', [kernel_size, kernel_size, in_channels, filters],
                                   initializer=_glorot())
        biases = tf1.get_variable('biases', [filters], initializer=tf1.zeros_initializer())
        if as_matmuls and stride == 2:
            out = stride2_conv_as_matmuls(inputs, weights, input_gradient, forward) + biases
        elif as_matmuls:
            out = conv_with_matmul_gradients(inputs, weights, biases, stride)
        else:
            out = tf.nn.conv2d(inputs, weights, strides=stride, padding='VALID') + biases
        return activation(out) if activation is not None else out


def _fold_matrix(size, kernel_size, out_size, stride=2):
    """[size, k * out_size] 0/1: entry (stride * o + kk, kk * out_size + o) is 1. Multiplied into the
    input gradient's pieces (kernel offset kk, output position o), it sums each onto input position
    stride * o + kk; transposed, it cuts every kernel window along one axis (exactly, in any precision:
    one 1 per row)."""
    fold = np.zeros((size, kernel_size * out_size), np.float32)
    for kk in range(kernel_size):
        for o in range(out_size):
            fold[stride * o + kk, kk * out_size + o] = 1.0
    return fold


def conv_with_matmul_gradients(inputs, weights, biases, stride):
    """tf.nn.conv2d(inputs, weights, stride, 'VALID') + biases, with the weight gradient taken as
    dW^T = dy^T P over the patches P and the bias gradient as 1^T dy.

    For Conv1 (9x9 over a 1-channel image) oneDNN's bfloat16 filter-gradient kernel ran far below the
    matmul rate (docs/performance.md). P is cut by two 0/1 products per channel plane (rows, then
    columns: transposed _fold_matrix), which run at matmul speed where tf.image.extract_patches and gathers
    of single values did not; sized [B, OH, OW, k*k*C], it suits few channels. The forward pass stays
    the library's convolution (as a product, 81-wide patches ran 4x slower), and so does the input
    gradient, never computed for an image.
    """
    k, _, channels, outputs = weights.shape
    _, height, width, _ = inputs.shape
    out_h, out_w = (height - k) // stride + 1, (width - k) // stride + 1
    select_rows = _fold_matrix(height, k, out_h, stride).T                      # [k*OH, H]
    select_columns = _fold_matrix(width, k, out_w, stride).T                    # [k*OW, W]

    @tf.custom_gradient
    def conv(x, w, b):
        def grad(dy):
            with tf.name_scope('weight_gradient'):  # the scope the benchmark's profile reads
                dw, db = weight_gradient(x, dy)
            with tf.name_scope('input_gradient'):
                dx = tf1.nn.conv2d_backprop_input(tf.shape(x), w, dy, [1, stride, stride, 1], 'VALID')
            return dx, tf.reshape(dw, [k, k, channels, outputs]), tf.reshape(db, [outputs])

        def weight_gradient(x, dy):
            # Plain 2-D products: oneDNN's broadcasting batch matmul crashed on these shapes.
            by_row = tf.reshape(tf.transpose(tf.cast(x, dy.dtype), [1, 0, 2, 3]), [height, -1])  # [H, B*W*C]
            rows = tf.matmul(tf.constant(select_rows, dy.dtype), by_row)                 # [(ki, oy), B*W*C]
            rows = tf.reshape(tf.transpose(tf.reshape(rows, [k * out_h, -1, width, channels]),
                                           [2, 0, 1, 3]), [width, -1])                   # [W, (ki, oy)*B*C]
            windows = tf.matmul(tf.constant(select_columns, dy.dtype), rows)             # [(kj, ox), (ki, oy)*B*C]
            patches = tf.transpose(tf.reshape(windows, [k, out_w, k, out_h, -1, channels]),
                                   [4, 3, 1, 2, 0, 5])                                    # [B, OH, OW, k, k, C]
            patches = tf.reshape(patches, [-1, k * k * channels])                        # [B*OH*OW, k*k*C]
            dy_rows = tf.reshape(dy, [-1, outputs])                                      # [B*OH*OW, O]
            dw = tf.transpose(tf.matmul(dy_rows, patches, transpose_a=True))             # [k*k*C, O]
            db = tf.matmul(tf.ones_like(dy_rows[:, :1]), dy_rows, transpose_a=True)      # [1, O]
            return dw, db
        return tf.nn.conv2d(x, w, strides=stride, padding='VALID') + b, grad

    return conv(inputs, tf.convert_to_tensor(weights), tf.convert_to_tensor(biases))


def _in_sequence(steps):
    """[step(None), step(its output), ...], each built under a control dependency on the one before:
    one step's temporaries are freed before the next one's exist, which bounds the memory of the
    chunked products below (unordered, the executor may cut every chunk's patches at once)."""
    outputs = []
    for step in steps:
        with tf.control_dependencies(outputs[-1:]):
            outputs.append(step(outputs[-1] if outputs else None))
    return outputs


def _plus(total, part):
    return part if total is None else total + part


def _patch_cells(height, width, kernel_size, out_h, out_w):
    """[k, OH*OW*k] int32: row ki lists, for each output cell (oy, ox) and kernel column kj in that
    order, the flat index (2*oy + ki) * W + 2*ox + kj of the input pixel that patch entry reads."""
    ki, oy, ox, kj = np.meshgrid(*(np.arange(n) for n in (kernel_size, out_h, out_w, kernel_size)),
                                 indexing='ij')
    return ((2 * oy + ki) * width + 2 * ox + kj).reshape(kernel_size, -1).astype(np.int32)


# How one pass of stride2_conv_as_matmuls is computed: the products below, or the library's kernel.
PASS_KERNELS = ('matmuls', 'conv')


def stride2_conv_as_matmuls(inputs, weights, input_gradient='matmuls', forward='matmuls'):
    """tf.nn.conv2d(inputs, weights, strides=2, padding='VALID') as matrix products, gradient included.

    inputs [B, H, W, C]; weights [k, k, C, O]. PrimaryCaps' 9x9 stride-2 convolution is
    96 % of the model's FLOPs, and oneDNN's bfloat16 kernels for its two gradients run far below the
    machine's matmul rate (docs/performance.md); as matmuls the products run near it.
    With P the patches (rows (b, oy, ox), columns (ki, kj, c)):
      y  = P W                   forward
      dW = P^T dy                weight gradient
      dx = fold(dy W^T)          input gradient: each row of dy W^T is a patch's worth of input
                                 gradient, to be summed back onto the positions it was cut from
    The fold is two more products with 0/1 matrices (_fold_matrix): over (kj, ox) onto the input's
    columns, then over (ki, oy) onto its rows, each separable and small (a few % of the FLOPs).
    The products run one kernel row ki at a time, in sequence, and P is cut again in the backward pass
    instead of being kept: the memory of one kernel row's patches (1/k of P) rather than all of P.

    input_gradient 'conv' takes dx from the library's Conv2DBackpropInput instead of the fold, the
    same values: oneDNN's float32 kernel for it beat the fold on an AVX2 CPU, its bfloat16 kernel
    was the slowest of all on a Xeon with AMX (docs/performance.md), so the caller picks by precision.
    forward 'conv' takes y from the library's tf.nn.conv2d (oneDNN's float32 kernel ran 1.18x as fast
    as the nine products on an AVX2 CPU); the weight gradient is always the products, the library's
    filter-gradient kernel being the slow one in every precision measured.
    """
    for name, choice in (('input_gradient', input_gradient), ('forward', forward)):
        if choice not in PASS_KERNELS:
            raise ValueError('%s must be one of %s, not %r' % (name, PASS_KERNELS, choice))
    k, _, channels, outputs = weights.shape
    _, height, width, _ = inputs.shape
    out_h, out_w = (height - k) // 2 + 1, (width - k) // 2 + 1
    fold_columns = _fold_matrix(width, k, out_w)[None]                          # [1, W, k*OW]
    fold_rows = _fold_matrix(height, k, out_h)                                  # [H, k*OH]
    patch_cells = _patch_cells(height, width, k, out_h, out_w)                 # [k, OH*OW*k]

    def row_patches(x, ki):
        """Kernel row ki's patches, [B*OH*OW, k*C]: one gather of whole pixels (C channels each) from
        the input laid out [B, H*W, C], for every (oy, ox, kj) in that order. One copy; the nine slices
        and a concat it replaces copied each value twice and ran about 3x slower (docs/performance.md)."""
        cells = tf.gather(tf.reshape(x, [-1, height * width, channels]), patch_cells[ki], axis=1)
        return tf.reshape(cells, [-1, k * channels])                          # [B*OH*OW, k*C]

    @tf.custom_gradient
    def conv(x, w):
        if forward == 'conv':
            y = tf.nn.conv2d(x, w, strides=2, padding='VALID')                  # [B, OH, OW, O]
        else:
            w_rows = tf.reshape(w, [k, k * channels, outputs])                 # [k, k*C, O]
            y = _in_sequence([lambda total, ki=ki: _plus(total, tf.matmul(row_patches(x, ki), w_rows[ki]))
                              for ki in range(k)])[-1]                            # [B*OH*OW, O]

        def grad(dy):
            with tf.name_scope('weight_gradient'):  # the scopes the benchmark's profile reads
                dw = weight_gradient(dy)
            # After the weight gradient, not beside it: the two chains' patches and pieces are never
            # held at once (with the accumulated fold below, 169 MiB off float32 training's peak RSS).
            with tf.name_scope('input_gradient'), tf.control_dependencies([dw]):
                if input_gradient == 'conv':
                    dx = tf1.nn.conv2d_backprop_input(tf.shape(x), w, dy, [1, 2, 2, 1], 'VALID')
                else:
                    dx = folded_input_gradient(dy)
            return dx, dw

        def weight_gradient(dy):
            dy_rows = tf.reshape(dy, [-1, outputs])                            # [B*OH*OW, O]
            # dW^T = dy^T P, transposing the small dy rather than the patches: 3 % off the step.
            dw_rows = _in_sequence([lambda _, ki=ki: tf.matmul(dy_rows, row_patches(x, ki),
                                                               transpose_a=True)
                                    for ki in range(k)])                       # k x [O, k*C]
            return tf.reshape(tf.transpose(tf.stack(dw_rows), [0, 2, 1]), [k, k, channels, outputs])

        def folded_input_gradient(dy):
            # One output row oy per batch entry, its columns and images (ox, b) as rows.
            dy_by_row = tf.reshape(tf.transpose(dy, [1, 2, 0, 3]), [out_h, 1, -1, outputs])  # [OH, 1, OW*B, O]
            w_t = tf.transpose(w, [0, 1, 3, 2])                                # [k, k, O, C]

            def fold_kernel_row(total, ki):
                pieces = tf.matmul(dy_by_row, w_t[ki][None])                   # [OH, k, OW*B, C]
                pieces = tf.reshape(pieces, [out_h, k * out_w, -1])            # [OH, (kj, ox), B*C]
                by_column = tf.matmul(tf.constant(fold_columns, dy.dtype), pieces)  # [OH, W, B*C]
                # Kernel row ki's block of the row fold: output row oy onto input row 2 * oy + ki.
                rows = tf.constant(fold_rows[:, ki * out_h:(ki + 1) * out_h], dy.dtype)  # [H, OH]
                return _plus(total, tf.matmul(rows, tf.reshape(by_column, [out_h, -1])))  # [H, W*B*C]
            # Summed row by row rather than stacked for one product: one [H, W*B*C] sum is held instead
            # of all nine kernel rows' column folds and their stack.
            dx = _in_sequence([lambda total, ki=ki: fold_kernel_row(total, ki) for ki in range(k)])[-1]
            return tf.transpose(tf.reshape(dx, [height, width, -1, channels]), [2, 0, 1, 3])  # [B, H, W, C]

        return tf.reshape(y, [-1, out_h, out_w, outputs]), grad

    return conv(inputs, tf.convert_to_tensor(weights))


def primary_caps(inputs, num_channels=32, caps_dim=8, kernel_size=9, stride=2,
                 relu=True, scope='primary_caps', as_matmuls=False, input_gradient='matmuls',
                 forward='matmuls'):
    """PrimaryCaps: one conv producing num_channels * caps_dim maps, regrouped into capsules.

    inputs: [B, 20, 20, 256] -> conv [B, 6, 6, 32 * 8] -> u: [B, 1152, 8], squashed.
    The original TF script keeps the ReLU of the conv before squashing; the official code has none,
    hence `relu`. as_matmuls, input_gradient, forward: see conv_layer (speed choices; the layer's
    values stay the same).
    """
    conv = conv_layer(inputs, num_channels * caps_dim, kernel_size, stride,
                      activation=tf.nn.relu if relu else None, scope=scope, as_matmuls=as_matmuls,
                      input_gradient=input_gradient, forward=forward)
    height, width = conv.shape[1], conv.shape[2]
    # Channels [c * 8 : (c + 1) * 8] of each grid cell form capsule c of that cell.
    u = tf.reshape(conv, [-1, height * width * num_channels, caps_dim])  # u: [B, 1152, 8]
    return squash(u)


def predict_vectors(u, W):
    """u_hat_{j|i} = W_ij u_i for every pair (i, j), without tiling u or W.

    u: [B, I, D_in], W: [I, J, D_in, D_out] -> u_hat: [B, I, J, D_out].
    einsum lowers this to one batched matmul over i: [I, B, D_in] x [I, D_in, J * D_out].
    """
    return tf.einsum('bid,ijde->bije', u, W)


def dynamic_routing(u_hat, iter_routing, stop_gradient_inner=True, bias=None, leaky=False):
    """Procedure 1 of the paper. Returns (v_j [B, J, D], c_ij of the last iteration [B, I, J]).

    u_hat: [B, I, J, D]. b_ij starts at 0 for every example. With stop_gradient_inner the earlier
    iterations only decide c_ij and gradients flow through the last one alone, as the original TF
    script does; the official code lets them through every iteration.
    `leaky` adds a zero "orphan" logit to the softmax over parents (official code's option), so a
    child can send part of its vote nowhere.
    """
    return _route_by_parent(tf.transpose(u_hat, [0, 2, 1, 3]), iter_routing, stop_gradient_inner,
                            bias, leaky)


def _predict_vectors_by_parent(u, W):
    """predict_vectors laid out for routing: u_hat [B, J, I, D_out] (parent-major).

    One batched matmul over i gives [I, B, J * D_out]; a single transpose puts each parent's votes
    in one contiguous [I, D_out] matrix per example, which _route_by_parent consumes without
    further copies (einsum's routing re-transposed u_hat, 94 MB at batch 128, at every step).
    """
    num_in, num_out, in_dim, out_dim = W.shape
    u_by_child = tf.transpose(u, [1, 0, 2])                                          # [I, B, D_in]
    W_flat = tf.reshape(tf.transpose(W, [0, 2, 1, 3]), [num_in, in_dim, num_out * out_dim])
    u_hat = tf.matmul(u_by_child, W_flat)                                            # [I, B, J*D_out]
    u_hat = tf.reshape(u_hat, [num_in, -1, num_out, out_dim])                        # [I, B, J, D_out]
    return tf.transpose(u_hat, [1, 2, 0, 3])                                         # [B, J, I, D_out]


def _route_by_parent(u_hat, iter_routing, stop_gradient_inner, bias, leaky):
    """dynamic_routing on u_hat laid out [B, J, I, D]; same results, same gradients.

    With b_ij and c_ij kept as row vectors [B, J, 1, I], s_j = c_ij u_hat and the agreement
    u_hat . v_j are batched matmuls over (b, j) that stream u_hat once each.
    """
    if iter_routing < 1:
        raise ValueError('iter_routing must be >= 1, got %r' % (iter_routing,))
    u_hat_frozen = tf.stop_gradient(u_hat) if stop_gradient_inner else u_hat
    b_ij = tf.zeros_like(u_hat[:, :, None, :, 0])  # b_ij: [B, J, 1, I]
    v_j = c_ij = None
    for r in range(iter_routing):
        last = r == iter_routing - 1
        c_ij = _coupling(b_ij, leaky, axis=1)                          # c_ij: [B, J, 1, I]
        votes = u_hat if last else u_hat_frozen
        s_j = tf.matmul(c_ij, votes)                                   # s_j:  [B, J, 1, D]
        if bias is not None:
            s_j += bias[:, None, :]
        v_j = squash(s_j)                                              # v_j:  [B, J, 1, D]
        if not last:
            # Agreement u_hat_{j|i} . v_j raises b_ij where prediction and output align.
            b_ij += tf.matmul(v_j, u_hat_frozen, transpose_b=True)     # b_ij: [B, J, 1, I]
    return v_j[:, :, 0, :], tf.transpose(c_ij[:, :, 0, :], [0, 2, 1])  # [B, J, D], [B, I, J]


def _coupling(b_ij, leaky, axis=-1):
    """c_ij = softmax over the parents' axis; with `leaky`, over parents plus one zero logit that is
    dropped.

    Written out rather than tf.nn.softmax: over a middle axis ([B, J, 1, I], J) the library op ran
    at about 12 ms per call at batch 128, a sixth of the bfloat16 inference step (docs/performance.md);
    max, exp and sums over that axis take a fraction of it. The max is a constant shift (softmax does
    not depend on it), so no gradient flows through it.
    """
    shift = tf.reduce_max(b_ij, axis=axis, keepdims=True)
    if leaky:
        shift = tf.maximum(shift, 0.0)  # the orphan's logit is 0
    shift = tf.stop_gradient(shift)
    e = tf.exp(b_ij - shift)
    total = tf.reduce_sum(e, axis=axis, keepdims=True)
    if leaky:
        total += tf.exp(-shift)  # the orphan's share, dropped from c_ij
    return e / total


def digit_caps_variables(u, num_outputs, out_dim, stddev, use_bias):
    """W_ij [I, J, D_in, D_out] and the optional bias of s_j [J, D_out], in the current variable scope."""
    num_inputs, in_dim = u.shape[1], u.shape[2]
    W = tf1.get_variable('W', [num_inputs, num_outputs, in_dim, out_dim],
                         initializer=tf1.random_normal_initializer(stddev=stddev))
    bias = (tf1.get_variable('biases', [num_outputs, out_dim], initializer=tf1.zeros_initializer())
            if use_bias else None)
    return W, bias


def digit_caps(u, num_outputs=10, out_dim=16, iter_routing=3, stddev=0.01,
               stop_gradient_inner=True, use_bias=False, leaky=False, scope='digit_caps'):
    """DigitCaps with dynamic routing. u: [B, 1152, 8] -> (v_j [B, 10, 16], c_ij [B, 1152, 10])."""
    with tf1.variable_scope(scope):
        W, bias = digit_caps_variables(u, num_outputs, out_dim, stddev, use_bias)
        u_hat = _predict_vectors_by_parent(u, W)  # u_hat: [B, 10, 1152, 16]
        return _route_by_parent(u_hat, iter_routing, stop_gradient_inner, bias, leaky)


def capsule_length(v, axis=-1):
    """|v_j|, the probability that entity j is present. Epsilon keeps the gradient finite at 0."""
    return tf.sqrt(tf.reduce_sum(tf.square(v), axis=axis) + SQUASH_EPSILON)


def margin_loss(lengths, labels_one_hot, m_plus=0.9, m_minus=0.1, lambda_val=0.5):
    """Eq. 4, summed over classes and averaged over the batch.

    L_k = T_k max(0, m+ - |v_k|)^2 + lambda (1 - T_k) max(0, |v_k| - m-)^2
    """
    present = labels_one_hot * tf.square(tf.nn.relu(m_plus - lengths))
    absent = lambda_val * (1.0 - labels_one_hot) * tf.square(tf.nn.relu(lengths - m_minus))
    return tf.reduce_mean(tf.reduce_sum(present + absent, axis=1))


def dense_layer(inputs, units, activation, scope):
    with tf1.variable_scope(scope):
        weights = tf1.get_variable('weights', [inputs.shape[-1], units], initializer=_glorot())
        biases = tf1.get_variable('biases', [units], initializer=tf1.zeros_initializer())
        out = tf.matmul(inputs, weights) + biases
        return activation(out) if activation is not None else out


def decoder(masked_caps, output_pixels=784, scope='decoder'):
    """FC 512 ReLU -> 1024 ReLU -> output_pixels sigmoid. masked_caps: [B, 10 * 16]."""
    with tf1.variable_scope(scope):
        h = dense_layer(masked_caps, 512, tf.nn.relu, 'fc1')
        h = dense_layer(h, 1024, tf.nn.relu, 'fc2')
        return dense_layer(h, output_pixels, tf.sigmoid, 'fc3')


# Two digits per image (MultiMNIST, section 6 of the paper).

def two_hot(labels_a, labels_b, num_classes):
    """Targets T_k of Eq. 4 with both classes present: int [B] each -> float [B, num_classes].

    Clipped at 1 so that a pair of one class (which the generator never makes) still has T_k in {0, 1}.
    """
    return tf.minimum(tf.one_hot(labels_a, num_classes) + tf.one_hot(labels_b, num_classes), 1.0)


def pair_reconstruction_loss(reconstruct_fn, digit_caps, labels_a, labels_b, digit_a, digit_b):
    """Section 6: each digit is reconstructed from its own capsule alone (every other capsule, the
    other digit's included, masked to zero) and compared with that digit alone on the canvas.

    digit_caps: [B, K, D]; labels_a, labels_b: int [B]; digit_a, digit_b: float [B, H, W] or
    [B, H, W, 1] in [0, 1]. reconstruct_fn maps masked capsules [N, K * D] to pixels [N, H * W] (the
    decoder); it is called once, on both digits' inputs stacked, so its variables are made once.
    Returns (loss, reconstruction of a [B, H * W], reconstruction of b [B, H * W]). loss is the sum
    over the two digits of the mean squared error over batch and pixels, the measure capsNet uses for
    one digit: weighted by 0.0005 * H * W (capsNet.reconstruction_weight of the default
    regularization_scale) it is the authors' 0.0005 x sum of squares per digit, summed over the two targets (research/capsules/models/layers/layers.py,
    `reconstruction`, called once per target in capsule_model.py).
    """
    num_classes, dim = digit_caps.shape[1], digit_caps.shape[2]
    masks = tf.concat([tf.one_hot(labels_a, num_classes), tf.one_hot(labels_b, num_classes)], 0)  # [2B, K]
    caps = tf.concat([digit_caps, digit_caps], 0)                                       # [2B, K, D]
    masked = tf.reshape(caps * masks[:, :, None], [-1, num_classes * dim])              # [2B, K * D]
    recon_a, recon_b = tf.split(reconstruct_fn(masked), 2, axis=0)                      # [B, H * W] each
    pixels = recon_a.shape[-1]
    target_a = tf.reshape(tf.cast(digit_a, recon_a.dtype), [-1, pixels])                # [B, H * W]
    target_b = tf.reshape(tf.cast(digit_b, recon_b.dtype), [-1, pixels])
    loss = (tf.reduce_mean(tf.square(recon_a - target_a))
            + tf.reduce_mean(tf.square(recon_b - target_b)))
    return loss, recon_a, recon_b


def top2_correct(lengths, labels_a, labels_b):
    """The paper's MultiMNIST rule: the two longest digit capsules are the prediction, and an example
    is right only when they are both true classes. lengths: [B, K] -> bool [B].

    Ties go to the lower class index (tf.math.top_k), so two equal lengths are never both counted
    for one class.
    """
    _, top2 = tf.math.top_k(lengths, k=2)                                               # [B, 2]
    labels = tf.stack([labels_a, labels_b], axis=1)                                     # [B, 2]
    labels = tf.cast(labels, top2.dtype)
    hit = tf.reduce_any(tf.equal(top2[:, :, None], labels[:, None, :]), axis=1)         # [B, 2]
    return tf.logical_and(tf.reduce_all(hit, axis=1), tf.not_equal(labels[:, 0], labels[:, 1]))
