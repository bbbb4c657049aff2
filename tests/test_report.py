"""tools.report: a run's small records copied into the repository (never shrunk), the validation
curves drawn from them byte for byte the same each time, and the docs' tables rewritten only between
their markers, so that the docs and the committed records cannot silently disagree."""
import json
import os

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
           '| 99.10 % (90 errors) |' in table
    assert '| seed 2 | 3.0 of 50 (1 287 steps) | bfloat16 | AMD EPYC x 2 | 98.20 % (858) | - | - |' in table
    assert '| **mean ± sd over seeds** | | | | 98.20 ± 0.00 % (n=2) | 99.00 % (n=1) | 99.10 % (n=1) |' in table
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


def test_hardware_cell_names_only_the_sessions_about_json_describes():
    record = {'about': {'hardware_names': {'AMD EPYC x 2': 'AMD EPYC Zen 5 x 2 (AVX-512 BF16)'}},
              'sessions': [{'hardware': 'AMD EPYC x 2'}, {'hardware': 'Intel(R) Xeon(R) Processor x 2'},
                           {'hardware': 'Xeon x 2 (Emerald Rapids; AMX)', 'machine': {}},
                           {'hardware': 'AMD EPYC x 2'}]}
    assert report.hardware_cell(record) == ('AMD EPYC Zen 5 x 2 (AVX-512 BF16) / Intel(R) Xeon(R) Processor x 2 / '
                                            'Xeon x 2 (Emerald Rapids; AMX)')
