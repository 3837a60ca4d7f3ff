"""The collector's /metrics/tree text, kept per (metric, node) and re-rendered per changed series
(plugins/collector/blocks.py), is byte for byte what prometheus_client's generators write for one
family per metric over every node: checked after rounds of new series, changed values, odd floats,
escaped label values, histograms, a node with other label names and a node whose series expire.
In-process (no agent): the store is imported from the plugin's directory."""
import importlib
import os
import random
import sys
import time
import types

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "python"))

from prometheus_client import generate_latest  # noqa: E402
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily  # noqa: E402
from prometheus_client.openmetrics.exposition import generate_latest as generate_openmetrics  # noqa: E402

# The plugin's modules without its __init__ (which needs a running agent).
_pkg = types.ModuleType("collector_under_test")
_pkg.__path__ = [os.path.join(ROOT, "plugins", "collector")]
sys.modules["collector_under_test"] = _pkg
store_mod = importlib.import_module("collector_under_test.store")
blocks = importlib.import_module("collector_under_test.blocks")

CFG = {"down_after": 600.0, "grace": 0.0, "history_seconds": 10.0, "history_step": 1.0, "history_max_series": 10,
       "max_series": 100000, "publish_max_series": 10}
BUCKETS = [0.005, 0.1, 1.0, 2.5]


class Registry:
    def __init__(self, families):
        self.families = families

    def collect(self):
        return iter(self.families)


def reference(store, openmetrics):
    """prometheus_client's text of one family per metric over every node (what the collector served before)."""
    up = GaugeMetricFamily("dagent_node_up", "1 while the node reports to this collector", labels=["node"])
    for n in sorted(store.nodes.values(), key=lambda n: n.name):
        up.add_metric([n.name], 1 if n.up else 0)
    out = [up]
    by = {}
    for n in store.nodes.values():
        for mname, fam in n.families.items():
            by.setdefault(mname, []).append((n.name, fam))
    for mname in sorted(by):
        entries = sorted(by[mname], key=lambda e: e[0])
        kind, help_ = entries[0][1]["type"], entries[0][1]["help"] or mname
        first = entries[0][1]["labels"]
        labels = ["node"] + first
        mf = {"counter": CounterMetricFamily, "gauge": GaugeMetricFamily, "histogram": HistogramMetricFamily}[kind](
            mname, help_, labels=labels)
        for node, fam in entries:
            if fam["labels"] != first:
                continue
            for key, cell in sorted(fam["series"].items()):
                if kind == "histogram":
                    acc, buckets = 0, []
                    for i, c in enumerate(cell[1]):
                        acc += c
                        buckets.append((repr(float(fam["buckets"][i])) if i < len(fam["buckets"]) else "+Inf", acc))
                    mf.add_metric([node] + list(key), buckets, cell[2])
                else:
                    mf.add_metric([node] + list(key), cell[0])
        out.append(mf)
    return (generate_openmetrics if openmetrics else generate_latest)(Registry(out))


ODD = [0, 1, -1, 0.1, 1e-7, 123456789.0, 1e21, 2.5e-300, float("inf"), float("-inf"), 3.0000000000000004, 7]
LABELS = ["a", "b c", 'say "hi"', "back\\slash", "new\nline", "ünï", "", "x" * 40]


