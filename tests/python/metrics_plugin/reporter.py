"""Reports what tests/python/test_metrics.py asks: type 60 'K' adds K to test_jobs_total{kind="a"}."""
import dagent

jobs = dagent.report.counter("test_jobs_total", help="Jobs the test asked for", labels=["kind"])
temp = dagent.report.gauge("test_temperature_celsius", help="A gauge the test sets")
lat = dagent.report.histogram("test_job_seconds", help="A histogram the test feeds", buckets=[0.1, 1, 10])


@dagent.on(60)
def add(msg):
    k = int(msg.data)
    jobs.inc(k, kind="a")
    temp.set(20 + k)
    lat.observe(0.5)
    return b"ok"


@dagent.on(61)
def bad(msg):
    """Tries each kind of bad input and answers with the errors, one per line."""
    errors = []
    for fn in (lambda: dagent.report.inc("bad-name_total"),
               lambda: dagent.report.set("test_jobs_total", 1),
               lambda: [dagent.report.inc("flood_total", id=str(i)) for i in range(5000)]):
        try:
            fn()
        except ValueError as exc:
            errors.append(str(exc))
    return "\n".join(errors).encode()


@dagent.on(62)
def fails(msg):
    """Raises: counted in dagent_plugin_errors_total{plugin="reporter"}."""
    raise RuntimeError("test_metrics asked this handler to fail")
