import asyncio
import os
import sys

import pytest

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))   # python/ (the dagent package)
sys.path.insert(0, HERE)

from dagent import _runtime  # noqa: E402
from fake_backend import FakeBackend  # noqa: E402


@pytest.fixture
def backend():
    return FakeBackend()


@pytest.fixture
def loop():
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    yield loop
    loop.close()
    asyncio.set_event_loop(None)


@pytest.fixture
def rt(backend, loop):
    runtime = _runtime.Runtime(backend, loop)
    _runtime.install(runtime)
    yield runtime
    _runtime.install(None)


def run_until(loop, condition, timeout=5.0):
    """Runs the loop until condition() holds (deadline, no fixed sleeps)."""
    deadline = loop.time() + timeout

    async def wait():
        while not condition():
            if loop.time() > deadline:
                raise AssertionError("condition not reached before the deadline")
            await asyncio.sleep(0.005)
    loop.run_until_complete(wait())


def pump(rt, backend):
    """Hands everything queued in the fake backend to the runtime (like the host's pump)."""
    from dagent.message import Message
    while True:
        msgs, events, more = backend.take(1000)
        rt.dispatch([tuple.__new__(Message, (src, backend.name(), t, d, c, rt)) for src, t, d, c in msgs])
        if events:
            rt.handle_events(events)
        if not more:
            return
