"""pretrained/: export a trained run (weights only, float16 when it changes no validation prediction), load it back
through --checkpoint pretrained in every command, refuse damaged files; the shipped model scores
exactly what its card says."""
import json
import os
import shutil

import numpy as np
import pytest
from conftest import REAL_MNIST, run_main, tiny_run_args

import predict
from runtime import checkpoints, inference
from tools import export_pretrained, figures


@pytest.fixture(scope='module')
def exported(tiny_mnist, tmp_path_factory):
    """A 6-step run on the tiny data, exported from its validation-selected checkpoint."""
    work = tmp_path_factory.mktemp('export')
    assert run_main(tiny_run_args(tiny_mnist, work, '--flagfile', 'configs/official.flags')) == 0
    # What tools.reproduce keeps beside a logdir: the card names where the run was trained.
    (work / 'run.json').write_text(json.dumps({'sessions': [
        {'commit': 'abc1234', 'hardware': 'CPU one'}, {'commit': 'abc1234', 'hardware': 'CPU two'}]}))
    out = work / 'pretrained'
    assert export_pretrained.main(['--logdir', str(work / 'logdir'), '--checkpoint', 'best',
                                   '--data_dir', str(tiny_mnist), '--verify_data=False', '--out', str(out)]) == 0
    return work, out


@pytest.mark.slow
def test_card_and_weights(exported):
    work, out = exported
    card = json.loads((out / 'card.json').read_text())
    best = json.loads((work / 'logdir' / 'best' / 'best.json').read_text())
    assert card['step'] == best['step'] and card['val_acc'] == best['val_acc']
    assert card['epochs'] == round(best['step'] / 25, 2)  # 200 training images / batch 8
    assert card['preset'] == 'official' and card['flags']['digit_caps_bias'] is True
    assert not {'logdir', 'results', 'data_dir'} & set(card['flags'])  # no machine paths in the card
    assert card['test_errors'] == round((1 - card['test_acc']) * 60)
    assert card['trained_commits'] == ['abc1234'] and card['trained_hardware'] == ['CPU one', 'CPU two']
    assert '| trained on | CPU one / CPU two |' in (out / 'CARD.md').read_text()
    # Chosen on validation predictions, never on test errors; the card reports the stored weights' test.
    assert card['storage'] == ('float16' if card['float16_changes_validation'] is False else 'float32')
    assert card['test_errors'] == card['test_errors_%s' % card['storage']]
    assert card['sha256']['weights.npz'] == inference.sha256_of(str(out / 'weights.npz'))
    # The machine as parsed, read while TensorFlow was loaded: whether oneDNN ran the test is known.
    assert card['hardware'] == card['machine']['summary'] and card['machine']['onednn'] in (True, False)
    with np.load(out / 'weights.npz') as weights:
        names = set(weights.files)
        assert {weights[n].dtype for n in names} == {np.dtype(card['storage'])}
        assert sum(weights[n].size for n in names) == card['parameters']
    assert 'digit_caps/biases' in names and not [n for n in names if 'Adam' in n or 'power' in n
                                                   or n == 'global_step']
    markdown = (out / 'CARD.md').read_text()
    assert '| test accuracy | %.2f %% (%d errors of 60) |' % (100 * card['test_acc'], card['test_errors']) in markdown


@pytest.mark.slow
def test_assign_weights_loads_float16_values_and_refuses_other_shapes(exported):
    work, _ = exported
    with inference.load_model(str(work / 'logdir'), 'best') as trained:
        variables = trained.graph.get_collection('variables')
        weights = inference.model_weights(trained.sess, variables)
        rounded = {name: value.astype(np.float16) for name, value in weights.items()}
        own = [v for v in variables if v.op.name in rounded]
        inference.assign_weights(trained.sess, trained.checkpoint, rounded, own)
        loaded = inference.model_weights(trained.sess, variables)
        assert set(loaded) == set(weights)
        for name, value in loaded.items():
            assert value.dtype == np.float32
            np.testing.assert_array_equal(value, rounded[name].astype(np.float32))
        # Rounding moved some weights, so the equality above is not the restored values seen again.
        assert any(not np.array_equal(loaded[name], weights[name]) for name in weights)
        step_counter = [v for v in variables if v.op.name == 'global_step'][0]
        assert trained.sess.run(step_counter) == trained.step
        wrong = dict(rounded, **{'digit_caps/W': rounded['digit_caps/W'][:1]})
        with pytest.raises(checkpoints.CheckpointError,
                           match=r'digit_caps/W is \[1, 10, 8, 16\] there but \[1152, 10, 8, 16\] here'):
            inference.assign_weights(trained.sess, trained.checkpoint, wrong, own)


@pytest.mark.slow
def test_every_command_loads_it_through_checkpoint_pretrained(exported, tiny_mnist, tmp_path, monkeypatch,
                                                              capsys):
    work, out = exported
    card = json.loads((out / 'card.json').read_text())
    monkeypatch.setattr(inference, 'PRETRAINED_DIR', str(out))
    # No model flags given, and an empty logdir: everything comes from pretrained/.
    args = tiny_run_args(tiny_mnist, tmp_path, '--is_training=False', '--checkpoint', 'pretrained')
    assert run_main(args) == 0
    assert ('test accuracy %.4f (%d errors / 60) at step %d' % (card['test_acc'], card['test_errors'],
                                                                card['step'])) in capsys.readouterr().out
    # The shipped model's figures stay apart from the user's own run's CSVs.
    assert (tmp_path / 'results' / 'pretrained' / 'test_acc.csv').exists()
    assert not (tmp_path / 'results' / 'test_acc.csv').exists()
    x = (np.arange(28 * 28).reshape(1, 28, 28) % 255).astype(np.float32) / 255
    predictions, lengths, _, checkpoint, step = predict.predict(x, 'unused', 'pretrained')
    assert step == card['step'] and checkpoint.endswith('weights.npz') and lengths.shape == (1, 10)
    assert figures.run(args) == 0
    assert (tmp_path / 'results' / 'perturbation.png').exists()


@pytest.mark.slow
def test_damaged_or_missing_pretrained_is_one_line(exported, tiny_mnist, tmp_path, monkeypatch, capsys):
    _, out = exported
    copy = tmp_path / 'copy'
    shutil.copytree(out, copy)
    monkeypatch.setattr(inference, 'PRETRAINED_DIR', str(copy))
    args = tiny_run_args(tiny_mnist, tmp_path, '--is_training=False', '--checkpoint', 'pretrained')
    weights = copy / 'weights.npz'
    weights.write_bytes(weights.read_bytes()[:-10])
    assert run_main(args) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'weights.npz is damaged or not the one its card describes' in err
    (copy / 'card.json').unlink()
    assert run_main(args) == 1
    err = capsys.readouterr().err
    assert err.count('\n') == 1 and 'no pretrained model in %s; export one with' % copy in err


@pytest.mark.slow
@pytest.mark.skipif(not (REAL_MNIST.exists() and os.path.exists(os.path.join(inference.PRETRAINED_DIR,
                                                                             inference.PRETRAINED_CARD))),
                    reason='needs the real MNIST and a shipped pretrained/card.json')
def test_shipped_model_scores_what_its_card_says(tmp_path, capsys):
    card = inference.read_card()
    assert run_main(['--is_training=False', '--checkpoint', 'pretrained', '--data_dir', str(REAL_MNIST),
                     '--dataset', card['dataset'], '--results', str(tmp_path), '--logdir', str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert 'test accuracy %.4f (%d errors / 10000) at step %d' % (card['test_acc'], card['test_errors'],
                                                                   card['step']) in out
