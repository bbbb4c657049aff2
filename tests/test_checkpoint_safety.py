"""Checkpoints stay usable: damaged ones are skipped, foreign ones refused, bad saves never replace good ones."""
import contextlib
import hashlib
import os
import resource
import shutil
import signal

import numpy as np
import pytest
import tensorflow as tf
from conftest import run_main, tiny_run_args

import capsNet
import config
from runtime import checkpoints, errors, inference

tf1 = tf.compat.v1


@pytest.fixture(scope='module')
def trained(small_data, tmp_path_factory):
    """A logdir trained with default model flags to step 10 (checkpoints 5 and 10); copy before changing."""
    work = tmp_path_factory.mktemp('trained')
    assert run_main(tiny_run_args(small_data, work, '--max_steps', '10')) == 0
    return work


def copy_of(trained, tmp_path):
    shutil.copytree(trained / 'logdir', tmp_path / 'logdir')
    return tmp_path / 'logdir'


def names(logdir):
    return [os.path.basename(p) for p in checkpoints.newest_first(str(logdir))]


def last_line(text):
    return text.rstrip('\n').split('\n')[-1]


@pytest.mark.slow
def test_unreadable_newest_checkpoint_falls_back_to_the_older_one(small_data, trained, tmp_path, capsys):
    logdir = copy_of(trained, tmp_path)
    data_file = logdir / 'model.ckpt-10.data-00000-of-00001'
    data_file.write_bytes(data_file.read_bytes()[:1000])  # as a full disk or a bad copy leaves it
    (logdir / 'model.ckpt-15.data-00000-of-00001.tempstate123').write_bytes(b'partial')  # a killed save

    assert run_main(tiny_run_args(small_data, tmp_path, '--is_training=False')) == 0
    captured = capsys.readouterr()
    assert 'warning: checkpoint %s cannot be read' % (logdir / 'model.ckpt-10') in captured.err
    assert 'falling back to model.ckpt-5' in captured.err and 'at step 5 of' in captured.out

    # Training resumes from the readable one, rewrites step 10 and clears the killed save's leftovers.
    assert run_main(tiny_run_args(small_data, tmp_path, '--max_steps', '10')) == 0
    assert 'resuming from step 5' in capsys.readouterr().out
    assert names(logdir) == ['model.ckpt-10', 'model.ckpt-5']
    assert tf.train.load_checkpoint(str(logdir / 'model.ckpt-10')).get_tensor('global_step') == 10
    assert not list(logdir.glob('*.tempstate*'))


@pytest.mark.slow
def test_no_readable_checkpoint_is_a_one_line_error(small_data, trained, tmp_path, capsys):
    logdir = copy_of(trained, tmp_path)
    for index_file in logdir.glob('*.index'):
        index_file.write_bytes(b'\0' * 64)
    for flags in (['--is_training=False'], []):
        code = run_main(tiny_run_args(small_data, tmp_path, *flags))
        err = capsys.readouterr().err
        assert code != 0 and last_line(err).startswith('error: no readable checkpoint in %s' % logdir), err
        assert 'Traceback' not in err
    assert names(logdir) == ['model.ckpt-10', 'model.ckpt-5']  # nothing was overwritten or deleted


@pytest.mark.slow
def test_checkpoint_found_after_the_logdir_was_moved(small_data, trained, tmp_path, capsys):
    # Moved, with a `checkpoint` file naming its old folder by absolute path (as older versions wrote it).
    before = tmp_path / 'before' / 'logdir'
    shutil.copytree(trained / 'logdir', before)
    (before / 'checkpoint').write_text('model_checkpoint_path: "%s"\n' % (before / 'model.ckpt-10'))
    logdir = tmp_path / 'logdir'
    shutil.move(str(before), str(logdir))
    assert run_main(tiny_run_args(small_data, tmp_path, '--is_training=False')) == 0
    assert 'at step 10 of %s' % (logdir / 'model.ckpt-10') in capsys.readouterr().out
    # It also resumes there, and its next save names the checkpoints where they now are.
    assert run_main(tiny_run_args(small_data, tmp_path, '--max_steps', '15')) == 0
    assert names(logdir) == ['model.ckpt-15', 'model.ckpt-10', 'model.ckpt-5']
    assert tf.train.latest_checkpoint(str(logdir)) == str(logdir / 'model.ckpt-15')


