"""Pub/sub with real processes (harness.Cluster): publishers and subscribers under
different agents, on message-queue leaves and across a root group of 3 replicas;
wildcards and queue groups; kill -9 withdraws interest upstream; 10,000 subscriptions
on one agent; bad topics and a subscription flood bounded by max_link_interest. Then the
Python API: plugins publishing and subscribing under different agents, standalone
programs (decorator, dagent.subscribe(pattern, fn) with cancel(), async for over
node.topic), queue groups shared by both, bad patterns raising dagent.BadTopic. Waits are
for conditions with deadlines, never sleeps."""
import json
import os
import sys
import time

import pytest

from harness import PYTHON_DIR

sys.path.insert(0, PYTHON_DIR)
import dagent  # noqa: E402
from dagent import _standalone  # noqa: E402

try:
    _standalone.extension()
except ImportError as exc:  # fail loudly: a skipped suite would hide a broken build
    raise RuntimeError(f"{exc}\nbuild it: (cd python && DAGENT_SWIFT_CONFIG=debug {sys.executable} setup.py build_ext --inplace)")

HERE = os.path.dirname(os.path.abspath(__file__))
PLUGIN = os.path.join(HERE, "pubsub_plugin")
PEER = os.path.join(HERE, "pubsub_peer.py")


def start(cluster, key, *args):
    """``dagent ARGS`` as ``key`` (stdout lines in cluster.procs[key].lines)."""
    return cluster.start(key, list(args))


def run(cluster, args, timeout=20):
    return cluster.run(*args, timeout=timeout)


def wait(cluster, key, timeout=20):
    return cluster.procs[key].wait(timeout)


def lines(cluster, key):
    return [line for line in cluster.procs[key].lines if line]


def stderr(cluster, key):
    return cluster.procs[key].stderr()


def ctree(cluster, via):
    return cluster.run_json("tree", "--via", via, "--timeout", "2")


def parent_patterns(cluster, via):
    """The interest a node holds from its parent side (what the rest of the tree wants)."""
    t = ctree(cluster, via)
    return {e["pattern"] for link in t["links"] if link["is_parent"] for e in link["interest"]} if t else set()


def interest_from(cluster, via, peer):
    t = ctree(cluster, via)
    if not t:
        return None
    for link in t["links"]:
        if link["peer"] == peer:
            return link
    return None


def tree3(cluster, hb="0.2", a1_yaml=None, workdir=None):
    """root, a1, a2 on loopback; returns their addresses."""
    root, a1, a2 = cluster.addr("root"), cluster.addr("a1"), cluster.addr("a2")
    start(cluster, "root", "run", "--name", "root", "--listen", root, "--heartbeat-interval", hb)
    extra = []
    if a1_yaml:
        path = os.path.join(workdir, "a1.yaml")
        with open(path, "w") as f:
            f.write(a1_yaml)
        extra = ["--config", path]
    start(cluster, "a1", "run", "--name", "a1", "--role", "agent", "--listen", a1, "--parent", root, "--heartbeat-interval", hb, *extra)
    start(cluster, "a2", "run", "--name", "a2", "--role", "agent", "--listen", a2, "--parent", root, "--heartbeat-interval", hb)
    cluster.wait_for("a1 and a2 at the root", lambda: {n["name"] for n in ctree(cluster, root)["names"]} >= {"a1", "a2"})
    return root, a1, a2


def test_wildcards_across_agents_with_text_and_json_output(cluster):
    root, a1, a2 = tree3(cluster)
    start(cluster, "s1", "sub", "--via", a2, "--count", "2", "orders.*.created")
    start(cluster, "s2", "sub", "--via", a2, "--count", "3", "--json", "orders.>")
    start(cluster, "s3", "sub", "--via", a1, "--count", "1", "orders.us.*")   # same agent as the publisher
    cluster.wait_for("interest visible at a1", lambda: parent_patterns(cluster, a1) >= {"orders.*.created", "orders.>"})
    cluster.wait_for("s3's interest at a1", lambda: any(e["pattern"] == "orders.us.*"
                                                for link in ctree(cluster, a1)["links"] if not link["is_parent"] for e in link["interest"]))
    for topic, data in [("orders.eu.created", "one"), ("orders.us.created", "two"), ("orders.eu.shipped", "three")]:
        r = run(cluster, ["pub", "--via", a1, topic, data])
        assert r.returncode == 0, r.stderr
    for key in ("s1", "s2", "s3"):
        assert wait(cluster, key) == 0, stderr(cluster, key)
    assert lines(cluster, "s1") == ["orders.eu.created one", "orders.us.created two"], "in publish order"
    got = [json.loads(line) for line in lines(cluster, "s2")]
    assert [(m["topic"], m["data"]) for m in got] == [("orders.eu.created", "one"), ("orders.us.created", "two"),
                                                     ("orders.eu.shipped", "three")]
    assert all(m["src"].startswith("dagent-cli-") for m in got)
    assert lines(cluster, "s3") == ["orders.us.created two"]
    # dagent tree shows the counters.
    t = ctree(cluster, root)
    assert t["pubsub"]["forwarded"] >= 3
    text = run(cluster, ["tree", "--via", root]).stdout
    assert "pubsub: published=0" in text and "forwarded=" in text


