"""Metrics from Python: ``dagent.report``, the same in plugins and standalone programs.

::

    import dagent

    dagent.report.inc("jobs_total", kind="resize")           # counter (+1)
    dagent.report.inc("bytes_total", 512)
    dagent.report.set("queue_depth", 7)                      # gauge
    dagent.report.dec("workers")                             # gauge -1
    dagent.report.observe("job_seconds", 0.25)               # histogram (default buckets)

    jobs = dagent.report.counter("jobs_total", help="Jobs done", labels=["kind"])
    jobs.inc(kind="resize")
    lat = dagent.report.histogram("job_seconds", help="Job time", buckets=[0.1, 0.5, 1, 5])
    lat.observe(0.3)

    dagent.report_inc("jobs_total")                          # the original names work too

Updates are kept in this process (a dict lookup and an add) and flushed, aggregated statsd-style
(counters summed, gauges last value, histograms merged), every ``FLUSH_INTERVAL`` seconds: in a
plugin to the agent's registry (``/metrics``, and from there to ``metrics.report_to``), in a
standalone program to a collector with ``dagent.report.report_to(NAME)``.

Rules, checked on the first use of a series, with a ``ValueError`` that names the problem:
Prometheus names (``[a-zA-Z_:][a-zA-Z0-9_:]*``), counters end in ``_total``, labels are
``[a-zA-Z_][a-zA-Z0-9_]*`` (not ``node``, ``le``, ``quantile`` or ``__*``), a name keeps its kind
and label names, and at most ``MAX_SERIES`` label combinations per metric (``metrics.max_series``).
"""

import bisect
import json
import re
import threading

from . import _runtime

__all__ = ["inc", "dec", "set", "observe", "counter", "gauge", "histogram", "render", "flush", "report_to",
           "MetricError", "REPORT_TYPE", "MAX_SERIES", "FLUSH_INTERVAL"]

#: Envelope type of a metrics report (what the collector plugin handles).
REPORT_TYPE = 0xFFFE0050
#: Label combinations per metric (the agent's metrics.max_series applies on its side too).
MAX_SERIES = 1000
#: Seconds between flushes of a plugin's updates to its agent.
FLUSH_INTERVAL = 0.25
#: Series per flush message to the agent (a large first flush goes in parts).
FLUSH_CHUNK = 5000
#: Seconds one flush may spend on the plugin thread; what is left goes with the next flush.
FLUSH_BUDGET = 0.5
DEFAULT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.075, 0.1, 0.25, 0.5, 0.75, 1, 2.5, 5, 7.5, 10)

_NAME = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*\Z")
_LABEL = re.compile(r"[a-zA-Z_][a-zA-Z0-9_]*\Z")
_RESERVED = {"node", "le", "quantile"}


class MetricError(ValueError):
    """A refused metric operation (bad name, kind or label conflict, series limit)."""


class _Family:
    __slots__ = ("name", "kind", "help", "labels", "buckets", "series", "acked")

    def __init__(self, name, kind, help_, labels, buckets):
        self.name, self.kind, self.help, self.labels, self.buckets = name, kind, help_, labels, buckets
        self.series = {}   # label values (tuple, in self.labels order) -> cell
        self.acked = {}    # label values -> what the last flush carried (counters, histograms)


