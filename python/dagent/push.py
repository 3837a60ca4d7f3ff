"""The push service's Python side: tokens, hooks and server-side publishing.

The WebSocket transport (connections, send queues, fan-out) runs in the Swift
core of the node; the ``push`` plugin (``plugins/push``) is the service that
decides. Users' plugins shape it with hooks::

    from dagent import push

    @push.on_connect
    def who(client):                 # client.user, client.claims, client.remote
        if client.user == "mallory":
            return push.deny("banned")

    @push.on_subscribe
    def only_own(client, topic):
        if topic.startswith("private.") and topic != f"private.{client.user}":
            return push.deny(f"{topic} belongs to someone else")

    @push.on_publish
    def stamp(client, topic, data):  # client is None for server-side publishes
        return push.transform(data=b"[" + client.user.encode() + b"] " + data)

A hook returns None (allow), ``push.deny(reason)`` or, for ``on_publish``,
``push.transform(topic=..., data=...)``; a hook that raises denies. Hooks may be
``async def``. Python runs once per connection, once per subscription and at
most once per published message, never once per delivery.

``push.token(secret, sub=..., topics=[...], pub=[...], ttl=3600)`` makes a
JWT (HS256) for a browser; ``python -m dagent push token`` prints one.
"""

import base64
import inspect
import json
import time

__all__ = ["token", "verify", "TokenError", "on_connect", "on_subscribe", "on_publish", "deny", "transform",
           "Client", "Deny", "Transform", "publish", "matches", "CONTROL_TYPE", "EVENT_TYPE"]

#: Plugin -> gateway requests (reserved type; Sources/DAgentPushGateway/PushNodeService.swift).
CONTROL_TYPE = 0xFFFF0400
#: Gateway -> plugin requests.
EVENT_TYPE = 0xFFFF0401


class TokenError(Exception):
    """A token was refused: missing, malformed, bad signature, expired or bad claims."""


def _jwt():
    try:
        import jwt
    except ImportError as exc:  # pragma: no cover - python3-jwt is installed by scripts/setup
        raise ImportError("dagent.push needs PyJWT (Debian: apt-get install python3-jwt; pip: PyJWT)") from exc
    return jwt


def _patterns(value, what):
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(p, str) and p for p in value):
        raise TokenError(f"claim '{what}' must be a list of topic patterns (got {value!r})")
    return list(value)


def token(secret, sub, topics=(), pub=(), ttl=3600, now=None):
    """A JWT (HS256) for a browser client: ``sub`` (the user), ``exp`` (now + ttl seconds),
    ``topics`` (patterns it may subscribe to) and ``pub`` (topics it may publish to)."""
    if isinstance(secret, str):
        secret = secret.encode()
    if not secret:
        raise ValueError("the push secret is empty")
    if not isinstance(sub, str) or not sub:
        raise ValueError(f"sub must be a non-empty string (got {sub!r})")
    now = int(time.time() if now is None else now)
    claims = {"sub": sub, "iat": now, "exp": now + int(ttl),
              "topics": _patterns(list(topics), "topics"), "pub": _patterns(list(pub), "pub")}
    t = _jwt().encode(claims, secret, algorithm="HS256")
    return t.decode() if isinstance(t, bytes) else t


def verify(secret, tok, leeway=0):
    """The claims of a valid token, or ``TokenError`` saying why it is refused."""
    jwt = _jwt()
    if isinstance(secret, str):
        secret = secret.encode()
    if not tok:
        raise TokenError("no token: connect to /ws?token=JWT (make one with `dagent push token`)")
    try:
        claims = jwt.decode(tok, secret, algorithms=["HS256"], leeway=leeway,
                            options={"require": ["exp", "sub"]})
    except jwt.ExpiredSignatureError:
        raise TokenError("the token has expired") from None
    except jwt.InvalidSignatureError:
        raise TokenError("the token's signature does not match the push secret") from None
    except jwt.MissingRequiredClaimError as exc:
        raise TokenError(f"the token lacks the claim '{exc.claim}'") from None
    except jwt.InvalidTokenError as exc:
        raise TokenError(f"invalid token: {exc}") from None
    if not isinstance(claims.get("sub"), str) or not claims["sub"]:
        raise TokenError("the token's 'sub' must be a non-empty string")
    claims["topics"] = _patterns(claims.get("topics", []), "topics")
    claims["pub"] = _patterns(claims.get("pub", []), "pub")
    return claims


def matches(pattern, topic):
    """NATS-style matching: ``*`` is one token, a final ``>`` one or more."""
    p, t = pattern.split("."), topic.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(t) > i
        if i >= len(t) or (tok != "*" and tok != t[i]):
            return False
    return len(p) == len(t)


