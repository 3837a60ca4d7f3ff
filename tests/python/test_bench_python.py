"""bench/python/standalone_vs_zmq.py streams large payloads and never leaves its server behind.

`--size 131072 --stream 5000` used to send 640 MiB with non-blocking `node.send`s: the client's
link to the server went over `slow_consumer_bytes` (64 MiB unsent) and was cut off by design,
the final count request failed (or waited out its 60 s timeout when it was lost with the link),
and the client exited leaving the server child running. That orphan held the inherited stderr
open, so `... 2>&1 | tail` never ended: the reported hang. The client now keeps at most
`WINDOW_BYTES` unanswered and reaps (or kills) its servers. `subprocess.run` reads until EOF, so
an orphan would show up here as the timeout.

Uses the in-place extension (see test_standalone.py) and pyzmq (python3-zmq) for the second half.
"""
import os
import subprocess
import sys

import pytest

from harness import PYTHON_DIR, ROOT

SCRIPT = os.path.join(ROOT, "bench", "python", "standalone_vs_zmq.py")


def test_a_stream_larger_than_slow_consumer_bytes_completes_and_exits(tmp_path):
    pytest.importorskip("zmq")
    env = dict(os.environ, PYTHONPATH=PYTHON_DIR)
    # 700 x 128 KiB = 87.5 MiB: more than slow_consumer_bytes (64 MiB) if sent blind.
    r = subprocess.run([sys.executable, SCRIPT, "--size", "131072", "--stream", "700", "--rtt", "20"],
                       env=env, capture_output=True, text=True, timeout=120, cwd=tmp_path)
    assert r.returncode == 0, r.stderr[-3000:]
    assert "slow consumer" not in r.stderr, r.stderr[-3000:]
    assert "payload 131072 B, 20 round trips, 700 streamed" in r.stdout, r.stdout
    assert "dagent (direct link)" in r.stdout and "pyzmq (tcp" in r.stdout, r.stdout
