"""Train CapsNet on several devices of one machine, or on a cluster of machines.

One machine, N GPUs (or N CPU copies when there is no GPU):
    python -m dist_version.distributed_train --num_gpu 2 --batch_size_per_gpu 64
Cluster (one command per task; worker 0 is the chief and writes logdir/ and results/):
    python -m dist_version.distributed_train --ps_hosts h0:2222 --worker_hosts h1:2222,h2:2222 --job_name ps --task_index 0
    python -m dist_version.distributed_train --ps_hosts h0:2222 --worker_hosts h1:2222,h2:2222 --job_name worker --task_index 0
    python -m dist_version.distributed_train --ps_hosts h0:2222 --worker_hosts h1:2222,h2:2222 --job_name worker --task_index 1
    (or the same three without the four cluster flags, each with its TF_CONFIG)
Test the result as any other run:
    python main.py --is_training=False --logdir logdir
All main.py flags work here too; see dist_version/README.md.
"""
import sys

from dist_version import dist_config
from runtime.errors import run_cli
from runtime.quiet_start import import_tensorflow_quietly

# The modules below load TensorFlow: they are imported once the flags are parsed (run and
# train_on_one_machine), so --help and a bad flag answer without it.


def train_on_one_machine(cfg):
    from dist_version import towers
    from runtime import training
    placement = towers.local_placement(cfg.num_gpu)
    print('towers on %s; variables on %s; batch %d = %d x %d'
          % (', '.join(placement.tower_devices), placement.variable_device, cfg.batch_size,
             cfg.num_gpu, cfg.batch_size_per_gpu), flush=True)
    return training.train(cfg, build_graph=lambda c: towers.build_tower_graph(c, placement),
                          open_session=towers.open_session)


def run(cfg, task):
    import_tensorflow_quietly()  # level 3 also hides the gRPC runtime's routine warnings
    from dist_version import cluster
    from evaluation import evaluate
    if not cfg.is_training:
        if task is not None and not task.is_chief:
            return None  # only the chief has the checkpoints
        return evaluate.evaluate(cfg)
    if task is None:
        return train_on_one_machine(cfg)
    if task.job_name == 'ps':
        return cluster.run_ps(cfg, task)
    if task.is_chief:
        return cluster.run_chief(cfg, task)
    return cluster.run_worker(cfg, task)


def main_cli(argv=None):
    def body():
        cfg, task = dist_config.parse(sys.argv[1:] if argv is None else argv)
        run(cfg, task)
    return run_cli(body)


if __name__ == '__main__':
    sys.exit(main_cli())
