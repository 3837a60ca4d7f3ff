"""What the benchmark drivers under bench/ share: progress lines, free ports, waiting for a
system to come up. A driver in bench/SUITE/ imports it with

    sys.path.insert(0, os.path.dirname(HERE))   # bench/
    from benchlib import free_port, listening, log, wait
"""
import socket
import sys
import time


def log(msg):
    """A progress line on stderr (stdout carries the results)."""
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def free_port():
    """A free loopback TCP port (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def listening(port):
    """True once something accepts TCP connections on 127.0.0.1:PORT (raises until then)."""
    socket.create_connection(("127.0.0.1", port), 1).close()
    return True


def wait(what, cond, timeout=60, logdir=None):
    """Polls ``cond()`` (exceptions count as false) until it is true; exits the benchmark naming
    ``what`` (and where the logs are) after ``timeout`` seconds."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if cond():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise SystemExit(f"bench: {what} did not come up within {timeout}s" + (f"; logs in {logdir}" if logdir else ""))
