"""Deploying and supervising trees (issue 16): `dagent up/down/status/logs/restart/config/systemd`
with real processes on loopback. Machines are simulated by agents with their own data folders."""
import ctypes
import json
import os
import shutil
import signal
import socket
import subprocess
import textwrap
import threading
import time
import uuid

import pytest

from conftest import dagent_binary, free_port, wait_for

D = dagent_binary()


def dagent(*args, timeout=120, check=True, env=None):
    r = subprocess.run([D, *args], capture_output=True, text=True, timeout=timeout, env=env)
    if check and r.returncode != 0:
        raise AssertionError(f"dagent {' '.join(args)} exited {r.returncode}\nstdout:\n{r.stdout}\nstderr:\n{r.stderr}")
    return r


_libc = ctypes.CDLL(None, use_errno=True)
_libc.ftok.restype = ctypes.c_int


def ipc_keys(path):
    return {_libc.ftok(path.encode(), proj) for proj in (0x55, 0x44, 0x54)}


def ipc_present(keys):
    found = set()
    for kind in ("msg", "shm"):
        with open(f"/proc/sysvipc/{kind}") as f:
            next(f)
            for line in f:
                k = int(line.split()[0])
                if k in keys:
                    found.add(k)
    return found


def listening(ports):
    out = subprocess.run(["ss", "-Hltn"], capture_output=True, text=True).stdout
    return {p for p in ports if f":{p} " in out}


def tree_pids(tree, workdir):
    """Every live process of this test's tree: started with its topology file, or by one of its agents."""
    pids = set()
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        try:
            with open(f"/proc/{d}/stat") as f:
                if f.read().rsplit(")", 1)[1].split()[0] == "Z":
                    continue
            with open(f"/proc/{d}/cmdline", "rb") as f:
                cmd = f.read().decode(errors="replace")
            with open(f"/proc/{d}/environ", "rb") as f:
                env = f.read().decode(errors="replace")
        except OSError:
            continue
        if f"DAGENT_TREE={tree}\0" in env or workdir in cmd:
            pids.add(int(d))
    pids.discard(os.getpid())
    return pids


class Tree:
    """A topology file in a fresh folder, and the commands on it."""

    def __init__(self, workdir, roots=3, processes_a1=None, processes_a2=None, hosts=False, extra="", a1_extra="", a2_extra=""):
        self.workdir = workdir
        self.name = "t" + uuid.uuid4().hex[:8]
        self.root_ports = [free_port() for _ in range(roots)]
        self.a1_port, self.a2_port = free_port(), free_port()
        self.msgq = os.path.join(workdir, "a1.q")
        self.path = os.path.join(workdir, "tree.yaml")
        self.hosts = hosts
        self.extra = extra
        self.a1_extra = a1_extra
        self.a2_extra = a2_extra
        self.a1 = processes_a1 if processes_a1 is not None else {
            "echo1": {"run": f"dagent run --name echo1 --parent msgq://{self.msgq} --echo", "restart": "always"},
            "worker": {"run": "dagent run --name worker --parent $DAGENT_VIA", "env": {"MODE": "one"},
                       "depends_on": ["echo1"], "restart": "on-failure", "backoff": {"initial": 0.5, "max": 30}},
        }
        self.a2 = processes_a2 if processes_a2 is not None else {
            "echo2": {"run": f"dagent run --name echo2 --parent tcp://127.0.0.1:{self.a2_port} --echo"},
        }
        self.write()

    @property
    def ports(self):
        return self.root_ports + [self.a1_port, self.a2_port]

    @property
    def root_addr(self):
        return f"tcp://127.0.0.1:{self.root_ports[0]}"

    def write(self):
        roots = "\n".join(f"  - {{id: {i + 1}, listen: tcp://127.0.0.1:{p}}}" for i, p in enumerate(self.root_ports))
        text = f"name: {self.name}\ndata: data\n{self.extra}root:\n{roots}\nagents:\n"
        text += "  a1:\n" + ("    host: m1\n" if self.hosts else "")
        text += f"    listen: tcp://127.0.0.1:{self.a1_port}\n    msgq: {self.msgq}\n" + self.a1_extra
        text += "    processes: " + json.dumps(self.a1) + "\n"
        text += "  a2:\n" + ("    host: m2\n" if self.hosts else "")
        text += f"    listen: tcp://127.0.0.1:{self.a2_port}\n" + self.a2_extra
        text += "    processes: " + json.dumps(self.a2) + "\n"
        with open(self.path, "w") as f:
            f.write(text)

    def run(self, *args, **kw):
        return dagent(*args[:1], "-f", self.path, *args[1:], **kw)

    def status(self, *extra):
        r = self.run("status", "--json", *extra, check=False)
        return {row.get("name", row.get("agent")): row for row in json.loads(r.stdout)}

    def cleanup(self):
        if os.path.exists(self.path):
            self.run("down", "--timeout", "30", check=False, timeout=60)
        for pid in tree_pids(self.name, self.workdir):
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass


