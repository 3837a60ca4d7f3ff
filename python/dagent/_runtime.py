"""The pure-Python core of the dagent API, over a backend (see ``_backend.py``).

One :class:`Runtime` serves one node. It owns the handler table, timers,
asyncio tasks and pending ``arequest`` futures, and keeps them per *owner*
(a plugin slot) so that a plugin can be unloaded without a trace. The
module-level functions of ``dagent`` act on the installed runtime.
"""

import collections
import inspect
import logging
import time
import traceback
import types

from .errors import DAgentError, HandlerTimeout, error_for
from .message import Message, as_bytes
from . import _pubsub

__all__ = ["Runtime", "Timer", "Owner", "install", "current", "MAX_TYPE"]

#: Types at or above 0xFFFF0000 are reserved for dagent itself.
MAX_TYPE = 0xFFFEFFFF

log = logging.getLogger("dagent")

# Watchdog scope kinds (Sources/CPyHost/include/cpyhost.h).
GUARDED, TASK = 3, 5

_current = None


def install(runtime):
    """Makes ``runtime`` the one the ``dagent.*`` functions use (None to remove)."""
    global _current
    _current = runtime


def current():
    """The installed runtime, or a clear error if there is none."""
    if _current is None:
        raise RuntimeError(
            "dagent is not running in this process: plugins get it from the agent "
            "(dagent run --plugins DIR); standalone programs start a node first with "
            "dagent.init(name, addr) or dagent.Node(name=..., via=...)")
    return _current


def check_type(t):
    if not isinstance(t, int) or isinstance(t, bool) or t < 0 or t > MAX_TYPE:
        raise ValueError(f"message type must be an int in 0...{MAX_TYPE} (0xFFFF0000 and up are reserved); got {t!r}")
    return t


def _check_dst(dst):
    if not isinstance(dst, str) or not dst:
        raise ValueError(f"destination must be a non-empty node name (str); got {dst!r}")
    return dst


class Owner:
    """What one plugin (slot) owns in a runtime, and its counters."""

    LOG_WINDOW = 60.0   # seconds
    LOG_BUDGET = 20     # tracebacks logged per window; the rest are counted

    def __init__(self, slot, name):
        self.slot, self.name = slot, name
        self.timers, self.tasks = set(), set()
        self.errors, self.interrupts = 0, 0
        self.errors_by = collections.Counter()
        self.last_error = ""
        self.handled = 0            # pure-Python dispatch only (the native backend counts in Swift)
        self.loads = 0
        self._window_start, self._logged, self._suppressed = 0.0, 0, 0

    def may_log(self):
        now = time.monotonic()
        if now - self._window_start > self.LOG_WINDOW:
            suppressed, self._suppressed = self._suppressed, 0
            self._window_start, self._logged = now, 0
            if suppressed:
                log.warning("plugin '%s': %d more error(s) in the last %.0fs were counted but not logged",
                            self.name, suppressed, self.LOG_WINDOW)
        if self._logged < self.LOG_BUDGET:
            self._logged += 1
            return True
        self._suppressed += 1
        return False


class Timer:
    """A timer from ``every``/``after``; ``cancel()`` stops it."""

    __slots__ = ("_rt", "slot", "interval", "fn", "args", "repeat", "cancelled", "_handle", "_next")

    def __init__(self, rt, slot, interval, fn, args, repeat):
        self._rt, self.slot, self.interval, self.fn, self.args, self.repeat = rt, slot, interval, fn, args, repeat
        self.cancelled = False
        self._next = rt.loop.time() + interval
        self._handle = rt.loop.call_at(self._next, self._fire)

    def _fire(self):
        if self.cancelled:
            return
        loop = self._rt.loop
        if self.repeat:
            # fixed rate; if we fell behind by more than one period, skip the missed ticks
            self._next += self.interval
            now = loop.time()
            if self._next < now:
                self._next = now + self.interval
            self._handle = loop.call_at(self._next, self._fire)
        else:
            self.cancelled = True
            self._rt.owner(self.slot).timers.discard(self)
        self._rt.call_guarded(self.slot, "timer", self.fn, *self.args)

    def cancel(self):
        """Stops the timer (idempotent)."""
        if not self.cancelled:
            self.cancelled = True
            self._handle.cancel()
        self._rt.owner(self.slot).timers.discard(self)

    def __repr__(self):
        kind = "every" if self.repeat else "after"
        return f"<dagent timer {kind} {self.interval}s {getattr(self.fn, '__name__', self.fn)}{' cancelled' if self.cancelled else ''}>"


