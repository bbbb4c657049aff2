"""Ctrl-C and SIGTERM that stop training between two steps, never inside one.

A KeyboardInterrupt raised wherever Python happens to be could land after an optimizer step but
before that step's CSV row is written; the checkpoint saved on the way out would then be ahead of
the CSVs, and the resumed run would leave a hole. So the first signal only raises a flag that the
loop reads after each complete step (`check`). A second signal means "now": it raises
KeyboardInterrupt at once, and the loop then exits without saving (the last checkpoint stays).
"""
import contextlib
import signal

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class StopRequested(Exception):
    """Raised by `check` at a step boundary after the first SIGINT/SIGTERM."""

    def __init__(self, signum):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class GracefulStop:
    """Context manager installing the handlers for its duration; the previous ones come back after."""

    def __init__(self):
        self.signum = None
        self._previous = {}

    def __enter__(self):
        for signum in STOP_SIGNALS:
            self._previous[signum] = signal.signal(signum, self._handle)
        return self

    def __exit__(self, *exc_info):
        for signum, handler in self._previous.items():
            signal.signal(signum, handler)
        self._previous.clear()

    def _handle(self, signum, frame):
        if self.signum is not None:
            raise KeyboardInterrupt  # asked twice: stop at once
        self.signum = signum

    def check(self):
        if self.signum is not None:
            raise StopRequested(self.signum)


@contextlib.contextmanager
def signals_ignored(signums=STOP_SIGNALS):
    """Holds off Ctrl-C/SIGTERM for a moment (writing the last checkpoint); kill -9 still works."""
    previous = {s: signal.signal(s, signal.SIG_IGN) for s in signums}
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
