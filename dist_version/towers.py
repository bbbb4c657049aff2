"""Data-parallel towers: one CapsNet copy per device on shared variables, gradients averaged, one step.

The layout of the TF1 cifar10 multi-GPU example: the input pipeline yields one batch of
num_towers x batch_size_per_gpu images, each tower takes its slice, the variables live in one place
(the CPU of this machine, or the parameter-server job of a cluster) and the optimizer applies the
mean of the tower gradients once. Because the losses are batch means, the mean of the gradients of
N equal slices is the gradient of the whole batch: N towers take the same step as one device would.
"""
import dataclasses
import types

import tensorflow as tf

import capsNet
import utils
from config import ConfigError
from runtime import checkpoints, session

tf1 = tf.compat.v1


@dataclasses.dataclass(frozen=True)
class Placement:
    """Where things run. Defaults: one machine, variables on its CPU."""
    tower_devices: tuple                 # one model copy per entry, e.g. ('/gpu:0', '/gpu:1')
    variable_device: str = '/cpu:0'      # '/job:ps' in a cluster (tasks picked round-robin)
    host_device: str = '/cpu:0'          # input pipeline, gradient averaging, saver
    cluster: object = None               # tf1.train.ClusterSpec when variables live on a ps job
    num_workers: int = 1                 # > 1: gradients of all workers are averaged too (synchronous)
    cpu_copies: int = 0                  # logical CPU devices the session must create (towers on CPU)


def local_placement(num_towers, worker_prefix=''):
    """Towers on this machine's GPUs, or on CPU copies when it has none."""
    gpus = tf.config.list_physical_devices('GPU')
    if gpus:
        if len(gpus) < num_towers:
            raise ConfigError('--num_gpu=%d but this machine has %d GPU(s); lower --num_gpu'
                              % (num_towers, len(gpus)))
        devices = tuple('%s/device:GPU:%d' % (worker_prefix, i) for i in range(num_towers))
        return Placement(devices, host_device=worker_prefix + '/device:CPU:0')
    # No GPU: the session splits the host into num_towers logical CPUs, so placement and the
    # gradient averaging are exercised exactly as with GPUs (speed, of course, does not scale).
    devices = tuple('%s/device:CPU:%d' % (worker_prefix, i) for i in range(num_towers))
    return Placement(devices, host_device=worker_prefix + '/device:CPU:0', cpu_copies=num_towers)


def _device_setter(placement, compute_device):
    """Variables to placement.variable_device, every other op to compute_device."""
    if placement.cluster is not None:
        return tf1.train.replica_device_setter(cluster=placement.cluster, worker_device=compute_device)
    return tf1.train.replica_device_setter(ps_tasks=1, ps_device=placement.variable_device,
                                           worker_device=compute_device)


def average_gradients(tower_grads_and_vars):
    """[[(grad, var)] per tower] -> [(mean grad, var)]; towers list the variables in the same order."""
    averaged = []
    for pairs in zip(*tower_grads_and_vars):
        var = pairs[0][1]
        grads = [g for g, _ in pairs if g is not None]
        if not grads:
            averaged.append((None, var))
            continue
        averaged.append((tf.add_n(grads) / float(len(grads)), var))
    return averaged