def test_a_publish_nobody_wants_stops_at_the_first_node_that_knows(cluster):
    root, a1, a2 = tree3(cluster)
    start(cluster, "s", "sub", "--via", a2, "--count", "1", "wanted")
    cluster.wait_for("interest visible at a1", lambda: parent_patterns(cluster, a1) == {"wanted"})
    assert run(cluster, ["pub", "--via", a1, "nobody.listens", "x"]).returncode == 0
    assert run(cluster, ["pub", "--via", a1, "wanted", "y"]).returncode == 0
    assert wait(cluster, "s") == 0
    assert lines(cluster, "s") == ["wanted y"]
    # The unwanted one stopped at the publisher or at a1 (whichever knew first), never at the root.
    t = ctree(cluster, root)
    assert t["pubsub"]["forwarded"] == 1 and t["pubsub"]["unwanted"] == 0, t["pubsub"]
    assert interest_from(cluster, root, "a1")["publishes_out"] == 0


def test_queue_groups_split_the_messages(cluster):
    root, a1, a2 = tree3(cluster)
    for i, via in enumerate([a2, a2, a1]):
        start(cluster, f"w{i}", "sub", "--via", via, "--queue", "workers", "--timeout", "3", "jobs.*")
    start(cluster, "all", "sub", "--via", a2, "--count", "30", "jobs.*")
    cluster.wait_for("3 queue members and a plain subscriber visible at the root",
             lambda: sum(e["count"] for link in ctree(cluster, root)["links"] for e in link["interest"] if e["queue"] == "workers") == 3
             and any(e["queue"] == "" for link in ctree(cluster, root)["links"] for e in link["interest"]))
    for i in range(30):
        assert run(cluster, ["pub", "--via", a1, f"jobs.{i % 3}", f"j{i}"]).returncode == 0
    assert wait(cluster, "all") == 0
    got = []
    for i in range(3):
        wait(cluster, f"w{i}", timeout=30)   # exits 1 on its idle timeout, after what it got
        got.append(lines(cluster, f"w{i}"))
    flat = [line for member in got for line in member]
    assert sorted(flat) == sorted(f"jobs.{i % 3} j{i}" for i in range(30)), "each message to exactly one member"
    assert sum(1 for member in got if member) >= 2, f"the load was shared: {[len(m) for m in got]}"


def test_msgq_leaves_publish_and_subscribe_through_their_agent(cluster, workdir):
    root = cluster.addr("root")
    q = os.path.join(workdir, "agent.q")
    start(cluster, "root", "run", "--name", "root", "--listen", root, "--heartbeat-interval", "0.2")
    start(cluster, "agent", "run", "--name", "agent", "--msgq", q, "--parent", root, "--heartbeat-interval", "0.2")
    cluster.wait_for("the agent", lambda: ctree(cluster, f"msgq://{q}") is not None)
    start(cluster, "s1", "sub", "--via", f"msgq://{q}", "--count", "2", "t.>")
    cluster.wait_for("the leaf's interest at the agent",
             lambda: any(e["pattern"] == "t.>" for link in ctree(cluster, f"msgq://{q}")["links"] for e in link["interest"]))
    assert run(cluster, ["pub", "--via", f"msgq://{q}", "t.a", "brother"]).returncode == 0
    assert run(cluster, ["pub", "--via", root, "t.b", "from-above"]).returncode == 0
    assert wait(cluster, "s1") == 0, stderr(cluster, "s1")
    assert lines(cluster, "s1") == ["t.a brother", "t.b from-above"]


