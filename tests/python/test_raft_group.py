"""Three root replicas as real processes on loopback, under concurrent
client load, with the leader killed (and restarted when storage is durable)
in the middle. The recorded history must be linearizable key by key, and a
watch must see every change once, in revision order."""
import json
import math
import random
import threading

from harness import normalise_absent, state, state_op, wait_for
from linearizability import check


def client(group, cid, n_ops, keys, history, lock, alive):
    rnd = random.Random(cid)
    for i in range(n_ops):
        key = rnd.choice(keys)
        via = group.addr(rnd.choice(sorted(alive)))
        kind = rnd.choice(["put", "put", "get", "cas"])
        expect = f"c{rnd.randrange(4)}-{rnd.randrange(n_ops)}" if kind == "cas" else None
        op = state_op(cid, kind, key, via, value=f"c{cid}-{i}", expect=expect)
        with lock:
            history.append(op)


def test_linearizable_under_leader_kill(cluster):
    g = cluster.raft_group(3)
    g.start_all()
    g.wait_for_leader()
    keys = ["k0", "k1", "k2"]
    # From revision 1, through every replica (failover): no change can slip by.
    everyone = ",".join(g.addr(i) for i in (3, 1, 2))
    watcher = cluster.start("watch", ["state", "watch", "--json", "--via", everyone, "--from", "1", "k"])
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
    ok, bad = check(normalise_absent(history))
    assert ok, f"history not linearizable on key {bad}: {[o for o in history if o.key == bad]}"
    acknowledged = [o for o in history if o.kind == "put" and o.result is True]
    assert acknowledged, "no write was acknowledged"
    cluster.stop("watch")
    events = []
    for line in watcher.lines:
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


def test_backup_then_restore_into_a_new_group(cluster):
    g = cluster.raft_group(3)
    g.start_all()
    g.wait_for_leader()
    for i in range(5):
        assert state(["put", f"app/k{i}", f"v{i}"], g.addr(2))["ok"]
    backup = cluster.path("backup.bin")
    r = cluster.run("state", "backup", "--via", g.addr(3), "--out", backup, timeout=30)
    assert r.returncode == 0, r.stderr
    assert state(["put", "app/after", "x"], g.addr(1))["ok"], "the group keeps serving during and after the backup"
    cluster.stop_all()
    # A new one-member group, restored from the backup.
    new = cluster.raft_group(1, prefix="new")
    restore = ["state", "restore", "--from", backup, "--raft", new.file, "--node-id", "1", "--data", new.data(1)]
    r = cluster.run(*restore, timeout=30)
    assert r.returncode == 0, r.stderr
    again = cluster.run(*restore, timeout=30)
    assert again.returncode != 0 and "empty data directory" in again.stderr
    new.start(1)
    wait_for("the restored group", lambda: (state(["status"], new.addr(1)) or {}).get("leader") == 1)
    listing = state(["range", "app/"], new.addr(1))
    assert [rec["key"] for rec in listing["records"]] == [f"app/k{i}" for i in range(5)]
    assert state(["put", "app/new", "y"], new.addr(1))["ok"], "the restored group accepts writes"
