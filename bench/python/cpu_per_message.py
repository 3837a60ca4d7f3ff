#!/usr/bin/python3
"""CPU time and voluntary context switches per round trip and per streamed message, per process:
dagent standalone vs pyzmq, with the servers of standalone_vs_zmq.py.

    PYTHONPATH=python /usr/bin/python3 bench/python/cpu_per_message.py [RTTS [STREAMED [dagent|zmq ...]]]

The client runs here, its server in a child process; around each phase the CPU time (utime +
stime) and the voluntary context switches of every thread of both processes are read from
/proc. Unlike the round-trip time and the stream rate, these barely move with the machine's load:
they say what a round trip or a message costs, and how often each thread slept for it.
"""
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import standalone_vs_zmq as bench  # noqa: E402

TICK = os.sysconf("SC_CLK_TCK")


def threads(pid):
    """{thread: (cpu seconds, voluntary switches, name)} of process `pid`."""
    out = {}
    for t in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = open(f"/proc/{pid}/task/{t}/stat").read().rsplit(")", 1)[1].split()
            status = open(f"/proc/{pid}/task/{t}/status").read()
            name = open(f"/proc/{pid}/task/{t}/comm").read().strip()
        except FileNotFoundError:
            continue
        switches = int(status.split("voluntary_ctxt_switches:")[1].split()[0])
        out[f"{pid}/{t}"] = ((int(stat[11]) + int(stat[12])) / TICK, switches, name)
    return out


def cpu(sample, pid):
    return sum(v[0] for k, v in sample.items() if k.startswith(f"{pid}/"))


def switches(before, after, n):
    return " ".join(f"{v[2]}={(v[1] - before.get(k, (0, 0))[1]) / n:.2f}"
                    for k, v in after.items() if v[1] - before.get(k, (0, 0))[1] > 0)


def measure(name, n_rtt, n_stream, rtt_once, send_once, finish_stream, server):
    me = os.getpid()
    for _ in range(1000):
        rtt_once()
    s0, t0 = {**threads(me), **threads(server)}, time.perf_counter()
    for _ in range(n_rtt):
        rtt_once()
    s1, t1 = {**threads(me), **threads(server)}, time.perf_counter()
    for _ in range(n_stream):
        send_once()
    finish_stream()
    s2, t2 = {**threads(me), **threads(server)}, time.perf_counter()
    print(f"{name:7} round trip {1e6 * (t1 - t0) / n_rtt:7.1f} us, CPU per round trip: client "
          f"{1e6 * (cpu(s1, me) - cpu(s0, me)) / n_rtt:5.1f} us, server {1e6 * (cpu(s1, server) - cpu(s0, server)) / n_rtt:5.1f} us")
    print(f"{'':7} switches per round trip: {switches(s0, s1, n_rtt)}")
    if n_stream:
        print(f"{'':7} stream {n_stream / (t2 - t1):9.0f} msgs/s, CPU per message: client "
              f"{1e6 * (cpu(s2, me) - cpu(s1, me)) / n_stream:5.2f} us, server {1e6 * (cpu(s2, server) - cpu(s1, server)) / n_stream:5.2f} us",
              flush=True)


def run_dagent(n_rtt, n_stream):
    addr = f"tcp://127.0.0.1:{bench.free_port()}"
    server = bench.spawn(["--serve", "dagent", addr, ""])
    try:
        payload = b"x" * 64
        node = bench.dagent_client(addr, payload)
        counted = []
        measure("dagent", n_rtt, n_stream, lambda: node.request("bench-srv", 1, payload),
                lambda: node.send("bench-srv", 2, payload),
                lambda: counted.append(int(node.request("bench-srv", 3, b"", timeout=60))), server.pid)
        assert counted == [n_stream], f"server counted {counted} of {n_stream}"
        node.request("bench-srv", 9, b"")
        node.close()
    finally:
        bench.reap(server)


def run_zmq(n_rtt, n_stream):
    import zmq
    where = str(bench.free_port_pair())
    server = bench.spawn(["--serve", "zmq", where])
    try:
        rep_addr, pair_addr = bench.zmq_endpoints(where)
        ctx = zmq.Context()
        req = ctx.socket(zmq.REQ)
        req.connect(rep_addr)
        pair = ctx.socket(zmq.PAIR)
        pair.connect(pair_addr)
        payload = b"x" * 64
        counted = []

        def rtt():
            req.send(payload)
            req.recv()

        def finish():
            pair.send(b"done")
            counted.append(int(pair.recv()))
        measure("pyzmq", n_rtt, n_stream, rtt, lambda: pair.send(payload), finish, server.pid)
        assert counted == [n_stream], f"server counted {counted} of {n_stream}"
        req.send(b"quit")
        req.recv()
        ctx.destroy(linger=0)
    finally:
        bench.reap(server)


def main():
    n_rtt = int(sys.argv[1]) if len(sys.argv) > 1 else 10_000
    n_stream = int(sys.argv[2]) if len(sys.argv) > 2 else 200_000
    which = sys.argv[3:] or ["dagent", "zmq"]
    if "dagent" in which:
        run_dagent(n_rtt, n_stream)
    if "zmq" in which:
        run_zmq(n_rtt, n_stream)


if __name__ == "__main__":
    main()
