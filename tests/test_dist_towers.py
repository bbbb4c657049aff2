"""dist_version towers: 2 towers x batch 4 take the same step as 1 tower x batch 8, and train like main.py."""
import csv
import json

import numpy as np
import pytest
import tensorflow as tf
from conftest import make_digits, run_main, tiny_run_args

from config import ConfigError
from dist_version import dist_config, distributed_train, towers
from runtime import training

tf1 = tf.compat.v1


def tower_cfg(num_gpu, batch_size_per_gpu, *extra):
    cfg, task = dist_config.parse(['--num_gpu', str(num_gpu), '--batch_size_per_gpu', str(batch_size_per_gpu),
                                   '--thread_per_gpu', '1'] + list(extra), environ={})
    assert task is None
    return cfg


def one_step(cfg, images, labels, checkpoint_dir, start_from=None):
    """Builds the tower graph, starts from fresh weights (saved) or `start_from`, runs one train step.

    Returns (checkpoint of the start weights, {var: averaged grad}, {var: per-tower grads}, {var: new value}, parts).
    """
    parts = towers.build_tower_graph(cfg, towers.local_placement(cfg.num_gpu))
    names = [v.op.name for _, v in parts.grads_and_vars]
    with tf1.Session(graph=parts.graph, config=parts.session_config) as sess:
        if start_from is None:
            sess.run(parts.init)
            start_from = parts.saver.save(sess, str(checkpoint_dir / 'start'))
        else:
            parts.saver.restore(sess, start_from)
        parts.train_input.initialize(sess, images, labels)  # no shuffle: tower i gets slice i
        grads, tower_grads, _ = sess.run([[g for g, _ in parts.grads_and_vars],
                                          [[g for g, _ in tower] for tower in parts.tower_grads_and_vars],
                                          parts.train_op])
        weights = sess.run([v for _, v in parts.grads_and_vars])
    per_tower = {n: [t[k] for t in tower_grads] for k, n in enumerate(names)}
    return start_from, dict(zip(names, grads)), per_tower, dict(zip(names, weights)), parts


@pytest.mark.slow
def test_two_towers_take_the_same_step_as_one(tmp_path):
    images, labels = make_digits(8, seed=3)
    start, grads_1, _, weights_1, _ = one_step(tower_cfg(1, 8), images, labels, tmp_path)
    _, grads_2, halves, weights_2, parts = one_step(tower_cfg(2, 4), images, labels, tmp_path, start)

    assert sorted(grads_1) == sorted(grads_2) and len(grads_1) == 11  # conv1, primary, W, 3 x 2 decoder
    start_weights = tf.train.load_checkpoint(start)
    for name, full in grads_1.items():
        # CapsNet starts with tiny gradients (|v| ~ |s|^2 near 0): compare relative to each variable's scale.
        scale = np.abs(full).max()
        assert scale > 0, name
        np.testing.assert_allclose(grads_2[name], full, rtol=1e-5, atol=1e-5 * scale, err_msg=name)
        # The halves differ from the whole batch, so the check above could fail for a wrong average
        # (one tower's gradient only, or a sum).
        assert np.abs(halves[name][0] - full).max() > 1e-3 * scale, name
        np.testing.assert_allclose(weights_2[name], weights_1[name], rtol=0, atol=1e-5, err_msg=name)
        # Adam's first steps are ~1e-5 here, so 1e-5 on the weights alone says little: the updates
        # themselves must agree to 1% of their size.
        update_1 = weights_1[name] - start_weights.get_tensor(name)
        update_2 = weights_2[name] - start_weights.get_tensor(name)
        assert np.abs(update_1).max() > 0, name
        np.testing.assert_allclose(update_2, update_1, rtol=0, atol=1e-2 * np.abs(update_1).max(), err_msg=name)

    # Variables live once, on the CPU; tower 1 computes on the second device.
    ops = parts.graph.get_operations()
    variable_devices = {op.device for op in ops if op.type == 'VarHandleOp'}
    assert variable_devices == {'/device:CPU:0'}
    tower_1_devices = {op.device for op in ops if op.name.startswith('tower_1/') and op.type == 'Conv2D'}
    assert tower_1_devices == {'/device:CPU:1'}


