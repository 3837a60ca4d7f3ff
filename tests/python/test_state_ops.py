"""`dagent state` as an operator uses it: transactions, locks with fencing tokens, values
from files and stdin, chunked backups larger than a message, membership changes under
load, leadership transfer, a failed snapshot restore, and a follower catching up by a
chunked snapshot."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

from harness import PYTHON_DIR, Cluster, dagent_binary, free_port, state, wait_for

D = dagent_binary()


def put_all(batches):
    """``state.put`` of every (key, value) in one standalone Python process, much cheaper than a
    `dagent state put` process per key: ``batches`` is [(via, [(key, value), ...]), ...], each
    batch through its own node joined at ``via``. Every put is its own request and its own Raft
    entry, as with the CLI; the first refusal (StateError) or timeout fails the test."""
    script = """
import json, sys
import dagent
from dagent import state
done = 0
for i, (via, items) in enumerate(json.load(sys.stdin)):
    with dagent.Node(name=f"loader{i}", via=via):
        for key, value in items:
            state.put(key, value, timeout=4)
            done += 1
print(done)
"""
    r = subprocess.run(["/usr/bin/python3", "-c", script], input=json.dumps(batches), capture_output=True, text=True,
                       timeout=180, env={**os.environ, "PYTHONPATH": PYTHON_DIR})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split()[-1] == str(sum(len(items) for _, items in batches)), r.stdout


def get_all(via, keys):
    """``state.get`` of every key (one linearizable read each) in one standalone Python process
    joined at ``via``: the values in order, None for an absent key."""
    script = f"""
import json, sys
import dagent
from dagent import state
keys = json.load(sys.stdin)
with dagent.Node(name="reader", via={via!r}):
    values = [state.get(key, timeout=4) for key in keys]
