"""What a run is and how it was trained: logdir/flags.json (its identity) and logdir/sessions.json.

flags.json is written once, when a run starts from step 0, with every resolved flag. Evaluation,
predict.py and the export rebuild the model from it, so it must keep describing the weights: a resume
that changes a model flag or the data order (IDENTITY_FLAGS) is refused before anything is built or
written, and nothing rewrites the file afterwards.

sessions.json lists each training session of the command (a start or a resume): when it began, the
step it began at, and the flags that may differ between sessions (epochs, step and time limits,
frequencies, threads, precision, paths), so a run that went through several machines says so.
"""
import dataclasses
import json
import os
import time

import config
import model_spec
from runtime import files
from runtime.errors import ConfigError

FLAGS_FILE = 'flags.json'
SESSIONS_FILE = 'sessions.json'
# The model and the order it sees the data in: changing one of these mid-run makes another run.
IDENTITY_FLAGS = tuple(f.name for f in dataclasses.fields(model_spec.ModelConfig)
                       if f.name not in model_spec.SPEED_FIELDS) + (
    'batch_size', 'seed', 'shift_pixels', 'val_size', 'dataset')


def read_json(path, default=None):
    """The JSON of a run record, `default` if there is no such file; a one-line UserError if damaged."""
    return files.read_json(path, default, 'restore it from a copy of the run, or delete it (a deleted '
                                          'flags.json is written anew from the flags given)')


def differences(recorded, cfg):
    """[(flag, recorded value, value now)] of the identity flags that cfg changes.

    A flag the record does not have (an older version of the script) cannot be compared; the
    checkpoint's shapes still catch a change of architecture.
    """
    return [(name, recorded[name], getattr(cfg, name)) for name in IDENTITY_FLAGS
            if name in recorded and hasattr(cfg, name) and recorded[name] != getattr(cfg, name)]


def check_resume(cfg, has_checkpoint):
    """Refuses (exit 2) to resume the run in cfg.logdir with other model or data-order flags."""
    if not has_checkpoint:
        return  # a fresh start: nothing to continue, flags.json is written anew
    recorded = read_json(os.path.join(cfg.logdir, FLAGS_FILE))
    if not isinstance(recorded, dict):
        return
    changed = differences(recorded, cfg)
    if changed:
        raise ConfigError('%s holds a run trained with %s; resume it with those flags, or give a new '
                          '--logdir to train another run' % (cfg.logdir, ', '.join(
                              '--%s=%s (now %s)' % item for item in changed)))
    # --image_size, --channels and --crop change what the weights mean even where their shapes fit.
    before, now = recorded.get('input_spec'), getattr(cfg, 'input_spec', None)
    if before and now and before != now:
        raise ConfigError('%s holds a run trained on %s, but the data and flags now give %s; resume it with '
                          'its --image_size/--channels/--crop and data, or give a new --logdir'
                          % (cfg.logdir, _describe_input(before), _describe_input(now)))


def _describe_input(spec):
    return '%dx%dx%d crops of %dx%d images, classes %s' % (
        spec['height'], spec['width'], spec['channels'], spec['image_height'], spec['image_width'],
        ','.join(spec['class_names']))


def start_session(cfg, step):
    """Records a training session starting at `step`: flags.json on a fresh start, a sessions.json entry."""
    flags_path = os.path.join(cfg.logdir, FLAGS_FILE)
    if step == 0 or not os.path.exists(flags_path):
        config.save_flags(cfg, flags_path)
        print('flags (saved to %s): %s' % (flags_path, ' '.join('--%s=%s' % kv for kv in sorted(vars(cfg).items()))))
    sessions_path = os.path.join(cfg.logdir, SESSIONS_FILE)
    sessions = read_json(sessions_path, [])
    session_flags = {k: v for k, v in sorted(vars(cfg).items()) if k not in IDENTITY_FLAGS}
    sessions.append({'started': time.strftime('%Y-%m-%d %H:%M:%S UTC', time.gmtime()), 'from_step': step,
                     'flags': session_flags})
    files.atomic_write(sessions_path, json.dumps(sessions, indent=1) + '\n')