class Runtime:
    """The dagent API state of one node, over ``backend``.

    ``loop`` is the asyncio loop that runs async handlers, timers and
    ``arequest`` completions (the embedded host runs it on the plugin thread).
    """

    def __init__(self, backend, loop):
        self.backend = backend
        self.loop = loop
        self.handlers = {}          # type -> (fn, slot): the active handler (read by backend.pump)
        self._stacks = {}           # type -> [(fn, slot), ...] in push order
        self._slot = 0              # plugin running now, for the pure-Python dispatch
        self._native_slot = getattr(backend, "current_slot", None)
        self._guard = getattr(backend, "guard", None)
        self.owners = {0: Owner(0, "")}
        self._pending = {}          # arequest token -> future
        self._next_token = 1
        self.unhandled = 0
        self.budget = None          # handler_budget (seconds), for messages
        self.on_command = None      # host hook: (token, text)
        self.on_change = None       # host hook: counters or handlers changed
        self.remove_hooks = []      # fn(runtime, slot, owner) when a plugin's things are removed (http routes)
        backend.bind(Message, self, error_for, HandlerTimeout)

    # ---- owners --------------------------------------------------------------

    def owner(self, slot, name=None):
        o = self.owners.get(slot)
        if o is None:
            o = self.owners[slot] = Owner(slot, name or f"slot{slot}")
        elif name:
            o.name = name
        return o

    def current_slot(self):
        """The plugin whose code is running (0 outside plugins)."""
        return self._native_slot() if self._native_slot else self._slot

    def current_name(self):
        o = self.owners.get(self.current_slot())
        return o.name if o else ""

    def types_of(self, slot):
        return sorted(t for t, stack in self._stacks.items() if any(e[1] == slot for e in stack))

    def remove_owner(self, slot):
        """Cancels a plugin's timers and tasks and removes its handlers."""
        o = self.owners.get(slot)
        if o is None:
            return
        for timer in list(o.timers):
            timer.cancel()
        for task in list(o.tasks):
            task.cancel()
        o.tasks.clear()
        for t in list(self._stacks):
            self._stacks[t] = [e for e in self._stacks[t] if e[1] != slot]
            self._refresh(t)
        for hook in self.remove_hooks:
            hook(self, slot, o)
        self._changed()

    def _changed(self):
        if self.on_change:
            self.on_change()

    # ---- handlers ------------------------------------------------------------

    def _refresh(self, t):
        stack = self._stacks.get(t)
        if stack:
            self.handlers[t] = stack[-1]
        else:
            self._stacks.pop(t, None)
            self.handlers.pop(t, None)

    def push_cb(self, type, fn):
        check_type(type)
        if not callable(fn):
            raise TypeError(f"handler for type {type} must be callable, not {fn!r}")
        slot = self.current_slot()
        stack = self._stacks.setdefault(type, [])
        other = next((e[1] for e in stack if e[1] != slot), None)
        if other is not None:
            raise ValueError(f"message type {type} is already handled by plugin '{self.owner(other).name or 'main'}': "
                             "two plugins cannot share a message type (pick another type, or unload that plugin)")
        entry = (fn, slot)
        stack.append(entry)
        self.handlers[type] = entry
        self._changed()
        return fn

    def pop_cb(self, type):
        """Removes the calling plugin's latest handler for ``type``; returns it (None if none)."""
        check_type(type)
        slot = self.current_slot()
        stack = self._stacks.get(type, [])
        for i in range(len(stack) - 1, -1, -1):
            if stack[i][1] == slot:
                fn = stack.pop(i)[0]
                self._refresh(type)
                self._changed()
                return fn
        return None

    def on(self, *types):
        if not types:
            raise TypeError("dagent.on needs at least one message type: @dagent.on(7)")
        for t in types:
            check_type(t)

        def register(fn):
            for t in types:
                self.push_cb(t, fn)
            return fn
        return register

    # ---- dispatch hooks (called by backend.pump, or by dispatch below) ---------

    def on_unhandled(self, msg):
        self.unhandled += 1
        if msg[4]:
            self.backend.respond(msg[0], msg[2], msg[4], False,
                                 f"node '{msg[1]}' has no handler for message type {msg[2]}".encode())
        elif self.unhandled <= 10 or self.unhandled % 1000 == 0:
            log.debug("no handler for message type %d from '%s' (%d unhandled so far)", msg[2], msg[0], self.unhandled)

    def on_error(self, entry, msg, exc):
        slot = entry[1]
        self.report_error(slot, str(msg[2]), exc, msg)
        if msg[4] and not msg.replied:
            try:
                msg.refuse(self._describe_failure(slot, f"handler for type {msg[2]}", exc))
            except DAgentError:
                pass

    def on_result(self, entry, msg, result):
        if msg[4] and not msg.replied:
            try:
                msg.reply(result)
            except TypeError as exc:
                self.on_error(entry, msg, exc)

    def on_async(self, entry, msg, awaitable):
        self.spawn(entry[1], str(msg[2]), awaitable, msg)

    def dispatch(self, messages):
        """The pure-Python equivalent of the native ``pump`` loop."""
        handlers = self.handlers
        owners = self.owners
        for m in messages:
            entry = handlers.get(m[2])
            if entry is None:
                self.on_unhandled(m)
                continue
            slot = self._slot = entry[1]
            try:
                r = entry[0](m)
            except BaseException as exc:  # noqa: B036 - a plugin must never take the host down
                self.on_error(entry, m, exc)
            else:
                if r is not None:
                    # bytes, the common answer, is never awaitable: no isawaitable call for it.
                    if r.__class__ is bytes or not inspect.isawaitable(r):
                        self.on_result(entry, m, r)
                    else:
                        self.on_async(entry, m, r)
            (owners.get(slot) or self.owner(slot)).handled += 1
        self._slot = 0

    def handle_events(self, events):
        for ev in events:
            if ev[0] == "reply":
                self.complete(ev[1], ev[2], ev[3])
            elif ev[0] == "publish":
                _pubsub.deliver(self, ev)
            elif ev[0] == "command" and self.on_command:
                self.on_command(ev[1], ev[2])

    # ---- errors ----------------------------------------------------------------

    def _describe_failure(self, slot, what, exc):
        name = self.owner(slot).name or "main"
        if isinstance(exc, HandlerTimeout):
            budget = f"={self.budget:g}s" if self.budget else ""
            return f"{what} in plugin '{name}' ran longer than handler_budget{budget} and was interrupted"
        return f"{what} in plugin '{name}' raised {type(exc).__name__}: {exc}"

    def report_error(self, slot, what, exc, msg=None):
        """Counts and logs (with traceback, rate-limited) an exception from plugin code."""
        o = self.owner(slot)
        o.errors += 1
        o.errors_by[what] += 1
        if isinstance(exc, HandlerTimeout):
            o.interrupts += 1
        label = f"handler for type {what}" if what.isdigit() else what
        o.last_error = self._describe_failure(slot, label, exc)
        if o.may_log():
            origin = f" (message from '{msg[0]}')" if msg is not None else ""
            tb = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__)).rstrip()
            self.log(40, slot, f"{o.last_error}{origin}\n{tb}")
        self._changed()

    def log(self, level, slot, text):
        self.backend.log(level, self.owner(slot).name, text)

    # ---- guarded calls and tasks ------------------------------------------------

    def call_guarded(self, slot, what, fn, *args):
        """Runs plugin code (a timer, setup, teardown) as ``slot``; errors are reported, not raised.
        An awaitable result becomes a task of the plugin."""
        try:
            r = self.call_as(slot, fn, *args)
        except BaseException as exc:  # noqa: B036
            self.report_error(slot, what, exc)
            return None
        if r is not None and inspect.isawaitable(r):
            self.spawn(slot, what, r)
            return None
        return r

    def call_as(self, slot, fn, *args, kind=GUARDED):
        """Calls ``fn(*args)`` as plugin ``slot`` under the watchdog; exceptions propagate."""
        if self._guard is not None:
            return self._guard(slot, kind, fn, *args)
        prev, self._slot = self._slot, slot
        try:
            return fn(*args)
        finally:
            self._slot = prev

    @types.coroutine
    def _stepwise(self, slot, coro):
        """Drives ``coro`` one step at a time, each step as plugin ``slot``
        under the watchdog (so a task that never yields is attributed and
        interrupted like a handler)."""
        value, exc = None, None
        while True:
            try:
                if exc is not None:
                    yielded = self.call_as(slot, coro.throw, exc, kind=TASK)
                else:
                    yielded = self.call_as(slot, coro.send, value, kind=TASK)
            except StopIteration as stop:
                return stop.value
            try:
                value, exc = (yield yielded), None
            except BaseException as e:  # noqa: B036 - forwarded into the coroutine (cancellation too)
                value, exc = None, e

    def spawn(self, slot, what, awaitable, msg=None):
        """Runs ``awaitable`` as an asyncio task owned by plugin ``slot``."""
        async def run():
            if inspect.iscoroutine(awaitable):
                return await self._stepwise(slot, awaitable)
            return await awaitable
        name = f"dagent:{self.owner(slot).name or 'main'}:{what}"
        task = self.loop.create_task(run(), name=name)
        o = self.owner(slot)
        o.tasks.add(task)
        task.add_done_callback(lambda t: self._task_done(slot, what, msg, t))
        return task

    def _task_done(self, slot, what, msg, task):
        self.owner(slot).tasks.discard(task)
        if task.cancelled():
            if msg is not None and msg[4] and not msg.replied:
                try:
                    msg.refuse(f"handler for type {msg[2]} in plugin '{self.owner(slot).name}' was cancelled (plugin unloaded?)")
                except DAgentError:
                    pass
            return
        exc = task.exception()
        if exc is not None:
            if msg is not None:
                self.on_error((None, slot), msg, exc)
            else:
                self.report_error(slot, what, exc)
        elif msg is not None:
            result = task.result()
            if result is not None:
                self.on_result((None, slot), msg, result)

    # ---- sending ------------------------------------------------------------------

    # ---- system services (reserved types; used by dagent.state) -----------------

    def system_request(self, dst, type, data, timeout=5.0):
        """A request of a reserved type (0xFFFF0000 and up) to a system service."""
        return self.backend.request(_check_dst(dst), int(type), as_bytes(data), float(timeout))

    async def system_arequest(self, dst, type, data, timeout=5.0):
        return await self._arequest(dst, int(type), data, timeout)

    def push_system_cb(self, type, fn):
        """A handler for a reserved type (e.g. state watch events)."""
        stack = self._stacks.setdefault(int(type), [])
        stack.append((fn, self.current_slot()))
        self._refresh(int(type))
        self._changed()

    def send(self, dst, type, data=b""):
        # The checks of _check_dst, check_type and as_bytes, inlined for the common case (a
        # str, an int, bytes): a send is the per-message call of a stream.
        if dst.__class__ is not str or not dst:
            _check_dst(dst)
        if type.__class__ is not int or type < 0 or type > MAX_TYPE:
            type = check_type(type)
        if data.__class__ is not bytes:
            data = as_bytes(data)
        self.backend.send(dst, type, data)

    def request(self, dst, type, data=b"", timeout=5.0):
        # The checks inlined for the common case, as in send: a blocking request is the per-message
        # call of a round trip.
        if dst.__class__ is not str or not dst:
            _check_dst(dst)
        if type.__class__ is not int or type < 0 or type > MAX_TYPE:
            type = check_type(type)
        if data.__class__ is not bytes:
            data = as_bytes(data)
        if timeout.__class__ is not float:
            timeout = float(timeout)
        return self.backend.request(dst, type, data, timeout)

    async def arequest(self, dst, type, data=b"", timeout=5.0):
        return await self._arequest(dst, check_type(type), data, timeout)

    async def _arequest(self, dst, type, data, timeout):
        """The reply to an asynchronous request; ``type`` is already checked."""
        fut = self.loop.create_future()
        token = self._next_token
        self._next_token += 1
        self._pending[token] = fut
        try:
            self.backend.request_async(_check_dst(dst), type, as_bytes(data), float(timeout), token)
        except BaseException:
            self._pending.pop(token, None)
            raise
        try:
            return await fut
        finally:
            self._pending.pop(token, None)

    def complete(self, token, code, payload):
        fut = self._pending.pop(token, None)
        if fut is None or fut.done():
            return
        if code == 0:
            fut.set_result(payload)
        else:
            fut.set_exception(error_for(code, payload))

    # ---- timers ------------------------------------------------------------------

    def _timer(self, seconds, fn, args, repeat):
        seconds = float(seconds)
        if not seconds > 0 and repeat:
            raise ValueError(f"every() needs a period > 0 seconds (got {seconds})")
        if seconds < 0:
            raise ValueError(f"after() needs a delay >= 0 seconds (got {seconds})")
        if not callable(fn):
            raise TypeError(f"timer callback must be callable, not {fn!r}")
        slot = self.current_slot()
        t = Timer(self, slot, seconds, fn, args, repeat)
        self.owner(slot).timers.add(t)
        return t

    def every(self, seconds, fn, *args):
        return self._timer(seconds, fn, args, True)

    def after(self, seconds, fn, *args):
        return self._timer(seconds, fn, args, False)


