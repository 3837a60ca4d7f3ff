"""`scripts/bench --suite bigstate`: the root group with a large state (issue 13, default 200 MiB).

1. Three replicas (release build, fsync'd WAL, a snapshot every `--bigstate-snapshot-entries`
   applied entries); replica 3 is stopped before the load.
2. `dagent-bench state` writes `--bigstate-mib` MiB of 256 KiB values (8 clients) at the leader.
3. `dagent state backup` from a follower: chunked, with a checksum (time, MiB/s).
4. `dagent state restore` of that file into a new one-member group, which is started and read.
5. Replica 3 is started again and catches up by chunked InstallSnapshot (time until its
   revision reaches the leader's; its log must say it received a snapshot).

There is no peer for this suite: the figures are absolute (MiB/s on this machine), recorded in
docs/performance.md. `scripts/test` runs the same steps at 200 MiB (tests/python/test_state_200mib.py) and
at a few MiB (tests/python/test_state_ops.py).
"""
import json, os, signal, subprocess, sys, time


def log(msg):
    print(f"bench: {msg}", file=sys.stderr, flush=True)


def _status(binary, port, timeout=2):
    r = subprocess.run([binary, "state", "status", "--json", "--via", f"tcp://127.0.0.1:{port}", "--timeout", str(timeout)],
                       capture_output=True, text=True)
    try:
        return json.loads(r.stdout)
    except ValueError:
        return None


def _get(binary, port, key):
    """The record of `key` (a linearizable read through the replica at `port`), None if absent or refused."""
    r = subprocess.run([binary, "state", "get", key, "--json", "--via", f"tcp://127.0.0.1:{port}", "--timeout", "30"],
                       capture_output=True, text=True)
    try:
        got = json.loads(r.stdout)
    except ValueError:
        return None
    return got.get("record") if got.get("ok") else None


def _wait(what, cond, timeout):
    deadline = time.time() + timeout
    while time.time() < deadline:
        v = cond()
        if v:
            return v
        time.sleep(0.2)
    raise SystemExit(f"bench: timed out after {timeout}s waiting for {what}")


def _rss_mib(pid):
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) / 1024
    except OSError:
        pass
    return 0.0