@pytest.fixture
def tree_factory(workdir):
    made = []

    def make(**kw):
        t = Tree(workdir, **kw)
        made.append(t)
        return t

    yield make
    for t in made:
        t.cleanup()


def test_up_status_request_then_down_leaves_nothing(tree_factory):
    t = tree_factory()
    before_ports = listening(t.ports)
    assert before_ports == set()
    r = t.run("up", "--timeout", "90")
    assert "3 process(es) running" in r.stderr, r.stderr
    rows = t.status()
    for name in ("r1", "r2", "r3", "a1", "a2", "echo1", "worker", "echo2"):
        assert rows[name]["state"] == "running", rows
    assert rows["echo1"]["agent"] == "a1" and rows["echo2"]["agent"] == "a2"
    table = t.run("status").stdout
    assert table.splitlines()[0].split() == ["PROCESS", "AGENT", "STATE", "PID", "RESTARTS", "UPTIME", "LAST", "EXIT"]
    # A request reaches echo1 (a leaf on a1's message queue) from the root, and echo2 (tcp) too.
    assert dagent("request", "--via", t.root_addr, "--to", "echo1", "hello").stdout.strip() == "hello"
    assert dagent("request", "--via", t.root_addr, "--to", "echo2", "hi").stdout.strip() == "hi"
    # The worker got its agent's address and the tree's variables.
    with open(f"/proc/{rows['worker']['pid']}/environ", "rb") as f:
        env = dict(kv.split("=", 1) for kv in f.read().decode().split("\0") if "=" in kv)
    assert env["DAGENT_VIA"] == f"msgq://{t.msgq}" and env["DAGENT_AGENT"] == "a1" and env["MODE"] == "one"
    # The desired state is in the root group's store.
    got = json.loads(dagent("state", "get", "--json", "--via", t.root_addr, f"deploy/{t.name}/agents/a1").stdout)
    assert [p["name"] for p in json.loads(got["record"]["value"])["processes"]] == ["echo1", "worker"]
    # Status reaches the root group: every agent's rows are in the store, readable without the file.
    def stored():
        r = dagent("status", "--via", t.root_addr, "--json", check=False)
        return {row["name"]: row["state"] for row in json.loads(r.stdout)}
    wait_for("the agents' status in the store", lambda: stored() == {"echo1": "running", "worker": "running", "echo2": "running"})
    keys = ipc_keys(t.msgq)
    assert ipc_present(keys) == keys
    pids = tree_pids(t.name, t.workdir)
    assert len(pids) >= 9   # supervise, 3 roots, 2 agents, 3 processes
    # An idempotent second up changes nothing.
    t.run("up")
    again = t.status()
    assert all(again[n]["pid"] == rows[n]["pid"] for n in rows), (rows, again)
    r = t.run("down")
    assert "stopped worker" in r.stderr and r.stderr.index("stopped worker") < r.stderr.index("stopped echo1")
    wait_for("no process left", lambda: not tree_pids(t.name, t.workdir), timeout=30)
    assert ipc_present(keys) == set()
    assert listening(t.ports) == before_ports


