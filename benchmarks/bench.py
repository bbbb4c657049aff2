"""How fast CapsNet trains and infers here, against a tiled-u_hat baseline, and what bounds it.

    python -m benchmarks.bench                  # batch 128: project vs tiled baseline, matmul roof, input, routing
    python -m benchmarks.bench --ideas          # also time each speed idea (XLA, bfloat16, threads, oneDNN, einsum)
    python -m benchmarks.bench --profile        # also trace one training step and rank the op types by time
    python -m benchmarks.bench --quick          # seconds: tiny batch, one timed step (what the test runs)

Each training configuration runs in a fresh child process, so its peak resident memory (VmHWM) is
its own. Step times are medians after warm-up. Figures go to stdout and to --csv (results/bench.csv).
The model is the real one of capsNet.py; the baseline swaps only its DigitCaps layer for the tiled-
u_hat formulation of older implementations (reference_layers.py), same variables, same outputs.
"""
import argparse
import csv
import io
import json
import os
import statistics
import subprocess
import sys
import time

from runtime import cli
from runtime.cpu_kernels import has_bfloat16_units, prefer_onednn
from runtime.errors import run_cli
from runtime.quiet_start import quiet_tensorflow_logs

quiet_tensorflow_logs()  # TensorFlow loads later, in the measuring functions and child processes
prefer_onednn()  # as every command does (runtime.cpu_kernels); the children inherit it

RESULT_PREFIX = 'BENCH_RESULT '
CSV_COLUMNS = ['measurement', 'implementation', 'value', 'unit', 'batch_size', 'iter_routing',
               'precision', 'device']
# The machine on every row, so that rows from several machines concatenated into one table stay
# apart: a Zen 3 and a Zen 5 share the name "AMD EPYC" and differ 5x in speed.
MACHINE_COLUMNS = ['cpu_model', 'microarchitecture', 'family_model', 'isa', 'cores', 'onednn', 'load_before']
# The code that was measured, so that a CSV committed as a record says which commit its figures are of.
CSV_COLUMNS += MACHINE_COLUMNS + ['commit']

# The speed ideas of --ideas: name -> overrides of the training child's settings.
IDEAS = {
    'parent-major routing (project)': {},
    'einsum u_hat and routing': {'impl': 'einsum'},
    'xla jit': {'xla': True},
    'bfloat16 mixed precision': {'precision': 'bfloat16'},
    'bfloat16 + xla': {'precision': 'bfloat16', 'xla': True},
    'oneDNN off (Eigen kernels)': {'env': {'TF_ENABLE_ONEDNN_OPTS': '0'}},
    # TensorFlow leaves oneDNN off on CPUs without AVX-512 (an AVX2 Zen 3): whether its AVX2 kernels win there.
    'oneDNN on': {'env': {'TF_ENABLE_ONEDNN_OPTS': '1'}},
    'oneDNN on, PrimaryCaps as matmuls': {'env': {'TF_ENABLE_ONEDNN_OPTS': '1'}, 'primary_caps_impl': 'matmuls'},
    'PrimaryCaps as a space-to-depth 5x5 conv': {'conv': 'space_to_depth'},
    'PrimaryCaps space-to-depth, bfloat16': {'conv': 'space_to_depth', 'precision': 'bfloat16'},
    'PrimaryCaps as tf.nn.conv2d': {'primary_caps_impl': 'conv'},
    'PrimaryCaps as matmuls': {'primary_caps_impl': 'matmuls'},
    'PrimaryCaps input gradient as matmuls': {'primary_caps_impl': 'matmuls', 'primary_caps_input_gradient': 'matmuls'},
    'PrimaryCaps input gradient as conv': {'primary_caps_impl': 'matmuls', 'primary_caps_input_gradient': 'conv'},
    'PrimaryCaps forward as matmuls': {'primary_caps_impl': 'matmuls', 'primary_caps_forward': 'matmuls'},
    'PrimaryCaps forward as conv': {'primary_caps_impl': 'matmuls', 'primary_caps_forward': 'conv'},
    'threads intra 2 inter 1': {'intra_op_threads': 2, 'inter_op_threads': 1},
    'threads intra 1 inter 1': {'intra_op_threads': 1, 'inter_op_threads': 1},
}


# ---------------------------------------------------------------------------------------------------
# DigitCaps formulations: the project's, and the slow yardsticks of reference_layers.py

def digit_caps_impl(name):
    """'project': capsLayer.digit_caps as is; 'tiled': the baseline (tiled u_hat, einsum routing);
    'einsum': this project before its parent-major layout (einsum u_hat, einsum routing)."""
    import capsLayer
    from benchmarks import reference_layers
    if name == 'project':
        return capsLayer.digit_caps
    predict = {'tiled': reference_layers.tiled_predict_vectors,
               'einsum': capsLayer.predict_vectors}[name]
    return reference_layers.reference_digit_caps(predict)


# ---------------------------------------------------------------------------------------------------
# FLOPs from the layer shapes (multiply-adds of convolutions, matmuls and einsums, x2)

