"""Test plugin: exercises dagent.state from inside an agent."""
import json

import dagent

seen = []


@dagent.on(41)
def put_then_get(msg):
    key, value = msg.data.decode().split("=", 1)
    rev = dagent.state.put(key, value)
    return json.dumps({"rev": rev, "got": dagent.state.get(key)}).encode()


@dagent.on(42)
def cas_and_range(msg):
    ok1 = dagent.state.cas("cfg/color", "red", expect="blue")
    ok2 = dagent.state.cas("cfg/color", "green", expect="blue")
    return json.dumps({"first": ok1, "second": ok2, "all": dagent.state.range("cfg/")}).encode()


@dagent.on(43)
def start_watch(msg):
    dagent.state.watch("w/", lambda ev: seen.append((ev["key"], ev["value"], ev["revision"])))
    return b"watching"


@dagent.on(44)
def watched(msg):
    return json.dumps(seen).encode()


@dagent.on(45)
async def async_get(msg):
    return json.dumps(await dagent.state.aget(msg.data.decode())).encode()
