"""Test-set accuracy of a trained checkpoint, with per-class and robustness breakdowns.

    evaluate(cfg)  what `python main.py --is_training=False` runs
"""
import copy
import os

import numpy as np

import utils
from evaluation import metrics, robustness
from runtime import files, inference
from runtime.errors import warn


def evaluate(cfg):
    """Test accuracy of cfg.checkpoint (latest, validation-best or pretrained) on all test images;
    appends test_acc.csv. The model is built from the run's flags.json (the command line's flags if the
    run has none). The shipped model's figures go to RESULTS/pretrained/, apart from the user's run."""
    if cfg.checkpoint == 'pretrained':
        cfg = copy.copy(cfg)
        cfg.results = os.path.join(cfg.results, 'pretrained')
    flags = trained_flags(cfg)
    if flags.get('dataset', cfg.dataset) == utils.MULTIMNIST:
        return evaluate_multimnist(cfg)
    test = utils.load_test_set(cfg, flags)
    test_x, test_y = test.images, test.labels
    with inference.load_model(cfg.logdir, cfg.checkpoint, fallback_flags=cfg, session_flags=cfg,
                              warn=warn) as trained:
        step, checkpoint = trained.step, trained.checkpoint
        predictions = trained.predict_uint8(test_x, cfg.eval_batch_size)
        if cfg.robustness:
            affine_x = robustness.affine_test_set(test_x, cfg.seed)
            affine_predictions = trained.predict_uint8(affine_x, cfg.eval_batch_size)
    correct = int(np.sum(predictions == test_y))
    accuracy = correct / len(test_x)
    files.CsvLog(os.path.join(cfg.results, 'test_acc.csv'), 'step,test_acc').append(step, accuracy)
    print('test accuracy %.4f (%d errors / %d) at step %d of %s'
          % (accuracy, len(test_x) - correct, len(test_x), step, checkpoint))
    _report_breakdowns(cfg, test_y, predictions, test.class_names)
    if cfg.robustness:
        _report_robustness(cfg, test_x, affine_x, test_y, predictions, affine_predictions)
    return accuracy


MULTIMNIST_TEST_CSV = 'multimnist_test.csv'
MULTIMNIST_TEST_HEADER = 'step,pair_error,pair_errors,pairs,single_digit_acc,single_digit_errors,digits'


def evaluate_multimnist(cfg):
    """The paper's two MultiMNIST figures of a trained checkpoint: the error rate on the fixed test pairs
    (right only when the two longest capsules are the pair's two classes) and the top-1 accuracy on the
    plain MNIST test digits centred on the 36 x 36 canvas. Appends the pair accuracy to test_acc.csv and
    both figures with their counts to multimnist_test.csv. Returns the pair accuracy."""
    from readers import multimnist
    pairs, digits, labels = utils.load_multimnist_test(cfg)
    with inference.load_model(cfg.logdir, cfg.checkpoint, fallback_flags=cfg, session_flags=cfg,
                              warn=warn) as trained:
        step, checkpoint = trained.step, trained.checkpoint
        top2 = trained.run([trained.model.top2], pairs.merged.astype(np.float32) / np.float32(255.0),
                           cfg.eval_batch_size)[0]                                           # [N, 2]
        single = trained.predict_uint8(multimnist.on_canvas(digits), cfg.eval_batch_size)    # [N]
    correct = int(np.sum(pair_correct(top2, pairs.labels_a, pairs.labels_b)))
    pair_accuracy = correct / len(top2)
    # The pair accuracy, as val_acc.csv holds it for MultiMNIST runs.
    files.CsvLog(os.path.join(cfg.results, 'test_acc.csv'), 'step,test_acc').append(step, pair_accuracy)
    print('MultiMNIST test error %.2f %% (%d of %d fixed test pairs with a class missed by the two longest '
          'capsules) at step %d of %s' % (100.0 * (1 - pair_accuracy), len(top2) - correct, len(top2), step,
                                          checkpoint))
    single_correct = int(np.sum(single == labels))
    # Both figures with what they were counted over, so a results table can be made from the file alone.
    files.CsvLog(os.path.join(cfg.results, MULTIMNIST_TEST_CSV), MULTIMNIST_TEST_HEADER).append(
        step, 1 - pair_accuracy, len(top2) - correct, len(top2), single_correct / len(labels),
        len(labels) - single_correct, len(labels))
    print('single-digit accuracy %.4f (%d errors / %d MNIST test digits centred on the 36x36 canvas, top-1)'
          % (single_correct / len(labels), len(labels) - single_correct, len(labels)))
    return pair_accuracy


def pair_correct(top2, labels_a, labels_b):
    """capsLayer.top2_correct on NumPy arrays: bool [N], true when the two predicted classes (int [N, 2],
    distinct) are the two true ones, in either order."""
    top2 = np.asarray(top2)
    return (((top2[:, 0] == labels_a) & (top2[:, 1] == labels_b))
            | ((top2[:, 0] == labels_b) & (top2[:, 1] == labels_a))) & (np.asarray(labels_a) != labels_b)


def trained_flags(cfg):
    """The flags the model to test was trained with (the card's for pretrained/), read quietly: the
    loader says once if there are none. What the test images are prepared by (size, channels, crop)."""
    if cfg.checkpoint == 'pretrained':
        return inference.read_card().get('flags', {})
    return inference.run_flags(cfg.logdir, cfg)


def _report_breakdowns(cfg, labels, predictions, names):
    confusion = metrics.write_reports(cfg.results, labels, predictions, cfg.dataset, names)
    print('%s; per class (confusion matrix in %s):\n%s'
          % (metrics.error_summary(labels, predictions), os.path.join(cfg.results, 'confusion_matrix.csv'),
             metrics.format_per_class(confusion, cfg.dataset, names)))


def _report_robustness(cfg, images, affine_images, labels, predictions, affine_predictions):
    path = os.path.join(cfg.results, 'robustness.csv')
    robustness.write_report(path, labels, predictions, affine_predictions, cfg.seed)
    # The first 16 test images above their warped copies: what the model was asked to read.
    files.write_pixels(os.path.join(cfg.results, 'robustness_examples.png'),
                       files.image_grid(np.concatenate([images[:16], affine_images[:16]]), 16))  # [2H, 16W(, 3)]
    print('robustness (%s): plain %.4f, affine %.4f: %s; written to %s'
          % (robustness.DESCRIPTION, np.mean(predictions == labels), np.mean(affine_predictions == labels),
             metrics.error_summary(labels, affine_predictions), path))
