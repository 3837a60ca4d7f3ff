"""The node's HTTP listener with real processes: /healthz, plugin routes, static files, bad requests."""
import json
import os
import signal
import socket
import subprocess
import urllib.error
import urllib.request

import pytest

from conftest import dagent_binary, free_port, wait_for

HERE = os.path.dirname(os.path.abspath(__file__))
D = dagent_binary()


def fetch(url, data=None, method=None, headers=None):
    req = urllib.request.Request(url, data=data, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=10) as r:
            return r.status, dict(r.headers), r.read()
    except urllib.error.HTTPError as e:
        return e.code, dict(e.headers), e.read()


@pytest.fixture
def agent(workdir):
    port, http = free_port(), free_port()
    p = subprocess.Popen([D, "run", "--name", "web", "--listen", f"tcp://127.0.0.1:{port}", "--http", f"tcp://127.0.0.1:{http}",
                          "--plugins", os.path.join(HERE, "http_plugin")],
                         stderr=open(os.path.join(workdir, "web.log"), "w"))
    base = f"http://127.0.0.1:{http}"
    try:
        wait_for("the plugin's routes", lambda: fetch(base + "/api/hello")[0] == 200)
        yield base
    finally:
        p.send_signal(signal.SIGTERM)
        assert p.wait(timeout=10) == 0


def test_healthz_routes_and_static(agent):
    status, headers, body = fetch(agent + "/healthz")
    assert status == 200 and json.loads(body) == {"name": "web", "ready": True}
    assert json.loads(fetch(agent + "/api/hello?name=bob")[2]) == {"hello": "bob"}
    status, headers, body = fetch(agent + "/api/echo", data=b"payload", method="POST")
    assert (status, body, headers.get("X-Echo")) == (201, b"payload", "yes")
    assert fetch(agent + "/api/later")[2] == b"later"
    assert fetch(agent + "/api/tree/a/b")[2] == b"/api/tree/a/b"
    status, headers, body = fetch(agent + "/www/")
    assert status == 200 and b"static ok" in body and headers["Content-Type"].startswith("text/html")


def test_errors_are_clear(agent):
    status, _, body = fetch(agent + "/api/boom")
    assert status == 500 and b"RuntimeError: kaput" in body
    status, headers, body = fetch(agent + "/api/echo")
    assert status == 405 and headers["Allow"] == "POST" and b"GET is not allowed" in body
    assert fetch(agent + "/nothing")[0] == 404
    status, _, body = fetch(agent + "/www/../web.py")
    assert status in (400, 404) and b"dagent" not in body
    # A body over the limit: refused from its Content-Length, before it is sent (a client that
    # sends it anyway may see the connection reset once the 413 is out).
    host, port = agent[len("http://"):].split(":")
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"POST /api/echo HTTP/1.1\r\nHost: x\r\nContent-Length: 2097152\r\n\r\n")
        answer = s.recv(1000)
        assert answer.startswith(b"HTTP/1.1 413") and b"http_max_body_bytes=1048576" in answer, answer
    # Not HTTP at all: 400, and the listener keeps serving.
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"\x16\x03\x01 hello\r\n\r\n")
        assert s.recv(200).startswith(b"HTTP/1.1 400")
    assert fetch(agent + "/healthz")[0] == 200


def test_http_needs_a_tcp_address(workdir):
    r = subprocess.run([D, "run", "--name", "x", "--listen", "tcp://127.0.0.1:0", "--http", "msgq:///tmp/x"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "not a tcp://HOST:PORT address" in r.stderr
    r = subprocess.run([D, "run", "--name", "x", "--listen", "tcp://127.0.0.1:0", "--http", "tcp://256.1.1.1:80"],
                       capture_output=True, text=True, timeout=20)
    assert r.returncode == 2 and "cannot listen for http" in r.stderr


def test_a_plugin_without_a_listener_gets_a_clear_error(workdir):
    port = free_port()
    p = subprocess.Popen([D, "run", "--name", "nohttp", "--listen", f"tcp://127.0.0.1:{port}",
                          "--plugins", os.path.join(HERE, "http_plugin")],
                         stderr=open(os.path.join(workdir, "nohttp.log"), "w"))
    try:
        wait_for("the plugin failure", lambda: "has no HTTP listener" in open(os.path.join(workdir, "nohttp.log")).read())
    finally:
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=10)
