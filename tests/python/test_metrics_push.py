"""The collector publishes each node's latest values on metrics.<node> through the push plugin:
a real WebSocket client (the websockets package) subscribed to metrics.> gets them."""
import asyncio
import json
import os
import signal
import subprocess
import sys

import pytest

from conftest import dagent_binary, free_port, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "python"))
D = dagent_binary()
SECRET = b"metrics-push-test-secret-0123456789"

websockets = pytest.importorskip("websockets", reason="scripts/setup installs python3-websockets")
from test_dashboard import ARTIFACTS, browser  # noqa: E402,F401 - the headless Chromium fixture


def test_collector_publishes_metrics_to_websocket_clients(workdir, browser):
    from dagent import push
    secret = os.path.join(workdir, "push.secret")
    with open(secret, "wb") as f:
        f.write(SECRET)
    port, http = free_port(), free_port()
    plug = os.path.join(workdir, "plugins")
    os.makedirs(plug)
    for name in ("collector", "push"):
        os.symlink(os.path.join(ROOT, "plugins", name), os.path.join(plug, name))
    cfg = os.path.join(workdir, "col.yaml")
    with open(cfg, "w") as f:
        f.write(f"name: col\nlisten: tcp://127.0.0.1:{port}\nhttp: tcp://127.0.0.1:{http}\n"
                f"plugins:\n  dirs: [{plug}]\n  config:\n"
                f"    push: {json.dumps({'secret_file': secret, 'conflate': ['metrics.>']})}\n"
                f"    collector: {json.dumps({'token_secret_file': secret})}\n")
    procs = [subprocess.Popen([D, "run", "--config", cfg], stderr=open(os.path.join(workdir, "col.log"), "w"))]
    procs.append(subprocess.Popen([D, "run", "--name", "n0", "--parent", f"tcp://127.0.0.1:{port}", "--report-to", "col",
                                   "--report-interval", "0.2", "--plugins", os.path.join(HERE, "metrics_plugin")],
                                  stderr=open(os.path.join(workdir, "n0.log"), "w")))
    try:
        wait_for("n0's plugin", lambda: subprocess.run([D, "request", "--via", f"tcp://127.0.0.1:{port}", "--to", "n0",
                                                        "--type", "60", "6"], capture_output=True).returncode == 0, timeout=60)
        def push_ready():
            out = subprocess.run([D, "tree", "--via", f"tcp://127.0.0.1:{port}", "--json"], capture_output=True, text=True, timeout=10)
            return json.loads(out.stdout).get("push_gateway", {}).get("service")
        wait_for("the push gateway", push_ready, timeout=60)
        token = push.token(SECRET, sub="dash", topics=["metrics.>"], ttl=600)

        async def watch():
            async with websockets.connect(f"ws://127.0.0.1:{http}/ws?token={token}", max_size=2**22) as ws:
                await ws.send(json.dumps({"op": "sub", "topic": "metrics.n0"}))
                while True:
                    frame = json.loads(await asyncio.wait_for(ws.recv(), 20))
                    if frame.get("op") == "error":
                        raise AssertionError(frame)
                    if frame.get("op") != "msg":
                        continue
                    assert frame["topic"] == "metrics.n0"
                    data = json.loads(frame["data"])
                    values = {(m, json.dumps(l, sort_keys=True)): v for m, l, v in data["series"]}
                    if values.get(("test_jobs_total", '{"kind": "a"}')) == 6:
                        return data
        data = asyncio.run(asyncio.wait_for(watch(), 60))
        assert data["node"] == "n0" and data["up"] is True
        # The dashboard goes live over /ws and charts the pushed values.
        browser.get(f"http://127.0.0.1:{http}/dashboard/?metrics=test_jobs_total")

        def last_points():
            return browser.execute_script("""
                if (!window.dagentLive) return null;
                const c = window.dagentCharts && window.dagentCharts['test_jobs_total'];
                if (!c) return null;
                return c.data.datasets.map(d => [d.label, d.data.length >= 3 ? d.data[d.data.length - 1].y : null, d.data.slice(-3)]);
            """)
        wait_for("the live chart", lambda: [p[1] for p in (last_points() or []) if p[0].startswith("n0")] == [6], timeout=30)
        assert "live over /ws" in browser.find_element("id", "status").text
        os.makedirs(ARTIFACTS, exist_ok=True)
        browser.save_screenshot(os.path.join(ARTIFACTS, "dashboard-live.png"))
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            p.wait(timeout=15)