def layer_flops(iter_routing, image_size=28):
    """Rows (layer, shape, forward FLOPs, backward FLOPs) for one image of the paper's CapsNet.

    Backward: the weight gradient costs what the forward does, the input gradient as much again,
    except for conv1, whose input (the image) needs none. With the original script's stop-gradient
    routing only the last iteration's s_j is differentiated. Elementwise ops (squash, softmax,
    losses) are left out: they are a fraction of a percent.
    """
    conv1_side = image_size - 9 + 1                                   # 20
    primary_side = (conv1_side - 9) // 2 + 1                          # 6
    num_primary = primary_side * primary_side * 32                    # 1152
    conv1 = 2 * conv1_side ** 2 * 256 * 9 * 9 * 1
    primary = 2 * primary_side ** 2 * 256 * 9 * 9 * 256
    u_hat = 2 * num_primary * 10 * 16 * 8
    weighted_sum = 2 * num_primary * 10 * 16                          # s_j, one iteration
    routing = iter_routing * weighted_sum + (iter_routing - 1) * weighted_sum  # + agreements
    decoder = 2 * (160 * 512 + 512 * 1024 + 1024 * image_size ** 2)
    return [
        ('conv1', '%dx%dx1 -> %dx%dx256, 9x9' % (image_size, image_size, conv1_side, conv1_side),
         conv1, conv1),
        ('primary_caps', '%dx%dx256 -> %dx%dx256, 9x9 stride 2' % (conv1_side, conv1_side,
                                                                    primary_side, primary_side),
         primary, 2 * primary),
        ('u_hat', '%d x [8] x [8x16] x 10' % num_primary, u_hat, 2 * u_hat),
        ('routing', '%d iterations over [%d, 10, 16]' % (iter_routing, num_primary),
         routing, 2 * weighted_sum),
        ('decoder', '160 -> 512 -> 1024 -> %d' % image_size ** 2, decoder, 2 * decoder),
    ]


# The model's name scopes, as capsNet builds them; their gradients live under gradients/SCOPE/.
LAYER_SCOPES = ('conv1', 'primary_caps', 'digit_caps', 'decoder')


PASSES = ('forward', 'weight gradient', 'input gradient', 'backward')


def layer_of(node_name, op_type=''):
    """(layer, pass) of a traced op from its name scope, None for the rest (losses, the optimizer's
    updates, the input pipeline). The pass is 'forward', 'weight gradient' or 'input gradient' (the
    scopes capsLayer's custom gradients name, or tf.nn.conv2d's two backward kernels by op type), or
    'backward' for the rest of a layer's gradient (activations, routing, transposes)."""
    parts = node_name.split('/')
    if parts[0] == 'gradients' and len(parts) > 1 and parts[1] in LAYER_SCOPES:
        if 'weight_gradient' in parts or 'BackpropFilter' in op_type:
            return parts[1], 'weight gradient'
        if 'input_gradient' in parts or 'BackpropInput' in op_type:
            return parts[1], 'input gradient'
        return parts[1], 'backward'
    if parts[0] in LAYER_SCOPES:
        return parts[0], 'forward'
    return None


def flops_by_scope(iter_routing):
    """{(scope, pass): FLOPs per image}: layer_flops regrouped into the name scopes (digit_caps holds
    u_hat and the routing) and, for the two convolutions, their backward split into the weight
    gradient (as many FLOPs as the forward) and the input gradient (the rest; none for conv1)."""
    scope_of = {'conv1': 'conv1', 'primary_caps': 'primary_caps', 'u_hat': 'digit_caps',
                'routing': 'digit_caps', 'decoder': 'decoder'}
    flops = {}

    def add(key, value):
        flops[key] = flops.get(key, 0) + value
    for name, _, forward, backward in layer_flops(iter_routing):
        scope = scope_of[name]
        add((scope, 'forward'), forward)
        if scope in ('conv1', 'primary_caps'):
            add((scope, 'weight gradient'), forward)
            add((scope, 'input gradient'), backward - forward)
        else:
            add((scope, 'backward'), backward)
    return flops


def layer_rates(by_layer, iter_routing, batch_size, roof_gflops):
    """Rows (scope, pass, ms, GFLOP, GFLOP/s, share of roof) of a traced step's layers, in the model's
    order; GFLOP, rate and share are None for a pass that counts no FLOPs (a convolution's activation
    gradient). The times are summed op times, which overlap and run slower under the tracer, so a rate
    is a lower bound of what the layer reaches untraced."""
    flops = flops_by_scope(iter_routing)
    rows = []
    for scope in LAYER_SCOPES:
        for direction in PASSES:
            ms = by_layer.get('%s %s' % (scope, direction))
            if not ms:
                continue
            counted = flops.get((scope, direction))
            gflop = counted * batch_size / 1e9 if counted else None
            rate = gflop / (ms / 1000.0) if gflop else None
            rows.append((scope, direction, ms, gflop, rate, rate / roof_gflops if rate else None))
    return rows


