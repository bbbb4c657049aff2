"""Images per second of the tower graph for 1..N towers: the training step only, on synthetic data.

    python -m dist_version.bench_towers --towers 1,2 --batch_size_per_gpu 16 --steps 10

Weak scaling: each tower keeps its batch, so N towers process N times the images per step. On a
machine without GPUs the towers are logical CPU devices sharing the same cores: expect no speed-up
there; the figure that matters comes from a machine with N GPUs.
"""
import os
import sys
import time

import numpy as np

from dist_version import dist_config
from runtime import cli
from runtime.errors import run_cli
from runtime.quiet_start import import_tensorflow_quietly

# TensorFlow and the tower graph (dist_version.towers) are imported once the flags have parsed, so
# --help and a bad flag answer at once and without TensorFlow's start-up lines.


def images_per_second(num_towers, batch_size_per_gpu, steps, warmup=2):
    import tensorflow as tf
    from dist_version import towers
    cfg, _ = dist_config.parse(['--num_gpu', str(num_towers), '--batch_size_per_gpu', str(batch_size_per_gpu)],
                               environ={})
    parts = towers.build_tower_graph(cfg, towers.local_placement(num_towers))
    rng = np.random.default_rng(0)
    n = cfg.batch_size * (steps + warmup)
    images = rng.integers(0, 256, (n, 28, 28), dtype=np.uint8)
    labels = rng.integers(0, 10, n).astype(np.uint8)
    with tf.compat.v1.Session(graph=parts.graph, config=parts.session_config) as sess:
        sess.run(parts.init)
        parts.train_input.initialize(sess, images, labels)
        for _ in range(warmup):
            sess.run(parts.train_op)
        start = time.perf_counter()
        for _ in range(steps):
            sess.run(parts.train_op)
        elapsed = time.perf_counter() - start
    return cfg.batch_size * steps / elapsed


def build_parser():
    p = cli.command_parser(__doc__.split('\n')[0], 'python -m dist_version.bench_towers')
    p.add_argument('--towers', default='1,2', help='comma-separated tower counts to time')
    p.add_argument('--batch_size_per_gpu', type=int, default=16, help='batch of each tower')
    p.add_argument('--steps', type=int, default=10, help='timed steps (after 2 warm-up steps)')
    return p


def main(argv=None):
    return run_cli(lambda: measure(build_parser().parse_args(sys.argv[1:] if argv is None else argv)))


def measure(args):
    import_tensorflow_quietly()  # the flags are good: TensorFlow may load now, without its start-up lines
    import tensorflow as tf
    gpus = len(tf.config.list_physical_devices('GPU'))
    print('device: %s' % ('%d GPU(s)' % gpus if gpus else '%d CPU core(s), towers as logical CPUs' % os.cpu_count()))
    base = None
    for n in [int(t) for t in args.towers.split(',')]:
        rate = images_per_second(n, args.batch_size_per_gpu, args.steps)
        base = base or rate
        print('towers %d  batch %d x %d  %.1f images/s  (x%.2f of the first)'
              % (n, n, args.batch_size_per_gpu, rate, rate / base), flush=True)


if __name__ == '__main__':
    sys.exit(main())
