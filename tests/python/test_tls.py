"""Mutual TLS with real processes: a standalone Python node over TLS (C API + SWIG), a node
YAML config with `tls:`, and raw TLS clients (Python's ssl module) on a TLS listener."""

import os
import socket
import ssl
import sys

import pytest

from harness import PYTHON_DIR, wait_for

sys.path.insert(0, PYTHON_DIR)

import dagent  # noqa: E402


def ready(name, addr, **kw):
    import time
    deadline = time.time() + 20
    while True:
        try:
            node = dagent.Node(name=name, via=addr, ready_timeout=2.0, install=False, **kw)
            break
        except dagent.NotReady:
            if time.time() > deadline:
                raise
    wait_for("echo1 reachable", lambda: node.request("echo1", 1, b"ping", timeout=1.0) == b"ping")
    return node


def test_standalone_python_over_tls(cluster, pki, tls_tree):
    node = ready("py1", tls_tree, **pki["kwargs"]("py1"))
    try:
        assert node.request("echo1", 1, b"over tls", timeout=3.0) == b"over tls"
    finally:
        node.close()


def test_standalone_python_tls_from_a_config_file(cluster, pki, tls_tree):
    cfg = cluster.path("py2.yaml")
    with open(cfg, "w") as f:
        f.write(f"tls:\n  cert: {pki['certs']}/py2.crt\n  key: {pki['certs']}/py2.key\n  ca: {pki['ca']}/ca.crt\n")
    node = ready("py2", tls_tree, config=cfg)
    try:
        assert node.request("echo1", 1, b"from yaml", timeout=3.0) == b"from yaml"
    finally:
        node.close()


def test_standalone_python_with_a_certificate_for_another_name_is_refused(cluster, pki, tls_tree):
    with pytest.raises((dagent.DAgentError, dagent.ConfigError)) as info:
        dagent.Node(name="someone", via=tls_tree, ready_timeout=5.0, install=False, **pki["kwargs"]("py1"))
    assert "does not allow the name 'someone'" in str(info.value)


def test_standalone_python_partial_tls_is_a_config_error(cluster, pki):
    with pytest.raises((dagent.DAgentError, dagent.ConfigError)) as info:
        dagent.Node(name="py1", via="tcp://127.0.0.1:1", install=False, tls_cert=f"{pki['certs']}/py1.crt")
    assert "missing tls_key, tls_ca" in str(info.value)


def _port(addr):
    return int(addr.rsplit(":", 1)[1])


def test_tls_client_without_a_certificate_is_refused(cluster, pki, tls_tree):
    cluster.wait_for("root listens", lambda: "listening on" in cluster.procs["root"].stderr())
    ctx = ssl.create_default_context(cafile=f"{pki['ca']}/ca.crt")
    ctx.check_hostname = False
    ctx.minimum_version = ssl.TLSVersion.TLSv1_3
    with socket.create_connection(("127.0.0.1", _port(tls_tree)), timeout=5) as raw:
        with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
            with ctx.wrap_socket(raw) as tls:
                # TLS 1.3: the server's refusal of a missing client certificate arrives after the
                # client's handshake, on the first read.
                tls.sendall(b"\x00\x00\x00\x02\x08\x01")
                if not tls.recv(16):
                    raise ConnectionError("closed by the node")
    cluster.wait_for("root logs the refusal",
                     lambda: "presented no certificate" in cluster.procs["root"].stderr())


def test_tls_client_with_a_valid_certificate_completes_the_handshake(cluster, pki, tls_tree):
    """The positive control of the test above: the same client with py1's certificate gets through."""
    cluster.wait_for("root listens", lambda: "listening on" in cluster.procs["root"].stderr())
    ctx = ssl.create_default_context(cafile=f"{pki['ca']}/ca.crt")
    ctx.check_hostname = False
    ctx.load_cert_chain(f"{pki['certs']}/py1.crt", f"{pki['certs']}/py1.key")
    with socket.create_connection(("127.0.0.1", _port(tls_tree)), timeout=5) as raw:
        with ctx.wrap_socket(raw) as tls:
            assert tls.version() == "TLSv1.3"
            peer = tls.getpeercert()
            assert ("DNS", "root") in peer["subjectAltName"], peer
