"""Fashion-MNIST end to end on generated IDX files, then every command that reads a checkpoint:
download (checksums) -> train with --shift_pixels -> evaluate extras and --robustness -> figures -> plot.

One tiny run (module fixture) serves all tests here; it takes a few seconds on 2 cores.
"""
import csv
import hashlib

import numpy as np
import pytest
from conftest import read_gray_png, read_png, run_main, tiny_run_args, write_dataset

import config
import download_data
import utils
from runtime import dataset_files, files
from tools import figures, plot

OFFICIAL_TRAIN_IMAGES_MD5 = '8d4fb7e6c68d591d4c3dfef9ec88bf0d'  # zalandoresearch/fashion-mnist README
SIDE = 28


def read_csv(path):
    with open(path) as f:
        return list(csv.reader(f))


def tiny_table(mirror, with_official_md5):
    """The fashion-mnist checksum table resized to the generated files; md5s official or theirs."""
    images = {'train-images-idx3-ubyte': (240, 28, 28), 'train-labels-idx1-ubyte': (240,),
              't10k-images-idx3-ubyte': (60, 28, 28), 't10k-labels-idx1-ubyte': (60,)}
    official = dataset_files.DATASETS['fashion-mnist']
    table = {}
    for stem, shape in images.items():
        md5 = (official[stem]['gz_md5'] if with_official_md5
               else hashlib.md5((mirror / (stem + '.gz')).read_bytes()).hexdigest())
        table[stem] = dataset_files.idx_entry(shape, gz_md5=md5)
    return table


@pytest.fixture(scope='module')
def mirror(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp('fashion_mirror'), seed=5)


@pytest.fixture(scope='module')
def run(mirror, tmp_path_factory):
    """Downloads the generated 'Fashion-MNIST' from a local mirror, verifies it, trains 3 steps."""
    work = tmp_path_factory.mktemp('fashion_run')
    data = work / 'data' / 'fashion-mnist'
    with pytest.MonkeyPatch.context() as patch:
        patch.setitem(dataset_files.DATASETS, 'fashion-mnist', tiny_table(mirror, False))
        assert download_data.main(['--dataset', 'fashion-mnist', '--save_to', str(data),
                                   '--mirror', str(mirror)]) == 0
        args = tiny_run_args(data, work, '--dataset', 'fashion-mnist', '--verify_data=True',
                             '--shift_pixels', '2', '--max_steps', '3')
        assert run_main(args) == 0
        yield work, data, args