def covers(pattern, wanted):
    """True if every topic matched by the pattern ``wanted`` is matched by ``pattern``."""
    p, w = pattern.split("."), wanted.split(".")
    for i, tok in enumerate(p):
        if tok == ">":
            return len(w) > i
        if i >= len(w):
            return False
        if w[i] == ">":
            return False
        if tok != "*" and (w[i] == "*" or tok != w[i]):
            return False
    return len(p) == len(w)


class Deny:
    """A hook's refusal; ``code`` is the error (or close) code the client gets."""

    def __init__(self, reason, code=None):
        self.reason, self.code = str(reason), code

    def __repr__(self):
        return f"push.deny({self.reason!r})"


class Transform:
    """An ``on_publish`` hook's rewrite of the topic and/or the data."""

    def __init__(self, topic=None, data=None):
        self.topic, self.data = topic, data


def deny(reason, code=None):
    """Returned by a hook: refuse, with a reason the client sees."""
    return Deny(reason, code)


def transform(topic=None, data=None):
    """Returned by an ``on_publish`` hook: publish this instead (None keeps a part)."""
    return Transform(topic, data)


class Client:
    """A connected browser client as hooks see it."""

    __slots__ = ("id", "user", "claims", "remote", "subscriptions")

    def __init__(self, id, user, claims, remote):
        self.id, self.user, self.claims, self.remote = id, user, claims, remote
        self.subscriptions = set()

    def __repr__(self):
        return f"<push.Client {self.id} user={self.user!r} remote={self.remote}>"


# Hooks by kind: lists of (fn, owner slot). A plugin's hooks go when it is unloaded.
_hooks = {"connect": [], "subscribe": [], "publish": []}
# Set by the push plugin: called with the number of publish hooks whenever it changes (the
# gateway decides client publishes itself, against the token's pub claims, while there are none).
_publish_hooks_changed = None


def _publish_hooks_now():
    cb = _publish_hooks_changed
    if cb is not None:
        cb(len(_hooks["publish"]))


def _register(kind, fn):
    if not callable(fn):
        raise TypeError(f"push.on_{kind} needs a function (got {fn!r})")
    from . import _runtime
    slot = _runtime.current().current_slot() if _runtime._current is not None else 0
    _hooks[kind].append((fn, slot))
    if kind == "publish":
        _publish_hooks_now()
    return fn


def on_connect(fn):
    """``fn(client)`` runs once per connection, after the token was verified."""
    return _register("connect", fn)


def on_subscribe(fn):
    """``fn(client, pattern)`` runs once per subscription, after the token's claims allowed it."""
    return _register("subscribe", fn)


def on_publish(fn):
    """``fn(client, topic, data)`` runs once per publish (client None for ``push.publish``)."""
    return _register("publish", fn)


def _forget_owner(rt, slot, owner=None):
    """A ``Runtime.remove_hooks`` entry: a plugin's push hooks go when it is unloaded."""
    before = len(_hooks["publish"])
    for kind in _hooks:
        _hooks[kind] = [h for h in _hooks[kind] if h[1] != slot]
    if len(_hooks["publish"]) != before:
        _publish_hooks_now()


async def run_hooks(kind, *args):
    """Runs the hooks of ``kind`` in registration order: the first Deny wins; Transforms
    of ``publish`` hooks apply in turn (to ``args[1:]``). Returns Deny, Transform or None."""
    result = None
    args = list(args)
    for fn, _slot in list(_hooks[kind]):
        try:
            r = fn(*args)
            if inspect.isawaitable(r):
                r = await r
        except Exception as exc:  # a raising hook denies, with its message
            return Deny(f"the {kind} hook {getattr(fn, '__name__', fn)} failed: {type(exc).__name__}: {exc}")
        if isinstance(r, Deny):
            return r
        if isinstance(r, Transform) and kind == "publish":
            if r.topic is not None:
                args[1] = r.topic
            if r.data is not None:
                args[2] = r.data.encode() if isinstance(r.data, str) else bytes(r.data)
            result = Transform(args[1], args[2])
    return result


def publish(topic, data):
    """Server-side publish through this node's gateway (history and numbering
    included); the ``on_publish`` hooks run with client None. From a plugin only."""
    from . import _runtime
    from .message import as_bytes
    rt = _runtime.current()
    body = {"op": "publish", "topic": topic, "data_b64": base64.b64encode(as_bytes(data)).decode(), "hooks": True}
    rt.backend.send(rt.backend.name(), EVENT_TYPE, json.dumps(body).encode())