def report(node, rng, n_series):
    fams = [
        {"name": "t_jobs", "type": "counter", "help": "jobs done", "labels": ["kind", "id"],
         "series": [{"l": [rng.choice(LABELS), str(rng.randrange(n_series))], "d": rng.choice(ODD[:8])}
                    for _ in range(rng.randrange(1, 20))]},
        {"name": "t_level", "type": "gauge", "help": 'level "of" \\ things\nand more', "labels": ["id"],
         "series": [{"l": [str(rng.randrange(n_series))], "v": rng.choice(ODD)} for _ in range(rng.randrange(1, 10))]},
        {"name": "t_seconds", "type": "histogram", "help": "", "labels": ["op"], "buckets": BUCKETS,
         "series": [{"l": [rng.choice(LABELS)], "b": [rng.randrange(3) for _ in range(len(BUCKETS) + 1)],
                     "s": rng.random() * 10, "c": 0} for _ in range(rng.randrange(0, 4))]},
    ]
    return {"node": node, "incarnation": "i1", "families": rng.sample(fams, rng.randrange(1, 4))}


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_rendered_text_is_what_prometheus_client_writes(seed):
    rng = random.Random(seed)
    store = store_mod.Store(CFG)
    for rnd in range(40):
        for node in rng.sample(["n0", "n1", "n2", "zeta"], rng.randrange(1, 4)):
            assert store.apply(report(node, rng, 30)) == []
        if rnd == 20:   # a node with other label names for t_level: left out of that metric, like before
            store.apply({"node": "aa", "families": [{"name": "t_level", "type": "gauge", "labels": ["other"],
                                                      "series": [{"l": ["q"], "v": 1}]}]})
        if rnd == 30:   # a node's series expire (grace 0 once it is down)
            store.nodes["n1"].up, store.nodes["n1"].down_since = False, time.time() - 1
            store.expire()
        for om in (False, True):
            if rng.random() < 0.7:   # not every scrape sees every change: blocks catch up later
                assert store.render(om) == reference(store, om), f"round {rnd}, openmetrics={om}"
    for om in (False, True):
        assert store.render(om) == reference(store, om)


def test_a_scrape_renders_only_the_changed_series_through_prometheus_client(monkeypatch):
    store = store_mod.Store(CFG)
    store.apply({"node": "big", "families": [{"name": "b_total_things", "type": "counter", "labels": ["id"],
                                               "series": [{"l": [str(i)], "d": i} for i in range(5000)]}]})
    rendered = []
    real = blocks.generate

    def counting(family, openmetrics):
        rendered.append(len(family.samples))
        return real(family, openmetrics)

    monkeypatch.setattr(blocks, "generate", counting)
    assert store.render() == reference(store, False)
    assert sum(rendered) == 5000 + 1          # every new series once, plus dagent_node_up's one sample
    rendered.clear()
    store.apply({"node": "big", "families": [{"name": "b_total_things", "type": "counter", "labels": ["id"],
                                               "series": [{"l": ["17"], "d": 0.5}]}]})
    text = store.render()
    assert text == reference(store, False)
    assert b'b_total_things_total{id="17",node="big"} 17.5\n' in text
    assert sum(rendered) == 1                 # dagent_node_up only: the changed series is kept text + its new value
    rendered.clear()
    assert store.render() == text and sum(rendered) == 1


def test_a_prometheus_client_that_writes_lines_differently_falls_back_to_its_generator(monkeypatch):
    """If a line is not `kept part + floatToGoString(value)`, the block renders changed series through the generator."""
    store = store_mod.Store(CFG)
    store.apply({"node": "n", "families": [{"name": "g", "type": "gauge", "labels": ["id"],
                                             "series": [{"l": ["1"], "v": 2}, {"l": ["2"], "v": 3}]}]})
    monkeypatch.setattr(blocks, "floatToGoString", lambda v: "different")
    assert store.render() == reference(store, False)
    store.apply({"node": "n", "families": [{"name": "g", "type": "gauge", "labels": ["id"], "series": [{"l": ["1"], "v": 9}]}]})
    assert store.render() == reference(store, False)
    assert not store.nodes["n"].families["g"]["blocks"][False].exact


def test_time_series_once_full_visit_only_their_series():
    cfg = dict(CFG, history_max_series=3)
    store = store_mod.Store(cfg)
    store.apply({"node": "n", "families": [{"name": "g", "type": "gauge", "labels": ["id"],
                                             "series": [{"l": [str(i)], "v": i} for i in range(10)]}]})
    store.sample()
    assert len(store.history) == 3
    kept = set(store.history)
    store.apply({"node": "n", "families": [{"name": "g", "type": "gauge", "labels": ["id"],
                                             "series": [{"l": [k[2][0]], "v": 100} for k in kept]}]})
    store.sample()
    assert set(store.history) == kept
    assert all([v for _, v in dq] == [float(k[2][0]), 100] for k, dq in store.history.items())
