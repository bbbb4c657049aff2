"""Figures of a trained checkpoint: test digits beside their reconstructions, and the paper's Fig. 4.

    python -m tools.figures                      # newest checkpoint in logdir -> results/reconstructions.png
                                           #                              results/perturbation.png
    python -m tools.figures --checkpoint=best    # the checkpoint validation chose
    python -m tools.figures --logdir=L --results=R --dataset=fashion-mnist

Takes the same flags as main.py (model flags must match the checkpoint, as for --is_training=False).
"""
import os
import sys

os.environ.setdefault('TF_CPP_MIN_LOG_LEVEL', '1')

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

import capsLayer  # noqa: E402
import capsNet  # noqa: E402
import config  # noqa: E402
import utils  # noqa: E402
from runtime import files, inference  # noqa: E402
from runtime.errors import UserError, run_cli  # noqa: E402

tf1 = tf.compat.v1

RECONSTRUCTION_GRID = 5        # 5 x 5 test digits, and the same grid of reconstructions beside them
PERTURBED_DIGITS = 3           # digits of different classes in the perturbation figure
PERTURBATIONS = np.round(np.arange(-0.25, 0.25 + 1e-9, 0.05), 2)  # the paper's -0.25..+0.25 by 0.05
GAP = 8                        # white pixels between the blocks of a figure
SIDE = capsNet.IMAGE_SIZE


class Decoder:
    """A restored model with two entry points: images -> (v_j, prediction, reconstruction),
    and free capsule vectors -> decoded images (for perturbations)."""

    def __init__(self, cfg):
        def free_capsule_decoder(model, images):
            masked = tf1.placeholder(tf.float32, [None, capsNet.NUM_CLASSES * 16], 'masked_caps')
            with tf1.variable_scope(tf1.get_variable_scope(), reuse=True):
                return masked, capsLayer.decoder(masked, SIDE * SIDE)             # [N, 784]

        # --checkpoint latest|best|pretrained, as evaluation; the model is built from the run's flags.json.
        self.trained = inference.load_model(cfg.logdir, cfg.checkpoint, fallback_flags=cfg,
                                            extend_graph=free_capsule_decoder)
        self.sess, self.images, self.model = self.trained.sess, self.trained.images, self.trained.model
        self.masked, self.decoded = self.trained.extra
        self.checkpoint = self.trained.checkpoint

    def encode(self, images_uint8):
        """(v_j [N, 10, 16], predictions [N], reconstructions [N, 28, 28] in [0, 1])."""
        feed = {self.images: images_uint8[..., None].astype(np.float32) / 255.0}
        caps, predictions, recon = self.sess.run(
            [self.model.digit_caps, self.model.predictions, self.model.reconstructions], feed)
        return caps, predictions, recon.reshape(-1, SIDE, SIDE)

    def decode(self, masked_caps):
        return self.sess.run(self.decoded, {self.masked: masked_caps}).reshape(-1, SIDE, SIDE)

    def close(self):
        self.sess.close()


def side_by_side(*grids, gap=GAP):
    """Joins uint8 [H, W_k] blocks left to right with white gaps (blocks of equal height)."""
    height = max(g.shape[0] for g in grids)
    parts = []
    for k, grid in enumerate(grids):
        if k:
            parts.append(np.full((height, gap), 255, np.uint8))
        parts.append(grid)
    return np.concatenate(parts, axis=1)


def upscale(image, factor):
    return np.repeat(np.repeat(image, factor, axis=0), factor, axis=1)


def reconstruction_figure(decoder, images):
    """Left: the first n x n test digits; right: what the decoder draws from their predicted capsule."""
    count = RECONSTRUCTION_GRID ** 2
    _, _, recon = decoder.encode(images[:count])
    left = files.image_grid(images[:count], RECONSTRUCTION_GRID)
    right = files.image_grid(files.to_uint8(recon), RECONSTRUCTION_GRID)
    return upscale(side_by_side(left, right), 2)


def perturbed_capsules(caps, classes):
    """Decoder inputs of Fig. 4: for each digit n, its capsule of class classes[n] with one of the
    16 dimensions moved by each value of PERTURBATIONS, the other classes' capsules zeroed.

    caps: [N, 10, 16] -> [N, 16, len(PERTURBATIONS), 160], in row order (dimension, perturbation).
    """
    num, num_classes, dim = caps.shape
    chosen = caps[np.arange(num), classes]                                  # [N, 16]
    varied = np.repeat(np.repeat(chosen[:, None, None, :], dim, 1), len(PERTURBATIONS), 2)
    for d in range(dim):
        varied[:, d, :, d] += PERTURBATIONS                                 # [N, 16, 11, 16]
    masked = np.zeros((num, dim, len(PERTURBATIONS), num_classes, dim), np.float32)
    masked[np.arange(num), :, :, classes] = varied
    return masked.reshape(num, dim, len(PERTURBATIONS), num_classes * dim)


def pick_digits(labels, count):
    """Indices of the first test images of `count` different classes (fewer if the set has fewer)."""
    seen, picked = set(), []
    for n, label in enumerate(labels):
        if label not in seen:
            seen.add(label)
            picked.append(n)
        if len(picked) == count:
            break
    return np.array(picked)


def perturbation_figure(decoder, images, labels):
    """One block per digit: 16 rows (capsule dimensions) x 11 columns (-0.25 ... +0.25)."""
    picked = pick_digits(labels, PERTURBED_DIGITS)
    caps, predictions, _ = decoder.encode(images[picked])
    inputs = perturbed_capsules(caps, predictions)                          # [N, 16, 11, 160]
    decoded = decoder.decode(inputs.reshape(-1, inputs.shape[-1]))
    decoded = files.to_uint8(decoded).reshape(inputs.shape[:3] + (SIDE, SIDE))
    blocks = [files.image_grid(decoded[n].reshape(-1, SIDE, SIDE), len(PERTURBATIONS))
              for n in range(len(picked))]
    return side_by_side(*blocks)


def make_figures(cfg):
    """Writes both figures into cfg.results; returns their paths."""
    images, labels = utils.load_split(cfg.data_dir, 'test', cfg.dataset, cfg.verify_data)
    if len(images) < RECONSTRUCTION_GRID ** 2:
        raise UserError('the test set of %s has %d images; the figures need at least %d'
                        % (cfg.data_dir, len(images), RECONSTRUCTION_GRID ** 2))
    decoder = Decoder(cfg)
    try:
        paths = {name: os.path.join(cfg.results, name + '.png')
                 for name in ('reconstructions', 'perturbation')}
        files.write_png(paths['reconstructions'], reconstruction_figure(decoder, images))
        files.write_png(paths['perturbation'], perturbation_figure(decoder, images, labels))
    finally:
        decoder.close()
    print('wrote %s and %s from %s' % (paths['reconstructions'], paths['perturbation'], decoder.checkpoint))
    return paths


def run(argv=None):
    parser = config.build_parser('Draw reconstruction and capsule-perturbation figures of a checkpoint '
                                 'in --logdir.')

    def body():
        make_figures(config.parse(sys.argv[1:] if argv is None else argv, parser))
    return run_cli(body)


if __name__ == '__main__':
    sys.exit(run())
