"""results_table.py: which test row counts for which checkpoint, and mean +- sd over runs."""
import json

from tools import results_table


def fake_run(folder, final, best_step, tests, wall_s=None):
    (folder / 'logdir' / 'best').mkdir(parents=True)
    (folder / 'results').mkdir()
    (folder / 'logdir' / 'checkpoint').write_text(
        'model_checkpoint_path: "model.ckpt-%d"\nall_model_checkpoint_paths: "model.ckpt-%d"\n' % (final, final))
    (folder / 'logdir' / 'best' / 'best.json').write_text(json.dumps({'step': best_step, 'val_acc': 0.99}))
    (folder / 'results' / 'val_acc.csv').write_text('step,val_acc\n250,0.95\n%d,0.98\n' % final)
    (folder / 'results' / 'test_acc.csv').write_text(
        'step,test_acc\n' + ''.join('%d,%s\n' % row for row in tests))
    if wall_s is not None:
        (folder / 'run_info.txt').write_text('commit abc123\ncpu Some CPU x 2\nload_at_start 1.0 1.0 1.0\n'
                                             'train_wall_s %d\n' % wall_s)
    return str(folder)


def test_first_evaluation_of_each_chosen_checkpoint_and_mean_sd(tmp_path):
    # Run a: the best step is re-tested later with a higher number; only the first row counts.
    a = fake_run(tmp_path / 'a', 500, 250, [(500, '0.99'), (250, '0.97'), (250, '0.999')], wall_s=125)
    b = fake_run(tmp_path / 'b', 500, 500, [(500, '0.98')])
    rows = [results_table.summarize_run(r) for r in (a, b)]
    assert (rows[0]['final_test'], rows[0]['best_test'], rows[0]['best_step']) == (0.99, 0.97, 250)
    assert (rows[1]['final_test'], rows[1]['best_test']) == (0.98, 0.98)
    assert rows[0]['final_val'] == 0.98 and rows[1]['wall_s'] is None
    text = results_table.table(rows)
    assert '| a | 500 | 98.00 | 99.00 | 99.00 (250) | 97.00 | 2 min 05 s | Some CPU x 2 (1.0 1.0 1.0) | abc123 |' in text
    # mean and sample sd (n - 1) of 99 and 98; of 97 and 98.
    assert '98.50 ± 0.71 (n=2)' in text and '97.50 ± 0.71 (n=2)' in text


def test_run_without_test_rows_shows_dashes(tmp_path):
    run = fake_run(tmp_path / 'c', 300, 300, [])
    text = results_table.table([results_table.summarize_run(run)])
    assert '| c | 300 | 98.00 | — |' in text
