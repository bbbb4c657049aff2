"""Checkpoint input/output that survives crashes: find the newest readable one, check it fits, save safely.

What a crash can leave behind and what happens then:
- killed during a save: `save` writes under a staging name and renames the files into place, the
  .index last, and the `checkpoint` state file is replaced atomically afterwards, so the previous
  checkpoint stays the newest complete one (the next start deletes the staged leftovers);
- a damaged newest checkpoint (truncated by a full disk, a bad copy): restore falls back to the next
  older one and says so, and refuses only when none can be read;
- a checkpoint of another architecture (other capsule sizes, other layers): refused by comparing the
  shapes stored in it with the graph's, naming the variables and the flags that differ, instead of
  TensorFlow's page-long error;
- a save that fails (disk full, folder not writable): a one-line error naming the last good one,
  for logdir and for logdir/best/ alike;
- non-finite weights: never saved, so the newest checkpoint is always one training can go on from.

Model selection (validation only; the test set never picks a step):
logdir/best/                the checkpoint of the highest validation accuracy so far (one kept),
                            with its own 'checkpoint' state file and best.json {step, val_acc}

Checkpoints are found by file name (`model.ckpt-<step>.index`) inside their own folder, never through a
path stored somewhere: the `checkpoint` state files name them relative to their folder (as TensorFlow
reads them), and rotation only ever deletes files it listed in that same folder. So a logdir can be
copied or moved, and resuming the copy leaves the original's files as they were. logdir/best/ holds the
model's weights and the step only (what evaluation, prediction and export read), no optimizer slots.
"""
import glob
import json
import os
import re
import time

import numpy as np
import tensorflow as tf
from google.protobuf import text_encoding

from runtime import files
from runtime.errors import UserError
from runtime.model_sources import RUN_CHECKPOINTS

tf1 = tf.compat.v1

CHECKPOINT_NAME = 'model.ckpt'


class CheckpointError(UserError):
    pass


class NonFiniteWeights(UserError):
    exit_code = 3


def newest_first(logdir, name=CHECKPOINT_NAME):
    """Prefixes of the checkpoints `<name>-<step>` in logdir, highest step first."""
    pattern = re.compile(re.escape(name) + r'-(\d+)\.index$')
    found = []
    for index_file in glob.glob(os.path.join(glob.escape(logdir), name + '-*.index')):
        match = pattern.search(os.path.basename(index_file))
        if match:
            found.append((int(match.group(1)), index_file[:-len('.index')]))
    return [prefix for _, prefix in sorted(found, reverse=True)]


def step_of(prefix):
    return int(prefix.rsplit('-', 1)[1])


def restore_newest(sess, saver, logdir, variables, name=CHECKPOINT_NAME, warn=print):
    """Restores the newest readable checkpoint of logdir into `variables`; returns its prefix or None.

    A checkpoint that cannot be read is skipped with a warning; one whose shapes do not match
    `variables` stops everything (an older one of the same run would not match either).
    """
    candidates = newest_first(logdir, name)
    skipped = []
    for prefix in candidates:
        try:
            stored_shapes = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
        except (tf.errors.OpError, ValueError) as e:
            skipped.append((prefix, short_reason(e)))
            continue
        check_fits(prefix, stored_shapes, variables)
        try:
            saver.restore(sess, prefix)
        except (tf.errors.OpError, ValueError) as e:
            skipped.append((prefix, short_reason(e)))
            continue
        for bad, reason in skipped:
            warn('warning: checkpoint %s cannot be read (%s); falling back to %s'
                 % (bad, reason, os.path.basename(prefix)))
        return prefix
    if skipped:
        raise CheckpointError('no readable checkpoint in %s (%s: %s); delete the damaged files, or the '
                              'whole folder to start over' % (logdir, skipped[0][0], skipped[0][1]))
    return None


def restore_exactly(sess, saver, prefix, variables):
    """Restores the one checkpoint `prefix` (a chosen one, no fallback), with the same one-line errors."""
    try:
        stored_shapes = tf.train.load_checkpoint(prefix).get_variable_to_shape_map()
    except (tf.errors.OpError, ValueError) as e:
        raise CheckpointError('checkpoint %s cannot be read (%s); pick another one or retrain'
                              % (prefix, short_reason(e))) from None
    check_fits(prefix, stored_shapes, variables)
    try:
        saver.restore(sess, prefix)
    except (tf.errors.OpError, ValueError) as e:
        raise CheckpointError('checkpoint %s cannot be read (%s); pick another one or retrain'
                              % (prefix, short_reason(e))) from None
    return prefix


