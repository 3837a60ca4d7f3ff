"""scripts/bench --suite push: browser push fan-out, dagent's push gateway versus
nats-server's websocket listener and a Tornado WebSocket server fed by Redis
pub/sub, in the same run.

Load client: Python asyncio + `websockets`, the subscribers split over WORKERS
processes (each holds its connections on one thread and reports its CPU share,
so a saturated client shows), one publisher process. The publisher runs a
closed loop: its own probe connection subscribes to every topic and at most
WINDOW messages are published but not yet seen by the probe, so every system is
driven at the rate it sustains. Payloads carry the CLOCK_MONOTONIC send time;
latency is publish-to-receive at the subscriber.

dagent's publisher publishes over its WebSocket (`{"op":"pub"}`, through the push
plugin), NATS's over its WebSocket (`PUB`), Tornado's straight into Redis.
"""
import asyncio
import json
import multiprocessing as mp
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

import websockets

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SECRET = b"push-bench-secret-0123456789"
PAYLOAD = 64
sys.path.insert(0, os.path.dirname(HERE))
from benchlib import free_port, listening, log, wait  # noqa: E402


# --- the systems --------------------------------------------------------------

class Procs:
    def __init__(self, logdir):
        self.logdir, self.procs = logdir, []

    def start(self, name, cmd, **kw):
        f = open(os.path.join(self.logdir, f"{name}.log"), "w")
        self.procs.append(subprocess.Popen(cmd, stdout=f, stderr=subprocess.STDOUT, **kw))

    def stop(self):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            try:
                p.wait(10)
            except subprocess.TimeoutExpired:
                p.kill()


def start_dagent(binary, procs):
    sys.path.insert(0, os.path.join(ROOT, "python"))
    from dagent import push
    secret_file = os.path.join(procs.logdir, "push.secret")
    with open(secret_file, "wb") as f:
        f.write(SECRET)
    root, listen, http = free_port(), free_port(), free_port()
    procs.start("dagent-root", [binary, "run", "--name", "root", "--listen", f"tcp://127.0.0.1:{root}"])
    section = {"secret_file": secret_file, "limits": {"max_clients": 20000, "max_pending_ops": 1024}}
    cfg = os.path.join(procs.logdir, "a1.yaml")
    with open(cfg, "w") as f:
        f.write(f"name: a1\nrole: agent\nlisten: tcp://127.0.0.1:{listen}\nparents: [tcp://127.0.0.1:{root}]\n"
                f"http: tcp://127.0.0.1:{http}\nhttp_max_connections: 20000\n"
                f"plugins:\n  dirs: [{json.dumps(os.path.join(ROOT, 'plugins'))}]\n  config:\n    push: {json.dumps(section)}\n")
    procs.start("dagent-a1", [binary, "run", "--config", cfg],
                env={**os.environ, "DAGENT_PYTHON_PATH": os.path.join(ROOT, "python")})

    def up():
        out = subprocess.run([binary, "tree", "--via", f"tcp://127.0.0.1:{listen}", "--json"],
                             capture_output=True, text=True, timeout=10)
        return json.loads(out.stdout)["push_gateway"]["service"]
    wait("dagent's push gateway", up)
    token = push.token(SECRET, sub="bench", topics=["bench.>"], pub=["bench.>"], ttl=3600)
    return {"url": f"ws://127.0.0.1:{http}/ws?token={token}"}


def start_nats(procs):
    port, ws = free_port(), free_port()
    conf = os.path.join(procs.logdir, "nats-ws.conf")
    with open(conf, "w") as f:
        f.write(f"listen: 127.0.0.1:{port}\nwebsocket {{\n  listen: \"127.0.0.1:{ws}\"\n  no_tls: true\n}}\n")
    procs.start("nats", ["nats-server", "-c", conf])
    wait("nats-server", lambda: listening(ws))
    return {"url": f"ws://127.0.0.1:{ws}"}


