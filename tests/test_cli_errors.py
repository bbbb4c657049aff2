"""Every command's one-line answers to the mistakes a user makes with paths and flags, before TensorFlow
loads where it can: a file where a folder belongs, a folder where a file belongs, permissions, full or
read-only disks, mistyped flags; and the --help text."""
import errno
import json
import logging
import os
import subprocess
import sys

import pytest
from conftest import ROOT, project_python_files, run_main

import config
import download_data
from runtime import cli, quiet_start
from runtime.errors import run_cli


def one_error_line(err, *words):
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith('error: '), err
    for word in words:
        assert word in lines[0], (word, lines[0])
    return lines[0]


def raising(error):
    def body():
        raise error
    return body


@pytest.mark.parametrize('code, words', [
    (errno.ENOSPC, ['cannot write', 'No space left on device', 'free disk space or fix permissions']),
    (errno.EACCES, ['permission denied for', 'fix its permissions (chmod, chown) or choose another path']),
    (errno.EPERM, ['permission denied for', 'fix its permissions']),
    (errno.EROFS, ['is on a read-only file system; choose a path on a writable disk']),
    (errno.EISDIR, ['is a folder, not a file; give a file name']),
])
def test_user_caused_os_errors_are_one_line_naming_path_and_fix(code, words, capsys):
    error = OSError(code, os.strerror(code), 'some/where/out.csv')
    assert run_cli(raising(error)) == 1
    one_error_line(capsys.readouterr().err, 'some/where/out.csv', *words)


def test_file_exists_and_not_a_directory_name_the_file_in_the_way(tmp_path, capsys):
    blocker = tmp_path / 'plain_file'
    blocker.write_text('x')
    assert run_cli(lambda: os.makedirs(blocker, exist_ok=True)) == 1
    one_error_line(capsys.readouterr().err, '%s is a file, not a folder; move it away or choose another path' % blocker)
    assert run_cli(lambda: os.makedirs(blocker / 'sub' / 'deeper')) == 1
    one_error_line(capsys.readouterr().err, 'cannot use %s: ' % (blocker / 'sub'),
                   '%s is a file, not a folder; move that file away or choose another path' % blocker)


def test_other_os_errors_and_bugs_keep_their_traceback():
    # A missing file the code did not expect, or an OSError without errno, is a bug to see in full.
    with pytest.raises(FileNotFoundError):
        run_cli(raising(FileNotFoundError(errno.ENOENT, 'No such file or directory', 'x')))
    with pytest.raises(OSError):
        run_cli(raising(OSError('no errno')))
    with pytest.raises(ZeroDivisionError):
        run_cli(lambda: 1 / 0)


def test_main_logdir_that_is_a_file(tmp_path, capsys):
    logdir = tmp_path / 'logdir'
    logdir.write_text('not a folder')
    assert run_main(['--logdir', str(logdir), '--results', str(tmp_path / 'results')]) == 1
    one_error_line(capsys.readouterr().err,
                   '--logdir=%s is a file, not a folder; move it away or choose another --logdir' % logdir)
    assert not (tmp_path / 'results').exists()


def test_main_results_under_a_file_leaves_no_lock_in_logdir(tmp_path, capsys):
    blocker = tmp_path / 'results_file'
    blocker.write_text('x')
    logdir = tmp_path / 'logdir'
    code = run_main(['--logdir', str(logdir), '--results', str(blocker / 'results')])
    assert code == 1
    one_error_line(capsys.readouterr().err, '--results=%s' % (blocker / 'results'),
                   'cannot be a folder: %s is a file; move it away or choose another --results' % blocker)
    assert not (logdir / 'run.lock').exists() and not logdir.exists()


def test_main_bad_flag_is_one_line_exit_2(capsys):
    assert run_main(['--bogus']) == 2
    one_error_line(capsys.readouterr().err, 'bad flag: unrecognized arguments: --bogus (see python main.py --help)')


def test_main_shift_pixels_too_large_is_one_line_exit_2(capsys):
    assert run_main(['--shift_pixels', '14']) == 2
    one_error_line(capsys.readouterr().err, '--shift_pixels=14 would shift a 28x28 digit out of the image; use 0-13')


def test_download_data_bad_flag_is_one_line_exit_2(capsys):
    assert download_data.main(['--bogus']) == 2
    one_error_line(capsys.readouterr().err, 'bad flag: unrecognized arguments: --bogus',
                   'see python download_data.py --help')


