"""Figures of a trained checkpoint: test images beside their reconstructions, and the paper's Fig. 4.

    python -m tools.figures                      # newest checkpoint in logdir -> results/reconstructions.png
                                           #                              results/perturbation.png
    python -m tools.figures --checkpoint=best    # the checkpoint validation chose
    python -m tools.figures --logdir=L --results=R --dataset=fashion-mnist
    python -m tools.figures --logdir=L --results=R    # a MultiMNIST run: results/multimnist_reconstructions.png

Takes the same flags as main.py; the model, its input size, channels, crop and class names come from
the run's flags.json, as for --is_training=False (give --dataset and --data_dir of its test images).
"""
import os
import sys

import matplotlib
# Figure without pyplot: no global state, no display; savefig renders with Agg.
from matplotlib.figure import Figure
import numpy as np

import config
from runtime import files
from runtime.errors import UserError, run_cli
from runtime.quiet_start import import_tensorflow_quietly

# The model, the data pipeline (utils) and runtime.inference load TensorFlow: the functions that restore
# a model import them, after run() has parsed the flags, so --help and a bad flag answer at once.

RECONSTRUCTION_GRID = 5        # 5 x 5 test digits, and the same grid of reconstructions beside them
PERTURBED_DIGITS = 3           # digits of different classes in the perturbation figure
PERTURBATIONS = np.round(np.arange(-0.25, 0.25 + 1e-9, 0.05), 2)  # the paper's -0.25..+0.25 by 0.05
DPI = 150
RECONSTRUCTIONS_SIZE = (8.0, 4.4)        # inches: two square grids and their titles
PERTURBATION_PANEL_SIZE = (3.0, 5.0)     # inches per digit: 11 columns x 16 rows of 28 x 28 pixels
STYLE = {'font.size': 11, 'axes.titlesize': 12, 'axes.labelsize': 11, 'xtick.labelsize': 9,
         'ytick.labelsize': 8}


class Decoder:
    """A restored model with two entry points: images -> (v_j, prediction, reconstruction),
    and free capsule vectors -> decoded images (for perturbations)."""

    def __init__(self, cfg):
        import tensorflow as tf
        import capsLayer
        from runtime import inference
        tf1 = tf.compat.v1

        def free_capsule_decoder(model, images):
            masked = tf1.placeholder(tf.float32, [None, model.spec.classes * 16], 'masked_caps')
            with tf1.variable_scope(tf1.get_variable_scope(), reuse=True):
                return masked, capsLayer.decoder(masked, model.spec.values)       # [N, H * W * C]

        # --checkpoint latest|best|pretrained, as evaluation; the model is built from the run's flags.json.
        self.trained = inference.load_model(cfg.logdir, cfg.checkpoint, fallback_flags=cfg,
                                            extend_graph=free_capsule_decoder)
        self.sess, self.images, self.model = self.trained.sess, self.trained.images, self.trained.model
        self.masked, self.decoded = self.trained.extra
        self.checkpoint = self.trained.checkpoint
        spec = self.trained.spec
        self.shape = (spec.height, spec.width, spec.channels)
        self.class_names = self.trained.class_names

    def encode(self, images_uint8):
        """(v_j [N, classes, 16], predictions [N], reconstructions [N, H, W, C] in [0, 1]) of uint8
        [N, H, W, C] images (or gray [N, H, W])."""
        images = images_uint8.reshape((-1,) + self.shape)
        feed = {self.images: images.astype(np.float32) / 255.0}
        caps, predictions, recon = self.sess.run(
            [self.model.digit_caps, self.model.predictions, self.model.reconstructions], feed)
        return caps, predictions, recon.reshape((-1,) + self.shape)

    def decode(self, masked_caps):
        return self.sess.run(self.decoded, {self.masked: masked_caps}).reshape((-1,) + self.shape)

    def close(self):
        self.sess.close()


def reconstruction_grids(decoder, images):
    """(the first n x n test digits, what the decoder draws from their predicted capsule), uint8 grids."""
    count = RECONSTRUCTION_GRID ** 2
    _, _, recon = decoder.encode(images[:count])
    return (files.image_grid(images[:count], RECONSTRUCTION_GRID),
            files.image_grid(files.to_uint8(recon), RECONSTRUCTION_GRID))


def _show_pixels(axes, grid):
    """A uint8 grid as its gray levels, one image pixel per block of screen pixels (no smoothing)."""
    axes.imshow(grid, cmap='gray', vmin=0, vmax=255, interpolation='nearest')


def draw_reconstructions(inputs, reconstructions):
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=RECONSTRUCTIONS_SIZE, layout='constrained')
        for axes, grid, title in zip(figure.subplots(1, 2), (inputs, reconstructions),
                                     ('test images', 'reconstructions')):
            _show_pixels(axes, grid)
            axes.set_title(title)
            axes.set_axis_off()
    return figure


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


