"""Standalone mode: an ordinary Python program runs a dagent node in-process.

The node itself is the Swift core, loaded as ``libCDAgent.so`` through the
SWIG extension ``dagent._dagent`` (``dagent.i``). Messages arrive on the
node's event loop thread, are queued in Swift, and are handed to Python in
batches by ``take`` on the thread that runs the node's asyncio loop; handlers,
timers and ``arequest`` completions therefore all run on that one thread, as
in a plugin. Nothing here holds the GIL while it waits.

Two styles::

    with dagent.Node(name="py1", via="tcp://127.0.0.1:7000") as node:
        @node.on(1)
        def echo(msg):
            return msg.data
        print(node.request("other", 1, b"hi"))
        node.run_forever()

    dagent.init("py1", "tcp://127.0.0.1:7000")      # the original dcnode style
    while True:
        dagent.update(100)
"""

import asyncio
import json as _json
import logging
import os

from . import _pubsub, _runtime
from .errors import error_for
from .message import Message

__all__ = ["Node", "init", "update", "destroy", "extension", "tree"]

log = logging.getLogger("dagent")

BATCH = 1024


def extension():
    """The SWIG module ``dagent._dagent`` (ImportError with the fix if it is not built)."""
    try:
        from . import _dagent
    except ImportError as exc:
        raise ImportError(
            "dagent standalone mode needs the compiled extension dagent._dagent and libCDAgent.so; "
            "install the package with `pip install ./python` from the dagent repository "
            f"(it builds them). Import failed: {exc}") from exc
    _dagent.set_error_factory(error_for)
    return _dagent


class _Backend:
    """The backend interface of ``_backend.py`` over the C API."""

    def __init__(self, ext, handle, name):
        self._ext, self._h, self._name = ext, handle, name
        self._runtime = None

    def bind(self, message_class, runtime, error_factory, interrupt_exception):
        self._runtime = runtime

    def name(self):
        return self._name

    def is_ready(self):
        return bool(self._h is not None and self._ext.dagent_is_ready(self._h))

    def _handle(self):
        if self._h is None:
            raise RuntimeError(f"dagent node '{self._name}' was destroyed")
        return self._h

    def send(self, dst, type, data):
        h = self._h
        self._ext.send(h if h is not None else self._handle(), dst, type, data)

    def request(self, dst, type, data, timeout):
        if dst == self._name:
            raise error_for(9, f"a blocking request to this node itself ('{dst}') would wait for the thread it blocks; "
                               "use `await node.arequest(...)`")
        h = self._h
        return self._ext.request(h if h is not None else self._handle(), dst, type, data, timeout)

    def request_async(self, dst, type, data, timeout, token):
        self._ext.dagent_request_async(self._handle(), dst, type, data, timeout, token)

    def respond(self, dst, type, cookie, ok, data):
        h = self._h
        self._ext.respond(h if h is not None else self._handle(), dst, type, cookie, ok, data)

    def log(self, level, plugin, text):
        log.log(level, text)

    def publish(self, topic, data):
        self._ext.dagent_publish(self._handle(), topic, data)

    def subscribe(self, pattern, queue):
        return self._ext.dagent_subscribe(self._handle(), pattern, queue)

    def unsubscribe(self, sid):
        if self._h is not None:
            self._ext.dagent_unsubscribe(self._h, sid)

    def publication_drops(self):
        return self._ext.dagent_publication_drops(self._handle())

    def take(self, max):
        return self._ext.take(self._handle(), max, Message, self._name, self._runtime)

    def wakeup_fd(self):
        return self._ext.dagent_wakeup_fd(self._handle())


