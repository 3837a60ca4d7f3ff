"""The example business-logic plugins (plugins/orders.py, plugins/order_stats.py) on real
agents under a one-replica root group: the workflow, its refusals, concurrent steps from two
agents, and the events counted on another agent."""
import json
import os
import threading
import urllib.request

from harness import ROOT, state, wait_for

PLUGINS = os.path.join(ROOT, "plugins")


def plugin_dir(cluster, name, *plugins):
    """A directory holding only these shipped plugins (symlinks)."""
    d = cluster.path(name)
    os.makedirs(d)
    for p in plugins:
        os.symlink(os.path.join(PLUGINS, p), os.path.join(d, p))
    return d


def ask(cluster, via, to, t, text):
    r = cluster.run("request", "--via", via, "--to", to, "--type", str(t), "--timeout", "10", text, timeout=30)
    return r.returncode, (r.stdout if r.returncode == 0 else r.stderr).strip()


def order(cluster, via, to, text):
    code, out = ask(cluster, via, to, 120, text)
    assert code == 0, f"{text!r}: {out}"
    return json.loads(out)


def refused(cluster, via, to, text):
    code, out = ask(cluster, via, to, 120, text)
    assert code != 0, f"{text!r} was accepted: {out}"
    return out


def metrics(cluster, name):
    """The samples of NAME's /metrics: {'series{labels}': value}."""
    with urllib.request.urlopen(f"http://127.0.0.1:{cluster.port(name + '-http')}/metrics", timeout=5) as r:
        lines = r.read().decode().splitlines()
    return {k: float(v) for k, v in (line.rsplit(" ", 1) for line in lines if line and not line.startswith("#"))}


def tree_of_two_agents(cluster):
    root = cluster.raft_group(1)
    root.start(1)
    wait_for("leader", lambda: (state(["status"], root.addr(1)) or {}).get("leader") == 1)
    for name, plugins in (("a1", ("orders.py",)), ("a2", ("orders.py", "order_stats.py"))):
        cluster.start_node(name, "--role", "agent", "--listen", cluster.addr(name), "--parent", root.addr(1),
                           "--http", cluster.addr(f"{name}-http"),
                           "--plugins", plugin_dir(cluster, f"{name}-plugins", *plugins))
    via = root.addr(1)
    cluster.wait_for("a1's orders plugin", lambda: ask(cluster, via, "a1", 120, "list")[0] == 0)
    cluster.wait_for("a2's watch", lambda: json.loads(ask(cluster, via, "a2", 121, "-")[1])["watching"])
    return via


def test_an_order_moves_through_the_workflow_and_is_counted_elsewhere(cluster):
    via = tree_of_two_agents(cluster)
    o = order(cluster, via, "a1", "new book 2")
    assert o == {"id": 1, "item": "book", "qty": 2, "status": "created", "by": o["by"]} and o["by"]
    assert order(cluster, via, "a1", "new pen")["id"] == 2, "QTY defaults to 1, ids count up"
    assert order(cluster, via, "a2", "pay 1")["status"] == "paid", "another agent sees the same store"
    assert order(cluster, via, "a1", "ship 1")["status"] == "shipped"
    assert order(cluster, via, "a1", "cancel 2")["status"] == "cancelled"
    assert [(x["id"], x["status"]) for x in order(cluster, via, "a2", "list")] == [(1, "shipped"), (2, "cancelled")]
    record = json.loads(state(["get", "orders/o/00000001"], via)["record"]["value"])
    assert record["status"] == "shipped", "the record is in the replicated store"

    def counted():
        return json.loads(ask(cluster, via, "a2", 121, "-")[1])
    cluster.wait_for("the events counted on a2", lambda: counted()["events"] == 5)
    assert counted() == {"events": 5, "by_status": {"cancelled": 1, "created": 2, "paid": 1, "shipped": 1},
                         "open_qty": {}, "watching": True}
    order(cluster, via, "a1", "new lamp 3")
    cluster.wait_for("an open order", lambda: counted()["open_qty"] == {"lamp": 3})

    want = {'orders_events_total{status="created"}': 3, 'orders_events_total{status="paid"}': 1,
            'orders_events_total{status="shipped"}': 1, 'orders_events_total{status="cancelled"}': 1,
            "orders_open": 1, "orders_open_qty": 3}
    cluster.wait_for("order_stats' metrics on a2's /metrics",
                     lambda: all(metrics(cluster, "a2").get(k) == v for k, v in want.items()))
    cluster.wait_for("the orders plugin's metrics on a1's /metrics",
                     lambda: metrics(cluster, "a1").get('orders_commands_total{command="new"}') == 3
                     and metrics(cluster, "a1").get('orders_commands_total{command="ship"}') == 1)


def test_bad_commands_and_steps_are_refused_with_the_reason(cluster):
    via = tree_of_two_agents(cluster)
    order(cluster, via, "a1", "new book")
    order(cluster, via, "a1", "pay 1")
    assert "order 1 is paid: pay needs created" in refused(cluster, via, "a1", "pay 1")
    assert "no such order: 7" in refused(cluster, via, "a1", "ship 7")
    assert "order id must be an integer (got 'x')" in refused(cluster, via, "a1", "get x")
    assert "order id must be >= 1 (got 0)" in refused(cluster, via, "a1", "get 0")
    assert "QTY must be in 1 .. max_qty=1000 (got 5000)" in refused(cluster, via, "a1", "new book 5000")
    assert "QTY must be an integer (got 'many')" in refused(cluster, via, "a1", "new book many")
    assert "usage: new ITEM [QTY]" in refused(cluster, via, "a1", "new")
    assert "unknown command 'fly 1'" in refused(cluster, via, "a1", "fly 1")
    assert "empty command" in refused(cluster, via, "a1", "")
    assert order(cluster, via, "a1", "get 1")["status"] == "paid", "nothing changed"
    cluster.wait_for("the refusals counted", lambda: metrics(cluster, "a1").get('orders_refused_total{command="other"}') == 2
                     and metrics(cluster, "a1").get('orders_refused_total{command="new"}') == 3)


def test_concurrent_steps_from_two_agents_lose_nothing(cluster):
    via = tree_of_two_agents(cluster)
    results = []

    def run(agent, text):
        results.append((agent, text, ask(cluster, via, agent, 120, text)))
    threads = [threading.Thread(target=run, args=("a1" if i % 2 else "a2", f"new item{i}")) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(code == 0 for _, _, (code, _) in results), results
    ids = sorted(json.loads(out)["id"] for _, _, (_, out) in results)
    assert ids == list(range(1, 9)), "every new order got its own id"

    results.clear()
    threads = [threading.Thread(target=run, args=(agent, "pay 3")) for agent in ("a1", "a2", "a1", "a2")]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    won = [r for r in results if r[2][0] == 0]
    assert len(won) == 1, f"exactly one pay of order 3 wins: {results}"
    assert all("order 3 is paid: pay needs created" in out for _, _, (code, out) in results if code != 0)
    assert len(order(cluster, via, "a1", "list")) == 8
