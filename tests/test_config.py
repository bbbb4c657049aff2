"""Flags: the original names and defaults, bool syntax, and one-line refusals of bad values."""
import dataclasses

import pytest
from conftest import run_main

import config
import model_spec


def test_defaults_of_the_original_script():
    cfg = config.parse([])
    expected = dict(m_plus=0.9, m_minus=0.1, lambda_val=0.5, batch_size=128, epoch=50, iter_routing=3,
                    mask_with_y=True, stddev=0.01, regularization_scale=0.392, dataset='mnist',
                    is_training=True, num_threads=8, logdir='logdir', train_sum_freq=100,
                    val_sum_freq=500, save_freq=3, results='results')
    assert {k: getattr(cfg, k) for k in expected} == expected
    assert cfg.data_dir == 'data/mnist'
    assert config.parse(['--dataset=fashion-mnist']).data_dir == 'data/fashion-mnist'


@pytest.mark.parametrize('argv, value', [
    (['--is_training=False'], False), (['--is_training', 'false'], False),
    (['--is_training=True'], True), (['--is_training'], True), (['--is_training=0'], False)])
def test_bool_flag_forms(argv, value):
    assert config.parse(argv).is_training is value


@pytest.mark.parametrize('argv, words', [
    (['--batch_size=-1'], '--batch_size must be at least 1, got -1'),
    (['--iter_routing=0'], '--iter_routing must be at least 1, got 0'),
    (['--save_freq=0'], '--save_freq must be at least 1'),
    (['--dataset=cifar'], 'unknown --dataset=cifar; choose one of: mnist, fashion-mnist'),
    (['--m_plus=0.1', '--m_minus=0.2'], 'need 0 <= --m_minus < --m_plus <= 1'),
    (['--learning_rate=0'], '--learning_rate must be > 0'),
    (['--batch_size=abc'], "bad flag: argument --batch_size: invalid int value: 'abc'"),
    (['--is_training=maybe'], 'bad flag: argument --is_training: expected True or False'),
    (['--no_such_flag=1'], 'bad flag: unrecognized arguments: --no_such_flag=1'),
])
def test_bad_values_refused_with_one_line(argv, words, capsys):
    with pytest.raises(config.ConfigError, match=words.replace('(', r'\(').replace('+', r'\+')):
        config.parse(argv)
    assert run_main(argv) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and err.count('\n') == 1


def test_batch_larger_than_training_data_refused(tiny_mnist, tmp_path, capsys):
    from conftest import tiny_run_args
    assert run_main(tiny_run_args(tiny_mnist, tmp_path, '--batch_size', '500')) == 2
    assert '--batch_size=500 is larger than the 200 training images' in capsys.readouterr().err


def test_save_flags_writes_json(tmp_path):
    import json
    cfg = config.parse(['--iter_routing=5'])
    config.save_flags(cfg, str(tmp_path / 'logdir' / 'flags.json'))
    saved = json.loads((tmp_path / 'logdir' / 'flags.json').read_text())
    assert saved['iter_routing'] == 5 and saved['data_dir'] == 'data/mnist'
    assert not list((tmp_path / 'logdir').glob('*.tmp'))


def test_usage_doc_documents_every_flag():
    from conftest import ROOT
    usage = (ROOT / 'docs' / 'usage.md').read_text()
    missing = [a.dest for a in config.build_parser()._actions
               if a.dest != 'help' and '`--%s`' % a.dest not in usage]
    assert not missing, 'flags missing from docs/usage.md: %s' % missing


def test_flag_defaults_of_the_model_are_the_model_defaults():
    defaults = config.parse([])
    for field in dataclasses.fields(model_spec.ModelConfig):
        if field.name in model_spec.SPEED_FIELDS:
            continue  # 'auto' there: the runtime decides for the machine (test_primary_caps_matmuls.py)
        assert getattr(defaults, field.name) == getattr(model_spec.MODEL_DEFAULTS, field.name), field.name
