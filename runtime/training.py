"""The training loop: resume from the newest checkpoint, train, validate, save, stop cleanly.

    train(cfg)  trains for cfg.epoch epochs (or cfg.max_steps steps) with the flags of config.py
"""
import contextlib
import os
import time
import types

import numpy as np
import tensorflow as tf
from tqdm import tqdm

import capsNet
import config
import model_spec
import utils
from runtime import checkpoints, files, run_record
from runtime.cli import check_output_folders
from runtime.errors import NonFiniteLoss, TimeLimitReached, TrainingInterrupted, warn
from runtime.graceful_stop import GracefulStop, StopRequested, signals_ignored
from readers import multimnist
from runtime.inference import count_correct, count_pairs_correct
from runtime.runlock import RunLock
from runtime.session import model_config as build_model_config, precision_note, session_config

tf1 = tf.compat.v1

CHECKPOINT_NAME = checkpoints.CHECKPOINT_NAME
# Monotonic: a clock set back or forward (NTP, a laptop waking up) must not cut a run short.
clock = time.monotonic
CSV_HEADERS = {'loss': 'step,loss', 'train_acc': 'step,train_acc', 'val_acc': 'step,val_acc'}


def input_options(cfg):
    """(InputSpec of the network, keyword arguments of utils.InputPipeline) from the run's flags and
    the input record train() put in cfg.input_spec (MNIST's when a caller gave none)."""
    record = getattr(cfg, 'input_spec', None) or {}
    spec = model_spec.InputSpec.from_flags({'input_spec': record})
    stored = (record.get('image_height', spec.height), record.get('image_width', spec.width))
    crop = (spec.height, spec.width) if tuple(stored) != (spec.height, spec.width) else None
    return spec, {'image_shape': tuple(stored) + (spec.channels,), 'crop': crop}


def build_train_graph(cfg):
    """Everything the loop runs: input pipelines, train and eval copies of one model, saver."""
    if cfg.dataset == utils.MULTIMNIST:
        return build_pair_train_graph(cfg)
    spec, shapes = input_options(cfg)
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(cfg.seed)
        model_config = build_model_config(cfg)
        global_step = tf1.train.get_or_create_global_step()
        train_input = utils.InputPipeline(cfg.batch_size, True, cfg.num_threads, 'train_input',
                                          shift_pixels=cfg.shift_pixels, seed=cfg.seed, random_crop=True,
                                          **shapes)
        eval_input = utils.InputPipeline(cfg.eval_batch_size, False, cfg.num_threads, 'eval_input', **shapes)
        model = capsNet.CapsNet(train_input.images, train_input.labels, model_config, training=True,
                                spec=spec)
        eval_model = capsNet.CapsNet(eval_input.images, eval_input.labels, model_config,
                                     training=False, reuse=True, spec=spec)
        parts = _loop_parts(cfg, graph, global_step, train_input, eval_input, model, eval_model)
    graph.finalize()  # a loop that adds ops every step leaks memory; make that an error instead
    return parts


def _loop_parts(cfg, graph, global_step, train_input, eval_input, model, eval_model):
    """What the loop runs, from the pipelines and the two model copies (call inside graph)."""
    parts = types.SimpleNamespace(
        graph=graph, global_step=global_step, train_input=train_input, eval_input=eval_input,
        train_op=capsNet.build_train_op(model, global_step), loss=model.total_loss,
        accuracy=model.accuracy, summary=capsNet.train_summaries(model), eval_model=eval_model,
        saver=tf1.train.Saver(max_to_keep=cfg.keep_checkpoints), best_saver=checkpoints.weights_saver(graph))
    parts.init = tf1.global_variables_initializer()
    return parts


