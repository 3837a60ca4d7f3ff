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
    r = (dagent.state.txn().when("config/color", value="red")
         .then(dagent.state.put_op("config/size", "L")).otherwise(dagent.state.get_op("config/color")).commit())
    with dagent.state.lock("deploy", ttl=10) as lk:  # renewed in the background; lk.token fences writes
        ...
    dagent.state.watch("config/", lambda ev: dagent.log.info("%s", ev))   # resumes after failovers

Every call also has an ``a``-prefixed coroutine (``await dagent.state.aget(...)``).
Failures raise ``dagent.state.StateError`` (``.code`` names the kind) with the group's reason.
See docs/state.md.
"""

import itertools
import json
import threading
import time
import uuid

from . import _runtime

SERVICE = "@state"
REQUEST_TYPE = 0xFFFF0100
WATCH_EVENT_TYPE = 0xFFFF0101

__all__ = ["get", "put", "delete", "delete_prefix", "cas", "range", "txn", "put_op", "delete_op", "delete_prefix_op",
           "get_op", "range_op", "lease", "lock", "watch", "unwatch", "status", "StateError", "Compacted", "LockHeld",
           "LockLost", "Lease", "Lock", "Txn", "TxnResult", "aget", "aput", "adelete", "acas", "arange", "awatch"]


class StateError(Exception):
    """The group refused the operation (the message says why; ``code`` names the kind,
    e.g. ``compare_failed``, ``lock_held``, ``lease_not_found``)."""

    def __init__(self, message, code=None, reply=None):
        super().__init__(message)
        self.code, self.reply = code, reply or {}


class Compacted(StateError):
    """A watch asked for revisions the group no longer keeps. ``oldest`` is the oldest
    revision still available: re-read the keys, then watch from there or later."""

    def __init__(self, compacted, oldest):
        super().__init__(f"watch fell behind compaction at revision {compacted}; the oldest revision still "
                         f"available is {oldest}: re-read, then watch from a newer revision", "compacted")
        self.compacted, self.oldest = compacted, oldest


class LockHeld(StateError):
    """Another owner holds the lock (``holder``, ``token``)."""


class LockLost(StateError):
    """A lock held by a ``with state.lock(...)`` block was lost (its lease expired: the
    group was unreachable for longer than the ttl). The block's work is no longer fenced."""


def _text(v):
    return v.decode() if isinstance(v, (bytes, bytearray)) else str(v)


# Locks held on this thread: a lost one raises at the next state call of its holder.
_held = threading.local()


def _check_locks():
    for lk in getattr(_held, "locks", ()):
        if lk.lost.is_set() and not lk._reported:
            lk._reported = True
            raise LockLost(f"lock {lk.name!r} (owner {lk.owner}, token {lk.token}) was lost: {lk.lost_reason}", "lock_lost")


def _encode(request, stream):
    if stream is not None:
        request["stream"] = int(stream)
    return json.dumps(request).encode()


def _call(request, timeout, stream=None, check=True):
    if check:
        _check_locks()
    rt = _runtime.current()
    deadline = time.monotonic() + timeout
    while True:
        reply = json.loads(rt.system_request(SERVICE, REQUEST_TYPE, _encode(request, stream), max(0.1, deadline - time.monotonic())))
        # "retry": the group has no leader yet (an election is running).
        if not reply.get("retry") or time.monotonic() + 0.05 >= deadline:
            return reply
        time.sleep(0.05)


async def _acall(request, timeout, stream=None):
    import asyncio
    _check_locks()
    rt = _runtime.current()
    deadline = time.monotonic() + timeout
    while True:
        reply = json.loads(await rt.system_arequest(SERVICE, REQUEST_TYPE, _encode(request, stream),
                                                    max(0.1, deadline - time.monotonic())))
        if not reply.get("retry") or time.monotonic() + 0.05 >= deadline:
            return reply
        await asyncio.sleep(0.05)


