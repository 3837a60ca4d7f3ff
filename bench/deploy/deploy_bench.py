"""The deploy suite of scripts/bench: dagent's agent supervising N leaves versus
supervisord (Debian's `supervisor`) managing the same N leaves, in the same run.

Both sides get the same tree shape: one root replica and one agent serving a
message queue, started by `dagent up` with no processes; the N leaves are
`dagent run --name pK --parent msgq://Q --data DIR` (release build). What is
timed, from the agent's log (each registration is logged as it happens; a
poller reads the log every millisecond):

- up: from `dagent up` of the file with the N processes (or `supervisorctl
  start all`) until the agent logged the N registrations;
- back after kill -9: from the kill of one leaf (up for at least 1.5 s, so it
  counts as a stable run) until the agent logged its registration again.

Rounds alternate the two systems; the table shows medians and ratios.
"""
import json, os, re, shutil, signal, statistics, subprocess, sys, tempfile, time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
from benchlib import faster, free_port, log  # noqa: E402

REG = re.compile(r"child '([^']+)' registered")


class LogWatch:
    """Registrations appended to a log file after a point."""

    def __init__(self, path):
        self.path = path
        self.offset = os.path.getsize(path) if os.path.exists(path) else 0
        self.buf = ""

    def wait(self, names, timeout=60):
        """Returns the time (monotonic) at which the last of `names` registered."""
        left = set(names)
        deadline = time.monotonic() + timeout
        while left:
            if time.monotonic() > deadline:
                raise SystemExit(f"bench: timed out waiting for registrations of {sorted(left)} in {self.path}")
            try:
                with open(self.path, "rb") as f:
                    f.seek(self.offset)
                    chunk = f.read()
            except OSError:
                chunk = b""
            if chunk:
                self.offset += len(chunk)
                self.buf += chunk.decode(errors="replace")
                *lines, self.buf = self.buf.split("\n")
                for line in lines:
                    m = REG.search(line)
                    if m:
                        left.discard(m.group(1))
                if not left:
                    return time.monotonic()
            time.sleep(0.001)
        return time.monotonic()


class DagentTree:
    def __init__(self, binary, workdir, tag, n, with_processes):
        self.bin, self.dir, self.n = binary, os.path.join(workdir, tag), n
        os.makedirs(self.dir, exist_ok=True)
        self.q = os.path.join(self.dir, "a.q")
        self.root, self.agent_port = free_port(), free_port()
        self.path = os.path.join(self.dir, "tree.yaml")
        self.tag = tag
        self.write(with_processes=False)
        self.cli("up")
        self.agent_log = os.path.join(self.dir, "data", "supervise", "logs", "a.log")

    def leaf(self, k):
        return f"{self.bin} run --name p{k} --parent msgq://{self.q} --data {self.dir}/leafdata/p{k}"

    def write(self, with_processes):
        procs = {f"p{k}": {"run": self.leaf(k)} for k in range(self.n)} if with_processes else {}
        with open(self.path, "w") as f:
            f.write(f"name: bench{self.tag}\ndata: data\nroot:\n  - {{id: 1, listen: tcp://127.0.0.1:{self.root}}}\n"
                    f"agents:\n  a:\n    msgq: {self.q}\n    listen: tcp://127.0.0.1:{self.agent_port}\n"
                    f"    processes: {json.dumps(procs)}\n")

    def cli(self, *args):
        r = subprocess.run([self.bin, *args, "-f", self.path], capture_output=True, text=True, timeout=120)
        if r.returncode != 0:
            raise SystemExit(f"bench: dagent {args[0]} failed: {r.stderr[-800:]}")
        return r

    def pid(self, name):
        rows = json.loads(subprocess.run([self.bin, "status", "--json", "-f", self.path], capture_output=True, text=True).stdout)
        return next(r["pid"] for r in rows if r.get("name") == name)

    def close(self):
        subprocess.run([self.bin, "down", "-f", self.path], capture_output=True, timeout=120)


