"""Turn a trained run's checkpoint into pretrained/: the weights only, and a card of what they score.

    python -m tools.export_pretrained --logdir RUN/logdir --checkpoint best --data_dir data/mnist

Keeps the model's own variables (no Adam slots, no step counter: the step goes into the card) and
stores them as float16 (half the size) when rounding changes no validation image's prediction, float32
otherwise: the choice sees only the validation split, like every choice of a model here. Both are then
tested on the whole test set, for the card. Then it loads
the written files back through `--checkpoint pretrained` and checks they score what the card says.
Writes OUT/weights.npz, OUT/card.json (machine-readable) and OUT/CARD.md.
"""
import io
import json
import os
import sys

import numpy as np

import config
from runtime import cli, files, model_sources, quiet_start
from runtime.errors import UserError, run_cli
from tools import provenance

# utils, runtime.checkpoints and runtime.inference load TensorFlow: export() imports them once the flags
# have parsed, so --help and a bad flag answer at once and without TensorFlow's start-up lines.

# Flags that describe this machine's folders, not the model: left out of the card.
LOCAL_FLAGS = ('logdir', 'results', 'data_dir')


def build_parser():
    p = cli.command_parser('Export a checkpoint of a run as the pretrained model (weights + card).',
                           'python -m tools.export_pretrained')
    p.add_argument('--logdir', required=True, help='the training run\'s logdir (checkpoints, flags.json)')
    p.add_argument('--checkpoint', default='best', choices=model_sources.RUN_CHECKPOINTS,
                   help='which checkpoint of the run: validation-selected or newest')
    p.add_argument('--data_dir', default=None, help='the data set\'s IDX files (default data/DATASET)')
    p.add_argument('--verify_data', type=config.str2bool, default=True, help='check the data checksums')
    p.add_argument('--results', default=None,
                   help='the run\'s results folder, for the validation accuracy of --checkpoint=latest')
    # The help names the folder as the repository does, not by this checkout's absolute path.
    p.add_argument('--out', default=model_sources.PRETRAINED_DIR,
                   help='folder to write (replaced files); default: pretrained/ of this checkout')
    p.add_argument('--batch_size', type=int, default=500, help='test-set batch size')
    return p


def test_errors(trained, test_x, test_y, batch_size):
    return int(np.sum(trained.predict_uint8(test_x, batch_size) != test_y))


def validation_accuracy(logdir, which, step, results):
    """The validation accuracy of the exported step: best.json for 'best', val_acc.csv otherwise."""
    from runtime import checkpoints
    if which == 'best':
        state = checkpoints.read_best_state(logdir)
        if state and state['step'] == step:
            return state['val_acc']
    path = os.path.join(results or os.path.join(os.path.dirname(os.path.abspath(logdir)), 'results'),
                        'val_acc.csv')
    if os.path.exists(path):
        for row in files.CsvLog(path, 'step,val_acc').rows():
            if row[0] == str(step):
                return float(row[1])
    return None


def portable_flags(flags):
    kept = {k: v for k, v in flags.items() if k not in LOCAL_FLAGS}
    if kept.get('flagfile'):
        kept['flagfile'] = [os.path.basename(p) for p in kept['flagfile']]
    return kept


def preset_of(flags):
    names = [os.path.splitext(os.path.basename(p))[0] for p in flags.get('flagfile') or []]
    return '+'.join(names) if names else 'command-line flags (no preset file)'


def training_sessions(logdir):
    """(commits, machines) the run was trained with, from the run.json that tools.reproduce keeps beside
    the logdir; empty lists when there is none (a run trained by main.py alone)."""
    record = os.path.join(os.path.dirname(os.path.abspath(logdir)), 'run.json')
    try:
        with open(record) as f:
            sessions = json.load(f).get('sessions', [])
    except (OSError, ValueError, AttributeError):
        return [], []
    def distinct(key):
        return list(dict.fromkeys(s[key] for s in sessions if isinstance(s, dict) and s.get(key)))
    return distinct('commit'), distinct('hardware')


def write_weights(path, weights):
    buffer = io.BytesIO()
    np.savez(buffer, **weights)
    files.atomic_write(path, buffer.getvalue())