def test_kill9_of_an_agent_withdraws_its_interest_upstream(cluster):
    root, a1, a2 = tree3(cluster)
    start(cluster, "s", "sub", "--via", a2, "x.>")
    cluster.wait_for("a2's interest at the root", lambda: (interest_from(cluster, root, "a2") or {}).get("interest_entries") == 1)
    cluster.wait_for("and at a1", lambda: parent_patterns(cluster, a1) == {"x.>"})
    cluster.kill9("a2")
    cluster.wait_for("a2 gone at the root", lambda: interest_from(cluster, root, "a2") is None)
    cluster.wait_for("the withdrawal reached a1", lambda: parent_patterns(cluster, a1) == set())
    # A subscriber killed with kill -9 is withdrawn too.
    start(cluster, "s2", "sub", "--via", a1, "y")
    cluster.wait_for("s2's interest at the root", lambda: (interest_from(cluster, root, "a1") or {}).get("interest_entries") == 1)
    cluster.kill9("s2")
    cluster.wait_for("s2's interest withdrawn at the root", lambda: (interest_from(cluster, root, "a1") or {}).get("interest_entries") == 0)


def test_ten_thousand_subscriptions_on_one_agent(cluster, workdir):
    root, a1, a2 = tree3(cluster, hb="1")   # a 10,000-entry burst on a loaded 2-core machine: no 0.6 s expiry
    patterns = [f"sensor.{i}.temp" for i in range(10_000)]
    path = os.path.join(workdir, "patterns.txt")
    with open(path, "w") as f:
        f.write("\n".join(patterns) + "\n")
    start(cluster, "many", "sub", "--via", a2, "--count", "3", "--patterns-from", path)
    cluster.wait_for("10,000 entries at the root", lambda: (interest_from(cluster, root, "a2") or {}).get("interest_entries") == 10_000, timeout=120)
    cluster.wait_for("and at a1", lambda: ctree(cluster, a1)["links"][0]["interest_entries"] == 10_000, timeout=60)
    assert "interest=10000" in run(cluster, ["tree", "--via", root]).stdout
    for i in (0, 4321, 9999):
        assert run(cluster, ["pub", "--via", a1, f"sensor.{i}.temp", f"v{i}"]).returncode == 0
    assert run(cluster, ["pub", "--via", a1, "sensor.10000.temp", "nobody"]).returncode == 0
    assert wait(cluster, "many", timeout=30) == 0
    assert lines(cluster, "many") == ["sensor.0.temp v0", "sensor.4321.temp v4321", "sensor.9999.temp v9999"]


def test_bad_topics_patterns_and_limits(cluster, workdir):
    root, a1, a2 = tree3(cluster, a1_yaml="max_link_interest: 100\n", workdir=workdir)
    for args, rule in [(["pub", "--via", a1, "a..b", "x"], "empty token"),
                       (["pub", "--via", a1, "a.*", "x"], "wildcard '*' in a topic"),
                       (["pub", "--via", a1, "x" * 300, "x"], "max_topic_bytes=256"),
                       (["sub", "--via", a1, "a.>.b"], "'>' must be the last token"),
                       (["sub", "--via", a1, "a*"], "inside a token"),
                       (["sub", "--via", a1, ".".join(["t"] * 40)], "max_topic_tokens=32")]:
        r = run(cluster, args)
        assert r.returncode == 1, (args, r.stdout, r.stderr)
        assert "bad topic" in r.stderr and rule in r.stderr, r.stderr
        assert len(r.stderr.strip().splitlines()) == 1, r.stderr
    # A subscription flood from one child is bounded by max_link_interest at its parent.
    path = os.path.join(workdir, "flood.txt")
    with open(path, "w") as f:
        f.write("\n".join(f"f.{i}" for i in range(500)))
    start(cluster, "flood", "sub", "--via", a1, "--log-level", "warning", "--patterns-from", path)
    cluster.wait_for("a1 refused what is over the limit", lambda: ctree(cluster, a1)["pubsub"]["interest_refused"] == 400, timeout=30)
    child = [link for link in ctree(cluster, a1)["links"] if not link["is_parent"]][0]
    assert child["interest_entries"] == 100
    cluster.wait_for("the child heard why", lambda: "max_link_interest=100" in stderr(cluster, "flood"))
    assert cluster.procs["flood"].running(), "the link stays up"
    # Bad options are refused at start with the option's name.
    bad = os.path.join(workdir, "bad.yaml")
    with open(bad, "w") as f:
        f.write("max_topic_tokens: 0\n")
    r = run(cluster, ["run", "--name", "z", "--listen", cluster.addr("z"), "--config", bad])
    assert r.returncode == 2 and "max_topic_tokens must be in 1...1024 (got 0)" in r.stderr, r.stderr