def test_kill9_of_a_leaf_and_of_an_agent(tree_factory):
    t = tree_factory(roots=1)
    t.run("up")
    rows = t.status()
    echo1 = rows["echo1"]["pid"]
    os.kill(echo1, signal.SIGKILL)
    # Restarted and registered again (it reclaims its name with the session the supervisor keeps).
    wait_for("echo1 restarted", lambda: t.status()["echo1"]["pid"] not in (None, echo1))
    wait_for("echo1 answers", lambda: dagent("request", "--via", t.root_addr, "--to", "echo1", "--timeout", "1", "x", check=False).returncode == 0, timeout=10)
    row = t.status()["echo1"]
    assert row["restarts"] == 1 and row["last_exit"] == "killed by SIGKILL"
    # kill -9 of the agent: supervise starts it again, and it adopts its processes.
    before = t.status()
    os.kill(before["a1"]["pid"], signal.SIGKILL)
    wait_for("a1 back", lambda: t.status()["a1"]["pid"] not in (None, before["a1"]["pid"]) and t.status()["a1"]["state"] == "running")
    wait_for("a1 reports its processes", lambda: "echo1" in t.status())
    after = t.status()
    for n in ("echo1", "worker"):
        assert after[n]["pid"] == before[n]["pid"] and after[n]["adopted"], (before[n], after[n])
    # No duplicates: one process per name.
    def argv(pid):
        try:
            with open(f"/proc/{pid}/cmdline", "rb") as f:
                return f.read().decode().split("\0")
        except OSError:
            return []
    for n in ("echo1", "worker"):
        same = [p for p in tree_pids(t.name, t.workdir) if "--name" in argv(p) and argv(p)[argv(p).index("--name") + 1] == n]
        assert len(same) == 1, (n, same)
    assert dagent("request", "--via", t.root_addr, "--to", "echo1", "still").stdout.strip() == "still"
    # An adopted process that dies is noticed and restarted.
    os.kill(after["worker"]["pid"], signal.SIGKILL)
    wait_for("worker restarted", lambda: t.status()["worker"]["pid"] not in (None, after["worker"]["pid"]))


def metric_samples(text):
    """{(name, frozenset(labels)): value} from Prometheus text (prometheus_client's parser)."""
    from prometheus_client.parser import text_string_to_metric_families
    return {(s.name, frozenset(s.labels.items())): s.value
            for fam in text_string_to_metric_families(text) for s in fam.samples}


def http_get(url):
    import urllib.request
    with urllib.request.urlopen(url, timeout=10) as r:
        return r.read().decode()