def test_official_fashion_checksums_refuse_other_files(mirror, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(dataset_files.DATASETS, 'fashion-mnist', tiny_table(mirror, True))
    code = download_data.main(['--dataset', 'fashion-mnist', '--save_to', str(tmp_path / 'd'),
                               '--mirror', str(mirror)])
    err = capsys.readouterr().err
    assert code != 0 and 'checksum mismatch' in err and OFFICIAL_TRAIN_IMAGES_MD5 in err
    assert not (tmp_path / 'd' / 'train-images-idx3-ubyte.gz').exists()


def test_fashion_data_is_verified_before_training(mirror, tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(dataset_files.DATASETS, 'fashion-mnist', tiny_table(mirror, True))
    code = run_main(tiny_run_args(mirror, tmp_path, '--dataset', 'fashion-mnist', '--verify_data=True'))
    err = capsys.readouterr().err
    assert code != 0 and err.count('\n') == 1
    assert 'checksum mismatch' in err and 'download_data.py --dataset fashion-mnist' in err
    assert config.parse(['--dataset', 'fashion-mnist']).data_dir.replace('\\', '/') == 'data/fashion-mnist'


@pytest.mark.slow
def test_evaluate_reports_classes_confusion_and_robustness(run, capsys):
    work, data, args = run
    assert run_main(args + ['--is_training=False', '--robustness']) == 0
    out = capsys.readouterr().out
    _, labels = utils.load_split(str(data), 'test', 'fashion-mnist', verify=False)
    results = work / 'results'

    per_class = read_csv(results / 'per_class_accuracy.csv')
    assert len(per_class) == 11 and per_class[1][1] == 'T-shirt/top' and per_class[10][1] == 'Ankle boot'
    assert [int(r[3]) for r in per_class[1:]] == list(np.bincount(labels, minlength=10))
    matrix = np.array([[int(c) for c in r[1:]] for r in read_csv(results / 'confusion_matrix.csv')[1:]])
    assert matrix.shape == (10, 10)
    np.testing.assert_array_equal(matrix.sum(axis=1), np.bincount(labels, minlength=10))
    test_acc = float(read_csv(results / 'test_acc.csv')[-1][1])
    assert np.trace(matrix) / 60 == pytest.approx(test_acc, abs=1e-6)
    assert '%d errors / 60' % (60 - np.trace(matrix)) in out and 'Ankle boot' in out

    robust = read_csv(results / 'robustness.csv')
    assert [r[0] for r in robust[1:]] == ['plain', 'affine'] and all(r[3] == '60' for r in robust[1:])
    assert float(robust[1][1]) == pytest.approx(test_acc, abs=1e-6)
    assert 'robustness' in out and 'affine' in out
    examples = read_gray_png(results / 'robustness_examples.png')
    assert examples.shape == (2 * SIDE, 16 * SIDE)
    np.testing.assert_array_equal(examples[:SIDE], files.image_grid(utils.load_split(
        str(data), 'test', 'fashion-mnist', verify=False)[0][:16], 16))  # the plain test images on top


def png_size(inches, dpi):
    return round(inches[1] * dpi), round(inches[0] * dpi)


@pytest.mark.slow
def test_figures_show_inputs_reconstructions_and_perturbations(run, capsys):
    work, data, args = run
    assert figures.run(args) == 0
    assert 'wrote' in capsys.readouterr().out
    results = work / 'results'
    images, labels = utils.load_split(str(data), 'test', 'fashion-mnist', verify=False)
    digits = min(figures.PERTURBED_DIGITS, len(set(labels)))
    sizes = {'reconstructions': figures.RECONSTRUCTIONS_SIZE,
             'perturbation': (figures.PERTURBATION_PANEL_SIZE[0] * digits, figures.PERTURBATION_PANEL_SIZE[1])}
    for name, inches in sizes.items():
        png = read_png(results / (name + '.png'))
        assert png.shape[:2] == png_size(inches, figures.DPI), name
        gray = png[..., :3].mean(axis=-1)
        assert (gray < 250).mean() > 0.3, name  # the pixel grids fill most of the white figure

    decoder = figures.Decoder(config.parse(args))
    try:
        inputs, recon = figures.reconstruction_grids(decoder, images)
        grids, classes = figures.perturbation_grids(decoder, images, labels)
    finally:
        decoder.close()
    n = figures.RECONSTRUCTION_GRID
    np.testing.assert_array_equal(inputs, files.image_grid(images[:n * n], n))  # the test images themselves
    assert recon.shape == inputs.shape and recon.dtype == np.uint8 and not np.array_equal(recon, inputs)
    figure = figures.draw_reconstructions(inputs, recon)
    assert [a.get_title() for a in figure.axes] == ['test images', 'reconstructions']
    np.testing.assert_array_equal(figure.axes[1].images[0].get_array(), recon)

    steps = len(figures.PERTURBATIONS)
    assert steps == 11 and figures.PERTURBATIONS[0] == -0.25 and figures.PERTURBATIONS[5] == 0
    assert len(grids) == digits and all(g.shape == (16 * SIDE, steps * SIDE) for g in grids)
    block = grids[0].reshape(16, SIDE, steps, SIDE).transpose(0, 2, 1, 3)  # [dim, step, 28, 28]
    # Perturbation 0 decodes the same capsule in every row; the other columns change it.
    assert all(np.array_equal(block[d, 5], block[0, 5]) for d in range(16))
    assert any(not np.array_equal(block[d, 0], block[d, 10]) for d in range(16))
    names = ['T-shirt/top', 'Trouser', 'Pullover', 'Dress', 'Coat', 'Sandal', 'Shirt',
             'Sneaker', 'Bag', 'Ankle boot']
    figure = figures.draw_perturbations(grids, classes, names)
    assert [a.get_title() for a in figure.axes] == ['class %s' % names[k] for k in classes]
    assert [t.get_text() for t in figure.axes[0].get_xticklabels()] == ['-0.25', '0', '+0.25']
    assert [t.get_text() for t in figure.axes[0].get_yticklabels()] == [str(d) for d in range(1, 17)]
    np.testing.assert_array_equal(figure.axes[-1].images[0].get_array(), grids[-1])


def test_perturbed_capsules_move_one_dimension_of_one_class():
    rng = np.random.default_rng(0)
    caps = rng.normal(size=(2, 10, 16)).astype(np.float32)
    classes = np.array([3, 7])
    masked = figures.perturbed_capsules(caps, classes).reshape(2, 16, 11, 10, 16)
    for n, k in enumerate(classes):
        others = np.delete(masked[n], k, axis=2)
        assert not others.any()  # every other class's capsule is masked out
        delta = masked[n, :, :, k, :] - caps[n, k]          # [dim varied, step, 16]
        for d in range(16):
            expected = np.zeros((11, 16), np.float32)
            expected[:, d] = figures.PERTURBATIONS
            np.testing.assert_allclose(delta[d], expected, atol=1e-6)


@pytest.mark.slow
def test_plot_draws_the_run(run):
    work, _, _ = run
    assert plot.main(['--results', str(work / 'results')]) == 0
    assert read_png(work / 'results' / 'curves.png').shape[:2] == (plot.HEIGHT, plot.WIDTH)


def test_figures_without_checkpoint_is_one_line_error(tiny_mnist, tmp_path, capsys):
    assert figures.run(tiny_run_args(tiny_mnist, tmp_path)) != 0
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'no checkpoint in' in err
