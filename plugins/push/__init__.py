"""push: the push service of this node's WebSocket gateway (browsers on /ws).

The gateway (Swift) carries the connections, the per-client queues and the
fan-out; this plugin decides: it verifies each connection's token (JWT HS256,
claims ``sub``, ``exp``, ``topics``, ``pub``), authorizes every subscription and
every client publish against the claims, runs the users' hooks
(``dagent.push.on_connect`` / ``on_subscribe`` / ``on_publish``), and gives the
gateway its history, conflation and limits. See docs/push.md.

Config (``plugins.config.push``)::

    secret_file: /etc/dagent/push.secret   # the HS256 secret (whitespace stripped); without it: idle
    history: {"news.>": {size: 100, ttl: 300}}
    conflate: ["metrics.>"]
    limits: {send_queue_bytes: 1048576, max_subscriptions: 100}
"""

import base64
import json
import os

import dagent
from dagent import _runtime, push

LIMIT_KEYS = {"send_queue_bytes": int, "max_frame_bytes": int, "max_subscriptions": int, "max_pending_ops": int,
              "max_topic_bytes": int, "max_clients": int, "plugin_timeout": float, "close_timeout": float,
              "deflate_min_bytes": int}

CONFIG = dagent.Config(
    secret_file=dagent.Option(str, default="", help="file holding the HS256 secret that signs the tokens "
                              "(without it the plugin stays idle and /ws refuses clients with 1013)"),
    history=dagent.Option(dict, default={}, help='per pattern: {size: N, ttl: SECONDS}, e.g. {"news.>": {size: 100}}'),
    conflate=dagent.Option(list, default=[], help="patterns whose topics keep only their latest message for a slow client"),
    limits=dagent.Option(dict, default={}, help=f"gateway limits: {', '.join(LIMIT_KEYS)}"),
    max_history_size=dagent.Option(int, default=10000, min=1, help="largest history size a pattern may ask for"),
    deflate=dagent.Option(bool, default=True, help="permessage-deflate (RFC 7692) for clients that offer it"),
)

_secret = b""
_clients = {}       # client id -> push.Client


def _read_secret(path):
    try:
        with open(path, "rb") as f:
            secret = f.read().strip()
    except OSError as exc:
        raise dagent.ConfigError(f"plugin 'push': cannot read secret_file {path!r}: {exc.strerror}") from None
    if len(secret) < 16:
        raise dagent.ConfigError(f"plugin 'push': the secret in {path!r} is {len(secret)} bytes; use at least 16")
    return secret


def _gateway_config(config):
    history = []
    for pattern, spec in config.history.items():
        if not isinstance(spec, dict) or set(spec) - {"size", "ttl"}:
            raise dagent.ConfigError(f"plugin 'push': history {pattern!r} must be {{size: N, ttl: SECONDS}} (got {spec!r})")
        size, ttl = spec.get("size", 0), spec.get("ttl", 0)
        if not isinstance(size, int) or isinstance(size, bool) or not 0 <= size <= config.max_history_size:
            raise dagent.ConfigError(f"plugin 'push': history {pattern!r}: size must be an integer in 0...{config.max_history_size} "
                                     f"(max_history_size; got {size!r})")
        if not isinstance(ttl, (int, float)) or isinstance(ttl, bool) or ttl < 0:
            raise dagent.ConfigError(f"plugin 'push': history {pattern!r}: ttl must be seconds >= 0 (got {ttl!r})")
        if size == 0 and ttl > 0:
            size = config.max_history_size
        history.append({"pattern": pattern, "size": size, "ttl": ttl})
    for p in config.conflate:
        if not isinstance(p, str):
            raise dagent.ConfigError(f"plugin 'push': conflate entries are topic patterns (got {p!r})")
    limits = {}
    for key, value in config.limits.items():
        if key not in LIMIT_KEYS:
            raise dagent.ConfigError(f"plugin 'push': unknown limit {key!r} (known: {', '.join(LIMIT_KEYS)})")
        kind = LIMIT_KEYS[key]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or (kind is int and not isinstance(value, int)) or value <= 0:
            raise dagent.ConfigError(f"plugin 'push': limit {key} must be a positive {kind.__name__} (got {value!r})")
        limits[key] = value
    return {"op": "configure", "history": history, "conflate": list(config.conflate), "limits": limits,
            "deflate": bool(config.deflate), "publish_hooks": len(push._hooks["publish"])}


