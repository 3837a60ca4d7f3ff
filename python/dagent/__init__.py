"""dagent: the Python API of a dagent node.

Plugins loaded by an agent (``dagent run --plugins DIR``) import it to handle
messages::

    import dagent

    @dagent.on(1)
    def echo(msg):
        return msg.data              # a request gets this as its reply

    @dagent.on(2)
    async def ask(msg):
        answer = await dagent.arequest("other-node", 1, msg.data, timeout=2)
        msg.reply(answer)

Publish/subscribe (docs/pubsub.md)::

    @dagent.subscribe("orders.*.created")
    def created(msg):
        dagent.publish("audit." + msg.topic, msg.data)

Ordinary Python programs use the same API in standalone mode (the Swift node
runs in-process through the SWIG extension ``dagent._dagent``)::

    with dagent.Node(name="py1", via="tcp://127.0.0.1:7000") as node:
        print(node.request("echo1", 1, b"hi"))

or, in the original style, ``dagent.init(name, addr)`` / ``dagent.update(ms)`` /
``dagent.destroy()``.
"""

import logging as _logging

from .config import REQUIRED, Config, Option, PluginConfig
from .errors import (BadFrame, ConfigError, DAgentError, HandlerTimeout, HopLimit, NameTaken, NoRoute,
                     NotReady, QueueFull, Refused, Timeout, TooLarge, UnknownKind, BadTopic, TooManySubscriptions)
from .message import Message
from ._runtime import (MAX_TYPE, Timer, after, arequest, cancel, every, loop, name, on, plugin_name, pop_cb,
                       push_cb, ready, request, send)
from ._standalone import Node, destroy, init, tree, update
from ._pubsub import Subscription, TopicMessage, TopicStream, publish, subscribe, topic

from . import http, report, state

#: The original reporter's names.
report_inc = report.inc
report_dec = report.dec
report_set = report.set

__version__ = "0.4.0"

#: The agent's log: records go to the agent's log with the plugin's name attached.
log = _logging.getLogger("dagent")

__all__ = [
    "on", "push_cb", "pop_cb", "Message", "send", "request", "arequest", "every", "after", "cancel",
    "Timer", "Node", "init", "update", "destroy", "tree", "name", "ready", "log", "loop", "plugin_name", "Config", "Option", "PluginConfig", "REQUIRED",
    "DAgentError", "NoRoute", "Timeout", "Refused", "TooLarge", "QueueFull", "NotReady", "HopLimit",
    "NameTaken", "BadFrame", "UnknownKind", "HandlerTimeout", "ConfigError", "MAX_TYPE", "state", "http",
    "report", "report_inc", "report_dec", "report_set",
    "publish", "subscribe", "topic", "Subscription", "TopicMessage", "TopicStream", "BadTopic", "TooManySubscriptions",
]

# Parts of the API that later issues bring. They are deliberately absent, not
# stubbed: using them says where they come from.
_NOT_YET = {}


def __getattr__(attr):
    if attr in _NOT_YET:
        raise NotImplementedError(_NOT_YET[attr])
    raise AttributeError(f"module 'dagent' has no attribute '{attr}'")
