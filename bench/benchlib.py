"""What the benchmark drivers under bench/ share: progress lines, free ports, waiting for a
system to come up. Ports and waiting are the test harness's (tests/python/harness.py), so the
benchmarks and the tests poll the same way. A driver in bench/SUITE/ imports it with

    sys.path.insert(0, os.path.dirname(HERE))   # bench/
    from benchlib import free_port, listening, log, wait
"""
import os
import socket
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "python"))
from harness import free_port, wait_for  # noqa: E402,F401


def faster(speedup):
    """A latency comparison in words: ``speedup`` is the peer's time divided by dagent's.
    1.25 -> "1.25× faster"; 0.80 -> "1.25× slower" (never "0.80× faster")."""
    return f"{speedup:.2f}× faster" if speedup >= 1 else f"{1 / speedup:.2f}× slower"


def log(msg):
    """A progress line on stderr (stdout carries the results)."""
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def listening(port):
    """True once something accepts TCP connections on 127.0.0.1:PORT (raises until then)."""
    socket.create_connection(("127.0.0.1", port), 1).close()
    return True


def wait(what, cond, timeout=60, logdir=None):
    """Polls ``cond()`` (exceptions count as false) until it is true; exits the benchmark naming
    ``what`` (and where the logs are) after ``timeout`` seconds."""
    try:
        wait_for(what, cond, timeout=timeout)
    except AssertionError:
        raise SystemExit(f"bench: {what} did not come up within {timeout}s" + (f"; logs in {logdir}" if logdir else ""))
