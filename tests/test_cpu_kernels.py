"""oneDNN's kernels are chosen for every command unless the user says otherwise; bfloat16 units are
read from the CPU's flags."""
import os
import subprocess
import sys

import pytest
from conftest import ROOT

from runtime import cpu_kernels

ZEN3_FLAGS = 'processor\t: 0\nvendor_id\t: AuthenticAMD\nflags\t\t: fpu sse2 avx avx2 fma bmi2\n'
ZEN5_FLAGS = 'processor\t: 0\nflags\t\t: fpu avx2 avx512f avx512_vnni avx512_bf16\n'
SAPPHIRE_FLAGS = 'processor\t: 0\nflags\t\t: avx2 avx512f amx_tile amx_bf16 amx_int8\n'
ARM_FEATURES = 'processor\t: 0\nFeatures\t: fp asimd evtstrm aes pmull sha1 sha2 crc32\n'
ARM_BF16_FEATURES = ARM_FEATURES.replace('crc32', 'crc32 bf16')


@pytest.mark.parametrize('text, expected', [(ZEN3_FLAGS, False), (ZEN5_FLAGS, True), (SAPPHIRE_FLAGS, True),
                                            (ARM_FEATURES, False), (ARM_BF16_FEATURES, True),
                                            ('', None), ('model name: x\n', None)])
def test_bfloat16_units_come_from_the_cpu_flags(text, expected):
    assert cpu_kernels.has_bfloat16_units(text) is expected


def test_prefer_onednn_sets_it_only_when_the_user_has_not(monkeypatch):
    monkeypatch.delenv(cpu_kernels.ONEDNN_VARIABLE, raising=False)
    assert cpu_kernels.prefer_onednn() is True
    assert os.environ[cpu_kernels.ONEDNN_VARIABLE] == '1'
    monkeypatch.setenv(cpu_kernels.ONEDNN_VARIABLE, '0')
    assert cpu_kernels.prefer_onednn() is False
    assert os.environ[cpu_kernels.ONEDNN_VARIABLE] == '0'


PROBE = ('from runtime.quiet_start import import_tensorflow_quietly; import_tensorflow_quietly(); '
         'from runtime.session import onednn_enabled; print(onednn_enabled())')


def onednn_in_a_command(value):
    env = {k: v for k, v in os.environ.items() if k != cpu_kernels.ONEDNN_VARIABLE}
    if value is not None:
        env[cpu_kernels.ONEDNN_VARIABLE] = value
    done = subprocess.run([sys.executable, '-c', PROBE], cwd=ROOT, env=env, capture_output=True, text=True,
                          timeout=120)
    assert done.returncode == 0, done.stderr
    return done.stdout.strip().splitlines()[-1] == 'True'


@pytest.mark.slow
def test_a_command_runs_onednn_on_any_cpu_unless_the_user_turns_it_off():
    # On an AVX2-only CPU TensorFlow's own default is off: the command's choice is what turns it on.
    if not onednn_in_a_command('1'):
        pytest.skip('this TensorFlow build has no oneDNN kernels')
    assert onednn_in_a_command(None) is True
    assert onednn_in_a_command('0') is False
