"""Three root replicas as real processes on loopback, under concurrent
client load, with the leader killed (and restarted when storage is durable)
in the middle. The recorded history must be linearizable key by key, and a
watch must see every change once, in revision order."""
import json
import math
import os
import random
import signal
import subprocess
import threading
import time

from conftest import dagent_binary, free_port, wait_for
from linearizability import Op, check

D = dagent_binary()


class Group:
    def __init__(self, workdir, n=3):
        self.workdir = workdir
        self.ports = [free_port() for _ in range(n)]
        self.cluster = os.path.join(workdir, "cluster.json")
        with open(self.cluster, "w") as f:
            json.dump([{"stream_id": 1, "node_id": i + 1, "ip": "127.0.0.1", "port": p,
                        "role": "LEADER" if i == 0 else "FOLLOWER"} for i, p in enumerate(self.ports)], f)
        self.procs = {}
        self.extra = []

    def addr(self, node_id):
        return f"tcp://127.0.0.1:{self.ports[node_id - 1]}"

    def start(self, node_id):
        log = open(os.path.join(self.workdir, f"r{node_id}.log"), "a")
        self.procs[node_id] = subprocess.Popen(
            [D, "run", "--raft", self.cluster, "--node-id", str(node_id),
             "--data", os.path.join(self.workdir, f"data{node_id}"), *self.extra], stdout=log, stderr=log)

    def kill9(self, node_id):
        p = self.procs.pop(node_id)
        p.send_signal(signal.SIGKILL)
        p.wait()

    def stop_all(self):
        for p in self.procs.values():
            p.send_signal(signal.SIGTERM)
        for p in self.procs.values():
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()

    def status(self, node_id):
        r = subprocess.run([D, "state", "status", "--json", "--via", self.addr(node_id), "--timeout", "2"],
                           capture_output=True, text=True, timeout=15)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def leader(self):
        for i in self.procs:
            s = self.status(i)
            if s and s.get("leader"):
                return s["leader"]
        return None


def state(args, via, timeout=4):
    """Runs `dagent state ...`; returns the JSON answer or None (unknown outcome)."""
    try:
        r = subprocess.run([D, "state", *args, "--json", "--via", via, "--timeout", str(timeout)],
                           capture_output=True, text=True, timeout=timeout + 10)
    except subprocess.TimeoutExpired:
        return None
    try:
        return json.loads(r.stdout)
    except ValueError:
        return None


def client(group, cid, n_ops, keys, history, lock, alive):
    rnd = random.Random(cid)
    for i in range(n_ops):
        key = rnd.choice(keys)
        via = group.addr(rnd.choice(sorted(alive)))
        kind = rnd.choice(["put", "put", "get", "cas"])
        t0 = time.monotonic()
        if kind == "put":
            value = f"c{cid}-{i}"
            ans = state(["put", key, value], via)
            arg, result = value, (True if ans and ans.get("ok") else None)
        elif kind == "get":
            ans = state(["get", key], via)
            arg = None
            if ans is None:
                result = None
            elif ans.get("ok"):
                result = ans["record"]["value"]
            elif "not found" in ans.get("error", "") or "no key" in ans.get("error", ""):
                result = "__absent__"
            else:
                result = None
        else:
            expect, new = f"c{rnd.randrange(4)}-{rnd.randrange(n_ops)}", f"c{cid}-{i}"
            ans = state(["cas", key, new, "--expect", expect], via)
            arg = (expect, new)
            if ans is None:
                result = None
            elif ans.get("ok"):
                result = True
            elif "compare failed" in ans.get("error", "") or "not found" in ans.get("error", ""):
                result = False
            else:
                result = None
        t1 = time.monotonic()
        with lock:
            if result is None:
                history.append(Op(cid, kind, key, arg, None, t0, math.inf))
            else:
                history.append(Op(cid, kind, key, arg, result, t0, t1))


def normalise(history):
    """Absent reads are the initial value None of the register model."""
    return [o._replace(result=None) if o.kind == "get" and o.result == "__absent__" else o for o in history]


