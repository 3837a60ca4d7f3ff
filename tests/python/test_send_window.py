"""Backpressure on standalone sends (`send_window_bytes`), against real processes.

A standalone program whose link does not drain (here: its parent is stopped with SIGSTOP)
used to pile bytes up until the slow-consumer rule cut the link (`slow_consumer_bytes`),
losing what was queued. Now `send` and `publish` wait for room in the send window, with the
GIL released, and fail with QueueFull after `send_window_timeout`; nothing handed over is lost.
"""

import signal
import sys
import threading
import time

from harness import PYTHON_DIR, wait_for

sys.path.insert(0, PYTHON_DIR)

import dagent  # noqa: E402
from dagent import _standalone  # noqa: E402

_standalone.extension()   # fail loudly if the extension is not built

PATIENT = ["--heartbeat-interval", "5", "--heartbeat-misses", "20"]   # a stopped peer is not expired
WINDOW = 256 * 1024
CHUNK = b"x" * 4096


def node_config(cluster, name, **options):
    path = cluster.path(f"{name}.yaml")
    with open(path, "w") as f:
        f.write(f"name: {name}\nheartbeat_interval: 5\nheartbeat_misses: 20\n")
        for k, v in options.items():
            f.write(f"{k}: {v}\n")
    return path


def test_send_waits_for_room_then_fails_with_queue_full_and_loses_nothing(cluster):
    addr = cluster.addr("root")
    root = cluster.start_node("root", "--listen", addr, *PATIENT)
    counter_cfg = node_config(cluster, "counter")
    sender_cfg = node_config(cluster, "sender", send_window_bytes=WINDOW, send_window_timeout=0.5,
                             slow_consumer_bytes=32 * 1024 * 1024)
    counter = join("counter", addr, counter_cfg)
    got = []
    counter.on(30)(lambda m: got.append(len(m.data)))
    sender = join("sender", addr, sender_cfg)
    try:
        def pump_until(n):
            deadline = time.time() + 30
            while len(got) < n and time.time() < deadline:
                counter.update(20)
            return len(got)

        sender.send("counter", 30, CHUNK)
        assert pump_until(1) == 1

        root.signal(signal.SIGSTOP)
        ticks = []
        stop_ticking = threading.Event()

        def tick():   # Python work on another thread: it runs only while the sender has let go of the GIL
            while not stop_ticking.is_set():
                ticks.append(1)
                time.sleep(0.01)

        ticker = threading.Thread(target=tick)
        ticker.start()
        sent, blocked_for = 1, None
        try:
            for _ in range(64 * 1024 * 1024 // len(CHUNK)):   # far past slow_consumer_bytes
                t0 = time.monotonic()
                try:
                    sender.send("counter", 30, CHUNK)
                except dagent.QueueFull as exc:
                    blocked_for = time.monotonic() - t0
                    assert "send_window_bytes=262144" in str(exc) and "send_window_timeout=0.5" in str(exc), str(exc)
                    break
                sent += 1
            ticks_during = len(ticks)
        finally:
            stop_ticking.set()
            ticker.join()
            root.signal(signal.SIGCONT)
        assert blocked_for is not None, f"{sent} sends of {len(CHUNK)} B to a stopped parent never waited"
        assert blocked_for >= 0.45, blocked_for                  # it waited out send_window_timeout
        assert sent * len(CHUNK) < 32 * 1024 * 1024, sent        # stopped well before the slow-consumer cut
        assert ticks_during > 10, ticks_during                   # the GIL was released while it waited

        # the parent runs again: the link drains, sends go through, and every accepted one arrives
        for _ in range(100):
            sender.send("counter", 30, CHUNK)
            sent += 1
        assert pump_until(sent) == sent, (len(got), sent)
        assert sender.ready()
        assert "slow consumer" not in root.stderr()
    finally:
        sender.close()
        counter.close()


def test_publish_waits_for_room_too(cluster):
    addr = cluster.addr("root")
    root = cluster.start_node("root", "--listen", addr, *PATIENT)
    cfg = node_config(cluster, "pub", send_window_bytes=WINDOW, send_window_timeout=0.3)
    sub_cfg = node_config(cluster, "sub")
    sub = join("sub", addr, sub_cfg)
    got = []
    sub.subscribe("load.>", lambda m: got.append(m.topic))
    pub = join("pub", addr, cfg)
    try:
        def delivered():
            pub.publish("load.x", b"p")
            sub.update(50)
            return got

        wait_for("interest reaches the publisher", delivered)
        raised = until_full_while_stopped(root, lambda: pub.publish("load.x", CHUNK))
        assert raised and "publish on 'load.x'" in raised, raised
        pub.publish("load.x", b"after")
        assert pub.ready()
    finally:
        pub.close()
        sub.close()


def test_the_window_is_capped_at_half_the_slow_consumer_limit(cluster):
    addr = cluster.addr("root")
    root = cluster.start_node("root", "--listen", addr, *PATIENT)
    cfg = node_config(cluster, "capped", send_window_bytes=64 * 1024 * 1024, send_window_timeout=0.3,
                      slow_consumer_bytes=1024 * 1024)
    node = join("capped", addr, cfg)
    try:
        raised = until_full_while_stopped(root, lambda: node.send("root", 30, CHUNK))
        assert raised and "send_window_bytes=524288" in raised, raised   # half of slow_consumer_bytes
        assert node.ready()
    finally:
        node.close()


def until_full_while_stopped(parent, send):
    """Stops ``parent`` and calls ``send`` until it raises QueueFull (its text), or None past 64 MiB."""
    parent.signal(signal.SIGSTOP)
    try:
        for _ in range(64 * 1024 * 1024 // len(CHUNK)):
            try:
                send()
            except dagent.QueueFull as exc:
                return str(exc)
        return None
    finally:
        parent.signal(signal.SIGCONT)


def join(name, addr, config):
    """A standalone node registered through ``addr`` (the root may still be starting)."""
    deadline = time.time() + 20
    while True:
        try:
            return dagent.Node(name=name, via=addr, config=config, ready_timeout=2.0, install=False)
        except dagent.NotReady:
            if time.time() > deadline:
                raise
