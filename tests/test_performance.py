"""Speed flags reach the session (runtime/session.py) and a bfloat16 run trains
and saves the same float32 checkpoint variables as a float32 run; --precision bfloat16 really rewrites
ops to bfloat16 where oneDNN runs."""
import json
import os
import subprocess
import sys

import numpy as np
import pytest
import tensorflow as tf
from conftest import ROOT, run_main, tiny_run_args
from tensorflow.core.protobuf import config_pb2, rewriter_config_pb2

import config
from runtime import session

ON = rewriter_config_pb2.RewriterConfig.ON


def test_defaults_leave_tensorflow_choices_alone():
    sess_config = session.session_config(config.parse([]))
    assert sess_config.intra_op_parallelism_threads == 0 == sess_config.inter_op_parallelism_threads
    rewrite = sess_config.graph_options.rewrite_options
    assert rewrite.auto_mixed_precision_onednn_bfloat16 != ON and rewrite.auto_mixed_precision != ON
    assert sess_config.graph_options.optimizer_options.global_jit_level == config_pb2.OptimizerOptions.DEFAULT
    assert sess_config.gpu_options.allow_growth  # what session_config did before the speed flags


def test_flags_set_threads_xla_and_mixed_precision():
    cfg = config.parse(['--precision', 'bfloat16', '--xla', '--intra_op_threads', '2',
                        '--inter_op_threads', '1'])
    sess_config = session.session_config(cfg)
    assert (sess_config.intra_op_parallelism_threads, sess_config.inter_op_parallelism_threads) == (2, 1)
    assert sess_config.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 == ON
    assert sess_config.graph_options.optimizer_options.global_jit_level == config_pb2.OptimizerOptions.ON_1
    gpu = session.session_config(config.parse(['--precision', 'float16']))
    assert gpu.graph_options.rewrite_options.auto_mixed_precision == ON
    assert gpu.graph_options.rewrite_options.auto_mixed_precision_onednn_bfloat16 != ON


def test_bad_values_are_refused():
    with pytest.raises(ValueError, match='precision'):
        session.apply_options(config_pb2.ConfigProto(), precision='int8')
    with pytest.raises(config.ConfigError, match='--intra_op_threads must be >= 0'):
        config.parse(['--intra_op_threads', '-1'])
    with pytest.raises(config.ConfigError, match='--precision'):
        config.parse(['--precision', 'half'])


@pytest.mark.slow
def test_bfloat16_training_keeps_float32_checkpoint(tiny_mnist, tmp_path):
    args = tiny_run_args(tiny_mnist, tmp_path, '--precision', 'bfloat16', '--max_steps', '2',
                         '--val_sum_freq', '2')
    assert run_main(args) == 0
    checkpoint = tf.train.latest_checkpoint(str(tmp_path / 'logdir'))
    reader = tf.train.load_checkpoint(checkpoint)
    dtypes = reader.get_variable_to_dtype_map()
    assert dtypes['digit_caps/W'] == tf.float32 and dtypes['primary_caps/weights'] == tf.float32
    assert reader.get_variable_to_shape_map()['digit_caps/W'] == [1152, 10, 8, 16]


# Runs one training step of the real graph with a full trace and prints the op types that compute in
# bfloat16 (JSON); argv: data_dir workdir precision.
BFLOAT16_PROBE = r'''
import json, sys
import numpy as np
import tensorflow as tf
from tensorflow.core.framework import types_pb2
from tensorflow.python.util import _pywrap_util_port
import config, utils
from runtime import training
from runtime.session import session_config
tf1 = tf.compat.v1
data_dir, workdir, precision = sys.argv[1:4]
cfg = config.parse(['--data_dir', data_dir, '--verify_data=False', '--val_size', '40', '--batch_size', '8',
                    '--logdir', workdir, '--results', workdir, '--precision', precision])
(train_x, train_y), _ = utils.load_train_val(cfg.data_dir, cfg.val_size, cfg.dataset, False)
parts = training.build_train_graph(cfg)
with tf1.Session(graph=parts.graph, config=session_config(cfg)) as sess:
    sess.run(parts.init)
    parts.train_input.initialize(sess, train_x, train_y, np.arange(len(train_x)), 0)
    metadata = tf1.RunMetadata()
    sess.run(parts.train_op, options=tf1.RunOptions(trace_level=tf1.RunOptions.FULL_TRACE,
                                                    output_partition_graphs=True), run_metadata=metadata)
ops = sorted({node.op for graph in metadata.partition_graphs for node in graph.node
              if any(value.type == types_pb2.DT_BFLOAT16 for value in node.attr.values())})
print(json.dumps({'onednn': bool(_pywrap_util_port.IsMklEnabled()), 'bfloat16_ops': ops}))
'''


def op_families(op_types):
    """The kinds of computation among op types, whatever the build calls them: plain TensorFlow names
    (Conv2D, MatMul, BatchMatMulV2) where oneDNN is forced on under an AVX2 CPU, oneDNN's own
    (_MklNativeFusedConv2D, _MklNativeConv2DBackpropFilter, _MklMatMul, _MklBatchMatMulV2, ...) where
    TensorFlow turns it on by default (AVX-512, AMX)."""
    families = set()
    for op in op_types:
        if 'Conv2D' in op:
            families.add('conv')
        if 'MatMul' in op:
            families.add('matmul')
        if op == 'Cast' or op.endswith('Cast'):
            families.add('cast')
    return families


