"""Multi-device towers and multi-worker training for the CapsNet of the top-level modules."""