def perturbation_grids(decoder, images, labels):
    """(one uint8 grid per digit: 16 rows (capsule dimensions) x 11 columns (-0.25 ... +0.25),
    the predicted class of each digit, whose capsule was perturbed)."""
    picked = pick_digits(labels, PERTURBED_DIGITS)
    caps, predictions, _ = decoder.encode(images[picked])
    inputs = perturbed_capsules(caps, predictions)                          # [N, 16, 11, classes * 16]
    decoded = decoder.decode(inputs.reshape(-1, inputs.shape[-1]))          # [N * 16 * 11, H, W, C]
    decoded = files.to_uint8(decoded).reshape(inputs.shape[:3] + decoder.shape)
    grids = [files.image_grid(decoded[n].reshape((-1,) + decoder.shape), len(PERTURBATIONS))
             for n in range(len(picked))]
    return grids, predictions


def draw_perturbations(grids, classes, class_names):
    """The paper's Fig. 4: one panel per digit, columns = perturbation, rows = capsule dimension."""
    width, height = PERTURBATION_PANEL_SIZE
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=(width * len(grids), height), layout='constrained')
        panels = np.atleast_1d(figure.subplots(1, len(grids)))
        # One cell is grid height / 16 rows by grid width / 11 columns.
        cell_h, cell_w = grids[0].shape[0] // 16, grids[0].shape[1] // len(PERTURBATIONS)
        columns = cell_w * np.arange(len(PERTURBATIONS)) + (cell_w - 1) / 2
        rows = cell_h * np.arange(16) + (cell_h - 1) / 2
        labelled = [0, len(PERTURBATIONS) // 2, len(PERTURBATIONS) - 1]  # -0.25, 0, +0.25
        for k, (axes, grid, label) in enumerate(zip(panels, grids, classes)):
            _show_pixels(axes, grid)
            axes.set_title('class %s' % class_names[label])
            axes.set_xticks(columns[labelled], ['%+g' % PERTURBATIONS[j] if PERTURBATIONS[j] else '0'
                                                for j in labelled])
            axes.set_yticks(rows, [str(d + 1) for d in range(16)] if k == 0 else [])
            axes.tick_params(length=0)
            for spine in axes.spines.values():
                spine.set_visible(False)
        panels[0].set_ylabel('capsule dimension')
        figure.supxlabel('perturbation added to one dimension of the predicted class\'s capsule',
                         fontsize=STYLE['axes.labelsize'])
    return figure


MULTIMNIST_PAIRS = 6           # pairs per group (right, wrong) in the paper's Fig. 5
MULTIMNIST_CELL = 1.1          # inches per pair: its input above its reconstructions
MULTIMNIST_SIZE = (MULTIMNIST_PAIRS * MULTIMNIST_CELL, 4 * MULTIMNIST_CELL + 1.6)  # 2 groups x 2 rows
INPUT_UNDER_RECONSTRUCTION = 0.4   # the input's gray level under the coloured reconstructions


def overlay_reconstructions(merged, recon_a, recon_b):
    """The reconstructions of Fig. 5 in colour over the input: digit a's in red, digit b's in green
    (yellow where both draw), the input dimmed to gray beneath. merged: uint8 [N, H, W];
    recon_a, recon_b: floats in [0, 1], [N, H * W] or [N, H, W] -> RGB uint8 [N, H, W, 3]."""
    merged = np.asarray(merged)
    base = merged.astype(np.float32) / 255.0 * INPUT_UNDER_RECONSTRUCTION          # [N, H, W]
    red = np.maximum(base, np.reshape(recon_a, merged.shape))
    green = np.maximum(base, np.reshape(recon_b, merged.shape))
    return files.to_uint8(np.stack([red, green, base], axis=-1))                  # [N, H, W, 3]


def draw_multimnist(merged, recon_a, recon_b, true_labels, predicted_labels, pairs=MULTIMNIST_PAIRS):
    """The paper's Fig. 5 from arrays: the first `pairs` right and the first `pairs` wrong examples,
    each an input (top) above its two reconstructions in red and green (bottom), labelled with the
    true classes L and the predicted ones R (the two longest capsules, which were reconstructed).

    merged: uint8 [N, H, W]; recon_a, recon_b: [N, H * W] in [0, 1], reconstructed from the capsules
    of predicted_labels[:, 0] and [:, 1]; true_labels, predicted_labels: int [N, 2]. An example is
    right when its two predicted classes are its two true ones, in any order (capsLayer.top2_correct).
    """
    true_labels, predicted_labels = np.asarray(true_labels), np.asarray(predicted_labels)
    right = np.array([set(t) == set(p) for t, p in zip(true_labels.tolist(), predicted_labels.tolist())],
                     dtype=bool)
    coloured = overlay_reconstructions(merged, recon_a, recon_b)
    with matplotlib.rc_context(STYLE):
        figure = Figure(figsize=MULTIMNIST_SIZE, layout='constrained')
        groups = figure.subfigures(2, 1)
        for group, chosen, title in zip(groups, (right, ~right),
                                        ('right: both classes are the two longest capsules',
                                         'wrong: at least one class missed')):
            picked = np.flatnonzero(chosen)[:pairs]
            cells = group.subplots(2, pairs, squeeze=False)
            for k in range(pairs):
                top, bottom = cells[0, k], cells[1, k]
                top.set_axis_off()
                bottom.set_axis_off()
                if k >= len(picked):
                    continue  # fewer examples than columns: the cell stays blank
                n = picked[k]
                _show_pixels(top, merged[n])
                bottom.imshow(coloured[n], interpolation='nearest')
                bottom.set_title('L:(%d,%d)\nR:(%d,%d)' % (tuple(true_labels[n]) + tuple(predicted_labels[n])),
                                 fontsize=STYLE['xtick.labelsize'], y=-0.55)
            group.suptitle(title + (' (none)' if not len(picked) else ''),
                           fontsize=STYLE['axes.titlesize'])
    return figure


# Fixed test pairs searched for right and wrong examples: enough to find six wrong ones at the
# paper's 5 % error, and a forward pass of a few seconds.
MULTIMNIST_SEARCHED = 1000


def multimnist_figure(cfg):
    """Fig. 5 of a MultiMNIST run from its checkpoint: the first right and wrong fixed test pairs, each
    with the two reconstructions from its two longest capsules. Returns {name: path}."""
    import utils
    from runtime import inference
    pairs, _, _ = utils.load_multimnist_test(cfg)
    merged = pairs.merged[:MULTIMNIST_SEARCHED]                                          # [N, 36, 36]
    with inference.load_model(cfg.logdir, cfg.checkpoint, fallback_flags=cfg) as trained:
        model = trained.model
        # The decoder of a restored model (training=False) draws from top2[:, 0] and top2[:, 1].
        top2, recon_a, recon_b = trained.run([model.top2, model.reconstructions, model.reconstructions_b],
                                             merged.astype(np.float32) / np.float32(255.0))
        checkpoint = trained.checkpoint
    true = np.stack([pairs.labels_a, pairs.labels_b], axis=1)[:len(merged)]              # [N, 2]
    path = os.path.join(cfg.results, 'multimnist_reconstructions.png')
    files.write_figure(path, draw_multimnist(merged, recon_a, recon_b, true, top2), DPI)
    print('wrote %s from %s' % (path, checkpoint))
    return {'multimnist_reconstructions': path}


def make_figures(cfg):
    """Writes both figures (Fig. 5 for a MultiMNIST run) into cfg.results; returns their paths."""
    import utils
    from evaluation.evaluate import trained_flags
    flags = trained_flags(cfg)
    if flags.get('dataset', cfg.dataset) == utils.MULTIMNIST:
        return multimnist_figure(cfg)
    test = utils.load_test_set(cfg, flags)  # prepared as the run's training images were
    images, labels = test.images, test.labels
    if len(images) < RECONSTRUCTION_GRID ** 2:
        raise UserError('the test set of %s has %d images; the figures need at least %d'
                        % (cfg.data_dir, len(images), RECONSTRUCTION_GRID ** 2))
    decoder = Decoder(cfg)
    try:
        paths = {name: os.path.join(cfg.results, name + '.png')
                 for name in ('reconstructions', 'perturbation')}
        files.write_figure(paths['reconstructions'],
                           draw_reconstructions(*reconstruction_grids(decoder, images)), DPI)
        grids, classes = perturbation_grids(decoder, images, labels)
        files.write_figure(paths['perturbation'],
                           draw_perturbations(grids, classes, decoder.class_names), DPI)
    finally:
        decoder.close()
    print('wrote %s and %s from %s' % (paths['reconstructions'], paths['perturbation'], decoder.checkpoint))
    return paths


def run(argv=None):
    parser = config.build_parser('Draw reconstruction and capsule-perturbation figures of a checkpoint '
                                 'in --logdir.', 'python -m tools.figures')

    def body():
        cfg = config.parse(sys.argv[1:] if argv is None else argv, parser)
        import_tensorflow_quietly()  # the flags are good: now TensorFlow may load, without its start-up lines
        make_figures(cfg)
    return run_cli(body)


if __name__ == '__main__':
    sys.exit(run())
