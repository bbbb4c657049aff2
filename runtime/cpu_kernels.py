"""Which CPU kernels TensorFlow runs: oneDNN's, unless the user chose otherwise.

TensorFlow turns its oneDNN kernels on by default only on x86 CPUs with AVX-512 VNNI/BF16 or AMX; on
an AVX2-only CPU it runs its own (Eigen) kernels. On such a CPU (a 2-core AMD EPYC Zen 3) the same
model trained 1.48x and inferred 1.21x as fast with oneDNN on and PrimaryCaps as matmuls (the
benchmark's ideas pass, docs/performance.md), so every command turns them on. TensorFlow reads
TF_ENABLE_ONEDNN_OPTS once, when it loads: this runs before the first import of TensorFlow, and child
processes inherit it. A value the user set wins: TF_ENABLE_ONEDNN_OPTS=0 keeps TensorFlow's own
kernels.
"""
import os

ONEDNN_VARIABLE = 'TF_ENABLE_ONEDNN_OPTS'


def prefer_onednn():
    """Sets TF_ENABLE_ONEDNN_OPTS=1 unless it is set already; returns whether oneDNN is asked for.

    Too late once TensorFlow has loaded (it has read the variable then): call it first.
    """
    return os.environ.setdefault(ONEDNN_VARIABLE, '1').strip() == '1'


# The /proc/cpuinfo flags of units that compute bfloat16: x86's AVX-512 BF16 and AMX, Arm's BF16
# instructions ('Features'). Without them oneDNN emulates bfloat16 with float32 arithmetic. The x86
# flags were measured (Xeon with AMX, Zen 5); Arm's 'bf16' is taken on its documented meaning, not
# measured here: no Arm machine has run the benchmark.
BFLOAT16_FLAGS = ('avx512_bf16', 'amx_bf16', 'bf16')


def has_bfloat16_units(cpuinfo_text=None):
    """Whether this CPU computes bfloat16 natively; None where /proc/cpuinfo cannot say (not Linux)."""
    if cpuinfo_text is None:
        try:
            with open('/proc/cpuinfo') as f:
                cpuinfo_text = f.read()
        except OSError:
            return None
    flags = set()
    for line in cpuinfo_text.splitlines():
        key, _, value = line.partition(':')
        if key.strip() in ('flags', 'Features'):
            flags.update(value.split())
    if not flags:
        return None
    return bool(flags & set(BFLOAT16_FLAGS))