def flops_per_image(iter_routing):
    rows = layer_flops(iter_routing)
    forward = sum(r[2] for r in rows)
    return forward, forward + sum(r[3] for r in rows)


# ---------------------------------------------------------------------------------------------------
# Child side: one process runs a list of tasks and prints one JSON line of results

def peak_rss_mb():
    """The process's peak resident memory so far (VmHWM), in MiB."""
    try:
        with open('/proc/self/status') as f:
            for line in f:
                if line.startswith('VmHWM:'):
                    return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    import resource
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def synthetic_mnist(num, seed=0):
    import numpy as np
    rng = np.random.default_rng(seed)
    return (rng.integers(0, 256, (num, 28, 28), dtype=np.uint8),
            rng.integers(0, 10, num).astype(np.uint8))


def session_config(task):
    from runtime import session
    return session.session_config(argparse.Namespace(
        precision=task.get('precision', 'float32'), xla=task.get('xla', False),
        intra_op_threads=task.get('intra_op_threads', 0),
        inter_op_threads=task.get('inter_op_threads', 0)))


def timed_runs(sess, fetches, count):
    times = []
    for _ in range(count):
        start = time.perf_counter()
        sess.run(fetches)
        times.append(time.perf_counter() - start)
    return times


def task_train(task):
    """Training (and optionally inference) steps of the real model with one u_hat formulation."""
    import tensorflow as tf

    import capsLayer
    import capsNet
    import utils
    tf1 = tf.compat.v1
    capsLayer.digit_caps = digit_caps_impl(task['impl'])  # capsNet looks it up at build time
    if task.get('conv') == 'space_to_depth':
        from benchmarks import reference_layers
        capsLayer.conv_layer = reference_layers.space_to_depth_conv_layer
    from runtime import session
    # The model main.py would build for these speed flags (PrimaryCaps 'auto'), unless the task names one.
    model_config = session.model_config(argparse.Namespace(
        iter_routing=task['iter_routing'], precision=task.get('precision', 'float32'),
        primary_caps_impl=task.get('primary_caps_impl', 'auto'),
        primary_caps_input_gradient=task.get('primary_caps_input_gradient', 'auto'),
        primary_caps_forward=task.get('primary_caps_forward', 'auto')))
    batch, steps, warmup = task['batch_size'], task['steps'], task['warmup']
    infer_steps = task.get('infer_steps', steps)
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(1)
        global_step = tf1.train.get_or_create_global_step()
        train_input = utils.InputPipeline(batch, True, task['num_threads'], 'train_input')
        model = capsNet.CapsNet(train_input.images, train_input.labels, model_config, training=True)
        train_op = capsNet.build_train_op(model, global_step)
        eval_input = utils.InputPipeline(batch, False, task['num_threads'], 'eval_input')
        eval_model = capsNet.CapsNet(eval_input.images, eval_input.labels, model_config,
                                     training=False, reuse=True)
        large_batch = task.get('eval_batch_size') or 0
        if large_batch:
            large_input = utils.InputPipeline(large_batch, False, task['num_threads'], 'large_input')
            large_model = capsNet.CapsNet(large_input.images, large_input.labels, model_config,
                                          training=False, reuse=True)
        init = tf1.global_variables_initializer()
    graph.finalize()
    # One batch more than the timed steps need: the traced step of --profile.
    images, labels = synthetic_mnist(batch * (max(steps, infer_steps) + warmup + 1))
    result = {'primary_caps_impl': model_config.primary_caps_impl,
              'primary_caps_input_gradient': model_config.primary_caps_input_gradient,
              'primary_caps_forward': model_config.primary_caps_forward}
    with tf1.Session(graph=graph, config=session_config(task)) as sess:
        sess.run(init)
        train_input.initialize(sess, images, labels)
        timed_runs(sess, [train_op, model.total_loss], warmup)
        times = timed_runs(sess, [train_op, model.total_loss], steps)
        result['train_step_s'] = statistics.median(times)
        result['train_images_per_s'] = batch / result['train_step_s']
        result['train_peak_rss_mb'] = peak_rss_mb()
        from runtime import session
        result['onednn'] = session.onednn_enabled()  # the parent never loads TensorFlow to ask
        if task.get('profile'):
            result['profile'], result['profile_layers'] = profile_step(sess, [train_op, model.total_loss])
        if task.get('inference'):
            eval_input.initialize(sess, images, labels)
            timed_runs(sess, eval_model.predictions, warmup)
            times = timed_runs(sess, eval_model.predictions, infer_steps)
            result['infer_step_s'] = statistics.median(times)
            result['infer_images_per_s'] = batch / result['infer_step_s']
        if task.get('inference') and large_batch:
            large_images, large_labels = synthetic_mnist(large_batch * (infer_steps + warmup))
            large_input.initialize(sess, large_images, large_labels)
            timed_runs(sess, large_model.predictions, warmup)
            seconds = statistics.median(timed_runs(sess, large_model.predictions, infer_steps))
            result['infer_large_batch_images_per_s'] = large_batch / seconds
    return result


