"""Routing-iterations study: train and test one model per iter_routing, then one table.

    python -m tools.study_routing --steps 1000                  # iter_routing 1, 3, 5 -> results/routing_study.csv
    python -m tools.study_routing --steps 500 --iterations 1,2,3 --logdir runs/study --results runs/study

Every other flag is main.py's and applies to every run (same seed, data and batch size, so the
runs differ in routing only). Run k trains in LOGDIR/routing_study/iter_k with its CSVs in
RESULTS/routing_study/iter_k; a rerun resumes each of them and rewrites the table.
"""
import copy
import os
import sys
import time

import config
from runtime import files
from runtime.errors import run_cli
from runtime.quiet_start import import_tensorflow_quietly
from tools import plot

HEADER = 'iter_routing,steps,val_acc,test_acc,seconds'


def build_parser():
    p = config.build_parser('Train and test CapsNet once per routing-iteration count; one CSV table.',
                            'python -m tools.study_routing')
    p.add_argument('--steps', type=int, default=1000, help='training steps of every run')
    p.add_argument('--iterations', default='1,3,5', help='comma-separated iter_routing values to compare')
    return p


def parse_iterations(text):
    try:
        values = [int(v) for v in text.split(',') if v.strip()]
    except ValueError:
        values = []
    if not values or min(values) < 1:
        raise config.ConfigError('--iterations must be positive integers separated by commas, got %r' % text)
    return values


def run_one(cfg, iterations):
    """Trains (or resumes) and tests one setting; returns its table row."""
    from evaluation import evaluate  # these load TensorFlow: imported once the flags are known good
    from runtime import training
    run_cfg = copy.copy(cfg)
    run_cfg.iter_routing = iterations
    run_cfg.max_steps = cfg.steps
    run_cfg.is_training = True
    run_cfg.logdir = os.path.join(cfg.logdir, 'routing_study', 'iter_%d' % iterations)
    run_cfg.results = os.path.join(cfg.results, 'routing_study', 'iter_%d' % iterations)
    start = time.time()
    step = training.train(run_cfg)
    test_acc = evaluate.evaluate(run_cfg)
    seconds = time.time() - start
    _, val = plot.read_series(os.path.join(run_cfg.results, 'val_acc.csv'), 'val_acc')
    val_acc = val[-1] if len(val) else float('nan')
    return '%d,%d,%.6g,%.6g,%.1f' % (iterations, step, val_acc, test_acc, seconds)


def write_table(path, rows):
    files.atomic_write(path, '\n'.join([HEADER] + rows) + '\n')


def study(cfg):
    """Runs every setting of cfg.iterations; the table is rewritten after each, so it is never stale."""
    path = os.path.join(cfg.results, 'routing_study.csv')
    rows = []
    for iterations in parse_iterations(cfg.iterations):
        print('--- iter_routing=%d, %d steps ---' % (iterations, cfg.steps))
        rows.append(run_one(cfg, iterations))
        write_table(path, rows)
    print('%s\n%s\nwritten to %s' % (HEADER, '\n'.join(rows), path))
    return path


def run(argv=None):
    def body():
        cfg = config.parse(sys.argv[1:] if argv is None else argv, build_parser())
        if cfg.steps < 1:
            raise config.ConfigError('--steps must be at least 1, got %d' % cfg.steps)
        parse_iterations(cfg.iterations)  # refused here, before TensorFlow loads
        import_tensorflow_quietly()
        study(cfg)
    return run_cli(body)


if __name__ == '__main__':
    sys.exit(run())
