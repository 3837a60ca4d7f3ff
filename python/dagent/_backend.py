"""The narrow interface between the pure-Python ``dagent`` API and a native node.

Two backends implement it:

* ``_dagent_host`` — built into the ``dagent`` agent (Sources/CPyHost/cpyhost.c)
  when it runs plugins. It is the embedded mode.
* ``_dagent`` — the SWIG extension over the Swift core's C API, for ordinary
  Python programs (standalone mode; ``_standalone.py`` adapts it).

Everything above this interface (handlers, Message, errors, timers, asyncio,
config, the plugin host) is pure Python and shared by both modes. A backend
is any object with the methods below; tests use an in-process fake.

Required::

    bind(message_class, runtime, error_factory, interrupt_exception)
        Called once by Runtime. The backend builds messages as
        ``message_class`` tuples ``(src, dst, type, data, cookie, runtime)`` and
        raises ``error_factory(code, reason)`` for failures.
    name() -> str                       this node's name
    is_ready() -> bool                  registered in the tree
    send(dst, type, data)               one-way; raises at once only for local errors
    request(dst, type, data, timeout) -> bytes
                                        blocking; must release the GIL while waiting
    request_async(dst, type, data, timeout, token)
                                        the outcome arrives as a ("reply", token, code, payload) event
    respond(dst, type, cookie, ok, data)
                                        answers request ``cookie`` of ``dst``; ok=False: data is the reason
    log(level, plugin, text)            one line (or block) for the node's log

Work intake — one of:

    pump(handlers, on_unhandled, on_error, on_async, on_result, max) -> (n, events, more)
        Native dispatch (the embedded backend): takes up to ``max`` messages and
        calls ``handlers[type] = (fn, slot)`` for each, with the Runtime's hooks
        for the outcomes. ``events`` are ("reply", token, code, payload) and
        ("command", token, text) tuples; ``more`` says work remains.
    take(max) -> (messages, events, more)
        Pure-Python dispatch: ``messages`` are (src, type, data, cookie) tuples
        that Runtime.dispatch turns into Message objects.

Pub/sub (both native backends; ``dagent/_pubsub.py`` uses them)::

    publish(topic, data)                raises BadTopic / TooLarge at once
    subscribe(pattern, queue) -> id     returns once the node holds the subscription
    unsubscribe(id)                     nothing is queued for ``id`` afterwards

    Their messages arrive as ("publish", id, topic, src, data) events.

Optional (the embedded backend has them): ``wakeup_fd()`` (readable when work
is pending), ``current_slot()``, ``guard(slot, kind, fn, *args)`` (plugin code
under the watchdog), ``idle()``/``busy()`` (the plugin thread waits / wakes),
``control(op, text)`` (status reports and command results to the agent),
``command_answer(token, text, data)`` (a host command's answer with a binary body: an HTTP
route's status and headers as JSON, and its body's bytes).
"""

REQUIRED = ("bind", "name", "is_ready", "send", "request", "request_async", "respond", "log")


def check(backend):
    """Raises TypeError naming what ``backend`` lacks."""
    missing = [m for m in REQUIRED if not callable(getattr(backend, m, None))]
    if not (callable(getattr(backend, "pump", None)) or callable(getattr(backend, "take", None))):
        missing.append("pump or take")
    if missing:
        raise TypeError(f"not a dagent backend: missing {', '.join(missing)}")
    return backend


def embedded():
    """The agent's built-in backend when running inside ``dagent run --plugins``, else None."""
    try:
        import _dagent_host
    except ImportError:
        return None
    return _dagent_host
