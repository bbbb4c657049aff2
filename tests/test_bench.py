"""bench.py end to end in --quick mode (tiny batch, one timed step): it prints the report and
writes the CSV with every measurement the README's table is made from. No timing is asserted."""
import csv
import subprocess
import sys

import pytest
from conftest import ROOT

from benchmarks import bench
from runtime.errors import ConfigError


@pytest.mark.slow
def test_quick_bench_writes_every_measurement(tmp_path):
    out_csv = tmp_path / 'bench.csv'
    proc = subprocess.run([sys.executable, '-m', 'benchmarks.bench', '--quick', '--csv', str(out_csv)],
                          capture_output=True, text=True, cwd=str(ROOT), timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    for heading in ('FLOPs per image', 'tiled baseline', 'training images/s', 'inference images/s',
                    'peak RSS of training', 'matmul', 'input pipeline alone', 'routing iteration'):
        assert heading in proc.stdout

    with open(out_csv) as f:
        rows = list(csv.DictReader(f))
    assert list(rows[0].keys()) == bench.CSV_COLUMNS
    # --quick: training batch 4; the extra inference figure at the eval batch has batch_size 8.
    by_key = {(r['measurement'], r['implementation'], r['iter_routing']): r for r in rows
              if r['batch_size'] == '4'}
    assert float([r for r in rows if r['batch_size'] == '8'][0]['value']) > 0
    for impl in ('project', 'tiled'):
        for measurement in ('train_images_per_s', 'infer_images_per_s', 'train_peak_rss_mb'):
            row = by_key[(measurement, impl, '3')]
            assert float(row['value']) > 0 and row['device'] == 'cpu'
    # Ratios are project over baseline, from the very figures in the file.
    ratio = float(by_key[('train_images_per_s_ratio', 'project/tiled', '3')]['value'])
    project = float(by_key[('train_images_per_s', 'project', '3')]['value'])
    tiled = float(by_key[('train_images_per_s', 'tiled', '3')]['value'])
    assert abs(ratio - project / tiled) < 1e-4 * ratio
    # --quick times iter_routing 1 and 3; the routing cost is their slope.
    steps = {r: float(by_key[('train_step_s', 'project', str(r))]['value']) for r in (1, 3)}
    slope = float(by_key[('routing_iteration_s', 'project', '3')]['value'])
    # The CSV keeps 6 significant digits (each value off by up to 5e-6 of itself), so the difference of
    # two step times carries their rounding, which is large beside a slope near 0.
    rounding = 1e-5 * max(steps.values())
    assert abs(slope - (steps[3] - steps[1]) / 2) <= rounding + 1e-5 * abs(slope)
    fraction = float(by_key[('train_fraction_of_matmul', 'project', '3')]['value'])
    roof = float(by_key[('matmul_gflops', 'float32', '3')]['value'])
    flops = float(by_key[('train_flops_per_image', 'model', '3')]['value'])
    assert abs(fraction - project * flops / 1e9 / roof) < 1e-3 * fraction
    # Inference's share uses the forward FLOPs, and the bfloat16 matmul rate is always reported.
    inference = float(by_key[('infer_images_per_s', 'project', '3')]['value'])
    forward = float(by_key[('forward_flops_per_image', 'model', '3')]['value'])
    infer_fraction = float(by_key[('infer_fraction_of_matmul', 'project', '3')]['value'])
    assert abs(infer_fraction - inference * forward / 1e9 / roof) < 1e-3 * infer_fraction
    assert float(by_key[('matmul_gflops', 'bfloat16', '3')]['value']) > 0
    # The fastest precision's line: float32 or bfloat16, whichever this CPU runs faster.
    fastest = [line for line in proc.stdout.splitlines() if line.startswith('FASTEST precision=')]
    assert len(fastest) == 1 and fastest[0].split()[1] in ('precision=float32', 'precision=bfloat16')


def test_flop_count_follows_the_layer_shapes():
    rows = {name: (fwd, bwd) for name, _, fwd, bwd in bench.layer_flops(3)}
    # PrimaryCaps: 6x6 outputs x 256 maps, each a 9x9x256 dot product; 2 FLOPs per multiply-add.
    assert rows['primary_caps'][0] == 2 * 6 * 6 * 256 * 9 * 9 * 256
    # conv1 needs no gradient for its input (the image): backward = forward (weights only).
    assert rows['conv1'][1] == rows['conv1'][0] == 2 * 20 * 20 * 256 * 9 * 9
    forward, training = bench.flops_per_image(3)
    assert forward == sum(f for f, _ in rows.values())
    assert training == forward + sum(b for _, b in rows.values())
    # The ~0.40 GFLOP forward / ~1.2 GFLOP training step per image quoted in the README.
    assert 0.39e9 < forward < 0.42e9 and 1.15e9 < training < 1.25e9
    # More routing iterations cost more forward FLOPs but the same backward (stop-gradient).
    assert bench.flops_per_image(5)[0] > forward
    assert bench.flops_per_image(5)[1] - bench.flops_per_image(5)[0] == training - forward


def test_routing_slope_is_least_squares():
    assert abs(bench.routing_slope({1: 1.0, 3: 1.4, 5: 1.8}) - 0.2) < 1e-12
    assert bench.routing_slope({3: 1.0}) is None


def fake_figures():
    step = {'train_step_s': 2.0, 'train_images_per_s': 64.0, 'infer_images_per_s': 200.0,
            'train_peak_rss_mb': 900.0}
    return {'project': dict(step, onednn=True), 'tiled': dict(step), 'routing': {3: 2.0},
            'matmul_gflops_float32': 100.0, 'matmul_gflops_bfloat16': 400.0, 'pipeline_images_per_s': 5000.0}


def test_report_names_the_machine_in_its_header_and_on_every_csv_row(tmp_path):
    from test_provenance import ZEN5
    from tools import provenance
    args = bench.parse_args(['--quick'])
    machine = provenance.machine(ZEN5, cores=2, load=(0.7, 0.6, 0.5), onednn=(None, 'unknown'))
    text, rows = bench.report(args, fake_figures(), 0.7, machine, commit='abc1234+uncommitted')
    # oneDNN was unknown in the parent; the training child, which had TensorFlow loaded, says it is on.
    assert 'CPU: AMD EPYC 9B45 128-Core Processor x 2 (Zen 5, family 26 model 2; AVX2 AVX-512F ' \
           'AVX-512 BF16; oneDNN on)' in text
    bench.write_csv(str(tmp_path / 'bench.csv'), rows)
    with open(tmp_path / 'bench.csv') as f:
        written = list(csv.DictReader(f))
    assert list(written[0]) == bench.CSV_COLUMNS and len(written) == len(rows) > 10
    assert {(r['cpu_model'], r['microarchitecture'], r['family_model'], r['isa'], r['cores'], r['onednn'],
             r['load_before']) for r in written} == {('AMD EPYC 9B45 128-Core Processor', 'Zen 5', '26/2',
                                                      'AVX2 AVX-512F AVX-512 BF16', '2', 'on', '0.70')}
    # The measured code's commit, dirty mark included, is in the header and on every row.
    assert 'commit: abc1234+uncommitted' in text
    assert {r['commit'] for r in written} == {'abc1234+uncommitted'}


def test_report_reads_the_checkouts_commit_when_none_is_given(monkeypatch):
    from tools import provenance
    monkeypatch.setattr(provenance, 'commit', lambda: 'fed4321')
    _, rows = bench.report(bench.parse_args(['--quick']), fake_figures(), 0.5)
    assert rows and {r['commit'] for r in rows} == {'fed4321'}


def test_fastest_precision_needs_onednn_and_bfloat16_units():
    assert bench.fastest_precision(True, onednn=True) == 'bfloat16'  # Zen 5, Xeon with AMX
    assert bench.fastest_precision(True, onednn=False) == 'float32'  # no rewrite without oneDNN
    assert bench.fastest_precision(False, onednn=True) == 'float32'  # Zen 3 with oneDNN forced on
    assert bench.fastest_precision(None, onednn=True) == 'float32'  # the CPU could not say


def test_fastest_line_is_one_parseable_line_from_the_fastest_run():
    figures = fake_figures()
    fastest_run = {'train_images_per_s': 128.0, 'infer_images_per_s': 500.0, 'train_peak_rss_mb': 1000.0}
    figures['fastest'] = ('bfloat16', fastest_run)
    text, rows = bench.report(bench.parse_args(['--quick']), figures, 0.5)
    lines = [line for line in text.splitlines() if line.startswith('FASTEST ')]
    assert len(lines) == 1
    values = dict(item.split('=') for item in lines[0].split()[1:])
    forward, training = bench.flops_per_image(3)
    assert values['precision'] == 'bfloat16' and float(values['matmul_gflops']) == 400.0
    assert float(values['train_images_per_s']) == 128.0 and float(values['infer_images_per_s']) == 500.0
    assert abs(float(values['train_share']) - 128.0 * training / 1e9 / 400.0) < 1e-3
    assert abs(float(values['infer_share']) - 500.0 * forward / 1e9 / 400.0) < 1e-3
    assert {r['measurement'] for r in rows if r['implementation'] == 'project@bfloat16'} == {
        'train_images_per_s', 'infer_images_per_s', 'matmul_gflops', 'train_share', 'infer_share',
        'peak_rss_mib'}


def test_layer_of_reads_the_scope_and_the_pass_from_an_op_name():
    assert bench.layer_of('primary_caps/MatMul_3') == ('primary_caps', 'forward')
    assert bench.layer_of('gradients/primary_caps/IdentityN_grad/weight_gradient/MatMul') == (
        'primary_caps', 'weight gradient')
    assert bench.layer_of('gradients/primary_caps/IdentityN_grad/input_gradient/MatMul_2') == (
        'primary_caps', 'input gradient')
    # tf.nn.conv2d's gradients are told apart by their kernels.
    assert bench.layer_of('gradients/primary_caps/Conv2D_grad/Conv2DBackpropFilter',
                          '_MklNativeConv2DBackpropFilter') == ('primary_caps', 'weight gradient')
    assert bench.layer_of('gradients/primary_caps/Conv2D_grad/Conv2DBackpropInput',
                          'Conv2DBackpropInput') == ('primary_caps', 'input gradient')
    assert bench.layer_of('gradients/digit_caps/transpose_grad/transpose') == ('digit_caps', 'backward')
    # The optimizer's updates, loss gradients and the input pipeline belong to no layer.
    for name in ('Adam/update_conv1/weights/ResourceApplyAdam', 'gradients/mul_grad/Mul',
                 'train_input/IteratorGetNext', 'margin_loss/Maximum'):
        assert bench.layer_of(name) is None


@pytest.mark.parametrize('impl', ['conv', 'matmuls'])
def test_every_layer_and_pass_of_the_training_graph_is_found(impl):
    import tensorflow as tf

    import capsNet
    import utils
    tf1 = tf.compat.v1
    graph = tf.Graph()
    with graph.as_default():
        images = utils.InputPipeline(4, True, 1, 'train_input')
        model = capsNet.CapsNet(images.images, images.labels, capsNet.ModelConfig(primary_caps_impl=impl))
        capsNet.build_train_op(model, tf1.train.get_or_create_global_step())
    found = {bench.layer_of(op.name, op.type) for op in graph.get_operations()} - {None}
    for scope in bench.LAYER_SCOPES:
        assert (scope, 'forward') in found
    for scope in ('conv1', 'primary_caps'):
        assert {(scope, 'weight gradient'), (scope, 'input gradient')} <= found
    assert {('digit_caps', 'backward'), ('decoder', 'backward')} <= found
    # Every pass found is one that flops_by_scope counts, or a convolution's leftover backward ops.
    counted = set(bench.flops_by_scope(3))
    assert found - counted <= {('conv1', 'backward'), ('primary_caps', 'backward')}


def test_profile_by_layer_is_reported_as_time_and_rate_of_its_flops():
    figures = fake_figures()
    figures['project']['profile'] = {'MatMul': [30.0, 4]}
    figures['project']['profile_layers'] = {'primary_caps forward': 100.0, 'primary_caps input gradient': 400.0,
                                            'primary_caps backward': 5.0, 'digit_caps forward': 10.0}
    args = bench.parse_args(['--quick', '--profile'])
    text, rows = bench.report(args, figures, 0.5)
    assert 'the same step by layer' in text
    times = {r['implementation'] for r in rows if r['measurement'] == 'profile_layer_ms'}
    rates = {r['implementation']: float(r['value']) for r in rows if r['measurement'] == 'profile_layer_gflops'}
    assert times == set(figures['project']['profile_layers'])
    # A pass that counts no FLOPs (ReluGrad and the like) has a time and no rate.
    assert set(rates) == times - {'primary_caps backward'}
    flops = bench.flops_by_scope(args.iter_routing)
    # GFLOP/s = the layer's FLOPs for the batch over its summed time.
    expected = flops[('primary_caps', 'input gradient')] * args.batch_size / 1e9 / 0.4
    assert abs(rates['primary_caps input gradient'] - expected) < 1e-4 * expected
    # The scopes' FLOPs are the layers' FLOPs regrouped: together the training step's.
    assert abs(sum(flops.values()) - bench.flops_per_image(args.iter_routing)[1]) < 1
    assert flops[('primary_caps', 'weight gradient')] == flops[('primary_caps', 'forward')]


def test_the_matmul_roof_is_the_fastest_of_its_repeats(monkeypatch):
    # A shared host slows some repeats; the roof is what the machine can reach, so the best one counts.
    seconds = iter([9.0, 0.5, 2.0, 1.0])           # the untimed warm-up, then three timed repeats
    monkeypatch.setattr(bench, 'timed_runs',
                        lambda sess, fetches, count: [next(seconds) for _ in range(count)])
    result = bench.task_matmul(dict(size=64, repeats=3))
    assert result['matmul_gflops_float32'] == pytest.approx(2.0 * 64 ** 3 / 0.5 / 1e9)


def test_inference_is_timed_over_its_own_number_of_steps():
    assert bench.parse_args([]).infer_steps == 15
    assert bench.parse_args(['--infer_steps', '40']).infer_steps == 40
    assert bench.parse_args(['--quick']).infer_steps == 1
    assert bench.train_task(bench.parse_args(['--infer_steps', '7']))['infer_steps'] == 7
    with pytest.raises(ConfigError, match='--infer_steps must be at least 1'):
        bench.parse_args(['--infer_steps', '0'])
