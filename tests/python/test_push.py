"""The push service end to end: real agents with an HTTP listener and the push
plugin, real WebSocket clients (the `websockets` package)."""
import asyncio
import base64
import errno
import json
import os
import socket
import subprocess
import sys
import time

import pytest
import websockets

from conftest import ROOT, dagent_binary, free_port, wait_for

sys.path.insert(0, os.path.join(ROOT, "python"))
from dagent import push  # noqa: E402

SECRET = b"0123456789abcdef-test-secret"
HOOKS = os.path.join(os.path.dirname(__file__), "push_hooks")


class Tree:
    """A root and agents, each agent with an HTTP listener and the push plugin."""

    def __init__(self, workdir):
        self.workdir = workdir
        self.procs = []
        self.secret_file = os.path.join(workdir, "push.secret")
        with open(self.secret_file, "wb") as f:
            f.write(SECRET + b"\n")
        self.root_port = free_port()
        self.start("root", ["--listen", f"tcp://127.0.0.1:{self.root_port}"])
        self.http, self.listen = {}, {}

    def start(self, name, args, config=None, env=None):
        cmd = [dagent_binary(), "run", "--name", name] + args
        if config:
            path = os.path.join(self.workdir, f"{name}.yaml")
            with open(path, "w") as f:
                f.write(config)
            cmd = [dagent_binary(), "run", "--config", path]
        log = open(os.path.join(self.workdir, f"{name}.log"), "w")
        p = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env)
        self.procs.append(p)
        return p

    def agent(self, name, history=None, conflate=None, limits=None, hooks=True, extra="", **options):
        port, listen = free_port(), free_port()
        dirs = [os.path.join(ROOT, "plugins")] + ([HOOKS] if hooks else [])
        section = {"secret_file": self.secret_file, "history": history or {}, "conflate": conflate or [],
                   "limits": limits or {}, **options}
        config = (f"name: {name}\nrole: agent\nlisten: tcp://127.0.0.1:{listen}\n"
                  f"parents: [tcp://127.0.0.1:{self.root_port}]\nhttp: tcp://127.0.0.1:{port}\n{extra}"
                  f"plugins:\n  dirs: {json.dumps(dirs)}\n  config:\n    push: {json.dumps(section)}\n")
        self.start(name, [], config=config)
        self.http[name] = port
        self.listen[name] = listen
        wait_for(f"{name}'s push gateway", lambda: self.gateway(name)["service"], timeout=60)
        return port

    def gateway(self, name):
        out = subprocess.run([dagent_binary(), "tree", "--via", f"tcp://127.0.0.1:{self.listen[name]}", "--json"],
                             capture_output=True, text=True, timeout=10)
        return json.loads(out.stdout)["push_gateway"]

    def url(self, name, token=None, **query):
        q = "&".join([f"token={token}"] * (token is not None) + [f"{k}={v}" for k, v in query.items()])
        return f"ws://127.0.0.1:{self.http[name]}/ws" + (f"?{q}" if q else "")

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def tok(sub="alice", topics=("news.>",), pub=(), ttl=3600, secret=SECRET, **kw):
    return push.token(secret, sub=sub, topics=list(topics), pub=list(pub), ttl=ttl, **kw)


def run(coro, timeout=60):
    return asyncio.run(asyncio.wait_for(coro, timeout))


async def recv(ws, timeout=10, what="a frame"):
    """The next frame, or an AssertionError naming what did not come within ``timeout`` s."""
    try:
        return await asyncio.wait_for(ws.recv(), timeout)
    except asyncio.TimeoutError:
        raise AssertionError(f"no {what} within {timeout}s") from None


async def recv_op(ws, op, timeout=10):
    """The next frame with this op (others are skipped)."""
    deadline = time.monotonic() + timeout
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"no {op!r} frame within {timeout}s")
        frame = json.loads(await recv(ws, left, f"{op!r} frame"))
        if frame["op"] == op:
            return frame


