"""Every command-line flag of the script, with its default and a one-line meaning.

The names and defaults of the original CapsNet-Tensorflow script are kept, and `--name=value`
works as it did with tf.app.flags. argparse replaces tf.app.flags (gone in TF 2) because it keeps
no global state, so tests can parse as many configurations as they like.
"""
import argparse
import json
import os
import shlex
import sys

from model_spec import MODEL_DEFAULTS  # the model flags' defaults; no TensorFlow, so parsing stays fast
from runtime import cli, files, session
from runtime.errors import ConfigError
from runtime.model_sources import LOAD_CHOICES

DATASETS = ('mnist', 'fashion-mnist', 'folder', 'cifar10', 'smallnorb', 'multimnist')
CHANNEL_CHOICES = (1, 3)


def parse_size(text):
    """'HxW' or 'N' (square) -> (H, W); a ConfigError naming the flag value otherwise."""
    parts = str(text).lower().split('x')
    try:
        size = tuple(int(p) for p in parts)
    except ValueError:
        size = ()
    if len(size) == 1:
        size = size * 2
    if len(size) != 2 or min(size) < 1:
        raise ConfigError('bad size %r: give HEIGHTxWIDTH in pixels, e.g. 48x48 or 32x40' % text)
    return size


def str2bool(text):
    value = str(text).strip().lower()
    if value in ('1', 'true', 't', 'yes', 'y'):
        return True
    if value in ('0', 'false', 'f', 'no', 'n'):
        return False
    raise argparse.ArgumentTypeError('expected True or False, got %r' % text)


def _bool(parser, name, default, help_text):
    # nargs='?' lets a bare `--flag` mean True, as tf.app.flags allowed.
    parser.add_argument('--' + name, type=str2bool, nargs='?', const=True, default=default,
                        metavar='BOOL', help=help_text)