def build_pair_train_graph(cfg):
    """build_train_graph for MultiMNIST: PairPipelines feed the merged images with both labels and both
    digits, and the two model copies are CapsNet's two-digit variant (capsNet.Pair)."""
    spec, _ = input_options(cfg)
    graph = tf.Graph()
    with graph.as_default():
        tf1.set_random_seed(cfg.seed)
        model_config = build_model_config(cfg)
        global_step = tf1.train.get_or_create_global_step()
        train_input = utils.PairPipeline(cfg.batch_size, True, cfg.num_threads, 'train_input', spec.height)
        eval_input = utils.PairPipeline(cfg.eval_batch_size, False, cfg.num_threads, 'eval_input', spec.height)
        model = capsNet.CapsNet(train_input.images, train_input.labels, model_config, training=True,
                                spec=spec, pair=train_input.pair())
        eval_model = capsNet.CapsNet(eval_input.images, eval_input.labels, model_config,
                                     training=False, reuse=True, spec=spec, pair=eval_input.pair())
        parts = _loop_parts(cfg, graph, global_step, train_input, eval_input, model, eval_model)
    graph.finalize()
    return parts


def open_session(parts, cfg):
    """A session for parts.graph with the speed flags of cfg (towers and clusters bring their own)."""
    return tf1.Session(graph=parts.graph, config=session_config(cfg))


@contextlib.contextmanager
def closing_on_this_thread(sess):
    """`with Session` minus its exit path for exceptions, which closes from a helper thread and waits
    up to 30 s, logging 'Session failed to close after 30 seconds' when the input pipeline holds the
    close up: a Ctrl-C or a UserError would then take 30 s and end on a TensorFlow error line."""
    try:
        with sess.graph.as_default(), sess.as_default():
            yield sess
    finally:
        sess.close()


def restore_or_initialize(sess, parts, cfg):
    """Restores the newest readable checkpoint of logdir, if any; returns (global step, its prefix)."""
    for folder in (cfg.logdir, checkpoints.best_folder(cfg.logdir)):
        if os.path.isdir(folder):
            checkpoints.remove_partial_saves(folder)
    variables = parts.graph.get_collection(tf1.GraphKeys.GLOBAL_VARIABLES)
    restored = checkpoints.restore_newest(sess, parts.saver, cfg.logdir, variables,
                                          warn=warn)
    if restored is None:
        sess.run(parts.init)
        return 0, None
    return int(sess.run(parts.global_step)), restored


def save_checkpoint(sess, parts, cfg, step):
    variables = parts.graph.get_collection(tf1.GraphKeys.GLOBAL_VARIABLES)
    checkpoints.save(sess, parts.saver, os.path.join(cfg.logdir, CHECKPOINT_NAME), step, variables)


def run_locks(cfg):
    """Locks logdir and results (once if they are one folder): a second run on them refuses to start."""
    with contextlib.ExitStack() as stack:  # releases the first lock if the second is refused
        seen = set()
        for folder, flag in ((cfg.logdir, '--logdir'), (cfg.results, '--results')):
            if os.path.realpath(folder) not in seen:
                seen.add(os.path.realpath(folder))
                stack.enter_context(RunLock(folder, flag))
        return stack.pop_all()


def open_csvs(results_dir, resumed_step):
    """The metric CSVs; rows after the checkpoint we resume from are dropped so none repeat."""
    logs = {}
    for name, header in CSV_HEADERS.items():
        logs[name] = files.CsvLog(os.path.join(results_dir, name + '.csv'), header)
        logs[name].truncate_after(resumed_step)
    return logs


def scalar_summary(tag, value):
    return tf1.Summary(value=[tf1.Summary.Value(tag=tag, simple_value=float(value))])


def epoch_spans(step, total_steps, steps_per_epoch):
    """(epoch, steps of it already done, step where it ends) for each epoch from `step` to total_steps:
    where a run, fresh or resumed, picks up the data order."""
    while step < total_steps:
        epoch, skip = divmod(step, steps_per_epoch)
        end = min((epoch + 1) * steps_per_epoch, total_steps)
        yield epoch, skip, end
        step = end


