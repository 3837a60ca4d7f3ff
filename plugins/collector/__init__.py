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
import json
import os

import dagent

try:
    from .store import Store
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

STORE = None


def setup(config):
    global STORE
    STORE = Store(config)
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
