"""Multi-worker training on TensorFlow's distributed runtime: parameter server + between-graph replication.

Every task runs `tf.distribute.Server` on its host:port of the cluster. Each worker builds its own
copy of the graph (between-graph replication): variables on the ps job, towers on the worker's
devices, gradients averaged across towers and then across workers by
tf1.train.SyncReplicasOptimizer, so one global step = one update from the mean gradient of every
worker's batch. Worker 0 (the chief) initialises or restores the variables and runs the loop of
main.py (CSVs, summaries, checkpoints, validation); other workers only train and write nothing.
"""
import hashlib
import threading

import numpy as np
import tensorflow as tf

import utils
from dist_version import towers
from runtime import training
from runtime.errors import PeerLost, UserError

tf1 = tf.compat.v1

# The chief's thread applying the averaged gradients must outlive any step, validation included.
_APPLY_TIMEOUT_MS = 7 * 24 * 3600 * 1000


class ClusterStalled(PeerLost):
    """A worker or the parameter server stopped answering (exit code 5)."""


def placement_for(cfg, task):
    local = towers.local_placement(cfg.num_gpu, '/job:worker/task:%d' % task.task_index)
    return towers.Placement(local.tower_devices, variable_device='/job:ps', host_device=local.host_device,
                            cluster=tf1.train.ClusterSpec(task.as_cluster_dict()),
                            num_workers=task.num_workers, cpu_copies=local.cpu_copies)


def start_server(cfg, task):
    """This task's gRPC server; on a machine without GPUs it also splits the CPU into towers."""
    server_config = tf1.ConfigProto(allow_soft_placement=True)
    if task.job_name == 'worker' and not tf.config.list_physical_devices('GPU'):
        server_config.device_count['CPU'] = cfg.num_gpu
    return tf.distribute.Server(tf1.train.ClusterSpec(task.as_cluster_dict()), job_name=task.job_name,
                                task_index=task.task_index, config=server_config, start=True)


def run_ps(cfg, task):
    server = start_server(cfg, task)
    print('ps %d serving %s; stop it with Ctrl-C once the workers are done'
          % (task.task_index, task.ps_hosts[task.task_index]), flush=True)
    server.join()


def worker_session_config(cfg, placement, task):
    sess_config = towers.session_config(placement, cfg)
    # Talk to the ps job and ourselves only: workers do not wait for each other to start.
    sess_config.device_filters.extend(['/job:ps', '/job:worker/task:%d' % task.task_index])
    # A step blocks until every worker has sent its gradient; a dead worker must not hang us forever.
    sess_config.operation_timeout_in_ms = int(cfg.sync_timeout * 1000)
    return sess_config


def _stalled(cfg, task, reason):
    latest = tf.train.latest_checkpoint(cfg.logdir) if task.is_chief else None
    where = ('the last checkpoint is %s' % latest if latest else
             'no checkpoint was written yet' if task.is_chief else 'the chief keeps the checkpoints')
    return ClusterStalled(
        'worker %d: %s: a worker or the parameter server is gone; %s; restart every task (ps included) '
        'with its same command to resume from the chief\'s last checkpoint' % (task.task_index, reason, where))


def _timed_out(cfg, task, error):
    return _stalled(cfg, task, 'no progress for %gs (%s)' % (cfg.sync_timeout, type(error).__name__))


_LOST = (tf.errors.DeadlineExceededError, tf.errors.UnavailableError, tf.errors.AbortedError)


class Lockstep:
    """Checks that each step came back from an update made with every worker's gradient.

    The sync train op returns a token: the global step after the update it waited for, so the
    tokens a worker gets count up by one. SyncReplicasOptimizer hands out one token per worker and
    update; a worker killed while waiting can leave its token behind, and the next worker to take it
    would go on and send a second gradient for the same step: the update would be made without the
    dead worker. A token that does not count up means exactly that.
    """

    def __init__(self, cfg, task):
        self.cfg, self.task, self.step = cfg, task, None

    def check(self, token):
        token = int(token)
        if self.step is not None and token != self.step + 1:
            raise _stalled(self.cfg, self.task, 'step %d went on without every worker\'s gradient '
                                                '(token %d)' % (self.step + 1, token))
        self.step = token
        return token


class _ChiefSession(tf1.Session):
    """The chief's session for training.train: runs of the train op are checked by a Lockstep."""

    def __init__(self, target, graph, config, train_op, lockstep):
        super().__init__(target, graph=graph, config=config)
        self._train_op, self._lockstep = train_op, lockstep

    def run(self, fetches, *args, **kwargs):
        results = super().run(fetches, *args, **kwargs)
        if isinstance(fetches, (list, tuple)):
            # `is`, not `in`: == on tensors builds a comparison op.
            for fetch, result in zip(fetches, results):
                if fetch is self._train_op:
                    self._lockstep.check(result)
        return results


