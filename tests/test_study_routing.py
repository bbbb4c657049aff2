"""study_routing.py on tiny data: one trained-and-tested run per iter_routing, one table."""
import csv
import json

import pytest
from conftest import tiny_run_args

import config
from tools import study_routing


@pytest.mark.slow
def test_study_writes_one_row_per_routing_setting(tiny_mnist, tmp_path, capsys):
    args = tiny_run_args(tiny_mnist, tmp_path) + ['--steps', '2', '--iterations', '1,4']
    assert study_routing.run(args) == 0
    table = list(csv.reader(open(tmp_path / 'results' / 'routing_study.csv')))
    assert table[0] == ['iter_routing', 'steps', 'val_acc', 'test_acc', 'seconds']
    assert [r[0] for r in table[1:]] == ['1', '4'] and [r[1] for r in table[1:]] == ['2', '2']
    for row in table[1:]:
        run_dir = 'iter_%s' % row[0]
        # Each run really used its own routing setting and wrote its own metrics.
        flags = json.loads((tmp_path / 'logdir' / 'routing_study' / run_dir / 'flags.json').read_text())
        assert flags['iter_routing'] == int(row[0]) and flags['max_steps'] == 2
        results = tmp_path / 'results' / 'routing_study' / run_dir
        test_rows = list(csv.reader(open(results / 'test_acc.csv')))
        assert float(row[3]) == pytest.approx(float(test_rows[-1][1]), abs=1e-6)
        val_rows = list(csv.reader(open(results / 'val_acc.csv')))
        assert float(row[2]) == pytest.approx(float(val_rows[-1][1]), abs=1e-6)
        assert abs(float(row[3]) * 60 - round(float(row[3]) * 60)) < 1e-4  # 60 test images
        assert float(row[4]) > 0
    assert 'written to' in capsys.readouterr().out


@pytest.mark.parametrize('text', ['', '1,x', '0,3'])
def test_bad_iteration_list_is_a_config_error(text):
    with pytest.raises(config.ConfigError, match='--iterations'):
        study_routing.parse_iterations(text)
    assert study_routing.parse_iterations('1,3,5') == [1, 3, 5]