def _ok(reply):
    if not reply.get("ok"):
        raise StateError(reply.get("error", "refused"), reply.get("code"), reply)
    return reply


# ---- requests (built once, sent sync or async) -----------------------------------

def _get(key):
    return {"op": "get", "key": _text(key)}


def _lease_id(lease):
    return int(getattr(lease, "id", lease))


def _put(key, value, lease):
    r = {"op": "put", "key": _text(key), "value": _text(value)}
    if lease:
        r["lease"] = _lease_id(lease)
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
    if reply.get("code") == "key_not_found":
        return None
    raise StateError(reply.get("error"), reply.get("code"), reply)


def _cas_result(reply):
    if reply.get("ok"):
        return True
    if reply.get("code") in ("compare_failed", "key_not_found"):
        return False
    raise StateError(reply.get("error"), reply.get("code"), reply)


def _delete_result(reply):
    if reply.get("ok"):
        return True
    if reply.get("code") == "key_not_found":
        return False
    raise StateError(reply.get("error"), reply.get("code"), reply)


# ---- the API ------------------------------------------------------------------

def get(key, timeout=5.0, stream=None):
    """The value at ``key`` (linearizable), or None."""
    return _get_result(_call(_get(key), timeout, stream))


def put(key, value, lease=None, timeout=5.0, stream=None):
    """Writes ``value``; returns the new revision. ``lease`` attaches the key to a lease."""
    return _ok(_call(_put(key, value, lease), timeout, stream))["revision"]


def delete(key, timeout=5.0, stream=None):
    """Deletes ``key``; returns True if it existed."""
    return _delete_result(_call({"op": "del", "key": _text(key)}, timeout, stream))


def delete_prefix(prefix, timeout=5.0, stream=None):
    """Deletes every key under ``prefix``; returns how many."""
    return len(_ok(_call({"op": "delprefix", "prefix": _text(prefix)}, timeout, stream)).get("deleted", []))


def cas(key, value, expect=None, expect_mod=None, expect_absent=False, timeout=5.0, stream=None):
    """Compare-and-set: writes ``value`` only if the key holds ``expect`` (or has mod
    revision ``expect_mod``, or is absent). Returns True if it wrote."""
    return _cas_result(_call(_cas(key, value, expect, expect_mod, expect_absent), timeout, stream))


def range(prefix, limit=0, timeout=5.0, stream=None):
    """[(key, value), ...] under ``prefix``, in key order (linearizable)."""
    reply = _ok(_call({"op": "range", "prefix": _text(prefix), "limit": int(limit)}, timeout, stream))
    return [(r["key"], r["value"]) for r in reply["records"]]


def status(timeout=5.0, stream=None):
    """Leader, term, commit index and members, as the serving replica sees them."""
    return _ok(_call({"op": "status"}, timeout, stream))


# ---- transactions -----------------------------------------------------------------

def put_op(key, value, lease=None):
    """A put inside a transaction branch."""
    return _put(key, value, lease)


def delete_op(key):
    """A delete inside a transaction branch (an absent key deletes nothing)."""
    return {"op": "del", "key": _text(key)}


def delete_prefix_op(prefix):
    """A delete of every key under ``prefix`` inside a transaction branch."""
    return {"op": "delprefix", "prefix": _text(prefix)}


def get_op(key):
    """A read inside a transaction branch (its response is the record or None)."""
    return {"op": "get", "key": _text(key)}


def range_op(prefix, limit=0):
    """A prefix read inside a transaction branch."""
    return {"op": "range", "prefix": _text(prefix), "limit": int(limit)}


class TxnResult:
    """What a transaction did: ``succeeded`` (which branch ran), ``revision`` and one
    response per op of that branch (a dict with ``op`` and ``record``/``records``/...)."""

    def __init__(self, reply):
        self.succeeded, self.revision = bool(reply.get("succeeded")), reply.get("revision")
        self.responses = reply.get("responses", [])

    def __bool__(self):
        return self.succeeded

    def __repr__(self):
        return f"TxnResult(succeeded={self.succeeded}, revision={self.revision}, responses={self.responses})"