def profile_step(sess, fetches):
    """One traced step: ({op type: [milliseconds, op count]}, {'SCOPE PASS': milliseconds}) summed over
    the step's ops (layer_of names the scope and the pass).

    Ops of one step overlap (inter-op parallelism), so the sum can exceed the step's wall time.
    """
    import tensorflow as tf
    tf1 = tf.compat.v1
    metadata = tf1.RunMetadata()
    sess.run(fetches, options=tf1.RunOptions(trace_level=tf1.RunOptions.FULL_TRACE),
             run_metadata=metadata)
    by_type, by_layer = {}, {}
    for device in metadata.step_stats.dev_stats:
        for node in device.node_stats:
            # timeline_label reads "name = OpType(inputs)"; the op type is what groups the cost.
            label = node.timeline_label
            op_type = label.split(' = ')[1].split('(')[0] if ' = ' in label else node.node_name
            ms = node.all_end_rel_micros / 1000.0
            entry = by_type.setdefault(op_type, [0.0, 0])
            entry[0] += ms
            entry[1] += 1
            layer = layer_of(node.node_name, op_type)
            if layer:
                key = '%s %s' % layer
                by_layer[key] = by_layer.get(key, 0.0) + ms
    return by_type, by_layer


def task_matmul(task):
    """Float32 (and, if asked, 16-bit) square matmul throughput: the machine's roof for this model.

    The roof is the fastest of its repeats, not their median: on a shared host one run's median varied
    twofold (78-160 GFLOP/s on a Zen 3), and the best is what the machine can do, so the model's share of
    it errs low rather than high."""
    import tensorflow as tf
    tf1 = tf.compat.v1
    n = task['size']
    dtypes = ['float32'] + [d for d in task.get('extra_dtypes', []) if d != 'float32']
    graph = tf.Graph()
    with graph.as_default():
        products = {}
        for name in dtypes:
            # Operands live in variables, cast once, so that only the matmul is timed.
            a = tf1.Variable(tf.cast(tf.random.normal([n, n]), name), trainable=False)
            b = tf1.Variable(tf.cast(tf.random.normal([n, n]), name), trainable=False)
            products[name] = tf.matmul(a, b).op
        init = tf1.global_variables_initializer()
    result = {}
    with tf1.Session(graph=graph, config=session_config({})) as sess:
        sess.run(init)
        for name, product in products.items():
            timed_runs(sess, product, 1)
            seconds = min(timed_runs(sess, product, task['repeats']))
            result['matmul_gflops_' + name] = 2.0 * n ** 3 / seconds / 1e9
    return result


def task_pipeline(task):
    """Images/s that the tf.data input pipeline alone delivers (the model is not run)."""
    import tensorflow as tf

    import utils
    tf1 = tf.compat.v1
    batch, num_batches = task['batch_size'], task['batches']
    graph = tf.Graph()
    with graph.as_default():
        pipeline = utils.InputPipeline(batch, True, task['num_threads'], 'train_input')
    images, labels = synthetic_mnist(batch * num_batches)
    with tf1.Session(graph=graph, config=session_config({})) as sess:
        pipeline.initialize(sess, images, labels)
        sess.run(pipeline.images.op)  # first batch: start-up of the iterator
        start = time.perf_counter()
        for _ in range(num_batches - 1):
            sess.run(pipeline.images.op)
        seconds = time.perf_counter() - start
    return {'pipeline_images_per_s': batch * (num_batches - 1) / seconds}


TASKS = {'train': task_train, 'matmul': task_matmul, 'pipeline': task_pipeline}


def run_child(tasks):
    results = []
    for task in tasks:
        results.append(TASKS[task['kind']](task))
    print(RESULT_PREFIX + json.dumps(results), flush=True)


# ---------------------------------------------------------------------------------------------------
# Parent side: plans the children, collects results, prints the report and writes the CSV

class BenchError(Exception):
    pass


