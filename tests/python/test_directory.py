"""The name directory in Raft: a name is held once across the whole group,
names under one replica are reachable from under another, and a name is
released when its holder leaves."""
import signal


def test_directory_routes_across_replicas_and_keeps_names_unique(cluster):
    g = cluster.raft_group(3)
    g.start_all()
    g.wait_for_leader()
    a1, a2 = cluster.addr("a1"), cluster.addr("a2")

    def request(via, to, data):
        return cluster.run("request", "--via", via, "--to", to, data, "--timeout", "1").stdout

    cluster.start_node("a1", "--role", "agent", "--listen", a1, "--parent", g.addr(1))
    cluster.start_node("a2", "--role", "agent", "--listen", a2, "--parent", g.addr(2))
    ep1 = cluster.start_node("ep1", "--parent", a1, "--echo")
    # Reachable from under the other replica (routed r2 -> r1 over the peer link).
    cluster.wait_for("ep1 reachable from under r2", lambda: request(a2, "ep1", "x") == "x\n")
    # One holder per name across the group: a second ep1 under r3 is refused.
    dup = cluster.run("run", "--name", "ep1", "--parent", g.addr(3))
    assert dup.returncode == 2
    assert "name 'ep1' is already held by a live node (under root replica 1" in dup.stderr
    # The holder leaves: the name is released and can be taken under another replica.
    ep1.signal(signal.SIGKILL)
    ep1.wait()
    cluster.start_node("ep1", "--parent", g.addr(3), "--echo")
    cluster.wait_for("the new ep1 under r3 answers from under r1", lambda: request(a1, "ep1", "y") == "y\n")
