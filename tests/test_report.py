"""tools.report: a run's small records copied into the repository (never shrunk), the validation
curves drawn from them byte for byte the same each time, and the docs' tables rewritten only between
their markers, so that the docs and the committed records cannot silently disagree."""
import json
import os
import re

import pytest
from conftest import ROOT

from runtime.errors import UserError
from tools import report


def make_run(folder, val_rows=3, sessions=1, tested=False):
    """A run folder as tools.reproduce leaves it, with machine paths inside and a checkpoint."""
    (folder / 'results').mkdir(parents=True, exist_ok=True)
    (folder / 'logdir' / 'best').mkdir(parents=True, exist_ok=True)
    (folder / 'results' / 'val_acc.csv').write_text(
        'step,val_acc\n' + ''.join('%d,%g\n' % (429 * k, 0.98 + 0.001 * k) for k in range(1, val_rows + 1))
        + '%d,0.9' % (429 * (val_rows + 1)))  # a row being written: not collected
    for name in ('loss', 'train_acc'):
        (folder / 'results' / (name + '.csv')).write_text('step,%s\n100,0.5\n200,0.4\n' % name)
    (folder / 'logdir' / 'flags.json').write_text(json.dumps({
        'batch_size': 128, 'val_size': 5000, 'epoch': 50, 'precision': 'bfloat16', 'seed': 1,
        'logdir': str(folder / 'logdir'), 'results': str(folder / 'results'),
        'data_dir': '/srv/somewhere/data/mnist', 'flagfile': ['/opt/checkout/configs/paper.flags']}))
    (folder / 'logdir' / 'best' / 'best.json').write_text(json.dumps({'step': 858, 'val_acc': 0.982}))
    (folder / 'logdir' / 'model.ckpt-1287.index').write_bytes(b'\0checkpoint')
    (folder / 'run.json').write_text(json.dumps({'sessions': [
        {'wall_s': 10.0, 'exit_code': 75, 'commit': 'abc1234', 'hardware': 'AMD EPYC x 2',
         'command': 'python main.py --logdir %s --data_dir=/srv/somewhere/data/mnist' % (folder / 'logdir')}
    ] * sessions}))
    if tested:
        (folder / 'tested.json').write_text(json.dumps({
            '858': {'test_acc': 0.99, 'errors': 100, 'images': 10000, 'tested_as': 'best'},
            '1287': {'test_acc': 0.991, 'errors': 90, 'images': 10000, 'tested_as': 'latest'}}))
    return folder


def test_collect_copies_the_small_records_with_neutral_paths_and_is_idempotent(tmp_path):
    run, root = make_run(tmp_path / 'runs' / 'seed1'), tmp_path / 'repo'
    changed = report.collect(str(run), 'paper/seed1', str(root))
    record = root / 'docs' / 'results' / 'paper' / 'seed1'
    assert sorted(changed) == sorted(os.listdir(record)) == sorted(
        ['val_acc.csv', 'loss.csv', 'train_acc.csv', 'run.json', 'flags.json', 'best.json'])  # no checkpoint
    assert (record / 'val_acc.csv').read_text() == 'step,val_acc\n429,0.981\n858,0.982\n1287,0.983\n'
    flags = json.loads((record / 'flags.json').read_text())
    assert (flags['logdir'], flags['results'], flags['data_dir'], flags['flagfile']) == (
        'RUN/logdir', 'RUN/results', 'data/mnist', ['configs/paper.flags'])
    command = json.loads((record / 'run.json').read_text())['sessions'][0]['command']
    assert command == 'python main.py --logdir RUN/logdir --data_dir=data/mnist'
    text = ''.join(p.read_text() for p in record.iterdir())
    assert str(tmp_path) not in text and '/srv' not in text and '/opt' not in text
    assert report.collect(str(run), 'paper/seed1', str(root)) == []  # the same run again: nothing changes
    # The run goes on: more rows and the tests are taken in.
    make_run(run, val_rows=5, sessions=2, tested=True)
    assert set(report.collect(str(run), 'paper/seed1', str(root))) == {
        'val_acc.csv', 'run.json', 'tested.json'}
    assert json.loads((record / 'tested.json').read_text())['1287']['errors'] == 90


