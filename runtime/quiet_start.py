"""Start-up without TensorFlow's routine C++ log lines, unless the user asks for them.

On a machine without a GPU, every command used to print, before its first line of output:
`Could not find cuda drivers` and `cpu_feature_guard` notices, `E0000 ... failed call to cuInit`
(an ERROR-level line from the CUDA platform probe, harmless on CPU), `MLIR V1 optimization pass is
not enabled`, and on some CPUs the oneDNN notice. They come from two places:

* lines logged while TensorFlow's shared libraries load (cudart_stub), before TensorFlow has read
  TF_CPP_MIN_LOG_LEVEL and initialised its logging: no setting reaches them, so stderr is pointed
  at /dev/null for the duration of `import tensorflow`;
* lines logged later (cuInit, oneDNN, MLIR): TF_CPP_MIN_LOG_LEVEL=3 hides them. Level 2 is not
  enough because the cuInit line is logged as an error.

Python exceptions are unaffected: an error while importing is raised after stderr is restored,
and every error a user can fix is reported by the project's own one-line messages.

A TF_CPP_MIN_LOG_LEVEL set by the user wins and is left as it is: 0, 1 or 2 hide nothing at
import and let TensorFlow filter the rest (0 shows everything).

TensorFlow's Python side logs through the `tensorflow` and `absl` loggers (`WARNING:tensorflow:...`
deprecation and retracing notices, none of them about the user's run): they show errors only, unless
TF_CPP_MIN_LOG_LEVEL=0 asks for everything.
"""
import importlib
import logging
import os
import sys

from runtime.cpu_kernels import prefer_onednn

LEVEL_VARIABLE = 'TF_CPP_MIN_LOG_LEVEL'
QUIET_LEVEL = '3'  # hide INFO, WARNING and ERROR lines of TensorFlow's C++ runtime


def quiet_tensorflow_logs():
    """Sets TF_CPP_MIN_LOG_LEVEL=3 unless it is set already; returns whether start-up is quiet.

    On its own (without import_tensorflow_quietly) this suits parents of TensorFlow processes:
    the children inherit the setting.
    """
    return os.environ.setdefault(LEVEL_VARIABLE, QUIET_LEVEL) == QUIET_LEVEL


PYTHON_LOGGERS = ('tensorflow', 'absl')


def quiet_python_logs():
    """Limits TensorFlow's Python loggers to errors unless TF_CPP_MIN_LOG_LEVEL=0; returns whether it did.

    Setting the level on the named loggers works before TensorFlow is imported: TensorFlow reuses the
    logger of that name and leaves its level alone.
    """
    if os.environ.get(LEVEL_VARIABLE, QUIET_LEVEL).strip() == '0':
        return False
    for name in PYTHON_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    return True


def import_tensorflow_quietly():
    """Imports TensorFlow without its load-time log lines; call it before anything imports TensorFlow.

    Only imports it when it is already loaded or the user chose a level other than 3. Every command
    passes here before TensorFlow loads, so this is also where oneDNN's kernels are chosen
    (runtime.cpu_kernels), which TensorFlow reads as it loads.
    """
    prefer_onednn()
    quiet = quiet_tensorflow_logs()
    quiet_python_logs()
    if 'tensorflow' in sys.modules or not quiet:
        importlib.import_module('tensorflow')
        return
    sys.stderr.flush()
    saved_stderr = os.dup(2)
    try:
        with open(os.devnull, 'w') as devnull:
            os.dup2(devnull.fileno(), 2)
        importlib.import_module('tensorflow')
    finally:
        sys.stderr.flush()
        os.dup2(saved_stderr, 2)
        os.close(saved_stderr)
