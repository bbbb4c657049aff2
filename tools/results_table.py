"""The results table of run_seeds.sh runs: final and validation-selected test accuracy per run,
and mean +- sample standard deviation over runs.

    python -m tools.results_table runs/seeds/seed*

Each run folder holds logdir/ (checkpoints, best/best.json), results/ (val_acc.csv, test_acc.csv)
and run_info.txt (commit, cpu, load, command, train_wall_s). A test accuracy is the FIRST row of
test_acc.csv for that checkpoint's step: later re-evaluations of the same checkpoint never replace it.
"""
import csv
import json
import os
import re
import statistics
import sys


def read_info(run):
    info = {}
    path = os.path.join(run, 'run_info.txt')
    if os.path.exists(path):
        with open(path) as f:
            for line in f:
                key, _, value = line.strip().partition(' ')
                info[key] = value
    return info


def read_rows(path):
    if not os.path.exists(path):
        return []
    with open(path) as f:
        return [r for r in list(csv.reader(f))[1:] if len(r) >= 2]


def latest_step(logdir):
    path = os.path.join(logdir, 'checkpoint')
    if not os.path.exists(path):
        return None
    with open(path) as f:
        match = re.search(r'model_checkpoint_path: "[^"]*-(\d+)"', f.read())
    return int(match.group(1)) if match else None


def first_test_accuracy(rows, step):
    for row in rows:
        if int(row[0]) == step:
            return float(row[1])
    return None


def summarize_run(run):
    """One dict per run; None for figures the run does not have."""
    logdir, results = os.path.join(run, 'logdir'), os.path.join(run, 'results')
    val = read_rows(os.path.join(results, 'val_acc.csv'))
    tests = read_rows(os.path.join(results, 'test_acc.csv'))
    final = latest_step(logdir)
    best_path = os.path.join(logdir, 'best', 'best.json')
    best = None
    if os.path.exists(best_path):
        with open(best_path) as f:
            best = json.load(f)
    info = read_info(run)
    return {
        'run': os.path.basename(os.path.normpath(run)),
        'final_step': final,
        'final_val': float(val[-1][1]) if val and int(val[-1][0]) == final else None,
        'final_test': first_test_accuracy(tests, final) if final is not None else None,
        'best_step': best['step'] if best else None,
        'best_val': best['val_acc'] if best else None,
        'best_test': first_test_accuracy(tests, best['step']) if best else None,
        'wall_s': int(info['train_wall_s']) if 'train_wall_s' in info else None,
        'cpu': info.get('cpu', '?'),
        'load': info.get('load_at_start', '?'),
        'commit': info.get('commit', '?'),
    }


def percent(x):
    return '—' if x is None else '%.2f' % (100 * x)


def mean_sd(values):
    values = [v for v in values if v is not None]
    if not values:
        return '—'
    if len(values) == 1:
        return '%.2f (n=1)' % (100 * values[0])
    return '%.2f ± %.2f (n=%d)' % (100 * statistics.mean(values), 100 * statistics.stdev(values), len(values))


def table(runs):
    lines = ['| run | steps | val acc at end % | test acc, final checkpoint % | best val acc % (step) '
             '| test acc, val-selected % | train wall time | hardware (load at start) | commit |',
             '|---|---|---|---|---|---|---|---|---|']
    for r in runs:
        lines.append('| %s | %s | %s | %s | %s (%s) | %s | %s | %s (%s) | %s |' % (
            r['run'], r['final_step'], percent(r['final_val']), percent(r['final_test']),
            percent(r['best_val']), r['best_step'], percent(r['best_test']),
            '—' if r['wall_s'] is None else '%d min %02d s' % divmod(r['wall_s'], 60),
            r['cpu'], r['load'], r['commit']))
    lines.append('| **mean ± sd** | | %s | %s | %s | %s | | | |' % (
        mean_sd([r['final_val'] for r in runs]), mean_sd([r['final_test'] for r in runs]),
        mean_sd([r['best_val'] for r in runs]), mean_sd([r['best_test'] for r in runs])))
    return '\n'.join(lines)


def main(argv=None):
    runs = sys.argv[1:] if argv is None else argv
    if not runs:
        print('usage: python -m tools.results_table RUN_FOLDER...', file=sys.stderr)
        return 2
    print(table([summarize_run(r) for r in runs]))
    return 0


if __name__ == '__main__':
    sys.exit(main())