# ---- the module-level API (re-exported by dagent/__init__.py) ----------------------


def on(*types):
    """Decorator: ``@dagent.on(7)`` makes the function the handler of message type 7.

    The handler gets a :class:`dagent.Message`. For a request, returning bytes
    or str replies with it (or call ``msg.reply``). ``async def`` handlers run
    as asyncio tasks on the plugin thread and may ``await dagent.arequest``.
    """
    return current().on(*types)


def push_cb(type, fn):
    """Makes ``fn`` the handler of ``type`` (the previous one comes back with ``pop_cb``)."""
    return current().push_cb(type, fn)


def pop_cb(type):
    """Removes this plugin's latest handler for ``type`` and returns it (None if none)."""
    return current().pop_cb(type)


def send(dst, type, data=b""):
    """Sends a one-way message. Raises TooLarge at once; later failures are logged by the agent."""
    current().send(dst, type, data)


def request(dst, type, data=b"", timeout=5.0):
    """Sends a request and waits for the reply's bytes (the plugin thread blocks; the GIL is released).

    Raises ``dagent.NoRoute``, ``dagent.Timeout`` or ``dagent.Refused`` (with the reason).
    """
    return current().request(dst, type, data, timeout)


async def arequest(dst, type, data=b"", timeout=5.0):
    """``await``-able request: other handlers keep running while it is in flight."""
    return await current().arequest(dst, type, data, timeout)


def every(seconds, fn, *args):
    """Calls ``fn(*args)`` every ``seconds`` (fixed rate) until cancelled; returns the Timer."""
    return current().every(seconds, fn, *args)


def after(seconds, fn, *args):
    """Calls ``fn(*args)`` once after ``seconds``; returns the Timer."""
    return current().after(seconds, fn, *args)


def cancel(timer):
    """Cancels a Timer from ``every`` or ``after``."""
    if not isinstance(timer, Timer):
        raise TypeError(f"cancel() takes a timer from dagent.every/after, not {timer!r}")
    timer.cancel()


def name():
    """This node's name."""
    return current().backend.name()


def ready():
    """True once this node is registered in the tree."""
    return bool(current().backend.is_ready())


def loop():
    """The asyncio loop that runs handlers and timers."""
    return current().loop


def plugin_name():
    """The name of the plugin whose code is running ("" outside plugins)."""
    return current().current_name()

