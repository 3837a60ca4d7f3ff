"""dagent.state: the root group's replicated key-value store (Raft), from any node.

Requests go to the reserved name ``@state``: the tree routes them up to the
root group, where the leader serves them (writes through the Raft log, reads
with ReadIndex, so both are linearizable). Keys and values are text (bytes are
decoded as UTF-8)::

    import dagent

    dagent.state.put("config/color", "blue")
    dagent.state.get("config/color")                 # "blue" (None if absent)
    dagent.state.cas("config/color", "red", expect="blue")   # True if it held "blue"
    dagent.state.range("config/")                    # [("config/color", "red")]
    with dagent.state.lock("deploy", ttl=10):        # held while the block runs
        ...
    dagent.state.watch("config/", lambda ev: dagent.log.info("%s", ev))

Every call also has an ``a``-prefixed coroutine (``await dagent.state.aget(...)``).
Failures raise ``dagent.state.StateError`` with the group's reason.
"""

import itertools
import json

from . import _runtime

SERVICE = "@state"
REQUEST_TYPE = 0xFFFF0100
WATCH_EVENT_TYPE = 0xFFFF0101

__all__ = ["get", "put", "delete", "delete_prefix", "cas", "range", "lease", "lock", "watch", "unwatch",
           "status", "StateError", "Lease", "aget", "aput", "adelete", "acas", "arange", "awatch"]


class StateError(Exception):
    """The group refused the operation (the message says why)."""


def _text(v):
    return v.decode() if isinstance(v, (bytes, bytearray)) else str(v)


def _call(request, timeout):
    rt = _runtime.current()
    reply = json.loads(rt.system_request(SERVICE, REQUEST_TYPE, json.dumps(request).encode(), timeout))
    return reply


async def _acall(request, timeout):
    rt = _runtime.current()
    return json.loads(await rt.system_arequest(SERVICE, REQUEST_TYPE, json.dumps(request).encode(), timeout))


def _ok(reply):
    if not reply.get("ok"):
        raise StateError(reply.get("error", "refused"))
    return reply


# ---- requests (built once, sent sync or async) -----------------------------------

def _get(key):
    return {"op": "get", "key": _text(key)}


def _put(key, value, lease):
    r = {"op": "put", "key": _text(key), "value": _text(value)}
    if lease:
        r["lease"] = int(getattr(lease, "id", lease))
    return r


def _cas(key, value, expect, expect_mod, expect_absent):
    r = {"op": "cas", "key": _text(key), "value": _text(value)}
    if expect is not None:
        r["expect_value"] = _text(expect)
    elif expect_mod is not None:
        r["expect_mod"] = int(expect_mod)
    elif expect_absent:
        r["expect_absent"] = True
    else:
        raise ValueError("cas needs expect=, expect_mod= or expect_absent=True")
    return r


def _get_result(reply):
    if reply.get("ok"):
        return reply["record"]["value"]
    if "not found" in reply.get("error", ""):
        return None
    raise StateError(reply.get("error"))


def _cas_result(reply):
    if reply.get("ok"):
        return True
    if "compare failed" in reply.get("error", "") or "not found" in reply.get("error", ""):
        return False
    raise StateError(reply.get("error"))


# ---- the API ------------------------------------------------------------------

def get(key, timeout=5.0):
    """The value at ``key`` (linearizable), or None."""
    return _get_result(_call(_get(key), timeout))


def put(key, value, lease=None, timeout=5.0):
    """Writes ``value``; returns the new revision. ``lease`` attaches the key to a lease."""
    return _ok(_call(_put(key, value, lease), timeout))["revision"]


def delete(key, timeout=5.0):
    """Deletes ``key``; returns True if it existed."""
    reply = _call({"op": "del", "key": _text(key)}, timeout)
    return bool(reply.get("ok"))


def delete_prefix(prefix, timeout=5.0):
    """Deletes every key under ``prefix``; returns how many."""
    return len(_ok(_call({"op": "delprefix", "prefix": _text(prefix)}, timeout)).get("deleted", []))


def cas(key, value, expect=None, expect_mod=None, expect_absent=False, timeout=5.0):
    """Compare-and-set: writes ``value`` only if the key holds ``expect`` (or has mod
    revision ``expect_mod``, or is absent). Returns True if it wrote."""
    return _cas_result(_call(_cas(key, value, expect, expect_mod, expect_absent), timeout))


