"""Linearizability of the root group under a paused leader (SIGSTOP/SIGCONT) and under network
partitions made by real TCP proxies between the replicas (both ways, one way, and cut
connections). Clients keep running through every fault; the recorded history, final reads
included, must be linearizable key by key, and writes must succeed again after each heal."""
import json
import math
import random
import signal
import threading
import time

from conftest import free_port
from harness import state, wait_for
from linearizability import Op, check
from tcp_proxy import Faults, ReplicaProxy


class ProxiedGroup:
    """Three replicas whose peer links all run through one `ReplicaProxy` each."""

    def __init__(self, cluster, n=3):
        self.cluster, self.n = cluster, n
        self.faults = Faults()
        self.private = {i: free_port() for i in range(1, n + 1)}   # where replica i listens
        self.public = {i: free_port() for i in range(1, n + 1)}    # its proxy: what the cluster file names
        self.file = cluster.path("proxied-cluster.json")
        with open(self.file, "w") as f:
            json.dump([{"stream_id": 1, "node_id": i, "ip": "127.0.0.1", "port": self.public[i],
                        "role": "LEADER" if i == 1 else "FOLLOWER"} for i in range(1, n + 1)], f)
        self.proxies = [ReplicaProxy(i, self.public[i], self.private[i], self.faults) for i in range(1, n + 1)]

    def start(self, i):
        self.cluster.start(f"p{i}", ["run", "--raft", self.file, "--node-id", str(i), "--data",
                                     self.cluster.path(f"p{i}-data"), "--listen", self.addr(i)])

    def addr(self, i):
        """The replica's own port (clients bypass the proxies)."""
        return f"tcp://127.0.0.1:{self.private[i]}"

    def status(self, i, timeout=2):
        r = self.cluster.run("state", "status", "--json", "--via", self.addr(i), "--timeout", str(timeout), timeout=15)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def leader_among(self, ids):
        """The leader as the replicas in ``ids`` report it, if one of them leads and they agree."""
        seen = set()
        for i in ids:
            s = self.status(i)
            if s and s.get("role") == "leader":
                seen.add(i)
        return seen.pop() if len(seen) == 1 else None

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
            t0 = time.monotonic()
            if kind == "put":
                value = f"c{cid}-{i}"
                ans = state(["put", key, value], via, timeout=2)
                arg, result = value, (True if ans and ans.get("ok") else None)
            elif kind == "get":
                ans = state(["get", key], via, timeout=2)
                arg = None
                if ans is None:
                    result = None
                elif ans.get("ok"):
                    result = ans["record"]["value"]
                elif ans.get("code") == "not_found" or "not found" in ans.get("error", ""):
                    result = "__absent__"
                else:
                    result = None
            else:
                expect, new = f"c{rnd.randrange(3)}-{rnd.randrange(1, i + 1)}", f"c{cid}-{i}"
                ans = state(["cas", key, new, "--expect", expect], via, timeout=2)
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
                    # An error answer (not leader, not ready) may still have been proposed: unknown outcome.
                    history.append(Op(cid, kind, key, arg, None, t0, math.inf))
                else:
                    history.append(Op(cid, kind, key, arg, result, t0, t1))
    except Exception as e:  # a broken client must fail the test, not vanish
        errors.append(f"client {cid}: {e!r}")


def normalise(history):
    return [o._replace(result=None) if o.kind == "get" and o.result == "__absent__" else o for o in history]


def test_linearizable_under_pauses_and_proxy_partitions(cluster):
    g = ProxiedGroup(cluster)
    try:
        for i in (1, 2, 3):
            g.start(i)
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
                result = ans["record"]["value"] if ans.get("ok") else "__absent__"
                history.append(Op(100 + i, "get", k, None, result, t0, time.monotonic()))
        ok, bad = check(normalise(history))
        assert ok, f"history not linearizable on key {bad}: {[o for o in history if o.key == bad]}"
        acknowledged = [o for o in history if o.kind == "put" and o.result is True]
        assert len(acknowledged) >= 12, f"only {len(acknowledged)} acknowledged writes"
    finally:
        g.close()
