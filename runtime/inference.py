"""A trained model at work: the predicted class of every example, restoring a given checkpoint, and
`load_model`, the one way every command loads a trained model (a run's checkpoint or pretrained/).
"""
import hashlib
import json
import os
import types

import numpy as np
import tensorflow as tf

from model_spec import InputSpec
from runtime import checkpoints
from runtime import errors
from runtime.errors import UserError
# Also read as inference.PRETRAINED_DIR and so on; tests point PRETRAINED_DIR at an exported copy.
from runtime.model_sources import LOAD_CHOICES, PRETRAINED_CARD, PRETRAINED_DIR, PRETRAINED_WEIGHTS
from runtime.session import model_config, session_config

tf1 = tf.compat.v1


def count_correct(sess, pipeline, model, images, labels):
    """How many examples of the arrays are classified right (the last, smaller batch included)."""
    return int(np.sum(predict_labels(sess, pipeline, model, images, labels) == labels))


def count_pairs_correct(sess, pipeline, model, pairs):
    """How many MultiMNIST pairs (readers.multimnist.Pairs) have both classes as the two longest capsules."""
    pipeline.initialize(sess, pairs)
    correct = 0
    while True:
        try:
            correct += int(sess.run(model.num_correct))
        except tf.errors.OutOfRangeError:
            return correct


def predict_labels(sess, pipeline, model, images, labels):
    """The predicted class of every example of the arrays: int [N], in order."""
    pipeline.initialize(sess, images, labels)
    predictions = []
    while True:
        try:
            predictions.append(sess.run(model.predictions))
        except tf.errors.OutOfRangeError:
            return np.concatenate(predictions) if predictions else np.zeros([0], np.int32)


# --- One way to load a trained model for inference (evaluation, predict.py, figures, export) -------



class TrainedModel:
    """A restored CapsNet in its own graph and session, fed through a placeholder.

    images: float32 [N, H, W, C] in [0, 1] (MNIST [N, 28, 28, 1]); model: the capsNet.CapsNet on it
    (training=False, so the decoder is masked by the prediction); extra: whatever extend_graph built;
    checkpoint: what was restored; step: its training step; flags: the settings the model was built from; spec: its
    model_spec.InputSpec; class_names: one name per class (the digits for runs that recorded none).
    """

    def __init__(self, graph, sess, images, model, extra, checkpoint, step, flags):
        self.graph, self.sess, self.images, self.model, self.extra = graph, sess, images, model, extra
        self.checkpoint, self.step, self.flags = checkpoint, step, flags
        self.spec = model.spec
        self.class_names = class_names(flags)

    def run(self, fetches, digits, batch_size=100):
        """sess.run(fetches) over float images [N, H, W, C] (or [N, H, W] when C = 1) in batches;
        each fetch concatenated over N."""
        outputs = [[] for _ in fetches]
        for start in range(0, len(digits), batch_size):
            batch = np.asarray(digits[start:start + batch_size], np.float32)
            if batch.ndim == 3:
                batch = batch[..., None]  # gray [B, H, W] -> [B, H, W, 1]
            for out, value in zip(outputs, self.sess.run(list(fetches), {self.images: batch})):
                out.append(value)
        return [np.concatenate(out) if out else np.zeros((0,) + tuple(f.shape.as_list()[1:]))
                for out, f in zip(outputs, fetches)]

    def predict_uint8(self, images_uint8, batch_size=100):
        """Predicted classes int [N] of uint8 images [N, H, W(, C)], scaled as the training pipeline does."""
        digits = np.asarray(images_uint8).astype(np.float32) / np.float32(255.0)
        return self.run([self.model.predictions], digits, batch_size)[0]

    def close(self):
        self.sess.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def class_names(flags):
    """The class names a run recorded in flags.json; the digits 0-9 (or Fashion-MNIST's names) for runs
    made before names were recorded, which were all of those two datasets."""
    recorded = (flags.get('input_spec') or {}).get('class_names')
    if recorded:
        return [str(name) for name in recorded]
    from evaluation import metrics
    return list(metrics.class_names(flags.get('dataset', 'mnist')))


def stored_image_size(flags):
    """(H, W) of the images the run was trained on before any crop: what inputs are resized to."""
    spec = InputSpec.from_flags(flags)
    recorded = flags.get('input_spec') or {}
    return int(recorded.get('image_height', spec.height)), int(recorded.get('image_width', spec.width))


def run_flags(logdir, fallback=None, warn=None):
    """The flags (dict) the run in logdir was trained with, from its flags.json.

    Without flags.json: `fallback`'s attributes (e.g. the command line), or the defaults, with a note.
    """
    path = os.path.join(logdir, 'flags.json')
    if not os.path.exists(path):
        if warn:
            warn('note: no flags.json in %s; building the model with %s'
                 % (logdir, 'the flags given' if fallback is not None else 'the default flags'))
        return dict(vars(fallback)) if fallback is not None else {}
    try:
        with open(path) as f:
            flags = json.load(f)
        if not isinstance(flags, dict):
            raise ValueError('not a JSON object')
    except (OSError, ValueError) as e:
        raise UserError('cannot read %s (%s); restore it or delete it to use the default flags'
                        % (path, type(e).__name__)) from None
    return flags


def read_card(folder=None):
    """The card (dict) of the pretrained model in folder (default: the repository's pretrained/)."""
    folder = folder or PRETRAINED_DIR
    path = os.path.join(folder, PRETRAINED_CARD)
    try:
        with open(path) as f:
            card = json.load(f)
    except FileNotFoundError:
        raise UserError('no pretrained model in %s; export one with python -m tools.export_pretrained '
                        '--logdir RUN/logdir' % folder) from None
    except (OSError, ValueError) as e:
        raise UserError('cannot read %s (%s); restore it from the repository (git checkout -- %s)'
                        % (path, type(e).__name__, folder)) from None
    return card


