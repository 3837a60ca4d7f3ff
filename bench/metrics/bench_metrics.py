#!/usr/bin/python3
"""scripts/bench --suite metrics: what dagent.report.inc costs next to prometheus_client's
Counter.inc in the same interpreter, and how long a scrape of 100,000 series takes on a node's
/metrics (Swift registry) and on the collector's /metrics/tree (prometheus_client).
Prints a Markdown table; medians of ROUNDS."""
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import timeit
import urllib.request

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))
sys.path.insert(0, os.path.join(ROOT, "bench"))
from benchlib import free_port  # noqa: E402


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
    from dagent.report import _Handle
    bound = _Handle(r, "bench_jobs_b_total", "counter", "jobs", ["kind"]).labels(kind="a")
    cases = {
        "prometheus_client Counter.inc()": lambda: pc.inc(),
        "dagent.report.inc(name)": lambda: r.inc("bench_jobs_total"),
        "prometheus_client Counter.labels(kind=).inc()": lambda: pcl.labels(kind="a").inc(),
        "prometheus_client child.inc() (labels bound once)": lambda: child.inc(),
        "dagent.report.inc(name, kind=)": lambda: r.inc("bench_jobs_l_total", kind="a"),
        "dagent.report handle.labels(kind=) bound once, .inc()": lambda: bound.inc(),
    }
    out = {}
    for name, fn in cases.items():
        out[name] = statistics.median(timeit.timeit(fn, number=n) / n * 1e9 for _ in range(rounds))
    return out


def cpu_seconds(pid):
    """User + system CPU time of a process so far (/proc, clock ticks)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def quiet(pid, rate=0.05, window=1.0, timeout=60):
    """Waits until the process uses less than `rate` of a core over `window` seconds (its reporter,
    the collector applying a change set and its history run in the background); returns the rate."""
    deadline = time.time() + timeout
    while True:
        c0 = cpu_seconds(pid)
        time.sleep(window)
        used = (cpu_seconds(pid) - c0) / window
        if used < rate or time.time() > deadline:
            return used


def timed(pid, url):
    """(wall seconds, CPU seconds the serving process used) of one GET, once the process is quiet: on
    a loaded machine the CPU time is what the scrape costs, the wall time what the scraper waited."""
    quiet(pid)
    c0 = cpu_seconds(pid)
    wall, _ = get(url)
    return wall, cpu_seconds(pid) - c0


def get(url):
    t0 = time.perf_counter()
    with urllib.request.urlopen(url, timeout=60) as resp:
        body = resp.read()
    return time.perf_counter() - t0, body


def scrape_costs(binary, rounds, series=100_000):
    """A node whose plugin holds `series` series: the time of GET /metrics (the Swift registry)."""
    work = tempfile.mkdtemp(prefix="dagent-bench-metrics.")
    plug = os.path.join(work, "plugins")
    os.makedirs(plug)
    with open(os.path.join(plug, "many.py"), "w") as f:
        f.write(f"""import dagent
dagent.report.REGISTRY.max_series = {series}
for i in range({series}):
    dagent.report.inc("bench_series_total", i + 1, id=str(i))

@dagent.on(90)
def bump(msg):
    dagent.report.inc("bench_series_total", 1, id="0")   # one series changes: /metrics/tree re-renders that series
    return b"ok"

@dagent.on(91)
def bump_all(msg):
    for i in range({series}):
        dagent.report.inc("bench_series_total", 1, id=str(i))   # every series changes
    return b"ok"