def build_tower_graph(cfg, placement):
    """The namespace training.train expects (see training.build_train_graph), built with towers.

    cfg.batch_size is the batch of all towers together (num_gpu x batch_size_per_gpu).
    Extra fields: towers (the tower models), tower_grads_and_vars, grads_and_vars (averaged),
    session_config (what open_session gives training.train), and with several workers sync_optimizer
    (tf1.train.SyncReplicasOptimizer) and ready_op, which a non-chief worker waits on.
    """
    num_towers = len(placement.tower_devices)
    if cfg.batch_size % num_towers:
        raise ConfigError('batch %d does not split into %d towers' % (cfg.batch_size, num_towers))
    from runtime.training import input_options  # the same input shapes as one device's training
    spec, shapes = input_options(cfg)
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(cfg.seed)
        model_config = session.model_config(cfg)
        with tf1.device(_device_setter(placement, placement.host_device)):
            global_step = tf1.train.get_or_create_global_step()
            train_input = utils.InputPipeline(cfg.batch_size, True, cfg.num_threads, 'train_input',
                                              shift_pixels=cfg.shift_pixels, seed=cfg.seed, random_crop=True,
                                              **shapes)
            eval_input = utils.InputPipeline(cfg.eval_batch_size, False, cfg.num_threads, 'eval_input', **shapes)
            image_slices = tf.split(train_input.images, num_towers)  # num_towers x [B/N, H, W, C]
            label_slices = tf.split(train_input.labels, num_towers)  # num_towers x [B/N]
            optimizer = capsNet.build_optimizer(model_config, global_step)
            sync_optimizer = None
            if placement.num_workers > 1:
                # Each step waits for one gradient from every worker and applies their mean, so W
                # workers step like one machine with W times the batch.
                sync_optimizer = tf1.train.SyncReplicasOptimizer(
                    optimizer, replicas_to_aggregate=placement.num_workers,
                    total_num_replicas=placement.num_workers)

        towers, tower_grads = [], []
        for i, device in enumerate(placement.tower_devices):
            with tf1.device(_device_setter(placement, device)), tf1.name_scope('tower_%d' % i):
                # Variable names stay conv1/..., digit_caps/W: the checkpoints are main.py's.
                model = capsNet.CapsNet(image_slices[i], label_slices[i], model_config,
                                        training=True, reuse=True if i else None, spec=spec)
                towers.append(model)
                tower_grads.append(optimizer.compute_gradients(model.total_loss,
                                                               colocate_gradients_with_ops=True))

        with tf1.device(_device_setter(placement, placement.host_device)):
            grads_and_vars = average_gradients(tower_grads)
            apply_with = sync_optimizer or optimizer
            train_op = apply_with.apply_gradients(grads_and_vars, global_step=global_step)
            mean = _tower_mean(towers)
            summary = capsNet.train_summaries(mean)
        with tf1.device(_device_setter(placement, placement.tower_devices[0])):
            eval_model = capsNet.CapsNet(eval_input.images, eval_input.labels, model_config,
                                         training=False, reuse=True, spec=spec)
        with tf1.device(placement.host_device):
            saver = tf1.train.Saver(max_to_keep=cfg.keep_checkpoints)
            best_saver = checkpoints.weights_saver(graph)  # training.train's model selection (logdir/best/)
        parts = types.SimpleNamespace(
            graph=graph, global_step=global_step, train_input=train_input, eval_input=eval_input,
            train_op=train_op, loss=mean.total_loss, accuracy=mean.accuracy, summary=summary,
            eval_model=eval_model, saver=saver, best_saver=best_saver, towers=towers, grads_and_vars=grads_and_vars,
            tower_grads_and_vars=tower_grads, sync_optimizer=sync_optimizer,
            session_config=session_config(placement, cfg))
        parts.init = tf1.global_variables_initializer()
        if sync_optimizer is not None:
            # A non-chief worker waits until the chief has initialised or restored these.
            parts.ready_op = tf1.report_uninitialized_variables()
            # Only non-chief workers wait on these; keep TF from warning that the chief never runs them.
            parts.ready_op.mark_used()
            sync_optimizer.ready_for_local_init_op.mark_used()
    graph.finalize()
    return parts


def open_session(parts, cfg):
    """training.train's session for tower parts: main.py's options plus the CPU copies towers need."""
    return tf1.Session(graph=parts.graph, config=parts.session_config)


def _tower_mean(towers):
    """What the loop logs: losses and accuracy over all towers (equal slices: plain means);
    the reconstruction images come from tower 0."""
    def mean(name):
        return tf.add_n([getattr(t, name) for t in towers]) / float(len(towers))
    return types.SimpleNamespace(
        margin_loss=mean('margin_loss'), reconstruction_loss=mean('reconstruction_loss'),
        total_loss=mean('total_loss'), accuracy=mean('accuracy'),
        images=towers[0].images, reconstructions=towers[0].reconstructions, spec=towers[0].spec)


def session_config(placement, cfg=None):
    """main.py's session options (with cfg: its speed flags), plus the CPU copies towers need."""
    sess_config = session.session_config(cfg)
    if placement.cpu_copies:
        sess_config.device_count['CPU'] = placement.cpu_copies
    return sess_config