def test_collect_refuses_to_shrink_a_record_and_writes_nothing(tmp_path, capsys):
    root = tmp_path / 'repo'
    report.collect(str(make_run(tmp_path / 'long', val_rows=5, sessions=2)), 'paper/seed1', str(root))
    record = root / 'docs' / 'results' / 'paper' / 'seed1'
    before = {p.name: p.read_bytes() for p in record.iterdir()}
    stale = make_run(tmp_path / 'stale', val_rows=2, sessions=3)  # fewer validation rows, more sessions
    with pytest.raises(UserError, match=r'refusing to replace docs/results/paper/seed1/val_acc.csv \(5 rows\) '
                                        r'with 2 rows'):
        report.collect(str(stale), 'paper/seed1', str(root))
    assert {p.name: p.read_bytes() for p in record.iterdir()} == before  # run.json was not replaced either
    # Through the command: one line, exit 1.
    assert report.main(['--collect', str(stale), '--as', 'paper/seed1'], root=str(root)) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'refusing to replace' in err
    with pytest.raises(UserError, match='holds no run records'):
        report.collect(str(tmp_path / 'empty'), 'paper/seed1', str(root))
    with pytest.raises(UserError, match='give a name'):
        report.collect(str(stale), '../outside', str(root))


DOC = '''# A doc

Text before, kept as it is.
<!-- results:paper begin -->
an old table
<!-- results:paper end -->
Text between.
<!-- results:peers begin -->
<!-- results:peers end -->
Text after.
'''


def test_rewrite_changes_only_what_lies_between_the_markers_and_is_idempotent():
    contents = {'paper': '| new | table |\n', 'peers': '| peers |\n'}
    once = report.rewrite(DOC, contents)
    assert once == DOC.replace('an old table\n', '| new | table |\n').replace(
        '<!-- results:peers begin -->\n', '<!-- results:peers begin -->\n| peers |\n')
    assert report.rewrite(once, contents) == once
    assert report.rewrite('no markers here\n', contents) == 'no markers here\n'
    for broken in (DOC.replace('<!-- results:paper end -->', ''),
                   DOC + '<!-- results:paper begin -->\n<!-- results:paper end -->\n'):
        with pytest.raises(UserError, match='markers of the paper table are broken'):
            report.rewrite(broken, contents, 'README.md')


def test_one_command_redraws_the_same_figure_and_tables_byte_for_byte(tmp_path, capsys):
    root = tmp_path / 'repo'
    (root / 'docs').mkdir(parents=True)
    for doc in report.DOCS:
        (root / doc).write_text(DOC)
    report.collect(str(make_run(tmp_path / 'run1', val_rows=4, tested=True)), 'paper/seed1', str(root))
    report.collect(str(make_run(tmp_path / 'run2', val_rows=3)), 'paper/seed2', str(root))
    assert report.main([], root=str(root)) == 0
    figure = (root / report.FIGURE).read_bytes()
    docs = {doc: (root / doc).read_text() for doc in report.DOCS}
    assert figure.startswith(b'\x89PNG') and b'Software' not in figure and b'Creation Time' not in figure
    assert report.main([], root=str(root)) == 0
    assert 'already up to date' in capsys.readouterr().out.splitlines()[-1]
    assert (root / report.FIGURE).read_bytes() == figure
    assert {doc: (root / doc).read_text() for doc in report.DOCS} == docs
    table = docs['README.md']
    assert '| seed 1 | 4.0 of 50 (1 716 steps) | bfloat16 | AMD EPYC x 2 | 98.20 % (858) | 99.00 % (100 errors) ' \
           '| 99.10 % (90 errors) | 19 734 steps |' in table
    assert '| seed 2 | 3.0 of 50 (1 287 steps) | bfloat16 | AMD EPYC x 2 | 98.20 % (858) | - | - | 20 163 steps |' in table
    # Seed 2 is still training (no test yet): its best validation stays out of the mean.
    assert '| **mean ± sd over finished seeds** | | | | 98.20 % (n=1) | 99.00 % (n=1) | 99.10 % (n=1) | |' in table
    assert 'Text before, kept as it is.' in table and 'arXiv:1710.09829' in table
    # --check reports a doc that lags the records, and writes nothing.
    (root / 'README.md').write_text(DOC)
    assert report.main(['--check'], root=str(root)) == 1
    assert 'README.md differ from the records' in capsys.readouterr().err
    assert (root / 'README.md').read_text() == DOC


