"""Ctrl-C during fit, acted on between optimizer steps: the first SIGINT is noted and the Trainer stops
after the step in progress (so a checkpoint never holds a half-applied step); a second one
interrupts at once. Outside fit, and in threads other than the main one, SIGINT is left alone."""

import signal
import threading


class DeferredInterrupt:
    """A context manager that holds SIGINT back while it is open; ``requested`` tells it came."""

    def __init__(self):
        self.requested = False
        self.previous = None

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            self.previous = signal.signal(signal.SIGINT, self._note)
        return self

    def _note(self, signum, frame):
        if self.requested:  # the second Ctrl-C: now
            raise KeyboardInterrupt
        self.requested = True

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False
