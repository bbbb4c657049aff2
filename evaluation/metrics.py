"""Test-set breakdowns from predicted and true labels: per-class accuracy and the confusion matrix.

Pure NumPy plus CSV writing, so `evaluate.evaluate` and the robustness check share it and tests can
compare it with hand counts.
"""
import os

import numpy as np

from runtime import files
from model_spec import NUM_CLASSES

CLASS_NAMES = {
    'mnist': [str(k) for k in range(NUM_CLASSES)],
    # Label order of the Fashion-MNIST README (zalandoresearch/fashion-mnist).
    'fashion-mnist': ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat',
                      'Sandal', 'Shirt', 'Sneaker', 'Bag', 'Ankle boot'],
}


def class_names(dataset):
    return CLASS_NAMES.get(dataset, CLASS_NAMES['mnist'])


def confusion_matrix(labels, predictions, num_classes=NUM_CLASSES):
    """counts[true, predicted]: int64 [num_classes, num_classes]; rows sum to the class sizes."""
    labels = np.asarray(labels, np.int64)
    predictions = np.asarray(predictions, np.int64)
    if labels.shape != predictions.shape:
        raise ValueError('labels %s and predictions %s differ in shape' % (labels.shape, predictions.shape))
    flat = np.bincount(labels * num_classes + predictions, minlength=num_classes * num_classes)
    return flat.reshape(num_classes, num_classes)


def per_class_accuracy(confusion):
    """(correct, total, accuracy) per true class; accuracy is NaN for a class absent from the test set."""
    correct = np.diag(confusion)
    total = confusion.sum(axis=1)
    with np.errstate(invalid='ignore', divide='ignore'):
        accuracy = np.where(total > 0, correct / np.maximum(total, 1), np.nan)
    return correct, total, accuracy


def error_summary(labels, predictions):
    """'36 errors / 10 000 (0.36%)': the count a reader can compare with the paper's error rates."""
    total = len(labels)
    errors = int(np.sum(np.asarray(labels) != np.asarray(predictions)))
    rate = 100.0 * errors / total if total else float('nan')
    return '%d errors / %s (%.2f%% error)' % (errors, '{:,}'.format(total).replace(',', ' '), rate)


def write_reports(results_dir, labels, predictions, dataset='mnist', names=None):
    """Writes per_class_accuracy.csv and confusion_matrix.csv into results_dir; returns the matrix.
    names: one per class (the run's); the dataset's own when not given."""
    names = names or class_names(dataset)
    confusion = confusion_matrix(labels, predictions, len(names))
    correct, total, accuracy = per_class_accuracy(confusion)
    per_class = ['class,name,correct,total,accuracy']
    for k in range(len(names)):
        per_class.append('%d,%s,%d,%d,%.6g' % (k, _csv_field(names[k]), correct[k], total[k], accuracy[k]))
    # Rows: true class; columns: predicted class.
    matrix = ['true\\predicted,' + ','.join(str(k) for k in range(len(names)))]
    for k in range(len(names)):
        matrix.append('%d,' % k + ','.join(str(int(c)) for c in confusion[k]))
    os.makedirs(results_dir, exist_ok=True)
    _write_lines(os.path.join(results_dir, 'per_class_accuracy.csv'), per_class)
    _write_lines(os.path.join(results_dir, 'confusion_matrix.csv'), matrix)
    return confusion


def format_per_class(confusion, dataset='mnist', names=None):
    """A few printable lines: each class with its accuracy and error count."""
    names = names or class_names(dataset)
    correct, total, accuracy = per_class_accuracy(confusion)
    lines = []
    for k in range(len(names)):
        if total[k] == 0:  # no test image of this class: an accuracy would be 0 / 0
            lines.append('  %-12s -       (no images)' % names[k])
        else:
            lines.append('  %-12s %.4f  (%d errors / %d)' % (names[k], accuracy[k], total[k] - correct[k], total[k]))
    return '\n'.join(lines)


def _csv_field(text):
    """A class name as one CSV field: quoted when it holds a comma or a quote (a folder may be named so)."""
    text = str(text)
    return '"%s"' % text.replace('"', '""') if (',' in text or '"' in text) else text


def _write_lines(path, lines):
    files.atomic_write(path, '\n'.join(lines) + '\n')
