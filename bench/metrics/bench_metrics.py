#!/usr/bin/env python3
"""scripts/bench --suite metrics: what dagent.report.inc costs next to prometheus_client's
Counter.inc in the same interpreter, and how long a scrape of 100,000 series takes on a node's
/metrics (Swift registry) and on the collector's /metrics/tree (prometheus_client).
Prints a Markdown table; medians of ROUNDS."""
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def inc_costs(rounds, n=200_000):
    from prometheus_client import CollectorRegistry, Counter
    from dagent.report import Registry
    reg = CollectorRegistry()
    pc = Counter("bench_jobs", "jobs", registry=reg)
    pcl = Counter("bench_jobs_l", "jobs", ["kind"], registry=reg)
    child = pcl.labels(kind="a")
    r = Registry()
    r.inc("bench_jobs_total")
    r.inc("bench_jobs_l_total", kind="a")
    cases = {
        "prometheus_client Counter.inc()": lambda: pc.inc(),
        "dagent.report.inc(name)": lambda: r.inc("bench_jobs_total"),
        "prometheus_client Counter.labels(kind=).inc()": lambda: pcl.labels(kind="a").inc(),
        "prometheus_client child.inc() (labels bound once)": lambda: child.inc(),
        "dagent.report.inc(name, kind=)": lambda: r.inc("bench_jobs_l_total", kind="a"),
    }
    out = {}
    for name, fn in cases.items():
        out[name] = statistics.median(timeit.timeit(fn, number=n) / n * 1e9 for _ in range(rounds))
    return out


def get(url):
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as resp:
        body = resp.read()
    return time.perf_counter() - t0, body


def scrape_costs(binary, rounds, series=100_000):
    work = tempfile.mkdtemp(prefix="dagent-bench-metrics.")
    plug = os.path.join(work, "plugins")
    os.makedirs(plug)
    with open(os.path.join(plug, "many.py"), "w") as f:
        f.write(f"""import dagent
dagent.report.REGISTRY.max_series = {series}
for i in range({series}):
    dagent.report.inc("bench_series_total", i, id=str(i))
""")
    os.symlink(os.path.join(ROOT, "plugins", "collector"), os.path.join(plug, "collector"))
    port, http = free_port(), free_port()
    cfg = os.path.join(work, "node.yaml")
    with open(cfg, "w") as f:
        f.write(f"name: col\nlisten: tcp://127.0.0.1:{port}\nhttp: tcp://127.0.0.1:{http}\n"
                f"metrics: {{max_series: {series + 1000}, report_to: col, report_interval: 0.5}}\n"
                f"plugins: {{dirs: [{plug}], config: {{collector: {{max_series: {series * 2}}}}}}}\n")
    p = subprocess.Popen([binary, "run", "--config", cfg], stderr=open(os.path.join(work, "node.log"), "w"))
    base = f"http://127.0.0.1:{http}"
    try:
        deadline = time.time() + 120
        while time.time() < deadline:
            try:
                _, body = get(base + "/metrics/tree")
                if body.count(b"bench_series_total{") >= series:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            raise SystemExit("bench: the collector never held all the series; see " + work)
        node = [get(base + "/metrics")[0] for _ in range(rounds)]
        tree = [get(base + "/metrics/tree")[0] for _ in range(rounds)]
        return {"node /metrics (Swift registry)": statistics.median(node),
                "collector /metrics/tree (prometheus_client)": statistics.median(tree)}
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)


def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--series", type=int, default=100_000)
    a = ap.parse_args()
    costs = inc_costs(a.rounds)
    base = costs["prometheus_client Counter.inc()"]
    print(f"\nCost of one update, same interpreter ({sys.version.split()[0]}), medians of {a.rounds} rounds of 200,000\n")
    print("| call | ns | vs prometheus_client Counter.inc() |")
    print("|---|---|---|")
    for k, v in costs.items():
        print(f"| `{k}` | {v:.0f} | {v / base:.2f}× |")
    scrapes = scrape_costs(a.binary, a.rounds, a.series)
    print(f"\nScrape of {a.series:,} series (one node reporting to its own collector), medians of {a.rounds}\n")
    print("| endpoint | seconds |")
    print("|---|---|")
    for k, v in scrapes.items():
        print(f"| {k} | {v:.3f} |")
    print(json.dumps({"inc_ns": costs, "scrape_s": scrapes}))


if __name__ == "__main__":
    main()