async def until_closed(ws, timeout=10, what="the gateway to close the connection"):
    """Reads (and drops) frames until the connection closes; (code, reason). Fails after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            await recv(ws, deadline - time.monotonic(), what)
    except websockets.ConnectionClosed:
        return ws.close_code, ws.close_reason


async def connect(url):
    ws = await websockets.connect(url, max_size=2**22)
    await recv_op(ws, "connected")
    return ws


async def subscribe(ws, topic, **extra):
    await ws.send(json.dumps({"op": "sub", "topic": topic, **extra}))
    while True:
        frame = json.loads(await recv(ws, 10, f"answer to the subscription to {topic!r}"))
        if frame["op"] in ("subscribed", "error"):
            return frame


async def closed_with(url):
    """The close code and reason the gateway ends this connection with."""
    ws = await websockets.connect(url)
    return await until_closed(ws)


@pytest.fixture(scope="module")
def tree(tmp_path_factory):
    t = Tree(str(tmp_path_factory.mktemp("push")))
    try:
        t.agent("a1", history={"hist.>": {"size": 3}}, conflate=["metrics.>"],
                limits={"send_queue_bytes": 65536, "max_subscriptions": 20, "max_frame_bytes": 4096, "close_timeout": 60})
        # a2 has no hooks plugin: its gateway decides client publishes itself (no Python per publish).
        t.agent("a2", extra="http_max_connections: 4096\n", limits={"send_queue_bytes": 65536, "close_timeout": 1}, hooks=False)
        yield t
    finally:
        t.stop()


# ---- tokens -------------------------------------------------------------------

def test_refused_tokens(tree):
    async def main():
        code, reason = await closed_with(tree.url("a1"))
        assert code == 4001 and "no token" in reason
        code, reason = await closed_with(tree.url("a1", tok(secret=b"another-secret-of-16+")))
        assert code == 4001 and "signature" in reason
        code, reason = await closed_with(tree.url("a1", tok(ttl=-10)))
        assert code == 4001 and "expired" in reason
        code, reason = await closed_with(tree.url("a1", "not.a.jwt"))
        assert code == 4001 and "invalid token" in reason
        # A topic outside the claims: the connection stays, the subscription is refused.
        ws = await connect(tree.url("a1", tok(topics=["news.>"])))
        answer = await subscribe(ws, "sports.results", id=1)
        assert answer["op"] == "error" and answer["code"] == 4403 and answer["id"] == 1
        assert "does not allow subscribing to 'sports.results'" in answer["reason"]
        # A pattern wider than the claim is refused too.
        assert (await subscribe(ws, ">"))["code"] == 4403
        assert (await subscribe(ws, "news.eu"))["op"] == "subscribed"
        await ws.close()
    run(main())
    assert tree.gateway("a1")["closes"]["unauthorized"] >= 4


def test_cli_and_python_tokens_agree(tree):
    out = subprocess.run([dagent_binary(), "push", "token", "--secret-file", tree.secret_file, "--sub", "bob",
                          "--topics", "news.>", "--pub", "chat.*", "--ttl", "60"], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    claims = push.verify(SECRET, out.stdout.strip())
    assert claims["sub"] == "bob" and claims["topics"] == ["news.>"] and claims["pub"] == ["chat.*"]
    assert 50 <= claims["exp"] - time.time() <= 61


# ---- fan-out across agents, browser publish, hooks ---------------------------

def test_wildcard_subscription_gets_a_publish_from_another_agent(tree):
    async def main():
        reader = await connect(tree.url("a1", tok(topics=["news.>"])))
        assert (await subscribe(reader, "news.>"))["op"] == "subscribed"
        writer = await connect(tree.url("a2", tok("carol", topics=[], pub=["news.*"])))

        async def publish_until_seen():
            # Interest travels up the tree first; publish until the reader sees one.
            for i in range(200):
                await writer.send(json.dumps({"op": "pub", "topic": "news.eu", "data": f"hello {i}"}))
                await recv_op(writer, "published")
                try:
                    return await recv_op(reader, "msg", timeout=0.2)
                except (AssertionError, asyncio.TimeoutError):
                    continue
            raise AssertionError("the reader on a1 never got a message published on a2")
        msg = await publish_until_seen()
        assert msg["topic"] == "news.eu" and msg["data"].startswith("hello ") and msg["seq"] >= 1
        await reader.close()
        await writer.close()
    run(main())


@pytest.mark.parametrize("gw", ["a1", "a2"])
def test_browser_publish_allowed_and_denied_and_binary_data(tree, gw):
    # a1 asks the plugin about every publish (it has an on_publish hook); a2 has none, so
    # its gateway checks the token's pub claims itself, with the same answers.
    async def main():
        ws = await connect(tree.url(gw, tok(topics=["room.>"], pub=["room.1"])))
        assert (await subscribe(ws, "room.>"))["op"] == "subscribed"
        await ws.send(json.dumps({"op": "pub", "topic": "room.1", "data_b64": "AP8=", "id": "p1"}))
        # The message may come before or after the acknowledgement.
        got = {}
        while len(got) < 2:
            frame = json.loads(await recv(ws, 10, "the message and the acknowledgement"))
            got[frame["op"]] = frame
        assert got["published"]["id"] == "p1"
        msg = got["msg"]
        assert msg["data_b64"] == "AP8=" and "data" not in msg
        await ws.send(json.dumps({"op": "pub", "topic": "room.2", "data": "x", "id": "p2"}))
        err = await recv_op(ws, "error")
        assert err["code"] == 4403 and err["id"] == "p2" and "does not allow publishing to 'room.2'" in err["reason"]
        await ws.close()
    run(main())


def test_denying_and_transforming_hooks(tree):
    async def main():
        code, reason = await closed_with(tree.url("a1", tok("mallory")))
        assert code == 4001 and "banned by the hooks plugin" in reason
        ws = await connect(tree.url("a1", tok("dave", topics=["news.>", "chat.>"], pub=["chat.*"])))
        answer = await subscribe(ws, "news.secret.plans")
        assert answer["code"] == 4403 and "closed by the hooks plugin" in answer["reason"]
        assert (await subscribe(ws, "chat.>"))["op"] == "subscribed"
        await ws.send(json.dumps({"op": "pub", "topic": "chat.lobby", "data": "hi"}))
        msg = await recv_op(ws, "msg")
        assert msg["data"] == "[dave] hi"
        await ws.close()
    run(main())


# ---- history and recovery -----------------------------------------------------

def test_recovery_fills_the_gap_and_says_when_it_cannot(tree):
    async def main():
        pub = await connect(tree.url("a1", tok("pub", topics=["hist.>"], pub=["hist.>"])))
        sub = await connect(tree.url("a1", tok("sub", topics=["hist.>"])))
        first = await subscribe(sub, "hist.a")
        epoch = first["epoch"]

        async def publish(text):
            await pub.send(json.dumps({"op": "pub", "topic": "hist.a", "data": text}))
            await recv_op(pub, "published")
        await publish("m1")
        seen = await recv_op(sub, "msg")
        assert seen["data"] == "m1"
        await sub.close()
        for t in ("m2", "m3"):
            await publish(t)
        # Reconnect and recover from the last seq seen: the gap is filled.
        sub = await connect(tree.url("a1", tok("sub", topics=["hist.>"])))
        answer = await subscribe(sub, "hist.a", since={"epoch": epoch, "seq": seen["seq"]})
        assert answer["recovered"] is True and answer["replayed"] == 2
        got = [await recv_op(sub, "msg") for _ in range(2)]
        assert [m["data"] for m in got] == ["m2", "m3"]
        last = got[-1]["seq"]
        await sub.close()
        # History keeps 3: after 4 more, the gap is no longer covered.
        for t in ("m4", "m5", "m6", "m7"):
            await publish(t)
        sub = await connect(tree.url("a1", tok("sub", topics=["hist.>"])))
        answer = await subscribe(sub, "hist.a", since={"epoch": epoch, "seq": last})
        assert answer["recovered"] is False and answer["replayed"] == 0
        # Another epoch (a restarted gateway) is never recovered.
        answer = await subscribe(sub, "hist.a", since={"epoch": "gone-1", "seq": 1})
        assert answer["recovered"] is False
        await sub.close()
        await pub.close()
    run(main())


# ---- slow clients ---------------------------------------------------------------

def test_slow_client_cut_off_and_conflated_topic_kept_current(tree):
    async def main():
        pub = await connect(tree.url("a1", tok("pub", topics=[], pub=["bulk.x", "metrics.cpu"])))
        # A client that does not read during the burst: its socket fills (the gateway's kernel send buffer
        # grows to megabytes), then its queue passes send_queue_bytes=64 KiB and it is cut off with 4008.
        # No permessage-deflate for it: its frames must fill the socket as they are.
        # No client keepalive on the two clients that do not read: their pongs would wait behind
        # the unread frames, and under load the client would close with 1011 before the server
        # acts (the server's own cut-off is what this test checks).
        slow = await websockets.connect(tree.url("a1", tok("slow", topics=["bulk.>"])), max_queue=1, read_limit=1024,
                                        compression=None, ping_interval=None)
        await recv_op(slow, "connected")
        assert (await subscribe(slow, "bulk.>"))["op"] == "subscribed"
        conflated = await websockets.connect(tree.url("a1", tok("meter", topics=["metrics.>"])), max_queue=1, read_limit=1024,
                                             compression=None, ping_interval=None)
        await recv_op(conflated, "connected")
        assert (await subscribe(conflated, "metrics.>"))["op"] == "subscribed"
        blob = "x" * 3000
        for i in range(0, 4000, 16):
            # 16 at a time: max_pending_ops (32) bounds what a client may have waiting for the plugin.
            for j in range(i, i + 16):
                await pub.send(json.dumps({"op": "pub", "topic": "bulk.x", "data": blob}))
                await pub.send(json.dumps({"op": "pub", "topic": "metrics.cpu", "data": f"{blob}{j}"}))
            for _ in range(32):
                assert (await recv_op(pub, "published"))["op"] == "published"
        wait_for("the slow client to be cut off", lambda: tree.gateway("a1")["closes"].get("slow_consumer", 0) >= 1)
        # The conflated client was not cut off, and once it reads it ends on the latest value.
        deadline = time.monotonic() + 30
        while True:
            frame = json.loads(await recv(conflated, deadline - time.monotonic(), "the last metrics.cpu value (#3999)"))
            if frame["op"] == "msg" and frame["data"] == f"{blob}3999":
                break
        assert tree.gateway("a1")["conflated"] > 0
        # Reading late, the slow client still gets its close frame, behind the megabytes it had not read
        # (a1's close_timeout=60 s leaves it that long before the gateway resets the connection).
        code, reason = await until_closed(slow, 30, "the slow client's close frame (4008)")
        assert code == 4008 and "over send_queue_bytes=65536" in reason, (code, reason)
        await conflated.close()
        await pub.close()
    run(main(), timeout=120)


def test_cut_off_client_that_never_reads_is_reset_after_close_timeout(tree):
    """A cut-off client that never takes its close frame does not keep its connection (nor the
    megabytes queued for it): after close_timeout (1 s on a2) the gateway resets it."""
    port = tree.http["a2"]
    stalled = socket.create_connection(("127.0.0.1", port), timeout=10)
    key = base64.b64encode(os.urandom(16)).decode()
    hello = (f"GET /ws?token={tok('stalled', topics=['bulk.>'])} HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
             f"Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n")
    sub = json.dumps({"op": "sub", "topic": "bulk.>"}).encode()
    mask = os.urandom(4)
    # The handshake and a masked `sub` text frame, and then it never reads a byte (not even the 101).
    stalled.sendall(hello.encode() + bytes([0x81, 0x80 | len(sub)]) + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(sub)))

    async def main():
        pub = await connect(tree.url("a2", tok("pub", topics=[], pub=["bulk.y"])))
        blob = "y" * 3000
        sent = 0
        while tree.gateway("a2")["closes"].get("slow_consumer", 0) < 1:
            assert sent < 20000, f"{sent} messages of 3000 bytes and the client that never reads is not cut off"
            for _ in range(256):
                await pub.send(json.dumps({"op": "pub", "topic": "bulk.y", "data": blob}))
                if sent % 16 == 15:   # max_pending_ops (32) bounds what may wait for the plugin
                    for _ in range(16):
                        await recv_op(pub, "published")
                sent += 1
        await pub.close()
    run(main(), timeout=120)

    def reset():
        return stalled.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == errno.ECONNRESET
    wait_for("the gateway to reset the cut-off client that does not read its close frame", reset, timeout=30)
    stalled.close()


# ---- bad input ------------------------------------------------------------------

def test_bad_input_gets_clear_errors_and_others_are_served(tree):
    async def main():
        bystander = await connect(tree.url("a1", tok("ok", topics=["room.>"], pub=["room.9"])))
        assert (await subscribe(bystander, "room.9"))["op"] == "subscribed"
        ws = await connect(tree.url("a1", tok("bad", topics=["room.>"])))
        await ws.send("{not json")
        assert (await recv_op(ws, "error"))["code"] == 4400
        await ws.send(json.dumps({"op": "dance", "topic": "x"}))
        err = await recv_op(ws, "error")
        assert err["code"] == 4405 and "unknown op 'dance'" in err["reason"]
        await ws.send(json.dumps({"op": "sub", "topic": "room..x"}))
        assert (await recv_op(ws, "error"))["code"] == 4400
        # A subscription flood: max_subscriptions=20 on a1.
        for i in range(30):
            await ws.send(json.dumps({"op": "sub", "topic": f"room.{i}", "id": i}))
        answers = [json.loads(await recv(ws, 10, f"answer {i + 1} of 30")) for i in range(30)]
        limited = [a for a in answers if a["op"] == "error" and a["code"] == 4429]
        assert len(limited) >= 10 and any("max_subscriptions=20" in a["reason"] or "max_pending_ops" in a["reason"] for a in limited)
        await ws.close()
        # Binary frame: 1003.
        ws = await connect(tree.url("a1", tok("bin")))
        await ws.send(b"\x00\x01")
        assert (await until_closed(ws))[0] == 1003
        # Oversized frame: 1009 (max_frame_bytes=4096 on a1).
        ws = await connect(tree.url("a1", tok("big")))
        await ws.send(json.dumps({"op": "pub", "topic": "room.9", "data": "y" * 10000}))
        code, reason = await until_closed(ws)
        assert code == 1009 and "max_frame_bytes=4096" in reason
        # The bystander still gets what is published.
        await bystander.send(json.dumps({"op": "pub", "topic": "room.9", "data": "still here"}))
        assert (await recv_op(bystander, "msg"))["data"] == "still here"
        await bystander.close()
    run(main())


def test_plain_http_request_to_ws_is_not_upgraded(tree):
    import http.client
    conn = http.client.HTTPConnection("127.0.0.1", tree.http["a1"], timeout=5)
    conn.request("GET", "/ws")
    r = conn.getresponse()
    body = r.read().decode()
    assert r.status in (400, 404, 426), (r.status, body)
    conn.close()


# ---- scale ----------------------------------------------------------------------

def test_two_thousand_concurrent_clients(tree):
    n = 2000
    url = tree.url("a2", tok("many", topics=["wide.>"], pub=["wide.all"]))

    async def main():
        clients = []
        for i in range(0, n, 100):
            batch = await asyncio.gather(*[connect(url) for _ in range(100)])
            await asyncio.gather(*[subscribe(ws, "wide.all") for ws in batch])
            clients += batch
        assert tree.gateway("a2")["clients"] >= n
        await clients[0].send(json.dumps({"op": "pub", "topic": "wide.all", "data": "to everyone"}))
        got = await asyncio.gather(*[recv_op(ws, "msg", timeout=30) for ws in clients])
        assert all(m["data"] == "to everyone" for m in got)
        await asyncio.gather(*[ws.close() for ws in clients])
    run(main(), timeout=240)
    wait_for("the clients to be gone", lambda: tree.gateway("a2")["clients"] == 0, timeout=30)


# ---- a real browser ----------------------------------------------------------------

def test_demo_page_in_headless_chromium_shows_a_published_message(tree):
    import shutil
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service
    from selenium.webdriver.common.by import By
    opts = webdriver.ChromeOptions()
    for a in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1100,600"):
        opts.add_argument(a)
    browser = webdriver.Chrome(service=Service(shutil.which("chromedriver")), options=opts)
    try:
        page = f"http://127.0.0.1:{tree.http['a1']}/push/?topic=demo.%3E&token={tok('viewer', topics=['demo.>'])}"
        browser.get(page)
        wait_for("the page to connect", lambda: "connected" in browser.find_element(By.ID, "status").text)

        async def publish():
            ws = await connect(tree.url("a2", tok("cli", topics=[], pub=["demo.*"])))
            for i in range(100):   # until the page shows it (interest travels up the tree first)
                await ws.send(json.dumps({"op": "pub", "topic": "demo.hello", "data": f"hello from a2 #{i}"}))
                await recv_op(ws, "published")
                if browser.find_elements(By.CSS_SELECTOR, "#messages li"):
                    break
                await asyncio.sleep(0.1)
            await ws.close()
        run(publish())
        wait_for("a message in the DOM", lambda: browser.find_elements(By.CSS_SELECTOR, "#messages li"))
        text = browser.find_element(By.CSS_SELECTOR, "#messages li").text
        assert "demo.hello" in text and "hello from a2" in text
        artifacts = os.environ.get("DAGENT_ARTIFACTS", "/tmp/dagent-artifacts")
        os.makedirs(artifacts, exist_ok=True)
        browser.save_screenshot(os.path.join(artifacts, "push-demo.png"))
    finally:
        browser.quit()
