"""collector: gathers the metrics of every node that reports to it (``metrics.report_to: THIS_NODE``).

Serves, on the agent's HTTP listener:

* ``/metrics/tree`` — every node's series with a ``node`` label, plus ``dagent_node_up{node}``,
  rendered by ``prometheus_client`` (text 0.0.4, or OpenMetrics when the scraper asks for it);
* ``/dashboard/`` — a live page (Chart.js) of the nodes and the chosen metrics;
* ``/api/collector/nodes``, ``/api/collector/metrics``, ``/api/collector/series?metric=NAME`` —
  JSON for the page (the last ``history_seconds`` at ``history_step`` seconds).

Reports are requests of type ``dagent.report.REPORT_TYPE`` carrying statsd-style change sets
(counters as sums of increments, gauges as last values, histograms as merged buckets), so a
restarted node's counters go on from where the collector had them, never counted twice. A node
whose reports stop for ``down_after`` seconds (or that said goodbye with a final report) gets
``dagent_node_up 0``; so does a node whose name the tree no longer holds (withdrawn or expired):
every ``tree_check`` seconds the collector sends each node that is up a presence probe
(``PROBE_TYPE``), and a ``no route`` from the tree marks it down at once. After ``grace`` more
seconds a down node's series go (its up gauge stays at 0).

Config (``plugins.config.collector``): ``down_after`` (3 s), ``grace`` (30 s),
``history_seconds`` (600), ``history_step`` (1 s), ``history_max_series`` (5000),
``max_series`` (100000: series over all nodes; a report past it is refused with the count),
``tree_check`` (1 s; 0 turns the presence probes off), ``tree_check_timeout`` (2 s).
"""
import collections
import json
import os
import threading
import time

import dagent

try:
    from prometheus_client import CollectorRegistry, generate_latest
    from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
    from prometheus_client.samples import Sample
    from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
except ImportError as exc:  # pragma: no cover - a clear setup error
    raise ImportError("the collector plugin needs prometheus_client (Debian: python3-prometheus-client)") from exc

CONFIG = dagent.Config(
    down_after=dagent.Option(float, default=3.0, min=0.1, help="seconds without a report before a node is down"),
    grace=dagent.Option(float, default=30.0, min=0.0, help="seconds a down node's series stay"),
    history_seconds=dagent.Option(float, default=600.0, min=1.0, help="time series kept for the dashboard"),
    history_step=dagent.Option(float, default=1.0, min=0.1, help="seconds between time series points"),
    history_max_series=dagent.Option(int, default=5000, min=1, help="series with a time series"),
    max_series=dagent.Option(int, default=100000, min=1, help="series over all nodes"),
    tree_check=dagent.Option(float, default=1.0, min=0.0, help="seconds between presence probes to each node that is up; a 'no route' from the tree (its name withdrawn or expired) marks it down at once (0: off)"),
    tree_check_timeout=dagent.Option(float, default=2.0, min=0.1, help="seconds a presence probe waits; no answer decides nothing (the reports' down_after does)"),
    publish=dagent.Option(bool, default=True, help="publish each node's latest values on metrics.<node> through the push plugin of this node, if it runs"),
    publish_max_series=dagent.Option(int, default=500, min=1, help="series per node in one metrics.<node> message"),
    token_secret_file=dagent.Option(str, default="", help="the push plugin's secret_file: the dashboard gets a subscribe-only token for metrics.> from /api/collector/token and goes live over /ws"),
)

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE_TYPE = 0xFFFE0051   # a node's metrics answer it (Sources/DAgentMetrics/NodeMetrics-presence.swift)


class Node:
    def __init__(self, name):
        self.name = name
        self.incarnation = ""
        self.last_seen = time.time()
        self.up = True
        self.down_since = None
        self.down_reason = ""
        self.reports = 0
        self.families = {}   # name -> {"type","help","labels","buckets","series": {values: cell}}

    def series_count(self):
        return sum(len(f["series"]) for f in self.families.values())


