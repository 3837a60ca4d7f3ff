"""The config file is read once per start: the node's options, its plugins and its metrics all come
from one read (issue 10). The file is a FIFO that the test writes once: a second open() would block
with no writer, and the node would never come up."""
import os
import threading

from harness import ROOT


def test_one_read_of_the_config_serves_node_plugins_and_metrics(cluster, workdir):
    plugdir = cluster.path("plugins")
    os.mkdir(plugdir)
    os.symlink(os.path.join(ROOT, "plugins", "echo.py"), os.path.join(plugdir, "echo.py"))
    fifo = cluster.path("node.yaml")
    os.mkfifo(fifo)
    addr = cluster.addr("once")
    text = (f"name: once\nlisten: {addr}\n"
            f"plugins:\n  dirs: [{plugdir}]\n  config:\n    echo: {{prefix: 'cfg:'}}\n"
            f"metrics:\n  report_interval: 0.5\n")
    opens = []

    def writer():
        # Each open for writing pairs with one open for reading; only the first is answered.
        with open(fifo, "w") as f:
            opens.append(1)
            f.write(text)

    t = threading.Thread(target=writer, daemon=True)
    t.start()
    cluster.start("once", ["run", "--config", fifo])
    t.join(timeout=20)
    assert opens == [1], "dagent did not open the config file"

    def echoed():
        r = cluster.run("request", "--via", addr, "--to", "once", "--timeout", "1", "hello")
        return r.returncode == 0 and r.stdout.strip() == "cfg:hello"

    cluster.wait_for("the plugin answers with the prefix from the config file", echoed)
    assert cluster.procs["once"].running()
