"""Metrics with real processes: /metrics on a node, reporters into the collector plugin, a real
Prometheus server scraping both, promtool on every endpoint, kill -9 and restart, bad input."""
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from conftest import dagent_binary, free_port, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
D = dagent_binary()
PROMTOOL = shutil.which("promtool")
PROMETHEUS = shutil.which("prometheus")


def get(url, accept=None):
    req = urllib.request.Request(url, headers={"Accept": accept} if accept else {})
    with urllib.request.urlopen(req, timeout=10) as r:
        return r.read().decode()


def samples(text):
    """{(name, frozenset(labels)): value} from Prometheus text."""
    from prometheus_client.parser import text_string_to_metric_families
    out = {}
    for fam in text_string_to_metric_families(text):
        for s in fam.samples:
            out[(s.name, frozenset(s.labels.items()))] = s.value
    return out


def value(text, name, **labels):
    return samples(text).get((name, frozenset(labels.items())))


def promtool(text, workdir, what):
    if not PROMTOOL:
        pytest.fail("promtool is missing (scripts/setup installs Debian's prometheus)")
    r = subprocess.run([PROMTOOL, "check", "metrics"], input=text, capture_output=True, text=True)
    assert r.returncode == 0, f"promtool on {what}: {r.stdout}{r.stderr}"


def openmetrics(text):
    from prometheus_client.openmetrics.parser import text_string_to_metric_families
    fams = list(text_string_to_metric_families(text))
    assert fams, "no families"
    return fams


class Tree:
    def __init__(self, workdir, collector="{down_after: 1.0, grace: 2.0}"):
        self.workdir = workdir
        self.procs = {}
        self.port = free_port()
        self.http = free_port()
        plugdir = os.path.join(workdir, "collector-plugins")
        os.makedirs(plugdir)
        os.symlink(os.path.join(ROOT, "plugins", "collector"), os.path.join(plugdir, "collector"))
        cfg = os.path.join(workdir, "col.yaml")
        with open(cfg, "w") as f:
            f.write(f"name: col\nlisten: tcp://127.0.0.1:{self.port}\nhttp: tcp://127.0.0.1:{self.http}\n"
                    f"plugins:\n  dirs: [{plugdir}]\n  config:\n    collector: {collector}\n")
        self.start("col", [D, "run", "--config", cfg])
        self.base = f"http://127.0.0.1:{self.http}"
        wait_for("the collector", lambda: get(self.base + "/api/collector/nodes") is not None)

    def start(self, name, argv):
        self.procs[name] = subprocess.Popen(argv, stderr=open(os.path.join(self.workdir, f"{name}.log"), "a"))

    def leaf(self, name, http=None):
        argv = [D, "run", "--name", name, "--parent", f"tcp://127.0.0.1:{self.port}", "--report-to", "col",
                "--report-interval", "0.2", "--plugins", os.path.join(HERE, "metrics_plugin")]
        if http:
            argv += ["--http", f"tcp://127.0.0.1:{http}"]
        self.start(name, argv)

    def ask(self, name, t, data, timeout=5):
        r = subprocess.run([D, "request", "--via", f"tcp://127.0.0.1:{self.port}", "--to", name, "--type", str(t),
                            "--timeout", str(timeout), data], capture_output=True, text=True, timeout=timeout + 10)
        return r

    def tree_text(self):
        return get(self.base + "/metrics/tree")

    def stop(self):
        for p in self.procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()


@pytest.fixture
def tree(workdir):
    t = Tree(workdir)
    yield t
    t.stop()