def check_fits(prefix, stored_shapes, variables):
    """Raises CheckpointError naming what differs when `variables` cannot be restored from prefix."""
    problems = []
    for v in variables:
        name = v.op.name
        wanted = v.shape.as_list()
        if name not in stored_shapes:
            problems.append('%s is missing there' % name)
        elif list(stored_shapes[name]) != wanted:
            problems.append('%s is %s there but %s here' % (name, list(stored_shapes[name]), wanted))
    if not problems:
        return
    shown = '; '.join(problems[:3]) + ('; ...' if len(problems) > 3 else '')
    raise CheckpointError('checkpoint %s was made by a different model (%s); rerun with the flags it was '
                          'trained with (its run\'s flags.json) or use another --logdir' % (prefix, shown))


def remove_partial_saves(logdir):
    """Deletes what saves cut short by a kill left behind (TensorFlow's temporary files); returns them.

    Only safe while no other run writes logdir, i.e. under its RunLock (a staged save renames its data
    files before its .index, so one that is still running would lose them).
    """
    leftovers = set(glob.glob(os.path.join(glob.escape(logdir), '*.tempstate*'))
                    + glob.glob(os.path.join(glob.escape(logdir), 'checkpoint.tmp*')))
    # A kill between renaming the data files and the .index leaves data files of no checkpoint.
    for data_file in glob.glob(os.path.join(glob.escape(logdir), '*.data-*-of-*')):
        if not os.path.exists(data_file.split('.data-')[0] + '.index'):
            leftovers.add(data_file)
    leftovers = sorted(leftovers)
    for path in leftovers:
        os.remove(path)
    return leftovers


# Tests set this to 'STEP:PATH' to catch a save in the act: at STEP the save writes PATH once the data is
# staged, then waits until PATH is deleted (or the process is killed) before putting the files in place.
PAUSE_IN_SAVE_ENV = 'CAPSNET_TEST_PAUSE_IN_SAVE'
STAGING_SUFFIX = '.tempstate'  # remove_partial_saves deletes what a save cut short left under this name


def save(sess, saver, prefix, step, variables, write_meta_graph=True):
    """Saves `variables` as prefix-step; the one way any checkpoint is written (latest and best/).

    Refuses NaN/Inf weights, and turns disk trouble into a one-line CheckpointError naming the previous
    checkpoint, which stays intact: the files are written under a staging name and renamed into place
    (data first, the .index last: a checkpoint is found by its .index), then the `checkpoint` state file
    is updated and checkpoints past the Saver's max_to_keep are deleted.
    """
    bad = non_finite(sess, variables)
    if bad:
        raise NonFiniteWeights('weights became NaN or Inf by step %d (%s); nothing saved, the last checkpoint '
                               'is untouched; lower --learning_rate or check the data, then rerun to resume'
                               % (step, ', '.join(bad[:3])))
    final = '%s-%d' % (prefix, step)
    logdir = os.path.dirname(prefix) or '.'
    try:
        staged = saver.save(sess, final + STAGING_SUFFIX, write_meta_graph=write_meta_graph, write_state=False)
        _pause_if_asked(step)
        _move_into_place(staged, final)
        _record(logdir, final, saver.saver_def.max_to_keep)
    except (tf.errors.OpError, OSError) as e:
        remove_partial_saves(logdir)  # a half-written data file can be as large as the whole checkpoint
        previous = [p for p in newest_first(logdir, os.path.basename(prefix))
                    if step_of(p) != step]
        kept = ('the previous one, %s, is intact' % os.path.basename(previous[0]) if previous
                else 'there is no earlier checkpoint')
        raise CheckpointError('cannot write checkpoint %s (%s); %s; free disk space or choose another '
                              '--logdir, then rerun the same command to resume'
                              % (final, short_reason(e), kept)) from None
    return final


def _pause_if_asked(step):
    asked = os.environ.get(PAUSE_IN_SAVE_ENV, '')
    pause_step, _, marker = asked.partition(':')
    if not marker or pause_step != str(step):
        return
    files.atomic_write(marker, '%d\n' % step)
    while os.path.exists(marker):
        time.sleep(0.05)


def _move_into_place(staged, final):
    for data_file in sorted(glob.glob(glob.escape(staged) + '.data-*')):
        os.replace(data_file, final + data_file[len(staged):])
    if os.path.exists(staged + '.meta'):
        os.replace(staged + '.meta', final + '.meta')
    os.replace(staged + '.index', final + '.index')  # from here on the checkpoint exists


