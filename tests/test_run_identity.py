"""A run's files belong to it: checkpoints are found and rotated inside their own folder (a copied or
moved logdir resumes without touching the original), best/ keeps the weights only, and flags.json is
the run's identity, which a resume cannot change."""
import hashlib
import json
import os
import shutil
import subprocess
import sys

import pytest
import tensorflow as tf
from conftest import ROOT, run_main, scripted_validation, tiny_run_args

import config
from runtime import run_record
from runtime.errors import UserError


def fingerprint(folder):
    """{relative path: sha256} of every file below folder."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob('*')) if p.is_file()}


def steps_in(folder):
    return sorted(int(p.name[len('model.ckpt-'):-len('.index')]) for p in folder.glob('model.ckpt-*.index'))


def write_absolute_state_files(logdir):
    """The `checkpoint` files as the script wrote them before: absolute paths of this very folder."""
    for folder in (logdir, logdir / 'best'):
        steps = steps_in(folder)
        (folder / 'checkpoint').write_text(
            'model_checkpoint_path: "%s"\n' % (folder / ('model.ckpt-%d' % steps[-1]))
            + ''.join('all_model_checkpoint_paths: "%s"\n' % (folder / ('model.ckpt-%d' % s)) for s in steps))


def run_args(data, workdir, *extra):
    return tiny_run_args(data, workdir, '--keep_checkpoints', '2', '--save_freq', '1', *extra)


@pytest.mark.slow
@pytest.mark.parametrize('relative', [False, True])
def test_resuming_a_copy_leaves_the_original_byte_identical(small_data, tmp_path, monkeypatch, relative):
    monkeypatch.chdir(tmp_path)
    # 5 steps an epoch (small_data, batch 8): checkpoints at 5 and 10, validation at 3, 6, 9, 12, 15.
    scripted_validation(monkeypatch, {3: 0.5, 6: 0.6, 9: 0.7, 10: 0.7, 12: 0.9, 15: 0.95})
    orig = tmp_path / 'orig'
    orig_dir = 'orig' if relative else str(orig)
    assert run_main(run_args(small_data, orig_dir, '--max_steps', '10')) == 0
    assert steps_in(orig / 'logdir') == [5, 10] and steps_in(orig / 'logdir' / 'best') == [9]
    write_absolute_state_files(orig / 'logdir')  # what older runs have: it must not matter either
    before = fingerprint(orig)

    shutil.copytree(orig, tmp_path / 'copy')
    copy_dir = 'copy' if relative else str(tmp_path / 'copy')
    assert run_main(run_args(small_data, copy_dir, '--max_steps', '15')) == 0

    assert fingerprint(orig) == before
    copy_logdir = tmp_path / 'copy' / 'logdir'
    assert steps_in(copy_logdir) == [10, 15]  # the copy rotated its own checkpoints
    assert steps_in(copy_logdir / 'best') == [15]  # and replaced its own best
    # The state files now name checkpoints by file name, as TensorFlow resolves them in their folder.
    for folder in (copy_logdir, copy_logdir / 'best'):
        assert tf.train.latest_checkpoint(str(folder)) == str(folder / 'model.ckpt-15')
        assert str(tmp_path) not in (folder / 'checkpoint').read_text()
    # The original still evaluates its own best.
    assert run_main(run_args(small_data, orig_dir, '--is_training=False', '--checkpoint', 'best')) == 0


@pytest.mark.slow
def test_relative_logdir_finds_its_checkpoints_and_replaces_its_best(small_data, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    scripted_validation(monkeypatch, {3: 0.5, 5: 0.5, 6: 0.8, 9: 0.9, 10: 0.9})
    assert run_main(run_args(small_data, 'run', '--max_steps', '5')) == 0
    assert tf.train.latest_checkpoint('run/logdir') == 'run/logdir/model.ckpt-5'
    assert run_main(run_args(small_data, 'run', '--max_steps', '10')) == 0
    assert steps_in(tmp_path / 'run' / 'logdir' / 'best') == [9]  # step 3's best is gone, not leaked
    assert tf.train.latest_checkpoint('run/logdir/best') == 'run/logdir/best/model.ckpt-9'


@pytest.mark.slow
def test_best_keeps_the_weights_and_the_step_only(tiny_mnist, tmp_path):
    assert run_main(tiny_run_args(tiny_mnist, tmp_path, '--max_steps', '3')) == 0
    latest = dict(tf.train.list_variables(str(tmp_path / 'logdir' / 'model.ckpt-3')))
    best = dict(tf.train.list_variables(str(tmp_path / 'logdir' / 'best' / 'model.ckpt-3')))
    assert any('Adam' in name for name in latest)
    assert not any('Adam' in name or name.startswith('beta') for name in best), sorted(best)
    assert best['digit_caps/W'] == [1152, 10, 8, 16] and 'global_step' in best
    assert set(best) < set(latest)


@pytest.mark.slow
def test_resume_with_other_model_flags_is_refused_and_changes_nothing(tiny_mnist, tmp_path, capfd):
    assert run_main(tiny_run_args(tiny_mnist, tmp_path, '--max_steps', '3')) == 0
    logdir = tmp_path / 'logdir'
    before = fingerprint(tmp_path)
    capfd.readouterr()
    assert run_main(tiny_run_args(tiny_mnist, tmp_path, '--max_steps', '6', '--iter_routing', '1',
                                  '--leaky_routing')) == 2
    err = capfd.readouterr().err.strip()
    assert err.count('\n') == 0 and len(err) < 300, err
    assert '--iter_routing=3 (now 1)' in err and '--leaky_routing=False (now True)' in err
    assert 'new --logdir' in err
    assert '--max_steps' not in err and '--digit_caps_bias' not in err  # only what differs
    assert fingerprint(tmp_path) == before

    # A finished run asked for fewer steps trains nothing and rewrites nothing.
    assert run_main(tiny_run_args(tiny_mnist, tmp_path, '--max_steps', '3')) == 0
    assert fingerprint(tmp_path) == before
    # A change of data order is refused the same way.
    assert run_main(tiny_run_args(tiny_mnist, tmp_path, '--max_steps', '6', '--seed', '7')) == 2
    assert '--seed=1234 (now 7)' in capfd.readouterr().err
    assert fingerprint(tmp_path) == before

    # Flags that may change are recorded per session; flags.json stays as the run began.
    flags_before = (logdir / 'flags.json').read_bytes()
    assert run_main(tiny_run_args(tiny_mnist, tmp_path, '--max_steps', '6', '--val_sum_freq', '2')) == 0
    assert (logdir / 'flags.json').read_bytes() == flags_before
    sessions = json.loads((logdir / 'sessions.json').read_text())
    assert [(s['from_step'], s['flags']['max_steps'], s['flags']['val_sum_freq']) for s in sessions] == [
        (0, 3, 3), (3, 6, 2)]
    assert 'iter_routing' not in sessions[0]['flags']  # identity flags live in flags.json only


@pytest.mark.slow
def test_a_resume_starts_quietly(tiny_mnist, tmp_path):
    def main(*extra):
        return subprocess.run([sys.executable, 'main.py'] + tiny_run_args(tiny_mnist, tmp_path, *extra),
                              cwd=str(ROOT), capture_output=True, text=True, timeout=600,
                              env={k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'})
    assert main('--max_steps', '2').returncode == 0
    resumed = main('--max_steps', '4')
    assert resumed.returncode == 0, resumed.stderr
    assert 'resuming from step 2' in resumed.stdout
    for noise in ('WARNING:tensorflow', 'deprecated', 'oneDNN custom operations', 'cuda'):
        assert noise not in resumed.stderr, resumed.stderr


def test_a_damaged_flags_json_is_one_line_naming_it(tmp_path):
    (tmp_path / 'flags.json').write_text('{"iter_routing": 3,')  # cut short
    cfg = config.parse(['--logdir', str(tmp_path)])
    with pytest.raises(UserError) as refused:
        run_record.check_resume(cfg, has_checkpoint=True)
    message = str(refused.value)
    assert message == ('cannot read %s (JSONDecodeError); restore it from a copy of the run, or delete it (a '
                       'deleted flags.json is written anew from the flags given)' % (tmp_path / 'flags.json'))
    run_record.check_resume(cfg, has_checkpoint=False)  # a fresh start reads no record


def test_only_identity_flags_count_as_differences():
    recorded = {'iter_routing': 3, 'seed': 1, 'epoch': 50, 'data_dir': 'a', 'learning_rate': 0.001}
    cfg = config.parse(['--iter_routing', '1', '--seed', '1', '--epoch', '5', '--data_dir', 'b'])
    assert run_record.differences(recorded, cfg) == [('iter_routing', 3, 1)]
    assert {'batch_size', 'seed', 'shift_pixels', 'val_size', 'dataset', 'digit_caps_bias'} <= set(
        run_record.IDENTITY_FLAGS)
    assert not {'epoch', 'max_steps', 'time_limit', 'precision', 'logdir'} & set(run_record.IDENTITY_FLAGS)
