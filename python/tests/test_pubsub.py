"""The pure-Python pub/sub API over the fake backend: publish, the decorator, handles with
cancel(), TopicMessage, the async iterator, errors, and a plugin's subscriptions ending at
unload. The real node's behaviour is tested in tests/python/test_pubsub.py."""

import asyncio

import pytest

import dagent
from conftest import pump, run_until


def test_publish_hands_topic_and_bytes_to_the_backend(rt, backend):
    dagent.publish("orders.eu.created", "text")
    dagent.publish("orders.eu.created", b"\x00\x01")
    assert backend.published == [("orders.eu.created", b"text"), ("orders.eu.created", b"\x00\x01")]


def test_decorator_subscribes_and_the_handler_gets_a_topic_message(rt, backend):
    got = []

    @dagent.subscribe("orders.*.created")
    def created(msg):
        got.append(msg)

    assert callable(created), "the decorator returns the function"
    assert list(backend.subs.values()) == [("orders.*.created", "")]
    backend.deliver_publication("orders.eu.created", b"one", src="pub1")
    backend.deliver_publication("orders.eu.shipped", b"no")
    pump(rt, backend)
    [msg] = got
    assert isinstance(msg, dagent.Message) and isinstance(msg, dagent.TopicMessage)
    assert (msg.topic, msg.data, msg.src, msg.text, msg.is_request) == ("orders.eu.created", b"one", "pub1", "one", False)
    assert "orders.eu.created" in repr(msg)
    with pytest.raises(ValueError, match="cannot be answered"):
        msg.reply(b"x")


def test_queue_group_is_passed_to_the_node(rt, backend):
    @dagent.subscribe("jobs.*", queue="workers")
    def work(msg):
        pass

    sub = dagent.subscribe("jobs.>", lambda m: None, queue="other")
    assert sorted(backend.subs.values()) == [("jobs.*", "workers"), ("jobs.>", "other")]
    assert sub.queue == "other" and sub.pattern == "jobs.>" and sub.active


def test_cancel_stops_deliveries_even_of_queued_messages(rt, backend):
    got = []
    sub = dagent.subscribe("a.>", got.append)
    backend.deliver_publication("a.b", b"1")
    pump(rt, backend)
    backend.deliver_publication("a.b", b"2")      # queued, not yet handed over
    sub.cancel()
    sub.cancel()                                   # idempotent
    pump(rt, backend)
    assert [m.data for m in got] == [b"1"]
    assert backend.unsubscribed == [sub.id] and not sub.active
    assert "cancelled" in repr(sub)


def test_subscription_as_context_manager(rt, backend):
    with dagent.subscribe("x", lambda m: None) as sub:
        assert sub.active
    assert not sub.active and backend.subs == {}


def test_bad_topics_and_patterns_raise_the_generated_exception(rt, backend):
    with pytest.raises(dagent.BadTopic, match="empty token") as e:
        dagent.publish("a..b", b"")
    assert e.value.code == 20 and isinstance(e.value, dagent.DAgentError)
    with pytest.raises(dagent.BadTopic, match="wildcard"):
        dagent.publish("a.*", b"")
    with pytest.raises(dagent.BadTopic, match="must be the last token"):
        dagent.subscribe("a.>.b", lambda m: None)
    with pytest.raises(TypeError, match="pattern must be a str"):
        dagent.subscribe(7, lambda m: None)
    with pytest.raises(TypeError, match="must be callable"):
        dagent.subscribe("a", "not-a-function")
    with pytest.raises(TypeError, match="message data must be bytes or str"):
        dagent.publish("a", 12)
    assert backend.subs == {} and backend.published == []


def test_handler_errors_are_counted_not_raised(rt, backend):
    def boom(msg):
        raise KeyError("nope")

    dagent.subscribe("t", boom)
    backend.deliver_publication("t", b"")
    pump(rt, backend)
    o = rt.owner(0)
    assert o.errors == 1 and "subscription 't'" in o.last_error and "KeyError" in o.last_error


def test_async_handler_runs_as_a_task(rt, backend, loop):
    got = []

    @dagent.subscribe("t")
    async def handler(msg):
        await asyncio.sleep(0)
        got.append(msg.data)

    backend.deliver_publication("t", b"late")
    pump(rt, backend)
    run_until(loop, lambda: got == [b"late"])


def test_async_iterator_yields_then_ends_on_cancel(rt, backend, loop):
    stream = dagent.topic("s.*", max_pending=2)

    async def consume():
        out = []
        async for msg in stream:
            out.append((msg.topic, msg.data))
            if len(out) == 2:
                stream.cancel()
        return out

    for i in range(4):
        backend.deliver_publication(f"s.{i}", str(i).encode())
    pump(rt, backend)
    assert stream.dropped == 2, "beyond max_pending the stream drops and counts"
    assert loop.run_until_complete(consume()) == [("s.0", b"0"), ("s.1", b"1")]
    assert backend.subs == {}
    with pytest.raises(ValueError, match="max_pending"):
        dagent.topic("x", max_pending=0)


def test_a_plugins_subscriptions_end_when_it_is_unloaded(rt, backend):
    rt.owner(3, "plug")
    sub = rt.call_as(3, dagent.subscribe, "p.>", lambda m: None)
    keep = dagent.subscribe("q", lambda m: None)
    assert sub.slot == 3 and keep.slot == 0
    rt.remove_owner(3)
    assert not sub.active and keep.active
    assert list(backend.subs.values()) == [("q", "")]
