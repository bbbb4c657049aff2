"""dist_version on a localhost cluster: a ps and 2 workers as processes, a worker killed, a restart.

Covers: synchronous steps across workers equal to one process on the combined batch, the chief alone
writing files, a dead worker stopping the chief (exit 5, PeerLost) with the resume command, and the
restart resuming from the chief's checkpoint with both workers ending on the same weights.

Timeouts are sized for a loaded 2-core machine: starting a task (TensorFlow import, graph, gRPC) can
take a minute there, so startup and session waits get STARTUP_TIMEOUT; only the test of a lost
worker keeps a short --sync_timeout, which is what it measures, so the suite stays fast.
"""
import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, write_dataset

import config
import utils
from dist_version import dist_config
from dist_version.cluster import ClusterStalled, Lockstep, weights_fingerprint, worker_permutation
from runtime import checkpoints, training

SCRIPT = ['-m', 'dist_version.distributed_train']  # run from the repository root
SYNC_TIMEOUT = 12  # seconds a worker waits for a lost peer in the failure test: short, to stay fast
STARTUP_TIMEOUT = 120  # seconds for tasks to start and meet on a loaded 2-core machine


def free_ports(count):
    sockets = [socket.socket() for _ in range(count)]
    try:
        for s in sockets:
            s.bind(('127.0.0.1', 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


class Cluster:
    """Starts tasks as subprocesses with output in files; kill_all() in a finally never leaves one behind."""

    def __init__(self, folder, common_args):
        self.folder, self.common_args, self.procs = folder, common_args, []

    def start(self, name, job, index, *args):
        log = open(self.folder / (name + '.log'), 'w')
        env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', PYTHONUNBUFFERED='1')
        proc = subprocess.Popen([sys.executable] + SCRIPT + self.common_args + list(args)
                                + ['--job_name', job, '--task_index', str(index)],
                                cwd=str(ROOT), env=env, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        self.procs.append(proc)
        return proc

    def log(self, name):
        return (self.folder / (name + '.log')).read_text()

    def kill_all(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
        self.procs = []


def wait_for(condition, timeout, what):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if condition():
            return
        time.sleep(0.2)
    raise AssertionError('timed out after %ss waiting for %s' % (timeout, what))


def checkpoint_step(logdir):
    latest = tf.train.latest_checkpoint(str(logdir))
    return int(latest.rsplit('-', 1)[1]) if latest else 0


def model_weights(checkpoint):
    reader = tf.train.load_checkpoint(checkpoint)
    names = [n for n in reader.get_variable_to_shape_map()
             if not n.endswith(('/Adam', '/Adam_1')) and n not in ('global_step', 'beta1_power', 'beta2_power')]
    return {n: reader.get_tensor(n) for n in names}


@pytest.mark.slow
def test_two_workers_lose_one_then_resume_in_step(tmp_path):
    # 48 - 40 validation = 8 training images: 2 steps of batch 4 per epoch, a checkpoint every epoch.
    data = write_dataset(tmp_path / 'data', num_train=48, num_test=20)
    ps, w0, w1 = ('127.0.0.1:%d' % p for p in free_ports(3))
    common = ['--ps_hosts', ps, '--worker_hosts', '%s,%s' % (w0, w1), '--data_dir', str(data),
              '--verify_data=False', '--val_size', '40', '--batch_size_per_gpu', '4', '--eval_batch_size', '40',
              '--train_sum_freq', '1', '--val_sum_freq', '1000', '--save_freq', '1', '--thread_per_gpu', '1',
              '--sync_timeout', str(SYNC_TIMEOUT)]
    # Each worker has its own output folders, as on separate machines.
    chief_dirs = ['--logdir', str(tmp_path / 'chief' / 'logdir'), '--results', str(tmp_path / 'chief' / 'results')]
    other_dirs = ['--logdir', str(tmp_path / 'w1' / 'logdir'), '--results', str(tmp_path / 'w1' / 'results')]
    chief_logdir = tmp_path / 'chief' / 'logdir'
    cluster = Cluster(tmp_path, common)
    try:
        # 1. Worker 1 dies after the chief's first checkpoint: the chief stops, naming the checkpoint.
        cluster.start('ps_1', 'ps', 0, '--max_steps', '1000', *chief_dirs)
        chief = cluster.start('chief_1', 'worker', 0, '--max_steps', '1000', *chief_dirs)
        other = cluster.start('worker1_1', 'worker', 1, '--max_steps', '1000', *other_dirs)
        wait_for(lambda: checkpoint_step(chief_logdir) >= 2 or chief.poll() is not None, 3 * STARTUP_TIMEOUT,
                 'a first checkpoint')
        other.send_signal(signal.SIGKILL)
        assert chief.wait(timeout=SYNC_TIMEOUT + 30) == 5, cluster.log('chief_1')
        error = cluster.log('chief_1').strip().split('\n')[-1]
        saved = checkpoint_step(chief_logdir)
        assert saved >= 2 and saved % 2 == 0
        # Either the chief waited out the timeout, or it got the dead worker's leftover token.
        assert error.startswith('error: worker 0: '), error
        assert ('no progress for %gs' % SYNC_TIMEOUT in error or "without every worker's gradient" in error), error
        assert 'a worker or the parameter server is gone' in error
        assert ('the last checkpoint is %s' % tf.train.latest_checkpoint(str(chief_logdir))) in error
        assert 'restart every task (ps included) with its same command' in error
        cluster.kill_all()  # the ps too: it would keep the half-done step of the dead run

        # 2. Same commands again (with the end two steps past the checkpoint): both resume there.
        end = saved + 2
        patient = ['--sync_timeout', str(STARTUP_TIMEOUT)]  # no peer is lost now: room to start
        cluster.start('ps_2', 'ps', 0, '--max_steps', str(end), *chief_dirs, *patient)
        chief = cluster.start('chief_2', 'worker', 0, '--max_steps', str(end), *chief_dirs, *patient)
        other = cluster.start('worker1_2', 'worker', 1, '--max_steps', str(end), *other_dirs, *patient)
        assert chief.wait(timeout=3 * STARTUP_TIMEOUT) == 0, cluster.log('chief_2')
        assert other.wait(timeout=STARTUP_TIMEOUT) == 0, cluster.log('worker1_2')
        assert 'resuming from step %d' % saved in cluster.log('chief_2')
        worker_log = cluster.log('worker1_2')
        assert 'worker 1: joined at step %d of %d' % (saved, end) in worker_log
        # Synchronous: the global step advanced once per step of each worker.
        assert re.findall(r'worker 1: step (\d+)', worker_log) == [str(s) for s in range(saved + 1, end + 1)]
        fingerprint = re.search(r'done at step %d; weights fingerprint (\w+)' % end, worker_log).group(1)
    finally:
        cluster.kill_all()

    # Worker 1 ends on the very weights the chief saved at the last step.
    final = tf.train.latest_checkpoint(str(chief_logdir))
    assert final.endswith('model.ckpt-%d' % end)
    weights = model_weights(final)
    assert len(weights) == 11
    assert weights_fingerprint(weights) == fingerprint
    assert weights_fingerprint(model_weights(chief_logdir / ('model.ckpt-%d' % saved))) != fingerprint
    # Only the chief writes: CSVs (rows up to the end, none repeated) and checkpoints.
    rows = (tmp_path / 'chief' / 'results' / 'loss.csv').read_text().split('\n')[1:-1]
    assert [int(r.split(',')[0]) for r in rows] == list(range(1, end + 1))
    assert not (tmp_path / 'w1').exists()


def test_lockstep_refuses_a_step_without_every_worker(tmp_path):
    cfg, task = dist_config.parse(['--ps_hosts', 'p:1', '--worker_hosts', 'w:1,w:2', '--job_name', 'worker',
                                   '--logdir', str(tmp_path / 'logdir')], environ={})
    lockstep = Lockstep(cfg, task)
    assert [lockstep.check(t) for t in (7, 8, 9)] == [7, 8, 9]  # joined at 7, then one update per step
    with pytest.raises(ClusterStalled, match="step 10 went on without every worker's gradient \\(token 9\\)") as info:
        lockstep.check(9)  # a leftover token of the update before
    assert 'no checkpoint was written yet' in str(info.value) and 'restart every task' in str(info.value)


@pytest.mark.slow
def test_synchronous_steps_equal_one_process_on_the_combined_batch(tmp_path):
    # 48 - 40 validation = 8 training images: 2 steps of batch 4 per worker and epoch, a checkpoint
    # each epoch (steps 2 and 4). From the checkpoint of step 2, the cluster's steps 3 and 4 must be
    # those of one process whose batch of 8 is the chief's 4 images followed by worker 1's.
    data = write_dataset(tmp_path / 'data', num_train=48, num_test=20)
    ps, w0, w1 = ('127.0.0.1:%d' % p for p in free_ports(3))
    flags = ['--data_dir', str(data), '--verify_data=False', '--val_size', '40', '--eval_batch_size', '40',
             '--train_sum_freq', '1', '--val_sum_freq', '1000', '--save_freq', '1', '--max_steps', '4']
    chief_logdir = tmp_path / 'chief' / 'logdir'
    cluster = Cluster(tmp_path, flags + ['--ps_hosts', ps, '--worker_hosts', '%s,%s' % (w0, w1),
                                         '--batch_size_per_gpu', '4', '--thread_per_gpu', '1',
                                         '--sync_timeout', str(STARTUP_TIMEOUT)])
    try:
        cluster.start('ps', 'ps', 0, '--logdir', str(chief_logdir))
        chief = cluster.start('chief', 'worker', 0, '--logdir', str(chief_logdir),
                              '--results', str(tmp_path / 'chief' / 'results'))
        other = cluster.start('worker1', 'worker', 1, '--logdir', str(tmp_path / 'w1' / 'logdir'),
                              '--results', str(tmp_path / 'w1' / 'results'))
        assert chief.wait(timeout=3 * STARTUP_TIMEOUT) == 0, cluster.log('chief')
        assert other.wait(timeout=STARTUP_TIMEOUT) == 0, cluster.log('worker1')
    finally:
        cluster.kill_all()

    cfg = config.parse(flags + ['--batch_size', '8', '--num_threads', '1', '--logdir', str(tmp_path / 'one'),
                                '--results', str(tmp_path / 'one')])
    (train_x, train_y), _ = utils.load_train_val(str(data), 40, 'mnist', verify=False)
    epoch = 1  # steps 3 and 4
    chief_order = worker_permutation(len(train_x), cfg.seed, epoch, 0)
    other_order = worker_permutation(len(train_x), cfg.seed, epoch, 1)
    combined = np.concatenate([np.concatenate([chief_order[k:k + 4], other_order[k:k + 4]]) for k in (0, 4)])
    parts = training.build_train_graph(cfg)
    variables = parts.graph.get_collection(tf.compat.v1.GraphKeys.GLOBAL_VARIABLES)
    with tf.compat.v1.Session(graph=parts.graph) as sess:
        checkpoints.restore_exactly(sess, parts.saver, str(chief_logdir / 'model.ckpt-2'), variables)
        parts.train_input.initialize(sess, train_x, train_y, combined)
        for _ in range(2):
            sess.run(parts.train_op)
        one_process = dict(zip([v.op.name for v in variables], sess.run(variables)))
    assert one_process['global_step'] == 4
    cluster_weights = tf.train.load_checkpoint(str(chief_logdir / 'model.ckpt-4'))
    compared = [name for name in one_process if name != 'global_step']
    assert any(name.endswith('/Adam') for name in compared) and 'digit_caps/W' in compared
    far = [name for name in compared
           if not np.allclose(cluster_weights.get_tensor(name), one_process[name], rtol=1e-5, atol=1e-5)]
    assert not far, 'the cluster took other steps than one process on the combined batch: %s' % far
    # And the steps did move the weights: the comparison is not of two untouched copies.
    start = tf.train.load_checkpoint(str(chief_logdir / 'model.ckpt-2')).get_tensor('digit_caps/W')
    assert not np.allclose(start, one_process['digit_caps/W'], rtol=1e-5, atol=1e-5)