def test_op_families_name_every_build_the_same_way():
    # The names two CPUs of this project's gave for one bfloat16 training step.
    eigen = ['Cast', 'Conv2D', 'Conv2DBackpropFilter', 'Conv2DBackpropInput', 'BatchMatMulV2', 'MatMul']
    onednn = ['Cast', '_MklNativeFusedConv2D', '_MklNativeConv2DBackpropFilter',
              '_MklNativeConv2DBackpropInput', '_MklMatMul', '_MklNativeFusedMatMul', '_MklBatchMatMulV2']
    assert op_families(eigen) == op_families(onednn) == {'conv', 'matmul', 'cast'}
    assert op_families(['Relu', 'Sum', 'Mul']) == set()


def bfloat16_ops(data_dir, workdir, precision, **env_extra):
    """(oneDNN on?, op types computing in bfloat16) after one real training step in a fresh process."""
    env = dict(os.environ, TF_CPP_MIN_LOG_LEVEL='2', **env_extra)
    done = subprocess.run([sys.executable, '-c', BFLOAT16_PROBE, str(data_dir), str(workdir), precision],
                          cwd=str(ROOT), env=env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    found = json.loads(done.stdout.strip().splitlines()[-1])
    return found['onednn'], found['bfloat16_ops']


@pytest.mark.slow
def test_bfloat16_flag_rewrites_convolutions_and_matmuls_where_onednn_runs(tiny_mnist, tmp_path):
    # As the user's environment has it: the rewrite is oneDNN's, and TensorFlow turns oneDNN on by
    # default only on CPUs with AVX-512/AMX (or with TF_ENABLE_ONEDNN_OPTS=1).
    onednn, ops = bfloat16_ops(tiny_mnist, tmp_path / 'default', 'bfloat16')
    if not onednn:
        assert ops == []  # the flag is accepted but changes nothing: every op stays float32
        forced = os.environ.get('TF_ENABLE_ONEDNN_OPTS')
        why = ('TF_ENABLE_ONEDNN_OPTS=%s' % forced if forced is not None
               else 'no AVX-512/AMX on this CPU, TF_ENABLE_ONEDNN_OPTS unset')
        pytest.skip('oneDNN is off in this TensorFlow (%s), so --precision bfloat16 rewrites no op; with '
                    'TF_ENABLE_ONEDNN_OPTS=1 see test_bfloat16_rewrite_with_onednn_forced_on' % why)
    assert op_families(ops) >= {'conv', 'matmul', 'cast'}, ops


@pytest.mark.slow
def test_bfloat16_rewrite_with_onednn_forced_on(tiny_mnist, tmp_path):
    onednn, float32_ops = bfloat16_ops(tiny_mnist, tmp_path / 'f32', 'float32', TF_ENABLE_ONEDNN_OPTS='1')
    if not onednn:
        pytest.skip('this TensorFlow build has no oneDNN, so no bfloat16 rewrite exists')
    assert float32_ops == []  # the probe sees bfloat16 only when asked for it
    _, ops = bfloat16_ops(tiny_mnist, tmp_path / 'bf16', 'bfloat16', TF_ENABLE_ONEDNN_OPTS='1')
    assert op_families(ops) >= {'conv', 'matmul', 'cast'}, ops


@pytest.mark.parametrize('precision, onednn, units, note_start', [
    ('bfloat16', False, True, 'note: --precision bfloat16 changes nothing here'),
    ('bfloat16', True, False, 'note: --precision bfloat16 is emulated on this CPU'),
    ('bfloat16', True, True, None),
    ('bfloat16', True, None, None),      # no /proc/cpuinfo: nothing to say
    ('float32', False, False, None)])
def test_bfloat16_note_says_when_it_changes_nothing_or_is_emulated(precision, onednn, units, note_start,
                                                                    monkeypatch):
    monkeypatch.setattr(session, 'onednn_enabled', lambda: onednn)
    monkeypatch.setattr(session.cpu_kernels, 'has_bfloat16_units', lambda: units)
    note = session.precision_note(config.parse(['--precision', precision]))
    if note_start is None:
        assert note is None
    else:
        assert '\n' not in note and note.startswith(note_start)
    assert session.precision_note(config.parse(['--precision', precision]), is_gpu_run=True) is None



def test_space_to_depth_convolution_equals_the_stride_2_convolution_and_its_gradients():
    from benchmarks import reference_layers
    rng = np.random.default_rng(0)
    x_value = rng.standard_normal((2, 20, 20, 6)).astype(np.float32)
    k_value = rng.standard_normal((9, 9, 6, 5)).astype(np.float32)
    upstream = rng.standard_normal((2, 6, 6, 5)).astype(np.float32)
    graph = tf.Graph()
    with graph.as_default():
        x, k = tf.constant(x_value), tf.constant(k_value)
        plain = tf.nn.conv2d(x, k, strides=2, padding='VALID')
        phased = reference_layers.space_to_depth_conv(x, k)
        grads = [tf.gradients(y, [x, k], grad_ys=upstream) for y in (plain, phased)]
        with tf.compat.v1.Session(graph=graph) as sess:
            (p, q), (gp, gq) = sess.run([(plain, phased), grads])
    assert p.shape == q.shape == (2, 6, 6, 5)
    np.testing.assert_allclose(q, p, rtol=1e-4, atol=1e-4)
    for a, b in zip(gq, gp):
        np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-3)
