"""dagent.state from a Python plugin on an agent under a one-replica root group."""
import json
import os

from harness import PYTHON_DIR, state, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))


def ask(cluster, via, t, data, timeout=5):
    r = cluster.run("request", "--via", via, "--to", "agent", "--type", str(t), "--timeout", str(timeout), data,
                    timeout=timeout + 10)
    assert r.returncode == 0, r.stderr
    return r.stdout.strip()


def test_plugin_uses_the_replicated_store(cluster):
    root = cluster.raft_group(1)
    root.start(1)
    via = cluster.addr("agent")
    cluster.start_node("agent", "--listen", via, "--parent", root.addr(1), "--plugins", os.path.join(HERE, "state_plugin"))
    wait_for("leader", lambda: (state(["status"], root.addr(1)) or {}).get("leader") == 1)
    wait_for("the plugin", lambda: cluster.run("request", "--via", via, "--to", "agent", "--type", "44", "x").returncode == 0)
    got = json.loads(ask(cluster, via, 41, "cfg/color=blue"))
    assert got["got"] == "blue" and got["rev"] >= 1
    assert state(["get", "cfg/color"], via)["record"]["value"] == "blue", "visible to everyone"
    r = json.loads(ask(cluster, via, 42, "-"))
    assert r == {"first": True, "second": False, "all": [["cfg/color", "red"]]}
    assert ask(cluster, via, 43, "-") == "watching"
    for v in ("a", "b"):
        assert state(["put", "w/k", v], via)["ok"]
    wait_for("watch events in the plugin", lambda: len(json.loads(ask(cluster, via, 44, "-"))) == 2)
    events = json.loads(ask(cluster, via, 44, "-"))
    assert [e[1] for e in events] == ["a", "b"] and events[0][2] < events[1][2]
    assert json.loads(ask(cluster, via, 45, "cfg/color")) == "red"
    assert json.loads(ask(cluster, via, 45, "nope")) is None


def test_standalone_python_uses_the_replicated_store(cluster):
    root = cluster.raft_group(1)
    root.start(1)
    script = f"""
import dagent, json
with dagent.Node(name="py-state", via="{root.addr(1)}") as node:
    rev = dagent.state.put("py/k", "v1")
    out = {{"rev": rev, "get": dagent.state.get("py/k"), "cas": dagent.state.cas("py/k", "v2", expect="v1"),
           "stale_cas": dagent.state.cas("py/k", "v3", expect="v1"), "range": dagent.state.range("py/")}}
    print(json.dumps(out))
"""
    wait_for("leader", lambda: (state(["status"], root.addr(1)) or {}).get("leader") == 1)
    r = cluster.run("-c", script, executable=["/usr/bin/python3"], timeout=60, env={"PYTHONPATH": PYTHON_DIR})
    assert r.returncode == 0, r.stderr
    out = json.loads(r.stdout.strip().splitlines()[-1])
    assert out == {"rev": 1, "get": "v1", "cas": True, "stale_cas": False, "range": [["py/k", "v2"]]}
