"""Standalone `import dagent` (SWIG extension over the Swift core's C API) against real processes.

Needs the extension built in place: (cd python && DAGENT_SWIFT_CONFIG=debug python3 setup.py build_ext --inplace)
(scripts/test does it).
"""

import os
import sys
import threading
import time

import pytest

from harness import PYTHON_DIR, ROOT, wait_for

sys.path.insert(0, PYTHON_DIR)

import dagent  # noqa: E402
from dagent import _standalone  # noqa: E402

try:
    _standalone.extension()
except ImportError as exc:  # fail loudly: a skipped suite would hide a broken build
    raise RuntimeError(f"{exc}\nbuild it: (cd python && DAGENT_SWIFT_CONFIG=debug {sys.executable} setup.py build_ext --inplace)")

PEER = os.path.join(os.path.dirname(os.path.abspath(__file__)), "standalone_peer.py")


@pytest.fixture
def tree(cluster):
    """A root and an --echo node; yields the root's address and the cluster."""
    addr = cluster.addr("root")
    cluster.start_node("root", "--listen", addr)
    cluster.start_node("echo1", "--parent", addr, "--echo")
    return addr, cluster


def ready_node(name, addr, **kw):
    """A Node that can reach echo1 (the root and echo1 start concurrently)."""
    deadline = time.time() + 20
    while True:
        try:
            node = dagent.Node(name=name, via=addr, ready_timeout=2.0, **kw)
            break
        except dagent.NotReady:
            if time.time() > deadline:
                raise
    wait_for("echo1 reachable", lambda: node.request("echo1", 1, b"ping", timeout=1.0) == b"ping")
    return node


def peer(tree, name, style="node"):
    addr, cluster = tree
    p = cluster.start_python(name, PEER, name, addr, style)
    wait_for(f"{name} ready", lambda: "ready" in p.lines or p.p.poll() is not None)
    assert p.p.poll() is None, p.stderr()
    return p


def test_request_to_echo_node_and_to_python_node(tree):
    addr = tree[0]
    with ready_node("py-main", addr) as node:
        assert node.ready() and dagent.ready() and dagent.name() == "py-main"
        assert node.request("echo1", 7, b"hello echo", timeout=3) == b"hello echo"
        p = peer(tree, "py-peer")
        assert node.request("py-peer", 1, b"hello python", timeout=3) == b"HELLO PYTHON"
        # the peer's async handler awaits its own arequest to echo1
        assert node.request("py-peer", 4, b"relay", timeout=5) == b"relay!"
        # asyncio on this side
        assert node.run(node.arequest("py-peer", 1, b"async")) == b"ASYNC"
        # a one-way message to a handler here, from the echo... via the peer: peer sends nothing, so use ourselves
        got = []
        node.on(20)(lambda m: got.append((m.src, m.data)))
        node.send("py-main", 20, b"to myself")
        deadline = time.time() + 5
        while not got and time.time() < deadline:
            node.update(100)
        assert got == [("py-main", b"to myself")]
        with pytest.raises(dagent.NoRoute):
            node.request("nobody-here", 1, b"x", timeout=3)
        assert node.request("py-peer", 9, b"", timeout=3) == b"bye"
        p.p.wait(5)
        assert p.p.returncode == 0, p.stderr()


def test_handler_exception_is_reported_and_process_survives(tree):
    addr = tree[0]
    with ready_node("py-main2", addr) as node:
        p = peer(tree, "py-peer2")
        with pytest.raises(dagent.Refused) as info:
            node.request("py-peer2", 2, b"", timeout=3)
        assert "ValueError: boom from py-peer2" in str(info.value)
        wait_for("error reported", lambda: "errors 1" in p.lines)
        assert "Traceback" in p.stderr() and "boom from py-peer2" in p.stderr()
        assert p.p.poll() is None
        assert node.request("py-peer2", 1, b"still here", timeout=3) == b"STILL HERE"
        # a local handler that raises: logged and counted, update() carries on
        node.on(21)(lambda m: 1 / 0)
        node.send("py-main2", 21, b"")
        wait_for("local error counted", lambda: node.update(50) is not None and node.errors == 1)
        assert "ZeroDivisionError" in node.last_error


