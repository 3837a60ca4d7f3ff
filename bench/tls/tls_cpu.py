"""CPU time per message of the 3-hop stream, plaintext and TLS, for one or more builds.

On a loaded machine the stream rate measures how often the four processes get a core;
the CPU they spend per message does not depend on that, and it is what sets the rate
once the machine is quiet. For each build and round: root + two agents (`tls_bench.Tree`,
plaintext and mutual TLS), one `dagent-bench pingpong` stream; the relays' CPU from
/proc/PID/stat before and after, the endpoints' from the benchmark process's rusage.

  bench/tls/tls_cpu.py --bin old=/tmp/dagent-old --bin new=.build/release/dagent --rounds 3

`--env NAME=KEY=VALUE` runs build NAME (all its processes) with KEY=VALUE in the environment:
the same binary under two names with different `DAGENT_X_*` link settings compares those settings.

Builds alternate within each round, so they see the same noise. Prints medians (µs of CPU
per message: relays, endpoints, total) and each build's TLS cost in CPU (total TLS /
total plaintext - 1).
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import tls_bench  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def cpu_seconds(pid):
    fields = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TICK


def measure(binary, tls, certs, logdir, size, count, env=None):
    saved = dict(os.environ)
    os.environ.update(env or {})
    try:
        return measure_here(binary, tls, certs, logdir, size, count)
    finally:
        os.environ.clear()
        os.environ.update(saved)


def measure_here(binary, tls, certs, logdir, size, count):
    with tls_bench.Tree(binary, logdir, certs=certs if tls else None, tag="-tls" if tls else "") as tree:
        pids = [p.pid for p in tree.procs]
        before = sum(cpu_seconds(p) for p in pids)
        cmd = [binary + "-bench", "pingpong", "--from", tree.a1, "--to", tree.a2, "--size", str(size),
               "--count", str(count), "--rtt-count", "1", *tree.tls("bench"), "--json"]
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        _, status, usage = os.wait4(proc.pid, 0)
        out, err = proc.stdout.read(), proc.stderr.read()
        relays = sum(cpu_seconds(p) for p in pids) - before
    if status != 0:
        raise SystemExit(f"tls_cpu: {' '.join(cmd[:2])} failed: {err.strip()[-800:]}")
    rate = json.loads([l for l in out.splitlines() if l.startswith("{")][0])["stream_msgs_per_s"]
    ends = usage.ru_utime + usage.ru_stime
    return {"relays": relays / count * 1e6, "ends": ends / count * 1e6, "total": (relays + ends) / count * 1e6, "rate": rate}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bin", action="append", required=True, help="NAME=PATH of a release dagent (dagent-bench next to it)")
    ap.add_argument("--env", action="append", default=[], help="NAME=KEY=VALUE: run build NAME with KEY=VALUE set")
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--count", type=int, default=300000)
    args = ap.parse_args()
    builds = [b.split("=", 1) for b in args.bin]
    envs = {name: {} for name, _ in builds}
    for e in args.env:
        name, key, value = e.split("=", 2)
        if name not in envs:
            raise SystemExit(f"tls_cpu: --env {e}: no --bin named {name}")
        envs[name][key] = value
    logdir = tempfile.mkdtemp(prefix="dagent-tls-cpu.")
    certs = tls_bench.make_certs(builds[0][1], logdir)
    results = {(name, tls): [] for name, _ in builds for tls in (False, True)}
    for rnd in range(1, args.rounds + 1):
        for name, path in builds:
            for tls in (False, True):
                r = measure(path, tls, certs, logdir, args.size, args.count, envs[name])
                results[(name, tls)].append(r)
                print(f"round {rnd}: {name} {'tls' if tls else 'plain'}: {r['relays']:.2f} + {r['ends']:.2f} = "
                      f"{r['total']:.2f} µs/msg ({r['rate']:,} msgs/s)", file=sys.stderr, flush=True)
    shutil.rmtree(logdir, ignore_errors=True)
    print(f"\nCPU per message, {args.size} B stream of {args.count} messages, medians of {args.rounds} rounds (µs)\n")
    print("| build | link | relays (3) | endpoints | total | TLS cost in CPU | stream (msgs/s) |")
    print("|---|---|---|---|---|---|---|")
    for name, _ in builds:
        med = {tls: {k: statistics.median(r[k] for r in results[(name, tls)]) for k in ("relays", "ends", "total", "rate")}
               for tls in (False, True)}
        for tls in (False, True):
            m = med[tls]
            cost = f"+{(med[True]['total'] / med[False]['total'] - 1) * 100:.0f}%" if tls else ""
            print(f"| {name} | {'TLS' if tls else 'plaintext'} | {m['relays']:.2f} | {m['ends']:.2f} | {m['total']:.2f} | {cost} | {m['rate']:,.0f} |")


if __name__ == "__main__":
    main()
