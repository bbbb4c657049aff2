"""Where a figure came from: the commit of the code and the machine it ran on.

`machine()` describes the CPU well enough to tell runs apart whose speed differs five-fold under the
same model name ("AMD EPYC" covers Zen 3 without AVX-512 and Zen 5 with AVX-512 BF16): model name,
family and model numbers, the instruction sets TensorFlow's kernels choose between, core count,
whether oneDNN is on, and the load average. `hardware()` is its one-line summary.
"""
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# /proc/cpuinfo flag -> the name the docs use. These decide the speed of conv/matmul here: AVX2 is
# the float32 baseline, AVX-512F widens it, AVX-512 BF16 and AMX make --precision bfloat16 pay.
ISA_FLAGS = (('avx2', 'AVX2'), ('avx512f', 'AVX-512F'), ('avx512_bf16', 'AVX-512 BF16'),
             ('amx_tile', 'AMX'), ('amx_bf16', 'AMX BF16'))

# (vendor, family, first model, last model) -> microarchitecture, for the server parts these runs
# meet. Model names under a hypervisor are often generic ("AMD EPYC Processor"), the numbers are not.
# Ranges from the vendors' family/model tables (AMD: family 17h Zen/Zen 2, 19h Zen 3/Zen 4,
# 1Ah Zen 5; Intel family 6 server models).
MICROARCHITECTURES = (
    ('AuthenticAMD', 0x17, 0x00, 0x2f, 'Zen/Zen+'),
    ('AuthenticAMD', 0x17, 0x30, 0xff, 'Zen 2'),
    ('AuthenticAMD', 0x19, 0x00, 0x0f, 'Zen 3'),
    ('AuthenticAMD', 0x19, 0x10, 0x1f, 'Zen 4'),
    ('AuthenticAMD', 0x19, 0x20, 0x5f, 'Zen 3'),
    ('AuthenticAMD', 0x19, 0x60, 0xaf, 'Zen 4'),
    ('AuthenticAMD', 0x1a, 0x00, 0xff, 'Zen 5'),
    ('GenuineIntel', 6, 85, 85, 'Skylake/Cascade Lake'),
    ('GenuineIntel', 6, 106, 106, 'Ice Lake'),
    ('GenuineIntel', 6, 143, 143, 'Sapphire Rapids'),
    ('GenuineIntel', 6, 207, 207, 'Emerald Rapids'),
    ('GenuineIntel', 6, 173, 173, 'Granite Rapids'),
)


def commit():
    """'abc1234', with '+uncommitted' when tracked files differ from it; '?' outside a git checkout."""
    def git(*args):
        return subprocess.run(['git', '-C', ROOT] + list(args), capture_output=True, text=True, timeout=30)
    try:
        head = git('rev-parse', '--short', 'HEAD')
        if head.returncode:
            return '?'
        dirty = git('diff', '--quiet', 'HEAD', '--').returncode != 0
    except (OSError, subprocess.SubprocessError):
        return '?'
    return head.stdout.strip() + ('+uncommitted' if dirty else '')


def parse_cpuinfo(text):
    """The first processor's fields of a /proc/cpuinfo text: vendor, model name, family, model, ISA."""
    fields = {}
    for line in text.splitlines():
        if not line.strip():
            if fields:
                break  # the end of the first processor's block: the others repeat it
            continue
        key, _, value = line.partition(':')
        fields.setdefault(key.strip(), value.strip())
    flags = set(fields.get('flags', '').split())

    def number(key):
        try:
            return int(fields[key])
        except (KeyError, ValueError):
            return None
    info = {'cpu_model': fields.get('model name'), 'vendor': fields.get('vendor_id'),
            'family': number('cpu family'), 'model': number('model'),
            'isa': [name for flag, name in ISA_FLAGS if flag in flags]}
    info['microarchitecture'] = microarchitecture(info['vendor'], info['family'], info['model'])
    return info


def microarchitecture(vendor, family, model):
    for known_vendor, known_family, first, last, name in MICROARCHITECTURES:
        if (vendor, family) == (known_vendor, known_family) and model is not None and first <= model <= last:
            return name
    return None


def onednn_state(environ=None):
    """(True/False/None, how it is known). TensorFlow's own answer if it is loaded already; importing
    it just to ask would cost seconds and memory in processes that never run a model (reproduce's
    parent, the benchmark's parent), so otherwise only TF_ENABLE_ONEDNN_OPTS, which forces it."""
    if 'tensorflow' in sys.modules:
        from runtime import session
        try:
            return session.onednn_enabled(), 'tensorflow'
        except (ImportError, AttributeError):
            pass
    value = (os.environ if environ is None else environ).get('TF_ENABLE_ONEDNN_OPTS')
    if value in ('0', '1'):
        return value == '1', 'TF_ENABLE_ONEDNN_OPTS'
    return None, 'unknown (TensorFlow not loaded; its default depends on the CPU)'


def machine(cpuinfo_text=None, cores=None, load=None, onednn=None):
    """The machine as a dict, 'summary' its one line. Arguments override what is read here: the text
    of /proc/cpuinfo, the core count, the load averages and onednn as (state, how it is known)."""
    if cpuinfo_text is None:
        try:
            with open('/proc/cpuinfo') as f:
                cpuinfo_text = f.read()
        except OSError:
            cpuinfo_text = ''
    info = parse_cpuinfo(cpuinfo_text)
    if info['cpu_model'] is None:
        import platform
        info['cpu_model'] = platform.processor() or platform.machine() or 'unknown CPU'
    info['cores'] = cores if cores is not None else (os.cpu_count() or 1)
    if load is None:
        try:
            load = os.getloadavg()
        except OSError:
            load = None
    info['load_average'] = [round(x, 2) for x in load] if load is not None else None
    info['onednn'], info['onednn_source'] = onednn if onednn is not None else onednn_state()
    info['summary'] = summary(info)
    return info


def summary(info):
    """'Intel(R) Xeon(R) Processor x 2 (Emerald Rapids, family 6 model 207; AVX2 AVX-512F ...; oneDNN on)'."""
    details = []
    if info.get('family') is not None:
        numbers = 'family %d model %d' % (info['family'], info['model'] or 0)
        details.append('%s, %s' % (info['microarchitecture'], numbers) if info.get('microarchitecture')
                       else numbers)
    details.append(' '.join(info['isa']) if info.get('isa') else 'no AVX2')
    if info.get('onednn') is not None:
        details.append('oneDNN %s' % ('on' if info['onednn'] else 'off'))
    return '%s x %d (%s)' % (info['cpu_model'], info['cores'], '; '.join(details))


def hardware():
    """The one-line summary of machine(): model name x cores, then microarchitecture and ISA."""
    return machine()['summary']