def test_the_committed_docs_agree_with_the_committed_records():
    # Fails when a record was collected (or a table edited by hand) without running python -m tools.report.
    assert report.stale_docs(str(ROOT)) == [], 'run python -m tools.report and commit what it rewrites'
    with open(ROOT / 'README.md') as f:
        assert len(f.read().splitlines()) <= 250


def test_the_original_scripts_curve_is_its_published_routing_3_numbers():
    steps = [s for s, _ in report.ORIGINAL_SCRIPT_VAL_ACC]
    assert steps == list(range(500, 21501, 500))
    # Spot values of naturomics/CapsNet-Tensorflow results/mnist/3_iter_val_acc.csv: 4 974 of 4 992 at 5 500.
    assert dict(report.ORIGINAL_SCRIPT_VAL_ACC)[5500] == pytest.approx(4974 / 4992, abs=1e-9)
    assert dict(report.ORIGINAL_SCRIPT_VAL_ACC)[500] == pytest.approx(4932 / 4992, abs=1e-9)


def test_time_still_to_train_comes_from_the_pace_of_the_latest_machine_and_covers_unstarted_seeds(tmp_path):
    records = []
    for seed, sessions in ((1, [{'hardware': 'old CPU x 2', 'wall_s': 9000.0, 'steps': [0, 900],
                                 'started': '2026-11-01 10:00 UTC'},
                                {'hardware': 'new CPU x 2', 'wall_s': 1000.0, 'steps': [900, 1900],
                                 'started': '2026-12-01 10:00 UTC'},
                                {'hardware': 'new CPU x 2', 'wall_s': 10.0, 'exit_code': 75,
                                 'started': '2026-12-02 10:00 UTC'}]),  # an older record: no steps
                           (3, [{'hardware': 'new CPU x 2', 'wall_s': 2000.0, 'steps': [0, 1000],
                                 'started': '2026-12-02 11:00 UTC'}])):
        run = make_run(tmp_path / ('seed%d' % seed))
        (run / 'run.json').write_text(json.dumps({'sessions': sessions}))
        report.collect(str(run), 'paper/seed%d' % seed, str(tmp_path))
        records.append(report.load_record(str(tmp_path / 'docs' / 'results' / 'paper' / ('seed%d' % seed))))
    # The two sessions on the newest machine: 3 000 s for 2 000 steps; the old machine's slower pace is left out.
    assert report.pace(records)[:4] == (1.5, 'new CPU x 2', 2, 2000)
    table = report.results_table(records, planned=[1, 2, 3])
    lines = table.splitlines()
    assert [line.split(' | ')[0] for line in lines[2:5]] == ['| seed 1', '| seed 2', '| seed 3']
    # 21 450 steps in all (50 epochs of 429), 1 287 trained: 20 163 left at 1.5 s a step.
    assert lines[2].endswith('| 20 163 steps, about 8.4 h |')
    assert lines[3] == '| seed 2 | not started (0 of 50) | - | - | - | - | - | 21 450 steps, about 8.9 h |'
    assert 'at 1.50 s a step' in table and 'the 2 latest training sessions on new CPU x 2 (2 000 steps, ' \
                                          '2026-12-01 to 2026-12-02)' in table
    assert report.results_table(records[:1], planned=[]).count('| seed') == 1  # no plan: only what exists
    assert report.still_to_train(0, 1.5) == 'done' and report.pace([]) is None


