"""Routes and static directories on the node's HTTP listener (``http: tcp://HOST:PORT``).

In a plugin::

    import dagent

    dagent.http.static("/ui/", os.path.join(os.path.dirname(__file__), "static"))

    @dagent.http.route("/api/hello", methods=["GET"])
    def hello(req):
        return {"hello": req.query.get("name", "world")}     # JSON, 200

    @dagent.http.route("/api/echo", methods=["POST"])
    def echo(req):
        return 201, req.body                                  # (status, body)

A handler gets a :class:`Request` and returns a body (``str``, ``bytes``, or
a ``dict``/``list`` sent as JSON), ``(status, body)`` or ``(status, body,
headers)``. It may be ``async``. An exception is a 500 with its type and
message, and is counted against the plugin like any handler error. Routes and
static directories go with the plugin when it is unloaded or reloaded.
"""

import base64
import json
import urllib.parse

from . import _runtime
from .errors import ConfigError

__all__ = ["route", "static", "Request"]


class Request:
    """One HTTP request: ``method``, ``path``, ``query`` (dict), ``raw_query``, ``headers`` (lower-case keys), ``body`` (bytes)."""

    __slots__ = ("method", "path", "query", "raw_query", "headers", "body")

    def __init__(self, method, path, raw_query, headers, body):
        self.method, self.path, self.raw_query, self.headers, self.body = method, path, raw_query, headers, body
        self.query = dict(urllib.parse.parse_qsl(raw_query, keep_blank_values=True))

    def json(self):
        """The body parsed as JSON."""
        return json.loads(self.body)

    def __repr__(self):
        return f"Request({self.method} {self.path})"


def _control(rt, op, payload):
    control = getattr(rt.backend, "control", None)
    if control is None:
        raise ConfigError(f"dagent.http needs the node's HTTP listener, which only plugins of an agent have "
                          f"for now (dagent run --http tcp://HOST:PORT --plugins DIR)")
    err = control(op, json.dumps(payload))
    if err:
        raise ConfigError(err)


def _routes(rt):
    table = getattr(rt, "http_routes", None)
    if table is None:
        table = rt.http_routes = {}
        rt.remove_hooks.append(_drop_owner)
    return table


def _drop_owner(rt, slot, owner):
    table = getattr(rt, "http_routes", {})
    mine = [k for k, v in table.items() if v[1] == slot]
    for k in mine:
        del table[k]
    if getattr(owner, "http_used", False):
        owner.http_used = False
        try:
            _control(rt, "http_drop", {"owner": owner.name})
        except ConfigError:
            pass


def route(path, methods=("GET",)):
    """Decorator: serve ``path`` (exact; end it with ``/*`` for everything below) with this function."""
    methods = [m.upper() for m in ([methods] if isinstance(methods, str) else methods)]
    if not isinstance(path, str) or not path.startswith("/"):
        raise ValueError(f"an HTTP route must be a path starting with '/'; got {path!r}")
    prefix = path.endswith("/*")
    key = path[:-1] if prefix else path

    def register(fn):
        rt = _runtime.current()
        slot = rt.current_slot()
        owner = rt.owner(slot)
        _control(rt, "http_route", {"path": key, "methods": methods, "prefix": prefix, "owner": owner.name})
        owner.http_used = True
        _routes(rt)[key] = (fn, slot)
        return fn
    return register


def static(prefix, directory):
    """Serve the files under ``directory`` at ``prefix`` (GET/HEAD; ``index.html`` for directories)."""
    if not isinstance(prefix, str) or not prefix.startswith("/"):
        raise ValueError(f"a static prefix must be a path starting with '/'; got {prefix!r}")
    if not prefix.endswith("/"):
        prefix += "/"
    import os
    rt = _runtime.current()
    owner = rt.owner(rt.current_slot())
    _control(rt, "http_static", {"prefix": prefix, "dir": os.path.abspath(directory), "owner": owner.name})
    owner.http_used = True
    _routes(rt)


def _encode(result):
    """(``{"status", "headers"}``, body bytes) of what a handler returned."""
    status, headers = 200, {}
    if isinstance(result, tuple):
        if len(result) == 2:
            status, result = result
        elif len(result) == 3:
            status, result, headers = result
        else:
            raise TypeError(f"an HTTP handler returns body, (status, body) or (status, body, headers); got a {len(result)}-tuple")
    if result is None:
        body = b""
    elif isinstance(result, bytes):
        body = result
        headers.setdefault("Content-Type", "application/octet-stream")
    elif isinstance(result, str):
        body = result.encode()
        headers.setdefault("Content-Type", "text/plain; charset=utf-8")
    elif isinstance(result, (dict, list)):
        body = json.dumps(result).encode()
        headers.setdefault("Content-Type", "application/json")
    else:
        raise TypeError(f"an HTTP handler's body must be str, bytes, dict, list or None; got {type(result).__name__}")
    if not isinstance(status, int) or not 100 <= status <= 599:
        raise ValueError(f"HTTP status must be an int in 100...599; got {status!r}")
    return {"status": status, "headers": {str(k): str(v) for k, v in headers.items()}}, body


def _error(status, text):
    return {"status": status, "headers": {"Content-Type": "text/plain; charset=utf-8"}}, text.encode()


def handle(rt, cmd, done):
    """Runs the handler for host command ``cmd``; calls ``done(meta, body)`` (maybe later, for async handlers):
    ``meta`` is ``{"status", "headers"}``, ``body`` the bytes."""
    entry = _routes(rt).get(cmd.get("route"))
    if entry is None:
        done(*_error(404, f"404 Not Found: no Python route at {cmd.get('path')} any more\n"))
        return
    fn, slot = entry
    req = Request(cmd.get("method", "GET"), cmd.get("path", ""), cmd.get("query", ""), cmd.get("headers", {}),
                  base64.b64decode(cmd.get("body", "")))

    def failed(exc):
        rt.report_error(slot, f"http {req.method} {req.path}", exc)
        return _error(500, f"500 Internal Server Error: {type(exc).__name__}: {exc}\n")

    try:
        result = rt.call_as(slot, fn, req)
    except Exception as exc:  # noqa: BLE001 - a plugin's exception is its 500
        done(*failed(exc))
        return
    if hasattr(result, "__await__"):
        async def finish():
            try:
                answer = _encode(await result)
            except Exception as exc:  # noqa: BLE001
                answer = failed(exc)
            done(*answer)
        task = rt.loop.create_task(finish())
        rt.owner(slot).tasks.add(task)
        task.add_done_callback(rt.owner(slot).tasks.discard)
        return
    try:
        answer = _encode(result)
    except Exception as exc:  # noqa: BLE001
        answer = failed(exc)
    done(*answer)