class Store:
    """Every node's series; one lock (reports arrive on the plugin thread, renders too)."""

    def __init__(self, cfg):
        self.cfg = cfg
        self.nodes = {}
        self.kinds = {}       # metric name -> type, over all nodes
        self.lock = threading.Lock()
        self.total = 0
        self.refused = 0
        self.updates = 0
        points = max(1, int(cfg["history_seconds"] / cfg["history_step"]))
        self.history = collections.OrderedDict()   # (node, metric, values) -> deque[(t, v)]
        self.points = points
        self.versions = {}    # metric name -> changes so far (what render()'s cache is keyed on)
        self.rendered = {False: {}, True: {}}   # text / OpenMetrics: metric name -> (version, bytes)

    def apply(self, report):
        name = report.get("node")
        if not isinstance(name, str) or not name:
            raise ValueError("a report needs its node's name")
        problems = []
        with self.lock:
            n = self.nodes.get(name)
            if n is None:
                n = self.nodes[name] = Node(name)
            n.incarnation = report.get("incarnation", "")
            n.last_seen, n.up, n.down_since = time.time(), not report.get("final"), (time.time() if report.get("final") else None)
            n.down_reason = "final report" if report.get("final") else ""
            n.reports += 1
            for f in report.get("families", []):
                mname, kind = f.get("name"), f.get("type")
                known = self.kinds.get(mname)
                if known is not None and known != kind:
                    problems.append(f"metric '{mname}' is a {known} on this collector; node '{name}' reports it as a {kind}")
                    continue
                self.kinds[mname] = kind
                fam = n.families.get(mname)
                if fam is None:
                    fam = n.families[mname] = {"type": kind, "help": f.get("help", ""), "labels": list(f.get("labels", [])),
                                               "buckets": list(f.get("buckets", [])), "series": {}}
                elif fam["labels"] != list(f.get("labels", [])):
                    problems.append(f"metric '{mname}' of node '{name}' changed its labels")
                    continue
                self.changed(mname)
                for s in f.get("series", []):
                    key = tuple(s.get("l", []))
                    cell = fam["series"].get(key)
                    if cell is None:
                        if self.total >= self.cfg["max_series"]:
                            self.refused += 1
                            problems.append(f"collector holds {self.total} series (max_series={self.cfg['max_series']}); refused {mname}{key}")
                            continue
                        cell = fam["series"][key] = ([0.0, [0] * (len(fam["buckets"]) + 1), 0.0] if kind == "histogram" else [0.0])
                        self.total += 1
                    if kind == "counter":
                        cell[0] += s.get("d", 0)
                    elif kind == "gauge":
                        cell[0] = s.get("v", 0)
                    else:
                        b = s.get("b", [])
                        if len(b) == len(cell[1]):
                            cell[1] = [x + y for x, y in zip(cell[1], b)]
                        cell[2] += s.get("s", 0.0)
                        cell[0] += s.get("c", 0)
                    self.updates += 1
        return problems

    def expire(self):
        now = time.time()
        with self.lock:
            for n in self.nodes.values():
                if n.up and now - n.last_seen > self.cfg["down_after"]:
                    n.up, n.down_since, n.down_reason = False, now, "no report"
                    dagent.log.warning("collector: node '%s' sent no report for %.1fs: down", n.name, now - n.last_seen)
                if not n.up and n.families and n.down_since is not None and now - n.down_since > self.cfg["grace"]:
                    self.total -= n.series_count()
                    for mname in n.families:
                        self.changed(mname)
                    n.families = {}
                    for k in [k for k in self.history if k[0] == n.name]:
                        del self.history[k]
                    dagent.log.info("collector: node '%s' down for %.0fs: its series are gone", n.name, self.cfg["grace"])

    def gone(self, name, reason):
        """The tree says `name` is not there (no route): down now, its series go after `grace`."""
        with self.lock:
            n = self.nodes.get(name)
            if n is None or not n.up:
                return
            n.up, n.down_since, n.down_reason = False, time.time(), "gone from the tree"
        dagent.log.warning("collector: node '%s' is gone from the tree (%s): down; its series go in %.0fs",
                           name, reason, self.cfg["grace"])

    def up_nodes(self):
        with self.lock:
            return [n.name for n in self.nodes.values() if n.up]

    def latest(self):
        """{node: payload} of what the dashboard shows live: up, and each counter/gauge's value (histograms: count)."""
        out, limit = {}, self.cfg["publish_max_series"]
        now = round(time.time(), 3)
        with self.lock:
            for n in self.nodes.values():
                series = []
                for mname, fam in sorted(n.families.items()):
                    for key, cell in fam["series"].items():
                        if len(series) >= limit:
                            break
                        series.append([mname, dict(zip(fam["labels"], key)), cell[0]])
                out[n.name] = {"node": n.name, "t": now, "up": n.up, "series": series}
        return out

    def sample(self):
        now = time.time()
        with self.lock:
            for n in self.nodes.values():
                if not n.families:
                    continue
                for mname, fam in n.families.items():
                    for key, cell in fam["series"].items():
                        hk = (n.name, mname, key)
                        dq = self.history.get(hk)
                        if dq is None:
                            if len(self.history) >= self.cfg["history_max_series"]:
                                continue
                            dq = self.history[hk] = collections.deque(maxlen=self.points)
                        dq.append((round(now, 3), cell[0]))

    # ---- prometheus_client ----------------------------------------------------------

    def _up_family(self):
        up = GaugeMetricFamily("dagent_node_up", "1 while the node reports to this collector", labels=["node"])
        for n in sorted(self.nodes.values(), key=lambda n: n.name):
            up.add_metric([n.name], 1 if n.up else 0)
        return up

    def _by_metric(self):
        """{metric name: [(node, family)]} over every node (under the lock)."""
        families = {}
        for n in self.nodes.values():
            for mname, fam in n.families.items():
                families.setdefault(mname, []).append((n.name, fam))
        return families

    @staticmethod
    def _family(mname, entries):
        """One prometheus_client metric family with every node's series of `mname` (under the lock).
        Samples are appended directly (what add_metric does, without its per-call overhead)."""
        entries = sorted(entries, key=lambda e: e[0])
        kind, help_ = entries[0][1]["type"], entries[0][1]["help"] or mname
        first = tuple(entries[0][1]["labels"])
        entries = [e for e in entries if tuple(e[1]["labels"]) == first]   # a node with other label names: left out
        labels = ("node",) + first
        if kind == "counter":
            mf = CounterMetricFamily(mname, help_, labels=labels)
            sample_name = mf.name + "_total"
        elif kind == "gauge":
            mf = GaugeMetricFamily(mname, help_, labels=labels)
            sample_name = mf.name
        else:
            mf = HistogramMetricFamily(mname, help_, labels=labels)
        append = mf.samples.append
        for node, fam in entries:
            if kind == "histogram":
                for key, cell in sorted(fam["series"].items()):
                    acc, buckets = 0, []
                    for i, c in enumerate(cell[1]):
                        acc += c
                        le = _le(fam["buckets"][i]) if i < len(fam["buckets"]) else "+Inf"
                        buckets.append((le, acc))
                    mf.add_metric([node] + list(key), buckets, cell[2])
            else:
                for key, cell in sorted(fam["series"].items()):
                    append(Sample(sample_name, dict(zip(labels, (node,) + key)), cell[0], None, None))
        return mf

    def collect(self):
        with self.lock:
            yield self._up_family()
            families = self._by_metric()
            for mname in sorted(families):
                yield self._family(mname, families[mname])

    def changed(self, mname):
        """Marks a metric's rendering stale (under the lock)."""
        self.versions[mname] = self.versions.get(mname, 0) + 1

    def render(self, openmetrics=False):
        """The text of /metrics/tree. Each metric's part is rendered by prometheus_client and kept
        until a report or an expiry changes that metric, so a scrape renders only what changed."""
        gen = generate_openmetrics if openmetrics else generate_latest
        cache = self.rendered[openmetrics]
        with self.lock:
            parts = [_strip_eof(gen(_One(self._up_family())), openmetrics)]
            families = self._by_metric()
            for mname in sorted(families):
                version = self.versions.get(mname, 0)
                hit = cache.get(mname)
                if hit is None or hit[0] != version:
                    hit = cache[mname] = (version, _strip_eof(gen(_One(self._family(mname, families[mname]))), openmetrics))
                parts.append(hit[1])
            for gone in [m for m in cache if m not in families]:
                del cache[gone]
        if openmetrics:
            parts.append(b"# EOF\n")
        return b"".join(parts)


