"""The one harness that starts real processes for the pytest suites (the Swift twin is
Tests/DAgentClusterSupport). Use the ``cluster`` fixture of conftest.py::

    def test_echo(cluster):
        root = cluster.start_node("root", "--listen", cluster.listen_addr("root"))
        cluster.start_node("ep1", "--parent", cluster.addr("root"), "--echo")
        cluster.wait_for("ep1 answers", lambda: cluster.run("request", "--via", cluster.addr("root"),
                                                            "--to", "ep1", "hi").stdout == "hi\\n")

Every process started as KEY logs stderr to WORKDIR/KEY.log; its stdout lines are collected in
``proc.lines``. The fixture stops everything at the end of the test (SIGTERM, then SIGKILL).
Waiting is always for a condition with a deadline (``wait_for``); a timed-out wait raises with
the tail of every log.
"""
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
PYTHON_DIR = os.path.join(ROOT, "python")


def dagent_binary():
    """The `dagent` under test: $DAGENT_BIN, else the debug build of this checkout."""
    if os.environ.get("DAGENT_BIN"):
        return os.environ["DAGENT_BIN"]
    out = subprocess.run(["swift", "build", "--show-bin-path"], cwd=ROOT, capture_output=True, text=True).stdout.strip()
    return os.path.join(out, "dagent")


# Under pytest-xdist (scripts/test runs this suite with -n 2) the workers are separate processes
# that pick ports at the same time. Each worker only takes ports of its own 64-port blocks
# (block = port // 64; worker k of n owns the blocks with block % n == k), so a port one worker
# has picked but not yet bound (or is about to bind again after a restart) is never handed to the
# other. Without xdist every block is this process's.
PORT_BLOCK = 64
_WORKER = int(os.environ.get("PYTEST_XDIST_WORKER", "gw0")[2:] or 0)
_WORKERS = max(1, int(os.environ.get("PYTEST_XDIST_WORKER_COUNT", "1")))
_handed_out = set()


def owned_port(port):
    """True if ``port`` belongs to this process's blocks (always true without xdist)."""
    return (port // PORT_BLOCK) % _WORKERS == _WORKER


def free_port():
    """A free loopback TCP port (bound, then released) of this worker's blocks, never one this
    process was handed before (a port released for a process to bind may be given out again)."""
    for _ in range(10000):
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            port = s.getsockname()[1]
        if owned_port(port) and port not in _handed_out:
            _handed_out.add(port)
            return port
    raise AssertionError(f"no free port of worker {_WORKER}/{_WORKERS} after 10000 tries")


def wait_for(what, cond, timeout=20.0, logs=None):
    """Polls ``cond()`` (exceptions count as false) until it is true; raises after ``timeout``."""
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            if cond():
                return
        except Exception:
            pass
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}" + (f"\n{logs()}" if logs else ""))


def state(args, via, timeout=4):
    """Runs ``dagent state ARGS --via VIA``; the JSON answer, or None (unknown outcome)."""
    try:
        r = subprocess.run([dagent_binary(), "state", *args, "--json", "--via", via, "--timeout", str(timeout)],
                           capture_output=True, text=True, timeout=timeout + 10)
    except subprocess.TimeoutExpired:
        return None
    try:
        return json.loads(r.stdout)
    except ValueError:
        return None



ABSENT = "__absent__"   # a get that found no key (state_op's result; normalise_absent maps it to None)


def state_op(cid, kind, key, via, value=None, expect=None, timeout=4):
    """One ``put``/``get``/``cas`` through ``dagent state`` as a ``linearizability.Op`` of client ``cid``.
    An operation with no answer, or an error answer (it may still have been proposed), has an unknown
    outcome: result None, completed at infinity. ``value``: what put or cas writes; ``expect``: cas's
    expected value."""
    import math
    from linearizability import Op
    t0 = time.monotonic()
    if kind == "put":
        ans = state(["put", key, value], via, timeout=timeout)
        arg, result = value, (True if ans and ans.get("ok") else None)
    elif kind == "get":
        ans = state(["get", key], via, timeout=timeout)
        arg, result = None, None
        if ans is not None:
            error = ans.get("error", "")
            if ans.get("ok"):
                result = ans["record"]["value"]
            elif ans.get("code") == "not_found" or "not found" in error or "no key" in error:
                result = ABSENT
    else:
        ans = state(["cas", key, value, "--expect", expect], via, timeout=timeout)
        arg, result = (expect, value), None
        if ans is not None:
            if ans.get("ok"):
                result = True
            elif "compare failed" in ans.get("error", "") or "not found" in ans.get("error", ""):
                result = False
    return Op(cid, kind, key, arg, result, t0, math.inf if result is None else time.monotonic())