def test_multimnist_table_shows_the_pairs_seen_and_the_latest_test_beside_the_paper(tmp_path):
    run = make_run(tmp_path / 'mm')
    flags = json.loads((run / 'logdir' / 'flags.json').read_text())
    flags.update(dataset='multimnist', epoch=1091)
    (run / 'logdir' / 'flags.json').write_text(json.dumps(flags))
    (run / 'run.json').unlink()  # trained by main.py itself: about.json names the machine
    (run / 'results' / 'multimnist_test.csv').write_text(
        'step,pair_error,pair_errors,pairs,single_digit_acc,single_digit_errors,digits\n'
        '858,0.5,5000,10000,0.9,1000,10000\n1287,0.25,2500,10000,0.95,500,10000\n1300,0.2,2000,10000,0.96,400,10000\n')
    report.collect(str(run), 'multimnist/seed1', str(tmp_path))
    (tmp_path / 'docs' / 'results' / 'multimnist' / 'seed1' / 'about.json').write_text(
        json.dumps({'label': 'seed 1, short', 'hardware': 'Some CPU x 2'}))
    table = report.multimnist_table(report.load_group('multimnist', str(tmp_path)))
    # Tested at step 1 300, past the last metrics row: 1 300 steps of 128 pairs; an epoch is 429 steps
    # (55 000 training images paired once each).
    assert '| seed 1, short | 166 400 (3.0 epochs) | bfloat16 | Some CPU x 2 | 98.20 % (858) | ' \
           '20.00 % (2000 of 10 000 pairs; step 1 300) | 96.00 % (400 errors) |' in table
    assert table.splitlines()[-1] == '| the paper (Sabour et al., 2017, section 6) | 60 M (1 000 per training ' \
                                     'image) | - | - | - | 5.2 % | - |'


def test_precision_table_sets_bfloat16_minus_float32_beside_the_spread_of_the_bfloat16_seeds(tmp_path):
    def record(name, precision, seed, values):
        run = make_run(tmp_path / name, val_rows=0)
        flags = json.loads((run / 'logdir' / 'flags.json').read_text())
        flags.update(precision=precision, seed=seed)
        (run / 'logdir' / 'flags.json').write_text(json.dumps(flags))
        (run / 'results' / 'val_acc.csv').write_text(
            'step,val_acc\n' + ''.join('%d,%s\n' % (step, v) for step, v in values))
        report.collect(str(run), 'paper/' + name, str(tmp_path))
    record('seed1-float32', 'float32', 1, [(429, 0.99), (858, 0.992), (1287, 0.993)])
    record('seed1', 'bfloat16', 1, [(429, 0.9904), (858, 0.9916), (1000, 0.5), (1287, 0.9934)])
    record('seed2', 'bfloat16', 2, [(429, 0.9894), (858, 0.9926)])   # shorter: epoch 3 has no spread
    records = report.load_group('paper', str(tmp_path))
    lines = report.precision_table(records).splitlines()
    assert lines[0] == ('| epoch | seed 1, float32 | seed 1, bfloat16 | bfloat16 - float32, points | '
                        'seed 2, bfloat16 | spread of the bfloat16 seeds, points |')
    # Step 1 000 is no epoch's end and is left out; epoch 3 has one bfloat16 seed, so no spread.
    assert lines[2:5] == ['| 1 | 99.00 % | 99.04 % | +0.04 | 98.94 % | 0.10 |',
                          '| 2 | 99.20 % | 99.16 % | -0.04 | 99.26 % | 0.10 |',
                          '| 3 | 99.30 % | 99.34 % | +0.04 | - | - |']
    # Epochs 1-2: |difference| 0.04 on average against a spread of 0.10.
    assert ('Over the 2 epochs with both (one validation image is 0.02 points): bfloat16 and float32 of '
            'seed 1 differ by 0.04 points on average (absolute; bfloat16 higher at 1 of them), the 2 '
            'bfloat16 seeds among themselves by 0.10: the change from bfloat16 is within the seed-to-seed '
            'spread.') in lines[-1]
    # Without a float32 run of a bfloat16 seed there is nothing to compare.
    assert report.precision_table([r for r in records if r['name'] != 'seed1-float32']) == ''
    # A seed whose run was lost with its machine still counts through its attempt's records.
    record('seed2-lost', 'bfloat16', 2, [(429, 0.9884), (858, 0.9920), (1287, 0.9950)])
    records = [r for r in report.load_group('paper', str(tmp_path)) if r['name'] != 'seed2']
    assert report.precision_table(records).splitlines()[2:5] == [
        '| 1 | 99.00 % | 99.04 % | +0.04 | 98.84 % | 0.20 |', '| 2 | 99.20 % | 99.16 % | -0.04 | 99.20 % | 0.04 |',
        '| 3 | 99.30 % | 99.34 % | +0.04 | 99.50 % | 0.16 |']