def export(args):
    quiet_start.import_tensorflow_quietly()  # before the first module that imports TensorFlow
    import utils
    from runtime import inference
    # Before anything is written: the new files in pretrained/ would make every export '+uncommitted'.
    commit = provenance.commit()
    flags = inference.run_flags(args.logdir)
    if not flags:
        raise UserError('no flags.json in %s; export needs the flags the run was trained with' % args.logdir)
    dataset = flags.get('dataset', 'mnist')
    data_dir = args.data_dir or os.path.join('data', dataset)
    test_x, test_y = utils.load_split(data_dir, 'test', dataset, args.verify_data)
    (train_x, _), (val_x, _) = utils.load_train_val(data_dir, int(flags.get('val_size', 5000)), dataset, False)
    num_train = len(train_x)
    with inference.load_model(args.logdir, args.checkpoint) as trained:
        variables = trained.graph.get_collection('variables')
        weights32 = inference.model_weights(trained.sess, variables)
        val32 = trained.predict_uint8(val_x, args.batch_size)
        errors32 = test_errors(trained, test_x, test_y, args.batch_size)
        weights16 = {k: v.astype(np.float16) for k, v in weights32.items()}
        if not all(np.all(np.isfinite(v)) for v in weights16.values()):
            val16, errors16 = None, None  # a weight beyond float16's range
        else:
            # The model's own variables only: the step counter keeps the value restored with them.
            inference.assign_weights(trained.sess, trained.checkpoint, weights16,
                                     [v for v in variables if v.op.name in weights16])
            val16 = trained.predict_uint8(val_x, args.batch_size)
            errors16 = test_errors(trained, test_x, test_y, args.batch_size)
        step, source = trained.step, trained.checkpoint
    # Read while TensorFlow is loaded, so the card says whether oneDNN ran the test.
    machine = provenance.machine()
    storage = 'float16' if val16 is not None and np.array_equal(val16, val32) else 'float32'
    chosen, errors = (weights16, errors16) if storage == 'float16' else (weights32, errors32)
    os.makedirs(args.out, exist_ok=True)
    weights_path = os.path.join(args.out, model_sources.PRETRAINED_WEIGHTS)
    write_weights(weights_path, chosen)
    steps_per_epoch = num_train // int(flags.get('batch_size', 128))
    card = {
        'preset': preset_of(flags),
        'dataset': dataset,
        'flags': portable_flags(flags),
        'source_checkpoint': '%s (%s)' % (args.checkpoint, os.path.relpath(source, args.logdir)),
        'step': step,
        'epochs': round(step / steps_per_epoch, 2) if steps_per_epoch else None,
        'val_acc': validation_accuracy(args.logdir, args.checkpoint, step, args.results),
        'test_acc': 1.0 - errors / len(test_y),
        'test_errors': errors,
        'test_images': len(test_y),
        'test_errors_float32': errors32,
        'test_errors_float16': errors16,
        'storage': storage,
        # None: a weight is beyond float16's range.
        'float16_changes_validation': None if val16 is None else bool(not np.array_equal(val16, val32)),
        'parameters': int(sum(v.size for v in chosen.values())),
        'commit': commit,
        'trained_commits': training_sessions(args.logdir)[0],
        'trained_hardware': training_sessions(args.logdir)[1],
        'hardware': machine['summary'],
        'machine': machine,
        'sha256': {model_sources.PRETRAINED_WEIGHTS: inference.sha256_of(weights_path)},
    }
    files.atomic_write(os.path.join(args.out, model_sources.PRETRAINED_CARD),
                       json.dumps(card, indent=2, sort_keys=True) + '\n')
    files.atomic_write(os.path.join(args.out, 'CARD.md'), card_markdown(card))
    # What users will load: the written files, through the one loader.
    with inference.load_model(None, 'pretrained', pretrained_dir=args.out) as shipped:
        reloaded = test_errors(shipped, test_x, test_y, args.batch_size)
    if reloaded != errors:
        raise UserError('the written model makes %d test errors, the %s weights %d; not shipped as is: '
                        'delete %s and report this' % (reloaded, storage, errors, args.out))
    print('exported step %d of %s as %s (validation predictions %s in float16): test accuracy %.4f (%d '
          'errors / %d; float32 %d, float16 %s); wrote %s'
          % (step, source, storage, 'unchanged' if storage == 'float16' else 'changed or not representable',
             card['test_acc'], errors, len(test_y), errors32,
             'not representable' if errors16 is None else '%d errors' % errors16, args.out))
    return card


def card_markdown(card):
    def pct(x):
        return 'not recorded' if x is None else '%.2f %%' % (100 * x)
    flags = ' '.join('--%s=%s' % (k, v) for k, v in sorted(card['flags'].items())
                     if k not in ('flagfile', 'is_training'))
    return '\n'.join([
        '# Pretrained CapsNet',
        '',
        'The weights of one trained run (weights only: no optimizer state), stored as %s in `%s`.'
        % (card['storage'], model_sources.PRETRAINED_WEIGHTS),
        'Written by `python -m tools.export_pretrained`; `card.json` holds the same facts for programs.',
        '',
        '| | |',
        '|---|---|',
        '| preset | %s |' % card['preset'],
        '| data set | %s |' % card['dataset'],
        '| training steps | %d (%s epochs) |' % (card['step'], card['epochs']),
        '| checkpoint | %s |' % card['source_checkpoint'],
        '| validation accuracy | %s |' % pct(card['val_acc']),
        '| test accuracy | %s (%d errors of %d) |' % (pct(card['test_acc']), card['test_errors'], card['test_images']),
        '| test errors float32 / float16 weights | %s / %s |' % (card['test_errors_float32'],
                                                                  card['test_errors_float16']),
        '| parameters | %d |' % card['parameters'],
        '| trained at commit | %s |' % (', '.join(card['trained_commits']) or 'not recorded'),
        '| trained on | %s |' % (' / '.join(card['trained_hardware']) or 'not recorded'),
        '| exported at commit | %s |' % card['commit'],
        '| exported and tested on | %s |' % card['hardware'],
        '| sha256 of %s | `%s` |' % (model_sources.PRETRAINED_WEIGHTS, card['sha256'][model_sources.PRETRAINED_WEIGHTS]),
        '',
        'Use it with `--checkpoint pretrained`:',
        '',
        '    python main.py --is_training=False --checkpoint pretrained   # test accuracy, as above',
        '    python predict.py --checkpoint pretrained my_digits/',
        '    python -m tools.figures --checkpoint pretrained',
        '',
        'Flags it was trained with: `%s`' % flags,
        '',
    ])


def main(argv=None):
    return run_cli(lambda: export(build_parser().parse_args(sys.argv[1:] if argv is None else argv)) and 0)


if __name__ == '__main__':
    sys.exit(main())