def test_process_states_in_dagent_tree_and_in_metrics(tree_factory, workdir):
    """Status reaches the root: the agent's tree reply and /metrics carry its processes, and its
    metrics reach a collector (the collector plugin, hosted by a2) like every other node figure."""
    repo = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    plugdir = os.path.join(workdir, "collector-plugins")
    os.makedirs(plugdir)
    os.symlink(os.path.join(repo, "plugins", "collector"), os.path.join(plugdir, "collector"))
    a1_http, a2_http = free_port(), free_port()
    t = tree_factory(roots=1, a1_extra=f"    http: tcp://127.0.0.1:{a1_http}\n    metrics: {{report_to: a2, report_interval: 0.2}}\n",
                     a2_extra=f"    http: tcp://127.0.0.1:{a2_http}\n    plugins: [{plugdir}]\n"
                              "    config: {collector: {down_after: 1.0, grace: 2.0}}\n")
    assert t.a1_port not in (a1_http, a2_http)
    t.run("up")
    a1 = f"tcp://127.0.0.1:{t.a1_port}"

    def procs(via=a1):
        got = json.loads(dagent("tree", "--via", via, "--json").stdout)
        assert got["deploy_tree"] == t.name, got
        return {p["name"]: p for p in got["processes"]}

    rows = t.status()
    wait_for("both registered in a1's tree reply", lambda: all(p["registered"] for p in procs().values()))
    got = procs()
    assert set(got) == {"echo1", "worker"}
    for n, p in got.items():
        assert p["state"] == "running" and p["pid"] == rows[n]["pid"] and p["restarts"] == 0 and p["last_exit"] == "", p
        assert p["uptime"] > 0 and not p["adopted"] and p["waiting_for"] == [], p
    # The same through a1's message queue, and a2's own.
    assert set(procs(f"msgq://{t.msgq}")) == {"echo1", "worker"}
    assert set(procs(f"tcp://127.0.0.1:{t.a2_port}")) == {"echo2"}
    # The text form: the processes under the agent, and the state on each process's line of the tree.
    text = dagent("tree", "--via", a1).stdout
    lines = text.splitlines()
    assert f"processes (tree {t.name}): 2" in lines, text
    assert any(l.strip().startswith("echo1") and f"running pid={rows['echo1']['pid']}" in l and "restarts=0" in l for l in lines), text
    assert any("echo1 [leaf]" in l and "process running restarts=0" in l for l in lines), text

    # kill -9: the restart count and the last exit show in the tree and in /metrics.
    old = rows["echo1"]["pid"]
    os.kill(old, signal.SIGKILL)
    wait_for("echo1 back in the tree reply", lambda: (lambda p: p["state"] == "running" and p["pid"] not in (None, old)
                                                       and p["restarts"] == 1)(procs()["echo1"]))
    assert procs()["echo1"]["last_exit"] == "killed by SIGKILL"
    assert "restarts=1" in dagent("tree", "--via", a1).stdout
    # Status reaches the root: the root replica's tree shows every agent's processes from the store.
    def at_root():
        got = json.loads(dagent("tree", "--via", t.root_addr, "--json").stdout)
        return {(a["agent"], p["name"]): p for a in got["agent_processes"] if a["tree"] == t.name for p in a["processes"]}
    wait_for("the restart at the root", lambda: at_root().get(("a1", "echo1"), {}).get("restarts") == 1)
    root = at_root()
    assert set(root) == {("a1", "echo1"), ("a1", "worker"), ("a2", "echo2")}, root
    assert root[("a1", "echo1")]["last_exit"] == "killed by SIGKILL" and root[("a2", "echo2")]["state"] == "running"
    text = dagent("tree", "--via", t.root_addr).stdout
    assert any("echo1 [leaf]" in l and "process running restarts=1" in l for l in text.splitlines()), text
    assert any(l.strip().startswith("a2 (tree ") for l in text.splitlines()), text

    def m():
        return metric_samples(http_get(f"http://127.0.0.1:{a1_http}/metrics"))
    wait_for("the restart in /metrics", lambda: m().get(("dagent_process_restarts_total", frozenset({("process", "echo1")}))) == 1)
    s = m()
    for n in ("echo1", "worker"):
        assert s[("dagent_process_up", frozenset({("process", n)}))] == 1
        assert s[("dagent_process_state", frozenset({("process", n), ("state", "running")}))] == 1
        assert s[("dagent_process_state", frozenset({("process", n), ("state", "crash-loop")}))] == 0
        assert s[("dagent_process_uptime_seconds", frozenset({("process", n)}))] > 0
    assert s[("dagent_process_restarts_total", frozenset({("process", "worker")}))] == 0
    text = http_get(f"http://127.0.0.1:{a1_http}/metrics")
    assert "# TYPE dagent_process_restarts_total counter" in text and "# TYPE dagent_process_up gauge" in text
    if not shutil.which("promtool"):
        pytest.fail("promtool is missing (scripts/setup installs Debian's prometheus)")
    r = subprocess.run(["promtool", "check", "metrics"], input=text, capture_output=True, text=True)
    assert r.returncode == 0, f"promtool: {r.stdout}{r.stderr}"

    # They reach the collector like the node's other figures (a node label added).
    def col():
        return metric_samples(http_get(f"http://127.0.0.1:{a2_http}/metrics/tree"))
    wait_for("a1's process series at the collector",
             lambda: col().get(("dagent_process_restarts_total", frozenset({("node", "a1"), ("process", "echo1")}))) == 1)
    c = col()
    assert c[("dagent_process_up", frozenset({("node", "a1"), ("process", "worker")}))] == 1

    # A process taken out of the file: gone from the tree reply and from /metrics.
    del t.a1["worker"]
    t.write()
    t.run("up")
    wait_for("worker gone from the tree reply", lambda: set(procs()) == {"echo1"})
    wait_for("worker's series gone", lambda: not any(dict(l).get("process") == "worker" for (_, l) in m()))
    assert m()[("dagent_process_up", frozenset({("process", "echo1")}))] == 1


def test_a_process_that_exits_at_once_goes_into_crash_loop(tree_factory):
    t = tree_factory(roots=1, processes_a2={
        "bad": {"run": "echo boom >&2; exit 3", "backoff": {"initial": 0.1, "max": 1.6}, "crash_loop_after": 3},
    })
    r = t.run("up", check=False)
    assert r.returncode == 1 and "bad (crash-loop, exit 3)" in r.stderr, r.stderr
    seen = []

    def grows():
        row = t.status()["bad"]
        if row["state"] == "crash-loop" and row.get("next_start_in") is not None and row.get("pid") is None:
            if not seen or row["next_start_in"] > seen[-1] + 0.05:
                seen.append(row["next_start_in"])
        return len(seen) >= 2 and seen[-1] > 0.5

    wait_for("the backoff to grow", grows, timeout=30)
    row = t.status()["bad"]
    assert row["last_exit"] == "exit 3" and "boom" in row["log_tail"], row
    table = t.run("status", check=False)
    assert table.returncode == 1 and "crash-loop" in table.stdout and "| boom" in table.stdout
    assert "boom" in t.run("logs", "--tail", "2", "bad").stdout