""")
    os.symlink(os.path.join(ROOT, "plugins", "collector"), os.path.join(plug, "collector"))
    port, http = free_port(), free_port()
    cfg = os.path.join(work, "node.yaml")
    with open(cfg, "w") as f:
        f.write(f"name: big\nlisten: tcp://127.0.0.1:{port}\nhttp: tcp://127.0.0.1:{http}\nhttp_handler_timeout: 300\n"
                f"metrics: {{max_series: {series + 1000}, report_to: big, report_interval: 1.0}}\n"
                f"plugins: {{dirs: [{plug}], handler_budget: 60, config: {{collector: {{max_series: {series + 1000}, "
                f"history_max_series: 100, publish: false, down_after: 600}}}}}}\n")
    p = subprocess.Popen([binary, "run", "--config", cfg], stderr=open(os.path.join(work, "node.log"), "w"))
    base = f"http://127.0.0.1:{http}"
    try:
        deadline = time.time() + 300
        while time.time() < deadline:
            try:
                _, body = get(base + "/metrics")
                if body.count(b"bench_series_total{") >= series:
                    break
            except OSError:
                pass
            time.sleep(0.5)
        else:
            raise SystemExit("bench: the node never held all the series; see " + work)
        node = [timed(p.pid, base + "/metrics") for _ in range(rounds)]
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
        def reports():
            return sum(n["reports"] for n in json.loads(get(base + "/api/collector/nodes")[1]))

        def change(kind):
            """Has the plugin change one series (90) or all (91); waits until the collector has it (the next report)."""
            subprocess.run([binary, "request", "--via", f"tcp://127.0.0.1:{port}", "--to", "big", "--type", kind, "x",
                            "--timeout", "60"], capture_output=True, timeout=90)
            before, t_end = reports(), time.time() + 60
            while time.time() < t_end and reports() < before + 2:   # two reports: the change is in
                time.sleep(0.05)

        get(base + "/metrics/tree")
        warm, cold, every = [], [], []
        for _ in range(rounds):
            warm.append(timed(p.pid, base + "/metrics/tree"))
            change("90")
            cold.append(timed(p.pid, base + "/metrics/tree"))
            change("91")
            every.append(timed(p.pid, base + "/metrics/tree"))
        med = lambda xs: (statistics.median(x[0] for x in xs), statistics.median(x[1] for x in xs))
        return {"node /metrics (Swift registry)": med(node),
                "collector /metrics/tree, one series changed since the last scrape": med(cold),
                "collector /metrics/tree, every series changed since the last scrape": med(every),
                "collector /metrics/tree, nothing changed since the last scrape": med(warm)}
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)


HAMMER = """import dagent, time
N, SERIES = {n}, {series}
# bound once, as the pushgateway side binds prometheus_client's children
h = dagent.report.counter("hammer_total", help="h", labels=["id"])
children = [h.labels(id=str(i)) for i in range(SERIES)]
done = 0
def burst():
    global done
    if done >= N:
        return
    k = min(20000, N - done)
    for i in range(k):
        children[i % SERIES].inc()
    done += k
    dagent.after(0, burst)
def setup():
    dagent.after(0.5, burst)
"""


def collector_updates(binary, n, series=100, reporters=4):
    """4 reporter nodes, each doing n report.inc calls over `series` series, into one collector:
    updates/s = 4n / (time until the collector holds them all, from the first inc)."""
    work = tempfile.mkdtemp(prefix="dagent-bench-updates.")
    col_plug, rep_plug = os.path.join(work, "col"), os.path.join(work, "rep")
    os.makedirs(col_plug)
    os.makedirs(rep_plug)
    os.symlink(os.path.join(ROOT, "plugins", "collector"), os.path.join(col_plug, "collector"))
    with open(os.path.join(rep_plug, "hammer.py"), "w") as f:
        f.write(HAMMER.format(n=n, series=series))
    port, http = free_port(), free_port()
    procs = [subprocess.Popen([binary, "run", "--name", "col", "--listen", f"tcp://127.0.0.1:{port}", "--http",
                               f"tcp://127.0.0.1:{http}", "--plugins", col_plug], stderr=open(os.path.join(work, "col.log"), "w"))]
    try:
        wait_http(f"http://127.0.0.1:{http}/api/collector/nodes")
        t0 = time.perf_counter()
        for i in range(reporters):
            procs.append(subprocess.Popen([binary, "run", "--name", f"r{i}", "--parent", f"tcp://127.0.0.1:{port}",
                                           "--report-to", "col", "--report-interval", "0.2", "--plugins", rep_plug],
                                          stderr=open(os.path.join(work, f"r{i}.log"), "w")))
        want = reporters * n
        first = None
        while time.perf_counter() - t0 < 300:
            nodes = json.loads(get(f"http://127.0.0.1:{http}/api/collector/nodes")[1])
            if first is None and len(nodes) == reporters:
                first = time.perf_counter()
            _, body = get(f"http://127.0.0.1:{http}/metrics/tree")
            total = sum(float(l.rsplit(" ", 1)[1]) for l in body.decode().splitlines() if l.startswith("hammer_total{"))
            if total >= want:
                end = time.perf_counter()
                # the reporters start their bursts 0.5 s after their plugins loaded (~ when they first report)
                return want / (end - (first or t0) + 0.2), total
            time.sleep(0.05)
        raise SystemExit("bench: the collector never reached the total; see " + work)
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=30)


PUSHER = """import sys, time
from prometheus_client import CollectorRegistry, Counter, push_to_gateway
reg = CollectorRegistry()
c = Counter("hammer", "h", ["id"], registry=reg)
children = [c.labels(id=str(i)) for i in range({series})]
pushes, deadline = 0, time.time() + {seconds}
while time.time() < deadline:
    for ch in children:
        ch.inc()
    push_to_gateway("127.0.0.1:{port}", job="w{{}}".format(sys.argv[1]), registry=reg)
    pushes += 1