def bench_bigstate(binary, logdir, args, free_port):
    mib, value_bytes, clients = args.bigstate_mib, 256 * 1024, 8
    total_puts = max(clients * 2, mib * 1024 * 1024 // value_bytes)
    warm = clients * 50                       # dagent-bench's warm-up puts (50 per client) count towards the state
    count = max(clients, total_puts - warm)
    ports = [free_port() for _ in range(3)]
    cluster = os.path.join(logdir, "big-cluster.json")
    with open(cluster, "w") as f:
        json.dump([{"stream_id": 1, "node_id": i + 1, "ip": "127.0.0.1", "port": p, "role": "LEADER" if i == 0 else "FOLLOWER"}
                   for i, p in enumerate(ports)], f)
    procs = {}

    def start(i):
        out = open(os.path.join(logdir, f"big-replica{i}.log"), "a")
        procs[i] = subprocess.Popen([binary, "run", "--raft", cluster, "--node-id", str(i), "--data",
                                     os.path.join(logdir, f"big-replica{i}"), "--snapshot-entries",
                                     str(args.bigstate_snapshot_entries)], stdout=out, stderr=out)

    res = {"mib": mib, "value_bytes": value_bytes, "puts": warm + count}
    try:
        for i in (1, 2, 3):
            start(i)
        leader = _wait("a leader", lambda: next((i for i in (1, 2, 3) if (_status(binary, ports[i - 1]) or {}).get("role") == "leader"), None), 60)
        down = 3 if leader != 3 else 2
        follower = next(i for i in (1, 2, 3) if i not in (leader, down))
        procs[down].send_signal(signal.SIGTERM)
        procs[down].wait(timeout=30)
        log(f"bigstate: writing {mib} MiB ({warm + count} puts of {value_bytes} B) at replica {leader}, replica {down} down ...")
        t0 = time.monotonic()
        r = subprocess.run([binary + "-bench", "state", "--via", f"tcp://127.0.0.1:{ports[leader - 1]}", "--op", "put",
                            "--clients", str(clients), "--count", str(count), "--size", str(value_bytes), "--json"],
                           capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"bench: the bigstate load failed: {r.stderr[-800:]}")
        load_s = time.monotonic() - t0
        line = json.loads(next(x for x in r.stdout.splitlines() if x.startswith("{")))
        res.update(load_s=load_s, load_mib_per_s=mib / load_s, put_p50_ms=line["p50_ms"], put_p99_ms=line["p99_ms"])
        st = _status(binary, ports[leader - 1])
        revision = st["revision"]
        # dagent-bench's keys: bench/warm/C/50 ... bench/warm/C/1 during its warm-up, then bench/C/I
        # (client C's I-th measured put; every client makes at least one).
        probe_keys = ["bench/warm/0/50", "bench/warm/0/1", "bench/0/0", f"bench/{clients - 1}/0"]
        original = {k: _get(binary, ports[leader - 1], k) for k in probe_keys}   # no write follows the load
        if any(record is None or len(record["value"]) != value_bytes for record in original.values()):
            raise SystemExit(f"bench: the leader lacks one of {probe_keys} after the load (see {logdir})")

        backup = os.path.join(logdir, "big-backup.bin")
        log(f"bigstate: backup from replica {follower} ...")
        t0 = time.monotonic()
        r = subprocess.run([binary, "state", "backup", "--via", f"tcp://127.0.0.1:{ports[follower - 1]}", "--out", backup,
                            "--json", "--timeout", "600"], capture_output=True, text=True)
        if r.returncode != 0:
            raise SystemExit(f"bench: backup failed: {r.stderr[-800:]}")
        backup_s = time.monotonic() - t0
        summary = json.loads(r.stdout)
        res.update(backup_s=backup_s, backup_bytes=summary["bytes"], backup_mib_per_s=summary["bytes"] / 2**20 / backup_s,
                   backup_checksum=summary["checksum"])

        log(f"bigstate: replica {down} catches up by snapshot ...")
        t0 = time.monotonic()
        start(down)
        _wait(f"replica {down} to reach revision {revision}",
              lambda: (_status(binary, ports[down - 1]) or {}).get("revision", 0) >= revision, 900)
        catchup_s = time.monotonic() - t0
        with open(os.path.join(logdir, f"big-replica{down}.log")) as f:
            text = f.read()
        if "received a snapshot of" not in text:
            raise SystemExit(f"bench: replica {down} caught up without a snapshot (see {logdir})")
        # What the caught-up replica serves is the leader's: linearizable reads of keys from the
        # start and the end of the warm-up and from the measured puts, through each of them.
        for key in probe_keys:
            if _get(binary, ports[down - 1], key) != original[key]:
                raise SystemExit(f"bench: replica {down} serves {key!r} unlike the leader after catching up (see {logdir})")
        res.update(catchup_s=catchup_s, catchup_mib_per_s=mib / catchup_s,
                   peak_rss_mib={i: round(_rss_mib(p.pid)) for i, p in procs.items()})

        log("bigstate: restore into a new group ...")
        port = free_port()
        new = os.path.join(logdir, "big-restored.json")
        with open(new, "w") as f:
            json.dump([{"stream_id": 1, "node_id": 1, "ip": "127.0.0.1", "port": port, "role": "LEADER"}], f)
        data = os.path.join(logdir, "big-restored")
        t0 = time.monotonic()
        subprocess.run([binary, "state", "restore", "--from", backup, "--raft", new, "--node-id", "1", "--data", data],
                       check=True, capture_output=True)
        out = open(os.path.join(logdir, "big-restored.log"), "w")
        procs["restored"] = subprocess.Popen([binary, "run", "--raft", new, "--node-id", "1", "--data", data], stdout=out, stderr=out)
        _wait("the restored group", lambda: (_status(binary, port) or {}).get("leader") == 1, 600)
        restore_s = time.monotonic() - t0
        for key in probe_keys:
            if _get(binary, port, key) != original[key]:
                raise SystemExit(f"bench: the restored group does not hold {key!r} as the original does (see {logdir})")
        restored = (_status(binary, port) or {}).get("revision")
        if restored != revision:
            raise SystemExit(f"bench: the restored group is at revision {restored}, the original at {revision}")
        res.update(restore_s=restore_s, restore_mib_per_s=mib / restore_s)
    finally:
        for p in procs.values():
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
        for p in procs.values():
            try:
                p.wait(timeout=30)
            except subprocess.TimeoutExpired:
                p.kill()
    return res


def print_bigstate(res):
    print(f"\nRoot group with {res['mib']} MiB of state ({res['puts']} values of {res['value_bytes'] // 1024} KiB), 3 replicas\n")
    print("| step | seconds | MiB/s | notes |")
    print("|---|---|---|---|")
    print(f"| load (8 clients, puts) | {res['load_s']:.1f} | {res['load_mib_per_s']:.1f} | put p50 {res['put_p50_ms']:.1f} ms, p99 {res['put_p99_ms']:.1f} ms |")
    print(f"| backup (chunked, from a follower) | {res['backup_s']:.1f} | {res['backup_mib_per_s']:.1f} | {res['backup_bytes']:,} bytes, {res['backup_checksum']} |")
    print(f"| a follower that was down catches up (chunked InstallSnapshot) | {res['catchup_s']:.1f} | {res['catchup_mib_per_s']:.1f} | |")
    print(f"| restore into a new group, start, first read | {res['restore_s']:.1f} | {res['restore_mib_per_s']:.1f} | |")
    print(f"\npeak RSS per replica (MiB): {res['peak_rss_mib']}")