@pytest.mark.slow
def test_evaluation_routes_as_the_run_was_trained_whatever_the_command_line_says(small_data, trained, tmp_path,
                                                                                capsys):
    logdir = copy_of(trained, tmp_path)
    assert run_main(tiny_run_args(small_data, tmp_path, '--is_training=False', '--iter_routing', '1')) == 0
    assert 'at step 10' in capsys.readouterr().out
    given = config.parse(tiny_run_args(small_data, tmp_path, '--iter_routing', '1'))
    # flags.json decides: the model routes 3 times, as trained, not once as the command line asks.
    with inference.load_model(str(logdir), 'latest', fallback_flags=given) as trained_model:
        assert trained_model.model.config.iter_routing == 3
    # Without flags.json the command line's flags build the model (said in a note): then it routes once.
    (logdir / 'flags.json').unlink()
    with inference.load_model(str(logdir), 'latest', fallback_flags=given, warn=lambda m: None) as fallback:
        assert fallback.model.config.iter_routing == 1


@pytest.mark.slow
def test_checkpoint_of_another_architecture_is_refused_naming_the_difference(small_data, trained, tmp_path,
                                                                             capsys):
    logdir = copy_of(trained, tmp_path)
    flags_before = (logdir / 'flags.json').read_text()
    # Refused by the run's identity before any graph is built, naming only the flag that differs.
    code = run_main(tiny_run_args(small_data, tmp_path, '--digit_caps_bias=True'))
    err = capsys.readouterr().err
    assert code == 2 and 'Traceback' not in err
    assert last_line(err) == ('error: %s holds a run trained with --digit_caps_bias=False (now True); resume it '
                              'with those flags, or give a new --logdir to train another run' % logdir)
    assert (logdir / 'flags.json').read_text() == flags_before  # the refused run kept the record
    # Without flags.json, the checkpoint's own shapes refuse it, naming the variable.
    (logdir / 'flags.json').unlink()
    assert run_main(tiny_run_args(small_data, tmp_path, '--digit_caps_bias=True')) == 1
    line = last_line(capsys.readouterr().err)
    assert line.startswith('error: checkpoint %s was made by a different model' % (logdir / 'model.ckpt-10'))
    assert 'digit_caps/biases is missing there' in line and 'rerun with the flags it was trained with' in line
    (logdir / 'flags.json').write_text(flags_before)
    # Testing builds the model from flags.json, so a stray architecture flag cannot break it.
    assert run_main(tiny_run_args(small_data, tmp_path, '--is_training=False', '--digit_caps_bias=True')) == 0
    # A flags.json that does not match its checkpoint is refused the same way.
    (logdir / 'flags.json').write_text(flags_before.replace('"digit_caps_bias": false', '"digit_caps_bias": true'))
    assert run_main(tiny_run_args(small_data, tmp_path, '--is_training=False')) != 0
    assert 'digit_caps/biases is missing there' in last_line(capsys.readouterr().err)


@pytest.mark.slow
def test_other_capsule_shape_is_refused(small_data, trained, tmp_path, capsys):
    # A checkpoint whose digit_caps/W has 8-D outputs instead of 16-D, all other names as ours.
    reader = tf.train.load_checkpoint(str(trained / 'logdir' / 'model.ckpt-10'))
    graph = tf.Graph()
    with graph.as_default():
        for name in reader.get_variable_to_shape_map():
            value = reader.get_tensor(name)
            if name == 'digit_caps/W':
                value = np.zeros([1152, 10, 8, 8], np.float32)
            tf1.Variable(value, name=name)
        saver = tf1.train.Saver()
        with tf1.Session() as sess:
            sess.run(tf1.global_variables_initializer())
            saver.save(sess, str(tmp_path / 'logdir' / 'model.ckpt'), global_step=10)

    code = run_main(tiny_run_args(small_data, tmp_path, '--is_training=False'))
    err = capsys.readouterr().err
    assert code != 0
    assert 'digit_caps/W is [1152, 10, 8, 8] there but [1152, 10, 8, 16] here' in last_line(err)