def start_tornado(procs):
    rport, tport = free_port(), free_port()
    procs.start("redis", ["redis-server", "--port", str(rport), "--bind", "127.0.0.1", "--save", "",
                          "--appendonly", "no"])
    wait("redis-server", lambda: listening(rport))
    procs.start("tornado", [sys.executable, os.path.join(HERE, "tornado_redis.py"), str(tport), str(rport)])
    wait("tornado", lambda: urllib.request.urlopen(f"http://127.0.0.1:{tport}/ready", timeout=1).status == 200)
    return {"url": f"ws://127.0.0.1:{tport}/ws", "ready": f"http://127.0.0.1:{tport}/ready", "redis": rport}


# --- the client side, per protocol --------------------------------------------

class Nats:
    """A streaming parser of the NATS protocol's server side (MSG, PING)."""

    def __init__(self, ws):
        self.ws, self.buf = ws, b""

    def feed(self, data):
        self.buf += data if isinstance(data, bytes) else data.encode()
        out = []
        while True:
            i = self.buf.find(b"\r\n")
            if i < 0:
                return out
            line = self.buf[:i]
            if line.startswith(b"MSG "):
                size = int(line.rsplit(b" ", 1)[1])
                if len(self.buf) < i + 2 + size + 2:
                    return out
                out.append(self.buf[i + 2:i + 2 + size].decode())
                self.buf = self.buf[i + 4 + size:]
                continue
            if line == b"PING":
                asyncio.ensure_future(self.ws.send(b"PONG\r\n"))
            elif line == b"PONG":
                out.append(None)   # the subscription is live
            elif line.startswith(b"-ERR"):
                raise RuntimeError(f"nats: {line.decode()}")
            self.buf = self.buf[i + 2:]


async def open_sub(system, info, topics):
    """A connection subscribed to `topics`; returns (ws, parse), parse(frame) -> payloads."""
    if system == "dagent":
        ws = await websockets.connect(info["url"], max_size=2**22, compression=None)
        assert json.loads(await ws.recv())["op"] == "connected"
        for t in topics:
            await ws.send(json.dumps({"op": "sub", "topic": t}))
            while True:
                f = json.loads(await ws.recv())
                if f["op"] == "subscribed":
                    break
                if f["op"] == "error":
                    raise RuntimeError(f"dagent: {f}")

        def parse(frame):
            f = json.loads(frame)
            if f["op"] == "error":
                raise RuntimeError(f"dagent: {f}")
            return [f["data"]] if f["op"] == "msg" else []
        return ws, parse
    if system == "nats":
        ws = await websockets.connect(info["url"], max_size=2**22, compression=None)
        p = Nats(ws)
        await ws.recv()   # INFO
        await ws.send(("CONNECT {\"verbose\":false,\"pedantic\":false}\r\n"
                       + "".join(f"SUB {t} {i + 1}\r\n" for i, t in enumerate(topics)) + "PING\r\n").encode())
        while None not in p.feed(await ws.recv()):
            pass
        return ws, lambda frame: [m for m in p.feed(frame) if m is not None]
    ws = await websockets.connect(f"{info['url']}?topics={','.join(topics)}", max_size=2**22, compression=None)
    return ws, lambda frame: [frame]


def worker(system, info, topics, expected, ready, results, stop):
    resource.setrlimit(resource.RLIMIT_NOFILE, (resource.getrlimit(resource.RLIMIT_NOFILE)[1],) * 2)
    asyncio.run(_worker(system, info, topics, expected, ready, results, stop))