def test_hardware_cell_names_only_the_sessions_about_json_describes():
    record = {'about': {'hardware_names': {'AMD EPYC x 2': 'AMD EPYC Zen 5 x 2 (AVX-512 BF16)'}},
              'sessions': [{'hardware': 'AMD EPYC x 2'}, {'hardware': 'Intel(R) Xeon(R) Processor x 2'},
                           {'hardware': 'Xeon x 2 (Emerald Rapids; AMX)', 'machine': {}},
                           {'hardware': 'AMD EPYC x 2'}]}
    assert report.hardware_cell(record) == ('AMD EPYC Zen 5 x 2 (AVX-512 BF16) / Intel(R) Xeon(R) Processor x 2 / '
                                            'Xeon x 2 (Emerald Rapids; AMX)')


# ---------------------------------------------------------------------------------------------------
# Benchmark and robustness records

def write_bench_record(root, name='xeon-test', yardstick=True):
    """A benchmark record as it is kept: the CSV the benchmark itself writes (from made-up figures on a
    made-up Sapphire Rapids), an about.json and a yardstick.csv."""
    from test_bench import fake_figures
    from test_provenance import SAPPHIRE_RAPIDS

    from benchmarks import bench
    from tools import provenance
    figures = fake_figures()
    figures['project']['infer_large_batch_images_per_s'] = 250.0
    figures['project']['profile'] = {'_MklNativeConv2DBackpropInput': [300.0, 1], 'Cast': [100.0, 39]}
    figures['project']['profile_layers'] = {'primary_caps weight gradient': 50.0, 'conv1 backward': 2.0}
    figures['fastest'] = ('bfloat16', {'train_images_per_s': 128.0, 'infer_images_per_s': 500.0,
                                       'train_peak_rss_mb': 1000.0})
    figures['ideas'] = {'parent-major routing (project)': dict(figures['project']),
                        'threads intra 1, inter 1': {'train_images_per_s': 32.0, 'infer_images_per_s': 300.0,
                                                     'train_peak_rss_mb': 950.0}}
    machine = provenance.machine(SAPPHIRE_RAPIDS, cores=2, load=(0.42, 0.3, 0.2), onednn=(True, 'tensorflow'))
    _, rows = bench.report(bench.parse_args(['--quick']), figures, 0.42, machine, commit='1234abc')
    folder = root / 'docs' / 'results' / 'bench' / name
    bench.write_csv(str(folder / 'bench.csv'), rows)
    (folder / 'about.json').write_text(json.dumps({
        'label': 'test pass', 'command': 'python -m benchmarks.bench --quick', 'date': '2026-12-02 01:00 UTC',
        'beside': 'nothing', 'yardstick': {'command': 'python time_lean_capsnet.py', 'load': 'at its end'}}))
    if yardstick:
        (folder / 'yardstick.csv').write_text(
            'implementation,mode,precision,images_per_s,load\n'
            'lean PyTorch CapsNet (torch 9.9),training,float32,32.0,0.5\n'
            'lean PyTorch CapsNet (torch 9.9),inference,bfloat16,250.0,0.5\n')
    return folder