def build_parser(description='Train or evaluate CapsNet (Sabour et al., 2017).', command='python main.py'):
    """Every flag of main.py; the commands that take them all too (the figures, the routing study, the
    towers) pass their own description and `command`, the name a bad flag's line sends the user to."""
    p = cli.command_parser(description, command)
    a = p.add_argument
    # Loss (paper, section 3).
    a('--m_plus', type=float, default=MODEL_DEFAULTS.m_plus, help='margin loss: target length floor for the true class')
    a('--m_minus', type=float, default=MODEL_DEFAULTS.m_minus, help='margin loss: length ceiling for absent classes')
    a('--lambda_val', type=float, default=MODEL_DEFAULTS.lambda_val, help='margin loss: down-weighting of absent classes')
    a('--regularization_scale', type=float, default=MODEL_DEFAULTS.regularization_scale,
      help='weight of the reconstruction MSE (0.0005 x 784: the paper\'s 0.0005 x sum of squares)')
    # Model.
    a('--iter_routing', type=int, default=MODEL_DEFAULTS.iter_routing, help='routing iterations between primary and digit capsules')
    _bool(p, 'mask_with_y', MODEL_DEFAULTS.mask_with_y, 'mask the decoder input with the true label while training')
    a('--stddev', type=float, default=MODEL_DEFAULTS.stddev, help='stddev of the normal initialiser of digit_caps/W')
    _bool(p, 'primary_caps_relu', MODEL_DEFAULTS.primary_caps_relu,
          'ReLU on the PrimaryCaps conv before squash (original script); False as the official code')
    _bool(p, 'stop_gradient_routing', MODEL_DEFAULTS.stop_gradient_routing,
          'gradients through the last routing iteration only (original); False: through all (official)')
    _bool(p, 'leaky_routing', MODEL_DEFAULTS.leaky_routing, 'add a zero "orphan" logit to the routing softmax (official option)')
    _bool(p, 'digit_caps_bias', MODEL_DEFAULTS.digit_caps_bias, 'add a learned bias to s_j of the digit capsules')
    a('--primary_caps_types', type=int, default=MODEL_DEFAULTS.primary_caps_types,
      help='PrimaryCaps capsule types per grid cell (paper: 32 for MNIST, 64 for CIFAR-10)')
    # Optimisation.
    a('--learning_rate', type=float, default=MODEL_DEFAULTS.learning_rate, help='Adam learning rate (the start value if decayed)')
    a('--lr_schedule', default=MODEL_DEFAULTS.lr_schedule, choices=('constant', 'exponential'),
      help='constant (original script) or x--lr_decay_rate every --lr_decay_steps steps, continuous, floor '
           '1e-6 (official code)')
    a('--lr_decay_steps', type=int, default=MODEL_DEFAULTS.lr_decay_steps,
      help='steps over which --lr_schedule=exponential multiplies the rate by --lr_decay_rate (official code)')
    a('--lr_decay_rate', type=float, default=MODEL_DEFAULTS.lr_decay_rate,
      help='factor of the exponential schedule every --lr_decay_steps steps (official code)')
    a('--batch_size', type=int, default=128, help='training batch size')
    a('--epoch', type=int, default=50, help='training epochs over the training split')
    a('--max_steps', type=int, default=0, help='stop after this many steps in all (0: epoch x steps/epoch)')
    a('--seed', type=int, default=1234, help='seed for weights and data order (same seed, same run)')
    # Data.
    a('--dataset', default='mnist', help='mnist, fashion-mnist, folder (DIR/train/CLASS/*.png ...), cifar10, '
                                         'smallnorb (docs/own-data.md) or multimnist (pairs of MNIST digits, '
                                         'read from the MNIST files: docs/multimnist.md)')
    a('--data_dir', default=None, help='the dataset\'s folder: the four IDX files, .gz or decompressed; train/ and '
                                       'test/ of class folders; the CIFAR-10 batches; smallNORB .mat files '
                                       '(default data/DATASET)')
    a('--val_size', type=int, default=5000, help='training images held out for validation: the last ones of an '
                                                 'IDX file; a seeded split keeping every class otherwise')
    a('--image_size', default=None, metavar='HxW',
      help='resize every image to HxW when read (needed when a folder\'s images differ in size)')
    a('--channels', type=int, default=None, choices=CHANNEL_CHOICES,
      help='convert images to 1 (gray) or 3 (RGB) channels when read (not given: as stored)')
    a('--crop', default=None, metavar='HxW',
      help='train on random HxW crops, validate and test on the centre crop (paper: 24x24 CIFAR-10, 32x32 smallNORB)')
    _bool(p, 'verify_data', True, 'check the data files\' checksums before training')
    a('--shift_pixels', type=int, default=0,
      help='augmentation: random shifts of up to this many pixels per axis, zero padded (paper: 2)')
    a('--num_threads', type=int, default=8, help='parallel calls of the tf.data input pipeline')
    a('--eval_batch_size', type=int, default=500, help='batch size for validation and test evaluation')
    # Speed (runtime/session.py; benchmarks/bench.py measures each): same model and checkpoints, other arithmetic.
    a('--precision', default='float32', choices=session.PRECISIONS,
      help='conv/matmul arithmetic: bfloat16 (CPUs with AVX-512 BF16/AMX), float16 (GPUs); weights stay float32')
    a('--primary_caps_impl', default='auto', choices=session.PRIMARY_CAPS_IMPLS,
      help='the convolutions as tf.nn.conv2d or as matmuls (PrimaryCaps whole, Conv1 its gradients; same weights); '
           'auto: matmuls where oneDNN runs on the CPU')
    a('--primary_caps_input_gradient', default='auto', choices=session.PRIMARY_CAPS_PASS_KERNELS,
      help='with PrimaryCaps as matmuls, its input gradient as matmuls or as the library\'s convolution; '
           'auto: the convolution in float32, matmuls in bfloat16')
    a('--primary_caps_forward', default='auto', choices=session.PRIMARY_CAPS_PASS_KERNELS,
      help='with PrimaryCaps as matmuls, its forward pass as matmuls or as the library\'s convolution; '
           'auto: the convolution in float32, matmuls in bfloat16')
    _bool(p, 'xla', False, 'compile the graph with XLA (global jit)')
    a('--intra_op_threads', type=int, default=0, help='threads inside one op (0: TensorFlow chooses)')
    a('--inter_op_threads', type=int, default=0, help='ops run in parallel (0: TensorFlow chooses)')
    # Run control and outputs.
    _bool(p, 'is_training', True, 'train (True) or restore the latest checkpoint and test (False)')
    _bool(p, 'robustness', False,
          'with --is_training=False: also test on randomly affine-warped test images (robustness.csv)')
    a('--checkpoint', default='latest', choices=LOAD_CHOICES,
      help='what --is_training=False tests: the newest checkpoint, the one of best validation accuracy, '
           'or the trained model shipped in pretrained/')
    a('--logdir', default='logdir', help='checkpoints, TensorBoard events and flags.json')
    a('--results', default='results', help='folder of the CSV metrics')
    a('--train_sum_freq', type=int, default=100, help='steps between training summaries and CSV rows')
    a('--val_sum_freq', type=int, default=500, help='steps between validation evaluations')
    a('--save_freq', type=int, default=3, help='epochs between checkpoints (one is always saved at the end)')
    a('--keep_checkpoints', type=int, default=5, help='how many recent checkpoints to keep')
    a('--flagfile', action='append', default=None, metavar='FILE',
      help='read flags from FILE (configs/*.flags) in its place; later flags override it')
    a('--time_limit', type=float, default=0, metavar='MINUTES',
      help='stop between two steps after this many minutes, save, exit 75; rerun to continue (0: none)')
    return p


def parse(argv=None, parser=None):
    """Parses argv (list of strings, without the program name) into a validated namespace.

    `--flagfile FILE` is replaced by the flags of FILE where it stands, so flags after it win.
    """
    parser = parser or build_parser()
    argv, flagfiles = expand_flagfiles(list(sys.argv[1:] if argv is None else argv))
    cfg = parser.parse_args(argv)
    cfg.flagfile = flagfiles or None  # recorded in flags.json: which preset a run was made with
    validate(cfg)
    if cfg.data_dir is None:
        # MultiMNIST is made from the MNIST files at each epoch; nothing of its own is stored.
        cfg.data_dir = os.path.join('data', 'mnist' if cfg.dataset == 'multimnist' else cfg.dataset)
    return cfg


