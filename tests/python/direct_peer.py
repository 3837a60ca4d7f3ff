"""A standalone Python node for test_standalone_direct.py (a separate process).

    direct_peer.py NAME LISTEN

Type 1: echo. Type 2 (one-way) and 3 (request, echoed): payload b"T:SEQ:" + filler;
each T's SEQs must arrive 0, 1, 2, ... Type 4: answers "COUNT PROBLEMS FIRST".
Type 9: exits. Prints "ready" once listening.
"""

import os
import sys

sys.path.insert(0, os.environ["DAGENT_PYTHON_PATH"])

import dagent  # noqa: E402

name, listen = sys.argv[1], sys.argv[2]
nxt, problems, count = {}, [], [0]


def check(data):
    thread, seq, rest = data.split(b":", 2)
    seq = int(seq)
    want = nxt.get(thread, 0)
    if seq != want:
        problems.append(f"{thread.decode()}: {seq} after {want} expected")
    nxt[thread] = seq + 1
    if rest != filler(seq, len(rest)):
        problems.append(f"{thread.decode()}: {seq} corrupt")
    count[0] += 1


def filler(seq, n):
    unit = bytes((seq * 7 + i) % 251 for i in range(251))
    return (unit * (n // 251 + 1))[:n]


with dagent.Node(name=name, listen=listen, ready_timeout=None) as node:
    stop = []

    @node.on(1)
    def echo(msg):
        return msg.data

    @node.on(2)
    def sink(msg):
        check(msg.data)

    @node.on(3)
    def checked_echo(msg):
        check(msg.data)
        return msg.data

    @node.on(4)
    def report(msg):
        return f"{count[0]} {len(problems)} {'; '.join(problems[:3])}".encode()

    @node.on(9)
    def quit_(msg):
        stop.append(1)
        return b"bye"

    print("ready", flush=True)
    while not stop:
        node.update(100)
    node.update(50)
