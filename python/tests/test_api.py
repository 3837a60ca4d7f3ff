"""The pure-Python API over a fake backend: handlers, replies, errors, async, timers."""

import asyncio

import pytest

import dagent
from dagent import _runtime
from conftest import pump, run_until


def test_handler_gets_message_fields(rt, backend):
    got = []

    @dagent.on(7)
    def h(msg):
        got.append((msg.src, msg.dst, msg.type, msg.data, msg.is_request, msg.text))

    backend.deliver("alice", 7, b"hi")
    pump(rt, backend)
    assert got == [("alice", "fake-node", 7, b"hi", False, "hi")]


def test_return_value_replies_to_a_request(rt, backend):
    dagent.push_cb(1, lambda msg: msg.data.upper())
    cookie = backend.deliver("bob", 1, b"abc", request=True)
    pump(rt, backend)
    assert backend.responses == [("bob", 1, cookie, True, b"ABC")]


def test_explicit_reply_and_double_reply(rt, backend):
    errors = []

    @dagent.on(1)
    def h(msg):
        msg.reply("once")
        try:
            msg.reply("twice")
        except RuntimeError as e:
            errors.append(str(e))
        return b"ignored: already replied"

    backend.deliver("bob", 1, b"", request=True)
    pump(rt, backend)
    assert [r[4] for r in backend.responses] == [b"once"]
    assert "already answered" in errors[0]


def test_reply_to_one_way_message_is_an_error(rt, backend):
    seen = []

    @dagent.on(3)
    def h(msg):
        with pytest.raises(ValueError, match="not a request"):
            msg.reply(b"x")
        seen.append(1)

    backend.deliver("carol", 3, b"")
    pump(rt, backend)
    assert seen == [1]


def test_refuse_sends_reason(rt, backend):
    dagent.push_cb(4, lambda msg: msg.refuse("not today"))
    backend.deliver("d", 4, b"", request=True)
    pump(rt, backend)
    assert backend.responses[0][3:] == (False, b"not today")


def test_push_cb_pop_cb_stack(rt, backend):
    calls = []
    dagent.push_cb(5, lambda m: calls.append("first"))
    second = lambda m: calls.append("second")  # noqa: E731
    dagent.push_cb(5, second)
    backend.deliver("x", 5)
    pump(rt, backend)
    assert dagent.pop_cb(5) is second
    backend.deliver("x", 5)
    pump(rt, backend)
    assert calls == ["second", "first"]
    dagent.pop_cb(5)
    assert dagent.pop_cb(5) is None
    assert 5 not in rt.handlers


def test_unhandled_request_is_refused(rt, backend):
    backend.deliver("x", 99, b"", request=True)
    pump(rt, backend)
    assert backend.responses[0][3] is False
    assert b"no handler for message type 99" in backend.responses[0][4]
    assert rt.unhandled == 1


@pytest.mark.parametrize("bad", [-1, 0xFFFF0000, "7", 1.5, True])
def test_bad_types_are_rejected(rt, bad):
    with pytest.raises(ValueError, match="message type"):
        dagent.push_cb(bad, print)


def test_send_and_its_errors(rt, backend):
    dagent.send("peer", 2, "text")
    dagent.send("peer", 2, b"bytes")
    assert backend.sent == [("peer", 2, b"text"), ("peer", 2, b"bytes")]
    with pytest.raises(dagent.TooLarge, match="max_message_bytes"):
        dagent.send("peer", 2, b"x" * 2000)
    with pytest.raises(ValueError, match="destination"):
        dagent.send("", 2, b"")
    with pytest.raises(TypeError, match="bytes or str"):
        dagent.send("peer", 2, 42)


def test_request_returns_bytes_or_raises_typed_errors(rt, backend):
    backend.answers[("calc", 1)] = b"42"
    backend.answers[("slow", 1)] = (7, "request to 'slow' got no answer within 1s")
    backend.answers[("picky", 1)] = (9, "handler raised ValueError: nope")
    assert dagent.request("calc", 1, b"6*7") == b"42"
    with pytest.raises(dagent.NoRoute, match="no route to 'nobody'"):
        dagent.request("nobody", 1, b"")
    with pytest.raises(dagent.Timeout) as t:
        dagent.request("slow", 1, b"", timeout=1)
    assert t.value.code == 7 and "no answer" in t.value.reason
    with pytest.raises(dagent.Refused, match="ValueError: nope"):
        dagent.request("picky", 1, b"")
    assert issubclass(dagent.NoRoute, dagent.DAgentError)


def test_handler_exception_is_counted_logged_and_refused(rt, backend):
    ok = []

    @dagent.on(8)
    def bad(msg):
        raise ZeroDivisionError("boom")

    dagent.push_cb(9, lambda m: ok.append(m.data))
    backend.deliver("x", 8, b"", request=True)
    backend.deliver("x", 8, b"")
    backend.deliver("x", 9, b"still alive")
    pump(rt, backend)
    assert ok == [b"still alive"]
    owner = rt.owner(0)
    assert owner.errors == 2 and owner.errors_by["8"] == 2
    assert "ZeroDivisionError: boom" in backend.errors()[0]
    assert "Traceback" in backend.errors()[0]
    assert backend.responses[0][3] is False and b"raised ZeroDivisionError: boom" in backend.responses[0][4]