def test_original_style_init_update_destroy(tree):
    addr = tree[0]
    with ready_node("py-main3", addr) as node:
        p = peer(tree, "py-peer3", style="init")
        assert node.request("py-peer3", 1, b"init style", timeout=3) == b"INIT STYLE"
        with pytest.raises(dagent.Refused):
            node.request("py-peer3", 2, b"", timeout=3)
        wait_for("error reported", lambda: "errors 1" in p.lines)
        assert node.request("py-peer3", 9, b"", timeout=3) == b"bye"
        p.p.wait(5)
        assert p.p.returncode == 0, p.stderr()


def test_blocking_request_releases_the_gil(tree):
    addr = tree[0]
    with ready_node("py-main4", addr) as node:
        peer(tree, "py-peer4")
        counter = [0]
        running = [True]

        def spin():
            while running[0]:
                counter[0] += 1

        t = threading.Thread(target=spin)
        t.start()
        try:
            time.sleep(0.05)
            start = counter[0]
            t0 = time.time()
            assert node.request("py-peer4", 3, b"slow", timeout=5) == b"slow"   # the peer sleeps 0.3 s
            elapsed = time.time() - t0
            during = counter[0] - start
        finally:
            running[0] = False
            t.join()
        print(f"GIL: spinning thread advanced {during} times during a {elapsed:.2f}s request")
        assert elapsed >= 0.25
        # a spinning thread does ~10M+ increments/s; with the GIL held by the request it would do ~0
        assert during > 100_000, f"the spinning thread advanced only {during} times during a {elapsed:.2f}s request"


def test_destroy_and_recreate(tree):
    addr = tree[0]
    node = ready_node("py-again", addr)
    assert node.request("echo1", 1, b"one", timeout=3) == b"one"
    node.close()
    node.close()  # idempotent
    with pytest.raises(RuntimeError):
        node.request("echo1", 1, b"x")
    with pytest.raises(RuntimeError):
        dagent.send("echo1", 1, b"x")    # the module-level API has no node any more
    for i in range(3):
        # the same name again: the parent released it when the link closed
        n2 = ready_node("py-again", addr)
        assert n2.request("echo1", 1, f"round {i}".encode(), timeout=3) == f"round {i}".encode()
        n2.close()
    # init/destroy twice in one process
    for _ in range(2):
        dagent.init("py-init-twice", addr)
        wait_for("echo via init", lambda: dagent.request("echo1", 1, b"z", timeout=1) == b"z")
        dagent.destroy()


def test_errors_without_a_tree():
    with pytest.raises(dagent.DAgentError) as info:
        dagent.Node(name="lonely", via="tcp://127.0.0.1:1", ready_timeout=0.3)
    assert info.value.code == 5   # not ready
    with pytest.raises(dagent.DAgentError) as info:
        dagent.Node(name="bad", via="nonsense://x")
    assert "nonsense" in str(info.value)