PROVENANCE = ('test pass (`1234abc`): Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz x 2 (Sapphire Rapids, family 6 '
              'model 143; AVX2 AVX-512F AVX-512 BF16 AMX AMX BF16; oneDNN on)')


def test_benchmark_tables_show_a_records_figures_and_name_where_they_come_from(tmp_path):
    write_bench_record(tmp_path)
    records = report.load_bench_records(str(tmp_path))
    speed = report.speed_table(records)
    # --quick times batch 4; shares are of the same precision's matmul rate (100 and 400 GFLOP/s made up).
    from benchmarks import bench
    forward, training = bench.flops_per_image(3)
    assert '| test pass (`1234abc`) | float32 | 64.0 | 200.0 | 250.0 (batch 8) | 100.0 | %s | %s | 900 |' % (
        report.percent(64 * training / 1e9 / 100, 0), report.percent(200 * forward / 1e9 / 100, 0)) in speed
    assert '| test pass (`1234abc`) | bfloat16 | 128.0 | 500.0 | - | 400.0 | %s | %s | 1000 |' % (
        report.percent(128 * training / 1e9 / 400, 0), report.percent(500 * forward / 1e9 / 400, 0)) in speed
    # The caption line: CPU model, microarchitecture, instruction sets, oneDNN, precision, commit,
    # command and load.
    assert PROVENANCE + '; precision float32, then bfloat16; `python -m benchmarks.bench --quick`; ' \
                        'load average 0.42 before it; beside it nothing; 2026-12-02 01:00 UTC.' in speed
    yardstick = report.yardstick_table(records)
    assert '| test pass (`1234abc`) | training, float32 | 64.0 | 32.0 | 2.00× |' in yardstick
    assert '| test pass (`1234abc`) | inference, bfloat16 | 500.0 | 250.0 | 2.00× |' in yardstick
    assert 'lean PyTorch CapsNet (torch 9.9)' in yardstick and '`python time_lean_capsnet.py`' in yardstick
    baseline = report.baseline_table(records)
    assert '| test pass (`1234abc`) | training images/s | 64.0 | 64.0 | 1.00× |' in baseline
    assert '| input pipeline alone, images/s | 5 000 = 78× training |' in baseline
    profile = report.profile_table(records)
    assert '| `_MklNativeConv2DBackpropInput` | 300.0 ms (75.0 %) |' in profile
    assert '| `Cast` | 100.0 ms (25.0 %) |' in profile and PROVENANCE in profile
    # By layer: PrimaryCaps' weight-gradient FLOPs for the batch of 4 in 50 ms, against the float32 roof (100).
    flops = bench.flops_by_scope(3)[('primary_caps', 'weight gradient')] * 4 / 1e9 / 0.05
    layers = report.layers_table(records)
    assert '| test pass (`1234abc`) | primary_caps weight gradient | 50.0 ms | %.1f | %s |' % (
        flops, report.percent(flops / 100, 0)) in layers
    assert '| test pass (`1234abc`) | conv1 backward | 2.0 ms | - | - |' in layers
    ideas = report.ideas_table(records)
    # An idea's name with a comma survives the CSV's quoting; ratios are to the project's idea row.
    assert '| test pass (`1234abc`) | threads intra 1, inter 1 | 32.0 | 0.50× | 300.0 | 1.50× |' in ideas


def test_a_record_without_a_yardstick_or_a_baseline_leaves_those_tables_empty(tmp_path):
    write_bench_record(tmp_path, yardstick=False)
    records = report.load_bench_records(str(tmp_path))
    assert 'test pass' not in report.yardstick_table(records)
    assert 'test pass' in report.speed_table(records)


