"""Research tools run as `python -m tools.NAME`: figures, curves, the routing study, reproduction runs."""
