"""--flagfile and the named experiments of configs/: each preset parses to what it says, flags after
the file win, and unreadable files are refused in one line."""
import pytest
from conftest import ROOT, run_main

import config

PRESETS = {
    'original': {},
    'official': dict(lr_schedule='exponential', primary_caps_relu=False, stop_gradient_routing=False,
                     digit_caps_bias=True),
    'paper': dict(stop_gradient_routing=False, shift_pixels=2, lr_schedule='exponential'),
    'cifar10': dict(dataset='cifar10', data_dir='data/cifar10', crop='24x24', primary_caps_types=64,
                    leaky_routing=True),
    'smallnorb': dict(dataset='smallnorb', data_dir='data/smallnorb', image_size='48x48', crop='32x32',
                      val_size=2430),
    'multimnist': dict(dataset='multimnist', stop_gradient_routing=False,
                       lr_schedule='exponential', epoch=1091),
}


def preset(name):
    return str(ROOT / 'configs' / (name + '.flags'))


@pytest.mark.parametrize('name', sorted(PRESETS))
def test_each_preset_changes_exactly_its_flags(name):
    defaults = vars(config.parse([]))
    parsed = vars(config.parse(['--flagfile=' + preset(name)]))
    changed = {k: v for k, v in parsed.items() if defaults[k] != v and k != 'flagfile'}
    assert changed == PRESETS[name]
    assert parsed['flagfile'] == [preset(name)]  # flags.json records the preset
    text = open(preset(name)).read()
    assert text.startswith('# %s:' % name) and '# Cost' in text and 'Reaches' in text


def test_flags_after_the_file_override_it_and_before_it_do_not():
    after = config.parse(['--flagfile', preset('paper'), '--shift_pixels=0', '--seed', '7'])
    assert (after.shift_pixels, after.seed, after.lr_schedule) == (0, 7, 'exponential')
    before = config.parse(['--shift_pixels=0', '--flagfile', preset('paper')])
    assert before.shift_pixels == 2


def test_comments_several_flags_a_line_and_nesting(tmp_path):
    inner = tmp_path / 'inner.flags'
    inner.write_text('# a comment line\n\n--iter_routing 5   # trailing comment\n--seed=3 --batch_size=16\n')
    outer = tmp_path / 'outer.flags'
    outer.write_text('--flagfile=%s\n--seed=4\n' % inner)
    cfg = config.parse(['--flagfile=%s' % outer])
    assert (cfg.iter_routing, cfg.seed, cfg.batch_size) == (5, 4, 16)
    assert cfg.flagfile == [str(outer), str(inner)]
    assert config.parse([]).flagfile is None


@pytest.mark.parametrize('contents, words', [
    (None, 'cannot read --flagfile=%s (No such file or directory); give the path of a flags file'),
    ('--no_such_flag=1\n', 'bad flag: unrecognized arguments: --no_such_flag=1'),
    ('--batch_size=0\n', '--batch_size must be at least 1, got 0'),
    ('--seed "7\n', 'cannot parse --flagfile=%s (No closing quotation); fix its quoting'),
    ('--flagfile=%s\n', 'include each other more than 10 deep; remove the loop'),
])
def test_bad_flag_files_are_refused_in_one_line(contents, words, tmp_path, capsys):
    path = tmp_path / 'bad.flags'
    if contents is not None:
        path.write_text(contents.replace('%s', str(path)))
    words = words.replace('%s', str(path))
    with pytest.raises(config.ConfigError) as refused:
        config.parse(['--flagfile', str(path)])
    assert words in str(refused.value)
    assert run_main(['--flagfile', str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith('error: ') and err.count('\n') == 1 and words in err


def test_flagfile_without_a_name():
    with pytest.raises(config.ConfigError, match='--flagfile needs a file name'):
        config.parse(['--flagfile'])