def test_root_group_of_three_replicas_shares_interest(cluster):
    group = cluster.raft_group(3)
    group.start_all()
    group.wait_for_leader(timeout=30)
    agents = {}
    for i in (1, 2, 3):
        agents[i] = cluster.addr(f"a{i}")
        start(cluster, f"a{i}", "run", "--name", f"a{i}", "--role", "agent", "--listen", agents[i], "--parent", group.addr(i))
    cluster.wait_for("agents registered", lambda: all(ctree(cluster, agents[i]) and ctree(cluster, agents[i])["parent_ready"] for i in (1, 2, 3)), timeout=30)
    start(cluster, "s2", "sub", "--via", agents[2], "--count", "2", "g.*")
    start(cluster, "s3", "sub", "--via", agents[3], "--count", "2", "g.>")
    cluster.wait_for("both subscriptions visible under replica 1",
             lambda: parent_patterns(cluster, agents[1]) >= {"g.*", "g.>"}, timeout=30)
    assert run(cluster, ["pub", "--via", agents[1], "g.one", "1"]).returncode == 0
    assert run(cluster, ["pub", "--via", agents[1], "g.two", "2"]).returncode == 0
    assert wait(cluster, "s2") == 0 and wait(cluster, "s3") == 0
    assert lines(cluster, "s2") == ["g.one 1", "g.two 2"]
    assert lines(cluster, "s3") == ["g.one 1", "g.two 2"], "exactly once each: replicas never relay for each other"


# ---- the Python API: plugins and standalone programs ----









def all_patterns(cluster, via):
    t = ctree(cluster, via)
    return {(e["pattern"], e["queue"]) for link in t["links"] for e in link["interest"]} if t else set()


def plugin_request(cluster, via, to, type_, data="", timeout=5):
    r = cluster.run("request", "--via", via, "--to", to, "--type", str(type_), "--timeout", str(timeout), data)
    assert r.returncode == 0, r.stderr
    return r.stdout[:-1] if r.stdout.endswith("\n") else r.stdout


def plugin_tree(cluster, plugins=True):
    """root, a1 and a2 (agents, both with the pub/sub test plugin); their addresses."""
    root, a1, a2 = cluster.addr("root"), cluster.addr("a1"), cluster.addr("a2")
    extra = ["--plugins", PLUGIN] if plugins else []
    cluster.start_node("root", "--listen", root, "--heartbeat-interval", "0.2")
    for name, addr in (("a1", a1), ("a2", a2)):
        cluster.start_node(name, "--role", "agent", "--listen", addr, "--parent", root, "--heartbeat-interval", "0.2", *extra)
    cluster.wait_for("a1 and a2 at the root", lambda: {n["name"] for n in ctree(cluster, root)["names"]} >= {"a1", "a2"})
    if plugins:
        for name, addr in (("a1", a1), ("a2", a2)):
            cluster.wait_for(f"{name}'s plugin", lambda: cluster.run("request", "--via", addr, "--to", name, "--type", "73").returncode == 0)
    return root, a1, a2


def received(cluster, via, name, kind=None):
    got = json.loads(plugin_request(cluster, via, name, 73))
    return [g for g in got if kind is None or g["kind"] == kind]