def command_modules():
    """Every command of the repository as `python -m` names it: each module that runs as __main__."""
    modules = []
    for path in project_python_files():
        relative = path.relative_to(ROOT)
        if relative.parts[0] == 'tests' or "__name__ == '__main__'" not in path.read_text():
            continue
        modules.append('.'.join(relative.with_suffix('').parts))
    return modules


COMMANDS = command_modules()

# Runs `python -m MODULE --help`, then `python -m MODULE --no_such_flag`, in one fresh interpreter, as
# the shell would (runpy, run_name='__main__'), and reports what each printed and whether TensorFlow
# was imported by then.
ANSWERS_WITHOUT_TENSORFLOW = """
import contextlib, io, json, runpy, sys
answers = {}
for argv in (['--help'], ['--no_such_flag']):
    sys.argv = [%(module)r] + argv
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            runpy.run_module(%(module)r, run_name='__main__', alter_sys=True)
            code = 'returned without exiting'
        except SystemExit as e:
            code = 0 if e.code is None else e.code
    answers[argv[0]] = {'code': code, 'out': out.getvalue(), 'err': err.getvalue(),
                        'tensorflow': 'tensorflow' in sys.modules}
print(json.dumps(answers))
"""


def test_every_command_is_checked_for_a_quiet_help():
    # A command added later must come up here by itself; these are the ones known today.
    assert {'main', 'predict', 'download_data', 'tools.figures', 'tools.export_pretrained', 'tools.plot',
            'tools.report', 'tools.reproduce', 'tools.study_routing', 'dist_version.distributed_train',
            'dist_version.bench_towers', 'benchmarks.bench'} <= set(COMMANDS)


@pytest.mark.parametrize('module', COMMANDS)
def test_help_and_bad_flags_answer_without_loading_tensorflow(module):
    done = subprocess.run([sys.executable, '-c', ANSWERS_WITHOUT_TENSORFLOW % {'module': module}], cwd=ROOT,
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stderr == '', done.stderr  # nothing printed around the captured streams either
    answers = json.loads(done.stdout)
    shown = answers['--help']
    assert (shown['code'], shown['err']) == (0, ''), shown
    assert shown['out'].startswith('usage: ') and '--help' in shown['out'], shown['out'][:300]
    refused = answers['--no_such_flag']
    assert (refused['code'], refused['out']) == (2, ''), refused
    line = one_error_line(refused['err'], 'bad flag: ')
    # The line sends the user to the --help of the command they typed, not to another one's.
    typed = 'python %s.py' % module if '.' not in module else 'python -m %s' % module
    assert line.endswith('(see %s --help)' % typed), line
    assert not shown['tensorflow'] and not refused['tensorflow'], 'TensorFlow was imported'


def test_help_does_not_repeat_a_default_the_text_spells_out():
    import predict
    for text in (config.build_parser().format_help(), predict.build_parser().format_help(),
                 cli.command_parser('x').format_help()):
        assert '(default: None)' not in text
    main_help = ' '.join(config.build_parser().format_help().split())
    assert '(default data/DATASET)' in main_help
    assert 'training batch size (default: 128)' in main_help  # a default the text does not give is still shown


def test_tensorflow_python_loggers_are_quiet_unless_level_zero(monkeypatch):
    loggers = [logging.getLogger(name) for name in quiet_start.PYTHON_LOGGERS]
    saved = [logger.level for logger in loggers]
    try:
        for logger in loggers:
            logger.setLevel(logging.NOTSET)
        monkeypatch.setenv('TF_CPP_MIN_LOG_LEVEL', '0')
        assert quiet_start.quiet_python_logs() is False
        assert all(logger.isEnabledFor(logging.WARNING) for logger in loggers)
        for level in ('3', '2', '1'):
            monkeypatch.setenv('TF_CPP_MIN_LOG_LEVEL', level)
            assert quiet_start.quiet_python_logs() is True
            assert not any(logger.isEnabledFor(logging.WARNING) for logger in loggers)
            assert all(logger.isEnabledFor(logging.ERROR) for logger in loggers)
            for logger in loggers:
                logger.setLevel(logging.NOTSET)
    finally:
        for logger, level in zip(loggers, saved):
            logger.setLevel(level)


def test_check_output_folders_accepts_new_and_existing_folders(tmp_path):
    from runtime import cli
    (tmp_path / 'there').mkdir()
    cli.check_output_folders((str(tmp_path / 'there'), '--logdir'), (str(tmp_path / 'new' / 'deep'), '--results'),
                             ('relative/new', '--logdir'))
