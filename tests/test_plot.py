"""plot.py: curves from CSVs (also half-written ones) drawn by matplotlib into a PNG of known size."""
import numpy as np
import pytest
from conftest import read_png

from tools import plot


def colour_mask(image, colour):
    """Pixels within a small distance of `colour` ('#rrggbb'): the solid middle of a drawn line."""
    rgb = np.array([int(colour[k:k + 2], 16) for k in (1, 3, 5)])
    return np.abs(image[..., :3].astype(int) - rgb).max(axis=-1) <= 8


def write(path, text):
    path.write_text(text)
    return path


def test_read_series_skips_a_half_written_last_row(tmp_path):
    path = write(tmp_path / 'loss.csv', 'step,loss\n100,0.5\n200,0.25\n300,0.1')  # '300,0.1...' unfinished
    steps, values = plot.read_series(str(path), 'loss')
    np.testing.assert_array_equal(steps, [100, 200])
    np.testing.assert_array_equal(values, [0.5, 0.25])
    write(path, 'step,loss\n100,0.5\n2\n300,abc\n400,0.2\n')  # a crash fragment, an unparsable row
    np.testing.assert_array_equal(plot.read_series(str(path), 'loss')[0], [100, 400])
    assert len(plot.read_series(str(tmp_path / 'absent.csv'), 'loss')[0]) == 0


def test_plot_writes_curves_png_while_training_runs(tmp_path):
    steps = np.arange(100, 1600, 100)
    write(tmp_path / 'loss.csv', 'step,loss\n' + ''.join('%d,%g\n' % (s, 0.5 / s ** 0.5) for s in steps))
    write(tmp_path / 'train_acc.csv',
          'step,train_acc\n' + ''.join('%d,%g\n' % (s, 1 - 1 / s ** 0.5) for s in steps) + '1600,0.9')
    write(tmp_path / 'val_acc.csv', 'step,val_acc\n500,0.95\n1000,0.97\n1500,0.98\n')
    assert plot.main(['--results', str(tmp_path)]) == 0
    image = read_png(tmp_path / 'curves.png')
    assert image.shape[:2] == (plot.HEIGHT, plot.WIDTH) and (plot.WIDTH, plot.HEIGHT) == (1200, 480)
    assert sorted(p.name for p in tmp_path.iterdir()) == ['curves.png', 'loss.csv', 'train_acc.csv',
                                                          'val_acc.csv']  # no temp file left
    half = plot.WIDTH // 2
    blue, orange = colour_mask(image, plot.BLUE), colour_mask(image, plot.ORANGE)
    assert blue[:, :half].sum() > 300                 # the loss curve
    assert blue[:, half:].sum() > 300                 # train accuracy (and its legend line)
    assert orange[:, :half].sum() == 0 and orange[:, half:].sum() > 100  # validation: right panel only
    # The loss falls: its curve starts high in the panel (small row index) and ends low.
    cols = np.nonzero(blue[:, :half].sum(axis=0) >= 2)[0]
    first_rows = np.nonzero(blue[:, cols[0]])[0]
    last_rows = np.nonzero(blue[:, cols[-1]])[0]
    assert first_rows.mean() < last_rows.mean()


def test_figure_has_labelled_axes_legend_and_only_complete_rows(tmp_path):
    write(tmp_path / 'loss.csv', 'step,loss\n10,2.0\n20,1.0\n30,0.')  # a row being written
    write(tmp_path / 'val_acc.csv', 'step,val_acc\n20,0.5\n')
    figure = plot.draw_curves(str(tmp_path))
    loss_axes, accuracy_axes = figure.axes
    assert (loss_axes.get_xlabel(), loss_axes.get_ylabel()) == ('step', 'loss')
    assert (accuracy_axes.get_xlabel(), accuracy_axes.get_ylabel()) == ('step', 'accuracy')
    np.testing.assert_array_equal(loss_axes.lines[0].get_xdata(), [10, 20])
    assert [t.get_text() for t in accuracy_axes.get_legend().get_texts()] == ['validation']
    low, high = accuracy_axes.get_ylim()
    assert 0 <= low < 0.5 < high <= 1.1  # a single validation point is inside the view
    assert accuracy_axes.lines[0].get_marker() == 'o'


def test_plot_without_results_is_one_line_error(tmp_path, capsys):
    assert plot.main(['--results', str(tmp_path / 'none')]) != 0
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'no metrics rows' in err and 'python main.py' in err


@pytest.mark.parametrize('header', ['step,acc', 'epoch,loss'])
def test_plot_refuses_a_foreign_csv(tmp_path, capsys, header):
    write(tmp_path / 'loss.csv', header + '\n1,0.5\n')
    assert plot.main(['--results', str(tmp_path)]) != 0
    assert 'expected step,loss' in capsys.readouterr().err


def test_curves_and_training_read_a_csv_through_one_reader(tmp_path, monkeypatch):
    from runtime import files
    path = write(tmp_path / 'val_acc.csv', 'step,val_acc\n429,0.98\n858\n1287,0.99\n1716,0.9')  # fragment, cut row
    assert files.CsvLog(str(path), 'step,val_acc').rows() == [['429', '0.98'], ['1287', '0.99']]
    np.testing.assert_array_equal(plot.read_series(str(path), 'val_acc')[0], [429, 1287])
    # The curves go through the same function as training's resume: a change to it reaches both.
    calls = []
    monkeypatch.setattr(files, 'read_rows', lambda *a: calls.append(a) or (['step', 'val_acc'], [['1', '0.5']]))
    np.testing.assert_array_equal(plot.read_series(str(path), 'val_acc')[1], [0.5])
    assert calls and files.CsvLog(str(path), 'step,val_acc').rows() == [['1', '0.5']]