def sha256_of(path):
    digest = hashlib.sha256()
    with open(path, 'rb') as f:
        for block in iter(lambda: f.read(1 << 20), b''):
            digest.update(block)
    return digest.hexdigest()


def read_pretrained_weights(folder=None):
    """(card, {variable name: array}) of the pretrained model, its files checked against the card."""
    folder = folder or PRETRAINED_DIR
    card = read_card(folder)
    path = os.path.join(folder, PRETRAINED_WEIGHTS)
    expected = card.get('sha256', {}).get(PRETRAINED_WEIGHTS)
    try:
        actual = sha256_of(path)
    except OSError as e:
        raise UserError('cannot read %s (%s); restore it from the repository (git checkout -- %s)'
                        % (path, e.strerror or type(e).__name__, folder)) from None
    if actual != expected:
        raise checkpoints.CheckpointError(
            '%s is damaged or not the one its card describes (sha256 %s..., card says %s...); restore it '
            '(git checkout -- %s) or export again' % (path, actual[:12], str(expected)[:12], folder))
    with np.load(path) as stored:
        weights = {name: stored[name] for name in stored.files}
    return card, weights


def load_model(logdir, which='latest', fallback_flags=None, session_flags=None, extend_graph=None,
               warn=None, pretrained_dir=None):
    """The one loader of a trained model for inference: a TrainedModel, or a one-line UserError.

    which: 'latest' (the newest readable checkpoint of logdir, older ones if it is damaged), 'best'
    (the validation-selected one) or 'pretrained' (the repository's pretrained/ folder; logdir unused).
    The model is built from the run's flags.json (the card's flags for 'pretrained'), so architecture
    flags need not be repeated; fallback_flags stand in when a run has no flags.json.
    session_flags: a flags namespace whose speed options (threads, precision, XLA) the session uses.
    extend_graph(model, images): builds more ops on the model's weights (reuse them), returned as .extra.
    """
    import capsNet  # the model; imported here so that reading the constants above loads no model code
    if which not in LOAD_CHOICES:
        raise UserError('unknown --checkpoint=%s; choose one of: %s' % (which, ', '.join(LOAD_CHOICES)))
    warn = warn or errors.warn
    if which == 'pretrained':
        card, weights = read_pretrained_weights(pretrained_dir)
        flags, prefix = card.get('flags', {}), os.path.join(pretrained_dir or PRETRAINED_DIR, PRETRAINED_WEIGHTS)
    else:
        # 'latest': the newest readable one, restored below with fallback to older ones.
        prefix = checkpoints.find(logdir, which) if which == 'best' or not checkpoints.newest_first(logdir) else None
        flags = run_flags(logdir, fallback_flags, warn)
    graph = tf.Graph()
    with graph.as_default():
        spec = InputSpec.from_flags(flags)  # MNIST's 28 x 28 x 1, 10 classes unless the run recorded others
        images = tf1.placeholder(tf.float32, [None, spec.height, spec.width, spec.channels], 'images')
        # Labels only feed the loss; with training=False the decoder is masked by the prediction.
        # MultiMNIST runs: the two-digit model, whose decoder draws from the two longest capsules
        # (model.top2); its targets, like the labels, only feed a loss nobody reads here.
        pair = (capsNet.Pair(tf.zeros(tf.shape(images)[:1], tf.int32), tf.zeros_like(images), tf.zeros_like(images))
                if flags.get('dataset') == 'multimnist' else None)
        # The formulation of PrimaryCaps follows this session's precision, not the training run's.
        config = model_config(types.SimpleNamespace(**flags), session_flags or types.SimpleNamespace())
        model = capsNet.CapsNet(images, tf.zeros(tf.shape(images)[:1], tf.int32), config, training=False,
                                spec=spec, pair=pair)
        extra = extend_graph(model, images) if extend_graph else None
        global_step = tf1.train.get_or_create_global_step()
        variables = tf1.global_variables()
        saver = tf1.train.Saver(variables)
    sess = tf1.Session(graph=graph, config=session_config(session_flags))
    try:
        with graph.as_default():  # Saver.restore needs it as the default graph
            if which == 'pretrained':
                assign_weights(sess, prefix, weights, [v for v in variables if v is not global_step])
                sess.run(global_step.initializer, {global_step.initial_value: int(card.get('step', 0))})
                checkpoint = prefix
            elif prefix is None:
                checkpoint = checkpoints.restore_newest(sess, saver, logdir, variables, warn=warn)
            else:
                checkpoint = checkpoints.restore_exactly(sess, saver, prefix, variables)
            step = int(sess.run(global_step))
    except BaseException:
        sess.close()
        raise
    graph.finalize()
    return TrainedModel(graph, sess, images, model, extra, checkpoint, step, flags)


def assign_weights(sess, source, weights, variables):
    """Loads {name: array} into variables (any float storage, cast to the variable's dtype), checked."""
    checkpoints.check_fits(source, {name: list(value.shape) for name, value in weights.items()}, variables)
    # Outside their graph's context the variables' initializers look eager to TensorFlow and fail.
    with sess.graph.as_default():
        for v in variables:
            # The variable's own initializer, fed the stored value: no assign ops added per variable.
            sess.run(v.initializer, {v.initial_value: weights[v.op.name].astype(v.dtype.as_numpy_dtype)})


def model_weights(sess, variables):
    """{name: float32 array} of the model's own variables: no optimizer slots, no step counter."""
    kept = [v for v in variables if _is_model_weight(v.op.name)]
    return dict(zip([v.op.name for v in kept], sess.run(kept)))


def _is_model_weight(name):
    return name != 'global_step' and '/Adam' not in name and not name.startswith('beta')