def test_robustness_table_shows_the_record_with_its_provenance(tmp_path):
    from evaluation import robustness
    folder = tmp_path / 'docs' / 'results' / 'robustness' / 'model-a'
    folder.mkdir(parents=True)
    labels = [0, 1, 2, 3]
    robustness.write_report(str(folder / 'robustness.csv'), labels, [0, 1, 2, 3], [0, 1, 2, 0], seed=77)
    (folder / 'about.json').write_text(json.dumps({
        'label': 'model A', 'commit': 'cafe123', 'command': 'python main.py --is_training=False --robustness',
        'precision': 'float32', 'load_before': '0.10', 'machine': {
            'cpu_model': 'AMD EPYC 9B45', 'microarchitecture': 'Zen 5', 'family_model': '26/2',
            'isa': 'AVX2 AVX-512F AVX-512 BF16', 'cores': '2', 'onednn': 'on'}}))
    table = report.robustness_table(report.load_robustness_records(str(tmp_path)))
    assert '| model A (`cafe123`) | plain | 100.00 % (0 errors) | 4 |' in table
    assert '| model A (`cafe123`) | affine-warped (seed 77) | 75.00 % (1 errors) | 4 |' in table
    assert 'model A (`cafe123`): AMD EPYC 9B45 x 2 (Zen 5, family 26 model 2; AVX2 AVX-512F AVX-512 BF16; ' \
           'oneDNN on); precision float32; `python main.py --is_training=False --robustness`; ' \
           'load average 0.10 before it.' in table


PERFORMANCE_DOC = '''# Performance
<!-- results:speed begin -->
<!-- results:speed end -->
Between.
<!-- results:yardstick begin -->
<!-- results:yardstick end -->
'''


def test_a_hand_edited_performance_table_fails_the_check(tmp_path, capsys):
    write_bench_record(tmp_path)
    for doc in report.DOCS:
        (tmp_path / doc).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / doc).write_text(PERFORMANCE_DOC if doc.endswith('performance.md') else '# Doc\n')
    assert report.main([], root=str(tmp_path)) == 0
    written = (tmp_path / 'docs' / 'performance.md').read_text()
    assert '| test pass (`1234abc`) | training, float32 | 64.0 | 32.0 | 2.00× |' in written
    assert report.main(['--check'], root=str(tmp_path)) == 0
    # A figure typed over by hand: the check names the doc and leaves it as it is.
    edited = written.replace('| 64.0 | 32.0 | 2.00× |', '| 70.0 | 32.0 | 2.19× |')
    (tmp_path / 'docs' / 'performance.md').write_text(edited)
    capsys.readouterr()
    assert report.main(['--check'], root=str(tmp_path)) == 1
    assert 'docs/performance.md differ from the records' in capsys.readouterr().err
    assert (tmp_path / 'docs' / 'performance.md').read_text() == edited


def test_the_committed_docs_are_rewritten_byte_for_byte_from_a_clean_copy(tmp_path):
    # What python -m tools.report does on a clean checkout: nothing changes, figure included.
    import shutil
    shutil.copytree(ROOT / 'docs', tmp_path / 'docs')
    shutil.copy(ROOT / 'README.md', tmp_path / 'README.md')
    assert report.regenerate(str(tmp_path)) == []


def test_every_committed_record_names_its_machine_commit_and_command():
    benches = report.load_bench_records(str(ROOT))
    robustness_records = report.load_robustness_records(str(ROOT))
    assert benches and robustness_records
    for record in benches + robustness_records:
        assert record['about'].get('command') and record['about'].get('date'), record['name']
        assert re.fullmatch(r'[0-9a-f]{7,}', record['commit']), record['name']
        assert record['machine'].get('cpu_model') and record['machine'].get('isa'), record['name']
        assert record['machine'].get('onednn') in ('on', 'off'), record['name']
        assert record['load_before'] != 'not recorded', record['name']
    for record in benches:
        assert record['rows'] and report.project_speed(record, record['precision']), record['name']