class Supervisord:
    def __init__(self, binary, tree, n):
        self.tree, self.n = tree, n
        d = tree.dir
        self.sock = os.path.join(d, "supervisor.sock")
        self.conf = os.path.join(d, "supervisord.conf")
        progs = "".join(
            f"\n[program:p{k}]\ncommand={tree.leaf(k)}\nautostart=false\nautorestart=true\nstartsecs=1\n"
            f"stdout_logfile={d}/p{k}.log\nredirect_stderr=true\nstopsignal=TERM\n" for k in range(n))
        with open(self.conf, "w") as f:
            f.write(f"[unix_http_server]\nfile={self.sock}\n\n[supervisord]\nnodaemon=true\nlogfile={d}/supervisord.log\n"
                    f"pidfile={d}/supervisord.pid\nchildlogdir={d}\n\n[rpcinterface:supervisor]\n"
                    f"supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface\n\n"
                    f"[supervisorctl]\nserverurl=unix://{self.sock}\n{progs}")
        self.proc = subprocess.Popen(["supervisord", "-c", self.conf], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.time() + 30
        while subprocess.run(["supervisorctl", "-c", self.conf, "status"], capture_output=True).returncode not in (0, 3):
            if time.time() > deadline:
                raise SystemExit("bench: supervisord did not come up")
            time.sleep(0.05)

    def ctl(self, *args):
        return subprocess.run(["supervisorctl", "-c", self.conf, *args], capture_output=True, text=True, timeout=120)

    def pid(self, name):
        return int(self.ctl("pid", name).stdout.strip())

    def close(self):
        self.ctl("stop", "all")
        self.proc.send_signal(signal.SIGTERM)
        self.proc.wait(timeout=30)


def run(binary, rounds, n=20, kills=5):
    if not shutil.which("supervisord"):
        raise SystemExit("bench: supervisord not found (scripts/setup --bench installs Debian's supervisor)")
    workdir = tempfile.mkdtemp(prefix="dagent-bench-deploy.")
    log(f"deploy: {n} leaves per system, {rounds} rounds, {kills} kills per round; work in {workdir}")
    ours = DagentTree(binary, workdir, "d", n, with_processes=False)
    theirs_tree = DagentTree(binary, workdir, "s", n, with_processes=False)
    theirs = Supervisord(binary, theirs_tree, n)
    res = {"dagent_up": [], "dagent_up_cmd": [], "supervisord_up": [], "supervisord_up_cmd": [], "dagent_back": [], "supervisord_back": []}
    names = [f"p{k}" for k in range(n)]
    try:
        for rnd in range(1, rounds + 1):
            # dagent
            log(f"deploy round {rnd}/{rounds}: dagent up of {n} processes ...")
            ours.write(with_processes=True)
            w = LogWatch(ours.agent_log)
            t0 = time.monotonic()
            ours.cli("up")
            t_cmd = time.monotonic()
            res["dagent_up"].append(w.wait(names) - t0)
            res["dagent_up_cmd"].append(t_cmd - t0)
            time.sleep(1.6)
            for k in range(kills):
                name = names[(rnd * kills + k) % n]
                pid = ours.pid(name)
                w = LogWatch(ours.agent_log)
                t0 = time.monotonic()
                os.kill(pid, signal.SIGKILL)
                res["dagent_back"].append(w.wait([name]) - t0)
                time.sleep(1.6)
            ours.write(with_processes=False)
            ours.cli("up")
            # supervisord
            log(f"deploy round {rnd}/{rounds}: supervisorctl start all ({n} programs) ...")
            w = LogWatch(theirs_tree.agent_log)
            t0 = time.monotonic()
            r = theirs.ctl("start", "all")
            t_cmd = time.monotonic()
            res["supervisord_up"].append(w.wait(names) - t0)
            res["supervisord_up_cmd"].append(t_cmd - t0)
            if r.returncode != 0:
                raise SystemExit(f"bench: supervisorctl start all: {r.stdout}{r.stderr}")
            time.sleep(1.6)
            for k in range(kills):
                name = names[(rnd * kills + k) % n]
                pid = theirs.pid(name)
                w = LogWatch(theirs_tree.agent_log)
                t0 = time.monotonic()
                os.kill(pid, signal.SIGKILL)
                res["supervisord_back"].append(w.wait([name]) - t0)
                time.sleep(1.6)
            theirs.ctl("stop", "all")
    finally:
        theirs.close()
        theirs_tree.close()
        ours.close()
        shutil.rmtree(workdir, ignore_errors=True)
    return res


def report(res, rounds, n, kills):
    med = {k: statistics.median(v) for k, v in res.items()}
    print(f"\nDeploy: {n} leaves under one agent, medians of {rounds} rounds ({kills} kills per round)\n")
    print("| metric | dagent | supervisord | dagent vs supervisord |")
    print("|---|---|---|---|")
    print(f"| up: start until all {n} registered (s) | {med['dagent_up']:.3f} | {med['supervisord_up']:.3f} | {faster(med['supervisord_up'] / med['dagent_up'])} |")
    print(f"| up: the command's own time (s) | {med['dagent_up_cmd']:.3f} | {med['supervisord_up_cmd']:.3f} | (`dagent up` waits for registration; `supervisorctl start` for startsecs=1) |")
    print(f"| back after kill -9, until registered (ms) | {med['dagent_back'] * 1000:.1f} | {med['supervisord_back'] * 1000:.1f} | {faster(med['supervisord_back'] / med['dagent_back'])} |")
    print(f"| back after kill -9, worst of {len(res['dagent_back'])} (ms) | {max(res['dagent_back']) * 1000:.1f} | {max(res['supervisord_back']) * 1000:.1f} | |")
    up_ok = med["dagent_up"] <= med["supervisord_up"]
    back_ok = med["dagent_back"] <= 0.5
    print(f"\ntarget: up no slower than supervisord: {med['dagent_up']:.3f} s vs {med['supervisord_up']:.3f} s -> {'met' if up_ok else 'NOT met'}")
    print(f"target: back within 0.5 s of a kill at the first restart: median {med['dagent_back'] * 1000:.0f} ms -> {'met' if back_ok else 'NOT met'}")
    return med


if __name__ == "__main__":
    import argparse
    ap = argparse.ArgumentParser()
    ap.add_argument("--bin", required=True)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--processes", type=int, default=20)
    ap.add_argument("--kills", type=int, default=5)
    a = ap.parse_args()
    report(run(a.bin, a.rounds, a.processes, a.kills), a.rounds, a.processes, a.kills)
