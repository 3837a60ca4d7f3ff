"""An in-process backend for unit tests of the pure-Python layer (no agent, no network).

It implements the ``take`` intake (pure-Python dispatch) and records what the
API sends. Tests queue messages with ``deliver`` and script replies with
``answer``.
"""

import collections

from dagent.errors import DAgentError


class FakeBackend:
    def __init__(self, name="fake-node"):
        self._name = name
        self.ready_flag = True
        self.inbox = collections.deque()
        self.events = []
        self.sent = []          # (dst, type, data)
        self.responses = []     # (dst, type, cookie, ok, data)
        self.logs = []          # (level, plugin, text)
        self.async_requests = []
        self.answers = {}       # (dst, type) -> bytes | (code, reason)
        self.controls = []
        self.next_cookie = 100
        self.bound = None
        self.published = []     # (topic, data)
        self.subs = {}          # id -> (pattern, queue)
        self.next_sub = 1
        self.unsubscribed = []

    # -- the backend interface --
    def bind(self, message_class, runtime, error_factory, interrupt):
        self.bound = (message_class, runtime, error_factory, interrupt)

    def name(self):
        return self._name

    def is_ready(self):
        return self.ready_flag

    def send(self, dst, type, data):
        if len(data) > 1000:
            raise self.bound[2](3, f"message to '{dst}' is {len(data)} bytes, over max_message_bytes=1000")
        self.sent.append((dst, type, bytes(data)))

    def _answer(self, dst, type, data):
        a = self.answers.get((dst, type))
        if a is None:
            return 1, f"no route to '{dst}'"
        if callable(a):
            a = a(data)
        if isinstance(a, tuple):
            return a
        return 0, a

    def request(self, dst, type, data, timeout):
        code, payload = self._answer(dst, type, data)
        if code:
            raise self.bound[2](code, payload)
        return payload

    def request_async(self, dst, type, data, timeout, token):
        self.async_requests.append((dst, type, bytes(data), timeout, token))
        code, payload = self._answer(dst, type, data)
        self.events.append(("reply", token, code, payload))

    def respond(self, dst, type, cookie, ok, data):
        self.responses.append((dst, type, cookie, ok, bytes(data)))

    def log(self, level, plugin, text):
        self.logs.append((level, plugin, text))

    def take(self, max):
        msgs = [self.inbox.popleft() for _ in range(min(max, len(self.inbox)))]
        events, self.events = self.events, []
        return msgs, events, bool(self.inbox)

    def control(self, op, text):
        self.controls.append((op, text))

    # -- pub/sub: the node's rules in miniature (the real ones are TopicRules in Swift) --
    def _bad(self, value, rule):
        raise self.bound[2](20, f"'{value}': {rule}")

    def _check(self, value, pattern):
        if not value:
            self._bad(value, "empty topic")
        if len(value.encode()) > 256:
            self._bad(value, f"{len(value.encode())} bytes, over max_topic_bytes=256")
        tokens = value.split(".")
        for i, t in enumerate(tokens):
            if not t:
                self._bad(value, "empty token (a leading, trailing or double '.')")
            if ("*" in t or ">" in t) and not pattern:
                self._bad(value, f"wildcard '{t}' in a topic; wildcards belong in subscription patterns")
            if pattern and t == ">" and i != len(tokens) - 1:
                self._bad(value, "'>' must be the last token")
            if pattern and len(t) > 1 and ("*" in t or ">" in t):
                self._bad(value, "a wildcard inside a token; '*' and '>' stand alone")

    def publish(self, topic, data):
        self._check(topic, False)
        self.published.append((topic, bytes(data)))

    def subscribe(self, pattern, queue):
        self._check(pattern, True)
        sid = self.next_sub
        self.next_sub += 1
        self.subs[sid] = (pattern, queue)
        return sid

    def unsubscribe(self, sid):
        self.subs.pop(sid, None)
        self.unsubscribed.append(sid)

    # -- test helpers --
    def deliver(self, src, type, data=b"", request=False):
        cookie = 0
        if request:
            cookie = self.next_cookie
            self.next_cookie += 1
        self.inbox.append((src, type, data, cookie))
        return cookie

    def deliver_publication(self, topic, data=b"", src="pub-node"):
        """Queues a publish event for every subscription whose pattern matches ``topic``."""
        for sid, (pattern, _queue) in list(self.subs.items()):
            if _matches(pattern, topic):
                self.events.append(("publish", sid, topic, src, data))

    def errors(self):
        return [t for level, _, t in self.logs if level >= 40]


class Unreachable(DAgentError):
    pass


def _matches(pattern, topic):
    p, t = pattern.split("."), topic.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(t) > i
        if i >= len(t) or (tok != "*" and tok != t[i]):
            return False
    return len(p) == len(t)
