"""Small helpers shared by the kazoo compatibility tests."""

import threading
import time


class EventCollector(object):
    """Thread-safe collector usable as a kazoo watch callback."""

    def __init__(self):
        self.events = []
        self.cond = threading.Condition()

    def __call__(self, event):
        with self.cond:
            self.events.append(event)
            self.cond.notify_all()

    def wait(self, n=1, timeout=5.0):
        with self.cond:
            self.cond.wait_for(lambda: len(self.events) >= n, timeout)
            return list(self.events)

    def settle(self, quiet=0.3):
        """Give late (unexpected) events a moment to show up."""
        time.sleep(quiet)
        with self.cond:
            return list(self.events)


def wait_until(predicate, timeout=5.0, interval=0.02):
    deadline = time.monotonic() + timeout
    while True:
        v = predicate()
        if v:
            return v
        if time.monotonic() >= deadline:
            return v
        time.sleep(interval)
