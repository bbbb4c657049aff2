"""Per-class accuracy, confusion matrix and the affine warps of the robustness test, against hand counts
and NumPy (no TensorFlow graph: fast)."""
import csv

import numpy as np
import pytest

from evaluation import metrics, robustness


def test_confusion_matrix_matches_hand_counts():
    labels = np.array([0, 0, 1, 1, 1, 2, 9])
    predictions = np.array([0, 1, 1, 1, 2, 2, 0])
    confusion = metrics.confusion_matrix(labels, predictions)
    expected = np.zeros((10, 10), int)
    for t, p in zip(labels, predictions):
        expected[t, p] += 1
    np.testing.assert_array_equal(confusion, expected)
    correct, total, accuracy = metrics.per_class_accuracy(confusion)
    np.testing.assert_array_equal(correct[[0, 1, 2, 9]], [1, 2, 1, 0])
    np.testing.assert_array_equal(total[[0, 1, 2, 9]], [2, 3, 1, 1])
    np.testing.assert_allclose(accuracy[[0, 1, 2, 9]], [0.5, 2 / 3, 1.0, 0.0])
    assert np.isnan(accuracy[3])  # no test image of class 3: no accuracy, not 0


def test_error_summary_reads_like_the_paper():
    labels = np.zeros(10000, int)
    predictions = labels.copy()
    predictions[:36] = 1
    assert metrics.error_summary(labels, predictions) == '36 errors / 10 000 (0.36% error)'


def test_reports_written_as_csv(tmp_path):
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 10, 200)
    predictions = np.where(rng.random(200) < 0.7, labels, rng.integers(0, 10, 200))
    metrics.write_reports(str(tmp_path), labels, predictions, 'fashion-mnist')
    per_class = list(csv.reader(open(tmp_path / 'per_class_accuracy.csv')))
    assert per_class[0] == ['class', 'name', 'correct', 'total', 'accuracy'] and len(per_class) == 11
    assert per_class[1][1] == 'T-shirt/top' and per_class[10][1] == 'Ankle boot'
    for row in per_class[1:]:
        k = int(row[0])
        assert int(row[2]) == np.sum((labels == k) & (predictions == k))
        assert int(row[3]) == np.sum(labels == k)
    matrix = list(csv.reader(open(tmp_path / 'confusion_matrix.csv')))
    assert len(matrix) == 11 and all(len(r) == 11 for r in matrix)
    counts = np.array([[int(c) for c in r[1:]] for r in matrix[1:]])
    assert counts.sum() == 200 and np.trace(counts) == np.sum(labels == predictions)


def digit():
    image = np.zeros((28, 28), np.uint8)
    image[6:20, 10:14] = 200   # a bar
    image[6:9, 10:20] = 255    # with a flag: not symmetric under rotation or flips
    return image


def test_per_class_lines_say_no_images_instead_of_nan():
    labels = np.array([0, 0, 1, 1, 1])  # classes 2-9 have no test image
    text = metrics.format_per_class(metrics.confusion_matrix(labels, np.array([0, 1, 1, 1, 0])))
    lines = text.splitlines()
    assert len(lines) == 10 and 'nan' not in text
    assert lines[0].split() == ['0', '0.5000', '(1', 'errors', '/', '2)']
    assert lines[2].split() == ['2', '-', '(no', 'images)']


def test_warp_without_transform_is_identity():
    np.testing.assert_array_equal(robustness.warp(digit()), digit())


def test_integer_translation_moves_pixels_and_fills_zeros():
    moved = robustness.warp(digit(), translation=(3, -2))  # 3 rows down, 2 columns left
    expected = np.zeros_like(digit())
    expected[3:, :-2] = digit()[:-3, 2:]
    np.testing.assert_array_equal(moved, expected)


def test_quarter_turn_is_counter_clockwise_rot90():
    # The centre of a 28x28 image is (13.5, 13.5): a quarter turn maps the pixel grid onto itself.
    np.testing.assert_array_equal(robustness.warp(digit(), rotation_deg=90), np.rot90(digit()))


def test_shear_slides_rows_in_proportion_to_their_offset():
    image = np.zeros((28, 28), np.uint8)
    image[:, 14] = 255  # a vertical line
    sheared = robustness.warp(image, shear=1.0)
    # forward map: col' = col + shear * (row - 13.5): row 13.5 +- k moves by +-k columns.
    rows, cols = np.nonzero(sheared > 127)
    assert len(rows) > 10
    np.testing.assert_allclose(cols - 14, rows - 13.5, atol=1.0)


def test_affine_test_set_is_fixed_by_the_seed():
    images = np.stack([digit()] * 6)
    a, b = robustness.affine_test_set(images, 1), robustness.affine_test_set(images, 1)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, robustness.affine_test_set(images, 2))
    assert not np.array_equal(a[0], a[1])  # each image gets its own transform
    rotation, shear, translation = robustness.random_parameters(1000, 1)
    assert np.abs(rotation).max() <= robustness.MAX_ROTATION_DEG and np.abs(rotation).max() > 10
    assert np.abs(shear).max() <= robustness.MAX_SHEAR
    assert np.abs(translation).max() <= robustness.MAX_TRANSLATION_PX


@pytest.mark.parametrize('plain_errors, affine_errors', [(1, 3), (0, 0)])
def test_robustness_report_rows(tmp_path, plain_errors, affine_errors):
    labels = np.arange(10)
    plain, affine = labels.copy(), labels.copy()
    plain[:plain_errors] += 1
    affine[:affine_errors] += 1
    rows = robustness.write_report(str(tmp_path / 'r.csv'), labels, plain, affine, 5)
    table = list(csv.reader(open(tmp_path / 'r.csv')))
    assert table[0] == ['condition', 'accuracy', 'errors', 'total', 'transform', 'seed']
    assert [r[0] for r in table[1:]] == ['plain', 'affine']
    assert [int(r[2]) for r in table[1:]] == [plain_errors, affine_errors]
    assert float(table[2][1]) == pytest.approx(1 - affine_errors / 10) == rows[1][1]