def test_linearizable_under_leader_kill(workdir):
    g = Group(workdir)
    for i in (1, 2, 3):
        g.start(i)
    try:
        wait_for("a leader", lambda: g.leader() is not None)
        keys = ["k0", "k1", "k2"]
        watch_out = open(os.path.join(workdir, "watch.out"), "w")
        # From revision 1, through every replica (failover): no change can slip by.
        everyone = ",".join(g.addr(i) for i in (3, 1, 2))
        watcher = subprocess.Popen([D, "state", "watch", "--json", "--via", everyone, "--from", "1", "k"], stdout=watch_out,
                                   stderr=open(os.path.join(workdir, "watch.log"), "w"))
        history, lock = [], threading.Lock()
        alive = {1, 2, 3}
        threads = [threading.Thread(target=client, args=(g, c, 25, keys, history, lock, alive)) for c in range(4)]
        for t in threads:
            t.start()
        wait_for("some operations", lambda: len(history) >= 20, timeout=60)
        leader = g.leader()
        assert leader
        alive.discard(leader)
        g.kill9(leader)
        wait_for("a new leader", lambda: g.leader() not in (None, leader), timeout=30)
        # The old leader restarts from its fsync'd log and rejoins while clients run.
        g.start(leader)
        wait_for("the restarted replica to catch up", lambda: (g.status(leader) or {}).get("leader") not in (None, 0), timeout=30)
        alive.add(leader)
        for t in threads:
            t.join(timeout=180)
        assert not any(t.is_alive() for t in threads)
        # Final reads of every key close the history.
        for k in keys:
            client_final = state(["get", k], g.addr(sorted(alive)[0]))
            assert client_final is not None
        ok, bad = check(normalise(history))
        assert ok, f"history not linearizable on key {bad}: {[o for o in history if o.key == bad]}"
        acknowledged = [o for o in history if o.kind == "put" and o.result is True]
        assert acknowledged, "no write was acknowledged"
        watcher.send_signal(signal.SIGTERM)
        watcher.wait(timeout=10)
        watch_out.close()
        events = []
        with open(os.path.join(workdir, "watch.out")) as f:
            for line in f:
                e = json.loads(line)
                events.append((e["revision"], e["key"], e["value"]))
        revisions = [r for r, _, _ in events]
        assert revisions == sorted(revisions), "the watch went back in revision"
        assert len(events) == len(set((r, k) for r, k, _ in events)), "an event was delivered twice"
        # Every acknowledged write is one revision and must have been seen, with its value.
        seen = set((k, v) for _, k, v in events)
        acked = [o for o in history if o.complete < math.inf and o.result is True and o.kind in ("put", "cas")]
        missing = [o for o in acked if (o.key, o.arg if o.kind == "put" else o.arg[1]) not in seen]
        assert not missing, f"acknowledged writes missing from the watch: {missing}"
    finally:
        g.stop_all()


def test_backup_then_restore_into_a_new_group(workdir):
    g = Group(workdir)
    for i in (1, 2, 3):
        g.start(i)
    try:
        wait_for("a leader", lambda: g.leader() is not None)
        for i in range(5):
            assert state(["put", f"app/k{i}", f"v{i}"], g.addr(2))["ok"]
        backup = os.path.join(workdir, "backup.bin")
        r = subprocess.run([D, "state", "backup", "--via", g.addr(3), "--out", backup], capture_output=True, text=True, timeout=30)
        assert r.returncode == 0, r.stderr
        assert state(["put", "app/after", "x"], g.addr(1))["ok"], "the group keeps serving during and after the backup"
    finally:
        g.stop_all()
    # A new one-member group, restored from the backup.
    port = free_port()
    cluster = os.path.join(workdir, "new.json")
    with open(cluster, "w") as f:
        json.dump([{"stream_id": 1, "node_id": 1, "ip": "127.0.0.1", "port": port, "role": "LEADER"}], f)
    data = os.path.join(workdir, "new1")
    r = subprocess.run([D, "state", "restore", "--from", backup, "--raft", cluster, "--node-id", "1", "--data", data],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0, r.stderr
    again = subprocess.run([D, "state", "restore", "--from", backup, "--raft", cluster, "--node-id", "1", "--data", data],
                           capture_output=True, text=True, timeout=30)
    assert again.returncode != 0 and "empty data directory" in again.stderr
    p = subprocess.Popen([D, "run", "--raft", cluster, "--node-id", "1", "--data", data],
                         stdout=subprocess.DEVNULL, stderr=open(os.path.join(workdir, "new1.log"), "w"))
    try:
        via = f"tcp://127.0.0.1:{port}"
        wait_for("the restored group", lambda: (state(["status"], via) or {}).get("leader") == 1)
        listing = state(["range", "app/"], via)
        assert [rec["key"] for rec in listing["records"]] == [f"app/k{i}" for i in range(5)]
        assert state(["put", "app/new", "y"], via)["ok"], "the restored group accepts writes"
    finally:
        p.terminate()
        p.wait(timeout=10)