def train(cfg, build_graph=build_train_graph, open_session=open_session, on_session_ready=None):
    """Trains for cfg.epoch epochs (or cfg.max_steps steps); resumes from the newest checkpoint.

    build_graph(cfg) -> the parts build_train_graph returns; open_session(parts, cfg) -> their session;
    on_session_ready(sess, parts), if given, runs once the variables are restored or initialised
    (dist_version's towers and clusters change these three).
    """
    # First: a --results under a file must not cost a data load, nor leave a lock in --logdir.
    check_output_folders((cfg.logdir, '--logdir'), (cfg.results, '--results'))
    if cfg.dataset == utils.MULTIMNIST and build_graph is not build_train_graph:
        raise config.ConfigError('--dataset=multimnist trains with main.py only: the towers and clusters of '
                                 'dist_version build single-digit models')
    if cfg.dataset == utils.MULTIMNIST:
        # Training digits (paired afresh each epoch by _epoch_input) and the fixed validation Pairs.
        (train_x, train_y), val_pairs = utils.load_multimnist_train_val(cfg)
        val_data = val_pairs
        cfg.input_spec = utils.multimnist_spec_record()
    else:
        train_data, val_data = utils.load_train_val_data(cfg)
        (train_x, train_y), val_data = train_data[:2], val_data[:2]
        # Recorded in flags.json with the other flags: what evaluation, predict.py and the figures rebuild
        # the network from (sizes, channels, class names), so those need not be given again.
        cfg.input_spec = utils.spec_record(utils.input_spec(cfg, train_data), train_data)
    steps_per_epoch = len(train_x) // cfg.batch_size
    if steps_per_epoch == 0:
        raise config.ConfigError('--batch_size=%d is larger than the %d training images'
                                 % (cfg.batch_size, len(train_x)))
    total_steps = cfg.max_steps or cfg.epoch * steps_per_epoch
    note = precision_note(cfg, is_gpu_run=bool(tf.config.list_physical_devices('GPU')))
    if note:
        warn(note)
    with run_locks(cfg), GracefulStop() as stop:
        # Before the graph is built: a resume with other model or data-order flags changes nothing.
        run_record.check_resume(cfg, has_checkpoint=bool(checkpoints.newest_first(cfg.logdir)))
        parts = build_graph(cfg)
        return _train_loop(cfg, parts, (train_x, train_y), val_data, steps_per_epoch, total_steps,
                           stop, open_session, on_session_ready)


