"""scripts/bench --suite pubsub: fan-out from 1 publisher to 1, 10 and 100 subscribers over
the 3-hop route, dagent versus NATS in the same run.

dagent: root + agents a1 and a2 (release `dagent run`); the publisher is a node under a1,
every subscriber a node of its own under a2, so each delivery travels
publisher -> a1 -> root -> a2 -> subscriber (the route of the tree suite).
NATS: a hub and 2 leaf nodes (bench/nats/*.conf); the publisher connects to leaf1, every
subscriber to leaf2 with a SUB of the same subject: publisher -> leaf1 -> hub -> leaf2 -> subscriber.

Both are driven by the same load generator, `dagent-bench fanout` (all clients on one event
loop thread): a latency phase (one publish at a time, publish-to-receive at every subscriber)
and a throughput phase (at most WINDOW messages in flight per subscriber). Rounds alternate
the systems; the table shows medians and ratios.
"""
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.dirname(HERE))
from benchlib import faster, free_port, listening, log, wait  # noqa: E402


class DAgentTree:
    """root, a1, a2 on loopback (release binary)."""

    def __init__(self, binary, logdir):
        self.bin, self.logdir, self.procs = binary, logdir, []
        self.root, self.a1, self.a2 = (f"tcp://127.0.0.1:{free_port()}" for _ in range(3))

    def start(self, name, *args):
        f = open(os.path.join(self.logdir, f"pubsub-{name}.log"), "w")
        self.procs.append(subprocess.Popen([self.bin, "run", "--name", name, *args], stdout=f, stderr=f))

    def __enter__(self):
        self.start("root", "--listen", self.root)
        self.start("a1", "--role", "agent", "--listen", self.a1, "--parent", self.root)
        self.start("a2", "--role", "agent", "--listen", self.a2, "--parent", self.root)

        def up():
            r = subprocess.run([self.bin, "tree", "--via", self.root, "--json"], capture_output=True, text=True)
            return r.returncode == 0 and {n["name"] for n in json.loads(r.stdout)["names"]} >= {"a1", "a2"}
        wait("the dagent tree", up, logdir=self.logdir)
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            p.wait(timeout=10)


class NATS:
    """A hub and two leaf nodes (the tree suite's configs)."""

    def __init__(self, logdir):
        self.logdir, self.procs = logdir, []
        self.ports = {k: free_port() for k in ("HUB_PORT", "HUB_LEAF_PORT", "LEAF1_PORT", "LEAF2_PORT")}
        self.leaf1 = f"nats://127.0.0.1:{self.ports['LEAF1_PORT']}"
        self.leaf2 = f"nats://127.0.0.1:{self.ports['LEAF2_PORT']}"

    def start(self, name):
        with open(os.path.join(ROOT, "bench", "nats", f"{name}.conf")) as f:
            conf = f.read()
        for k, v in self.ports.items():
            conf = conf.replace(f"@{k}@", str(v))
        path = os.path.join(self.logdir, f"pubsub-{name}.conf")
        with open(path, "w") as f:
            f.write(conf)
        logf = os.path.join(self.logdir, f"pubsub-nats-{name}.log")
        self.procs.append(subprocess.Popen(["nats-server", "-c", path, "-l", logf]))
        return logf

    def __enter__(self):
        self.start("hub")
        wait("the NATS hub", lambda: listening(self.ports["HUB_PORT"]), logdir=self.logdir)
        logs = [self.start("leaf1"), self.start("leaf2")]

        def linked():
            return all("Leafnode connection created" in open(p).read() for p in logs)
        wait("the NATS leaf nodes", linked, logdir=self.logdir)
        return self

    def __exit__(self, *exc):
        for p in self.procs:
            p.terminate()
        for p in self.procs:
            p.wait(timeout=10)


def fanout(binary, system, pub, sub, n, count, latency_count, window, size):
    cmd = [binary + "-bench", "fanout", "--system", system, "--pub", pub, "--sub", sub, "--subscribers", str(n),
           "--count", str(count), "--latency-count", str(latency_count), "--window", str(window),
           "--size", str(size), "--json"]
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd)} failed ({r.returncode}): {r.stderr.strip()[-800:]}")
    return json.loads([line for line in r.stdout.splitlines() if line.startswith("{")][-1])


def run(binary, rounds, fanouts, deliveries, latency_count, window, size):
    """{(system, n): [result, ...]}; each run publishes deliveries // n messages (at least 2,000)."""
    logdir = tempfile.mkdtemp(prefix="dagent-bench-pubsub.")
    res = {(s, n): [] for s in ("dagent", "nats") for n in fanouts}
    try:
        with DAgentTree(binary, logdir) as tree, NATS(logdir) as nats:
            for rnd in range(1, rounds + 1):
                for n in fanouts:
                    count = max(2000, deliveries // n)
                    for system, pub, sub in (("dagent", tree.a1, tree.a2), ("nats", nats.leaf1, nats.leaf2)):
                        log(f"pubsub round {rnd}/{rounds}: {system}, 1 -> {n} subscribers, {count} messages ...")
                        res[(system, n)].append(fanout(binary, system, pub, sub, n, count, latency_count, window, size))
    finally:
        shutil.rmtree(logdir, ignore_errors=True)
    return res


def report(res, rounds, fanouts, size):
    med = lambda s, n, k: statistics.median(r[k] for r in res[(s, n)])
    print(f"\nPub/sub fan-out over the 3-hop route ({size} B payloads), medians of {rounds} rounds\n")
    print("| subscribers | metric | dagent | NATS | dagent vs NATS |")
    print("|---|---|---|---|---|")
    summary = {}
    for n in fanouts:
        for key, label, better in (("deliveries_per_s", "deliveries/s", "higher"), ("p50_us", "latency p50 (µs)", "lower"),
                                   ("p99_us", "latency p99 (µs)", "lower")):
            d, m = med("dagent", n, key), med("nats", n, key)
            ratio = d / m if better == "higher" else m / d
            summary[(n, key)] = ratio
            print(f"| {n} | {label} | {d:,.1f} | {m:,.1f} | {f'{ratio:.2f}× the rate' if better == 'higher' else faster(ratio)} |")
        lost = (sum(r["lost"] for r in res[("dagent", n)]), sum(r["lost"] for r in res[("nats", n)]))
        if any(lost):
            print(f"| {n} | lost (all rounds) | {lost[0]} | {lost[1]} | |")
    rate_ok = all(summary[(n, "deliveries_per_s")] >= 1.5 for n in fanouts)
    p50_ok = all(summary[(n, "p50_us")] >= 1.0 for n in fanouts)
    print(f"\ntarget: deliveries/s at least 1.5x NATS's: "
          + ", ".join(f"{n} subs {summary[(n, 'deliveries_per_s')]:.2f}x" for n in fanouts) + f" -> {'met' if rate_ok else 'NOT met'}")
    print("target: p50 no higher than NATS's: "
          + ", ".join(f"{n} subs {1 / summary[(n, 'p50_us')]:.2f}x NATS's" for n in fanouts) + f" -> {'met' if p50_ok else 'NOT met'}")
