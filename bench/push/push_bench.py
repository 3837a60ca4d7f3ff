"""scripts/bench --suite push: browser push fan-out, dagent's push gateway versus
nats-server's websocket listener and a Tornado WebSocket server fed by Redis
pub/sub, in the same run.

Load client: `dagent-bench ws-fanout` (Sources/dagent-bench/WSFanoutRun.swift),
the same for all three systems: a swift-nio WebSocket client holding every
subscriber connection and the publisher on one event loop thread. It reports
its CPU share while receiving (near 100% would mean the client is the
bottleneck); this script adds the servers' CPU share from /proc. The publisher
runs a closed loop: at most WINDOW messages are in flight (not yet received by
every subscriber of their topic), so every system is driven at the rate it
sustains. Payloads carry the sender's CLOCK_MONOTONIC time (sender and receivers
are one process); latency is publish-to-receive.

dagent's publisher publishes over its WebSocket (`{"op":"pub"}`, through the push
plugin), NATS's over its WebSocket (`PUB`), Tornado's straight into Redis.
"""
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SECRET = b"push-bench-secret-0123456789"
PAYLOAD = 64
sys.path.insert(0, os.path.dirname(HERE))
from benchlib import free_port, listening, log, wait  # noqa: E402


# --- the systems --------------------------------------------------------------

class Procs:
    def __init__(self, logdir):
        self.logdir, self.procs, self.names = logdir, [], []

    def start(self, name, cmd, **kw):
        f = open(os.path.join(self.logdir, f"{name}.log"), "w")
        self.names.append(name)
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


# --- the load client -------------------------------------------------------

def run_one(binary, system, info, server_pids, ntopics, fanout, count, window):
    cmd = [binary + "-bench", "ws-fanout", "--system", system, "--url", info["url"], "--topics", str(ntopics),
           "--fanout", str(fanout), "--count", str(count), "--window", str(window), "--payload", str(PAYLOAD), "--json"]
    if system == "tornado":
        cmd += ["--redis", str(info["redis"])]
    for pid in server_pids:
        cmd += ["--watch-pid", str(pid)]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=900)
    if out.returncode != 0:
        raise SystemExit(f"bench: {system}: ws-fanout failed: {out.stderr.strip() or out.stdout.strip()}")
    return json.loads(out.stdout.strip().splitlines()[-1])


WORKLOADS = [("1 topic × 1,000 clients", 1, 1000), ("100 topics × 10 clients", 100, 10)]


def run(binary, rounds, counts, windows):
    """{workload: {system: [result per round]}}; the systems alternate within each round."""
    out = {w: {s: [] for s in ("dagent", "nats", "tornado")} for w, _, _ in WORKLOADS}
    for rnd in range(rounds):
        for system in ("dagent", "nats", "tornado"):
            logdir = tempfile.mkdtemp(prefix=f"dagent-pushbench-{system}-")
            procs = Procs(logdir)
            try:
                info = (start_dagent(binary, procs) if system == "dagent" else
                        start_nats(procs) if system == "nats" else start_tornado(procs))
                # The processes that serve the clients (dagent's root only routes nothing here).
                pids = [p.pid for name, p in zip(procs.names, procs.procs) if name != "dagent-root"]
                for (name, nt, fan), count, window in zip(WORKLOADS, counts, windows):
                    r = run_one(binary, system, info, pids, nt, fan, count, window)
                    log(f"round {rnd + 1} {system} {name}: {r['per_s']:,.0f} deliveries/s p50 {r['p50_ms']:.2f} ms "
                        f"p99 {r['p99_ms']:.2f} ms ({r['deliveries']}/{r['expected']}, closed {r['closed']}, "
                        f"client CPU {r['client_cpu']:.0%}, server CPU {r['server_cpu']:.0%})"
                        + (f" first error: {r['first_error']}" if r["first_error"] else ""))
                    out[name][system].append(r)
            finally:
                procs.stop()
            shutil.rmtree(logdir, ignore_errors=True)
    return out


def report(res, rounds):
    med = lambda rs, k: statistics.median(r[k] for r in rs)
    print(f"\n### Push fan-out (medians of {rounds} round(s); load client: dagent-bench ws-fanout, one thread)\n")
    print("| workload | system | deliveries/s | p50 ms | p99 ms | delivered | client CPU | server CPU |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for name in res:
        for s, label in (("dagent", "dagent push"), ("nats", "nats-server websocket"), ("tornado", "Tornado + Redis")):
            rs = res[name][s]
            print(f"| {name} | {label} | {med(rs, 'per_s'):,.0f} | {med(rs, 'p50_ms'):.2f} | {med(rs, 'p99_ms'):.2f} "
                  f"| {min(r['deliveries'] for r in rs):,}/{rs[0]['expected']:,} | {med(rs, 'client_cpu'):.0%} "
                  f"| {med(rs, 'server_cpu'):.0%} |")
    print("\n| workload | dagent/NATS deliveries/s (≥ 1) | dagent/Tornado (≥ 3) | dagent p99 / NATS p99 (≤ 1) |")
    print("|---|---:|---:|---:|")
    for name in res:
        d, n, t = (res[name][s] for s in ("dagent", "nats", "tornado"))
        a, b, c = med(d, "per_s") / med(n, "per_s"), med(d, "per_s") / med(t, "per_s"), med(d, "p99_ms") / med(n, "p99_ms")
        print(f"| {name} | {a:.2f} {'met' if a >= 1 else 'NOT met'} | {b:.2f} {'met' if b >= 3 else 'NOT met'} "
              f"| {c:.2f} {'met' if c <= 1 else 'NOT met'} |")