def test_up_after_an_edit_changes_only_what_changed(tree_factory):
    t = tree_factory(roots=1)
    t.run("up")
    before = t.status()
    t.a1["worker"]["env"] = {"MODE": "two"}
    t.a2["echo3"] = {"run": f"dagent run --name echo3 --parent tcp://127.0.0.1:{t.a2_port} --echo"}
    t.write()
    r = t.run("up")
    after = t.status()
    changed = {n for n in after if n in before and after[n]["pid"] != before[n]["pid"]}
    assert changed == {"worker"}, (before, after, r.stderr)
    assert after["echo3"]["state"] == "running"
    with open(f"/proc/{after['worker']['pid']}/environ", "rb") as f:
        assert b"MODE=two\0" in f.read()
    # Removing a process stops it.
    del t.a2["echo3"]
    t.write()
    t.run("up")
    assert "echo3" not in t.status()


def test_restart_and_logs(tree_factory):
    t = tree_factory(roots=1)
    t.run("up")
    pid = t.status()["echo2"]["pid"]
    r = t.run("restart", "echo2")
    assert "echo2" in r.stdout
    row = t.status()["echo2"]
    assert row["pid"] != pid and row["restarts"] == 1
    logs = t.run("logs", "echo2").stdout
    assert logs.count("node 'echo2' started") == 2, logs
    assert "registered 'a1'" in t.run("logs", "--tail", "50", "a1").stdout
    bad = t.run("logs", "nobody", check=False)
    assert bad.returncode == 2 and "no process, agent or root replica 'nobody'" in bad.stderr
    # --follow prints what is appended. Its output is read by a thread: a readline() inside the
    # condition blocked past wait_for's deadline (CI hung there when the line never came).
    p = subprocess.Popen([D, "logs", "-f", t.path, "--follow", "--tail", "1", "echo2"], stdout=subprocess.PIPE, text=True)
    followed = []

    def read():
        for line in p.stdout:
            followed.append(line)
    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    try:
        wait_for("the tail line, so the log is being followed", lambda: followed, timeout=20)
        t.run("restart", "echo2")
        wait_for("the restart in the followed log", lambda: any("started (role leaf)" in line for line in followed[1:]),
                 timeout=20)
    finally:
        p.kill()
        p.wait()
        reader.join(5)


def test_an_agent_with_plugins_and_their_config(tree_factory):
    plugins = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))), "plugins")
    t = tree_factory(roots=1, a1_extra=f"    plugins: [{plugins}]\n    config: {{echo: {{prefix: \"> \"}}}}\n")
    t.run("up")
    # The shipped echo plugin runs in a1 with its config section, and a1 still answers deploy requests.
    assert dagent("request", "--via", t.root_addr, "--to", "a1", "hi").stdout.strip() == "> hi"
    assert t.status()["echo1"]["state"] == "running"
    tree = json.loads(dagent("tree", "--via", f"tcp://127.0.0.1:{t.a1_port}", "--json").stdout)
    assert any(p["name"] == "echo" and p["state"] == "loaded" for p in tree["plugin_host"]["plugins"]), tree
    # The plugin host's part of the tree reply and the supervised processes are both there.
    assert [p["name"] for p in tree["processes"]] == ["echo1", "worker"], tree


def notify_socket(workdir, name):
    path = os.path.join(workdir, f"notify-{name}.sock")
    s = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    s.bind(path)
    s.settimeout(30)
    return s, path


def test_cross_machine_agents_started_as_systemd_would_then_up_via(tree_factory, workdir):
    t = tree_factory(roots=1, hosts=True)
    procs = []
    try:
        # Start the nodes as their units would (dagent systemd prints these ExecStart lines).
        for args, unit in ((["--root", "1"], "r1"), (["--agent", "a1"], "a1"), (["--agent", "a2"], "a2")):
            s, path = notify_socket(workdir, unit)
            unit_text = t.run("systemd", *args).stdout
            exec_start = next(l for l in unit_text.splitlines() if l.startswith("ExecStart="))[len("ExecStart="):].split()
            assert exec_start[0] == D or os.path.realpath(exec_start[0]) == os.path.realpath(D)
            env = dict(os.environ, NOTIFY_SOCKET=path)
            log = open(os.path.join(workdir, f"{unit}.log"), "w")
            procs.append(subprocess.Popen([D, *exec_start[1:]], env=env, stdout=log, stderr=log))
            msg = s.recv(4096).decode()
            assert "READY=1" in msg, msg
            s.close()
        # Nothing local: --via hands each agent its processes through the tree.
        r = t.run("up", "--via", t.root_addr)
        assert "3 process(es) running" in r.stderr, r.stderr
        assert not os.path.exists(os.path.join(workdir, "data", "supervise", "supervise.pid"))
        rows = t.status("--via", t.root_addr)
        assert {n: rows[n]["state"] for n in ("echo1", "worker", "echo2")} == {"echo1": "running", "worker": "running", "echo2": "running"}
        assert dagent("request", "--via", t.root_addr, "--to", "echo1", "via").stdout.strip() == "via"
        t.run("down", "--via", t.root_addr)
        wait_for("processes stopped", lambda: not [n for n in t.status("--via", t.root_addr) if n in ("echo1", "worker", "echo2")])
    finally:
        for p in reversed(procs):
            p.send_signal(signal.SIGTERM)
        for p in procs:
            assert p.wait(timeout=30) == 0