class Node:
    """A dagent node inside this Python process.

    ``name``: this node's unique name in the tree. ``via``: the address of the
    node to join through (``tcp://HOST:PORT``, a comma-separated failover list,
    or ``push:...`` shorthand). ``listen``: optionally accept children too.
    ``ready_timeout``: seconds to wait for the registration (None: do not wait;
    check ``ready()``). ``loop``: the asyncio loop that runs handlers (default:
    the running loop, else a private one driven by ``update``/``run_forever``).
    ``install``: make this node the one the module-level ``dagent.*`` functions use.
    ``tls_cert``, ``tls_key``, ``tls_ca``: PEM files for a tree with mutual TLS (all three);
    ``config``: a node YAML file whose options apply first (its ``tls:`` section, say).
    """

    def __init__(self, name, via=None, listen=None, secret=None, ready_timeout=5.0, loop=None, install=True,
                 tls_cert=None, tls_key=None, tls_ca=None, config=None):
        if not isinstance(name, str) or not name:
            raise ValueError(f"a node needs a non-empty name (str); got {name!r}")
        self._ext = ext = extension()
        if loop is None:
            try:
                loop = asyncio.get_running_loop()
            except RuntimeError:
                loop = None
        self._own_loop = loop is None
        self.loop = asyncio.new_event_loop() if loop is None else loop
        self._waiter = None
        self._handled = 0
        self._installed = False
        tls = (tls_cert, tls_key, tls_ca)
        if any(tls) or config:
            for label, value in zip(("tls_cert", "tls_key", "tls_ca", "config"), tls + (config,)):
                if value is not None and not isinstance(value, (str, os.PathLike)):
                    raise TypeError(f"{label} must be a file path (str); got {value!r}")
            handle = ext.dagent_create_tls(name, via or "", listen or "", secret or "",
                                           *(os.fspath(v) if v else "" for v in tls + (config,)))
        else:
            handle = ext.dagent_create(name, via or "", listen or "", secret or "")
        self.backend = _Backend(ext, handle, name)
        self.runtime = _runtime.Runtime(self.backend, self.loop)
        self._fd = self.backend.wakeup_fd()
        self.loop.add_reader(self._fd, self._pump)
        if install:
            _runtime.install(self.runtime)
            self._installed = True
        if ready_timeout is not None:
            try:
                ext.dagent_wait_ready(handle, float(ready_timeout))
            except BaseException:
                self.close()
                raise

    # ---- the API (the same as the module-level functions of a plugin) -------------

    def name(self):
        return self.backend.name()

    def ready(self):
        """True once registered in the tree."""
        return self.backend.is_ready()

    def wait_ready(self, timeout=5.0):
        """Blocks (without the GIL) until registered; raises NotReady after ``timeout``."""
        self._ext.dagent_wait_ready(self.backend._handle(), float(timeout))

    def on(self, *types):
        """Decorator: ``@node.on(7)`` handles message type 7 (return a value to reply to a request)."""
        return self.runtime.on(*types)

    def push_cb(self, type, fn):
        return self.runtime.push_cb(type, fn)

    def pop_cb(self, type):
        return self.runtime.pop_cb(type)

    def send(self, dst, type, data=b""):
        self.runtime.send(dst, type, data)

    def request(self, dst, type, data=b"", timeout=5.0):
        """Blocking request; the GIL is released while it waits. Returns the reply's bytes."""
        return self.runtime.request(dst, type, data, timeout)

    async def arequest(self, dst, type, data=b"", timeout=5.0):
        """Awaitable request (await it on ``node.loop``)."""
        return await self.runtime.arequest(dst, type, data, timeout)

    async def messages(self, type):
        """``async for msg in node.messages(7)``: handles type 7 by yielding its messages."""
        queue = asyncio.Queue()
        self.runtime.push_cb(type, queue.put_nowait)
        try:
            while True:
                yield await queue.get()
        finally:
            self.runtime.pop_cb(type)

    # ---- publish/subscribe (dagent/_pubsub.py, docs/pubsub.md) ----------------------

    def publish(self, topic, data=b""):
        """Publishes ``data`` on ``topic``; raises ``BadTopic``/``TooLarge`` at once."""
        _pubsub.rt_publish(self.runtime, topic, data)

    def subscribe(self, pattern, fn=None, queue=None):
        """``node.subscribe(pattern, fn)`` -> Subscription; without ``fn`` a decorator."""
        if fn is None:
            def register(f):
                _pubsub.rt_subscribe(self.runtime, pattern, f, queue)
                return f
            return register
        return _pubsub.rt_subscribe(self.runtime, pattern, fn, queue)

    def topic(self, pattern, queue=None, max_pending=10_000):
        """``async for msg in node.topic("orders.>")`` (on ``node.loop``): a TopicStream."""
        return _pubsub.TopicStream(self.runtime, pattern, queue, max_pending)

    @property
    def publication_drops(self):
        """Publications dropped because this program did not take them fast enough
        (more than the node's slow_subscriber_bytes waiting)."""
        return self.backend.publication_drops()

    def every(self, seconds, fn, *args):
        return self.runtime.every(seconds, fn, *args)

    def after(self, seconds, fn, *args):
        return self.runtime.after(seconds, fn, *args)

    def tree(self, json=False):
        """What this node sees, as ``dagent tree`` would show it: text, or with ``json=True`` a dict
        (``direct_out``/``direct_in`` count the messages that went brother to brother on msgq://)."""
        text = self._ext.dagent_node_tree(self.backend._handle(), 1 if json else 0)
        return _json.loads(text) if json else text

    @property
    def errors(self):
        """Exceptions raised by handlers, timers and tasks so far (they are logged, never raised)."""
        return self.runtime.owner(0).errors

    @property
    def last_error(self):
        return self.runtime.owner(0).last_error

    # ---- driving it ------------------------------------------------------------------

    def _pump(self):
        msgs, events, _more = self.backend.take(BATCH)
        if msgs:
            self._handled += len(msgs)
            self.runtime.dispatch(msgs)
        if events:
            self.runtime.handle_events(events)
        w = self._waiter
        if w is not None and not w.done():
            w.set_result(None)

    def update(self, timeout_ms=0):
        """Runs handlers, timers and tasks; waits up to ``timeout_ms`` for messages.
        Returns the number of messages handled. (Private-loop nodes only.)"""
        if self.loop.is_running():
            raise RuntimeError("update() drives the node's private loop; this node runs on a running asyncio "
                               "loop already, where its handlers run by themselves")
        before = self._handled
        fut = self._waiter = self.loop.create_future()
        timer = self.loop.call_later(max(0, timeout_ms) / 1000.0, lambda: fut.done() or fut.set_result(None))
        try:
            self.loop.run_until_complete(fut)
        finally:
            timer.cancel()
            self._waiter = None
        return self._handled - before

    def run(self, awaitable):
        """Runs ``awaitable`` on the node's private loop (handlers keep running meanwhile)."""
        return self.loop.run_until_complete(awaitable)

    def run_forever(self):
        """Handles messages until ``stop()`` (or Ctrl-C)."""
        try:
            self.loop.run_forever()
        except KeyboardInterrupt:
            pass

    def stop(self):
        """Makes ``run_forever`` return (thread-safe)."""
        self.loop.call_soon_threadsafe(self.loop.stop)

    def close(self):
        """Stops the node and frees it; idempotent."""
        h = self.backend._h
        if h is None:
            return
        try:
            self.loop.remove_reader(self._fd)
        except Exception:  # noqa: BLE001 - the loop may be closed already
            pass
        self.runtime.remove_owner(0)
        for fut in list(self.runtime._pending.values()):
            if not fut.done():
                fut.set_exception(error_for(9, f"node '{self.backend.name()}' was destroyed"))
        self.runtime._pending.clear()
        self.backend._h = None
        self._ext.dagent_destroy(h)
        if self._installed and _runtime._current is self.runtime:
            _runtime.install(None)
        if self._own_loop and not self.loop.is_running():
            self.loop.close()

    destroy = close

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    async def __aenter__(self):
        return self

    async def __aexit__(self, *exc):
        self.close()

    def __repr__(self):
        state = "destroyed" if self.backend._h is None else ("ready" if self.ready() else "joining")
        return f"<dagent.Node '{self.backend.name()}' {state}>"