class _One:
    """A registry for prometheus_client's generate_latest that holds one metric family."""

    def __init__(self, family):
        self.family = family

    def collect(self):
        yield self.family


def _strip_eof(text, openmetrics):
    return text[:-len(b"# EOF\n")] if openmetrics and text.endswith(b"# EOF\n") else text


def _le(v):
    return repr(float(v))


STORE = None
_REGISTRY = None


def setup(config):
    global STORE, _REGISTRY
    STORE = Store(config)
    _REGISTRY = CollectorRegistry(auto_describe=False)
    _REGISTRY.register(STORE)
    dagent.every(config["history_step"], STORE.sample)
    if config["publish"]:
        dagent.every(config["history_step"], publish_latest)
    dagent.every(min(1.0, config["down_after"] / 3), STORE.expire)
    if config["tree_check"] > 0:
        dagent.every(config["tree_check"], check_tree)
    try:
        dagent.http.static("/dashboard/", os.path.join(HERE, "static"))
        dagent.http.route("/metrics/tree")(metrics_tree)
        dagent.http.route("/api/collector/nodes")(nodes)
        dagent.http.route("/api/collector/metrics")(metric_names)
        dagent.http.route("/api/collector/series")(series)
        dagent.http.route("/api/collector/token")(dashboard_token)
    except dagent.ConfigError as exc:
        dagent.log.warning("collector: %s; /metrics/tree and the dashboard are off, reports are still collected", exc)


