"""Delivery receipts are sent only once the plugin host accepted the message: `dagent send`
fails with `queue full` (naming plugins.queue_length) when the plugin queue is full, and every
send that succeeded reaches the plugin."""
import json
import os

from harness import wait_for

HERE = os.path.dirname(os.path.abspath(__file__))


def test_send_fails_when_the_plugin_queue_is_full(cluster, workdir):
    via = cluster.listen_addr("agent")
    cluster.start_node("agent", "--listen", via, "--plugins", os.path.join(HERE, "slow_plugin"),
                       "--plugin-queue-length", "2",
                       "--handler-budget", "600")   # the blocked handler must not be interrupted (watchdog) under load
    wait_for("the plugin", lambda: cluster.run("request", "--via", via, "--to", "agent", "--type", "62", "x").returncode == 0,
             logs=cluster.logs)
    gate = os.path.join(workdir, "gate")
    r = cluster.run("send", "--via", via, "--to", "agent", "--type", "60", gate)
    assert r.returncode == 0, r.stderr   # taken by the plugin thread, which now blocks
    ok, failed = [], None
    for i in range(12):
        r = cluster.run("send", "--via", via, "--to", "agent", "--type", "61", f"m{i}")
        if r.returncode != 0:
            failed = r
            break
        ok.append(f"m{i}")
    assert failed is not None, "a full plugin queue must make `dagent send` fail"
    assert "queue" in failed.stderr and "plugins.queue_length=2" in failed.stderr, failed.stderr
    assert len(ok) <= 3, ok
    open(gate, "w").close()
    want = [gate] + ok
    wait_for("every acknowledged send handled",
             lambda: json.loads(cluster.run("request", "--via", via, "--to", "agent", "--type", "62", "x").stdout) == want,
             logs=cluster.logs)
    # Once the queue drains, sends succeed again.
    assert cluster.run("send", "--via", via, "--to", "agent", "--type", "61", "after").returncode == 0