print(pushes)
"""


def pushgateway_updates(seconds=5, series=100, reporters=4):
    """The same 4 reporters pushing their 100 series to prometheus-pushgateway as fast as it takes
    them: updates/s = series values accepted per second."""
    if not shutil.which("prometheus-pushgateway"):
        return None
    with pushgateway() as (port, _):
        script = PUSHER.format(series=series, seconds=seconds, port=port)
        ps = [subprocess.Popen(["/usr/bin/python3", "-c", script, str(i)], stdout=subprocess.PIPE, text=True)
              for i in range(reporters)]
        pushes = sum(int(p.communicate(timeout=seconds + 60)[0].strip() or 0) for p in ps)
        return pushes * series / seconds


@contextlib.contextmanager
def pushgateway():
    """A prometheus-pushgateway on a free loopback port, up and answering: yields (port, pid)."""
    work = tempfile.mkdtemp(prefix="dagent-bench-pgw.")
    port = free_port()
    gw = subprocess.Popen([shutil.which("prometheus-pushgateway"), f"--web.listen-address=127.0.0.1:{port}",
                           f"--persistence.file={work}/p"], stderr=open(os.path.join(work, "gw.log"), "w"))
    try:
        wait_http(f"http://127.0.0.1:{port}/metrics")
        yield port, gw.pid
    finally:
        gw.send_signal(signal.SIGTERM)
        gw.wait(timeout=20)


def scrape_peers(rounds, series=100_000):
    """The same 100k series exposed by the peers: prometheus_client's generate_latest in this
    interpreter (a Counter with `series` children), and prometheus-pushgateway's /metrics holding
    them (one push). (wall, CPU) seconds; for the pushgateway the CPU time of its process."""
    from prometheus_client import CollectorRegistry, Counter, generate_latest, push_to_gateway
    reg = CollectorRegistry()
    c = Counter("bench_series", "series", ["id"], registry=reg)
    for i in range(series):
        c.labels(id=str(i)).inc(i + 1)
    runs = []
    for _ in range(rounds):
        c0, t0 = time.process_time(), time.perf_counter()
        generate_latest(reg)
        runs.append((time.perf_counter() - t0, time.process_time() - c0))
    out = {"prometheus_client generate_latest (same interpreter)":
           (statistics.median(r[0] for r in runs), statistics.median(r[1] for r in runs))}
    if not shutil.which("prometheus-pushgateway"):
        return out
    with pushgateway() as (port, pid):
        push_to_gateway(f"127.0.0.1:{port}", job="bench", registry=reg, timeout=120)
        get(f"http://127.0.0.1:{port}/metrics")
        runs = [timed(pid, f"http://127.0.0.1:{port}/metrics") for _ in range(rounds)]
        out["prometheus-pushgateway /metrics (one push of them)"] = (statistics.median(r[0] for r in runs),
                                                                    statistics.median(r[1] for r in runs))
    return out


def wait_http(url, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            get(url)
            return
        except OSError:
            time.sleep(0.1)
    raise SystemExit(f"bench: {url} never answered")


def print_scrapes(a):
    scrapes = scrape_costs(a.binary, a.rounds, a.series)
    peers = scrape_peers(a.rounds, a.series)
    print(f"\nScrape of {a.series:,} series (one node reporting to its own collector; the peers hold the same "
          f"series), medians of {a.rounds}\n")
    print("| endpoint | wall seconds | CPU seconds (the serving process) |")
    print("|---|---|---|")
    for k, (wall, cpu) in list(scrapes.items()) + list(peers.items()):
        print(f"| {k} | {wall:.3f} | {cpu:.2f} |")
    scrapes.update(peers)
    return scrapes


def main():
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--binary", required=True)
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--series", type=int, default=100_000)
    ap.add_argument("--updates", type=int, default=2_000_000, help="report.inc calls per reporter")
    ap.add_argument("--only", choices=["scrape"], help="run only this part")
    a = ap.parse_args()
    if a.only == "scrape":
        print_scrapes(a)
        return
    costs = inc_costs(a.rounds)
    base = costs["prometheus_client Counter.inc()"]
    print(f"\nCost of one update, same interpreter ({sys.version.split()[0]}), medians of {a.rounds} rounds of 200,000\n")
    print("| call | ns | vs prometheus_client Counter.inc() |")
    print("|---|---|---|")
    for k, v in costs.items():
        print(f"| `{k}` | {v:.0f} | {v / base:.2f}× |")
    upd = [collector_updates(a.binary, a.updates)[0] for _ in range(a.rounds)]
    pgw = [pushgateway_updates() for _ in range(a.rounds)]
    print(f"\nUpdates/s from 4 reporter processes (100 series each), medians of {a.rounds}\n")
    print("| into | updates/s | what an update is |")
    print("|---|---|---|")
    print(f"| dagent collector (report.inc in 4 plugins, report_interval 0.2 s) | {statistics.median(upd):,.0f} | one `report.inc` call, aggregated on its node |")
    if pgw[0] is not None:
        print(f"| prometheus-pushgateway (push_to_gateway in a loop) | {statistics.median(pgw):,.0f} | one series value in a push |")
    scrapes = print_scrapes(a)
    print(json.dumps({"inc_ns": costs, "scrape_s": scrapes, "collector_updates_per_s": upd, "pushgateway_updates_per_s": pgw}))


if __name__ == "__main__":
    main()