_probing = set()


async def _probe(name):
    try:
        await dagent.arequest(name, PROBE_TYPE, b"", timeout=STORE.cfg["tree_check_timeout"])
    except dagent.NoRoute as exc:
        STORE.gone(name, exc.reason or "no route")
    except dagent.DAgentError:
        pass   # a timeout or a refusal (an old node without the probe) decides nothing: the name is there
    finally:
        _probing.discard(name)


def check_tree():
    """One presence probe to each node that is up (at most one in flight per node)."""
    for name in STORE.up_nodes():
        if name not in _probing and name != dagent.name():
            _probing.add(name)
            dagent.after(0, _probe, name)


def dashboard_token(req):
    """A subscribe-only token for metrics.> (1 h), when token_secret_file is set and push runs here."""
    path = STORE.cfg["token_secret_file"]
    if not path or not _push_running():
        return 404, "404 Not Found: no live feed (set collector.token_secret_file and run the push plugin on this node)\n"
    from dagent import push
    with open(path, "rb") as f:
        secret = f.read().strip()
    return {"token": push.token(secret, sub="dashboard", topics=["metrics.>"], ttl=3600), "topic": "metrics.>"}


def _push_running():
    from dagent import _runtime, push
    return push.EVENT_TYPE in _runtime.current().handlers


def publish_latest():
    """Each node's latest values on metrics.<node> (the push plugin conflates slow clients)."""
    if not _push_running():
        return
    from dagent import push
    for node, payload in STORE.latest().items():
        push.publish(f"metrics.{node}", json.dumps(payload))


@dagent.on(dagent.report.REPORT_TYPE)
def take_report(msg):
    try:
        report = json.loads(msg.data)
    except ValueError as exc:
        raise dagent.Refused(f"a metrics report from '{msg.src}' is not JSON: {exc}")
    problems = STORE.apply(report)
    if problems:
        dagent.log.warning("collector: %s", "; ".join(problems[:5]))
        return ("refused: " + "; ".join(problems[:5])).encode()
    return b"ok"


def metrics_tree(req):
    if "application/openmetrics-text" in req.headers.get("accept", ""):
        return 200, STORE.render(openmetrics=True), {"Content-Type": "application/openmetrics-text; version=1.0.0; charset=utf-8"}
    return 200, STORE.render(), {"Content-Type": "text/plain; version=0.0.4; charset=utf-8"}


def nodes(req):
    with STORE.lock:
        return [{"node": n.name, "up": n.up, "down_reason": n.down_reason, "last_seen": n.last_seen, "reports": n.reports,
                 "series": n.series_count(), "incarnation": n.incarnation}
                for n in sorted(STORE.nodes.values(), key=lambda n: n.name)]


def metric_names(req):
    with STORE.lock:
        return sorted(STORE.kinds.items())


def series(req):
    metric = req.query.get("metric", "")
    if not metric:
        return 400, "400 Bad Request: give ?metric=NAME\n"
    with STORE.lock:
        out = []
        for (node, mname, key), dq in STORE.history.items():
            if mname != metric:
                continue
            labels = {}
            n = STORE.nodes.get(node)
            fam = n.families.get(mname) if n else None
            if fam:
                labels = dict(zip(fam["labels"], key))
            out.append({"node": node, "labels": labels, "points": list(dq)})
    return {"metric": metric, "kind": STORE.kinds.get(metric), "series": out}
