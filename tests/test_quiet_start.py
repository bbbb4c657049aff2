"""Commands start without TensorFlow's C++ log lines, unless the user sets TF_CPP_MIN_LOG_LEVEL."""
import os
import re
import subprocess
import sys

import pytest
from conftest import ROOT, tiny_run_args, write_dataset

from runtime import quiet_start

# What TensorFlow 2.21 printed on a CPU machine before the first step.
NOISE = re.compile(r'cuInit|oneDNN|E0000|I0000|W0000|absl::InitializeLog|cpu_feature_guard|cudart')


def environment(**settings):
    env = {k: v for k, v in os.environ.items() if k != 'TF_CPP_MIN_LOG_LEVEL'}  # conftest sets one
    env.update(settings)
    return env


def test_user_level_wins(monkeypatch):
    monkeypatch.setenv('TF_CPP_MIN_LOG_LEVEL', '0')
    assert quiet_start.quiet_tensorflow_logs() is False
    assert os.environ['TF_CPP_MIN_LOG_LEVEL'] == '0'
    monkeypatch.delenv('TF_CPP_MIN_LOG_LEVEL')
    assert quiet_start.quiet_tensorflow_logs() is True
    assert os.environ['TF_CPP_MIN_LOG_LEVEL'] == '3'


@pytest.mark.slow
def test_training_starts_quietly(tmp_path):
    data = write_dataset(tmp_path / 'data')
    args = tiny_run_args(data, tmp_path, '--max_steps', '2', '--val_sum_freq', '2')
    done = subprocess.run([sys.executable, 'main.py'] + args, cwd=ROOT, env=environment(),
                          capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    assert 'step 2: validation accuracy' in done.stdout
    noise = [line for line in done.stderr.splitlines() if NOISE.search(line)]
    assert noise == [], noise


@pytest.mark.slow
def test_user_level_zero_shows_tensorflow_logs():
    code = ('from runtime.quiet_start import import_tensorflow_quietly\n'
            'import_tensorflow_quietly()\n'
            'import tensorflow as tf\n'
            'tf.constant(1).numpy()\n')
    quiet, loud = (subprocess.run([sys.executable, '-c', code], cwd=ROOT, env=environment(**level),
                                  capture_output=True, text=True, timeout=600)
                   for level in ({}, {'TF_CPP_MIN_LOG_LEVEL': '0'}))
    assert quiet.returncode == 0 and loud.returncode == 0, loud.stderr
    assert quiet.stderr == ''
    assert loud.stderr.strip() != ''  # e.g. the CPU-feature or CUDA notices, whatever this machine has
