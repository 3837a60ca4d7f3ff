"""Standalone Python nodes on System V message queues (`via="msgq://PATH"`), and `dagent.tree` /
`python -m dagent tree`, against real processes.

The tree: an agent serving msgq://PATH (also on TCP) that hosts the shipped plugins and a test
plugin that calls other nodes, and a Swift `--echo` leaf on the queue. Python leaves join the same
queue: messages between leaves go brother to brother (the agent routes none of them).
"""

import ctypes
import json
import os
import socket
import subprocess
import sys
import threading

import pytest

from harness import PYTHON_DIR, ROOT, dagent_binary, free_port, wait_for
from test_standalone import PEER, ready_node

import dagent  # noqa: E402  (test_standalone put python/ on sys.path)

HERE = os.path.dirname(os.path.abspath(__file__))
_libc = ctypes.CDLL(None, use_errno=True)


def msgq_keys(path):
    """The agent's IPC keys for `path` (ftok with the projects of MsgqKeys: 'U' up, 'D' down, 'T' table)."""
    _libc.ftok.restype = ctypes.c_int
    return {kind: _libc.ftok(path.encode(), proj) for kind, proj in (("up", 0x55), ("down", 0x44), ("table", 0x54))}


def ipc_objects():
    """Every System V queue and shared-memory segment: {(kind, key, id): {column: int}} from /proc/sysvipc."""
    out = {}
    for kind in ("msg", "shm"):
        with open(f"/proc/sysvipc/{kind}") as f:
            header = f.readline().split()
            for line in f:
                row = dict(zip(header, (int(x) for x in line.split())))
                out[(kind, row["key"], row["msqid" if kind == "msg" else "shmid"])] = row
    return out


def touched_by(row, pids):
    """True if one of `pids` created or last used the object (msg: lspid/lrpid; shm: cpid/lpid)."""
    return any(row.get(col) in pids for col in ("lspid", "lrpid", "cpid", "lpid"))


def table_attachments(path):
    """nattch of the agent's name table (processes that have it mapped), None if it does not exist."""
    key = msgq_keys(path)["table"]
    for (kind, k, _), row in ipc_objects().items():
        if kind == "shm" and k == key:
            return row["nattch"]
    return None


def remove_ipc(path):
    """Removes what an agent that did not stop cleanly left at `path` (only these keys)."""
    if not os.path.exists(path):
        return
    keys = msgq_keys(path)
    for flag, key in (("-Q", keys["up"]), ("-Q", keys["down"]), ("-M", keys["table"])):
        subprocess.run(["ipcrm", flag, str(key)], capture_output=True)


def python_m_dagent(*args, timeout=30):
    """`python -m dagent ARGS` in a fresh interpreter; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-m", "dagent", *args], capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "PYTHONPATH": PYTHON_DIR})


@pytest.fixture
def qtree(cluster):
    """An agent on msgq://PATH (and TCP) with plugins, and the Swift leaf echo1 on the queue."""
    path = cluster.path("agent.q")
    via = f"msgq://{path}"
    tcp = cluster.addr("agent")
    cluster.start_node("agent", "--msgq", path, "--listen", tcp,
                       "--plugins", os.path.join(ROOT, "plugins"), "--plugins", os.path.join(HERE, "caller_plugin"))
    cluster.start_node("echo1", "--parent", via, "--echo")

    def ready():
        got = dagent.tree(via, json=True, timeout=1)
        host = got.get("plugin_host", {})
        return ("echo1" in {n["name"] for n in got["names"]} and host.get("running")
                and any(p["name"] == "echo" and p["state"] == "loaded" for p in host.get("plugins", [])))

    # the agent starts its plugin host after it serves the queue: wait for both
    wait_for("echo1 registered on the queue and the agent's plugins loaded", ready)
    yield {"via": via, "path": path, "tcp": tcp, "cluster": cluster}
    cluster.stop_all()
    remove_ipc(path)


def peer(q, name):
    p = q["cluster"].start_python(name, PEER, name, q["via"])
    wait_for(f"{name} ready", lambda: "ready" in p.lines or p.p.poll() is not None)
    assert p.p.poll() is None, p.stderr()
    return p


