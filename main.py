"""Train CapsNet on MNIST, or test the latest checkpoint.

    python download_data.py                 # once: the four IDX files into data/mnist
    python main.py                          # train; resumes if logdir has a checkpoint
    python main.py --is_training=False      # test accuracy of the latest checkpoint in logdir
    tensorboard --logdir logdir             # losses, accuracies, reconstructions
    tail -f results/val_acc.csv
"""
import sys

import config
from runtime.errors import run_cli
from runtime.quiet_start import import_tensorflow_quietly


def main(argv=None):
    def body():
        cfg = config.parse(sys.argv[1:] if argv is None else argv)
        import_tensorflow_quietly()  # a bad flag has answered already, before TensorFlow loads
        if cfg.is_training:
            from runtime.training import train
            train(cfg)
        else:
            from evaluation.evaluate import evaluate
            evaluate(cfg)
    return run_cli(body)


if __name__ == '__main__':
    sys.exit(main())
