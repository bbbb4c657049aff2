"""Which checkpoint to use: the newest one of a run, or the one validation chose.

logdir/                     checkpoints of the run (model.ckpt-STEP), 'checkpoint' state file
logdir/best/                the checkpoint of the highest validation accuracy so far (one kept),
                            with its own 'checkpoint' state file and best.json {step, val_acc}

Model selection looks at the validation split only; the test set is never used to pick a step.
"""
import json
import os

import tensorflow as tf

import utils
from checkpoint_io import CHECKPOINT_NAME
from errors import UserError

BEST_FOLDER = 'best'
BEST_STATE = 'best.json'
CHOICES = ('latest', 'best')


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
    checkpoint = tf.train.latest_checkpoint(folder)
    if checkpoint is None:
        if which == 'best' and tf.train.latest_checkpoint(logdir) is not None:
            raise UserError('no validation-selected checkpoint in %s (the run predates it or never '
                            'validated); use --checkpoint=latest' % folder)
        raise UserError('no checkpoint in %s; train first with: python main.py --logdir=%s'
                        % (folder, logdir))
    return checkpoint


class BestCheckpoint:
    """Saves the model into logdir/best/ whenever validation accuracy beats every earlier value.

    Ties keep the earlier step. The record survives restarts through best.json, so a resumed run
    only replaces the best checkpoint with a strictly better one.
    """

    def __init__(self, saver, logdir):
        self.saver = saver  # a Saver with max_to_keep=1; None turns model selection off
        self.folder = best_folder(logdir)
        state = read_best_state(logdir)
        self.step = state['step'] if state else None
        self.accuracy = state['val_acc'] if state else float('-inf')
        previous = tf.train.get_checkpoint_state(self.folder)
        if previous is not None and saver is not None:
            # A new Saver forgets older files; without this a resumed run would keep two bests.
            saver.recover_last_checkpoints(list(previous.all_model_checkpoint_paths))

    def offer(self, sess, step, accuracy):
        """Saves when accuracy is a new best; returns True if it did."""
        if self.saver is None or not accuracy > self.accuracy:
            return False
        os.makedirs(self.folder, exist_ok=True)
        self.saver.save(sess, os.path.join(self.folder, CHECKPOINT_NAME), global_step=step,
                        write_meta_graph=False)
        self.step, self.accuracy = int(step), float(accuracy)
        utils.atomic_write(os.path.join(self.folder, BEST_STATE),
                           json.dumps({'step': self.step, 'val_acc': self.accuracy}) + '\n')
        return True
