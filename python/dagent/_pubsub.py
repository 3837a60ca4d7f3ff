"""Publish/subscribe, one API for plugins and standalone programs (docs/pubsub.md).

::

    dagent.publish("orders.eu.created", b'{"id": 1}')

    @dagent.subscribe("orders.*.created")            # queue="workers" to share the messages
    def created(msg):
        print(msg.topic, msg.data, msg.src)

    sub = dagent.subscribe("orders.>", handler)      # a Subscription; sub.cancel() ends it

    async for msg in node.topic("orders.>"):          # standalone programs (or dagent.topic in a plugin)
        ...

Topics and patterns are checked by the node: a bad one raises ``dagent.BadTopic`` naming
the rule it broke; ``dagent.TooManySubscriptions`` when ``max_subscriptions`` is reached.
Delivery is at most once, in order per publisher. Handlers run where message handlers
run (the plugin thread, or the standalone node's asyncio loop); an ``async def`` handler
becomes a task. A plugin's subscriptions end when it is unloaded.
"""

import asyncio

from .message import Message, as_bytes

__all__ = ["TopicMessage", "Subscription", "TopicStream", "publish", "subscribe", "topic"]


class TopicMessage(Message):
    """A published message, as a subscription's handler gets it: ``topic``, ``data``
    (bytes), ``text``, ``src`` (the publisher's node name). ``dst`` is the topic too
    (the wire's destination of a publish). It cannot be answered: publish a reply."""

    @property
    def topic(self):
        """The topic it was published on (the pattern that matched may have wildcards)."""
        return self[1]

    def _answer(self, ok, payload):
        raise ValueError(f"a published message (topic '{self[1]}' from '{self[0]}') cannot be answered: "
                         "publish the answer on a topic, or use dagent.send()")

    def __repr__(self):
        data = self[3]
        shown = data[:40] + (b"..." if len(data) > 40 else b"")
        return f"<dagent publication '{self[1]}' from '{self[0]}' {len(data)}B {shown!r}>"


class Subscription:
    """A subscription from ``dagent.subscribe(pattern, fn)``: ``pattern``, ``queue``, ``id``,
    ``active``; ``cancel()`` ends it (idempotent; nothing is delivered to ``fn`` afterwards).
    Also a context manager that cancels on exit."""

    __slots__ = ("id", "pattern", "queue", "fn", "slot", "active", "_rt")

    def __init__(self, rt, sid, pattern, queue, fn, slot):
        self._rt, self.id, self.pattern, self.queue, self.fn, self.slot = rt, sid, pattern, queue, fn, slot
        self.active = True

    def cancel(self):
        if not self.active:
            return
        self.active = False
        _table(self._rt).pop(self.id, None)
        self._rt.backend.unsubscribe(self.id)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.cancel()

    def __repr__(self):
        group = f" queue={self.queue!r}" if self.queue else ""
        return f"<dagent subscription {self.pattern!r}{group}{'' if self.active else ' cancelled'}>"


def _table(rt):
    """The runtime's subscriptions by id (created with the hook that cancels a plugin's on unload)."""
    table = getattr(rt, "subscriptions", None)
    if table is None:
        table = rt.subscriptions = {}
        rt.remove_hooks.append(_remove_owner)
    return table


def _remove_owner(rt, slot, owner):
    for sub in [s for s in _table(rt).values() if s.slot == slot]:
        sub.cancel()


def _backend(rt, what):
    fn = getattr(rt.backend, what, None)
    if fn is None:
        raise RuntimeError(f"this dagent backend ({type(rt.backend).__name__}) has no publish/subscribe")
    return fn


def _check_str(value, what):
    if not isinstance(value, str):
        raise TypeError(f"{what} must be a str, not {type(value).__name__} ({value!r})")
    return value


def rt_publish(rt, topic, data=b""):
    _backend(rt, "publish")(_check_str(topic, "topic"), as_bytes(data))


def rt_subscribe(rt, pattern, fn, queue=None):
    _check_str(pattern, "pattern")
    if queue is not None:
        _check_str(queue, "queue")
    if not callable(fn):
        raise TypeError(f"the handler of subscription {pattern!r} must be callable, not {fn!r}")
    table = _table(rt)
    sid = _backend(rt, "subscribe")(pattern, queue or "")
    sub = Subscription(rt, sid, pattern, queue or "", fn, rt.current_slot())
    table[sid] = sub
    return sub


def deliver(rt, ev):
    """Hands a ("publish", id, topic, src, data) event to its subscription's handler."""
    sub = getattr(rt, "subscriptions", {}).get(ev[1])
    if sub is None:
        return      # cancelled while it was queued
    msg = tuple.__new__(TopicMessage, (ev[3], ev[2], 0, ev[4], 0, rt))
    rt.call_guarded(sub.slot, f"subscription {sub.pattern!r}", sub.fn, msg)


class TopicStream:
    """``async for msg in node.topic(pattern)``: the messages of a subscription, as an
    async iterator on the node's loop. At most ``max_pending`` wait in it; beyond that
    new ones are dropped and counted in ``dropped`` (at most once, as everywhere).
    ``cancel()`` (or leaving the ``async for``, or ``async with``) ends the subscription."""

    def __init__(self, rt, pattern, queue=None, max_pending=10_000):
        if not isinstance(max_pending, int) or max_pending < 1:
            raise ValueError(f"max_pending must be an int >= 1 (got {max_pending!r})")
        self._queue = asyncio.Queue()
        self.max_pending, self.dropped = max_pending, 0
        self.subscription = rt_subscribe(rt, pattern, self._put, queue)

    def _put(self, msg):
        if self._queue.qsize() >= self.max_pending:
            self.dropped += 1
        else:
            self._queue.put_nowait(msg)

    def cancel(self):
        if self.subscription.active:
            self.subscription.cancel()
            self._queue.put_nowait(None)    # wakes a waiting __anext__: the stream ends

    def __aiter__(self):
        return self

    async def __anext__(self):
        if not self.subscription.active and self._queue.empty():
            raise StopAsyncIteration
        try:
            msg = await self._queue.get()
        except asyncio.CancelledError:
            self.cancel()
            raise
        if msg is None:
            raise StopAsyncIteration
        return msg

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.cancel()

    def __del__(self):
        sub = getattr(self, "subscription", None)
        if sub is not None and sub.active:
            try:
                sub.cancel()
            except Exception:
                pass


# ---- the module-level API (re-exported by dagent/__init__.py) ----------------------


def publish(topic, data=b""):
    """Publishes ``data`` (bytes or str) on ``topic`` (dot-separated tokens, no wildcards).
    Returns once it is handed to the node; raises ``BadTopic`` or ``TooLarge`` at once."""
    from ._runtime import current
    rt_publish(current(), topic, data)


def subscribe(pattern, fn=None, queue=None):
    """``dagent.subscribe(pattern, fn)`` calls ``fn(msg)`` for every message published on a
    matching topic and returns a :class:`Subscription` (``.cancel()``). Without ``fn`` it is
    a decorator: ``@dagent.subscribe("orders.*", queue="workers")``. ``queue``: a queue group;
    its members (anywhere in the tree) share the messages, each going to one of them."""
    from ._runtime import current
    rt = current()
    if fn is None:
        def register(f):
            rt_subscribe(rt, pattern, f, queue)
            return f
        return register
    return rt_subscribe(rt, pattern, fn, queue)


def topic(pattern, queue=None, max_pending=10_000):
    """``async for msg in dagent.topic("orders.>")``: a :class:`TopicStream`."""
    from ._runtime import current
    return TopicStream(current(), pattern, queue, max_pending)
