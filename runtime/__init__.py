"""Run machinery behind main.py and the other commands: sessions, checkpoints, the training loop,
loading a trained model, run locks, clean stops, exit codes, and the files a run writes."""