def normalise_absent(history):
    """Absent reads are the initial value None of the register model."""
    return [o._replace(result=None) if o.kind == "get" and o.result == ABSENT else o for o in history]

class Proc:
    """A started process: ``p`` (the Popen), ``lines`` (its stdout, line by line), its log."""

    def __init__(self, args, workdir, key, env=None):
        self.key = key
        self.log_path = os.path.join(workdir, f"{key}.log")
        self.log = open(self.log_path, "a")
        self.p = subprocess.Popen(args, stdout=subprocess.PIPE, stderr=self.log, text=True,
                                  env={**os.environ, **(env or {})})
        self.lines = []
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        for line in self.p.stdout:
            self.lines.append(line.strip())

    @property
    def pid(self):
        return self.p.pid

    def running(self):
        return self.p.poll() is None

    def signal(self, sig):
        if self.running():
            self.p.send_signal(sig)

    def stop(self, timeout=10):
        """SIGTERM, then SIGKILL after ``timeout``; returns the exit status (``lines`` is complete)."""
        if self.running():
            self.p.terminate()
            try:
                self.p.wait(timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        return self._ended()

    def kill9(self):
        if self.running():
            self.p.kill()
        self.p.wait()
        return self._ended()

    def wait(self, timeout=10):
        """The exit status once it exits (raises subprocess.TimeoutExpired after ``timeout``)."""
        self.p.wait(timeout)
        return self._ended()

    def _ended(self):
        self._reader.join(5)
        self.log.close()
        return self.p.returncode

    def stderr(self):
        with open(self.log_path) as f:
            return f.read()


class Cluster:
    """Real processes of one test, in ``workdir``: nodes, one-shot commands, a root group."""

    def __init__(self, workdir, binary=None):
        self.workdir = workdir
        self.binary = binary or dagent_binary()
        self.procs = {}
        self.ports = {}

    # ---- addresses
    def port(self, key):
        """A free port reserved for ``key`` (the same one on every call; never one another key holds:
        a port is released until its process binds it, and the kernel may hand it out again)."""
        while key not in self.ports:
            p = free_port()
            if p not in self.ports.values():
                self.ports[key] = p
        return self.ports[key]

    def addr(self, key):
        """``tcp://127.0.0.1:PORT`` of ``key``'s port."""
        return f"tcp://127.0.0.1:{self.port(key)}"

    listen_addr = addr

    def path(self, name):
        """A path in this test's directory."""
        return os.path.join(self.workdir, name)

    # ---- processes
    def start(self, key, args, executable=None, env=None):
        """Starts ``dagent ARGS`` (or ``executable ARGS``; a list such as [sys.executable, script]) as ``key``."""
        exe = executable if isinstance(executable, list) else [executable or self.binary]
        proc = Proc(exe + list(args), self.workdir, key, env=env)
        self.procs[key] = proc
        return proc

    def start_node(self, name, *args, env=None):
        """``dagent run --name NAME ARGS`` as ``name``."""
        return self.start(name, ["run", "--name", name, *args], env=env)

    def start_python(self, key, script, *args, env=None):
        """``python SCRIPT ARGS`` with the dagent package of this checkout importable."""
        return self.start(key, [script, *args], executable=[sys.executable],
                          env={"DAGENT_PYTHON_PATH": PYTHON_DIR, "PYTHONPATH": PYTHON_DIR, **(env or {})})

    def run(self, *args, timeout=20, executable=None, env=None, input=None):
        """A one-shot ``dagent ARGS`` to completion: a CompletedProcess with text stdout/stderr."""
        exe = executable if isinstance(executable, list) else [executable or self.binary]
        return subprocess.run(exe + list(args), capture_output=True, text=True, timeout=timeout, input=input,
                              env={**os.environ, **(env or {})})

    def run_json(self, *args, timeout=20):
        """``dagent ARGS --json`` parsed, or None if it failed or printed no JSON."""
        r = self.run(*args, "--json", timeout=timeout)
        try:
            return json.loads(r.stdout)
        except ValueError:
            return None

    def stop(self, key, timeout=10):
        return self.procs.pop(key).stop(timeout)

    def kill9(self, key):
        return self.procs.pop(key).kill9()

    def stop_all(self):
        for proc in reversed(list(self.procs.values())):
            proc.signal(signal.SIGTERM)
        for proc in reversed(list(self.procs.values())):
            proc.stop()
        self.procs = {}

    # ---- waiting and logs
    def wait_for(self, what, cond, timeout=20.0):
        wait_for(what, cond, timeout, logs=self.logs)

    def logs(self):
        out = []
        for name in sorted(os.listdir(self.workdir)):
            if name.endswith(".log"):
                with open(self.path(name), errors="replace") as f:
                    out.append(f"--- {name}\n{f.read()[-3000:]}")
        return "\n".join(out)

    # ---- a root group
    def raft_group(self, n=3, prefix="r", listen=False):
        """A root group of ``n`` replicas (not started; ``group.start(i)``); ``listen``: see RaftGroup."""
        return RaftGroup(self, n, prefix, listen)


class RaftGroup:
    """``n`` root replicas of one DCF cluster file; replica ``i`` (1-based) runs as ``r{i}``.

    With ``listen=True`` each replica also listens on a port of its own (``{prefix}{i}-listen``)
    while the cluster file names another (``ports``), where a test puts something between the
    replicas (a proxy, say); ``addr(i)`` is then the replica's own port, which clients use."""

    def __init__(self, cluster, n, prefix="r", listen=False):
        self.cluster, self.prefix, self.n = cluster, prefix, n
        self.ports = [cluster.port(f"{prefix}{i + 1}") for i in range(n)]
        self.listen = [cluster.port(f"{prefix}{i + 1}-listen") for i in range(n)] if listen else None
        self.file = cluster.path(f"{prefix}-cluster.json")
        with open(self.file, "w") as f:
            json.dump([{"stream_id": 1, "node_id": i + 1, "ip": "127.0.0.1", "port": p,
                        "role": "LEADER" if i == 0 else "FOLLOWER"} for i, p in enumerate(self.ports)], f)

    @property
    def ids(self):
        return [i for i in range(1, len(self.ports) + 1) if f"{self.prefix}{i}" in self.cluster.procs]

    def addr(self, i):
        """Where clients reach replica i (its own port)."""
        return f"tcp://127.0.0.1:{(self.listen or self.ports)[i - 1]}"

    def data(self, i):
        return self.cluster.path(f"{self.prefix}{i}-data")

    def start(self, i, *args):
        listen = ("--listen", self.addr(i)) if self.listen else ()
        return self.cluster.start(f"{self.prefix}{i}", ["run", "--raft", self.file, "--node-id", str(i),
                                                         "--data", self.data(i), *listen, *args])

    def start_all(self):
        for i in range(1, len(self.ports) + 1):
            self.start(i)

    def kill9(self, i):
        return self.cluster.kill9(f"{self.prefix}{i}")

    def status(self, i, timeout=2):
        """``dagent state status`` of replica i, or None."""
        r = self.cluster.run("state", "status", "--json", "--via", self.addr(i), "--timeout", str(timeout), timeout=15)
        return json.loads(r.stdout) if r.returncode == 0 else None

    def leader_among(self, ids):
        """The leader as the replicas in ``ids`` report it, if one of them leads and none other does."""
        seen = {i for i in ids if (self.status(i) or {}).get("role") == "leader"}
        return seen.pop() if len(seen) == 1 else None

    def leader(self):
        """The leader's node id as some running replica reports it, or None."""
        for i in self.ids:
            s = self.status(i)
            if s and s.get("leader"):
                return s["leader"]
        return None

    def wait_for_leader(self, timeout=30):
        self.cluster.wait_for("a leader", lambda: self.leader() is not None, timeout)
        return self.leader()
