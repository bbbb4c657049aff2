"""Run machinery behind main.py and the other commands: sessions, checkpoints, the training loop,
loading a trained model, run locks, clean stops, exit codes, the files a run writes, what the
dataset files must be (dataset_files) and a start-up without TensorFlow's log lines (quiet_start)."""
