#!/usr/bin/python3
"""Python-to-Python through dagent (standalone module) vs pyzmq, between two processes, one run.

    /usr/bin/python3 bench/python/standalone_vs_zmq.py [--rtt N] [--stream N] [--size B]
        [--via-root DAGENT_BIN | --via-msgq DAGENT_BIN]

Round trip: the client sends a request, the server's handler returns the payload,
N times in a row (blocking request; zmq: REQ/REP). Stream: the client sends N one-way
messages, then one request that the server answers once it has counted all N
(zmq: PAIR, then a "done" frame and an ack). dagent's `send` does not block, so the
client keeps at most WINDOW_BYTES unanswered (a blocking count request after each
window; at 64 B the window holds more than the whole stream): a link with more than
`slow_consumer_bytes` (64 MiB) unsent is cut off, and 5000 x 128 KiB sent blind was.
pyzmq's PAIR blocks at its own high-water mark (1000 messages). Without --via-root the client's
parent is the server node (one TCP link, like zmq's); with it, both join a
`dagent run` root (two hops); with --via-msgq, both are leaves on the message
queues of a `dagent run --msgq` agent and talk brother to brother (p2p), and
pyzmq uses ipc:// instead of tcp:// (the same-machine transport). Runs the installed `dagent` (pip install ./python, a
release build) and pyzmq (apt install python3-zmq; a venv made with
--system-site-packages sees it).
"""

import argparse
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time

WINDOW_BYTES = 16 << 20  # a quarter of the default slow_consumer_bytes


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_port_pair():
    """A free port whose next port is free too (pyzmq's REP and PAIR bind PORT and PORT+1: a taken
    PORT+1 made the server die at its bind and the run fail at "ready")."""
    for _ in range(50):
        port = free_port()
        try:
            with socket.socket() as s:
                s.bind(("127.0.0.1", port + 1))
            return port
        except OSError:
            continue
    raise SystemExit("no two adjacent free ports on 127.0.0.1")


# ---- servers (child processes) ------------------------------------------------------

def dagent_server(listen, via):
    import dagent
    node = dagent.Node(name="bench-srv", listen=listen or None, via=via or None, config=node_config())
    count = [0]

    @node.on(1)
    def echo(msg):
        return msg.data

    @node.on(2)
    def sink(msg):
        count[0] += 1

    @node.on(3)
    def done(msg):
        n, count[0] = count[0], 0
        return str(n).encode()

    @node.on(4)
    def window(msg):
        return str(count[0]).encode()

    @node.on(9)
    def quit_(msg):
        node.stop()
        return b"bye"

    print("ready", flush=True)
    node.run_forever()
    node.update(50)
    node.close()


def zmq_endpoints(where):
    """REQ/REP and PAIR endpoints: a port number (tcp) or a directory (ipc)."""
    if where.isdigit():
        port = int(where)
        return f"tcp://127.0.0.1:{port}", f"tcp://127.0.0.1:{port + 1}"
    return f"ipc://{where}/rep", f"ipc://{where}/pair"


def zmq_server(where):
    import zmq
    rep_addr, pair_addr = zmq_endpoints(where)
    ctx = zmq.Context()
    rep = ctx.socket(zmq.REP)
    rep.bind(rep_addr)
    pair = ctx.socket(zmq.PAIR)
    pair.bind(pair_addr)
    print("ready", flush=True)
    poller = zmq.Poller()
    poller.register(rep, zmq.POLLIN)
    poller.register(pair, zmq.POLLIN)
    count = 0
    while True:
        for sock, _ in poller.poll():
            if sock is rep:
                m = rep.recv()
                if m == b"quit":
                    rep.send(b"bye")
                    return
                rep.send(m)
            else:
                m = pair.recv()
                if m == b"done":
                    pair.send(str(count).encode())
                    count = 0
                else:
                    count += 1


def node_config():
    """The node file both dagent nodes load (`--node-config`; passed to the server by environment)."""
    return os.environ.get("DAGENT_BENCH_NODE_CONFIG") or None


# ---- clients -------------------------------------------------------------------------

def dagent_client(via, payload):
    """The client node `bench-cli`, once `bench-srv` answers it (the two join concurrently)."""
    import dagent
    node = dagent.Node(name="bench-cli", via=via, config=node_config())
    deadline = time.time() + 20
    while True:
        try:
            node.request("bench-srv", 1, payload, timeout=1)
            return node
        except dagent.DAgentError:
            if time.time() > deadline:
                raise