def tree_report(via, json=False, timeout=3.0, name=None, secret=None, secret_file=None,
                tls_cert=None, tls_key=None, tls_ca=None):
    """The report of ``dagent tree --via VIA [--json] [--name ...] [--secret-file ...] [--tls-* ...]``
    as a str (raises ``DAgentError``)."""
    if not isinstance(via, str):
        raise TypeError(f"tree needs an address str (tcp://HOST:PORT or msgq://PATH); got {via!r}")
    for label, value in (("name", name), ("secret", secret)):
        if value is not None and not isinstance(value, str):
            raise TypeError(f"tree: {label} must be a str; got {value!r}")
    files = (secret_file, tls_cert, tls_key, tls_ca)
    for label, value in zip(("secret_file", "tls_cert", "tls_key", "tls_ca"), files):
        if value is not None and not isinstance(value, (str, os.PathLike)):
            raise TypeError(f"tree: {label} must be a file path (str); got {value!r}")
    return extension().dagent_tree_with(via, name or "", secret or "", *(os.fspath(v) if v else "" for v in files),
                                        1 if json else 0, float(timeout))


def tree(via, json=False, timeout=3.0, name=None, secret=None, secret_file=None, tls_cert=None, tls_key=None,
         tls_ca=None):
    """What the node at ``via`` sees: ``tcp://HOST:PORT`` (any node that listens) or ``msgq://PATH``
    (the agent serving PATH). No node of your own is needed. Returns the indented text of
    ``dagent tree``, or with ``json=True`` its JSON as a dict.

    A tree in secret mode needs ``secret`` (or ``secret_file``, mode 0600); one with mutual TLS needs
    ``tls_cert``, ``tls_key`` and ``tls_ca`` (PEM files). ``name``: what the query registers as
    (default: the certificate's name with TLS, else ``tree-RANDOM``); it is checked, and in TLS mode
    must be allowed by the certificate, but never added to the tree.

    Raises ``NotReady`` (no agent at a msgq:// path), ``Refused`` (nothing listens at a tcp://
    address, or the node refused the query), ``Unauthenticated`` (a wrong secret), ``ConfigError``
    (bad arguments or files) or ``Timeout``."""
    text = tree_report(via, json, timeout, name, secret, secret_file, tls_cert, tls_key, tls_ca)
    return _json.loads(text) if json else text


# ---- the original dcnode style: one node per process --------------------------------

_node = None


def init(name, addr, ready_timeout=5.0, listen=None, secret=None, tls_cert=None, tls_key=None, tls_ca=None,
         config=None):
    """``dagent.init(name, "tcp://HOST:PORT")``: joins the tree as ``name``. Returns the Node.
    ``tls_cert``/``tls_key``/``tls_ca`` or ``config`` as for ``Node``."""
    global _node
    if _node is not None:
        raise RuntimeError(f"dagent.init: node '{_node.name()}' is running; call dagent.destroy() first")
    _node = Node(name=name, via=addr, listen=listen, secret=secret, ready_timeout=ready_timeout,
                 tls_cert=tls_cert, tls_key=tls_key, tls_ca=tls_ca, config=config)
    return _node


def update(timeout_ms=0):
    """Handles what arrived (waiting up to ``timeout_ms``); returns the number of messages handled."""
    if _node is None:
        raise RuntimeError("dagent.update: call dagent.init(name, addr) first")
    return _node.update(timeout_ms)


def destroy():
    """Stops the node from ``init``."""
    global _node
    node, _node = _node, None
    if node is not None:
        node.close()


def node():
    """The node from ``init`` (None before)."""
    return _node
