"""The CapsNet of Sabour et al. (2017) assembled from capsLayer pieces, with its losses.

Reads no flags and no files: everything comes in through `ModelConfig` and `InputSpec` (defined with
their defaults in model_spec/, the one place they live) and tensors, so the training loop, the towers
(dist_version/) and the tests build the same graph. Like capsLayer it imports nothing above the model:
config, runtime/ and the commands import it, never the reverse.
"""
import tensorflow as tf

import capsLayer
# ModelConfig is also read as capsNet.ModelConfig: callers build CapsNet(images, labels, capsNet.ModelConfig(...)).
from model_spec import MNIST_SPEC, ModelConfig

tf1 = tf.compat.v1


class CapsNet:
    """Builds the forward pass, predictions and losses for one batch of images.

    images: float [B, H, W, C] in [0, 1] as `spec` says (MNIST: [B, 28, 28, 1]); labels: int [B].
    The shapes follow the spec: Conv1 and PrimaryCaps as in the paper, as many primary capsules as
    their grid holds, one digit capsule per class, a decoder drawing H x W x C values.
    Variables live under conv1/, primary_caps/, digit_caps/ and decoder/ in the current variable
    scope; pass reuse=True to build a second copy (evaluation input, another tower) on the same
    weights. `training` decides only the decoder's mask: true labels (with mask_with_y) or the
    longest capsule.

    pair: a `Pair` of MultiMNIST tensors (section 6) makes the model one of two digits per image:
    labels is then the first digit's class, pair.labels_b the second's, and pair.digit_a / digit_b
    [B, H, W, 1] the two digits alone, the reconstruction targets. None (MNIST and the other single
    label datasets) builds exactly the graph it always built.
    """

    def __init__(self, images, labels, config=ModelConfig(), training=True, reuse=None, spec=MNIST_SPEC,
                 pair=None):
        self.config = config
        self.spec = spec
        self.images = images
        self.labels = tf.cast(labels, tf.int32)
        self.pair = pair
        with tf1.variable_scope(tf1.get_variable_scope(), reuse=reuse):
            if pair is None:
                self._build_forward(training)
                self._build_loss()
            else:
                self._build_pair(training)

    def _build_capsules(self):
        cfg, spec = self.config, self.spec
        as_matmuls = cfg.primary_caps_impl == 'matmuls'
        conv1 = capsLayer.conv_layer(self.images, 256, 9, 1, scope='conv1',       # [B, H-8, W-8, 256]
                                     as_matmuls=as_matmuls)
        # MNIST: a 6 x 6 grid of 32 types, u: [B, 1152, 8]; CIFAR-10 24x24 crops, 64 types: 4 x 4 x 64 = [B, 1024, 8];
        # MultiMNIST 36x36: 10 x 10 x 32 = [B, 3200, 8].
        u = capsLayer.primary_caps(conv1, cfg.primary_caps_types, relu=cfg.primary_caps_relu,
                                   as_matmuls=as_matmuls, input_gradient=cfg.primary_caps_input_gradient,
                                   forward=cfg.primary_caps_forward)
        self.digit_caps, self.coupling = capsLayer.digit_caps(                    # v_j: [B, classes, 16]
            u, spec.classes, 16, cfg.iter_routing, cfg.stddev,
            stop_gradient_inner=cfg.stop_gradient_routing,
            use_bias=cfg.digit_caps_bias, leaky=cfg.leaky_routing)
        self.lengths = capsLayer.capsule_length(self.digit_caps)                  # [B, classes]
        self.predictions = tf.argmax(self.lengths, axis=1, output_type=tf.int32)  # [B]

    def _build_forward(self, training):
        cfg, spec = self.config, self.spec
        self._build_capsules()
        mask_labels = self.labels if (training and cfg.mask_with_y) else self.predictions
        self.masked_caps = mask_capsules(self.digit_caps, mask_labels)            # [B, classes * 16]
        self.reconstructions = capsLayer.decoder(self.masked_caps, spec.values)   # [B, H * W * C]

    def _build_loss(self):
        cfg, spec = self.config, self.spec
        one_hot = tf.one_hot(self.labels, spec.classes)
        self.margin_loss = capsLayer.margin_loss(self.lengths, one_hot, cfg.m_plus, cfg.m_minus,
                                                 cfg.lambda_val)
        flat_images = tf.reshape(self.images, [-1, spec.values])                 # [B, H * W * C]
        # The mean squared error per pixel value, comparable across image sizes in TensorBoard.
        self.reconstruction_loss = tf.reduce_mean(tf.square(self.reconstructions - flat_images))
        self.total_loss = self.margin_loss + reconstruction_weight(cfg, spec) * self.reconstruction_loss
        correct = tf.equal(self.predictions, self.labels)
        self.num_correct = tf.reduce_sum(tf.cast(correct, tf.int32))
        self.accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))

    def _build_pair(self, training):
        """MultiMNIST: margin loss with both classes present, one reconstruction per digit, top-2 rule."""
        cfg, spec = self.config, self.spec
        labels_b = tf.cast(self.pair.labels_b, tf.int32)                          # [B]
        # The top-1 class (predictions) is what single-digit accuracy, a plain digit on the canvas, is scored by.
        self._build_capsules()
        _, top2 = tf.math.top_k(self.lengths, k=2)                                # [B, 2], longest first
        self.top2 = tf.cast(top2, tf.int32)
        # The paper reconstructs from the true classes while training and from the two most active
        # capsules at test time.
        if training and cfg.mask_with_y:
            mask_a, mask_b = self.labels, labels_b
        else:
            mask_a, mask_b = self.top2[:, 0], self.top2[:, 1]
        decode = lambda masked: capsLayer.decoder(masked, spec.values)            # [2B, 160] -> [2B, H * W]
        two_hot = capsLayer.two_hot(self.labels, labels_b, spec.classes)          # [B, classes]
        self.margin_loss = capsLayer.margin_loss(self.lengths, two_hot, cfg.m_plus, cfg.m_minus,
                                                 cfg.lambda_val)
        # Sum over the two digits of each one's mean squared error per pixel; with the same weight as a
        # single image of H x W values (reconstruction_weight) each digit costs 0.0005 x its sum of
        # squares, as in the paper. With the predicted masks (testing) a swapped order makes this loss
        # meaningless; only the training copy's loss is optimised or logged.
        self.reconstruction_loss, self.reconstructions, self.reconstructions_b = capsLayer.pair_reconstruction_loss(
            decode, self.digit_caps, mask_a, mask_b, self.pair.digit_a, self.pair.digit_b)
        self.total_loss = self.margin_loss + reconstruction_weight(cfg, spec) * self.reconstruction_loss
        correct = capsLayer.top2_correct(self.lengths, self.labels, labels_b)     # [B] both classes found
        self.num_correct = tf.reduce_sum(tf.cast(correct, tf.int32))
        self.accuracy = tf.reduce_mean(tf.cast(correct, tf.float32))