def _train_loop(cfg, parts, train_data, val_data, steps_per_epoch, total_steps, stop, open_session,
                on_session_ready):
    """val_data: (images, labels), or MultiMNIST's validation Pairs."""
    train_x, train_y = train_data
    deadline = clock() + 60.0 * cfg.time_limit if cfg.time_limit else None
    with closing_on_this_thread(open_session(parts, cfg)) as sess:
        step, restored = restore_or_initialize(sess, parts, cfg)
        if on_session_ready:
            on_session_ready(sess, parts)  # e.g. dist_version's chief starts applying synced gradients
        if step >= total_steps:
            print('already trained: step %d of %d in %s' % (step, total_steps, cfg.logdir))
            return step
        run_record.start_session(cfg, step)
        if step:
            print('resuming from step %d (%s)' % (step, restored))
        logs = open_csvs(cfg.results, step)
        best = checkpoints.BestCheckpoint(parts.best_saver, cfg.logdir, checkpoints.weights_to_keep(parts.graph))
        writer = tf1.summary.FileWriter(cfg.logdir, parts.graph if step == 0 else None)
        if step:
            # Tells TensorBoard to drop events a killed run wrote past this step, as the CSVs do.
            writer.add_session_log(tf1.SessionLog(status=tf1.SessionLog.START), step)
        last_saved = step
        try:
            stop.check()  # a Ctrl-C while the graph was built or restored: stop before the first step
            for epoch, skip, epoch_end in epoch_spans(step, total_steps, steps_per_epoch):
                order = utils.epoch_permutation(len(train_x), cfg.seed, epoch)
                if cfg.dataset == utils.MULTIMNIST:
                    # This epoch's pairs, a function of (seed, epoch) alone: a resumed run makes the same.
                    pairs = multimnist.epoch_pairs(train_x, train_y, cfg.seed, epoch)
                    parts.train_input.initialize(sess, pairs, order, skip, epoch=epoch)
                else:
                    parts.train_input.initialize(sess, train_x, train_y, order, skip, epoch=epoch)
                bar = tqdm(total=epoch_end - epoch * steps_per_epoch, initial=skip, unit='step',
                           desc='epoch %d/%d' % (epoch + 1, -(-total_steps // steps_per_epoch)),
                           dynamic_ncols=True)
                with bar:
                    while step < epoch_end:
                        step = _train_step(sess, parts, cfg, step, last_saved, logs, writer, bar)
                        if step % cfg.val_sum_freq == 0:
                            best.offer(sess, step, _validate(sess, parts, step, val_data, logs, writer))
                        stop.check()  # here the step and its rows are complete
                        if deadline is not None and step < total_steps and clock() >= deadline:
                            if step != last_saved:
                                save_checkpoint(sess, parts, cfg, step)
                            raise TimeLimitReached('time limit reached at step %d; run the same command '
                                                   'to continue' % step)
                if step % (cfg.save_freq * steps_per_epoch) == 0 or step == total_steps:
                    save_checkpoint(sess, parts, cfg, step)
                    last_saved = step
            if step % cfg.val_sum_freq:
                best.offer(sess, step, _validate(sess, parts, step, val_data, logs, writer))
        except StopRequested:
            if step != last_saved:
                with signals_ignored():  # a second Ctrl-C must not cut this save short
                    save_checkpoint(sess, parts, cfg, step)
            saved = 'checkpoint saved in %s' % cfg.logdir if step else 'nothing to save yet'
            raise TrainingInterrupted('interrupted at step %d; %s; run the same command to resume'
                                      % (step, saved)) from None
        except KeyboardInterrupt:
            raise TrainingInterrupted('stopped at once by a second interrupt near step %d, without saving; '
                                      'the last checkpoint (step %d) is intact; run the same command to '
                                      'resume' % (step, last_saved)) from None
        finally:
            writer.close()
    return step


def _train_step(sess, parts, cfg, step, last_saved, logs, writer, bar):
    """One optimizer step; summaries and CSV rows every train_sum_freq steps. Returns the new step."""
    log_now = (step + 1) % cfg.train_sum_freq == 0
    fetches = [parts.train_op, parts.loss, parts.accuracy] + ([parts.summary] if log_now else [])
    results = sess.run(fetches)
    loss, accuracy = results[1], results[2]
    step += 1
    if not np.isfinite(loss):
        raise NonFiniteLoss('loss is %s at step %d (last checkpoint: step %d, left untouched); lower '
                            '--learning_rate or check the data, then rerun to resume' % (loss, step, last_saved))
    bar.update(1)
    bar.set_postfix(loss='%.4f' % loss, acc='%.3f' % accuracy, refresh=False)
    if log_now:
        writer.add_summary(results[3], step)
        logs['loss'].append(step, loss)
        logs['train_acc'].append(step, accuracy)
    return step


def _validate(sess, parts, step, val_data, logs, writer):
    if isinstance(val_data, multimnist.Pairs):
        # MultiMNIST: val_acc is the pair accuracy, a pair right only when its two classes are the two
        # longest capsules (capsLayer.top2_correct), as the paper scores it.
        accuracy = count_pairs_correct(sess, parts.eval_input, parts.eval_model, val_data) / len(val_data.merged)
    else:
        val_x, val_y = val_data
        accuracy = count_correct(sess, parts.eval_input, parts.eval_model, val_x, val_y) / len(val_x)
    logs['val_acc'].append(step, accuracy)
    writer.add_summary(scalar_summary('val/accuracy', accuracy), step)
    writer.flush()
    tqdm.write('step %d: validation accuracy %.4f' % (step, accuracy))
    return accuracy