def test_five_nodes_sum_kill_and_restart(tree, workdir):
    node_http = free_port()
    for i in range(5):
        tree.leaf(f"n{i}", http=node_http if i == 0 else None)
    for i in range(5):
        wait_for(f"n{i}'s plugin", lambda i=i: tree.ask(f"n{i}", 60, "5").returncode == 0)
    # Every node asked once (5): the tree sums to 25.
    def total():
        s = samples(tree.tree_text())
        return sum(v for (n, l), v in s.items() if n == "test_jobs_total")
    wait_for("the sum of 5 nodes", lambda: total() == 25)
    text = tree.tree_text()
    assert value(text, "dagent_node_up", node="n3") == 1
    assert value(text, "test_jobs_total", node="n0", kind="a") == 5
    assert value(text, "test_temperature_celsius", node="n1") == 25
    assert value(text, "test_job_seconds_count", node="n2") == 1
    assert value(text, "dagent_messages_delivered_total", node="n0") >= 1, "core figures are reported too"
    assert value(text, "dagent_rpc_duration_seconds_count", node="n0", outcome="ok") >= 1, "reports are requests: timed"
    promtool(text, workdir, "/metrics/tree")
    # promtool 2.42 reads the 0.0.4 text format only; OpenMetrics goes through prometheus_client's strict parser.
    openmetrics(get(tree.base + "/metrics/tree", accept="application/openmetrics-text; version=1.0.0"))
    # The node's own /metrics.
    own = get(f"http://127.0.0.1:{node_http}/metrics")
    wait_for("n0's own registry", lambda: value(get(f"http://127.0.0.1:{node_http}/metrics"), "test_jobs_total", kind="a") == 5)
    promtool(own, workdir, "n0 /metrics")
    om = get(f"http://127.0.0.1:{node_http}/metrics", accept="application/openmetrics-text; version=1.0.0")
    assert om.endswith("# EOF\n") and "# TYPE test_jobs counter" in om
    openmetrics(om)
    promtool(get(tree.base + "/metrics"), workdir, "col /metrics")

    # kill -9 n3: up goes to 0, then its series go after the grace period.
    tree.procs["n3"].send_signal(signal.SIGKILL)
    tree.procs["n3"].wait()
    wait_for("n3 down", lambda: value(tree.tree_text(), "dagent_node_up", node="n3") == 0)
    wait_for("n3's series gone", lambda: value(tree.tree_text(), "test_jobs_total", node="n3", kind="a") is None)
    assert value(tree.tree_text(), "dagent_node_up", node="n3") == 0

    # kill -9 n4 and restart it at once: its counter goes on, nothing counted twice.
    tree.procs["n4"].send_signal(signal.SIGKILL)
    tree.procs["n4"].wait()
    tree.leaf("n4")
    wait_for("n4 again", lambda: tree.ask("n4", 60, "3").returncode == 0)
    wait_for("n4 resumed", lambda: value(tree.tree_text(), "test_jobs_total", node="n4", kind="a") == 8)
    time.sleep(0.6)  # three more report intervals: the value must not move (no double counting)
    assert value(tree.tree_text(), "test_jobs_total", node="n4", kind="a") == 8
    assert value(tree.tree_text(), "dagent_node_up", node="n4") == 1


def test_plugin_handler_time_and_errors(tree, workdir):
    """dagent_plugin_handler_seconds{plugin} (a histogram from the plugin host) and
    dagent_plugin_errors_total{plugin} on the node's /metrics and at the collector."""
    node_http = free_port()
    tree.leaf("h0", http=node_http)
    wait_for("h0's plugin", lambda: tree.ask("h0", 60, "1").returncode == 0)
    for _ in range(4):
        assert tree.ask("h0", 60, "1").returncode == 0
    r = tree.ask("h0", 62, "-")
    assert r.returncode != 0 and "test_metrics asked this handler to fail" in r.stderr, r.stderr
    url = f"http://127.0.0.1:{node_http}/metrics"
    wait_for("the handler time", lambda: (value(get(url), "dagent_plugin_handler_seconds_count", plugin="reporter") or 0) >= 6)
    wait_for("the error count", lambda: value(get(url), "dagent_plugin_errors_total", plugin="reporter") == 1)
    text = get(url)
    promtool(text, workdir, "h0 /metrics with the handler histogram")
    count = value(text, "dagent_plugin_handler_seconds_count", plugin="reporter")
    assert value(text, 'dagent_plugin_handler_seconds_bucket', plugin="reporter", le="+Inf") == count
    total = value(text, "dagent_plugin_handler_seconds_sum", plugin="reporter")
    assert 0 < total < count * 1.0, f"{count} handlers took {total}s in all"
    assert "# TYPE dagent_plugin_handler_seconds histogram" in text
    wait_for("the histogram at the collector", lambda: (value(tree.tree_text(), "dagent_plugin_handler_seconds_count",
                                                               node="h0", plugin="reporter") or 0) >= 6)
    promtool(tree.tree_text(), workdir, "/metrics/tree with the handler histogram")