class Pair:
    """The MultiMNIST tensors beside the merged images: labels_b int [B], digit_a and digit_b float
    [B, H, W, 1] in [0, 1] (each digit alone on the canvas, as shifted into the merged image)."""

    def __init__(self, labels_b, digit_a, digit_b):
        self.labels_b, self.digit_a, self.digit_b = labels_b, digit_a, digit_b


def reconstruction_weight(config, spec):
    """The weight on the MEAN squared error over the image's H x W x C values.

    The paper weights the SUM of squared errors by 0.0005. regularization_scale (0.392 = 0.0005 x 784)
    is that weight expressed for MNIST's 784 values; for other sizes the same weight per summed value,
    regularization_scale / 784, times the number of values averaged over, keeps the decoder's share of
    the loss what the paper intends. For MNIST the factor is exactly 1.0, so its loss is unchanged.
    """
    return config.regularization_scale * (spec.values / MNIST_SPEC.values)


def mask_capsules(digit_caps, labels):
    """Zeroes every capsule but the one of `labels`; returns the flattened [B, classes * 16] decoder input."""
    num_classes = digit_caps.shape[1]
    mask = tf.one_hot(labels, num_classes)[:, :, None]  # [B, classes, 1]
    return tf.reshape(digit_caps * mask, [-1, num_classes * digit_caps.shape[-1]])


# The official code's schedule: lr * rate^(step / steps), continuous (not staircase), floored at 1e-6;
# its rate and period (0.96, 2 000) are ModelConfig's defaults.
LR_FLOOR = 1e-6
LR_SCHEDULES = ('constant', 'exponential')


def learning_rate(config, global_step):
    """The learning rate as a tensor: constant (original script) or exponential decay (official code)."""
    if config.lr_schedule == 'constant':
        return tf.constant(config.learning_rate, tf.float32, name='learning_rate')
    if config.lr_schedule == 'exponential':
        decayed = tf1.train.exponential_decay(config.learning_rate, global_step, config.lr_decay_steps,
                                              config.lr_decay_rate, staircase=False)
        return tf.maximum(decayed, LR_FLOOR, name='learning_rate')
    raise ValueError('unknown lr_schedule %r; expected one of %s' % (config.lr_schedule, LR_SCHEDULES))


def build_optimizer(config, global_step):
    """Adam, as the paper, with the learning rate of `config.lr_schedule` at global_step."""
    return tf1.train.AdamOptimizer(learning_rate(config, global_step))


def build_train_op(model, global_step):
    optimizer = build_optimizer(model.config, global_step)
    return optimizer.minimize(model.total_loss, global_step=global_step)


def train_summaries(model):
    """Scalars and an input-vs-reconstruction image grid, merged into one op."""
    spec = model.spec
    side_by_side = tf.concat([
        model.images[:8],
        tf.reshape(model.reconstructions[:8], [-1, spec.height, spec.width, spec.channels]),
    ], axis=2)  # [8, H, 2W, C]: input left, reconstruction right
    if spec.channels not in (1, 3, 4):
        side_by_side = side_by_side[..., :1]  # TensorBoard draws gray, RGB or RGBA: a stereo pair's first
    return tf1.summary.merge([
        tf1.summary.scalar('train/margin_loss', model.margin_loss),
        tf1.summary.scalar('train/reconstruction_loss', model.reconstruction_loss),
        tf1.summary.scalar('train/total_loss', model.total_loss),
        tf1.summary.scalar('train/accuracy', model.accuracy),
        tf1.summary.image('reconstruction', side_by_side, max_outputs=8),
    ])


def count_parameters(variables):
    total = 0
    for v in variables:
        n = 1
        for d in v.shape:
            n *= int(d)
        total += n
    return total