def test_system_exit_in_a_handler_does_not_escape(rt, backend):
    dagent.push_cb(8, lambda m: exit(3))
    backend.deliver("x", 8)
    pump(rt, backend)
    assert rt.owner(0).errors == 1


def test_async_handler_awaits_arequest(rt, backend, loop):
    backend.answers[("db", 3)] = lambda data: b"value-of-" + data

    @dagent.on(2)
    async def lookup(msg):
        return await dagent.arequest("db", 3, msg.data, timeout=2)

    cookie = backend.deliver("client", 2, b"k1", request=True)
    pump(rt, backend)
    run_until(loop, lambda: backend.events or backend.responses)
    pump(rt, backend)   # delivers the ("reply", ...) event
    run_until(loop, lambda: backend.responses)
    assert backend.responses == [("client", 2, cookie, True, b"value-of-k1")]


def test_arequest_error_in_async_handler_refuses_request(rt, backend, loop):
    @dagent.on(2)
    async def lookup(msg):
        await dagent.arequest("nowhere", 3, b"")

    backend.deliver("client", 2, b"", request=True)
    pump(rt, backend)
    run_until(loop, lambda: backend.events)
    pump(rt, backend)
    run_until(loop, lambda: backend.responses)
    assert backend.responses[0][3] is False
    assert b"NoRoute" in backend.responses[0][4]
    assert rt.owner(0).errors_by["2"] == 1


def test_timers_every_after_cancel(rt, loop):
    ticks, once = [], []
    t = dagent.every(0.01, lambda: ticks.append(1))
    dagent.after(0.01, once.append, "fired")
    run_until(loop, lambda: len(ticks) >= 3 and once)
    dagent.cancel(t)
    n = len(ticks)
    done = []
    dagent.after(0.05, done.append, True)
    run_until(loop, lambda: done)
    assert len(ticks) == n and once == ["fired"]
    assert rt.owner(0).timers == set()


def test_failing_timer_is_counted_and_keeps_running(rt, backend, loop):
    calls = []

    def tick():
        calls.append(1)
        raise RuntimeError("tick failed")
    t = dagent.every(0.01, tick)
    run_until(loop, lambda: len(calls) >= 2)
    t.cancel()
    assert rt.owner(0).errors_by["timer"] >= 2


def test_async_timer_callback(rt, loop):
    done = []

    async def later():
        await asyncio.sleep(0)
        done.append(True)
    dagent.after(0, later)
    run_until(loop, lambda: done)


def test_remove_owner_cancels_everything(rt, loop):
    rt._slot = 3
    rt.owner(3, "p")
    dagent.push_cb(11, print)
    t = dagent.every(10, print)
    rt._slot = 0
    rt.remove_owner(3)
    assert 11 not in rt.handlers and t.cancelled


def test_report_and_state_exist():
    assert callable(dagent.state.get) and callable(dagent.state.awatch)
    assert callable(dagent.report.inc) and dagent.report_inc is dagent.report.inc
    with pytest.raises(AttributeError):
        dagent.no_such_thing


def test_without_runtime_the_error_is_clear():
    _runtime.install(None)
    with pytest.raises(RuntimeError, match="not running in this process"):
        dagent.send("x", 1, b"")


def test_name_ready_and_log(rt, backend):
    assert dagent.name() == "fake-node"
    assert dagent.ready() is True
    backend.ready_flag = False
    assert dagent.ready() is False


def test_error_for_maps_codes():
    from dagent.errors import error_for
    assert isinstance(error_for(1, "x"), dagent.NoRoute)
    assert isinstance(error_for(6, "x"), dagent.QueueFull)
    e = error_for(77, "odd")
    assert type(e) is dagent.DAgentError and e.code == 77 and e.reason == "odd"
    assert str(error_for(7, "late")) == "timeout: late"
    assert issubclass(dagent.HandlerTimeout, BaseException) and not issubclass(dagent.HandlerTimeout, Exception)


def test_cancelled_async_handler_sees_cancellation_and_request_is_refused(rt, backend, loop):
    seen = []
    gate = loop.create_future()

    @dagent.on(2)
    async def waits(msg):
        try:
            await gate
        except asyncio.CancelledError:
            seen.append("cancelled")
            raise

    backend.deliver("client", 2, b"", request=True)
    pump(rt, backend)
    run_until(loop, lambda: rt.owner(0).tasks)
    rt.remove_owner(0)
    run_until(loop, lambda: backend.responses)
    assert seen == ["cancelled"]
    assert backend.responses[0][3] is False and b"cancelled" in backend.responses[0][4]


def test_async_handler_with_many_steps_returns_its_value(rt, backend, loop):
    @dagent.on(2)
    async def steps(msg):
        total = 0
        for i in range(5):
            await asyncio.sleep(0)
            total += i
        return str(total)

    backend.deliver("client", 2, b"", request=True)
    pump(rt, backend)
    run_until(loop, lambda: backend.responses)
    assert backend.responses[0][4] == b"10"
