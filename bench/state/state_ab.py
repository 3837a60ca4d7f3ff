#!/usr/bin/python3
"""One root group under one load, for same-window A/B runs of two builds and profiles of the leader.

  bench/state/state_ab.py BIN [--bench BENCH] [--clients 64] [--count 12000] [--rounds 1] [--op put|get]
                          [--perf OUT] [--etcd]

Starts 3 replicas of the release `dagent` BIN as `scripts/bench --suite state` does, runs
`dagent-bench state` (BENCH, default BIN-bench) against the leader, and prints one JSON line per
round: the bench's figures, the CPU seconds each replica and the bench client used meanwhile, the
leader's index and the load. --perf OUT records `perf record -g` of the leader during the rounds;
--etcd runs the same load against a 3-member etcd afterwards. Alternate builds run by run
(docs/performance.md, "JSON off the put and get path").
"""
import argparse, importlib.machinery, importlib.util, json, os, signal, subprocess, tempfile, time
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
loader = importlib.machinery.SourceFileLoader("bench", os.path.join(ROOT, "scripts", "bench"))
spec = importlib.util.spec_from_loader("bench", loader)
bench = importlib.util.module_from_spec(spec)
loader.exec_module(bench)

def cpu(pid):
    with open(f"/proc/{pid}/stat") as f:
        parts = f.read().rsplit(")", 1)[1].split()
    return (int(parts[11]) + int(parts[12])) / os.sysconf("SC_CLK_TCK")

ap = argparse.ArgumentParser()
ap.add_argument("bin")
ap.add_argument("--bench")
ap.add_argument("--clients", type=int, default=64)
ap.add_argument("--count", type=int, default=12000)
ap.add_argument("--rounds", type=int, default=1)
ap.add_argument("--perf")
ap.add_argument("--op", default="put")
ap.add_argument("--etcd", action="store_true")
a = ap.parse_args()
logdir = tempfile.mkdtemp(prefix="sfprof-")
with bench.Replicas(a.bin, logdir) as reps:
    leader = reps.leader_addr()
    port = int(leader.rsplit(":", 1)[1])
    lpid = reps.procs[reps.ports.index(port)].pid
    for rnd in range(a.rounds):
        before = [cpu(p.pid) for p in reps.procs]
        perf = None
        if a.perf:
            perf = subprocess.Popen(["perf", "record", "-g", "-F", "999", "-o", a.perf, "-p", str(lpid)],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        p = subprocess.Popen([(a.bench or a.bin + "-bench"), "state", "--target", "dagent", "--via", leader, "--op", a.op,
                              "--clients", str(a.clients), "--count", str(a.count), "--json"], stdout=subprocess.PIPE, text=True)
        out = p.stdout.read()
        _, status, ru = os.wait4(p.pid, 0)
        if status != 0:
            raise SystemExit(f"state_ab: dagent-bench state failed (status {status}); replica logs in {logdir}")
        if perf:
            perf.send_signal(signal.SIGINT); perf.wait()
        after = [cpu(pp.pid) for pp in reps.procs]
        r = [json.loads(l) for l in out.splitlines() if l.startswith("{")][0]
        r["client_cpu_s"] = round(ru.ru_utime + ru.ru_stime, 3)
        r["replica_cpu_s"] = [round(x - y, 3) for x, y in zip(after, before)]
        r["leader"] = reps.ports.index(port)
        r["load"] = os.getloadavg()[0]
        print(json.dumps(r), flush=True)
    if a.etcd:
        with bench.Etcd(logdir) as etcd:
            for rnd in range(a.rounds):
                r = bench.run_json([a.bench or a.bin + "-bench", "state", "--target", "etcd", "--via", etcd.leader_url(), "--op", a.op,
                                    "--clients", str(a.clients), "--count", str(a.count), "--json"])[0]
                r["load"] = os.getloadavg()[0]
                print(json.dumps(r), flush=True)