def test_plugin_publisher_and_plugin_subscriber_under_different_agents(cluster):
    root, a1, a2 = plugin_tree(cluster)
    cluster.wait_for("a2's decorator subscription visible at a1",
                     lambda: "orders.*.created" in parent_patterns(cluster, a1))
    msgs = [["orders.eu.created", "one"], ["orders.us.created", "two"], ["orders.eu.shipped", "no"]]
    assert plugin_request(cluster, a1, "a1", 70, json.dumps(msgs)) == "ok"
    cluster.wait_for("a2's plugin got both", lambda: len(received(cluster, a2, "a2", "decorator")) == 2)
    got = received(cluster, a2, "a2", "decorator")
    assert [(g["topic"], g["data"], g["src"], g["message"]) for g in got] == [
        ("orders.eu.created", "one", "a1", True), ("orders.us.created", "two", "a1", True)], "in publish order"
    # a1's own plugin subscribed too: a publish reaches the publisher's node as well.
    assert [g["data"] for g in received(cluster, a1, "a1", "decorator")] == ["one", "two"]
    # dagent.subscribe(pattern, fn) at run time, then cancel(): the interest goes and comes back.
    sid = plugin_request(cluster, a2, "a2", 71, "metrics.>")
    cluster.wait_for("the dynamic subscription at a1", lambda: "metrics.>" in parent_patterns(cluster, a1))
    plugin_request(cluster, a1, "a1", 70, json.dumps([["metrics.cpu.load", "0.5"]]))
    cluster.wait_for("delivered", lambda: [g["topic"] for g in received(cluster, a2, "a2", "dynamic")] == ["metrics.cpu.load"])
    assert plugin_request(cluster, a2, "a2", 72, sid) == "cancelled"
    cluster.wait_for("cancel() withdrew the interest upstream", lambda: "metrics.>" not in parent_patterns(cluster, a1))
    plugin_request(cluster, a1, "a1", 70, json.dumps([["metrics.cpu.load", "after"], ["orders.x.created", "marker"]]))
    cluster.wait_for("the marker", lambda: len(received(cluster, a2, "a2", "decorator")) == 3)
    assert [g["data"] for g in received(cluster, a2, "a2", "dynamic")] == ["0.5"], "nothing after cancel()"


def test_bad_patterns_and_topics_in_a_plugin_raise_the_generated_classes(cluster):
    root, a1, a2 = plugin_tree(cluster)
    for value, rule in [("a.>.b", "'>' must be the last token"), ("a..b", "empty token"), ("x" * 300, "max_topic_bytes=256"),
                        (".".join(["t"] * 40), "max_topic_tokens=32")]:
        sub_err, pub_err = json.loads(plugin_request(cluster, a1, "a1", 74, value))
        assert sub_err.startswith("BadTopic: bad topic: ") and rule in sub_err, sub_err
        assert pub_err.startswith("BadTopic: bad topic: "), pub_err
    sub_err, pub_err = json.loads(plugin_request(cluster, a1, "a1", 74, "orders.*"))
    assert sub_err == "accepted" and "wildcard '*' in a topic" in pub_err


def node_under(name, via, **kw):
    deadline = time.time() + 20
    while True:
        try:
            return dagent.Node(name=name, via=via, ready_timeout=2.0, **kw)
        except dagent.NotReady:
            if time.time() > deadline:
                raise


def collect(node, sink, n, timeout=15):
    """Runs the node's loop until ``sink`` holds n items (deadline)."""
    deadline = time.time() + timeout
    while len(sink) < n and time.time() < deadline:
        node.update(50)
    return sink


