"""`scripts/bench --suite tls`: what mutual TLS costs on the 3-hop route, and dagent with TLS
against NATS with TLS, all in the same run.

Three systems, rounds alternating so all see the same machine noise:
  dagent       root + two agents, plaintext links (the `tree` suite's setup)
  dagent+tls   the same tree with `--tls-cert/--tls-key/--tls-ca` on every node and on the
               two benchmark endpoints (`dagent-bench pingpong --tls-*`): every hop is TLS 1.3
  nats+tls     hub + two leaf nodes (bench/nats/run.sh --tls): mutual TLS on the client
               ports and the leafnode links
The certificates of both come from `dagent certs` (a P-256 cluster CA).
"""
import json
import os
import signal
import statistics
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from benchlib import faster, free_port, log  # noqa: E402


def run_json(cmd):
    r = subprocess.run(cmd, capture_output=True, text=True)
    if r.returncode != 0:
        raise SystemExit(f"bench: {' '.join(cmd[:3])} failed ({r.returncode}): {r.stderr.strip()[-800:]}")
    return [json.loads(line) for line in r.stdout.splitlines() if line.startswith("{")]


def make_certs(binary, d):
    """The cluster CA and every certificate of the suite, made with `dagent certs`."""
    ca = os.path.join(d, "certs")
    subprocess.run([binary, "certs", "init", "--out", ca], check=True, stdout=subprocess.DEVNULL)
    issue = [("root", ["--subtree"]), ("a1", ["--subtree"]), ("a2", ["--subtree"]),
             ("bench", ["--san", "bench-a", "--san", "bench-b"]),
             ("nats-hub", ["--san", "localhost"]), ("nats-leaf1", ["--san", "localhost"]),
             ("nats-leaf2", ["--san", "localhost"]), ("natsbench", [])]
    for name, extra in issue:
        subprocess.run([binary, "certs", "issue", "--ca", ca, "--name", name, *extra], check=True, stdout=subprocess.DEVNULL)
    return ca


class Tree:
    """root + two agents on loopback; with `certs`, every link is mutual TLS."""

    def __init__(self, binary, logdir, certs=None, tag=""):
        self.bin, self.logdir, self.certs, self.tag, self.procs = binary, logdir, certs, tag, []
        self.root, self.a1, self.a2 = (f"tcp://127.0.0.1:{free_port()}" for _ in range(3))

    def tls(self, name):
        if not self.certs:
            return []
        c = self.certs
        return ["--tls-cert", f"{c}/{name}.crt", "--tls-key", f"{c}/{name}.key", "--tls-ca", f"{c}/ca.crt"]

    def start(self, name, *args):
        f = open(os.path.join(self.logdir, f"{name}{self.tag}.log"), "w")
        self.procs.append(subprocess.Popen([self.bin, "run", "--name", name, *args, *self.tls(name)], stdout=f, stderr=f))

    def __enter__(self):
        self.start("root", "--listen", self.root)
        self.start("a1", "--role", "agent", "--listen", self.a1, "--parent", self.root)
        self.start("a2", "--role", "agent", "--listen", self.a2, "--parent", self.root)
        deadline = time.time() + 15
        while time.time() < deadline:
            r = subprocess.run([self.bin, "tree", "--via", self.root, "--json", *self.tls("bench")], capture_output=True, text=True)
            if r.returncode == 0 and {"a1", "a2"} <= {n["name"] for n in json.loads(r.stdout)["names"]}:
                return self
            time.sleep(0.05)
        raise SystemExit(f"bench: the dagent tree{self.tag} did not come up; logs in {self.logdir}")

    def __exit__(self, *exc):
        for p in self.procs:
            p.send_signal(signal.SIGTERM)
        for p in self.procs:
            p.wait(timeout=10)


SYSTEMS = ("dagent", "dagent+tls", "nats+tls")


def run(binary, logdir, rounds, sizes, count, rtt_count):
    certs = make_certs(binary, logdir)
    results = {s: {size: [] for size in sizes} for s in SYSTEMS}
    common = ["--count", str(count), "--rtt-count", str(rtt_count)]
    with Tree(binary, logdir) as plain, Tree(binary, logdir, certs=certs, tag="-tls") as tls:
        for rnd in range(1, rounds + 1):
            for size in sizes:
                for system, tree in (("dagent", plain), ("dagent+tls", tls)):
                    log(f"tls round {rnd}/{rounds}, {size} B: {system} ...")
                    results[system][size] += run_json([binary + "-bench", "pingpong", "--from", tree.a1, "--to", tree.a2,
                                                       "--size", str(size), *common, *tree.tls("bench"), "--json"])
                log(f"tls round {rnd}/{rounds}, {size} B: nats+tls ...")
                results["nats+tls"][size] += run_json([os.path.join(ROOT, "bench", "nats", "run.sh"), "--sizes", str(size),
                                                       "--tls", certs, *common])
    return results


METRICS = [("rtt_p50_us", "RTT p50 (µs)", "lower"), ("rtt_p99_us", "RTT p99 (µs)", "lower"),
           ("stream_msgs_per_s", "stream (msgs/s)", "higher"), ("stream_mb_per_s", "stream (MB/s)", "higher")]


def report(results, rounds, sizes, count, rtt_count):
    def med(system, size, key):
        return statistics.median(r[key] for r in results[system][size])

    print(f"\n3-hop route with and without TLS, and NATS with TLS; medians of {rounds} rounds "
          f"({rtt_count} round trips, {count}-message stream per round)\n")
    print("| size | metric | dagent | dagent+TLS | TLS cost | NATS+TLS | dagent+TLS vs NATS+TLS |")
    print("|---|---|---|---|---|---|---|")
    summary = {}
    for size in sizes:
        for key, label, better in METRICS:
            d, t, n = (med(s, size, key) for s in SYSTEMS)
            cost = (t / d - 1) if better == "lower" else (1 - t / d)
            vs = (n / t) if better == "lower" else (t / n)
            summary[f"{size}:{key}"] = {"dagent": d, "dagent_tls": t, "nats_tls": n, "tls_cost": cost, "vs_nats_tls": vs}
            print(f"| {size} B | {label} | {d:,.1f} | {t:,.1f} | {cost * 100:+.0f}% | {n:,.1f} | {faster(vs) if better == 'lower' else f'{vs:.2f}× the rate'} |")
    print("\n(TLS cost: the stream rate lost, or the latency added, relative to plaintext dagent)")
    for size in sizes:
        s = summary[f"{size}:stream_msgs_per_s"]
        print(f"target ({size} B): TLS costs at most 20% of the plaintext stream: {s['tls_cost'] * 100:.0f}% -> "
              f"{'met' if s['tls_cost'] <= 0.20 else 'NOT met'}; dagent+TLS at least 1.5x NATS+TLS: "
              f"{s['vs_nats_tls']:.2f}x -> {'met' if s['vs_nats_tls'] >= 1.5 else 'NOT met'}")
    return summary