def spawn(tasks, device, extra_env=None):
    """Runs tasks in a fresh Python process (with extra_env set); returns their result dicts."""
    env = dict(os.environ, **(extra_env or {}))
    if device == 'cpu':
        env['CUDA_VISIBLE_DEVICES'] = ''
    proc = subprocess.run([sys.executable, '-m', 'benchmarks.bench', '--child', json.dumps(tasks)],
                          capture_output=True, text=True, env=env,
                          cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    lines = [l for l in proc.stdout.splitlines() if l.startswith(RESULT_PREFIX)]
    if proc.returncode != 0 or not lines:
        tail = '\n'.join((proc.stderr or proc.stdout).strip().splitlines()[-15:])
        raise BenchError('benchmark child failed (exit %d) for %s:\n%s'
                         % (proc.returncode, [t['kind'] for t in tasks], tail))
    return json.loads(lines[-1][len(RESULT_PREFIX):])


def train_task(args, **overrides):
    task = dict(kind='train', impl='project', batch_size=args.batch_size, steps=args.steps,
                infer_steps=args.infer_steps,
                warmup=args.warmup, iter_routing=args.iter_routing, num_threads=args.num_threads,
                precision=args.precision, xla=args.xla, intra_op_threads=args.intra_op_threads,
                inter_op_threads=args.inter_op_threads, primary_caps_impl=args.primary_caps_impl,
                primary_caps_input_gradient=args.primary_caps_input_gradient,
                primary_caps_forward=args.primary_caps_forward, inference=False)
    task.update(overrides)
    return task


def measure(args, log=print):
    """Runs every measurement; returns a dict of figures (see report())."""
    figures = {}
    sweep = [r for r in args.routing_sweep if r != args.iter_routing]
    # Child 1: the project's training + inference first (its VmHWM is read right after training),
    # then the routing sweep, the matmul roof and the input pipeline, which need no clean memory.
    tasks = [train_task(args, inference=True, profile=args.profile,
                        eval_batch_size=args.eval_batch_size)]
    tasks += [train_task(args, iter_routing=r) for r in sweep]
    tasks.append(dict(kind='matmul', size=args.matmul_size, repeats=max(10, 2 * args.steps),
                      extra_dtypes=sorted({'bfloat16', args.precision})))
    tasks.append(dict(kind='pipeline', batch_size=args.batch_size, batches=args.pipeline_batches,
                      num_threads=args.num_threads))
    log('measuring the project (training, inference, routing %s, matmul, input pipeline)...'
        % ','.join(map(str, args.routing_sweep)))
    project, *rest = spawn(tasks, args.device)
    sweep_results, matmul, pipeline = rest[:len(sweep)], rest[-2], rest[-1]
    figures['project'] = project
    figures['routing'] = {args.iter_routing: project['train_step_s']}
    figures['routing'].update({r: res['train_step_s'] for r, res in zip(sweep, sweep_results)})
    figures.update(matmul)
    figures.update(pipeline)
    fastest = fastest_precision(has_bfloat16_units(), project.get('onednn'))
    if fastest == args.precision:
        figures['fastest'] = (fastest, project)
    else:
        log('measuring the project at this machine\'s fastest precision, %s...' % fastest)
        figures['fastest'] = (fastest, spawn([train_task(args, inference=True, precision=fastest,
                                                         eval_batch_size=0)], args.device)[0])
    if not args.skip_baseline:
        log('measuring the tiled u_hat baseline...')
        figures['tiled'] = spawn([train_task(args, impl='tiled', inference=True,
                                             precision='float32', xla=False)], args.device)[0]
    if args.ideas:
        figures['ideas'] = {}
        for name, overrides in IDEAS.items():
            log('idea: %s...' % name)
            overrides = dict(overrides)
            extra_env = overrides.pop('env', None)
            figures['ideas'][name] = spawn([train_task(args, inference=True, **overrides)], args.device,
                                           extra_env)[0]
    return figures


def fastest_precision(bfloat16_units, onednn):
    """'bfloat16' where oneDNN runs (it does the rewrite) on bfloat16 units, else 'float32'.

    bfloat16_units: cpu_kernels.has_bfloat16_units(), decided from the CPU's flags rather than from a
    timed matmul: on a shared machine one noisy measurement could flip the answer (seen: 2.95x and
    1.11x in two runs)."""
    return 'bfloat16' if onednn and bfloat16_units else 'float32'


def fastest_line(figures, training_flops, forward_flops):
    """The one line a script reads: images/s at the fastest precision and their share of its matmul rate."""
    precision, result = figures['fastest']
    roof = figures['matmul_gflops_' + precision]
    train, infer = result['train_images_per_s'], result['infer_images_per_s']
    return ('FASTEST precision=%s train_images_per_s=%.1f infer_images_per_s=%.1f matmul_gflops=%.1f '
            'train_share=%.3f infer_share=%.3f peak_rss_mib=%.0f'
            % (precision, train, infer, roof, train * training_flops / 1e9 / roof,
               infer * forward_flops / 1e9 / roof, result['train_peak_rss_mb']))


def routing_slope(step_by_iterations):
    """Least-squares seconds per extra routing iteration from {iterations: step seconds}."""
    points = sorted(step_by_iterations.items())
    if len(points) < 2:
        return None
    mean_x = sum(x for x, _ in points) / len(points)
    mean_y = sum(y for _, y in points) / len(points)
    return (sum((x - mean_x) * (y - mean_y) for x, y in points)
            / sum((x - mean_x) ** 2 for x, _ in points))


def machine_columns(machine, load_before):
    """The MACHINE_COLUMNS of one run from a tools.provenance.machine() dict."""
    onednn = machine.get('onednn')
    return {'cpu_model': machine.get('cpu_model') or '', 'microarchitecture': machine.get('microarchitecture') or '',
            'family_model': '' if machine.get('family') is None else '%d/%d' % (machine['family'], machine['model']),
            'isa': ' '.join(machine.get('isa') or []), 'cores': machine.get('cores', ''),
            'onednn': '' if onednn is None else ('on' if onednn else 'off'), 'load_before': '%.2f' % load_before}


def report(args, figures, load_before, machine=None, commit=None):
    """The table printed to stdout and the CSV rows, from one run's figures, the machine's record and
    the commit of the measured code (read here when not given)."""
    from tools import provenance
    out = io.StringIO()
    rows = []
    machine = dict(machine or provenance.machine())
    if machine.get('onednn') is None and 'onednn' in figures['project']:
        # Known from the training child, which had TensorFlow loaded.
        machine['onednn'] = figures['project']['onednn']
        machine['summary'] = provenance.summary(machine)
    common = dict(batch_size=args.batch_size, iter_routing=args.iter_routing,
                  precision=args.precision, device=args.device, **machine_columns(machine, load_before),
                  commit=commit or provenance.commit())

    def row(measurement, implementation, value, unit, **changes):
        rows.append(dict(common, measurement=measurement, implementation=implementation,
                         value='%.6g' % value, unit=unit, **changes))

    def p(text=''):
        out.write(text + '\n')

    forward, training = flops_per_image(args.iter_routing)
    p('CapsNet benchmark: batch %d, median of %d timed training and %d inference steps after %d warm-up, '
      'iter_routing %d, device %s, precision %s%s; load average %.2f before the run'
      % (args.batch_size, args.steps, args.infer_steps, args.warmup, args.iter_routing, args.device,
         args.precision,
         ', XLA' if args.xla else '', load_before))
    p('CPU: %s' % machine['summary'])
    p('commit: %s' % common['commit'])
    p()
    p('FLOPs per image, from the layer shapes (2 x multiply-adds):')
    p('  %-13s %-38s %12s %12s' % ('layer', 'shape', 'forward MF', 'backward MF'))
    for name, shape, fwd, bwd in layer_flops(args.iter_routing):
        p('  %-13s %-38s %12.1f %12.1f' % (name, shape, fwd / 1e6, bwd / 1e6))
    p('  forward %.3f GFLOP, training step (forward + backward) %.3f GFLOP per image'
      % (forward / 1e9, training / 1e9))
    row('forward_flops_per_image', 'model', forward, 'FLOP')
    row('train_flops_per_image', 'model', training, 'FLOP')
    p()

    roof = figures['matmul_gflops_float32']
    p('machine: float32 matmul %d^3 reaches %.1f GFLOP/s -> training bound %.1f images/s'
      % (args.matmul_size, roof, roof * 1e9 / training))
    row('matmul_gflops', 'float32', roof, 'GFLOP/s')
    # bfloat16 is always measured: whether this CPU has bfloat16 units decides if --precision bfloat16 pays.
    for dtype in sorted({'bfloat16', args.precision} - {'float32'}):
        rate = figures['matmul_gflops_' + dtype]
        p('         %s matmul reaches %.1f GFLOP/s = %.2fx float32' % (dtype, rate, rate / roof))
        row('matmul_gflops', dtype, rate, 'GFLOP/s')
    p()

    project, tiled = figures['project'], figures.get('tiled')
    if 'primary_caps_impl' in project:
        how = {'conv': 'tf.nn.conv2d', 'matmuls': 'matmuls'}[project['primary_caps_impl']]
        for field, name, library_kernel in (('primary_caps_forward', 'forward pass', 'tf.nn.conv2d'),
                                            ('primary_caps_input_gradient', 'input gradient',
                                             'Conv2DBackpropInput')):
            if project['primary_caps_impl'] == 'matmuls' and field in project:
                how += ', its %s as %s' % (name, {'conv': library_kernel, 'matmuls': 'matmuls'}[project[field]])
        p('project: PrimaryCaps computed as %s (--primary_caps_impl %s)' % (how, args.primary_caps_impl))
    p('%-34s %14s %14s %8s' % ('', 'project', 'tiled baseline', 'ratio'))
    for key, label, unit in (('train_images_per_s', 'training images/s', 'images/s'),
                             ('infer_images_per_s', 'inference images/s', 'images/s'),
                             ('train_step_s', 'training step s', 's'),
                             ('train_peak_rss_mb', 'peak RSS of training MiB', 'MiB')):
        mine = project[key]
        row(key, 'project', mine, unit)
        if tiled:
            row(key, 'tiled', tiled[key], unit)
            row(key + '_ratio', 'project/tiled', mine / tiled[key], 'x')
            p('%-34s %14.1f %14.1f %7.2fx' % (label, mine, tiled[key], mine / tiled[key]))
        else:
            p('%-34s %14.1f %14s %8s' % (label, mine, '-', '-'))
    if 'infer_large_batch_images_per_s' in project:
        large = project['infer_large_batch_images_per_s']
        p('%-34s %14.1f' % ('inference images/s at batch %d' % args.eval_batch_size, large))
        row('infer_images_per_s', 'project', large, 'images/s', batch_size=args.eval_batch_size)
    reached = project['train_images_per_s'] * training / 1e9
    p('%-34s %14.1f  = %.0f%% of the float32 matmul rate'
      % ('training GFLOP/s', reached, 100 * reached / roof))
    row('train_gflops', 'project', reached, 'GFLOP/s')
    row('train_fraction_of_matmul', 'project', reached / roof, 'fraction')
    inferred = project['infer_images_per_s'] * forward / 1e9
    p('%-34s %14.1f  = %.0f%% of the float32 matmul rate'
      % ('inference GFLOP/s', inferred, 100 * inferred / roof))
    row('infer_gflops', 'project', inferred, 'GFLOP/s')
    row('infer_fraction_of_matmul', 'project', inferred / roof, 'fraction')
    if args.precision != 'float32':
        # The share that matters for mixed precision is of the rate of the arithmetic it runs in.
        own_roof = figures['matmul_gflops_' + args.precision]
        p('%-34s train %.0f%%, inference %.0f%%' % ('share of the %s matmul rate' % args.precision,
                                                    100 * reached / own_roof, 100 * inferred / own_roof))
        row('train_fraction_of_matmul', 'project/' + args.precision, reached / own_roof, 'fraction')
        row('infer_fraction_of_matmul', 'project/' + args.precision, inferred / own_roof, 'fraction')
    p()

    if 'fastest' in figures:
        line = fastest_line(figures, training, forward)
        p(line)
        for item in line.split()[2:]:
            key, value = item.split('=')
            row(key, 'project@' + figures['fastest'][0], float(value), 'fastest precision')
        p()

    rate = figures['pipeline_images_per_s']
    p('input pipeline alone: %.0f images/s = %.1fx the training rate'
      % (rate, rate / project['train_images_per_s']))
    row('pipeline_images_per_s', 'tf.data', rate, 'images/s')
    row('pipeline_over_training', 'tf.data', rate / project['train_images_per_s'], 'x')
    p()

    p('routing: training step time by iter_routing')
    for iterations, seconds in sorted(figures['routing'].items()):
        p('  iter_routing %d: %.3f s per step' % (iterations, seconds))
        row('train_step_s', 'project', seconds, 's', iter_routing=iterations)
    slope = routing_slope(figures['routing'])
    if slope is not None:
        p('  one routing iteration costs %.1f ms per batch of %d (least squares)'
          % (slope * 1000, args.batch_size))
        row('routing_iteration_s', 'project', slope, 's')

    if 'profile' in project:
        p()
        p('profile of one training step of the project (op types by summed time):')
        total = sum(ms for ms, _ in project['profile'].values())
        ranked = sorted(project['profile'].items(), key=lambda kv: -kv[1][0])
        for op_type, (ms, count) in ranked[:args.profile_top]:
            p('  %-40s %9.1f ms %5.1f%% %5d ops' % (op_type, ms, 100 * ms / total, count))
            row('profile_ms', op_type, ms, 'ms')
        if project.get('profile_layers'):
            own = figures['matmul_gflops_' + args.precision]
            p()
            p('the same step by layer (summed op times, slower under the tracer: the rates are lower bounds):')
            p('  %-13s %-16s %9s %8s %9s  %s' % ('layer', 'pass', 'ms', 'GFLOP', 'GFLOP/s',
                                                'share of the %s matmul rate' % args.precision))
            for scope, direction, ms, gflop, rate, share in layer_rates(
                    project['profile_layers'], args.iter_routing, args.batch_size, own):
                if rate is None:
                    p('  %-13s %-16s %9.1f %8s %9s  -' % (scope, direction, ms, '-', '-'))
                else:
                    p('  %-13s %-16s %9.1f %8.2f %9.1f  %.0f%%' % (scope, direction, ms, gflop, rate, 100 * share))
                    row('profile_layer_gflops', '%s %s' % (scope, direction), rate, 'GFLOP/s')
                row('profile_layer_ms', '%s %s' % (scope, direction), ms, 'ms')

    if 'ideas' in figures:
        p()
        p('ideas (same batch; each in its own process):')
        p('  %-42s %10s %8s %10s %8s %8s' % ('idea', 'train i/s', 'vs proj', 'infer i/s', 'vs proj', 'RSS MiB'))
        base = figures['ideas']['parent-major routing (project)']
        for name, res in figures['ideas'].items():
            p('  %-42s %10.1f %7.2fx %10.1f %7.2fx %8.0f' % (
                name, res['train_images_per_s'], res['train_images_per_s'] / base['train_images_per_s'],
                res['infer_images_per_s'], res['infer_images_per_s'] / base['infer_images_per_s'],
                res['train_peak_rss_mb']))
            row('train_images_per_s', 'idea: ' + name, res['train_images_per_s'], 'images/s')
            row('infer_images_per_s', 'idea: ' + name, res['infer_images_per_s'], 'images/s')
    return out.getvalue(), rows


def write_csv(path, rows):
    """Writes the rows atomically, through the project's one atomic writer."""
    from runtime import files
    text = io.StringIO()
    writer = csv.DictWriter(text, CSV_COLUMNS, lineterminator='\n')
    writer.writeheader()
    writer.writerows(rows)
    files.atomic_write(path, text.getvalue())


def build_parser():
    from runtime import session
    # One `error: bad flag: ...` line and exit 2 for a mistake, as every command of the project.
    p = cli.command_parser(__doc__.split('\n')[0], 'python -m benchmarks.bench')
    a = p.add_argument
    a('--batch_size', type=int, default=128, help='batch of training and inference')
    a('--steps', type=int, default=5, help='timed steps per measurement (the median is reported)')
    a('--infer_steps', type=int, default=15,
      help='timed inference steps (the median is reported); more than training\'s, as each is short '
           'and a shared host\'s speed moves from second to second')
    a('--warmup', type=int, default=2, help='untimed steps first (graph optimisation, allocation)')
    a('--iter_routing', type=int, default=3, help='routing iterations of the measured model')
    a('--routing_sweep', default='1,3,5', help='iter_routing values whose training steps are timed')
    a('--device', choices=('cpu', 'gpu'), default='cpu', help='cpu hides any GPU from the children')
    a('--precision', choices=session.PRECISIONS, default='float32',
      help='precision of the project model (the baseline stays float32)')
    a('--xla', action='store_true', help='XLA-compile the project model')
    a('--primary_caps_impl', choices=session.PRIMARY_CAPS_IMPLS, default='auto',
      help='PrimaryCaps as tf.nn.conv2d or matmuls (auto: what main.py picks for --precision here)')
    a('--primary_caps_input_gradient', choices=session.PRIMARY_CAPS_PASS_KERNELS, default='auto',
      help='with PrimaryCaps as matmuls, its input gradient as matmuls or the library\'s convolution '
           '(auto: what main.py picks for --precision)')
    a('--primary_caps_forward', choices=session.PRIMARY_CAPS_PASS_KERNELS, default='auto',
      help='with PrimaryCaps as matmuls, its forward pass as matmuls or the library\'s convolution '
           '(auto: what main.py picks for --precision)')
    a('--intra_op_threads', type=int, default=0, help='threads inside one op (0: one per core)')
    a('--inter_op_threads', type=int, default=0, help='ops run at once (0: TensorFlow chooses)')
    a('--eval_batch_size', type=int, default=500,
      help='also time the project\'s inference at this batch (main.py\'s default; 0: skip)')
    a('--num_threads', type=int, default=8, help='parallel calls of the tf.data pipeline (as main.py)')
    a('--matmul_size', type=int, default=2048, help='side of the square matmul that measures the roof')
    a('--pipeline_batches', type=int, default=40, help='batches the input-pipeline measurement reads')
    a('--profile', action='store_true', help='trace one training step and print the costliest op types')
    a('--profile_top', type=int, default=12, help='op types listed by --profile')
    a('--skip_baseline', action='store_true', help='do not measure the tiled baseline')
    a('--ideas', action='store_true', help='also time every idea of IDEAS (one child process each)')
    a('--quick', action='store_true',
      help='smoke run in seconds: batch 4, 1 timed step, small matmul (figures mean nothing)')
    a('--csv', default=os.path.join('results', 'bench.csv'), help='where the figures are written')
    a('--child', help=argparse.SUPPRESS)
    return p


def parse_args(argv=None):
    args = build_parser().parse_args(argv)
    if args.quick:
        args.batch_size, args.steps, args.infer_steps, args.warmup = 4, 1, 1, 1
        args.matmul_size, args.pipeline_batches, args.eval_batch_size = 128, 3, 8
        args.routing_sweep = '1,%d' % args.iter_routing
    args.routing_sweep = sorted({int(r) for r in args.routing_sweep.split(',') if r.strip()}
                                | {args.iter_routing})
    for name in ('batch_size', 'steps', 'infer_steps', 'iter_routing', 'matmul_size'):
        if getattr(args, name) < 1:
            build_parser().error('--%s must be at least 1' % name)
    if args.pipeline_batches < 2:
        build_parser().error('--pipeline_batches must be at least 2')
    return args


def main(argv=None):
    return run_cli(lambda: run(sys.argv[1:] if argv is None else argv))


def run(raw):
    if raw[:1] == ['--child']:
        run_child(json.loads(raw[1]))
        return 0
    args = parse_args(raw)
    load_before = os.getloadavg()[0]
    from tools import provenance
    machine = provenance.machine()  # before the children, like the load
    measured_commit = provenance.commit()  # before the children too: the code they will run
    try:
        figures = measure(args, log=lambda m: print(m, file=sys.stderr, flush=True))
    except BenchError as e:
        print('error: %s' % e, file=sys.stderr)
        return 1
    text, rows = report(args, figures, load_before, machine, measured_commit)
    print(text, end='')
    write_csv(args.csv, rows)
    print('figures written to %s' % args.csv)
    return 0


if __name__ == '__main__':
    sys.exit(main())