def test_a_node_gone_from_the_tree_goes_down_at_once(workdir):
    """The collector hears from the tree that a node's name is gone (kill -9: its parent withdraws
    it), long before down_after (60 s here) would notice that its reports stopped."""
    t = Tree(workdir, collector="{down_after: 60.0, grace: 1.0, tree_check: 0.2}")
    try:
        for name in ("g0", "g1"):
            t.leaf(name)
        for name in ("g0", "g1"):
            wait_for(f"{name}'s plugin", lambda name=name: t.ask(name, 60, "2").returncode == 0)
        wait_for("both at the collector", lambda: all(value(t.tree_text(), "test_jobs_total", node=n, kind="a") == 2
                                                      for n in ("g0", "g1")))
        t.procs["g1"].send_signal(signal.SIGKILL)
        t.procs["g1"].wait()
        killed = time.monotonic()
        wait_for("g1 down", lambda: value(t.tree_text(), "dagent_node_up", node="g1") == 0, timeout=20)
        assert time.monotonic() - killed < 30, "down from the tree's no route, not from down_after"
        wait_for("g1's series gone", lambda: value(t.tree_text(), "test_jobs_total", node="g1", kind="a") is None, timeout=20)
        text = t.tree_text()
        assert value(text, "dagent_node_up", node="g1") == 0
        assert value(text, "dagent_node_up", node="g0") == 1 and value(text, "test_jobs_total", node="g0", kind="a") == 2
        nodes = {n["node"]: n for n in json.loads(get(t.base + "/api/collector/nodes"))}
        assert nodes["g1"]["down_reason"] == "gone from the tree" and nodes["g0"]["up"]
        log = open(os.path.join(workdir, "col.log")).read()
        assert "collector: node 'g1' is gone from the tree" in log, log[-2000:]
        # It comes back: up again with its next report.
        t.leaf("g1")
        wait_for("g1 up again", lambda: value(t.tree_text(), "dagent_node_up", node="g1") == 1, timeout=20)
    finally:
        t.stop()


def test_a_standalone_python_program_reports_to_the_collector(tree, workdir):
    """`import dagent` in a program of its own (the C API): dagent.report goes to the collector with
    report_to, shows at /metrics/tree with its node label, and goes down when the program is killed."""
    env = {**os.environ, "DAGENT_PYTHON_PATH": os.path.join(ROOT, "python"), "PYTHONPATH": os.path.join(ROOT, "python")}
    script = os.path.join(HERE, "standalone_reporter.py")
    tree.procs["sa1"] = subprocess.Popen([sys.executable, script, "sa1", f"tcp://127.0.0.1:{tree.port}", "col"], env=env,
                                         stdout=subprocess.PIPE, stderr=open(os.path.join(workdir, "sa1.log"), "a"), text=True)
    assert tree.procs["sa1"].stdout.readline().strip() == "ready", open(os.path.join(workdir, "sa1.log")).read()
    for k in (2, 5):
        r = tree.ask("sa1", 70, str(k))
        assert r.returncode == 0 and r.stdout.strip() == "ok", r.stderr
    own = tree.ask("sa1", 71, "-").stdout
    assert 'sa_jobs_total{kind="k"} 7' in own and "sa_job_seconds_count 2" in own, own
    wait_for("sa1 at the collector", lambda: value(tree.tree_text(), "sa_jobs_total", node="sa1", kind="k") == 7)
    text = tree.tree_text()
    assert value(text, "sa_job_seconds_count", node="sa1") == 2
    assert value(text, "sa_job_seconds_bucket", node="sa1", le="0.1") == 0
    assert value(text, "sa_job_seconds_bucket", node="sa1", le="1.0") == 2
    assert value(text, "sa_queue_depth", node="sa1") == 3
    assert value(text, "dagent_node_up", node="sa1") == 1
    promtool(text, workdir, "/metrics/tree with a standalone program's series")
    tree.procs["sa1"].send_signal(signal.SIGKILL)
    tree.procs["sa1"].wait()
    wait_for("sa1 down", lambda: value(tree.tree_text(), "dagent_node_up", node="sa1") == 0)