@pytest.mark.skipif(not shutil.which("systemd-analyze"), reason="systemd-analyze not installed (scripts/setup installs systemd)")
def test_generated_units_pass_systemd_analyze_verify(tree_factory, workdir):
    t = tree_factory(roots=3)
    units = os.path.join(workdir, "units")
    os.makedirs(units)
    names = []
    for args, node in ((["--agent", "a1"], "a1"), (["--agent", "a2"], "a2"), (["--root", "1"], "r1"), (["--root", "3"], "r3")):
        text = t.run("systemd", *args).stdout
        assert "Type=notify" in text and "KillMode=process" in text and "--topology " + t.path in text
        name = os.path.join(units, f"dagent-{t.name}-{node}.service")
        with open(name, "w") as f:
            f.write(text)
        names.append(name)
    r = subprocess.run(["systemd-analyze", "verify", *names], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "dagent" not in r.stderr, r.stderr   # no warning about our units
    bad = t.run("systemd", "--agent", "nope", check=False)
    assert bad.returncode == 2 and "no agent 'nope'" in bad.stderr


BAD_FILES = [
    ("duplicate name", {"echo2": {"run": "sleep 1"}}, None, "agents.a2.processes.echo2", "duplicate name 'echo2'"),
    ("dependency cycle", None, {"x": {"run": "sleep 1", "depends_on": ["y"]}, "y": {"run": "sleep 1", "depends_on": ["x"]}},
     "agents.a2.processes.x.depends_on", "dependency cycle: x -> y -> x"),
    ("unknown key", {"echo1": {"run": "sleep 1", "restrat": "always"}}, None, "agents.a1.processes.echo1.restrat", "unknown key 'restrat'"),
    ("missing command", {"echo1": {"restart": "always"}}, None, "agents.a1.processes.echo1.run", "missing command"),
]


@pytest.mark.parametrize("what,a1,a2,key,message", BAD_FILES, ids=[b[0] for b in BAD_FILES])
def test_bad_topology_files_name_the_line_and_key(workdir, what, a1, a2, key, message):
    t = Tree(workdir, roots=1, processes_a1=a1, processes_a2=a2 if a2 is not None else {"echo2": {"run": "sleep 1"}})
    for cmd in ("config", "up", "status"):
        r = t.run(cmd, check=False)
        assert r.returncode == 2, (cmd, r.stdout, r.stderr)
        line = r.stderr.strip().splitlines()[0]
        assert line.startswith(f"{t.path}:") and f": {key}: " in line and message in line, line
        assert int(line.split(":")[1]) > 0
    assert not os.path.exists(os.path.join(workdir, "data"))


def test_port_used_twice_names_both_lines(workdir):
    t = Tree(workdir, roots=1)
    t.a2_port = t.root_ports[0]
    t.write()
    r = t.run("config", check=False)
    assert r.returncode == 2
    assert "agents.a2.listen: port used twice" in r.stderr and "root.listen" in r.stderr, r.stderr
    lines = open(t.path).read().splitlines()
    n = int(r.stderr.split(":")[1])
    assert "listen" in lines[n - 1] and str(t.root_ports[0]) in lines[n - 1]


def test_config_prints_the_resolved_tree(workdir):
    t = Tree(workdir, roots=3)
    out = t.run("config").stdout
    assert "root group (3 replicas)" in out and "agent a1" in out and "start order: echo1 echo2 ; worker" in out
    j = json.loads(t.run("config", "--json").stdout)
    assert [r["name"] for r in j["root"]] == ["r1", "r2", "r3"]
    assert j["agents"][0]["child_address"] == f"msgq://{t.msgq}"
    assert j["agents"][0]["processes"][1]["depends_on"] == ["echo1"]
