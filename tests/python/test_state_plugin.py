"""dagent.state from a Python plugin on an agent under a one-replica root group."""
import json
import os
import signal
import subprocess

from conftest import free_port, wait_for
from test_raft_group import D, state

HERE = os.path.dirname(os.path.abspath(__file__))


def ask(via, t, data, timeout=5):
    r = subprocess.run([D, "request", "--via", via, "--to", "agent", "--type", str(t), "--timeout", str(timeout), data],
                       capture_output=True, text=True, timeout=timeout + 10)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_plugin_uses_the_replicated_store(workdir):
    port, agent_port = free_port(), free_port()
    cluster = os.path.join(workdir, "one.json")
    with open(cluster, "w") as f:
        json.dump([{"stream_id": 1, "node_id": 1, "ip": "127.0.0.1", "port": port, "role": "LEADER"}], f)
    root = subprocess.Popen([D, "run", "--raft", cluster, "--node-id", "1", "--data", os.path.join(workdir, "r1")],
                            stderr=open(os.path.join(workdir, "root.log"), "w"))
    agent = subprocess.Popen([D, "run", "--name", "agent", "--listen", f"tcp://127.0.0.1:{agent_port}",
                              "--parent", f"tcp://127.0.0.1:{port}", "--plugins", os.path.join(HERE, "state_plugin")],
                             stderr=open(os.path.join(workdir, "agent.log"), "w"))
    via = f"tcp://127.0.0.1:{agent_port}"
    try:
        wait_for("leader", lambda: (state(["status"], f"tcp://127.0.0.1:{port}") or {}).get("leader") == 1)
        wait_for("the plugin", lambda: subprocess.run([D, "request", "--via", via, "--to", "agent", "--type", "44", "x"],
                                                      capture_output=True).returncode == 0)
        got = json.loads(ask(via, 41, "cfg/color=blue"))
        assert got["got"] == "blue" and got["rev"] >= 1
        assert state(["get", "cfg/color"], via)["record"]["value"] == "blue", "visible to everyone"
        r = json.loads(ask(via, 42, "-"))
        assert r == {"first": True, "second": False, "all": [["cfg/color", "red"]]}
        assert ask(via, 43, "-") == "watching"
        for v in ("a", "b"):
            assert state(["put", "w/k", v], via)["ok"]
        wait_for("watch events in the plugin", lambda: len(json.loads(ask(via, 44, "-"))) == 2)
        events = json.loads(ask(via, 44, "-"))
        assert [e[1] for e in events] == ["a", "b"] and events[0][2] < events[1][2]
        assert json.loads(ask(via, 45, "cfg/color")) == "red"
        assert json.loads(ask(via, 45, "nope")) is None
    finally:
        for p in (agent, root):
            p.send_signal(signal.SIGTERM)
            p.wait(timeout=10)


def test_standalone_python_uses_the_replicated_store(workdir):
    port = free_port()
    cluster = os.path.join(workdir, "one.json")
    with open(cluster, "w") as f:
        json.dump([{"stream_id": 1, "node_id": 1, "ip": "127.0.0.1", "port": port, "role": "LEADER"}], f)
    root = subprocess.Popen([D, "run", "--raft", cluster, "--node-id", "1", "--data", os.path.join(workdir, "r1")],
                            stderr=open(os.path.join(workdir, "root.log"), "w"))
    script = f"""
import dagent, json
with dagent.Node(name="py-state", via="tcp://127.0.0.1:{port}") as node:
    rev = dagent.state.put("py/k", "v1")
    out = {{"rev": rev, "get": dagent.state.get("py/k"), "cas": dagent.state.cas("py/k", "v2", expect="v1"),
           "stale_cas": dagent.state.cas("py/k", "v3", expect="v1"), "range": dagent.state.range("py/")}}
    print(json.dumps(out))
"""
    try:
        wait_for("leader", lambda: (state(["status"], f"tcp://127.0.0.1:{port}") or {}).get("leader") == 1)
        python_dir = os.path.join(os.path.dirname(os.path.dirname(HERE)), "python")
        r = subprocess.run(["/usr/bin/python3", "-c", script], capture_output=True, text=True, timeout=60,
                           env={**os.environ, "PYTHONPATH": python_dir})
        assert r.returncode == 0, r.stderr
        out = json.loads(r.stdout.strip().splitlines()[-1])
        assert out == {"rev": 1, "get": "v1", "cas": True, "stale_cas": False, "range": [["py/k", "v2"]]}
    finally:
        root.send_signal(signal.SIGTERM)
        root.wait(timeout=10)
