"""scripts/demo in its non-interactive mode (--no-wait, no benchmarks): it walks through every step,
exits 0 and leaves no process and no IPC object behind."""
import ctypes
import os
import re
import socket
import subprocess

from harness import ROOT, dagent_binary, owned_port


def port_base():
    """A base P with P, P+1, P+2, P+10 and P+11 free on loopback (all of this xdist worker's blocks)."""
    for _ in range(1000):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            base = s.getsockname()[1]
        if base > 65000 or not (owned_port(base) and owned_port(base + 11)):
            continue
        try:
            for off in (1, 2, 10, 11):
                with socket.socket() as s:
                    s.bind(("127.0.0.1", base + off))
            return base
        except OSError:
            continue
    raise AssertionError("no free port base found")


def ipc_exists(path):
    libc = ctypes.CDLL(None)
    libc.ftok.restype = ctypes.c_int
    keys = {"0x%08x" % (libc.ftok(path.encode(), proj) & 0xFFFFFFFF) for proj in (0x55, 0x44, 0x54)}
    out = subprocess.run(["ipcs", "-q", "-m"], capture_output=True, text=True).stdout
    return [line for line in out.splitlines() if line.split() and line.split()[0] in keys]


def test_demo_runs_every_step_and_cleans_up():
    base = port_base()
    r = subprocess.run([os.path.join(ROOT, "scripts", "demo"), "--no-wait", "--no-bench", "--port-base", str(base)],
                       capture_output=True, text=True, timeout=240, env={**os.environ, "DAGENT_BIN": dagent_binary()})
    out = r.stdout
    assert r.returncode == 0, f"demo failed:\n{out[-4000:]}\n{r.stderr[-4000:]}"
    assert "hello from the other side" in out
    assert '"status": "shipped"' in out and "order 1 is shipped: pay needs created" in r.stdout + r.stderr
    assert '"events": 4' in out, "order_stats counted the 4 committed steps"
    assert f"http://127.0.0.1:{base + 10}/healthz" in out and '"ready":true' in out
    assert "hello brother" in out and "p2p message 3" in out
    assert re.search(r'orders_events_total\{status="created"\} 2(\.0)?$', out, re.M), "a1's /metrics has order_stats' series"
    assert any('orders_commands_total{' in line and 'command="pay"' in line and 'node="a2"' in line
               and re.search(r"\} 1(\.0)?$", line) for line in out.splitlines()), "the collector has a2's series"
    assert f"http://127.0.0.1:{base + 11}/dashboard/" in out
    for page, title in (("push/", "dagent push: live topic"), ("dashboard/", "dagent metrics")):
        assert f"GET http://127.0.0.1:{base + 11}/{page}: 200" in out and f"<title>{title}</title>" in out, f"col serves /{page}"
    for script in ("push/dagent-push.js", "dashboard/chart.min.js"):
        assert f"GET http://127.0.0.1:{base + 11}/{script}: 200" in out
    assert f"http://127.0.0.1:{base + 11}/push/?token=" in out, "the demo prints the push page's URL"
    got = [line for line in out.splitlines() if line.strip().startswith("client 1 <-")]
    assert got and '"topic": "orders.web"' in got[0] and "hello from a browser" in got[0], "the push gateway delivered"
    if "dagent sub 'orders.*.created'" in out:
        assert "orders.eu.created order 1 (eu)" in out and "orders.eu.shipped order 1 shipped" in out
    logs = re.search(r"Logs are in (\S+)", out).group(1)
    assert not ipc_exists(os.path.join(logs, "a1.q")), "a1's queues and name table are gone"
    ports = "|".join(f"127.0.0.1:{base + off}" for off in (0, 1, 2))
    left = subprocess.run(["pgrep", "-a", "-f", f"{logs}|({ports})( |$|,)"], capture_output=True, text=True).stdout
    assert not left, f"processes of the demo are left: {left}"
