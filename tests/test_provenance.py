"""tools.provenance names the machine: CPU model, family/model, the instruction sets that decide the
speed (AVX2, AVX-512F, AVX-512 BF16, AMX), cores, oneDNN and load, from /proc/cpuinfo text."""
import sys

from tools import provenance

BASE_FLAGS = 'fpu vme de pse tsc msr pae mce cx8 apic sep mtrr pge mca cmov pat sse sse2 ssse3 fma sse4_1 sse4_2'


def cpuinfo(vendor, family, model, name, extra_flags, processors=2):
    block = ('processor\t: {n}\nvendor_id\t: %s\ncpu family\t: %d\nmodel\t\t: %d\nmodel name\t: %s\n'
             'stepping\t: 1\nflags\t\t: %s %s\nbogomips\t: 4890.81\n\n') % (vendor, family, model, name,
                                                                         BASE_FLAGS, extra_flags)
    return ''.join(block.replace('{n}', str(n)) for n in range(processors))


ZEN3 = cpuinfo('AuthenticAMD', 25, 1, 'AMD EPYC 7B13 64-Core Processor', 'avx avx2 bmi2 sha_ni vaes')
ZEN5 = cpuinfo('AuthenticAMD', 26, 2, 'AMD EPYC 9B45 128-Core Processor',
               'avx avx2 avx512f avx512dq avx512cd avx512bw avx512vl avx512_bf16 avx512_vnni')
SAPPHIRE_RAPIDS = cpuinfo('GenuineIntel', 6, 143, 'Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz',
                          'avx avx2 avx512f avx512bw avx512_bf16 avx512_fp16 amx_bf16 amx_tile amx_int8')


def test_zen3_has_avx2_only():
    info = provenance.machine(ZEN3, cores=2, load=(0.5, 0.4, 0.3), onednn=(None, 'unknown'))
    assert (info['family'], info['model'], info['microarchitecture']) == (25, 1, 'Zen 3')
    assert info['isa'] == ['AVX2']
    assert info['summary'] == 'AMD EPYC 7B13 64-Core Processor x 2 (Zen 3, family 25 model 1; AVX2)'
    assert info['load_average'] == [0.5, 0.4, 0.3] and info['cores'] == 2


def test_zen5_has_avx512_bf16_but_no_amx():
    info = provenance.machine(ZEN5, cores=2, load=(1.0, 1.0, 1.0), onednn=(True, 'tensorflow'))
    assert (info['family'], info['model'], info['microarchitecture']) == (26, 2, 'Zen 5')
    assert info['isa'] == ['AVX2', 'AVX-512F', 'AVX-512 BF16']
    assert info['summary'].endswith('(Zen 5, family 26 model 2; AVX2 AVX-512F AVX-512 BF16; oneDNN on)')
    # The two AMD machines a plain "AMD EPYC x 2" could not tell apart now differ in their record.
    assert provenance.machine(ZEN3, cores=2)['summary'] != provenance.machine(ZEN5, cores=2)['summary']


def test_sapphire_rapids_has_amx():
    info = provenance.machine(SAPPHIRE_RAPIDS, cores=4, load=(2.0, 1.5, 1.0), onednn=(False, 'env'))
    assert (info['vendor'], info['family'], info['model']) == ('GenuineIntel', 6, 143)
    assert info['microarchitecture'] == 'Sapphire Rapids'
    assert info['isa'] == ['AVX2', 'AVX-512F', 'AVX-512 BF16', 'AMX', 'AMX BF16']
    assert info['summary'] == ('Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz x 4 (Sapphire Rapids, family 6 '
                               'model 143; AVX2 AVX-512F AVX-512 BF16 AMX AMX BF16; oneDNN off)')


def test_unknown_models_keep_their_numbers_and_no_cpuinfo_still_describes_something():
    info = provenance.machine(cpuinfo('GenuineIntel', 6, 999, 'Some Xeon', 'avx2'), cores=1, load=(0, 0, 0),
                              onednn=(None, 'unknown'))
    assert info['microarchitecture'] is None and info['summary'] == 'Some Xeon x 1 (family 6 model 999; AVX2)'
    bare = provenance.machine('', cores=3, load=(0, 0, 0), onednn=(None, 'unknown'))
    assert bare['cpu_model'] and bare['summary'].startswith(bare['cpu_model'] + ' x 3')


def test_onednn_is_not_learned_by_importing_tensorflow(monkeypatch):
    if 'tensorflow' in sys.modules:
        monkeypatch.delitem(sys.modules, 'tensorflow')
    state, source = provenance.onednn_state({'TF_ENABLE_ONEDNN_OPTS': '0'})
    assert (state, source) == (False, 'TF_ENABLE_ONEDNN_OPTS')
    state, source = provenance.onednn_state({})
    assert state is None and 'not loaded' in source
    assert 'tensorflow' not in sys.modules


def test_hardware_is_the_summary_line():
    assert provenance.hardware() == provenance.machine()['summary']
    assert ' x %d ' % provenance.machine()['cores'] in provenance.hardware()
