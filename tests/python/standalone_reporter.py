"""A standalone Python program (``import dagent`` over the C API) that reports metrics to a
collector, for test_metrics.py (a separate process).

    standalone_reporter.py NAME VIA COLLECTOR

Type 70 'K' adds K to sa_jobs_total{kind="k"} and observes 0.2 in sa_job_seconds; type 71 answers
``dagent.report.render()``. Prints "ready" once registered.
"""
import os
import sys

sys.path.insert(0, os.environ["DAGENT_PYTHON_PATH"])

import dagent  # noqa: E402

name, via, collector = sys.argv[1:4]
jobs = dagent.report.counter("sa_jobs_total", help="Jobs of a standalone program", labels=["kind"])
lat = dagent.report.histogram("sa_job_seconds", help="Job time of a standalone program", buckets=[0.1, 1])

with dagent.Node(name=name, via=via) as node:
    @node.on(70)
    def add(msg):
        jobs.inc(int(msg.data), kind="k")
        lat.observe(0.2)
        dagent.report_set("sa_queue_depth", 3)   # the original names work here too
        return b"ok"

    @node.on(71)
    def render(msg):
        return dagent.report.render().encode()

    dagent.report.report_to(collector, interval=0.2)
    print("ready", flush=True)
    while True:
        node.update(100)
