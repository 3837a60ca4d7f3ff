"""Several streams per root process (DCF style): each stream is its own Raft group with its own
leader and data directory; `streams:` maps key prefixes to streams; bad stream configs fail with
a clear error."""
import json
import os

from harness import PYTHON_DIR, state, wait_for


def write_json(cluster, name, entries):
    path = cluster.path(name)
    with open(path, "w") as f:
        json.dump(entries, f)
    return path


def two_stream_json(cluster, leader2=3):
    ports = [cluster.port(f"s{i}") for i in (1, 2, 3)]
    entries = []
    for stream, leader in ((1, 1), (2, leader2)):
        for i, p in enumerate(ports, start=1):
            entries.append({"stream_id": stream, "node_id": i, "ip": "127.0.0.1", "port": p,
                            "role": "LEADER" if i == leader else "FOLLOWER"})
    return write_json(cluster, "streams.json", entries), ports


def start(cluster, path, i, *args):
    return cluster.start(f"s{i}", ["run", "--raft", path, "--node-id", str(i), "--data", cluster.path(f"s{i}-data"),
                                   "--streams", "orders/=2", *args])


def status(via, stream):
    return state(["status", "--stream", str(stream)], via) or {}


def test_two_streams_in_one_process_elect_and_serve_each(cluster):
    path, ports = two_stream_json(cluster)
    via = [f"tcp://127.0.0.1:{p}" for p in ports]
    for i in (1, 2, 3):
        start(cluster, path, i)
    wait_for("stream 1 has a leader", lambda: status(via[0], 1).get("leader"), timeout=30, logs=cluster.logs)
    wait_for("stream 2 has a leader", lambda: status(via[0], 2).get("leader"), timeout=30, logs=cluster.logs)
    s1, s2 = status(via[1], 1), status(via[1], 2)
    assert s1["stream"] == 1 and s2["stream"] == 2
    if s1["leader"] == s2["leader"]:   # `role: LEADER` is only a hint: move stream 2's leader
        target = 3 if s1["leader"] != 3 else 2
        assert (state(["transfer", "--to", str(target), "--stream", "2"], via[0], timeout=10) or {}).get("ok")
    wait_for("different leaders", lambda: status(via[2], 1).get("leader") != status(via[2], 2).get("leader"),
             logs=cluster.logs)
    # A key under orders/ lives in stream 2 (the streams: map), others in stream 1.
    assert state(["put", "orders/1", "book"], via[0])["ok"]
    assert state(["put", "cfg/color", "blue"], via[1])["ok"]
    assert state(["get", "orders/1"], via[2])["record"]["value"] == "book"
    assert state(["get", "orders/1", "--stream", "2"], via[1])["record"]["value"] == "book"
    assert "record" not in state(["get", "orders/1", "--stream", "1"], via[1]), "stream 1 does not hold it"
    assert "record" not in state(["get", "cfg/color", "--stream", "2"], via[1])
    assert state(["get", "cfg/color"], via[2])["record"]["value"] == "blue"
    assert status(via[0], 2)["revision"] == 1 and status(via[0], 1)["revision"] >= 1
    assert os.path.isdir(cluster.path("s1-data/stream-2")), "stream 2 has its own data directory"
    # Python's stream= addresses a stream explicitly.
    script = f"""
import dagent, json
with dagent.Node(name="py-streams", via="{via[2]}") as node:
    dagent.state.put("inv/pen", "3", stream=2)
    print(json.dumps([dagent.state.get("inv/pen", stream=2), dagent.state.get("inv/pen")]))
"""
    r = cluster.run("-c", script, executable=["/usr/bin/python3"], timeout=60, env={"PYTHONPATH": PYTHON_DIR})
    assert r.returncode == 0, r.stderr
    assert json.loads(r.stdout.strip().splitlines()[-1]) == ["3", None]
    # One transaction cannot span streams.
    txn = cluster.path("txn.json")
    with open(txn, "w") as f:
        json.dump({"compare": [], "success": [{"op": "put", "key": "orders/2", "value": "x"},
                                              {"op": "put", "key": "cfg/size", "value": "L"}]}, f)
    ans = state(["txn", "--file", txn], via[0])
    assert ans["ok"] is False and "map to several streams" in ans["error"], ans
    ans = state(["get", "k", "--stream", "9"], via[0])
    assert ans["ok"] is False and "there is no stream 9" in ans["error"], ans
    # Kill stream 2's leader process: stream 2 elects another leader and keeps serving.
    leader2 = status(via[0], 2)["leader"]
    cluster.kill9(f"s{leader2}")
    alive = [v for i, v in enumerate(via, start=1) if i != leader2]
    wait_for("stream 2 re-elected", lambda: status(alive[0], 2).get("leader") not in (None, leader2), timeout=30,
             logs=cluster.logs)
    wait_for("stream 2 serves", lambda: (state(["put", "orders/3", "pen"], alive[0]) or {}).get("ok"), logs=cluster.logs)
    start(cluster, path, leader2)
    wait_for("the restarted replica caught up on stream 2",
             lambda: (state(["get", "orders/3", "--stream", "2"], via[leader2 - 1]) or {}).get("record", {}).get("value") == "pen",
             timeout=30, logs=cluster.logs)


def test_bad_stream_configs_fail_with_a_clear_error(cluster):
    p = [cluster.port(f"b{i}") for i in (1, 2)]

    def run(entries, *args, node=1):
        path = write_json(cluster, f"bad{len(os.listdir(cluster.workdir))}.json", entries)
        r = cluster.run("run", "--raft", path, "--node-id", str(node), "--data", cluster.path(f"bad-data-{os.urandom(4).hex()}"),
                        *args, timeout=30)
        assert r.returncode == 2, (r.returncode, r.stderr)
        return r.stderr

    def member(stream, node, port, role="FOLLOWER"):
        return {"stream_id": stream, "node_id": node, "ip": "127.0.0.1", "port": port, "role": role}

    err = run([member(1, 1, p[0]), member(2, 1, p[1])])
    assert "node_id 1 has different addresses in different streams" in err, err
    err = run([member(1, 1, p[0]), member(2, 1, p[0]), member(2, 2, p[1])], node=2)
    assert "node_id 2 is in stream(s) [2] but not in stream 1" in err, err
    err = run([member(1, 1, p[0]), member(2, 1, p[0])], "--streams", "orders/=5")
    assert "prefix 'orders/' maps to stream 5, which the cluster JSON does not have (its streams: 1, 2)" in err, err
    err = run([member(1, 1, p[0]), member(2, 1, p[0])], "--streams", "orders")
    assert "entry 'orders' must be PREFIX=STREAM" in err, err
    err = run([member(1, 1, p[0]), member(2, 1, p[0])], "--streams", "orders/=0")
    assert "stream '0' must be an integer >= 1" in err, err
