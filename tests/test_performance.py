"""Speed flags reach the session (performance.py, session.session_config) and a bfloat16 run trains
and saves the same float32 checkpoint variables as a float32 run."""
import pytest
import tensorflow as tf
from conftest import run_main, tiny_run_args
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


def test_bfloat16_training_keeps_float32_checkpoint(tiny_mnist, tmp_path):
    args = tiny_run_args(tiny_mnist, tmp_path, '--precision', 'bfloat16', '--max_steps', '2',
                         '--val_sum_freq', '2')
    assert run_main(args) == 0
    checkpoint = tf.train.latest_checkpoint(str(tmp_path / 'logdir'))
    reader = tf.train.load_checkpoint(checkpoint)
    dtypes = reader.get_variable_to_dtype_map()
    assert dtypes['digit_caps/W'] == tf.float32 and dtypes['primary_caps/weights'] == tf.float32
    assert reader.get_variable_to_shape_map()['digit_caps/W'] == [1152, 10, 8, 16]