class Txn:
    """An etcd-style transaction: ``when`` compares (all must hold), ``then`` ops run if they
    do, ``otherwise`` ops if not; ``commit()`` applies it as one revision, all or nothing."""

    _TARGETS = ("value", "version", "mod_revision", "create_revision", "exists", "missing")

    def __init__(self, stream=None):
        self.compare, self.success, self.failure, self.stream = [], [], [], stream

    def when(self, key, **target):
        """A compare of ``key``: exactly one of value=, version=, mod_revision=,
        create_revision=, exists=True, missing=True (absent keys have revision/version 0)."""
        if len(target) != 1 or next(iter(target)) not in self._TARGETS:
            raise ValueError(f"when() needs exactly one of {', '.join(self._TARGETS)}= (got {sorted(target)})")
        (name, v), = target.items()
        self.compare.append({"key": _text(key), name: (_text(v) if name == "value" else v)})
        return self

    def then(self, *ops):
        self.success.extend(ops)
        return self

    def otherwise(self, *ops):
        self.failure.extend(ops)
        return self

    def _request(self):
        return {"op": "txn", "compare": self.compare, "success": self.success, "failure": self.failure}

    def commit(self, timeout=5.0):
        return TxnResult(_ok(_call(self._request(), timeout, self.stream)))

    async def acommit(self, timeout=5.0):
        return TxnResult(_ok(await _acall(self._request(), timeout, self.stream)))


def txn(stream=None):
    """Starts a transaction: ``state.txn().when(k, value=v).then(put_op(...)).otherwise(...).commit()``."""
    return Txn(stream)


# ---- leases and locks -------------------------------------------------------------

class Lease:
    """A lease: keys attached to it vanish when it expires or is revoked."""

    def __init__(self, lease_id, ttl, stream=None):
        self.id, self.ttl, self.stream = lease_id, ttl, stream

    def keepalive(self, timeout=5.0):
        _ok(_call({"op": "lease_keepalive", "id": self.id}, timeout, self.stream, check=False))

    def revoke(self, timeout=5.0):
        _ok(_call({"op": "lease_revoke", "id": self.id}, timeout, self.stream, check=False))

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.revoke()


def lease(ttl, timeout=5.0, stream=None):
    """Grants a lease of ``ttl`` seconds (a context manager that revokes it)."""
    reply = _ok(_call({"op": "lease_grant", "ttl_ms": int(ttl * 1000)}, timeout, stream))
    return Lease(reply["lease"]["id"], ttl, stream)


