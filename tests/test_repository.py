"""The repository keeps the shape the README promises: the original script in front, no machine paths,
docs that exist, no module that imports the main.py command or edits sys.path, and a model layer that
imports nothing built on top of it."""
import ast
import re
import shutil
import subprocess
import sys

import pytest
from conftest import ROOT

ORIGINAL_FILES = {'main.py', 'capsNet.py', 'capsLayer.py', 'config.py', 'utils.py', 'download_data.py'}
USER_COMMANDS = {'predict.py'}
ROOT_TEXT_FILES = {'README.md', 'requirements.txt', 'requirements-dev.txt', 'pyproject.toml', '.gitignore'}
# Built from pieces so that this file does not match its own patterns.
MACHINE_PATH = re.compile('(?<![\\w.])/(?:' + '|'.join(['wo' + 'rk', 'ho' + 'me', 'ro' + 'ot', 'Us' + 'ers', 'tm' + 'p/pytest'])
                          + ')/[\\w.-]+')
ISSUE_NUMBER = re.compile('(?i)\\b' + 'iss' + 'ue' + ' ?#\\d+')


def tracked_files():
    if shutil.which('git') is None or not (ROOT / '.git').exists():
        pytest.skip('not a git checkout: the tracked files are unknown')
    out = subprocess.run(['git', 'ls-files', '-z'], cwd=str(ROOT), capture_output=True, check=True).stdout
    return [name for name in out.decode().split('\0') if name]


def tracked_text():
    for name in tracked_files():
        path = ROOT / name
        if not path.is_file():
            continue  # deleted in the work tree, not yet committed
        raw = path.read_bytes()
        if b'\0' in raw[:4096]:
            continue  # binary (PNG figures, weights)
        yield name, raw.decode('utf-8', errors='replace')


def test_no_machine_paths_or_issue_numbers_in_tracked_text():
    found = []
    for name, text in tracked_text():
        for pattern in (MACHINE_PATH, ISSUE_NUMBER):
            found += ['%s:%d: %s' % (name, text[:m.start()].count('\n') + 1, m.group(0))
                      for m in pattern.finditer(text)]
    assert not found, 'machine paths or issue numbers in tracked files:\n' + '\n'.join(found)


def test_root_holds_the_original_script_and_folders():
    root_files = {name for name in tracked_files() if '/' not in name}
    unexpected = root_files - ORIGINAL_FILES - USER_COMMANDS - ROOT_TEXT_FILES
    assert not unexpected, 'files at the root beyond the original script: %s' % sorted(unexpected)
    assert ORIGINAL_FILES <= root_files


def test_nothing_imports_main_and_nothing_edits_sys_path():
    offenders = []
    for name, text in tracked_text():
        if not name.endswith('.py'):
            continue
        for m in re.finditer(r'^\s*(import main\b|from main import)|\bsys\.path\s*(\.\s*(insert|append|extend)|\[|\+?=)',
                             text, re.M):
            offenders.append('%s: %s' % (name, m.group(0).strip()))
    assert not offenders, '\n'.join(offenders)


# The model (capsLayer, capsNet) and what it is built from (model_spec) sit at the bottom: the flags, the
# run machinery, the data readers and the commands import them, never the reverse, so the model can be
# built, read and tested on its own.
MODEL_LAYER = ['capsLayer.py', 'capsNet.py'] + sorted(str(p.relative_to(ROOT)) for p in (ROOT / 'model_spec').glob('**/*.py'))
ABOVE_THE_MODEL = {'config', 'runtime', 'utils', 'readers', 'evaluation', 'tools', 'main', 'predict',
                   'download_data', 'dist_version', 'benchmarks'}
# model_spec is what config.py takes its flag defaults from before TensorFlow loads.
TENSORFLOW_USERS = {'tensorflow', 'capsLayer', 'capsNet'}


def imported_packages(path):
    """The top-level package of every absolute import in a file, wherever in the file it is."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(alias.name.split('.')[0] for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            found.add(node.module.split('.')[0])
    return found


def test_the_model_layer_imports_nothing_above_it():
    assert 'model_spec/__init__.py' in MODEL_LAYER
    offenders = {}
    for name in MODEL_LAYER:
        forbidden = ABOVE_THE_MODEL | (TENSORFLOW_USERS if name.startswith('model_spec/') else set())
        wrong = imported_packages(ROOT / name) & forbidden
        if wrong:
            offenders[name] = sorted(wrong)
    assert not offenders, 'the model layer imports from above it: %s' % offenders


def test_config_imports_without_tensorflow():
    # The flags are parsed, and --help answered, before TensorFlow loads; config takes its defaults
    # from model_spec, so neither may pull TensorFlow in.
    code = 'import sys, config, model_spec; print(sorted(m for m in sys.modules if m.split(".")[0] == "tensorflow"))'
    done = subprocess.run([sys.executable, '-c', code], cwd=str(ROOT), capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == '[]', done.stdout


def test_readme_fits_a_page_and_its_links_exist():
    readme = (ROOT / 'README.md').read_text()
    assert len(readme.splitlines()) <= 250
    links = re.findall(r'\]\(([^)#\s]+)(?:#[^)]*)?\)', readme)
    assert links, 'the README links into docs/'
    missing = [link for link in links if '://' not in link and not (ROOT / link).exists()]
    assert not missing, 'README links to missing files: %s' % missing


def test_docs_link_to_files_that_exist():
    missing = []
    for doc in sorted((ROOT / 'docs').glob('*.md')):
        for link in re.findall(r'\]\(([^)#\s]+)(?:#[^)]*)?\)|src="([^"]+)"', doc.read_text()):
            target = next(part for part in link if part)
            if '://' not in target and not (doc.parent / target).exists():
                missing.append('%s -> %s' % (doc.name, target))
    assert not missing, '\n'.join(missing)


def test_project_files_leave_out_virtualenvs_made_inside_the_checkout(tmp_path):
    # CI makes .venv-ci inside the checkout; the scans of the project's own code must not read it.
    from conftest import project_python_files
    for name in ('tools/a.py', 'main.py', '.venv-ci/lib/site.py', 'venv/lib/app.py', 'tools/__pycache__/a.py',
                 '.git/hook.py'):
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / name).write_text("if __name__ == '__main__':\n    pass\n")
    for venv in ('.venv-ci', 'venv'):
        (tmp_path / venv / 'pyvenv.cfg').write_text('home = /usr/bin\n')
    found = [str(p.relative_to(tmp_path)) for p in project_python_files(tmp_path)]
    assert found == ['main.py', 'tools/a.py']
