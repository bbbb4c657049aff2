"""What a trained model is worth: test accuracy, per-class figures, robustness, reading users' digits."""