def poison_train_op(monkeypatch, poison):
    """Adds poison(model, global_step) to the loss the optimizer minimises (and the loop reports)."""
    build_train_op = capsNet.build_train_op

    def poisoned(model, global_step):
        model.total_loss = model.total_loss + poison(model, global_step)
        return build_train_op(model, global_step)

    monkeypatch.setattr(capsNet, 'build_train_op', poisoned)


@pytest.mark.slow
def test_nan_loss_stops_at_its_step_without_a_checkpoint(small_data, tmp_path, capsys, monkeypatch):
    # NaN from the 3rd step (global_step 2 while it runs); 10 steps would save at 5 and 10 if unchecked.
    poison_train_op(monkeypatch, lambda model, step: tf.where(step >= 2, np.float32(np.nan), np.float32(0)))
    code = run_main(tiny_run_args(small_data, tmp_path, '--max_steps', '10'))
    err = capsys.readouterr().err
    assert code == errors.NonFiniteLoss.exit_code
    assert last_line(err).startswith('error: loss is nan at step 3 (last checkpoint: step 0')
    assert names(tmp_path / 'logdir') == []
    assert 'nan' not in (tmp_path / 'results' / 'loss.csv').read_text()


@pytest.mark.slow
def test_nan_weights_behind_a_finite_loss_are_not_saved(small_data, tmp_path, capsys, monkeypatch):
    @tf.custom_gradient
    def zero_with_nan_gradient(x):
        return tf.zeros_like(x), lambda dy: dy * np.float32(np.nan)

    def nan_gradient_on_step_7(model, step):
        weights = tf1.trainable_variables()[0]
        # Adds 0 to the loss, which stays finite, but sends NaN into the weights' gradient.
        return tf.cond(step >= 6, lambda: zero_with_nan_gradient(tf.reduce_sum(weights)),
                       lambda: tf.constant(0.0))

    poison_train_op(monkeypatch, nan_gradient_on_step_7)
    code = run_main(tiny_run_args(small_data, tmp_path, '--max_steps', '7'))  # saves at 5 and 7
    err = capsys.readouterr().err
    assert code == checkpoints.NonFiniteWeights.exit_code
    assert last_line(err).startswith('error: weights became NaN or Inf by step 7 (conv1/weights')
    assert 'nothing saved, the last checkpoint is untouched' in last_line(err)
    assert names(tmp_path / 'logdir') == ['model.ckpt-5']