def setup(config):
    global _secret
    if not config.secret_file:
        dagent.log.info("push: idle: no plugins.config.push.secret_file (see docs/push.md)")
        return
    _secret = _read_secret(config.secret_file)
    body = _gateway_config(config)
    rt = _runtime.current()
    rt.push_system_cb(push.EVENT_TYPE, _on_event)
    if push._forget_owner not in rt.remove_hooks:
        rt.remove_hooks.append(push._forget_owner)

    def publish_hooks(n):
        # Hooks registered by plugins loaded later: the gateway asks for every publish again.
        try:
            rt.backend.send(dagent.name(), push.CONTROL_TYPE, json.dumps({"op": "hooks", "publish": n}).encode())
        except dagent.DAgentError as exc:
            dagent.log.error("push: cannot tell the gateway about %d publish hook(s): %s", n, exc)
    push._publish_hooks_changed = publish_hooks

    async def attach():
        # Counted when sent: plugins loaded after this one may have added publish hooks.
        body["publish_hooks"] = len(push._hooks["publish"])
        try:
            reply = json.loads(await rt.system_arequest(dagent.name(), push.CONTROL_TYPE, json.dumps(body).encode(), 10))
            dagent.log.info("push gateway attached on %s (epoch %s)", reply.get("path"), reply.get("epoch"))
        except dagent.DAgentError as exc:
            dagent.log.error("push: the gateway of node %s refused the configuration: %s "
                             "(is the node started with an HTTP listener: http: tcp://HOST:PORT?)", dagent.name(), exc)
    dagent.after(0.0001, attach)
    _serve_static()


def _serve_static():
    http = getattr(dagent, "http", None)
    static = getattr(http, "static", None) if http is not None else None
    directory = os.path.join(os.path.dirname(os.path.abspath(__file__)), "static")
    if static is not None:
        static("/push/", directory)


def teardown():
    if not _secret:
        return
    rt = _runtime.current()
    push._publish_hooks_changed = None
    _clients.clear()
    try:
        rt.backend.send(dagent.name(), push.CONTROL_TYPE, json.dumps({"op": "detach"}).encode())
    except dagent.DAgentError:
        pass


def _answer(ok=True, **fields):
    fields["ok"] = ok
    return json.dumps(fields).encode()


async def _on_event(msg):
    ev = json.loads(msg.data)
    op = ev.get("op")
    if op == "connect":
        return await _connect(ev)
    if op == "subscribe":
        return await _subscribe(ev)
    if op == "publish":
        return await _publish(ev)
    if op == "disconnect":
        _clients.pop(ev.get("client"), None)
        return None
    return _answer(False, code=4400, reason=f"unknown push event {op!r}")


async def _connect(ev):
    try:
        claims = push.verify(_secret, ev.get("token"))
    except push.TokenError as exc:
        return _answer(False, code=4001, reason=str(exc))
    client = push.Client(ev["client"], claims["sub"], claims, ev.get("remote", ""))
    verdict = await push.run_hooks("connect", client)
    if isinstance(verdict, push.Deny):
        return _answer(False, code=verdict.code or 4001, reason=verdict.reason)
    _clients[client.id] = client
    # The pub claims let the gateway decide this client's publishes itself while no
    # on_publish hook is registered (no Python per published message then).
    return _answer(True, user=client.user, pub=list(client.claims.get("pub") or []))


async def _subscribe(ev):
    client = _clients.get(ev.get("client"))
    pattern = ev.get("topic", "")
    if client is None:
        return _answer(False, code=4503, reason="the push service does not know this connection (it was reloaded): reconnect")
    if not any(push.covers(p, pattern) for p in client.claims["topics"]):
        return _answer(False, code=4403, reason=f"the token of '{client.user}' does not allow subscribing to '{pattern}' "
                                                f"(topics: {', '.join(client.claims['topics']) or 'none'})")
    verdict = await push.run_hooks("subscribe", client, pattern)
    if isinstance(verdict, push.Deny):
        return _answer(False, code=verdict.code or 4403, reason=verdict.reason)
    client.subscriptions.add(pattern)
    return _answer(True)


async def _publish(ev):
    data = base64.b64decode(ev.get("data_b64", ""))
    topic = ev.get("topic", "")
    client = None
    if "client" in ev:
        client = _clients.get(ev["client"])
        if client is None:
            return _answer(False, code=4503, reason="the push service does not know this connection (it was reloaded): reconnect")
        if not any(push.matches(p, topic) for p in client.claims["pub"]):
            return _answer(False, code=4403, reason=f"the token of '{client.user}' does not allow publishing to '{topic}' "
                                                    f"(pub: {', '.join(client.claims['pub']) or 'none'})")
    verdict = await push.run_hooks("publish", client, topic, data)
    if isinstance(verdict, push.Deny):
        return _answer(False, code=verdict.code or 4403, reason=verdict.reason)
    if isinstance(verdict, push.Transform):
        topic, data = verdict.topic, verdict.data
    if client is None:
        # push.publish from a plugin: hand it to the gateway (one-way).
        body = {"op": "publish", "topic": topic, "data_b64": base64.b64encode(data).decode()}
        _runtime.current().backend.send(dagent.name(), push.CONTROL_TYPE, json.dumps(body).encode())
        return None
    return _answer(True, topic=topic, data_b64=base64.b64encode(data).decode())
