"""The name directory in Raft: a name is held once across the whole group,
names under one replica are reachable from under another, and a name is
released when its holder leaves."""
import os
import signal
import subprocess

from conftest import free_port, wait_for
from test_raft_group import D, Group, state


def run(args, timeout=20):
    return subprocess.run([D, *args], capture_output=True, text=True, timeout=timeout)


def test_directory_routes_across_replicas_and_keeps_names_unique(workdir):
    g = Group(workdir)
    for i in (1, 2, 3):
        g.start(i)
    procs = []

    def start(name, *args):
        log = open(os.path.join(workdir, f"{name}.log"), "w")
        p = subprocess.Popen([D, "run", "--name", name, *args], stdout=log, stderr=log)
        procs.append(p)
        return p

    try:
        wait_for("a leader", lambda: g.leader() is not None)
        a1, a2 = free_port(), free_port()
        start("a1", "--role", "agent", "--listen", f"tcp://127.0.0.1:{a1}", "--parent", g.addr(1))
        start("a2", "--role", "agent", "--listen", f"tcp://127.0.0.1:{a2}", "--parent", g.addr(2))
        ep1 = start("ep1", "--parent", f"tcp://127.0.0.1:{a1}", "--echo")
        # Reachable from under the other replica (routed r2 -> r1 over the peer link).
        wait_for("ep1 reachable from under r2",
                 lambda: run(["request", "--via", f"tcp://127.0.0.1:{a2}", "--to", "ep1", "x", "--timeout", "1"]).stdout == "x\n")
        # One holder per name across the group: a second ep1 under r3 is refused.
        dup = run(["run", "--name", "ep1", "--parent", g.addr(3)])
        assert dup.returncode == 2
        assert "name 'ep1' is already held by a live node (under root replica 1" in dup.stderr
        # The holder leaves: the name is released and can be taken under another replica.
        ep1.send_signal(signal.SIGKILL)
        ep1.wait()
        start("ep1", "--parent", g.addr(3), "--echo")
        wait_for("the new ep1 under r3 answers from under r1",
                 lambda: run(["request", "--via", f"tcp://127.0.0.1:{a1}", "--to", "ep1", "y", "--timeout", "1"]).stdout == "y\n")
    finally:
        for p in procs:
            p.send_signal(signal.SIGTERM)
        for p in procs:
            try:
                p.wait(timeout=10)
            except subprocess.TimeoutExpired:
                p.kill()
        g.stop_all()
