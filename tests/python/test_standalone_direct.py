"""Requests and replies written on the caller's thread straight to the socket of a plaintext TCP
link (docs/python.md, "Direct writes"), between two real processes: several threads of one node at
once with sends mixed in, payloads the socket takes in parts, a peer that stops reading, and the
same with direct writes turned off (DAGENT_DIRECT_WRITES=0). The peer checks that each thread's
messages arrive whole and in the order the thread made them (a torn frame would make its node cut
the link off).

Needs the extension built in place, as test_standalone.py does.
"""

import os
import signal
import sys
import threading
import time

import pytest

from harness import PYTHON_DIR, wait_for

sys.path.insert(0, PYTHON_DIR)

import dagent  # noqa: E402
from dagent import _standalone  # noqa: E402

_standalone.extension()

PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "direct_peer.py")


def filler(seq, n):
    unit = bytes((seq * 7 + i) % 251 for i in range(251))
    return (unit * (n // 251 + 1))[:n]


def tagged(thread, seq, size):
    return f"{thread}:{seq}:".encode() + filler(seq, size)


@pytest.fixture(params=["direct", "off"])
def pair(request, cluster, monkeypatch):
    """A peer process serving 'dsrv', and a client node 'dcli' in this process joined to it."""
    env = {"DAGENT_DIRECT_WRITES": "0"} if request.param == "off" else {}
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    addr = cluster.addr("dsrv")
    peer = cluster.start_python("dsrv", PEER, "dsrv", addr, env=env)
    wait_for("dsrv ready", lambda: "ready" in peer.lines or peer.p.poll() is not None)
    assert peer.p.poll() is None, peer.stderr()
    node = dagent.Node(name="dcli", via=addr, ready_timeout=10)
    wait_for("dsrv answers", lambda: node.request("dsrv", 1, b"hi", timeout=1) == b"hi")
    yield node, peer
    node.close()


def report(node):
    count, problems, first = node.request("dsrv", 4, b"", timeout=10).decode().split(" ", 2)
    return int(count), int(problems), first


def run_threads(node, threads, per_thread, size, is_send):
    failures = []

    def work(t):
        for i in range(per_thread):
            m = tagged(t, i, size(i))
            try:
                if is_send(i):
                    node.send("dsrv", 2, m)
                elif node.request("dsrv", 3, m, timeout=20) != m:
                    failures.append(f"{t}/{i}: the echo differs")
            except dagent.DAgentError as e:
                failures.append(f"{t}/{i}: {e!r}")

    ts = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(120)
    return failures


def test_threads_of_one_node_keep_order_and_whole_frames(pair):
    node, _ = pair
    failures = run_threads(node, 4, 300, lambda i: (i * 37) % 2000, lambda i: i % 4 == 3)
    assert failures == []
    assert report(node) == (1200, 0, ""), "every message once, whole, in its thread's order"


def test_payloads_the_socket_takes_in_parts(pair):
    node, _ = pair
    failures = run_threads(node, 3, 12, lambda i: 1_000_000 if i % 3 == 0 else 100 + i, lambda i: i % 4 == 1)
    assert failures == []
    assert report(node) == (36, 0, "")


def test_a_peer_that_stops_reading_then_resumes(pair):
    """While the peer is stopped, requests time out (their bytes wait in the socket and the loop's
    buffer); once it runs again, nothing sent meanwhile is torn or reordered and requests work."""
    node, peer = pair
    assert node.request("dsrv", 3, tagged("p", 0, 10), timeout=5) == tagged("p", 0, 10)
    peer.p.send_signal(signal.SIGSTOP)
    try:
        timeouts = 0
        for seq in range(1, 11):   # 10 x 1 MB: more than loopback's socket buffers hold
            try:
                node.request("dsrv", 3, tagged("p", seq, 1_000_000), timeout=0.1)   # the stop stays under the 3 s heartbeat expiry
            except dagent.Timeout:
                timeouts += 1
        assert timeouts >= 8, "a stopped peer answers nothing (at most what was read before the stop)"
    finally:
        peer.p.send_signal(signal.SIGCONT)
    assert node.request("dsrv", 3, tagged("p", 11, 10), timeout=20) == tagged("p", 11, 10)
    assert report(node) == (12, 0, "")
