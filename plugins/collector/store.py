"""The collector's store: every node's series, their reports applied statsd-style, and the text of
/metrics/tree (rendered per node and per changed series by blocks.py)."""
import collections
import threading
import time

import dagent
from prometheus_client.core import GaugeMetricFamily

from . import blocks


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
                                               "buckets": list(f.get("buckets", [])), "series": {},
                                               "dirty": set(), "blocks": {}}   # blocks: render cache (blocks.py)
                elif fam["labels"] != list(f.get("labels", [])):
                    problems.append(f"metric '{mname}' of node '{name}' changed its labels")
                    continue
                self.changed(mname)
                dirty = fam["dirty"].add
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
                    dirty(key)
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
        """One point for each series with a time series. Once `history_max_series` series have one,
        only those are visited (not every series of every node, once a second)."""
        now = round(time.time(), 3)
        with self.lock:
            if len(self.history) >= self.cfg["history_max_series"]:
                for (node, mname, key), dq in self.history.items():
                    n = self.nodes.get(node)
                    fam = n.families.get(mname) if n else None
                    cell = fam["series"].get(key) if fam else None
                    if cell is not None:
                        dq.append((now, cell[0]))
                return
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
                        dq.append((now, cell[0]))

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

    def changed(self, mname):
        """Marks a metric's rendering stale (under the lock)."""
        self.versions[mname] = self.versions.get(mname, 0) + 1

    def render(self, openmetrics=False):
        """The text of /metrics/tree. Each metric's text is kept until a report or an expiry changes
        that metric; then only its changed series are rendered again (blocks.py), per node."""
        cache = self.rendered[openmetrics]
        with self.lock:
            parts = [blocks.generate(self._up_family(), openmetrics)]
            families = self._by_metric()
            for mname in sorted(families):
                version = self.versions.get(mname, 0)
                hit = cache.get(mname)
                if hit is None or hit[0] != version:
                    hit = cache[mname] = (version, self._metric_text(mname, families[mname], openmetrics))
                parts.append(hit[1])
            for gone in [m for m in cache if m not in families]:
                del cache[gone]
        if openmetrics:
            parts.append(blocks.EOF)
        return b"".join(parts)

    @staticmethod
    def _metric_text(mname, entries, openmetrics):
        """One metric over every node: prometheus_client's header, then each node's block (under the lock).
        The same series, in the same order, as one prometheus_client family of them all would give."""
        entries = sorted(entries, key=lambda e: e[0])
        kind, help_ = entries[0][1]["type"], entries[0][1]["help"] or mname
        first = entries[0][1]["labels"]
        labels = ("node",) + tuple(first)
        parts = [blocks.header(mname, kind, help_, labels, openmetrics)]
        for node, fam in entries:
            if fam["labels"] != first:
                continue   # a node with other label names: left out
            if fam["dirty"]:
                for b in fam["blocks"].values():
                    b.pending |= fam["dirty"]
                fam["dirty"].clear()
            block = fam["blocks"].get(openmetrics)
            if block is None:
                block = fam["blocks"][openmetrics] = blocks.Block(openmetrics)
            parts.append(block.refresh(mname, kind, help_, labels, node, fam))
        return b"".join(parts)