async def _worker(system, info, topics, expected, ready, results, stop):
    conns = []
    for i in range(0, len(topics), 50):
        conns += await asyncio.gather(*(open_sub(system, info, [t]) for t in topics[i:i + 50]))
    state = {"n": 0, "last": 0, "lat": []}
    done = asyncio.Event()

    async def read(ws, parse):
        try:
            async for frame in ws:
                now = time.monotonic_ns()
                for data in parse(frame):
                    if data[0] == "w":
                        continue   # warm-up
                    state["lat"].append(now - int(data.split(" ", 2)[1]))
                    state["n"] += 1
                    state["last"] = now
                    state.setdefault("first", now)
                if state["n"] >= expected:
                    done.set()
        except websockets.ConnectionClosed as e:
            state.setdefault("closed", []).append(e.code)
    tasks = [asyncio.ensure_future(read(ws, parse)) for ws, parse in conns]
    ready.send("ready")
    asyncio.get_running_loop().add_reader(stop.fileno(), done.set)
    r0 = resource.getrusage(resource.RUSAGE_SELF)
    t0 = time.monotonic()
    await done.wait()
    r1 = resource.getrusage(resource.RUSAGE_SELF)
    cpu = (r1.ru_utime + r1.ru_stime) - (r0.ru_utime + r0.ru_stime)
    for t in tasks:
        t.cancel()
    # CPU share while receiving (first to last delivery); before that the worker only waits.
    wall = max((state["last"] - state.get("first", state["last"])) / 1e9, time.monotonic() - t0 if not state["n"] else 1e-3)
    results.send({"n": state["n"], "last": state["last"], "lat": state["lat"], "cpu": cpu,
                  "wall": wall, "closed": state.get("closed", [])})


async def _until(cond, event):
    while not cond():
        event.clear()
        await event.wait()


async def publish(system, info, topics, count, window):
    """Publishes `count` messages round-robin over `topics`, at most `window` unseen by the probe."""
    payload_pad = "x" * PAYLOAD
    seen, sent, measuring = 0, 0, False
    more = asyncio.Event()
    if system == "tornado":
        import redis.asyncio as aioredis
        r = aioredis.Redis(port=info["redis"])
        probe, parse = await open_sub(system, info, topics)
        send = lambda t, data: r.publish(t, data)
    else:
        probe, parse = await open_sub(system, info, ["bench.>"])
        if system == "dagent":
            send = lambda t, data: probe.send(json.dumps({"op": "pub", "topic": t, "data": data}))
        else:
            send = lambda t, data: probe.send(f"PUB {t} {len(data)}\r\n{data}\r\n".encode())

    async def read():
        nonlocal seen
        async for frame in probe:
            seen += sum(1 for d in parse(frame) if d[0] != "w" or not measuring)
            more.set()
    reader = asyncio.ensure_future(read())
    # Warm-up: one message per topic until the probe sees them all, so every
    # subscription is live through the whole path before the measured messages.
    deadline = time.monotonic() + 30
    while seen < len(topics):
        if time.monotonic() > deadline:
            raise SystemExit(f"bench: {system}: warm-up messages not seen within 30 s")
        seen = 0
        for t in topics:
            await send(t, "w 0 " + payload_pad)
        try:
            await asyncio.wait_for(asyncio.shield(_until(lambda: seen >= len(topics), more)), 2)
        except asyncio.TimeoutError:
            pass
    seen, measuring = 0, True
    t0 = time.monotonic_ns()
    while sent < count:
        while sent - seen >= window:
            more.clear()
            await asyncio.wait_for(more.wait(), 30)
        data = f"{sent} {time.monotonic_ns()} "
        await send(topics[sent % len(topics)], (data + payload_pad)[:max(PAYLOAD, len(data))])
        sent += 1
    deadline = time.monotonic() + 30
    while seen < count and time.monotonic() < deadline:
        more.clear()
        try:
            await asyncio.wait_for(more.wait(), 1)
        except asyncio.TimeoutError:
            pass
    reader.cancel()
    await probe.close()
    return t0