def _record(folder, final, max_to_keep):
    """What Saver.save does after writing, by the files of `folder` alone: the `checkpoint` state file,
    naming checkpoints relative to folder, and the rotation to the newest max_to_keep (0: keep all).

    Checkpoints of higher steps than `final` (left by a run whose newest checkpoint could not be read)
    are neither listed nor deleted: they are not this run's to judge.
    """
    name, step = os.path.basename(final).rsplit('-', 1)[0], step_of(final)
    older = [p for p in newest_first(folder, name) if step_of(p) < step]
    kept_older = older[:max_to_keep - 1] if max_to_keep else older
    kept = [os.path.basename(p) for p in reversed(kept_older)] + [os.path.basename(final)]
    # TensorFlow's text format of CheckpointState, as tf.train.latest_checkpoint reads it.
    quoted = lambda path: '"%s"' % text_encoding.CEscape(path, as_utf8=True)
    files.atomic_write(os.path.join(folder, 'checkpoint'),
                       'model_checkpoint_path: %s\n' % quoted(kept[-1])
                       + ''.join('all_model_checkpoint_paths: %s\n' % quoted(p) for p in kept))
    for old in older[len(kept_older):]:
        for old_file in glob.glob(glob.escape(old) + '.*'):
            if re.search(r'\.(index|meta|data-\d+-of-\d+)$', old_file):
                os.remove(old_file)


def non_finite(sess, variables):
    """Names of the variables holding a NaN or Inf (read from the session; no ops are added)."""
    values = sess.run(list(variables))
    return [v.op.name for v, value in zip(variables, values)
            if np.issubdtype(np.asarray(value).dtype, np.floating) and not np.all(np.isfinite(value))]


def short_reason(error):
    """The cause of a TensorFlow or OS error in a few words (TF messages span pages)."""
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    text = getattr(error, 'message', None) or str(error)
    # TF messages carry the cause as 'path; reason' on one of their lines.
    for line in text.split('\n'):
        match = re.search(r';\s*([^;\[]+?)\s*$', line)
        if match and not line.lstrip().startswith(('File ', 'Node:', 'Detected')):
            return match.group(1)[:160]
    first = next((line.strip() for line in text.split('\n') if line.strip()), type(error).__name__)
    return first[:160]


BEST_FOLDER = 'best'
BEST_STATE = 'best.json'
CHOICES = RUN_CHECKPOINTS


def best_folder(logdir):
    return os.path.join(logdir, BEST_FOLDER)


def read_best_state(logdir):
    """{'step': int, 'val_acc': float} of the best checkpoint, or None before the first validation."""
    path = os.path.join(best_folder(logdir), BEST_STATE)
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def find(logdir, which='latest'):
    """Path prefix of the 'latest' or 'best' checkpoint of logdir; a UserError saying how to get one."""
    if which not in CHOICES:
        raise UserError('unknown --checkpoint=%s; choose latest or best' % which)
    folder = logdir if which == 'latest' else best_folder(logdir)
    found = newest_first(folder)
    if not found:
        if which == 'best' and newest_first(logdir):
            raise UserError('no validation-selected checkpoint in %s (the run predates it or never '
                            'validated); use --checkpoint=latest' % folder)
        raise UserError('no checkpoint in %s; train first with: python main.py --logdir=%s'
                        % (folder, logdir))
    return found[0]


def weights_to_keep(graph):
    """The variables logdir/best/ keeps: the model's weights and the step, not the optimizer's slots.

    Evaluation, predict.py and the export restore only these, so best/ is a third of a full checkpoint.
    """
    weights = graph.get_collection(tf1.GraphKeys.TRAINABLE_VARIABLES)
    return weights + graph.get_collection(tf1.GraphKeys.GLOBAL_STEP)


def weights_saver(graph):
    """The Saver of logdir/best/ (call while building graph): weights_to_keep, one checkpoint kept."""
    return tf1.train.Saver(weights_to_keep(graph), max_to_keep=1)


class BestCheckpoint:
    """Saves the model into logdir/best/ whenever validation accuracy beats every earlier value.

    Ties keep the earlier step. The record survives restarts through best.json, so a resumed run
    only replaces the best checkpoint with a strictly better one.
    """

    def __init__(self, saver, logdir, variables):
        self.saver = saver  # a weights_saver(): max_to_keep=1, so a new best replaces the old one
        self.variables = list(variables)  # what saver saves, checked for NaN/Inf before each save
        self.folder = best_folder(logdir)
        state = read_best_state(logdir)
        self.step = state['step'] if state else None
        self.accuracy = state['val_acc'] if state else float('-inf')

    def offer(self, sess, step, accuracy):
        """Saves when accuracy is a new best; returns True if it did."""
        if not accuracy > self.accuracy:
            return False
        os.makedirs(self.folder, exist_ok=True)
        save(sess, self.saver, os.path.join(self.folder, CHECKPOINT_NAME), step, self.variables,
             write_meta_graph=False)
        self.step, self.accuracy = int(step), float(accuracy)
        files.atomic_write(os.path.join(self.folder, BEST_STATE),
                           json.dumps({'step': self.step, 'val_acc': self.accuracy}) + '\n')
        return True