class Registry:
    """The process's Python metrics. One per process (``dagent.report``)."""

    def __init__(self):
        self.families = {}
        self._cache = {}        # (name, labels items) or name -> cell
        self.lock = threading.Lock()
        self.max_series = MAX_SERIES
        self.refused = 0
        self._timer = None
        self._target = None     # standalone: collector node name

    # ---- validation and series -------------------------------------------------------

    def _refuse(self, text):
        self.refused += 1
        raise MetricError(text)

    def family(self, name, kind, help_="", labels=(), buckets=None):
        f = self.families.get(name)
        labels = tuple(sorted(labels))
        if f is not None:
            if f.kind != kind:
                self._refuse(f"metric '{name}' is a {f.kind}; it cannot be used as a {kind}")
            if f.labels != labels:
                self._refuse(f"metric '{name}' has labels [{', '.join(f.labels)}]; got [{', '.join(labels)}]")
            return f
        if not isinstance(name, str) or not _NAME.match(name):
            self._refuse(f"metric name {name!r} is not a Prometheus name ([a-zA-Z_:][a-zA-Z0-9_:]*)")
        if kind == "counter" and not name.endswith("_total"):
            self._refuse(f"counter '{name}' must end in _total (Prometheus convention)")
        if kind != "counter" and name.endswith("_total"):
            self._refuse(f"{kind} '{name}' must not end in _total (that suffix is for counters)")
        for l in labels:
            if not _LABEL.match(l) or l.startswith("__") or l in _RESERVED:
                self._refuse(f"label {l!r} of metric '{name}' is not allowed (labels match [a-zA-Z_][a-zA-Z0-9_]*; "
                             f"node, le, quantile and __* are reserved)")
        if kind == "histogram":
            b = tuple(float(x) for x in (buckets if buckets is not None else DEFAULT_BUCKETS))
            if not b or any(b[i] <= b[i - 1] for i in range(1, len(b))) or len(b) > 64:
                self._refuse(f"histogram '{name}' needs 1...64 strictly increasing buckets; got {list(b)}")
        else:
            b = ()
        f = self.families[name] = _Family(name, kind, help_, labels, b)
        return f

    def _cell(self, key, name, kind, labels):
        f = self.family(name, kind, "", labels.keys())
        values = tuple(str(labels[l]) for l in f.labels)
        cell = f.series.get(values)
        if cell is None:
            if len(f.series) >= self.max_series:
                self._refuse(f"metric '{name}' already has {len(f.series)} series (MAX_SERIES={self.max_series}); "
                             f"refused the new one {dict(zip(f.labels, values))}")
            cell = f.series[values] = ([0, [0] * (len(f.buckets) + 1), 0.0] if kind == "histogram" else [0])
            self._arm()
        self._cache[key] = (cell, f)
        return cell, f

    # ---- updates (kept cheap: one dict lookup and an add) ----------------------------

    def inc(self, name, n=1, **labels):
        key = (name, tuple(labels.items())) if labels else name
        hit = self._cache.get(key)
        cell, f = hit if hit is not None else self._cell(key, name, self._kind_for_inc(name), labels)
        if n < 0 and f.kind == "counter":
            self._refuse(f"counter '{name}' can only go up (got {n}); use a gauge")
        cell[0] += n

    def _kind_for_inc(self, name):
        f = self.families.get(name)
        if f is not None:
            return f.kind
        return "counter" if name.endswith("_total") else "gauge"

    def dec(self, name, n=1, **labels):
        key = (name, tuple(labels.items())) if labels else name
        hit = self._cache.get(key)
        cell, f = hit if hit is not None else self._cell(key, name, "gauge", labels)
        if f.kind != "gauge":
            self._refuse(f"metric '{name}' is a {f.kind}; only gauges go down")
        cell[0] -= n

    def set(self, name, value, **labels):
        key = (name, tuple(labels.items())) if labels else name
        hit = self._cache.get(key)
        cell, f = hit if hit is not None else self._cell(key, name, "gauge", labels)
        if f.kind != "gauge":
            self._refuse(f"metric '{name}' is a {f.kind}; it cannot be used as a gauge")
        cell[0] = value

    def observe(self, name, value, **labels):
        key = (name, tuple(labels.items())) if labels else name
        hit = self._cache.get(key)
        cell, f = hit if hit is not None else self._cell(key, name, "histogram", labels)
        if f.kind != "histogram":
            self._refuse(f"metric '{name}' is a {f.kind}; it cannot be used as a histogram")
        cell[1][bisect.bisect_left(f.buckets, value)] += 1
        cell[2] += value
        cell[0] += 1

    # ---- flushing -------------------------------------------------------------------

    def changes(self, ack=True):
        """The statsd-style change set since the last flush (a MetricsReport JSON dict)."""
        report, acks = self._changes()
        if ack:
            for f, values, value in acks:
                f.acked[values] = value
        return report

    def _changes(self):
        """(report, acks): ``acks[i]`` is (family, label values, value to acknowledge) of the i-th series."""
        fams, acks = [], []
        for f in self.families.values():
            series = []
            for values, cell in f.series.items():
                old = f.acked.get(values)
                if f.kind == "counter":
                    d = cell[0] - (old or 0)
                    if d > 0:
                        series.append({"l": list(values), "d": d})
                        acks.append((f, values, cell[0]))
                elif f.kind == "gauge":
                    if old is None or old != cell[0]:
                        series.append({"l": list(values), "v": cell[0]})
                        acks.append((f, values, cell[0]))
                else:
                    count, buckets, total = cell[0], cell[1], cell[2]
                    o = old or (0, [0] * len(buckets), 0.0)
                    if count != o[0]:
                        series.append({"l": list(values), "c": count - o[0], "s": total - o[2],
                                       "b": [a - b for a, b in zip(buckets, o[1])]})
                        acks.append((f, values, (count, list(buckets), total)))
            if series:
                fam = {"name": f.name, "type": f.kind, "labels": list(f.labels), "series": series}
                if f.help:
                    fam["help"] = f.help
                if f.kind == "histogram":
                    fam["buckets"] = list(f.buckets)
                fams.append(fam)
        return {"v": 1, "families": fams}, acks

    def _arm(self):
        if self._timer is not None:
            return
        try:
            rt = _runtime.current()
        except RuntimeError:
            return          # no node yet: flushed when one starts reporting
        self._timer = True
        rt.loop.call_later(FLUSH_INTERVAL, self._tick)

    def _tick(self):
        try:
            self.flush()
        finally:
            try:
                _runtime.current().loop.call_later(FLUSH_INTERVAL, self._tick)
            except RuntimeError:
                self._timer = None

    def flush(self):
        """Sends the changes now: to the agent (plugins) or to ``report_to`` (standalone)."""
        rt = _runtime.current()
        control = getattr(rt.backend, "control", None)
        report, acks = self._changes()
        if not report["families"]:
            return
        if control is not None:
            # Parts of FLUSH_CHUNK series, each acknowledged once the agent took it; a flush stops
            # after FLUSH_BUDGET seconds and the next one goes on (the plugin thread is not held).
            import time
            deadline, done = time.monotonic() + FLUSH_BUDGET, 0
            for part in _chunks(report, FLUSH_CHUNK):
                problems = control("report", json.dumps(part))
                n = sum(len(f["series"]) for f in part["families"])
                for f, values, value in acks[done:done + n]:
                    f.acked[values] = value
                done += n
                if problems:
                    rt.backend.log(30, rt.current_name(), f"dagent.report: the agent refused: {problems}")
                if time.monotonic() > deadline:
                    break
        elif self._target is not None:
            report["node"] = rt.backend.name()
            report["incarnation"] = self._incarnation
            rt.backend.request(self._target, REPORT_TYPE, json.dumps(report).encode(), 5.0)
            for f, values, value in acks:   # only once the collector answered
                f.acked[values] = value

    def report_to(self, name, interval=1.0):
        """Standalone programs: flush to the collector plugin on node ``name`` every ``interval`` s."""
        import uuid
        self._target, self._incarnation = name, uuid.uuid4().hex
        from . import _runtime as r

        def tick():
            try:
                self.flush()
            except Exception as exc:  # noqa: BLE001 - a collector that is down: keep the changes
                r.current().backend.log(30, "", f"dagent.report: report to '{name}' failed: {exc}; kept for the next flush")
        return r.every(interval, tick)

    def render(self):
        """This process's Python metrics in Prometheus text format (for tests and standalone use)."""
        out = []
        for f in sorted(self.families.values(), key=lambda f: f.name):
            out.append(f"# HELP {f.name} {f.help or f.name}")
            out.append(f"# TYPE {f.name} {f.kind}")
            for values, cell in sorted(f.series.items()):
                lab = ",".join(f'{k}="{_esc(v)}"' for k, v in zip(f.labels, values))
                if f.kind == "histogram":
                    acc = 0
                    for i, c in enumerate(cell[1]):
                        acc += c
                        le = repr(f.buckets[i]) if i < len(f.buckets) else "+Inf"
                        out.append(f"{f.name}_bucket{{{lab + ',' if lab else ''}le=\"{le}\"}} {acc}")
                    out.append(f"{f.name}_sum{{{lab}}} {cell[2]}" if lab else f"{f.name}_sum {cell[2]}")
                    out.append(f"{f.name}_count{{{lab}}} {cell[0]}" if lab else f"{f.name}_count {cell[0]}")
                else:
                    out.append(f"{f.name}{{{lab}}} {cell[0]}" if lab else f"{f.name} {cell[0]}")
        return "\n".join(out) + "\n"