def run_one(system, info, ntopics, fanout, count, window, workers):
    topics = [f"bench.t{i}" for i in range(ntopics)]
    subs = [t for t in topics for _ in range(fanout)]
    shards = [subs[i::workers] for i in range(workers)]
    per_topic = count // ntopics
    ctx = mp.get_context("fork")
    handles = []
    for shard in shards:
        ready_r, ready_w = ctx.Pipe(False)
        res_r, res_w = ctx.Pipe(False)
        stop_r, stop_w = ctx.Pipe(False)
        p = ctx.Process(target=worker, args=(system, info, shard, len(shard) * per_topic, ready_w, res_w, stop_r))
        p.start()
        handles.append((p, ready_r, res_r, stop_w))
    for p, ready_r, _, _ in handles:
        if not ready_r.poll(180):
            raise SystemExit(f"bench: {system}: subscribers did not connect within 180 s")
        ready_r.recv()
    if system == "tornado":
        wait("tornado's redis subscriptions",
             lambda: int(urllib.request.urlopen(info["ready"], timeout=1).read()) >= ntopics)
    t0 = asyncio.run(publish(system, info, topics, per_topic * ntopics, window))
    res = []
    for p, _, res_r, stop_w in handles:
        if not res_r.poll(20):
            stop_w.send("stop")
        res.append(res_r.recv())
        p.join(10)
    n = sum(r["n"] for r in res)
    lat = sorted(x for r in res for x in r["lat"])
    last = max(r["last"] for r in res)
    q = lambda f: lat[min(len(lat) - 1, int(f * len(lat)))] / 1e6 if lat else float("nan")
    return {"deliveries": n, "expected": len(subs) * per_topic, "per_s": n / ((last - t0) / 1e9) if n else 0.0,
            "p50_ms": q(0.50), "p99_ms": q(0.99), "client_cpu": max(r["cpu"] / r["wall"] for r in res),
            "closed": sum(len(r["closed"]) for r in res)}


WORKLOADS = [("1 topic × 1,000 clients", 1, 1000), ("100 topics × 10 clients", 100, 10)]


def run(binary, rounds, counts, windows, workers):
    """{workload: {system: [result per round]}}; the systems alternate within each round."""
    out = {w: {s: [] for s in ("dagent", "nats", "tornado")} for w, _, _ in WORKLOADS}
    for rnd in range(rounds):
        for system in ("dagent", "nats", "tornado"):
            logdir = tempfile.mkdtemp(prefix=f"dagent-pushbench-{system}-")
            procs = Procs(logdir)
            try:
                info = (start_dagent(binary, procs) if system == "dagent" else
                        start_nats(procs) if system == "nats" else start_tornado(procs))
                for (name, nt, fan), count, window in zip(WORKLOADS, counts, windows):
                    r = run_one(system, info, nt, fan, count, window, workers)
                    log(f"round {rnd + 1} {system} {name}: {r['per_s']:,.0f} deliveries/s p50 {r['p50_ms']:.1f} ms "
                        f"p99 {r['p99_ms']:.1f} ms ({r['deliveries']}/{r['expected']}, closed {r['closed']}, "
                        f"client CPU {r['client_cpu']:.0%})")
                    out[name][system].append(r)
            finally:
                procs.stop()
            shutil.rmtree(logdir, ignore_errors=True)
    return out


def report(res, rounds, workers):
    med = lambda rs, k: statistics.median(r[k] for r in rs)
    print(f"\n### Push fan-out (medians of {rounds} round(s); load client: {workers} subscriber processes)\n")
    print("| workload | system | deliveries/s | p50 ms | p99 ms | delivered | client CPU (max per process) |")
    print("|---|---|---:|---:|---:|---:|---:|")
    for name in res:
        for s, label in (("dagent", "dagent push"), ("nats", "nats-server websocket"), ("tornado", "Tornado + Redis")):
            rs = res[name][s]
            print(f"| {name} | {label} | {med(rs, 'per_s'):,.0f} | {med(rs, 'p50_ms'):.1f} | {med(rs, 'p99_ms'):.1f} "
                  f"| {min(r['deliveries'] for r in rs):,}/{rs[0]['expected']:,} | {med(rs, 'client_cpu'):.0%} |")
    print("\n| workload | dagent/NATS deliveries/s (≥ 1) | dagent/Tornado (≥ 3) | dagent p99 / NATS p99 (≤ 1) |")
    print("|---|---:|---:|---:|")
    for name in res:
        d, n, t = (res[name][s] for s in ("dagent", "nats", "tornado"))
        a, b, c = med(d, "per_s") / med(n, "per_s"), med(d, "per_s") / med(t, "per_s"), med(d, "p99_ms") / med(n, "p99_ms")
        print(f"| {name} | {a:.2f} {'met' if a >= 1 else 'NOT met'} | {b:.2f} {'met' if b >= 3 else 'NOT met'} "
              f"| {c:.2f} {'met' if c <= 1 else 'NOT met'} |")
