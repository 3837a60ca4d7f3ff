"""dagent.report's registry: updates, handles, rules and the statsd-style change sets."""
import pytest

from dagent import report
from dagent.report import MetricError, Registry


def test_updates_render_and_change_sets():
    r = Registry()
    r.inc("jobs_total", kind="a")
    r.inc("jobs_total", 4, kind="a")
    r.set("depth", 3)
    r.dec("depth")
    r.observe("lat_seconds", 0.3)
    text = r.render()
    assert 'jobs_total{kind="a"} 5' in text and "depth 2" in text and "lat_seconds_count 1" in text
    c = r.changes()
    by = {f["name"]: f for f in c["families"]}
    assert by["jobs_total"]["series"] == [{"l": ["a"], "d": 5}]
    assert by["depth"]["series"] == [{"l": [], "v": 2}]
    assert by["lat_seconds"]["series"][0]["c"] == 1 and sum(by["lat_seconds"]["series"][0]["b"]) == 1
    assert r.changes()["families"] == [], "nothing changed since"
    r.inc("jobs_total", kind="a")
    assert r.changes()["families"][0]["series"] == [{"l": ["a"], "d": 1}]
    # A change set that was not acknowledged stays for the next one (summed).
    r.inc("jobs_total", 2, kind="a")
    r.changes(ack=False)
    r.inc("jobs_total", 3, kind="a")
    assert r.changes()["families"][0]["series"] == [{"l": ["a"], "d": 5}]


def test_handles_and_original_names():
    import dagent
    h = report.counter("handle_jobs_total", help="Jobs", labels=["kind"])
    h.labels(kind="x").inc()
    h.inc(2, kind="x")
    g = report.gauge("handle_temp", help="T")
    g.set(5)
    dagent.report_inc("handle_plain_total")
    dagent.report_set("handle_temp", 6)
    dagent.report_dec("handle_temp")
    hist = report.histogram("handle_seconds", buckets=[0.1, 1])
    hist.observe(0.5)
    text = report.render()
    assert 'handle_jobs_total{kind="x"} 3' in text and "handle_temp 5" in text and "handle_plain_total 1" in text
    assert 'handle_seconds_bucket{le="1.0"} 1' in text


def test_bad_input_is_refused_clearly():
    r = Registry()
    r.max_series = 3
    with pytest.raises(MetricError, match="not a Prometheus name"):
        r.set("bad-name", 1)
    with pytest.raises(MetricError, match="must not end in _total"):
        r.observe("x_total", 1)
    with pytest.raises(MetricError, match="must end in _total"):
        report.counter("jobs")
    with pytest.raises(MetricError, match="reserved"):
        r.set("g", 1, node="x")
    r.inc("c_total")
    with pytest.raises(MetricError, match="is a counter; it cannot be used as a gauge"):
        r.set("c_total", 1)
    with pytest.raises(MetricError, match="can only go up"):
        r.inc("c_total", -1)
    r.set("g", 1, a="1")
    with pytest.raises(MetricError, match=r"has labels \[a\]; got \[b\]"):
        r.set("g", 1, b="1")
    for i in range(2, 4):
        r.set("g", 1, a=str(i))
    with pytest.raises(MetricError, match="MAX_SERIES=3"):
        r.set("g", 1, a="4")
    with pytest.raises(MetricError, match="strictly increasing"):
        report.histogram("bad_seconds", buckets=[1, 1])


def test_label_flood_keeps_memory_flat():
    r = Registry()
    r.max_series = 100
    refused = 0
    for i in range(20000):
        try:
            r.inc("flood_total", id=str(i))
        except MetricError:
            refused += 1
    assert refused == 19900 and len(r.families["flood_total"].series) == 100
    assert len(r._cache) == 100


def test_bound_handles_update_their_cell_and_keep_the_rules():
    from dagent.report import _Handle
    r = Registry()
    r.max_series = 2
    c = _Handle(r, "bound_jobs_total", "counter", "Jobs", ["kind"])
    a = c.labels(kind="a")
    for _ in range(5):
        a.inc()
    a.inc(3)
    c.inc(kind="a")                      # by name: the same series
    assert r.changes()["families"][0]["series"] == [{"l": ["a"], "d": 9}]
    with pytest.raises(MetricError, match="can only go up"):
        a.inc(-1)
    with pytest.raises(MetricError, match="only gauges go down"):
        a.dec()
    with pytest.raises(MetricError, match="cannot be used as a gauge"):
        a.set(1)
    c.labels(kind="b")
    with pytest.raises(MetricError, match="MAX_SERIES=2"):
        c.labels(kind="c")               # checked when the labels are bound
    with pytest.raises(MetricError, match="has labels"):
        c.labels(other="x")
    g = _Handle(r, "bound_depth", "gauge", "Depth", ["q"]).labels(q="in")
    g.set(4)
    g.dec()
    g.inc(2)
    assert 'bound_depth{q="in"} 5' in r.render()
