"""echo: echo and ping, the smallest useful dagent plugin.

Message types:

* ``1`` — a request is answered with its own payload (after ``prefix``);
  a one-way message is counted (and logged at debug level).
* ``2`` — ping: a request is answered with
  ``pong from NODE: N message(s) seen, up Ss``.

Config (``plugins: config: echo:``):

* ``prefix`` (str, default ``""``): put in front of every echoed payload.

Try it::

    dagent run --name a1 --listen tcp://127.0.0.1:7001 --plugins plugins &
    dagent request --via tcp://127.0.0.1:7001 --to a1 hello          # hello
    dagent request --via tcp://127.0.0.1:7001 --to a1 --type 2 ping  # pong from a1: ...
"""

import time

import dagent

CONFIG = dagent.Config(
    prefix=dagent.Option(str, default="", help="put in front of every echoed payload"),
)

ECHO, PING = 1, 2

prefix = b""
seen = 0
started = time.monotonic()


def setup(config):
    global prefix
    prefix = config.prefix.encode()


@dagent.on(ECHO)
def echo(msg):
    global seen
    seen += 1
    dagent.report.inc("echo_messages_total", kind="request" if msg.is_request else "oneway")
    dagent.report.observe("echo_payload_bytes", len(msg.data))
    if msg.is_request:
        return prefix + msg.data
    dagent.log.debug("echo: one-way message from %s: %d bytes", msg.src, len(msg.data))
    return None


@dagent.on(PING)
def ping(msg):
    global seen
    seen += 1
    dagent.report.inc("echo_pings_total")
    return f"pong from {dagent.name()}: {seen} message(s) seen, up {time.monotonic() - started:.0f}s"
