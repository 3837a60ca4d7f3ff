"""A follower's acks leave from its storage thread right after the fsync (docs/state.md, "Acks
from the storage thread"): under client load, with the peer link between the leader and one
follower cut mid-stream (a real TCP proxy between the replicas), then the other's, the group keeps
committing, the history (final reads included) is linearizable, and every follower's
/metrics counts acks that went the direct way."""
import math
import threading
import time

from conftest import free_port
from harness import ABSENT, normalise_absent, state, wait_for
from linearizability import Op, check
from test_metrics import get, value
from test_raft_partitions import ProxiedGroup, client


def test_acks_from_the_storage_thread_with_peer_links_cut(cluster):
    g = ProxiedGroup(cluster)
    http = {i: free_port() for i in (1, 2, 3)}
    try:
        for i in (1, 2, 3):
            g.start(i, "--http", f"tcp://127.0.0.1:{http[i]}")
        everyone = (1, 2, 3)
        wait_for("a leader", lambda: g.leader_among(everyone) is not None, timeout=30)
        direct = lambda i: value(get(f"http://127.0.0.1:{http[i]}/metrics"), "dagent_raft_direct_messages_total", stream="1") or 0
        keys = ["k0", "k1", "k2"]
        history, lock, stop, errors = [], threading.Lock(), threading.Event(), []
        threads = [threading.Thread(target=client, args=(g, c, keys, history, lock, stop, errors)) for c in range(4)]
        for t in threads:
            t.start()

        def completed_writes_since(t):
            with lock:
                return sum(1 for o in history if o.kind in ("put", "cas") and o.complete < math.inf and o.invoke >= t)

        wait_for("some operations", lambda: completed_writes_since(0) >= 10, timeout=60)
        leader = g.leader_among(everyone)
        assert leader, "no leader under load"
        for follower in [i for i in everyone if i != leader]:
            before = direct(follower)
            g.faults.set(leader, follower, "cut")   # the live link is closed mid-stream; no new one meanwhile
            cut = time.monotonic()
            wait_for(f"writes commit with the link {leader}-{follower} cut",
                     lambda: completed_writes_since(cut) >= 3, timeout=30)
            g.faults.heal()
            healed = time.monotonic()
            wait_for(f"writes commit after the link {leader}-{follower} is back",
                     lambda: completed_writes_since(healed) >= 3, timeout=30)
            wait_for(f"follower {follower}'s acks leave from its storage thread again",
                     lambda: direct(follower) > before, timeout=30)

        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
        assert not errors, errors
        wait_for("a leader at the end", lambda: g.leader_among(everyone) is not None, timeout=30)
        for k in keys:
            for i in everyone:
                t0 = time.monotonic()
                ans = state(["get", k], g.addr(i), timeout=5)
                assert ans is not None and (ans.get("ok") or "not found" in ans.get("error", "")), (k, i, ans)
                result = ans["record"]["value"] if ans.get("ok") else ABSENT
                history.append(Op(100 + i, "get", k, None, result, t0, time.monotonic()))
        ok, bad = check(normalise_absent(history))
        assert ok, f"history not linearizable on key {bad}: {[o for o in history if o.key == bad]}"
        acknowledged = [o for o in history if o.kind == "put" and o.result is True]
        assert len(acknowledged) >= 12, f"only {len(acknowledged)} acknowledged writes"
        counts = {i: direct(i) for i in everyone}
        assert sum(1 for n in counts.values() if n >= 10) >= 2, f"acks from the storage threads: {counts}"
    finally:
        g.close()