@contextlib.contextmanager
def file_size_limit(max_bytes):
    """Writes past max_bytes fail with EFBIG, as on a full disk (works as root, unlike chmod)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous_handler = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # EFBIG instead of being killed
    resource.setrlimit(resource.RLIMIT_FSIZE, (max_bytes, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous_handler)


def digest(paths):
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in paths}


@pytest.mark.slow
def test_failed_save_is_one_line_and_keeps_the_previous_checkpoint(small_data, tmp_path, capsys):
    assert run_main(tiny_run_args(small_data, tmp_path, '--max_steps', '5')) == 0
    logdir = tmp_path / 'logdir'
    before = digest(logdir.glob('model.ckpt-5.*'))
    with file_size_limit(10 * 2 ** 20):  # CSVs, events and flags fit; a 100 MB checkpoint does not
        code = run_main(tiny_run_args(small_data, tmp_path, '--max_steps', '10'))
    err = capsys.readouterr().err
    assert code != 0 and 'Traceback' not in err
    line = last_line(err)
    assert line.startswith('error: cannot write checkpoint %s-10 (File too large)' % (logdir / 'model.ckpt'))
    assert 'the previous one, model.ckpt-5, is intact' in line and 'free disk space' in line
    assert names(logdir) == ['model.ckpt-5'] and digest(logdir.glob('model.ckpt-5.*')) == before
    assert not [p for p in os.listdir(logdir) if 'tempstate' in p]
    assert tf.train.load_checkpoint(str(logdir / 'model.ckpt-5')).get_tensor('global_step') == 5


@pytest.mark.slow
def test_load_model_refuses_foreign_and_damaged_checkpoints_in_one_line(trained, tmp_path):
    logdir = copy_of(trained, tmp_path)  # a copy: best/checkpoint still names the original folder
    flags = (logdir / 'flags.json').read_text()
    (logdir / 'flags.json').write_text(flags.replace('"digit_caps_bias": false', '"digit_caps_bias": true'))
    for which in ('latest', 'best'):
        with pytest.raises(checkpoints.CheckpointError, match='digit_caps/biases is missing there'):
            inference.load_model(str(logdir), which)
    (logdir / 'flags.json').write_text(flags)
    best = checkpoints.newest_first(str(logdir / 'best'))[0]
    with inference.load_model(str(logdir), 'best') as model:
        assert model.checkpoint == best  # the copy's own file, not the original's
    with open(best + '.index', 'wb') as index_file:
        index_file.write(b'\0' * 64)
    with pytest.raises(checkpoints.CheckpointError, match='model.ckpt-\\d+ cannot be read'):
        inference.load_model(str(logdir), 'best')


@contextlib.contextmanager
def small_model_with_best(tmp_path, size=1000):
    """A session on a graph of one variable, the Saver of logdir/best/ and its BestCheckpoint, as in training."""
    graph = tf.Graph()
    with graph.as_default():
        weights = tf1.Variable(tf.ones([size]), name='weights')
        set_value = tf1.placeholder(tf.float32, [size])
        assign = tf1.assign(weights, set_value)
        saver = tf1.train.Saver([weights], max_to_keep=1)
    with tf1.Session(graph=graph) as sess:
        sess.run(weights.initializer)
        best = checkpoints.BestCheckpoint(saver, str(tmp_path / 'logdir'), [weights])
        yield sess, best, lambda value: sess.run(assign, {set_value: np.full([size], value, np.float32)})


def test_best_checkpoint_refuses_nan_weights_and_keeps_the_previous_best(tmp_path):
    with small_model_with_best(tmp_path) as (sess, best, set_weights):
        best_dir = tmp_path / 'logdir' / 'best'
        assert best.offer(sess, 4, 0.5)
        before = digest(best_dir.iterdir())
        set_weights(np.nan)
        with pytest.raises(checkpoints.NonFiniteWeights, match='weights became NaN or Inf by step 6 \\(weights\\)'):
            best.offer(sess, 6, 0.9)
        assert digest(best_dir.iterdir()) == before and (best.step, best.accuracy) == (4, 0.5)
        assert checkpoints.read_best_state(str(tmp_path / 'logdir')) == {'step': 4, 'val_acc': 0.5}


def test_best_checkpoint_write_error_is_one_line_and_keeps_the_previous_best(tmp_path):
    with small_model_with_best(tmp_path, size=2 ** 18) as (sess, best, set_weights):
        best_dir = tmp_path / 'logdir' / 'best'
        assert best.offer(sess, 4, 0.5)
        before = digest(best_dir.iterdir())
        set_weights(2.0)
        with file_size_limit(2 ** 19):
            with pytest.raises(checkpoints.CheckpointError) as refused:
                best.offer(sess, 6, 0.9)
        message = str(refused.value)
        assert '\n' not in message and message.startswith('cannot write checkpoint %s-6 (File too large)'
                                                          % (best_dir / 'model.ckpt'))
        assert 'the previous one, model.ckpt-4, is intact' in message
        assert digest(best_dir.iterdir()) == before  # nothing staged left behind, best.json unchanged
        assert tf.train.load_checkpoint(str(best_dir / 'model.ckpt-4')).get_tensor('weights')[0] == 1.0
        assert best.offer(sess, 8, 0.95)  # and the next save, with room again, replaces it
        assert names(best_dir) == ['model.ckpt-8']


def test_save_keeps_max_to_keep_and_the_state_file_names_the_newest(tmp_path):
    with small_model_with_best(tmp_path) as (sess, best, _):
        logdir = tmp_path / 'logdir'
        for step in (5, 10, 15):
            checkpoints.save(sess, best.saver, str(logdir / 'model.ckpt'), step, best.variables)
        assert names(logdir) == ['model.ckpt-15']  # max_to_keep=1, .meta files included
        assert sorted(p.name for p in logdir.iterdir()) == ['checkpoint', 'model.ckpt-15.data-00000-of-00001',
                                                            'model.ckpt-15.index', 'model.ckpt-15.meta']
        assert tf.train.latest_checkpoint(str(logdir)) == str(logdir / 'model.ckpt-15')
