"""Where a command can take a trained model from, named without loading TensorFlow.

A run's newest checkpoint ('latest'), the one validation chose ('best'), or the model shipped in
pretrained/ ('pretrained'). runtime.checkpoints and runtime.inference, which need TensorFlow, load
them; the parsers of main.py, predict.py and tools.export_pretrained offer them as choices, which
must be known before TensorFlow loads so that --help and a bad flag answer at once.
"""
import os

RUN_CHECKPOINTS = ('latest', 'best')  # the checkpoints a run's logdir holds
LOAD_CHOICES = RUN_CHECKPOINTS + ('pretrained',)

# The model shipped with the repository: weights only, and a card saying what it is and scores.
PRETRAINED_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), 'pretrained')
PRETRAINED_WEIGHTS = 'weights.npz'
PRETRAINED_CARD = 'card.json'