def test_standalone_subscriber_and_publisher_with_wildcards_and_the_async_iterator(cluster):
    root, a1, a2 = plugin_tree(cluster, plugins=False)
    node = node_under("py-sub", a2)
    try:
        got = []

        @node.subscribe("orders.*.created")
        def created(msg):
            got.append(("star", msg.topic, msg.text, msg.src))

        node.subscribe("orders.>", lambda msg: got.append(("tail", msg.topic, msg.text, msg.src)))
        cluster.wait_for("interest at a1", lambda: parent_patterns(cluster, a1) >= {"orders.*.created", "orders.>"})
        pub = cluster.start_python("py-pub", PEER, "py-pub", a1, "pub", "orders.eu.created", "3")
        cluster.wait_for("the publisher finished", lambda: "done" in pub.lines or not pub.running())
        collect(node, got, 6)
        assert [g for g in got if g[0] == "star"] == [("star", "orders.eu.created", str(i), "py-pub") for i in range(3)]
        assert [g for g in got if g[0] == "tail"] == [("tail", "orders.eu.created", str(i), "py-pub") for i in range(3)]
        # Bad patterns and topics raise dagent.BadTopic naming the rule, before anything is sent.
        with pytest.raises(dagent.BadTopic, match="'>' must be the last token"):
            node.subscribe("a.>.b", lambda m: None)
        with pytest.raises(dagent.BadTopic, match="empty token"):
            node.publish("a..b", b"x")
        with pytest.raises(dagent.BadTopic, match="max_topic_tokens=32"):
            dagent.subscribe(".".join(["t"] * 40), lambda m: None)
        with pytest.raises(dagent.BadTopic, match="wildcard '\\*' in a topic"):
            dagent.publish("a.*", b"x")
    finally:
        node.close()
    # A standalone subscriber process with `async for msg in node.topic(...)`.
    sub = cluster.start_python("py-iter", PEER, "py-iter", a2, "sub", "metrics.>", "2")
    cluster.wait_for("the iterator's subscription", lambda: "ready" in sub.lines and "metrics.>" in parent_patterns(cluster, a1))
    assert cluster.run("pub", "--via", a1, "metrics.cpu", "1").returncode == 0
    assert cluster.run("pub", "--via", a1, "metrics.mem.free", "2").returncode == 0
    assert sub.wait(20) == 0, sub.stderr()
    assert [json.loads(line) for line in sub.lines[1:]] == [
        {"topic": "metrics.cpu", "data": "1", "src": json.loads(sub.lines[1])["src"]},
        {"topic": "metrics.mem.free", "data": "2", "src": json.loads(sub.lines[2])["src"]}]
    cluster.wait_for("its interest withdrawn after it left", lambda: "metrics.>" not in parent_patterns(cluster, a1))
    # The worked example of docs/pubsub.md: asyncio.run, `async with dagent.Node`, `async with node.topic`.
    aio = cluster.start_python("py-aio", PEER, "py-aio", a2, "aio", "audit.>", "1")
    cluster.wait_for("the example's subscription", lambda: "ready" in aio.lines and "audit.>" in parent_patterns(cluster, a1))
    assert cluster.run("pub", "--via", a1, "audit.orders.eu.created", '{"id":1}').returncode == 0
    assert aio.wait(20) == 0, aio.stderr()
    assert json.loads(aio.lines[1])["topic"] == "audit.orders.eu.created" and json.loads(aio.lines[1])["data"] == '{"id":1}'


def test_queue_group_shared_by_a_plugin_and_standalone_programs(cluster):
    root, a1, a2 = plugin_tree(cluster)
    members = [cluster.start_python(f"w{i}", PEER, f"w{i}", via, "sub", "jobs.*", "1000", "workers")
               for i, via in enumerate([a1, a2])]
    cluster.wait_for("4 members of 'workers' (2 plugins, 2 programs) at the root",
                     lambda: sum(e["count"] for link in ctree(cluster, root)["links"] for e in link["interest"]
                                 if e["queue"] == "workers") == 4)
    jobs = [[f"jobs.{i % 4}", f"j{i}"] for i in range(40)]
    plugin_request(cluster, a1, "a1", 70, json.dumps(jobs))

    def all_jobs():
        plugins = [g["data"] for via, name in ((a1, "a1"), (a2, "a2")) for g in received(cluster, via, name, "queue")]
        programs = [json.loads(line)["data"] for m in members for line in m.lines[1:]]
        return plugins, programs
    cluster.wait_for("40 jobs handed out", lambda: sum(map(len, all_jobs())) == 40)
    plugins, programs = all_jobs()
    assert sorted(plugins + programs) == sorted(d for _, d in jobs), "each job to exactly one member"
    assert plugins and programs, f"plugins and programs shared the load: {len(plugins)} / {len(programs)}"


def test_cancel_in_a_standalone_program_withdraws_interest_and_stops_deliveries(cluster):
    root, a1, a2 = plugin_tree(cluster, plugins=False)
    node = node_under("py-cancel", a2)
    try:
        got = []
        sub = dagent.subscribe("alerts.>", got.append)
        keep = dagent.subscribe("marker", got.append)
        cluster.wait_for("interest at the root", lambda: ("alerts.>", "") in all_patterns(cluster, root))
        assert cluster.run("pub", "--via", a1, "alerts.disk", "full").returncode == 0
        collect(node, got, 1)
        sub.cancel()
        assert not sub.active and keep.active
        cluster.wait_for("withdrawn at the root", lambda: ("alerts.>", "") not in all_patterns(cluster, root))
        assert cluster.run("pub", "--via", a1, "alerts.disk", "again").returncode == 0
        assert cluster.run("pub", "--via", a1, "marker", "m").returncode == 0
        collect(node, got, 2)
        assert [(m.topic, m.text) for m in got] == [("alerts.disk", "full"), ("marker", "m")]
        assert node.publication_drops == 0
    finally:
        node.close()
