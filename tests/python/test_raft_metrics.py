"""The Raft figures of root replicas in their /metrics (issue 15 §1): term, commit and applied
index, apply lag, leader flag, fsync latency histogram, WAL bytes; checked with promtool."""
from conftest import free_port
from harness import wait_for
from test_metrics import get, promtool, value
from test_state_ops import put_all


def test_raft_metrics_on_every_replica(cluster, workdir):
    group = cluster.raft_group(3)
    http = {i: free_port() for i in (1, 2, 3)}
    for i in (1, 2, 3):
        group.start(i, "--http", f"tcp://127.0.0.1:{http[i]}")
    leader = group.wait_for_leader()
    put_all([(group.addr(leader), [(f"m{n}", f"v{n}") for n in range(20)])])   # 20 entries, each acknowledged

    def scrape(i):
        return get(f"http://127.0.0.1:{http[i]}/metrics")

    def caught_up():
        return all((value(scrape(i), "dagent_raft_applied_index", stream="1") or 0) >= 23 for i in (1, 2, 3))
    wait_for("every replica applied the 20 puts (3 bootstrap entries + 20)", caught_up)

    for i in (1, 2, 3):
        text = scrape(i)
        promtool(text, workdir, f"/metrics of replica {i}")
        s = lambda name: value(text, name, stream="1")
        assert s("dagent_raft_leader") == (1 if i == leader else 0), (i, leader)
        assert s("dagent_raft_term") >= 1
        assert s("dagent_raft_commit_index") >= 23
        assert s("dagent_raft_apply_lag_entries") == s("dagent_raft_commit_index") - s("dagent_raft_applied_index")
        assert s("dagent_raft_fsync_duration_seconds_count") >= 1, "the storage thread's fsyncs are timed"
        assert s("dagent_raft_fsync_duration_seconds_sum") > 0
        assert value(text, "dagent_raft_fsync_duration_seconds_bucket", stream="1", le="+Inf") == \
            s("dagent_raft_fsync_duration_seconds_count")
        assert s("dagent_raft_wal_bytes_total") > 20 * 64, "the puts went through the WAL"
        assert "# TYPE dagent_raft_wal_bytes_total counter" in text
        assert "# TYPE dagent_raft_fsync_duration_seconds histogram" in text
        assert "# HELP dagent_raft_term " in text
    assert value(scrape(leader), "dagent_raft_proposals_total", stream="1") >= 20
