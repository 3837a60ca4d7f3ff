"""A stream of one-way messages into a plugin handler through the batched data path (the node
hands whole batches to the plugin host, which feeds Python in batches): every message arrives
once and in the sender's order, a handler that raises now and then is counted and the stream
goes on, and requests in the middle of the stream are answered from the return value. The host
reuses a Message and its payload for the next message only when the handler kept neither: a
handler that keeps messages, or only their payloads, in lists reads the right data later.

Needs the standalone extension built in place (see test_standalone.py)."""
import json
import os
import sys
import time

from harness import PYTHON_DIR, wait_for

sys.path.insert(0, PYTHON_DIR)

import dagent  # noqa: E402

PLUGIN = """
import dagent

state = {"n": 0, "next": 0, "out_of_order": 0}

@dagent.on(70)
def seq(msg):
    i = int(msg.data)
    if i != state["next"]:
        state["out_of_order"] += 1
    state["next"] = i + 1
    state["n"] += 1
    if i % 1000 == 999:
        raise ValueError(f"every thousandth message raises ({i})")

@dagent.on(71)
def ask(msg):
    return json.dumps(state) if msg.data == b"state" else msg.data.upper()

import json
"""

COUNT = 30_000


def _agent_with_plugin(cluster, filename, source, node_name):
    """Starts agent "agent" with the plugin `source` as `filename`; returns its address and a
    standalone node `node_name` joined to it."""
    plugins = cluster.path("plugins")
    os.makedirs(plugins)
    with open(os.path.join(plugins, filename), "w") as f:
        f.write(source)
    via = cluster.addr("agent")
    cluster.start_node("agent", "--listen", via, "--plugins", plugins)
    deadline = time.time() + 20
    while True:
        try:
            return via, dagent.Node(name=node_name, via=via, ready_timeout=2.0)
        except dagent.NotReady:
            if time.time() > deadline:
                raise


def test_a_stream_arrives_in_order_with_errors_counted_and_requests_answered(cluster):
    via, node = _agent_with_plugin(cluster, "seq.py", PLUGIN, "streamer")
    try:
        wait_for("the plugin", lambda: node.request("agent", 71, b"x", timeout=2.0) == b"X", logs=cluster.logs)
        for i in range(COUNT):
            node.send("agent", 70, str(i).encode())
            if i % 5000 == 2500:   # a request in the middle of the stream, answered from the return value
                assert node.request("agent", 71, b"mid", timeout=10.0) == b"MID"

        def state():
            return json.loads(node.request("agent", 71, b"state", timeout=10.0))
        wait_for(f"{COUNT} messages handled", lambda: state()["n"] == COUNT, timeout=60, logs=cluster.logs)
        s = state()
        assert s == {"n": COUNT, "next": COUNT, "out_of_order": 0}, s
    finally:
        node.close()
    wait_for("the errors counted", lambda: (_plugin(cluster, via, "seq") or {}).get("errors") == COUNT // 1000,
             logs=cluster.logs)
    assert _plugin(cluster, via, "seq")["state"] == "loaded"


KEEPER = """
import json

import dagent

kept = []        # every third message, kept whole
kept_data = []   # the payload alone of the next one
replied = []     # requests answered with msg.reply, kept
state = {"n": 0, "bad_hash": 0}

@dagent.on(72)
def keep(msg):
    i = state["n"]   # the stream arrives in order
    # hash() caches in the bytes object: a reused payload must not answer with the old hash
    if hash(msg.data) != hash(bytes(bytearray(msg.data))):
        state["bad_hash"] += 1
    if i % 3 == 0:
        kept.append(msg)
    elif i % 3 == 1:
        kept_data.append(msg.data)
    state["n"] += 1

@dagent.on(73)
def check(msg):
    if msg.data == b"count":
        return str(state["n"])
    msg.reply(json.dumps({
        "state": state,
        "kept": [[m.src, m.type, m.text, m.cookie] for m in kept],
        "kept_data": [d.decode() for d in kept_data],
        "replied": [[m.text, m.replied] for m in replied],
    }))
    replied.append(msg)
"""


def test_messages_and_payloads_kept_by_a_handler_keep_their_data(cluster):
    via, node = _agent_with_plugin(cluster, "keeper.py", KEEPER, "keeper-src")
    n = 9_000

    def text(i):
        # mostly one length (the payload is overwritten in place), now and then another, and
        # single bytes (CPython shares one bytes object per byte value: never overwritten)
        return "abcdefghij"[i // 50 % 10] if i % 50 == 0 else str(i) if i % 97 == 0 else str(i).zfill(6)
    try:
        wait_for("the plugin", lambda: node.request("agent", 73, b"count", timeout=2.0) == b"0", logs=cluster.logs)
        for i in range(n):
            node.send("agent", 72, text(i).encode())
        wait_for(f"{n} messages handled", lambda: node.request("agent", 73, b"count", timeout=10.0) == str(n).encode(),
                 timeout=60, logs=cluster.logs)
        node.request("agent", 73, b"first", timeout=10.0)
        s = json.loads(node.request("agent", 73, b"second", timeout=10.0))
    finally:
        node.close()
    assert s["state"] == {"n": n, "bad_hash": 0}
    assert s["kept"] == [["keeper-src", 72, text(i), 0] for i in range(0, n, 3)]
    assert s["kept_data"] == [text(i) for i in range(1, n, 3)]
    assert s["replied"] == [["first", True]]


def _plugin(cluster, via, name):
    """The plugin's entry in `dagent tree --json` (wherever the reply nests it), or None."""
    def walk(x):
        if isinstance(x, dict):
            if x.get("name") == name and "errors" in x:
                return x
            x = list(x.values())
        if isinstance(x, list):
            for v in x:
                found = walk(v)
                if found is not None:
                    return found
        return None
    return walk(cluster.run_json("tree", "--via", via))