def test_python_nodes_over_msgq_talk_brother_to_brother(qtree):
    via, path = qtree["via"], qtree["path"]
    keys = msgq_keys(path)
    before = ipc_objects()
    ours = {k for k in before if k[1] in keys.values()}
    assert len(ours) == 3, f"the agent's two queues and its name table: {ours}"
    attached = table_attachments(path)          # the agent and echo1

    node = ready_node("py-q1", via)
    assert node.ready() and node.tree(json=True)["parent"] == "agent"
    assert table_attachments(path) == attached + 1, "the Python leaf maps the name table"

    @node.on(1)
    def upper(msg):
        return msg.data.upper()

    # the Swift echo leaf, the agent's plugins, and a plugin calling this node
    assert node.request("echo1", 7, b"hello echo over msgq", timeout=3) == b"hello echo over msgq"
    wait_for("the agent's plugins", lambda: node.request("agent", 2, b"", timeout=1).startswith(b"pong from agent"))
    assert node.request("agent", 1, b"to the echo plugin", timeout=3) == b"to the echo plugin"
    assert node.request("agent", 10, b"incr visits", timeout=3) == b"1"
    assert node.run(node.arequest("agent", 60, b"py-q1", timeout=5)) == b"HELLO FROM PLUGIN ON AGENT"

    # another Python node (a separate process) on the same queue
    p = peer(qtree, "py-q2")
    assert node.request("py-q2", 1, b"warm up", timeout=3) == b"WARM UP"
    agent0 = dagent.tree(via, json=True)
    mine0 = node.tree(json=True)
    n = 20
    for i in range(n):
        assert node.request("py-q2", 1, f"hi {i}".encode(), timeout=3) == f"HI {i}".encode()
        assert node.request("echo1", 1, f"echo {i}".encode(), timeout=3) == f"echo {i}".encode()
    # the other direction: py-q2 asks this node (its loop runs while we await)
    for i in range(n):
        assert node.run(node.arequest("py-q2", 5, b"py-q1", timeout=5)) == b"FROM PY-Q2"
    # py-q2 asks echo1 (leaf to leaf without this node)
    assert node.request("py-q2", 4, b"relayed", timeout=5) == b"relayed!"
    agent1 = dagent.tree(via, json=True)
    mine1 = node.tree(json=True)
    print(f"agent routed {agent0['messages_routed']} -> {agent1['messages_routed']}; "
          f"py-q1 direct out {mine0['direct_out']} -> {mine1['direct_out']}, in {mine0['direct_in']} -> {mine1['direct_in']}")
    assert agent1["messages_routed"] == agent0["messages_routed"], "the agent routed brother traffic"
    assert agent1["messages_delivered"] == agent0["messages_delivered"], "the agent handled brother traffic"
    # requests out + replies to py-q2's requests; replies in + py-q2's requests
    assert mine1["direct_out"] - mine0["direct_out"] >= 4 * n
    assert mine1["direct_in"] - mine0["direct_in"] >= 4 * n

    assert node.request("py-q2", 9, b"", timeout=3) == b"bye"
    p.p.wait(10)
    assert p.p.returncode == 0, p.stderr()
    node.close()

    # The Python leaves created nothing and left nothing: only the agent's three objects are new,
    # and both leaves unmapped the table.
    wait_for("the Python leaves unmapped the name table", lambda: table_attachments(path) == attached)
    after = ipc_objects()
    left = {k: row for k, row in after.items() if k not in before and touched_by(row, {os.getpid(), p.p.pid})}
    assert left == {}, f"IPC objects created by the Python nodes and still there: {left}"
    assert {k for k in after if k[1] in keys.values()} == ours

    # a clean stop of echo1 and the agent removes the agent's objects too
    for key in ("echo1", "agent"):
        proc = qtree["cluster"].procs[key]
        assert qtree["cluster"].stop(key) == 0, proc.stderr()
    gone = ipc_objects()
    assert {k for k in gone if k[1] in keys.values()} == set(), "the agent's queues and table were not removed"


def test_init_style_and_cli_over_msgq(qtree):
    via = qtree["via"]
    dagent.init("py-q-init", via)
    try:
        wait_for("echo1 via init", lambda: dagent.request("echo1", 1, b"z", timeout=1) == b"z")
    finally:
        dagent.destroy()
    r = python_m_dagent("request", "--via", via, "--to", "echo1", "hi from the CLI")
    assert (r.returncode, r.stdout) == (0, "hi from the CLI\n"), r.stderr
    r = python_m_dagent("request", "--via", via, "--to", "agent", "--type", "2", "ping")
    assert r.returncode == 0 and r.stdout.startswith("pong from agent"), r.stderr
    r = python_m_dagent("send", "--via", via, "--to", "echo1", "one way")
    assert r.returncode == 0, r.stderr
    r = python_m_dagent("request", "--via", via, "--to", "nobody", "x")
    assert r.returncode == 1 and r.stderr.startswith("dagent: no route"), r.stderr


