"""Test plugin: a handler that blocks until a file exists, so the plugin queue fills up."""
import json
import os
import time

import dagent

handled = []


@dagent.on(60)
def block(msg):
    path = msg.data.decode()
    deadline = time.time() + 60
    while not os.path.exists(path) and time.time() < deadline:
        time.sleep(0.02)
    handled.append(path)


@dagent.on(61)
def record(msg):
    handled.append(msg.data.decode())


@dagent.on(62)
def report(msg):
    return json.dumps(handled).encode()