class Lock:
    """A lock held while a ``with`` block runs. Its lease is renewed every ttl/3 by a
    background thread; ``token`` is the fencing token (grows with every new holder: pass it
    to guarded writes). If the lease is lost anyway, ``lost`` (a threading.Event) is set,
    ``on_lost(lock)`` is called from the renewer thread, and the holder's next state call
    (or the end of the block) raises ``LockLost``."""

    def __init__(self, name, ttl, owner, wait, on_lost, stream):
        self.name, self.ttl, self.owner, self.wait, self.on_lost, self.stream = name, ttl, owner, wait, on_lost, stream
        self.lease, self.token, self.lost, self.lost_reason = None, None, threading.Event(), None
        self._stop, self._thread, self._reported = threading.Event(), None, False

    def acquire(self):
        self.lease = lease(self.ttl, stream=self.stream)
        deadline = time.monotonic() + self.wait
        while True:
            reply = _call({"op": "lock", "name": self.name, "owner": self.owner, "lease": self.lease.id}, 5.0,
                          self.stream, check=False)
            if reply.get("ok"):
                break
            if reply.get("code") != "lock_held" or time.monotonic() >= deadline:
                self.lease.revoke()
                holder = reply.get("lock") or {}
                cls = LockHeld if reply.get("code") == "lock_held" else StateError
                err = cls(reply.get("error", "refused"), reply.get("code"), reply)
                err.holder, err.token = holder.get("owner"), holder.get("token")
                raise err
            self.lease.keepalive()
            time.sleep(0.1)
        self.token = reply["lock"]["token"]
        self._thread = threading.Thread(target=self._renew, name=f"dagent-lock-{self.name}", daemon=True)
        self._thread.start()
        stack = getattr(_held, "locks", None)
        if stack is None:
            stack = _held.locks = []
        stack.append(self)
        return self

    def _renew(self):
        period = max(0.2, self.ttl / 3)
        while not self._stop.wait(period):
            try:
                self.lease.keepalive(timeout=period)
            except StateError as e:
                if e.code == "lease_not_found":
                    self._lose(str(e))
                    return
            except Exception:
                continue        # unreachable for now: try again, the lease may still live

    def _lose(self, reason):
        self.lost_reason = reason
        self.lost.set()
        if self.on_lost:
            try:
                self.on_lost(self)
            except Exception:
                pass

    def release(self):
        self._stop.set()
        stack = getattr(_held, "locks", [])
        if self in stack:
            stack.remove(self)
        if self.lost.is_set():
            return
        try:
            self.lease.revoke()     # releases the lock with the lease
        except StateError as e:
            if e.code != "lease_not_found":
                raise

    def __enter__(self):
        return self.acquire()

    def __exit__(self, exc_type, exc, tb):
        self.release()
        if exc_type is None and self.lost.is_set() and not self._reported:
            self._reported = True
            raise LockLost(f"lock {self.name!r} (owner {self.owner}, token {self.token}) was lost while the block ran: "
                           f"{self.lost_reason}", "lock_lost")


def lock(name, ttl=10.0, owner=None, wait=0.0, on_lost=None, stream=None):
    """A lock held while the ``with`` block runs (``with state.lock("deploy", ttl=10) as lk:``).
    Every holder has a unique owner id (this node's name and a random suffix) unless
    ``owner`` is given. Waits up to ``wait`` seconds for another holder; then raises
    ``LockHeld``. The lock vanishes ``ttl`` seconds after its node dies."""
    who = owner or f"{_runtime.current().backend.name()}/{uuid.uuid4().hex[:16]}"
    return Lock(name, ttl, who, wait, on_lost, stream)


# ---- watches -----------------------------------------------------------------------

_watch_ids = itertools.count(1)
_watchers = {}
_hooked = set()
# Every this many seconds the watches are re-sent anyway (the replica replaces a watch
# re-sent with the same id), in case a failover was too quick to be seen as not-ready.
WATCH_RESYNC_SECONDS = 2.0


class _Watch:
    def __init__(self, wid, prefix, callback, next_revision, stream, on_error):
        self.id, self.prefix, self.callback, self.next, self.stream = wid, prefix, callback, next_revision, stream
        self.on_error, self.resubscribing = on_error, False

    def request(self):
        return {"op": "watch", "prefix": self.prefix, "from": int(self.next), "id": self.id}


def _on_watch_event(msg):
    ev = json.loads(msg.data)
    w = _watchers.get(ev.get("watch"))
    if not w:
        return
    if "compacted" in ev:
        _watchers.pop(w.id, None)
        err = Compacted(ev["compacted"], ev.get("oldest", ev["compacted"] + 1))
        if w.on_error:
            w.on_error(err)
        else:
            _runtime.current().log(40, None, f"dagent.state.watch({w.prefix!r}): {err}")
        return
    for event in ev.get("events", []):
        if event["revision"] < w.next:
            continue        # already delivered before a resubscription
        w.callback(event)
    if ev.get("next_revision"):
        w.next = max(w.next, ev["next_revision"])