def run_dagent(args, via):
    payload = b"x" * args.size
    node = dagent_client(via, payload)
    for _ in range(min(1000, args.rtt)):
        node.request("bench-srv", 1, payload)
    t0 = time.perf_counter()
    for _ in range(args.rtt):
        node.request("bench-srv", 1, payload)
    rtt = (time.perf_counter() - t0) / args.rtt
    window = max(1, WINDOW_BYTES // max(1, args.size))
    t0 = time.perf_counter()
    for i in range(1, args.stream + 1):
        node.send("bench-srv", 2, payload)
        if i % window == 0 and i < args.stream:
            node.request("bench-srv", 4, b"", timeout=60)
    got = int(node.request("bench-srv", 3, b"", timeout=60))
    stream = time.perf_counter() - t0
    assert got == args.stream, f"server counted {got} of {args.stream}"
    node.request("bench-srv", 9, b"")
    node.close()
    return rtt, args.stream / stream


def run_zmq(args, where):
    import zmq
    rep_addr, pair_addr = zmq_endpoints(where)
    ctx = zmq.Context()
    req = ctx.socket(zmq.REQ)
    req.connect(rep_addr)
    pair = ctx.socket(zmq.PAIR)
    pair.connect(pair_addr)
    payload = b"x" * args.size
    for _ in range(min(1000, args.rtt)):
        req.send(payload)
        req.recv()
    t0 = time.perf_counter()
    for _ in range(args.rtt):
        req.send(payload)
        req.recv()
    rtt = (time.perf_counter() - t0) / args.rtt
    t0 = time.perf_counter()
    for _ in range(args.stream):
        pair.send(payload)
    pair.send(b"done")
    got = int(pair.recv())
    stream = time.perf_counter() - t0
    assert got == args.stream, f"server counted {got} of {args.stream}"
    req.send(b"quit")
    req.recv()
    ctx.destroy(linger=0)
    return rtt, args.stream / stream


def spawn(argv):
    p = subprocess.Popen([sys.executable, os.path.abspath(__file__)] + argv, stdout=subprocess.PIPE, text=True)
    assert p.stdout.readline().strip() == "ready"
    return p


def reap(p):
    """Wait for a server that was told to quit; kill one left running by a failed client.

    An orphaned server keeps the inherited stderr open, so `... 2>&1 | tail` never ended."""
    try:
        p.wait(10)
    except subprocess.TimeoutExpired:
        p.kill()
        p.wait()


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rtt", type=int, default=20000)
    ap.add_argument("--stream", type=int, default=200000)
    ap.add_argument("--size", type=int, default=64)
    ap.add_argument("--via-root", metavar="DAGENT_BIN", help="join both nodes through a `dagent run` root")
    ap.add_argument("--via-msgq", metavar="DAGENT_BIN",
                    help="both nodes are leaves on a `dagent run --msgq` agent's queues (brother p2p); pyzmq uses ipc://")
    ap.add_argument("--node-config", metavar="FILE",
                    help="a node YAML both dagent nodes load (e.g. `send_window_bytes: 0` to measure without the send window)")
    ap.add_argument("--serve", nargs="+", help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.node_config:
        os.environ["DAGENT_BENCH_NODE_CONFIG"] = os.path.abspath(args.node_config)
    if args.serve:
        if args.serve[0] == "dagent":
            dagent_server(args.serve[1], args.serve[2])
        else:
            zmq_server(args.serve[1])
        return

    results = {}
    root = None
    port = free_port()
    addr = f"tcp://127.0.0.1:{port}"
    tmp = tempfile.mkdtemp(prefix="dagent-pybench.")
    if args.via_msgq:
        path = os.path.join(tmp, "agent.q")
        root = subprocess.Popen([args.via_msgq, "run", "--name", "agent", "--msgq", path, "--log-level", "warning"])
        addr = f"msgq://{path}"
        deadline = time.time() + 15
        while subprocess.run([args.via_msgq, "tree", "--via", addr], capture_output=True).returncode != 0:
            if time.time() > deadline:
                raise SystemExit("the msgq agent did not come up")
            time.sleep(0.05)
        srv = spawn(["--serve", "dagent", "", addr])
        label = "dagent (msgq, brother p2p)"
    elif args.via_root:
        root = subprocess.Popen([args.via_root, "run", "--name", "root", "--listen", addr, "--log-level", "warning"])
        srv = spawn(["--serve", "dagent", "", addr])
        label = "dagent (via root, 2 hops)"
    else:
        srv = spawn(["--serve", "dagent", addr, ""])
        label = "dagent (direct link)"
    try:
        results[label] = run_dagent(args, addr)
    finally:
        reap(srv)
        if root:
            root.terminate()
            root.wait()
    where = tmp if args.via_msgq else str(free_port_pair())
    srv = spawn(["--serve", "zmq", where])
    try:
        results[f"pyzmq ({'ipc' if args.via_msgq else 'tcp'}, REQ/REP, PAIR)"] = run_zmq(args, where)
    finally:
        reap(srv)
    shutil.rmtree(tmp, ignore_errors=True)

    print(f"python {sys.version.split()[0]}, payload {args.size} B, {args.rtt} round trips, {args.stream} streamed")
    print(f"{'':32} {'round trip':>12} {'rtt/s':>10} {'stream msg/s':>14}")
    for k, (rtt, rate) in results.items():
        print(f"{k:32} {rtt * 1e6:9.1f} us {1 / rtt:10.0f} {rate:14.0f}")


if __name__ == "__main__":
    main()