def test_tree_over_msgq_and_tcp(qtree):
    via, path, tcp = qtree["via"], qtree["path"], qtree["tcp"]
    r = python_m_dagent("tree", "--via", via)
    assert r.returncode == 0, r.stderr
    assert r.stdout.startswith("agent [agent] (level 0, top of the tree)\n"), r.stdout
    assert "└── echo1 [leaf]  link msgq:" in r.stdout, r.stdout
    assert f"msgq://{path}: leaves=" in r.stdout, r.stdout
    assert "plugins: python " in r.stdout and "echo loaded types=1,2" in r.stdout, r.stdout

    r = python_m_dagent("tree", "--via", via, "--json")
    assert r.returncode == 0, r.stderr
    got = json.loads(r.stdout)
    assert got["name"] == "agent" and got["role"] == "agent"
    assert [(n["name"], n["level"]) for n in got["names"]] == [("echo1", 1)]
    assert got["msgq"][0]["path"] == path and got["msgq"][0]["table_names"] == 1
    assert {p["name"] for p in got["plugin_host"]["plugins"]} >= {"echo", "kv", "caller"}

    # the same agent over TCP, the same report as the Swift CLI's
    r = python_m_dagent("tree", "--via", tcp, "--json")
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout)["names"] == got["names"]
    swift = subprocess.run([dagent_binary(), "tree", "--via", tcp], capture_output=True, text=True, timeout=30)
    mine = python_m_dagent("tree", "--via", tcp)
    strip = lambda text: [ln for ln in text.splitlines() if "link" not in ln and "up:" not in ln]  # noqa: E731 (counters move)
    assert strip(mine.stdout) == strip(swift.stdout), (mine.stdout, swift.stdout)

    # in-process: text, dict
    assert dagent.tree(tcp).startswith("agent [agent]")
    assert dagent.tree(via, json=True)["msgq"][0]["path"] == path


def test_tree_errors(workdir):
    missing = os.path.join(workdir, "nobody.q")
    r = python_m_dagent("tree", "--via", f"msgq://{missing}")
    assert r.returncode == 1 and r.stdout == ""
    assert r.stderr == f"dagent: not ready: no agent at msgq://{missing}: the path does not exist\n", r.stderr
    port = free_port()
    r = python_m_dagent("tree", "--via", f"tcp://127.0.0.1:{port}", "--json")
    assert r.returncode == 1 and r.stderr.startswith(f"dagent: refused: cannot connect to tcp://127.0.0.1:{port}"), r.stderr
    r = python_m_dagent("tree", "--via", "bogus://x")
    assert r.returncode == 1 and "address 'bogus://x' is not understood" in r.stderr, r.stderr
    r = python_m_dagent("request", "--via", f"msgq://{missing}", "--to", "x", "--timeout", "0.5", "x")
    assert r.returncode == 1, r.stderr
    assert r.stderr.splitlines()[-1].startswith("dagent: not ready: node 'py-cli-"), r.stderr
    assert "no agent at msgq://" in r.stderr.splitlines()[-1], "the reason is in the error itself"

    with pytest.raises(dagent.NotReady):
        dagent.tree(f"msgq://{missing}")
    with pytest.raises(dagent.Refused):
        dagent.tree(f"tcp://127.0.0.1:{port}")
    with pytest.raises(dagent.DAgentError) as info:
        dagent.tree(f"tcp://127.0.0.1:{port}", timeout=0)
    assert info.value.code == 100 and "timeout must be > 0" in str(info.value)
    with pytest.raises(TypeError):
        dagent.tree(None)

    # something listens but never answers: Timeout, within about the timeout
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen()
        accepted = []
        t = threading.Thread(target=lambda: accepted.append(server.accept()), daemon=True)
        t.start()
        with pytest.raises(dagent.Timeout) as info:
            dagent.tree(f"tcp://127.0.0.1:{server.getsockname()[1]}", timeout=0.5)
        assert "did not answer the tree request within 0.5s" in str(info.value)
        for conn, _ in accepted:
            conn.close()
