"""Session options that change speed, not the model: threads, XLA, mixed precision.

Training, evaluation and the benchmark build their tf.compat.v1.ConfigProto through `session_config`, so the benchmark
measures exactly what training runs. Mixed precision is a graph rewrite (grappler): variables, the
checkpoint and the loss stay float32; only the heavy ops (conv, matmul) compute in 16 bits.
"""
from runtime import cpu_kernels

PRECISIONS = ('float32', 'bfloat16', 'float16')


def apply_options(sess_config, precision='float32', xla=False, intra_op_threads=0,
                  inter_op_threads=0):
    """Sets the speed options on sess_config (a ConfigProto) in place and returns it.

    precision: 'bfloat16' rewrites conv/matmul to bfloat16 through oneDNN (CPUs with AVX-512 BF16 or
    AMX run it several times faster than float32); 'float16' is the GPU's automatic mixed precision.
    xla: compiles clusters of the graph with XLA (global_jit_level ON_1).
    Thread counts of 0 let TensorFlow choose (one per core).
    """
    # Imported here so that reading PRECISIONS (bench.py's parent process) does not load TensorFlow.
    from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2
    if precision not in PRECISIONS:
        raise ValueError('precision must be one of %s, got %r' % (', '.join(PRECISIONS), precision))
    sess_config.intra_op_parallelism_threads = intra_op_threads
    sess_config.inter_op_parallelism_threads = inter_op_threads
    rewrite = sess_config.graph_options.rewrite_options
    on = rewriter_config_pb2.RewriterConfig.ON
    if precision == 'bfloat16':
        rewrite.auto_mixed_precision_onednn_bfloat16 = on
    elif precision == 'float16':
        rewrite.auto_mixed_precision = on
    if xla:
        sess_config.graph_options.optimizer_options.global_jit_level = config_pb2.OptimizerOptions.ON_1
    return sess_config


def options_from_flags(cfg):
    """The keyword arguments of apply_options found on a flags namespace (defaults where absent)."""
    return dict(precision=getattr(cfg, 'precision', 'float32'), xla=getattr(cfg, 'xla', False),
                intra_op_threads=getattr(cfg, 'intra_op_threads', 0),
                inter_op_threads=getattr(cfg, 'inter_op_threads', 0))


def session_config(cfg=None):
    """Session options; with flags, also their speed options (threads, XLA, precision)."""
    import tensorflow as tf
    sess_config = tf.compat.v1.ConfigProto(allow_soft_placement=True)
    sess_config.gpu_options.allow_growth = True  # share the GPU politely; no effect on CPU
    if cfg is not None:
        apply_options(sess_config, **options_from_flags(cfg))
    return sess_config


def onednn_enabled():
    """Whether TensorFlow runs its oneDNN kernels: on by default only on CPUs with AVX-512 or AMX, or
    with TF_ENABLE_ONEDNN_OPTS=1. The bfloat16 rewrite is oneDNN's, so without it nothing changes."""
    from tensorflow.python.util import _pywrap_util_port
    return bool(_pywrap_util_port.IsMklEnabled())


PRIMARY_CAPS_IMPLS = ('auto', 'conv', 'matmuls')


def primary_caps_impl(flags):
    """How PrimaryCaps' convolution is computed for these speed flags (--primary_caps_impl).

    'auto' is 'matmuls' where oneDNN's kernels run on the CPU (no GPU) and 'conv' elsewhere. With
    oneDNN the matmuls trained 1.0-2x as fast in bfloat16 (Xeon with AMX, Zen 5) and 1.46x in float32
    (an AVX2 Zen 3); with TensorFlow's own (Eigen) kernels they were slower to infer and used more
    memory, and a GPU's convolutions need no help (docs/performance.md).
    """
    requested = getattr(flags, 'primary_caps_impl', 'auto')
    if requested != 'auto':
        return requested
    if not onednn_enabled():
        return 'conv'
    import tensorflow as tf
    return 'conv' if tf.config.list_physical_devices('GPU') else 'matmuls'


PRIMARY_CAPS_PASS_KERNELS = ('auto', 'matmuls', 'conv')


def _library_kernel_in_float32(flags, flag_name):
    """The flag's own choice, or for 'auto' the library's kernel ('conv') in float32 and the
    products ('matmuls') otherwise."""
    requested = getattr(flags, flag_name, 'auto')
    if requested != 'auto':
        return requested
    return 'conv' if getattr(flags, 'precision', 'float32') == 'float32' else 'matmuls'


def primary_caps_input_gradient(flags):
    """How PrimaryCaps' input gradient is computed when PrimaryCaps runs as matmuls
    (--primary_caps_input_gradient).

    'auto' is the library's convolution ('conv') in float32 and the fold of matmuls otherwise. In
    float32 with oneDNN on an AVX2 Zen 3 the library's kernel trained 1.05-1.25x as fast as the fold;
    in bfloat16 it was the slowest kernel of the step on a Xeon with AMX (docs/performance.md).
    """
    return _library_kernel_in_float32(flags, 'primary_caps_input_gradient')


def primary_caps_forward(flags):
    """How PrimaryCaps' forward pass is computed when PrimaryCaps runs as matmuls
    (--primary_caps_forward).

    'auto' is the library's tf.nn.conv2d in float32, where oneDNN's kernel ran 1.18x as fast as the
    nine kernel-row products on an AVX2 Zen 3, and the products in bfloat16, the formulation whose
    training speed was measured there (docs/performance.md).
    """
    return _library_kernel_in_float32(flags, 'primary_caps_forward')


def model_config(run_flags, speed_flags=None):
    """The ModelConfig of a run's flags, its PrimaryCaps formulation decided by speed_flags (the flags
    of this session; run_flags when None)."""
    import dataclasses
    from model_spec import ModelConfig
    speed_flags = speed_flags or run_flags
    return dataclasses.replace(ModelConfig.from_flags(run_flags),
                               primary_caps_impl=primary_caps_impl(speed_flags),
                               primary_caps_input_gradient=primary_caps_input_gradient(speed_flags),
                               primary_caps_forward=primary_caps_forward(speed_flags))


def precision_note(cfg, is_gpu_run=False):
    """A one-line note when --precision bfloat16 would do nothing or no good on this CPU, else None."""
    if getattr(cfg, 'precision', 'float32') != 'bfloat16' or is_gpu_run:
        return None
    if not onednn_enabled():
        return ('note: --precision bfloat16 changes nothing here: TensorFlow\'s oneDNN kernels, which do the '
                'bfloat16 rewrite, are off (TF_ENABLE_ONEDNN_OPTS=0, or a build without them); training '
                'runs in float32')
    if cpu_kernels.has_bfloat16_units() is False:
        return ('note: --precision bfloat16 is emulated on this CPU (no AVX-512 BF16 or AMX units): no '
                'faster to train than float32 and slower to infer (docs/performance.md); float32 is the '
                'default')
    return None