print(json.dumps(values))
"""
    r = subprocess.run(["/usr/bin/python3", "-c", script], input=json.dumps(keys), capture_output=True, text=True,
                       timeout=180, env={**os.environ, "PYTHONPATH": PYTHON_DIR})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


class Group:
    """A harness.RaftGroup with the few extras these tests use (extra flags, the processes)."""

    def __init__(self, workdir, n=3):
        self.c = Cluster(workdir)
        self.rg = self.c.raft_group(n)
        self.cluster = self.rg.file
        self.extra = []

    def start(self, i):
        self.rg.start(i, *self.extra)

    def addr(self, i):
        return self.rg.addr(i)

    def kill9(self, i):
        self.rg.kill9(i)

    def leader(self):
        return self.rg.leader()

    def proc(self, i):
        return self.c.procs.get(f"r{i}")

    def stop_all(self):
        self.c.stop_all()


def run(args, via, timeout=10, stdin=None, check=True):
    r = subprocess.run([D, "state", *args, "--via", via], capture_output=True, text=True, timeout=timeout + 20,
                       input=stdin)
    if check:
        assert r.returncode == 0, (args, r.stdout, r.stderr)
    return r


def one_replica(workdir, extra=()):
    g = Group(workdir, n=1)
    g.start(1)
    wait_for("a leader", lambda: g.leader() == 1)
    return g


def test_txn_values_from_files_and_json_output(workdir):
    g = one_replica(workdir)
    try:
        via = g.addr(1)
        vfile = os.path.join(workdir, "v.txt")
        with open(vfile, "w") as f:
            f.write("from a file")
        assert run(["put", "cfg/a", "@" + vfile], via).stdout.strip().startswith("revision ")
        run(["put", "cfg/b", "-"], via, stdin="from stdin")
        assert run(["get", "cfg/a"], via).stdout == "from a file\n"
        assert run(["get", "cfg/b"], via).stdout == "from stdin\n"
        missing = run(["get", "cfg/none"], via, check=False)
        assert missing.returncode == 1 and "not found" in missing.stderr
        txn = os.path.join(workdir, "t.json")
        with open(txn, "w") as f:
            json.dump({"compare": [{"key": "cfg/a", "value": "from a file"}, {"key": "cfg/c", "missing": True}],
                       "success": [{"op": "put", "key": "cfg/c", "value": "3"}, {"op": "get", "key": "cfg/b"}],
                       "failure": [{"op": "get", "key": "cfg/c"}]}, f)
        first = json.loads(run(["txn", "--file", txn, "--json"], via).stdout)
        assert first["ok"] and first["succeeded"] is True
        assert first["responses"][1]["record"]["value"] == "from stdin"
        second = json.loads(run(["txn", "--file", txn, "--json"], via).stdout)
        assert second["succeeded"] is False and second["responses"][0]["record"]["value"] == "3"
        assert second["revision"] == first["revision"], "a failed compare with read-only ops is no revision"
        human = run(["txn", "--file", "-"], via, stdin=open(txn).read()).stdout
        assert human.startswith("failure branch ran")
        bad = os.path.join(workdir, "bad.json")
        with open(bad, "w") as f:
            json.dump({"compare": [{"key": "k", "value": "v", "version": 1}]}, f)
        r = run(["txn", "--file", bad], via, check=False)
        assert r.returncode == 1 and "exactly one of" in r.stderr
        st = json.loads(run(["status", "--json"], via).stdout)
        assert st["leader"] == 1 and st["members"] == [1]
        assert "leader 1" in run(["status"], via).stdout
    finally:
        g.stop_all()


def test_locks_exclude_fence_and_renew(workdir):
    g = one_replica(workdir)
    try:
        via = g.addr(1)
        # Two CLI holders without --owner: the second is refused (unique owners).
        first = json.loads(run(["lock", "deploy", "--ttl", "30", "--json"], via).stdout)
        assert first["ok"] and first["lock"]["owner"].startswith("dagent-cli-")
        second = run(["lock", "deploy", "--ttl", "30", "--json"], via, check=False)
        assert second.returncode == 1 and json.loads(second.stdout)["code"] == "lock_held"
        run(["lock", "deploy", "--release", "--owner", first["lock"]["owner"]], via)
        # lock NAME -- COMMAND: held while the command runs, renewed past its ttl, fenced.
        out = os.path.join(workdir, "tokens")
        script = f"echo $DAGENT_LOCK_TOKEN >> {out}; sleep 3.5"
        holder = subprocess.Popen([D, "state", "lock", "job", "--ttl", "1", "--via", via, "--", "sh", "-c", script],
                                  stderr=subprocess.PIPE, text=True)
        wait_for("the first holder", lambda: os.path.exists(out) and open(out).read().strip())
        time.sleep(1.5)     # longer than the ttl: only renewal keeps the lock
        busy = run(["lock", "job", "--json"], via, check=False)
        assert busy.returncode == 1 and json.loads(busy.stdout)["code"] == "lock_held", "the lease was renewed"
        waiter = subprocess.run([D, "state", "lock", "job", "--ttl", "2", "--wait", "20", "--via", via, "--", "sh", "-c",
                                 f"echo $DAGENT_LOCK_TOKEN >> {out}"], capture_output=True, text=True, timeout=40)
        assert waiter.returncode == 0, waiter.stderr
        assert holder.wait(timeout=20) == 0, holder.stderr.read()
        tokens = [int(t) for t in open(out).read().split()]
        assert len(tokens) == 2 and tokens[0] < tokens[1], f"fencing tokens only go up: {tokens}"
        # The command's exit status is the lock command's, and the lock is released after it.
        r = subprocess.run([D, "state", "lock", "job", "--via", via, "--", "sh", "-c", "exit 7"], timeout=30)
        assert r.returncode == 7
        assert json.loads(run(["lock", "job", "--json"], via).stdout)["ok"], "released when the command exited"
    finally:
        g.stop_all()


def test_expiring_holder_loses_to_a_new_one_with_a_larger_token(workdir):
    g = one_replica(workdir)
    try:
        via = g.addr(1)
        lease = json.loads(run(["lease", "grant", "1000", "--json"], via).stdout)["lease"]["id"]
        a = json.loads(run(["lock", "l", "--lease", str(lease), "--owner", "a", "--json"], via).stdout)
        # Nobody renews lease a: the lock goes when the lease expires on replicated time.
        b = run(["lock", "l", "--owner", "b", "--wait", "15", "--json"], via, timeout=30)
        b = json.loads(b.stdout)
        assert b["lock"]["owner"] == "b" and b["lock"]["token"] > a["lock"]["token"]
    finally:
        g.stop_all()


def test_backup_of_more_than_a_message_in_chunks_with_checksum(workdir):
    g = Group(workdir)
    for i in (1, 2, 3):
        g.start(i)
    try:
        wait_for("a leader", lambda: g.leader() is not None)
        value = "x" * 60_000
        # 2.4 MB: the old one-reply backup failed above 1 MiB. A third of the writes through each replica.
        put_all([(g.addr(r), [(f"big/{i:03d}", value) for i in range(40) if 1 + i % 3 == r]) for r in (1, 2, 3)])
        backup = os.path.join(workdir, "b.bin")
        r = subprocess.run([D, "state", "backup", "--via", g.addr(2), "--out", backup, "--json"],
                           capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        summary = json.loads(r.stdout)
        assert summary["bytes"] > 2_400_000 and summary["checksum"].startswith("crc32c:")
        assert "%)" in r.stderr, "progress lines"
        assert os.path.getsize(backup) == summary["bytes"]
    finally:
        g.stop_all()
    port = free_port()
    cluster = os.path.join(workdir, "new.json")
    with open(cluster, "w") as f:
        json.dump([{"stream_id": 1, "node_id": 1, "ip": "127.0.0.1", "port": port, "role": "LEADER"}], f)
    data = os.path.join(workdir, "restored")
    subprocess.run([D, "state", "restore", "--from", backup, "--raft", cluster, "--node-id", "1", "--data", data],
                   check=True, capture_output=True, timeout=60)
    p = subprocess.Popen([D, "run", "--raft", cluster, "--node-id", "1", "--data", data],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "restored.log"), "w"))
    try:
        via = f"tcp://127.0.0.1:{port}"
        wait_for("the restored group", lambda: (state(["status"], via) or {}).get("leader") == 1)
        assert state(["get", "big/039"], via)["record"]["value"] == value
        assert len(state(["range", "big/", "--limit", "10"], via)["records"]) == 10
        too_big = state(["range", "big/"], via)
        assert too_big["code"] == "too_large" and "max_message_bytes" in too_big["error"] and "--limit" in too_big["error"]
    finally:
        p.terminate()
        p.wait(timeout=10)


def test_member_add_remove_under_load_and_transfer(workdir):
    g = Group(workdir)
    for i in (1, 2, 3):
        g.start(i)
    acked, errors, stop = [], [], threading.Event()

    def writer(cid):
        n = 0
        try:
            while not stop.is_set():
                key, value = f"load/{cid}/{n}", f"v{n}"
                ans = state(["put", key, value], g.addr(1 + (n + cid) % 2), timeout=8)
                if ans and ans.get("ok"):
                    acked.append((key, value))
                n += 1
        except Exception as e:      # a client-thread exception fails the test
            errors.append(e)

    try:
        wait_for("a leader", lambda: g.leader() is not None)
        threads = [threading.Thread(target=writer, args=(c,)) for c in range(2)]
        for t in threads:
            t.start()
        # Replica 4 joins from its own entry (plus the current members) with --join.
        port4 = free_port()
        cluster4 = os.path.join(workdir, "join4.json")
        members = json.load(open(g.cluster))
        with open(cluster4, "w") as f:
            json.dump(members + [{"stream_id": 1, "node_id": 4, "ip": "127.0.0.1", "port": port4, "role": "FOLLOWER"}], f)
        log4 = open(os.path.join(workdir, "r4.log"), "w")
        p4 = subprocess.Popen([D, "run", "--raft", cluster4, "--node-id", "4", "--data", os.path.join(workdir, "data4"), "--join"],
                              stdout=log4, stderr=log4)
        leader = g.leader()
        added = json.loads(run(["member", "add", "4", f"tcp://127.0.0.1:{port4}", "--json"], g.addr(leader), timeout=20).stdout)
        assert [m["node"] for m in added["member_list"]] == [1, 2, 3, 4]
        via4 = f"tcp://127.0.0.1:{port4}"
        wait_for("replica 4 to catch up", lambda: (state(["status"], via4) or {}).get("members") == [1, 2, 3, 4]
                 and (state(["status"], via4) or {}).get("applied", 0) > 0, timeout=30)
        wait_for("some load", lambda: len(acked) >= 10, timeout=60)
        # Remove a follower under load, then move leadership to 4 and remove the old leader.
        leader = g.leader()
        follower = next(i for i in (1, 2, 3) if i != leader)
        run(["member", "remove", str(follower), "--json"], g.addr(leader), timeout=20)
        wait_for("the removed replica to stop", lambda: not g.proc(follower).running(), timeout=20)
        g.c.procs.pop(f"r{follower}")
        refused = run(["member", "remove", str(leader)], g.addr(leader), check=False)
        assert refused.returncode == 1 and "transfer" in refused.stderr
        moved = json.loads(run(["transfer", "--to", "4", "--json"], g.addr(leader), timeout=20).stdout)
        assert moved["leader"] == 4
        listing = json.loads(run(["member", "list", "--json"], via4).stdout)
        assert sorted(m["node"] for m in listing["member_list"]) == sorted({1, 2, 3, 4} - {follower})
        n_before = len(acked)
        wait_for("writes after the changes", lambda: len(acked) >= n_before + 5, timeout=60)
        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert not errors, errors
        # Nothing acknowledged was lost.
        survivor = next(i for i in (1, 2, 3) if g.proc(i))
        for (key, value), got in zip(acked, get_all(via4, [key for key, _ in acked]), strict=True):
            assert got == value, (key, got)
        assert state(["get", acked[-1][0]], g.addr(survivor))["ok"]
    finally:
        stop.set()
        g.stop_all()
        if 'p4' in locals():
            p4.terminate()
            p4.wait(timeout=10)


def test_a_follower_that_was_down_catches_up_by_chunked_snapshot(workdir):
    g = Group(workdir)
    g.extra = ["--snapshot-entries", "50"]
    for i in (1, 2, 3):
        g.start(i)
    try:
        wait_for("a leader", lambda: g.leader() is not None)
        leader = g.leader()
        down = next(i for i in (1, 2, 3) if i != leader)
        g.kill9(down)
        value = "y" * 50_000
        # 6 MB of state in 120 entries: snapshot chunks of 1 MiB, the log compacted past it
        put_all([(g.addr(leader), [(f"s/{i:03d}", value) for i in range(120)])])
        g.start(down)
        wait_for("the follower to catch up", lambda: (state(["status"], g.addr(down)) or {}).get("revision", 0) >= 120, timeout=60)
        log = open(os.path.join(workdir, f"r{down}.log")).read()
        assert "received a snapshot of" in log, "it caught up by snapshot"
        assert state(["get", "s/119"], g.addr(down))["record"]["value"] == value
    finally:
        g.stop_all()


def test_a_snapshot_that_cannot_be_restored_stops_the_replica(workdir):
    g = one_replica(workdir)
    g.stop_all()
    # Corrupt the state-machine image inside the stored snapshot, keeping the file's own checksum valid.
    data = g.rg.data(1)
    r = subprocess.run([D, "state", "restore", "--from", "/dev/null", "--raft", g.cluster, "--node-id", "1", "--data", data],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0
    bad = os.path.join(workdir, "bad.bin")
    with open(bad, "wb") as f:
        f.write(b"DKVS\x01" + b"\xff" * 64)
    fresh = os.path.join(workdir, "fresh")
    r = subprocess.run([D, "state", "restore", "--from", bad, "--raft", g.cluster, "--node-id", "1", "--data", fresh],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode != 0 and "restore failed" in r.stderr, "a bad backup is refused before anything is written"
