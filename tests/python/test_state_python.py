"""dagent.state from standalone Python: transactions, locks (two holders in one process,
background renewal, fencing tokens), and a watch that resumes after its replica is killed."""
import json
import os
import subprocess

from harness import state, wait_for
from test_state_ops import Group

HERE = os.path.dirname(os.path.abspath(__file__))
PYTHON_DIR = os.path.join(os.path.dirname(os.path.dirname(HERE)), "python")


def py(script, timeout=90):
    r = subprocess.run(["/usr/bin/python3", "-c", script], capture_output=True, text=True, timeout=timeout,
                       env={**os.environ, "PYTHONPATH": PYTHON_DIR})
    assert r.returncode == 0, r.stderr
    return json.loads(r.stdout.strip().splitlines()[-1])


def test_txn_and_locks_from_python(workdir):
    g = Group(workdir, n=1)
    g.start(1)
    try:
        wait_for("a leader", lambda: g.leader() == 1)
        out = py(f"""
import dagent, json, time
from dagent import state
with dagent.Node(name="py-locks", via="{g.addr(1)}"):
    state.put("t/a", "1")
    r1 = state.txn().when("t/a", value="1").when("t/b", missing=True).then(state.put_op("t/b", "2"), state.get_op("t/a")).otherwise(state.get_op("t/b")).commit()
    r2 = state.txn().when("t/b", missing=True).then(state.put_op("t/b", "3")).otherwise(state.get_op("t/b")).commit()
    tokens, refused = [], None
    with state.lock("job", ttl=1) as a:
        tokens.append(a.token)
        try:
            with state.lock("job", ttl=1):       # a second holder in the same process
                pass
        except state.LockHeld as e:
            refused = e.holder == a.owner
        time.sleep(2.5)                          # longer than the ttl: the renewer keeps it
        still = state.lock("job", ttl=1)
        try:
            still.acquire()
            kept = False
        except state.LockHeld:
            kept = True
        state.put("t/guarded", str(a.token))
    with state.lock("job", ttl=1, wait=5) as b:
        tokens.append(b.token)
    print(json.dumps({{"r1": [r1.succeeded, r1.responses[1]["record"]["value"]],
                      "r2": [r2.succeeded, r2.responses[0]["record"]["value"]],
                      "refused": refused, "kept": kept, "tokens": tokens, "lost": a.lost.is_set()}}))
""")
        assert out["r1"] == [True, "1"] and out["r2"] == [False, "2"]
        assert out["refused"] is True, "two holders in one process exclude each other"
        assert out["kept"] is True and out["lost"] is False, "renewed in the background"
        assert out["tokens"][0] < out["tokens"][1], "fencing tokens only go up"
    finally:
        g.stop_all()


def test_lost_lock_raises_at_the_next_state_call(workdir):
    g = Group(workdir, n=1)
    g.start(1)
    try:
        wait_for("a leader", lambda: g.leader() == 1)
        out = py(f"""
import dagent, json, time
from dagent import state
events = []
with dagent.Node(name="py-lost", via="{g.addr(1)}"):
    raised = None
    lk = state.lock("l", ttl=1, on_lost=lambda l: events.append(l.name))
    lk.acquire()
    lk._stop.set()                     # the renewer stops, as if the group were unreachable
    state.lease(5).revoke()            # (state calls work while the lock is still alive)
    lk.lease.revoke()                  # the lease ends: the lock is gone
    lk._lose("lease revoked")
    try:
        state.get("x")
    except state.LockLost as e:
        raised = str(e)
    again = state.get("x")             # raised once
    print(json.dumps({{"raised": raised, "events": events, "again": again}}))
""")
        assert "was lost" in out["raised"] and out["events"] == ["l"] and out["again"] is None
    finally:
        g.stop_all()


def test_watch_resumes_after_its_replica_is_killed(workdir):
    g = Group(workdir)
    for i in (1, 2, 3):
        g.start(i)
    try:
        wait_for("a leader", lambda: g.leader() is not None)
        leader = g.leader()
        first = next(i for i in (1, 2, 3) if i != leader)
        others = [i for i in (1, 2, 3) if i != first]
        via = ",".join(g.addr(i) for i in [first] + others)
        ready = os.path.join(workdir, "ready")
        go = os.path.join(workdir, "go")
        script = f"""
import dagent, json, os, time
from dagent import state
seen = []
with dagent.Node(name="py-watch", via="{via}") as node:
    state.watch("w/", lambda ev: seen.append((ev["key"], ev["value"], ev["revision"])))
    state.put("w/a", "1")
    open("{ready}", "w").close()
    deadline = time.time() + 60
    while not os.path.exists("{go}") and time.time() < deadline:
        node.update(50)                # standalone: handlers and timers run in update/run
    while len(seen) < 4 and time.time() < deadline:
        node.update(50)
    print(json.dumps(seen))
"""
        p = subprocess.Popen(["/usr/bin/python3", "-c", script], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                             env={**os.environ, "PYTHONPATH": PYTHON_DIR})
        wait_for("the watcher", lambda: os.path.exists(ready), timeout=30)
        g.kill9(first)                 # the replica the watcher joined through
        for k, v in (("w/b", "2"), ("w/c", "3"), ("w/d", "4")):
            wait_for(f"put {k}", lambda: (state(["put", k, v], g.addr(others[0])) or {}).get("ok"), timeout=30)
        open(go, "w").close()
        out, err = p.communicate(timeout=90)
        seen = json.loads(out.strip().splitlines()[-1])
        assert [s[0] for s in seen] == ["w/a", "w/b", "w/c", "w/d"], (seen, err[-2000:])
        revisions = [s[2] for s in seen]
        assert revisions == sorted(revisions) and len(set(revisions)) == 4, "once each, in order"
    finally:
        g.stop_all()
