"""A standalone Python node used by test_standalone.py (a separate process).

    standalone_peer.py NAME VIA [style]     style: node (default) | init

Handles: 1 -> upper-cased payload; 2 -> raises; 3 -> sleeps 0.3s then echoes;
4 -> async handler that asks `echo1` and returns its answer + "!";
5 -> async handler that asks the node named in the payload (type 1, "from NAME")
and returns its answer; 9 -> exits.
Prints "ready" once registered, then "errors N" for every handler error.
"""

import os
import sys
import time

sys.path.insert(0, os.environ["DAGENT_PYTHON_PATH"])

import dagent  # noqa: E402

name, via = sys.argv[1], sys.argv[2]
style = sys.argv[3] if len(sys.argv) > 3 else "node"
stop = []


def upper(msg):
    return msg.data.upper()


def boom(msg):
    raise ValueError(f"boom from {name}")


def slow(msg):
    time.sleep(0.3)
    return msg.data


async def relay(msg):
    answer = await dagent.arequest("echo1", 1, msg.data, timeout=3)
    return answer + b"!"


async def ask_back(msg):
    return await dagent.arequest(msg.data.decode(), 1, f"from {name}".encode(), timeout=3)


def quit_(msg):
    stop.append(1)
    return b"bye"


handlers = {1: upper, 2: boom, 3: slow, 4: relay, 5: ask_back, 9: quit_}

if style == "init":
    dagent.init(name, via)
    for t, fn in handlers.items():
        dagent.push_cb(t, fn)
    print("ready", flush=True)
    seen = 0
    while not stop:
        dagent.update(100)
        errors = dagent._runtime.current().owner(0).errors
        if errors != seen:
            seen = errors
            print(f"errors {errors}", flush=True)
    dagent.update(50)   # let the reply to 9 go out
    dagent.destroy()
else:
    with dagent.Node(name=name, via=via) as node:
        for t, fn in handlers.items():
            node.on(t)(fn)
        print("ready", flush=True)
        seen = 0
        while not stop:
            node.update(100)
            if node.errors != seen:
                seen = node.errors
                print(f"errors {node.errors}", flush=True)
        node.update(50)