def rss_kb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def test_many_messages_leave_rss_flat(tree):
    """Messages through the queue, take() and dispatch, and requests answered by Python: no leak."""
    addr = tree[0]
    with ready_node("py-rss", addr) as node:
        got = [0]

        @node.on(30)
        def count(msg):
            got[0] += 1

        @node.on(31)
        def answer(msg):
            return msg.data

        def pump(n):
            target = got[0] + n
            for _ in range(n // 1000):
                for _ in range(1000):
                    node.send("py-rss", 30, b"x" * 100)
                node.update(0)
            deadline = time.time() + 60
            while got[0] < target and time.time() < deadline:
                node.update(100)
            assert got[0] == target
            for _ in range(200):
                assert node.run(node.arequest("py-rss", 31, b"y" * 100)) == b"y" * 100

        pump(50_000)             # warm up: arenas, queues, caches reach their working size
        before = rss_kb()
        for _ in range(4):
            pump(50_000)
        grown = rss_kb() - before
        print(f"RSS: {before} kB after warm-up, +{grown} kB after 200k more messages and 800 requests")
        assert grown < 20_000, f"RSS grew {grown} kB over 200k messages"


def test_large_replies_arrive_intact_and_are_not_kept(tree):
    """A reply reaches Python with one copy (dagent_request_into for `request`, dagent_take for
    `arequest`): 900 kB replies arrive intact, and 200 of them leave RSS flat (none is kept)."""
    addr = tree[0]
    with ready_node("py-big", addr) as node:
        body = bytes(range(256)) * 3500          # 896,000 bytes, under max_message_bytes (1 MiB)

        def both():
            assert node.request("echo1", 1, body, timeout=10) == body
            assert node.run(node.arequest("echo1", 1, body, timeout=10)) == body

        for _ in range(10):
            both()               # warm up: buffers reach their working size
        before = rss_kb()
        for _ in range(100):
            both()
        grown = rss_kb() - before
        print(f"RSS: {before} kB after warm-up, +{grown} kB after 200 more 896 kB replies")
        assert grown < 40_000, f"RSS grew {grown} kB over 200 replies of 896 kB (179 MB if they were kept)"


def test_request_to_a_plugin(tree):
    """A standalone Python node asks a node running the shipped plugins (embedded CPython)."""
    addr, cluster = tree
    cluster.start_node("plug1", "--parent", addr, "--plugins", os.path.join(ROOT, "plugins"))
    with ready_node("py-plug", addr) as node:
        def pong():
            try:
                return node.request("plug1", 2, b"ping", timeout=1).startswith(b"pong from plug1")
            except dagent.DAgentError:
                return False
        wait_for("plugin ready", pong)
        assert node.request("plug1", 1, b"via plugin", timeout=3) == b"via plugin"
        # kv plugin (type 10) answers a standalone node too
        assert node.request("plug1", 10, b"incr visits", timeout=3) == b"1"


def test_sends_from_threads_keep_their_order_and_come_before_a_later_request(tree):
    """Sends made off the node's event loop reach it in batches (the C API's outbox): each
    sender's messages arrive in the order sent, with their own source, and a request made
    after them by the same thread is handled after all of them."""
    addr = tree[0]
    with ready_node("py-order", addr) as node, ready_node("py-order-b", addr, install=False) as other:
        got = []
        node.on(40)(lambda m: got.append((m.src, int.from_bytes(m.data[:4], "little"))))
        node.on(41)(lambda m: str(sum(1 for src, _ in got if src == "py-order")).encode())
        n = 20_000

        def blast(sender):
            for i in range(n):
                sender.send("py-order", 40, i.to_bytes(4, "little") + b"x" * 60)

        t = threading.Thread(target=blast, args=(other,))
        t.start()
        blast(node)   # to itself, while the other thread streams from py-order-b through the root
        t.join()
        assert node.run(node.arequest("py-order", 41, b"")) == str(n).encode()
        wait_for("both streams", lambda: node.update(50) is not None and len(got) >= 2 * n)
        assert len(got) == 2 * n
        for src in ("py-order", "py-order-b"):
            assert [i for s, i in got if s == src] == list(range(n)), f"{src}: out of order or lost"


def test_send_checks_its_arguments(tree):
    """The extension's send (no SWIG conversion) refuses what it cannot pass on, with the reason."""
    ext = _standalone.extension()
    with ready_node("py-args", tree[0]) as node:
        h = node.backend._handle()
        with pytest.raises(TypeError, match="destination must be a str"):
            ext.send(h, b"py-args", 1, b"")
        with pytest.raises(ValueError, match="NUL"):
            ext.send(h, "py\0args", 1, b"")
        with pytest.raises(OverflowError):
            ext.send(h, "py-args", 1 << 32, b"")
        with pytest.raises(TypeError):
            ext.send(h, "py-args", 1, "text, not bytes")
        with pytest.raises(TypeError, match="expected a dagent node"):
            ext.send(None, "py-args", 1, b"")
        with pytest.raises(TypeError, match="takes 4 arguments"):
            ext.send(h, "py-args", 1)
        got = []
        node.on(42)(lambda m: got.append(m.data))
        ext.send(h, "py-args", 42, memoryview(b"any buffer"))
        node.send("py-args", 42, "str data is UTF-8")
        wait_for("both", lambda: node.update(50) is not None and len(got) == 2)
        assert got == [b"any buffer", b"str data is UTF-8"]
        with pytest.raises(ValueError, match="non-empty node name"):
            node.send("", 42, b"")


def test_request_and_respond_check_their_arguments(tree):
    """The extension's request and respond (no SWIG conversions, like send) refuse what they cannot
    pass on, with the reason, and take any buffer as the payload."""
    ext = _standalone.extension()
    with ready_node("py-rargs", tree[0]) as node:
        h = node.backend._handle()
        with pytest.raises(TypeError, match="destination must be a str"):
            ext.request(h, b"echo1", 1, b"", 1.0)
        with pytest.raises(ValueError, match="NUL"):
            ext.request(h, "echo\0one", 1, b"", 1.0)
        with pytest.raises(OverflowError):
            ext.request(h, "echo1", 1 << 32, b"", 1.0)
        with pytest.raises(TypeError):
            ext.request(h, "echo1", 1, b"", "soon")
        with pytest.raises(TypeError, match="takes 5 arguments"):
            ext.request(h, "echo1", 1, b"")
        with pytest.raises(TypeError, match="expected a dagent node"):
            ext.request(None, "echo1", 1, b"", 1.0)
        assert ext.request(h, "echo1", 1, memoryview(b"any buffer"), 2) == b"any buffer"
        assert node.request("echo1", 1, bytearray(b"bytearray"), timeout=2) == b"bytearray"
        assert node.request("echo1", 1, "str is UTF-8", timeout=2) == b"str is UTF-8"
        with pytest.raises(ValueError, match="message type"):
            node.request("echo1", True, b"")
        with pytest.raises(TypeError, match="takes 6 arguments"):
            ext.respond(h, "echo1", 1, 7, True)
        with pytest.raises(TypeError, match="destination must be a str"):
            ext.respond(h, None, 1, 7, True, b"")
        with pytest.raises(dagent.DAgentError, match="not a request"):
            ext.respond(h, "echo1", 1, 0, True, b"")


def test_handler_results_answer_once(tree):
    """A handler's bytes result is the reply (sent straight from the dispatch loop); one that replied
    itself is not answered twice; a result to a one-way message is dropped; other results (str,
    awaitables) still take the general path."""
    p = peer(tree, "py-results-peer")
    with ready_node("py-results", tree[0]) as node:
        seen = []

        @node.on(50)
        def plain(msg):
            seen.append(msg)
            return msg.data + b"!"

        @node.on(51)
        def replied_first(msg):
            msg.reply(b"first")
            return b"second"

        @node.on(52)
        def text(msg):
            return "text"

        @node.on(53)
        async def later(msg):
            return b"awaited"

        asked = {}

        def ask(t, data):
            asked[t] = node.run(node.arequest("py-results", t, data, timeout=3))

        for t in (50, 51, 52, 53):
            ask(t, b"q")
        assert asked == {50: b"q!", 51: b"first", 52: b"text", 53: b"awaited"}
        assert seen[0].replied
        with pytest.raises(RuntimeError, match="already answered"):
            seen[0].reply(b"again")
        node.send("py-results", 50, b"one-way")
        wait_for("one-way handled", lambda: node.update(50) is not None and len(seen) == 2)
        assert seen[1].data == b"one-way" and not seen[1].is_request
        assert node.errors == 0
        # the peer's handlers (another process) answer through the same path
        assert node.request("py-results-peer", 1, b"abc", timeout=3) == b"ABC"
    p.p.terminate()