def test_prometheus_scrapes_a_node_and_the_collector(tree, workdir):
    if not PROMETHEUS:
        pytest.fail("prometheus is missing (scripts/setup installs Debian's prometheus)")
    node_http, prom_port = free_port(), free_port()
    tree.leaf("p0", http=node_http)
    wait_for("p0's plugin", lambda: tree.ask("p0", 60, "7").returncode == 0)
    cfg = os.path.join(workdir, "prometheus.yml")
    with open(cfg, "w") as f:
        f.write(f"""global: {{scrape_interval: 1s, evaluation_interval: 1s}}
scrape_configs:
  - job_name: node
    static_configs: [{{targets: ["127.0.0.1:{node_http}"]}}]
  - job_name: tree
    metrics_path: /metrics/tree
    honor_labels: true
    static_configs: [{{targets: ["127.0.0.1:{tree.http}"]}}]
""")
    tree.start("prometheus", [PROMETHEUS, f"--config.file={cfg}", f"--storage.tsdb.path={workdir}/tsdb",
                              f"--web.listen-address=127.0.0.1:{prom_port}"])

    def query(q):
        url = f"http://127.0.0.1:{prom_port}/api/v1/query?" + urllib.parse.urlencode({"query": q})
        r = json.loads(get(url))
        return [(x["metric"], float(x["value"][1])) for x in r["data"]["result"]]

    wait_for("prometheus scraped the node", lambda: query('test_jobs_total{job="node",kind="a"}')[0][1] == 7, timeout=40)
    wait_for("prometheus scraped the tree", lambda: query('test_jobs_total{job="tree",node="p0"}')[0][1] == 7, timeout=40)
    up = query('dagent_node_up{node="p0"}')
    assert up and up[0][1] == 1
    targets = json.loads(get(f"http://127.0.0.1:{prom_port}/api/v1/targets"))["data"]["activeTargets"]
    assert all(t["health"] == "up" for t in targets), targets


def test_bad_input_and_a_collector_that_is_down(tree, workdir):
    tree.leaf("b0")
    wait_for("b0's plugin", lambda: tree.ask("b0", 60, "1").returncode == 0)
    r = tree.ask("b0", 61, "-")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.strip().splitlines()
    assert "not a Prometheus name" in lines[0]
    assert "is a counter; it cannot be used as a gauge" in lines[1]
    assert "MAX_SERIES=1000" in lines[2]
    # A node whose collector does not exist: a clear log line, the node goes on, memory stays flat.
    tree.start("lonely", [D, "run", "--name", "lonely", "--parent", f"tcp://127.0.0.1:{tree.port}", "--report-to", "nobody",
                          "--report-interval", "0.05", "--plugins", os.path.join(HERE, "metrics_plugin")])
    log = os.path.join(workdir, "lonely.log")
    wait_for("the report failure", lambda: "report to collector 'nobody' failed" in open(log).read())
    assert "no route" in open(log).read()

    def rss():
        with open(f"/proc/{tree.procs['lonely'].pid}/status") as f:
            return next(int(l.split()[1]) for l in f if l.startswith("VmRSS"))
    wait_for("lonely's plugin", lambda: tree.ask("lonely", 60, "1").returncode == 0)
    before = rss()
    deadline = time.time() + 3
    while time.time() < deadline:
        assert tree.ask("lonely", 60, "1").returncode == 0
    assert rss() - before < 8 * 1024, f"RSS grew from {before} kB to {rss()} kB while its reports failed"
    assert tree.procs["lonely"].poll() is None