@pytest.mark.slow
def test_tower_checkpoints_have_main_py_variable_names():
    cfg = tower_cfg(2, 4)
    tower_names = {v.op.name for v in towers.build_tower_graph(cfg, towers.local_placement(2))
                   .graph.get_collection(tf1.GraphKeys.GLOBAL_VARIABLES)}
    main_names = {v.op.name for v in training.build_train_graph(cfg).graph.get_collection(
        tf1.GraphKeys.GLOBAL_VARIABLES)}
    assert tower_names == main_names
    assert {'global_step', 'digit_caps/W', 'digit_caps/W/Adam', 'beta1_power'} <= tower_names


def read_csv(path):
    with open(path) as f:
        return list(csv.reader(f))


@pytest.mark.slow
def test_distributed_train_runs_main_loop_and_main_py_tests_it(tiny_mnist, tmp_path, capsys):
    base = tiny_run_args(tiny_mnist, tmp_path, '--num_gpu', '2', '--batch_size_per_gpu', '4')
    assert distributed_train.main_cli(base + ['--max_steps', '4']) == 0
    logdir, results = tmp_path / 'logdir', tmp_path / 'results'
    assert 'towers on /device:CPU:0, /device:CPU:1' in capsys.readouterr().out
    assert tf.train.latest_checkpoint(str(logdir)).endswith('model.ckpt-4')
    flags = json.loads((logdir / 'flags.json').read_text())
    assert flags['batch_size'] == 8 and flags['num_gpu'] == 2
    assert [r[0] for r in read_csv(results / 'loss.csv')] == ['step', '2', '4']
    assert [r[0] for r in read_csv(results / 'val_acc.csv')] == ['step', '3', '4']
    assert tf.train.latest_checkpoint(str(logdir / 'best'))  # model selection works with towers too

    # The plain script tests the towers' checkpoint (resuming is training.train's: the cluster test runs it).
    assert run_main(tiny_run_args(tiny_mnist, tmp_path, '--is_training=False')) == 0
    assert '/ 60) at step 4' in capsys.readouterr().out


def test_dist_flags_and_tf_config(monkeypatch):
    cfg, task = dist_config.parse(['--num_gpu', '3', '--batch_size_per_gpu', '16', '--thread_per_gpu', '2'],
                                  environ={})
    assert (cfg.batch_size, cfg.num_threads, task) == (48, 6, None)
    tf_config = json.dumps({'cluster': {'ps': ['a:1'], 'worker': ['b:1', 'c:1']},
                            'task': {'type': 'worker', 'index': 1}})
    _, task = dist_config.parse([], environ={'TF_CONFIG': tf_config})
    assert (task.ps_hosts, task.worker_hosts, task.task_index, task.is_chief, task.num_workers) == \
        (('a:1',), ('b:1', 'c:1'), 1, False, 2)
    # Flags win over TF_CONFIG.
    _, task = dist_config.parse(['--ps_hosts', 'p:1', '--worker_hosts', 'w:1', '--job_name', 'worker'],
                                environ={'TF_CONFIG': tf_config})
    assert task.worker_hosts == ('w:1',) and task.is_chief


@pytest.mark.parametrize('argv, environ, message', [
    (['--num_gpu', '0'], {}, '--num_gpu must be at least 1'),
    (['--worker_hosts', 'w:1', '--job_name', 'worker'], {}, 'needs a parameter server'),
    (['--ps_hosts', 'p:1', '--worker_hosts', 'w:1', '--job_name', 'chief'], {}, 'must be ps or worker'),
    (['--ps_hosts', 'p:1', '--worker_hosts', 'w:1', '--job_name', 'worker', '--task_index', '1'], {},
     'task index 1 is outside the 1 worker host(s)'),
    ([], {'TF_CONFIG': '{"cluster": {}}'}, 'TF_CONFIG is not'),
])
def test_bad_cluster_settings_are_one_line_errors(argv, environ, message):
    with pytest.raises(ConfigError, match=message.replace('(', r'\(').replace(')', r'\)')) as info:
        dist_config.parse(argv, environ=environ)
    assert '\n' not in str(info.value)
