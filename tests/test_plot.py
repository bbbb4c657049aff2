"""plot.py and its rasteriser: curves from CSVs (also half-written ones) into a PNG of known size."""
import numpy as np
import pytest
from pngcheck import read_png

from tools import plot, raster


def colour_mask(image, colour):
    return np.all(image == np.array(colour, np.uint8), axis=-1)


def test_nice_ticks_cover_the_range_in_round_steps():
    ticks = raster.nice_ticks(0, 1500)
    assert ticks[0] <= 0 and ticks[-1] >= 1500 and 3 <= len(ticks) <= 9
    steps = np.diff(ticks)
    np.testing.assert_allclose(steps, steps[0])
    mantissa = steps[0] / 10 ** np.floor(np.log10(steps[0]))
    assert round(mantissa, 6) in (1, 2, 5)
    np.testing.assert_allclose(raster.nice_ticks(0.82, 0.99), [0.8, 0.85, 0.9, 0.95, 1.0])
    assert raster.tick_label(25000, 5000) == '25K' and raster.tick_label(0.85, 0.05) == '0.85'


def test_line_and_text_ink():
    image = raster.canvas(20, 40)
    raster.line(image, 0, 0, 39, 19, raster.BLUE)
    blue = colour_mask(image, raster.BLUE)
    assert blue[0, 0] and blue[19, 39] and blue.sum() == 40  # one pixel per column of a shallow line
    image = raster.canvas(10, 40)
    raster.text(image, 0, 0, '1', scale=2)
    # The glyph '1' ('.#.', '##.', '.#.', '.#.', '###') has 8 inked cells of 2x2 pixels.
    assert colour_mask(image, raster.BLACK).sum() == 8 * 4
    assert raster.text_size('abc', 2) == ((3 * 4 - 1) * 2, 10)


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
    assert image.shape == (plot.HEIGHT, plot.WIDTH, 3)
    half = plot.WIDTH // 2
    blue, orange = colour_mask(image, raster.BLUE), colour_mask(image, raster.ORANGE)
    assert blue[:, :half].sum() > 300                 # the loss curve
    assert blue[:, half:].sum() > 300                 # train accuracy (and its legend swatch)
    assert orange[:, :half].sum() == 0 and orange[:, half:].sum() > 100  # validation: right panel only
    # The loss falls: its curve starts high in the panel (small row index) and ends low.
    cols = np.nonzero(blue[:, :half].any(axis=0))[0]
    first_rows = np.nonzero(blue[:, cols[0]])[0]
    last_rows = np.nonzero(blue[:, cols[-1]])[0]
    assert first_rows.mean() < last_rows.mean()


def test_plot_without_results_is_one_line_error(tmp_path, capsys):
    assert plot.main(['--results', str(tmp_path / 'none')]) != 0
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'no metrics rows' in err and 'python main.py' in err


@pytest.mark.parametrize('header', ['step,acc', 'epoch,loss'])
def test_plot_refuses_a_foreign_csv(tmp_path, capsys, header):
    write(tmp_path / 'loss.csv', header + '\n1,0.5\n')
    assert plot.main(['--results', str(tmp_path)]) != 0
    assert 'expected step,loss' in capsys.readouterr().err
