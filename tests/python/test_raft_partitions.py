"""Linearizability of the root group under a paused leader (SIGSTOP/SIGCONT) and under network
partitions made by real TCP proxies between the replicas (both ways, one way, and cut
connections). Clients keep running through every fault; the recorded history, final reads
included, must be linearizable key by key, and writes must succeed again after each heal."""
import math
import random
import signal
import threading
import time

from harness import ABSENT, RaftGroup, normalise_absent, state, state_op, wait_for
from linearizability import Op, check
from tcp_proxy import Faults, ReplicaProxy


class ProxiedGroup(RaftGroup):
    """Three replicas whose peer links all run through one `ReplicaProxy` each: the cluster file
    names the proxies, each replica listens on its own port behind its proxy (clients bypass them)."""

    def __init__(self, cluster, n=3):
        super().__init__(cluster, n, prefix="p", listen=True)
        self.faults = Faults()
        self.proxies = [ReplicaProxy(i, self.ports[i - 1], self.listen[i - 1], self.faults) for i in range(1, n + 1)]

    def close(self):
        for p in self.proxies:
            p.close()


def client(group, cid, keys, history, lock, stop, errors):
    try:
        rnd = random.Random(cid)
        i = 0
        while not stop.is_set():
            i += 1
            key = rnd.choice(keys)
            via = group.addr(rnd.randrange(1, group.n + 1))
            kind = rnd.choice(["put", "put", "get", "cas"])
            expect = f"c{rnd.randrange(3)}-{rnd.randrange(1, i + 1)}" if kind == "cas" else None
            op = state_op(cid, kind, key, via, value=f"c{cid}-{i}", expect=expect, timeout=2)
            with lock:
                history.append(op)
    except Exception as e:  # a broken client must fail the test, not vanish
        errors.append(f"client {cid}: {e!r}")


def test_linearizable_under_pauses_and_proxy_partitions(cluster):
    g = ProxiedGroup(cluster)
    try:
        g.start_all()
        everyone = (1, 2, 3)
        wait_for("a leader", lambda: g.leader_among(everyone) is not None, timeout=30)
        keys = ["k0", "k1", "k2"]
        history, lock, stop, errors = [], threading.Lock(), threading.Event(), []
        threads = [threading.Thread(target=client, args=(g, c, keys, history, lock, stop, errors)) for c in range(4)]
        for t in threads:
            t.start()

        def completed_writes_since(t):
            with lock:
                return sum(1 for o in history if o.kind in ("put", "cas") and o.complete < math.inf and o.invoke >= t)

        def fault(name, inject, heal):
            leader = g.leader_among(everyone)   # a fresh status, right before the fault
            assert leader, f"{name}: no leader before the fault"
            others = [i for i in everyone if i != leader]
            inject(leader)
            wait_for(f"{name}: a new leader among {others}",
                     lambda: g.leader_among(others) not in (None, leader), timeout=30)
            heal(leader)
            healed = time.monotonic()
            wait_for(f"{name}: writes succeed again after the heal",
                     lambda: completed_writes_since(healed) >= 3, timeout=30)

        wait_for("some operations", lambda: len(history) >= 10, timeout=60)
        proc = lambda i: cluster.procs[f"p{i}"]
        fault("SIGSTOP of the leader", lambda l: proc(l).signal(signal.SIGSTOP), lambda l: proc(l).signal(signal.SIGCONT))
        fault("the leader partitioned (blackhole both ways)",
              lambda l: g.faults.isolate(l, everyone, "blackhole"), lambda l: g.faults.heal())
        fault("the leader's messages lost one way",
              lambda l: [g.faults.set(l, o, "blackhole", both=False) for o in everyone if o != l], lambda l: g.faults.heal())
        fault("the leader's connections cut",
              lambda l: g.faults.isolate(l, everyone, "cut"), lambda l: g.faults.heal())

        stop.set()
        for t in threads:
            t.join(timeout=60)
        assert not any(t.is_alive() for t in threads)
        assert not errors, errors
        # Final reads of every key, from every replica, enter the history.
        wait_for("a leader after the last heal", lambda: g.leader_among(everyone) is not None, timeout=30)
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
    finally:
        g.close()
