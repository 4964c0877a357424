"""Bounded waits. Every loop of the tests and drills ends at a deadline."""
import time


def wait_until(what, cond, timeout, interval=0.1):
    """cond()'s first true value; RuntimeError naming `what` after timeout seconds."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(interval)
    raise RuntimeError(f"timed out after {timeout} s waiting for {what}")


def wait_for(pred, timeout=15, step=0.05):
    """pred()'s first true value, or its last (false) value after timeout seconds: for
    assertions that show what was seen."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        v = pred()
        if v:
            return v
        time.sleep(step)
    return pred()