def _resubscribe_all():
    """After a reconnect or a failover: every watch continues from the last revision seen."""
    rt = _runtime.current()
    for w in list(_watchers.values()):
        try:
            rt.backend.request_async(SERVICE, REQUEST_TYPE, _encode(w.request(), w.stream), 5.0, 0)
        except Exception:
            pass


def watch(prefix, callback, from_revision=0, timeout=5.0, stream=None, on_error=None):
    """Calls ``callback(event)`` for every change under ``prefix``, exactly once and in
    revision order, from ``from_revision`` (0: from now). The watch resumes by itself
    after a reconnect or a failover, from the last revision seen. If the group compacted
    the revisions it needs, ``on_error(Compacted)`` is called (or the error is logged) and
    the watch ends. Returns a watch id."""
    rt = _runtime.current()
    if "cb" not in _hooked:
        rt.push_system_cb(WATCH_EVENT_TYPE, _on_watch_event)
        _hooked.add("cb")
    wid = next(_watch_ids)
    reply = None
    w = _Watch(wid, _text(prefix), callback, int(from_revision), stream, on_error)
    _watchers[wid] = w
    try:
        reply = _ok(_call(w.request(), timeout, stream))
    except BaseException:
        _watchers.pop(wid, None)
        raise
    if not from_revision:
        w.next = reply.get("from", 0)
    _start_resume_monitor(rt)
    return wid


_monitor = {}


def _start_resume_monitor(rt):
    """Resubscribes every watch when the node re-registers (after a failover). The replica
    that served a watch keeps no state for the next one, so the client resends its watches
    with their resume points; duplicates are filtered by revision above."""
    if _monitor.get("rt") is rt:
        return
    _monitor["rt"] = rt
    state = {"ready": True, "last": time.monotonic()}

    def check():
        try:
            ready = bool(rt.backend.is_ready())
        except Exception:
            return
        now = time.monotonic()
        if ready and _watchers and (not state["ready"] or now - state["last"] >= WATCH_RESYNC_SECONDS):
            state["last"] = now
            _resubscribe_all()
        state["ready"] = ready

    rt.every(0.2, check)


def unwatch(wid, timeout=5.0):
    w = _watchers.pop(wid, None)
    _ok(_call({"op": "unwatch", "id": wid}, timeout, w.stream if w else None))


async def awatch(prefix, from_revision=0, stream=None):
    """``async for event in dagent.state.awatch("config/"):`` resumes after failovers like
    ``watch``; raises ``Compacted`` when the revisions it needs are gone."""
    import asyncio
    queue = asyncio.Queue()
    wid = watch(prefix, lambda e: queue.put_nowait(("event", e)), from_revision, stream=stream,
                on_error=lambda err: queue.put_nowait(("error", err)))
    try:
        while True:
            kind, item = await queue.get()
            if kind == "error":
                raise item
            yield item
    finally:
        if _watchers.pop(wid, None) is not None:
            try:
                await _acall({"op": "unwatch", "id": wid}, 5.0, stream)
            except Exception:
                pass


async def aget(key, timeout=5.0, stream=None):
    return _get_result(await _acall(_get(key), timeout, stream))


async def aput(key, value, lease=None, timeout=5.0, stream=None):
    return _ok(await _acall(_put(key, value, lease), timeout, stream))["revision"]


async def adelete(key, timeout=5.0, stream=None):
    return _delete_result(await _acall({"op": "del", "key": _text(key)}, timeout, stream))


async def acas(key, value, expect=None, expect_mod=None, expect_absent=False, timeout=5.0, stream=None):
    return _cas_result(await _acall(_cas(key, value, expect, expect_mod, expect_absent), timeout, stream))


async def arange(prefix, limit=0, timeout=5.0, stream=None):
    reply = _ok(await _acall({"op": "range", "prefix": _text(prefix), "limit": int(limit)}, timeout, stream))
    return [(r["key"], r["value"]) for r in reply["records"]]