def _chunks(report, n):
    """Splits a change set into parts of at most ``n`` series."""
    part, count = [], 0
    for fam in report["families"]:
        series = fam["series"]
        for i in range(0, len(series), n):
            piece = dict(fam, series=series[i:i + n])
            if count + len(piece["series"]) > n and part:
                yield {"v": 1, "families": part}
                part, count = [], 0
            part.append(piece)
            count += len(piece["series"])
    if part:
        yield {"v": 1, "families": part}


def _esc(v):
    return v.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


class _Handle:
    """A metric declared with help text and label names; ``.labels(**kv)`` binds them."""

    def __init__(self, reg, name, kind, help, labels, buckets=None):
        self._reg, self.name, self.kind = reg, name, kind
        reg.family(name, kind, help, labels, buckets)
        self.label_names = tuple(labels)

    def labels(self, **kv):
        return _Bound(self, kv)

    def inc(self, n=1, **labels):
        self._reg.inc(self.name, n, **labels)

    def dec(self, n=1, **labels):
        self._reg.dec(self.name, n, **labels)

    def set(self, value, **labels):
        self._reg.set(self.name, value, **labels)

    def observe(self, value, **labels):
        self._reg.observe(self.name, value, **labels)


class _Bound:
    """A handle with its labels bound: the series is made (and checked against the rules and
    MAX_SERIES) once, here; an update is then an add on its cell (series are never removed)."""
    __slots__ = ("_h", "_kv", "_c", "_f")

    def __init__(self, h, kv):
        self._h, self._kv = h, kv
        self._c, self._f = h._reg._cell((h.name, tuple(kv.items())), h.name, h.kind, kv)

    def inc(self, n=1):
        if n < 0 and self._f.kind == "counter":
            self._h._reg._refuse(f"counter '{self._h.name}' can only go up (got {n}); use a gauge")
        self._c[0] += n

    def dec(self, n=1):
        if self._f.kind != "gauge":
            self._h._reg._refuse(f"metric '{self._h.name}' is a {self._f.kind}; only gauges go down")
        self._c[0] -= n

    def set(self, value):
        if self._f.kind != "gauge":
            self._h._reg._refuse(f"metric '{self._h.name}' is a {self._f.kind}; it cannot be used as a gauge")
        self._c[0] = value

    def observe(self, value):
        self._h._reg.observe(self._h.name, value, **self._kv)


REGISTRY = Registry()
inc = REGISTRY.inc
dec = REGISTRY.dec
set = REGISTRY.set  # noqa: A001 - the API's name
observe = REGISTRY.observe
flush = REGISTRY.flush
render = REGISTRY.render
report_to = REGISTRY.report_to


def counter(name, help="", labels=()):  # noqa: A002
    """A counter handle (``name`` must end in ``_total``)."""
    return _Handle(REGISTRY, name, "counter", help, labels)


def gauge(name, help="", labels=()):  # noqa: A002
    return _Handle(REGISTRY, name, "gauge", help, labels)


def histogram(name, help="", labels=(), buckets=None):  # noqa: A002
    return _Handle(REGISTRY, name, "histogram", help, labels, buckets)
