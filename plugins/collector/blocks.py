"""The rendered text of /metrics/tree, kept per (metric family, node) and re-rendered only where it changed.

The exposition format wants every sample of a family together, so the text of a metric is its
header (``# HELP``/``# TYPE``, rendered by prometheus_client from an empty family) followed by one
block per node. A node's block is the join of its series' lines, in sorted label order, and each
series' lines are kept:

* a series seen for the first time is rendered by prometheus_client's own generator (all the new
  series of a block in one call); each of its lines is kept as the part before the value
  (``name{labels} ``) and the line itself;
* a series whose value changed gets its lines again as that kept part plus prometheus_client's
  ``floatToGoString`` of the new value — what both generators write after the labels. The first
  render checks that every line is exactly that; if a prometheus_client version writes lines
  differently, the block falls back to rendering its changed series through the generator.

So a scrape renders only the series that changed since the last one, and joins kept bytes for the
rest.
"""
from prometheus_client import generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics
from prometheus_client.samples import Sample
from prometheus_client.utils import floatToGoString

EOF = b"# EOF\n"


class One:
    """A registry for prometheus_client's generators that holds one metric family."""

    def __init__(self, family):
        self.family = family

    def collect(self):
        yield self.family


def generate(family, openmetrics):
    """prometheus_client's text of one family (OpenMetrics without its ``# EOF``)."""
    text = (generate_openmetrics if openmetrics else generate_latest)(One(family))
    return text[:-len(EOF)] if openmetrics and text.endswith(EOF) else text


def le(v):
    return repr(float(v))


def family(mname, kind, help_, labels):
    """An empty prometheus_client family of `kind` with the label names `labels`."""
    if kind == "counter":
        return CounterMetricFamily(mname, help_, labels=labels)
    if kind == "gauge":
        return GaugeMetricFamily(mname, help_, labels=labels)
    return HistogramMetricFamily(mname, help_, labels=labels)


def add_series(mf, kind, labels, values, fam, cell):
    """Appends one series' samples to `mf` (what add_metric does); returns how many it appended."""
    before = len(mf.samples)
    if kind == "histogram":
        acc, buckets = 0, []
        for i, c in enumerate(cell[1]):
            acc += c
            buckets.append((le(fam["buckets"][i]) if i < len(fam["buckets"]) else "+Inf", acc))
        mf.add_metric(values, buckets, cell[2])
    else:
        mf.samples.append(Sample(mf.name + "_total" if kind == "counter" else mf.name,
                                 dict(zip(labels, values)), cell[0], None, None))
    return len(mf.samples) - before


def header(mname, kind, help_, labels, openmetrics):
    """The ``# HELP``/``# TYPE`` lines prometheus_client writes for this family."""
    return generate(family(mname, kind, help_, labels), openmetrics)


class Block:
    """One node's series of one metric, in one format (text 0.0.4 or OpenMetrics)."""

    __slots__ = ("openmetrics", "prefixes", "order", "index", "lines", "text", "pending", "exact")

    def __init__(self, openmetrics):
        self.openmetrics = openmetrics
        self.prefixes = {}   # series key -> (bytes before each line's value, ...)
        self.order = []      # series keys, sorted
        self.index = {}      # series key -> its place in order
        self.lines = []      # each series' lines, in order (None: not rendered yet)
        self.text = b""
        self.pending = set()   # keys whose lines are stale
        self.exact = True    # False: this prometheus_client writes lines as prefix + value differently

    def refresh(self, mname, kind, help_, labels, node, fam):
        """Brings the block up to date with `fam` (a node's family in the collector's store) and returns its text."""
        series = fam["series"]
        if len(self.order) != len(series):
            old = dict(zip(self.order, self.lines))
            self.order = sorted(series)
            self.index = {k: i for i, k in enumerate(self.order)}
            self.lines = [old.get(k) for k in self.order]
            self.pending.update(k for k, ln in zip(self.order, self.lines) if ln is None)
            for gone in [k for k in self.prefixes if k not in series]:
                del self.prefixes[gone]
        if not self.pending:
            return self.text
        fresh, lines, index = [], self.lines, self.index
        for key in self.pending:
            cell = series.get(key)
            if cell is None:
                continue
            prefixes = self.prefixes.get(key)
            if prefixes is None or not self.exact:
                fresh.append(key)
                continue
            if kind == "histogram":
                scratch = HistogramMetricFamily(mname, "", labels=labels)
                add_series(scratch, kind, labels, (node,) + key, fam, cell)
                values = [s.value for s in scratch.samples]
                if len(values) != len(prefixes):
                    fresh.append(key)
                    continue
                lines[index[key]] = b"".join(p + floatToGoString(v).encode() + b"\n" for p, v in zip(prefixes, values))
            else:
                lines[index[key]] = prefixes[0] + floatToGoString(cell[0]).encode() + b"\n"
        if fresh:
            self._render(mname, kind, help_, labels, node, fam, fresh)
        self.pending.clear()
        self.text = b"".join(lines)
        return self.text

    def _render(self, mname, kind, help_, labels, node, fam, keys):
        """Renders `keys` through prometheus_client's generator (one call) and keeps their lines."""
        mf = family(mname, kind, help_, labels)
        counts = [add_series(mf, kind, labels, (node,) + key, fam, fam["series"][key]) for key in keys]
        values = [s.value for s in mf.samples]
        out = [ln for ln in generate(mf, self.openmetrics).split(b"\n") if ln and not ln.startswith(b"#")]
        if len(out) != len(values):
            raise RuntimeError(f"prometheus_client wrote {len(out)} sample lines for {len(values)} samples of {mname}")
        i = 0
        for key, n in zip(keys, counts):
            mine, prefixes = out[i:i + n], []
            for ln, v in zip(mine, values[i:i + n]):
                tail = b" " + floatToGoString(v).encode()
                if ln.endswith(tail):
                    prefixes.append(ln[:-len(tail) + 1])
                else:
                    self.exact = False
            self.prefixes[key] = tuple(prefixes)
            self.lines[self.index[key]] = b"\n".join(mine) + b"\n"
            i += n