MAX_FLAGFILE_DEPTH = 10


def expand_flagfiles(argv, depth=0):
    """(argv with every --flagfile FILE replaced by FILE's flags, the files read in order).

    A flag file holds flags as on the command line, any number per line; `#` starts a comment.
    """
    expanded, read = [], []
    k = 0
    while k < len(argv):
        arg = argv[k]
        if arg == '--flagfile' or arg.startswith('--flagfile='):
            if arg == '--flagfile':
                if k + 1 >= len(argv):
                    raise ConfigError('--flagfile needs a file name, e.g. --flagfile=configs/paper.flags')
                path = argv[k + 1]
                k += 1
            else:
                path = arg[len('--flagfile='):]
            if depth >= MAX_FLAGFILE_DEPTH:
                raise ConfigError('--flagfile=%s: flag files include each other more than %d deep; '
                                  'remove the loop' % (path, MAX_FLAGFILE_DEPTH))
            inner, inner_read = expand_flagfiles(read_flagfile(path), depth + 1)
            expanded.extend(inner)
            read.extend([path] + inner_read)
        else:
            expanded.append(arg)
        k += 1
    return expanded, read


def read_flagfile(path):
    """The flags of one flag file as a list of arguments; a ConfigError if it cannot be read."""
    try:
        with open(path) as f:
            text = f.read()
    except (OSError, UnicodeDecodeError) as e:
        reason = getattr(e, 'strerror', None) or type(e).__name__
        raise ConfigError('cannot read --flagfile=%s (%s); give the path of a flags file such as '
                          'configs/paper.flags' % (path, reason)) from None
    try:
        return shlex.split(text, comments=True)
    except ValueError as e:
        raise ConfigError('cannot parse --flagfile=%s (%s); fix its quoting' % (path, e)) from None


def validate(cfg):
    """Refuses impossible values with a one-line ConfigError naming the flag."""
    if cfg.dataset not in DATASETS:
        raise ConfigError('unknown --dataset=%s; choose one of: %s' % (cfg.dataset, ', '.join(DATASETS)))
    positive = ['batch_size', 'epoch', 'iter_routing', 'train_sum_freq', 'val_sum_freq', 'save_freq',
                'num_threads', 'eval_batch_size', 'keep_checkpoints', 'val_size']
    for name in positive:
        value = getattr(cfg, name, None)
        if value is not None and value < 1:
            raise ConfigError('--%s must be at least 1, got %s' % (name, value))
    for name in ('max_steps', 'shift_pixels', 'intra_op_threads', 'inter_op_threads', 'time_limit'):
        if getattr(cfg, name) < 0:
            raise ConfigError('--%s must be >= 0, got %s' % (name, getattr(cfg, name)))
    if not 0.0 <= cfg.m_minus < cfg.m_plus <= 1.0:
        raise ConfigError('need 0 <= --m_minus < --m_plus <= 1, got m_minus=%s m_plus=%s'
                          % (cfg.m_minus, cfg.m_plus))
    for name in ('lambda_val', 'regularization_scale', 'stddev'):
        if getattr(cfg, name) < 0:
            raise ConfigError('--%s must be >= 0, got %s' % (name, getattr(cfg, name)))
    if getattr(cfg, 'shift_pixels', 0) >= 14:
        raise ConfigError('--shift_pixels=%d would shift a 28x28 digit out of the image; use 0-13 '
                          '(the paper: 2)' % cfg.shift_pixels)
    if cfg.learning_rate <= 0:
        raise ConfigError('--learning_rate must be > 0, got %s' % cfg.learning_rate)
    if cfg.lr_decay_steps < 1 or not 0 < cfg.lr_decay_rate <= 1:
        raise ConfigError('need --lr_decay_steps >= 1 and 0 < --lr_decay_rate <= 1, got %s and %s'
                          % (cfg.lr_decay_steps, cfg.lr_decay_rate))
    if getattr(cfg, 'primary_caps_types', 1) < 1:
        raise ConfigError('--primary_caps_types must be at least 1, got %s' % cfg.primary_caps_types)
    if cfg.dataset == 'multimnist':
        given = [name for name in ('shift_pixels', 'image_size', 'channels', 'crop') if getattr(cfg, name, None)]
        if given:
            raise ConfigError('--%s does not apply to --dataset=multimnist: its 36x36 pairs already shift each '
                              'digit by up to 4 pixels; leave it out' % given[0])
    for name in ('image_size', 'crop'):
        value = getattr(cfg, name, None)
        if value is not None:
            try:
                parse_size(value)
            except ConfigError as e:
                raise ConfigError('--%s=%s: %s' % (name, value, str(e).split(': ', 1)[1])) from None


def save_flags(cfg, path):
    """Records the resolved flags as JSON (atomically), so every run says how it was made."""
    files.atomic_write(path, json.dumps(vars(cfg), indent=2, sort_keys=True) + '\n')