def run_chief(cfg, task):
    server = start_server(cfg, task)
    placement = placement_for(cfg, task)
    lockstep = Lockstep(cfg, task)
    applying = []  # the thread of _start_applying, once the session is ready

    def open_session(parts, cfg):
        return _ChiefSession(server.target, parts.graph, worker_session_config(cfg, placement, task),
                             parts.train_op, lockstep)

    def on_session_ready(sess, parts):
        lockstep.step = int(sess.run(parts.global_step))
        applying.append(_start_applying(sess, parts.sync_optimizer))

    try:
        return training.train(cfg, build_graph=lambda cfg: towers.build_tower_graph(cfg, placement),
                              open_session=open_session, on_session_ready=on_session_ready)
    except _LOST as e:
        raise _timed_out(cfg, task, e) from None
    finally:
        # train() has closed the session, which ends the thread's pending run; wait for it to return to
        # Python. A daemon thread still inside TensorFlow when the interpreter exits aborts the process
        # ('terminate called ... exception not rethrown', SIGABRT instead of our exit code).
        for thread in applying:
            thread.join(timeout=30)


def _start_applying(sess, sync_optimizer):
    """Chief only: set the gradient accumulators to the (restored) global step, then apply each
    step's mean gradient as soon as every worker has sent one; returns the applying thread."""
    sess.run(sync_optimizer.chief_init_op)
    apply_op = sync_optimizer.get_chief_queue_runner().enqueue_ops[0]
    options = tf1.RunOptions(timeout_in_ms=_APPLY_TIMEOUT_MS)

    def apply_forever():
        while True:
            try:
                sess.run(apply_op, options=options)
            except (tf.errors.CancelledError, RuntimeError):
                return  # the session closed: training is over
            except tf.errors.OpError as e:
                print('chief: applying gradients stopped: %s' % str(e).split('\n')[0], flush=True)
                return

    thread = threading.Thread(target=apply_forever, name='apply_gradients', daemon=True)
    thread.start()
    return thread


def worker_permutation(num_examples, seed, epoch, task_index):
    """Worker k's data order in an epoch: its own shuffle, so the workers' batches differ.
    The chief (k = 0) keeps main.py's order (utils.epoch_permutation)."""
    if task_index == 0:
        return utils.epoch_permutation(num_examples, seed, epoch)
    return np.random.RandomState([seed % (2 ** 32), epoch, task_index]).permutation(num_examples)


def run_worker(cfg, task):
    """A non-chief worker: waits for the chief's variables, trains in step with it, writes nothing."""
    server = start_server(cfg, task)
    placement = placement_for(cfg, task)
    train_data, _ = utils.load_train_val_data(cfg)
    train_x, train_y = train_data[:2]
    cfg.input_spec = utils.spec_record(utils.input_spec(cfg, train_data), train_data)  # as the chief's
    steps_per_epoch = len(train_x) // cfg.batch_size
    if steps_per_epoch == 0:
        raise UserError('--batch_size=%d is larger than the %d training images' % (cfg.batch_size, len(train_x)))
    total_steps = cfg.max_steps or cfg.epoch * steps_per_epoch
    parts = towers.build_tower_graph(cfg, placement)
    sync = parts.sync_optimizer
    manager = tf1.train.SessionManager(local_init_op=sync.local_step_init_op, ready_op=parts.ready_op,
                                       ready_for_local_init_op=sync.ready_for_local_init_op,
                                       graph=parts.graph, recovery_wait_secs=1)
    sess_config = worker_session_config(cfg, placement, task)
    try:
        sess = manager.wait_for_session(server.target, config=sess_config, max_wait_secs=cfg.sync_timeout)
        with sess:
            step = _train_worker(sess, parts, cfg, task, (train_x, train_y), steps_per_epoch, total_steps)
            fingerprint = weights_fingerprint(dict(zip(
                [v.op.name for v in parts.graph.get_collection(tf1.GraphKeys.TRAINABLE_VARIABLES)],
                sess.run(parts.graph.get_collection(tf1.GraphKeys.TRAINABLE_VARIABLES)))))
    except _LOST as e:
        raise _timed_out(cfg, task, e) from None
    print('worker %d: done at step %d; weights fingerprint %s' % (task.task_index, step, fingerprint),
          flush=True)
    return step


def _train_worker(sess, parts, cfg, task, data, steps_per_epoch, total_steps):
    train_x, train_y = data
    lockstep = Lockstep(cfg, task)
    step = lockstep.check(sess.run(parts.global_step))
    print('worker %d: joined at step %d of %d' % (task.task_index, step, total_steps), flush=True)
    for epoch, skip, epoch_end in training.epoch_spans(step, total_steps, steps_per_epoch):
        order = worker_permutation(len(train_x), cfg.seed, epoch, task.task_index)
        parts.train_input.initialize(sess, train_x, train_y, order, skip, epoch=epoch)
        while step < epoch_end:
            # Returns the token of the step just applied: the new global step.
            step = lockstep.check(sess.run(parts.train_op))
            if step % cfg.train_sum_freq == 0:
                print('worker %d: step %d' % (task.task_index, step), flush=True)
    return step


def weights_fingerprint(named_arrays):
    """sha256 of the weights by variable name: equal fingerprints mean bit-identical weights."""
    digest = hashlib.sha256()
    for name in sorted(named_arrays):
        digest.update(name.encode())
        digest.update(np.ascontiguousarray(named_arrays[name], dtype=np.float32).tobytes())
    return digest.hexdigest()[:16]
