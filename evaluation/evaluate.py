"""Test-set accuracy of a trained checkpoint, with per-class and robustness breakdowns.

    evaluate(cfg)  what `python main.py --is_training=False` runs
"""
import os
import sys

import numpy as np
import tensorflow as tf

import capsNet
import utils
from evaluation import metrics, robustness
from runtime import checkpoints, files
from runtime.inference import predict_labels
from runtime.session import session_config

tf1 = tf.compat.v1


def _warn(message):
    print(message, file=sys.stderr)


def evaluate(cfg):
    """Test accuracy of cfg.checkpoint ('latest' or validation-'best') on all test images; appends test_acc.csv."""
    if cfg.checkpoint == 'latest' and checkpoints.newest_first(cfg.logdir):
        chosen = None  # the newest readable one, found below (older ones if the newest is damaged)
    else:
        chosen = checkpoints.find(cfg.logdir, cfg.checkpoint)  # or a one-line error saying how to get one
    test_x, test_y = utils.load_split(cfg.data_dir, 'test', cfg.dataset, cfg.verify_data)
    graph = tf.Graph()
    with graph.as_default():
        pipeline = utils.InputPipeline(cfg.eval_batch_size, False, cfg.num_threads, 'eval_input')
        model = capsNet.CapsNet(pipeline.images, pipeline.labels, capsNet.ModelConfig.from_flags(cfg),
                                training=False)
        global_step = tf1.train.get_or_create_global_step()
        variables = tf1.global_variables()
        saver = tf1.train.Saver(variables)
    with tf1.Session(graph=graph, config=session_config(cfg)) as sess:
        if chosen is None:
            checkpoint = checkpoints.restore_newest(sess, saver, cfg.logdir, variables,
                                                    warn=_warn, current_flags=vars(cfg))
        else:
            checkpoint = checkpoints.restore_exactly(sess, saver, chosen, variables, vars(cfg))
        step = int(sess.run(global_step))
        predictions = predict_labels(sess, pipeline, model, test_x, test_y)
        if cfg.robustness:
            affine_x = robustness.affine_test_set(test_x, cfg.seed)
            affine_predictions = predict_labels(sess, pipeline, model, affine_x, test_y)
    correct = int(np.sum(predictions == test_y))
    accuracy = correct / len(test_x)
    files.CsvLog(os.path.join(cfg.results, 'test_acc.csv'), 'step,test_acc').append(step, accuracy)
    print('test accuracy %.4f (%d errors / %d) at step %d of %s'
          % (accuracy, len(test_x) - correct, len(test_x), step, checkpoint))
    _report_breakdowns(cfg, test_y, predictions)
    if cfg.robustness:
        _report_robustness(cfg, test_x, affine_x, test_y, predictions, affine_predictions)
    return accuracy


def _report_breakdowns(cfg, labels, predictions):
    confusion = metrics.write_reports(cfg.results, labels, predictions, cfg.dataset)
    print('%s; per class (confusion matrix in %s):\n%s'
          % (metrics.error_summary(labels, predictions), os.path.join(cfg.results, 'confusion_matrix.csv'),
             metrics.format_per_class(confusion, cfg.dataset)))


def _report_robustness(cfg, images, affine_images, labels, predictions, affine_predictions):
    path = os.path.join(cfg.results, 'robustness.csv')
    robustness.write_report(path, labels, predictions, affine_predictions, cfg.seed)
    # The first 16 test images above their warped copies: what the model was asked to read.
    files.write_pixels(os.path.join(cfg.results, 'robustness_examples.png'),
                       files.image_grid(np.concatenate([images[:16], affine_images[:16]]), 16))
    print('robustness (%s): plain %.4f, affine %.4f: %s; written to %s'
          % (robustness.DESCRIPTION, np.mean(predictions == labels), np.mean(affine_predictions == labels),
             metrics.error_summary(labels, affine_predictions), path))