def range(prefix, limit=0, timeout=5.0):
    """[(key, value), ...] under ``prefix``, in key order (linearizable)."""
    reply = _ok(_call({"op": "range", "prefix": _text(prefix), "limit": int(limit)}, timeout))
    return [(r["key"], r["value"]) for r in reply["records"]]


def status(timeout=5.0):
    """Leader, term, commit index and members, as the serving replica sees them."""
    return _ok(_call({"op": "status"}, timeout))


class Lease:
    """A lease: keys attached to it vanish when it expires or is revoked."""

    def __init__(self, lease_id, ttl):
        self.id, self.ttl = lease_id, ttl

    def keepalive(self, timeout=5.0):
        _ok(_call({"op": "lease_keepalive", "id": self.id}, timeout))

    def revoke(self, timeout=5.0):
        _ok(_call({"op": "lease_revoke", "id": self.id}, timeout))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.revoke()


def lease(ttl, timeout=5.0):
    """Grants a lease of ``ttl`` seconds (a context manager that revokes it)."""
    reply = _ok(_call({"op": "lease_grant", "ttl_ms": int(ttl * 1000)}, timeout))
    return Lease(reply["lease"]["id"], ttl)


class _Lock:
    def __init__(self, name, ttl, owner):
        self.name, self.ttl, self.owner, self.lease = name, ttl, owner, None

    def __enter__(self):
        self.lease = lease(self.ttl)
        reply = _call({"op": "lock", "name": self.name, "owner": self.owner, "lease": self.lease.id}, 5.0)
        if not reply.get("ok"):
            self.lease.revoke()
            raise StateError(reply.get("error"))
        return self

    def __exit__(self, *exc):
        self.lease.revoke()     # releases the lock with the lease


def lock(name, ttl=10.0, owner=None):
    """A lock held by this node while the ``with`` block runs (it vanishes if the node
    dies, after ``ttl`` seconds). Raises StateError if another owner holds it."""
    return _Lock(name, ttl, owner or _runtime.current().backend.name())


_watch_ids = itertools.count(1)
_watchers = {}


def _on_watch_event(msg):
    ev = json.loads(msg.data)
    cb = _watchers.get(ev.get("watch"))
    if cb:
        for event in ev.get("events", []):
            cb(event)


def watch(prefix, callback, from_revision=0, timeout=5.0):
    """Calls ``callback(event)`` for every change under ``prefix``, exactly once and
    in revision order, from ``from_revision`` (0: from now). Returns a watch id."""
    rt = _runtime.current()
    if not _watchers:
        rt.push_system_cb(WATCH_EVENT_TYPE, _on_watch_event)
    wid = next(_watch_ids)
    _watchers[wid] = callback
    _ok(_call({"op": "watch", "prefix": _text(prefix), "from": int(from_revision), "id": wid}, timeout))
    return wid


def unwatch(wid, timeout=5.0):
    _watchers.pop(wid, None)
    _ok(_call({"op": "unwatch", "id": wid}, timeout))


async def awatch(prefix, from_revision=0):
    """``async for event in dagent.state.awatch("config/"):``"""
    import asyncio
    queue = asyncio.Queue()
    wid = watch(prefix, queue.put_nowait, from_revision)
    try:
        while True:
            yield await queue.get()
    finally:
        _watchers.pop(wid, None)


async def aget(key, timeout=5.0):
    return _get_result(await _acall(_get(key), timeout))


async def aput(key, value, lease=None, timeout=5.0):
    return _ok(await _acall(_put(key, value, lease), timeout))["revision"]


async def adelete(key, timeout=5.0):
    return bool((await _acall({"op": "del", "key": _text(key)}, timeout)).get("ok"))


async def acas(key, value, expect=None, expect_mod=None, expect_absent=False, timeout=5.0):
    return _cas_result(await _acall(_cas(key, value, expect, expect_mod, expect_absent), timeout))


async def arange(prefix, limit=0, timeout=5.0):
    reply = _ok(await _acall({"op": "range", "prefix": _text(prefix), "limit": int(limit)}, timeout))
    return [(r["key"], r["value"]) for r in reply["records"]]
