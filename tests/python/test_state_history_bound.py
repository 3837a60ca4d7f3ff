"""snapshot_history_bytes: the watch history a snapshot (and a backup) carries is bounded, and a
watch from before the bound on a replica restored from the snapshot gets `compacted`."""
import json
import os

from harness import state, wait_for


def test_snapshot_history_is_bounded_and_old_watches_are_compacted(cluster, workdir):
    group = cluster.raft_group(1)
    args = ("--snapshot-entries", "5", "--snapshot-history-bytes", "20000")
    group.start(1, *args)
    via = group.addr(1)
    group.wait_for_leader()
    # 8 transactions of 5 puts of 2 KB: 40 events (80 KB of history) in 8 revisions.
    txn = os.path.join(workdir, "txn.json")
    with open(txn, "w") as f:
        json.dump({"compare": [], "success": [{"op": "put", "key": f"k{j}", "value": "v" * 2000} for j in range(5)]}, f)
    for i in range(8):
        assert (state(["txn", "--file", txn], via) or {}).get("ok"), f"txn {i}"
    # Before a restart the replica still has its whole history in memory.
    r = cluster.run("state", "watch", "--via", via, "--from", "1", "--json", "--count", "1", "k", timeout=20)
    assert r.returncode == 0, r.stderr
    # A backup is a snapshot: 5 keys of 2 KB plus at most 20 KB of history, not 80 KB.
    out = os.path.join(workdir, "state.bak")
    r = cluster.run("state", "backup", "--via", via, "--out", out, timeout=30)
    assert r.returncode == 0, r.stderr
    size = os.path.getsize(out)
    assert size < 5 * 2100 + 20000 + 2048, size
    # Restart: the replica restores its last snapshot; history older than the bound is gone.
    group.kill9(1)
    group.start(1, *args)
    group.wait_for_leader()
    wait_for("the replica serves", lambda: (state(["get", "k0"], via) or {}).get("ok"), logs=cluster.logs)
    r = cluster.run("state", "watch", "--via", via, "--from", "1", "k", timeout=20)
    assert r.returncode == 1, (r.stdout, r.stderr)
    assert "watch fell behind compaction" in r.stderr and "oldest revision still available" in r.stderr, r.stderr
