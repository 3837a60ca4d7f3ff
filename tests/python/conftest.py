"""Fixtures of the real-process suite: a test's processes (``cluster``), a CA and certificates
(``pki``), a tree with mutual TLS (``tls_tree``) or in secret mode (``secret_tree``). The harness
itself is harness.py (Cluster, Proc, RaftGroup)."""
import os
import shutil
import sys
import tempfile

import pytest

sys.path.insert(0, os.path.dirname(__file__))

from harness import PYTHON_DIR, ROOT, Cluster, Proc, dagent_binary, free_port, wait_for  # noqa: E402,F401


@pytest.fixture
def workdir():
    """A temporary directory for the test's logs and data (kept with DAGENT_KEEP_TEST_LOGS=1)."""
    d = tempfile.mkdtemp(prefix="dagent-py-")
    yield d
    if not os.environ.get("DAGENT_KEEP_TEST_LOGS"):
        shutil.rmtree(d, ignore_errors=True)


@pytest.fixture
def cluster(workdir):
    """Real processes for this test (harness.Cluster); all stopped at the end."""
    c = Cluster(workdir)
    yield c
    c.stop_all()


@pytest.fixture
def pki(cluster):
    """A cluster CA and certificates for root (with *.root), echo1, py1 and py2, made by `dagent certs`;
    ``flags(name)`` gives the CLI's --tls-* flags, ``kwargs(name)`` the Python API's tls_* arguments."""
    ca, certs = cluster.path("ca"), cluster.path("certs")
    assert cluster.run("certs", "init", "--out", ca).returncode == 0
    for name, extra in (("root", ["--subtree"]), ("echo1", []), ("py1", []), ("py2", [])):
        r = cluster.run("certs", "issue", "--ca", ca, "--name", name, "--out", certs, *extra)
        assert r.returncode == 0, r.stderr

    def flags(name):
        return ["--tls-cert", f"{certs}/{name}.crt", "--tls-key", f"{certs}/{name}.key", "--tls-ca", f"{ca}/ca.crt"]

    def kwargs(name):
        return {"tls_cert": f"{certs}/{name}.crt", "tls_key": f"{certs}/{name}.key", "tls_ca": f"{ca}/ca.crt"}

    return {"ca": ca, "certs": certs, "flags": flags, "kwargs": kwargs}


@pytest.fixture
def tls_tree(cluster, pki):
    """root (listening, mutual TLS) and echo1 (--echo) under it; the root's address."""
    addr = cluster.addr("root")
    cluster.start_node("root", "--listen", addr, *pki["flags"]("root"))
    cluster.start_node("echo1", "--parent", addr, "--echo", *pki["flags"]("echo1"))
    return addr


@pytest.fixture
def secret_tree(cluster):
    """root (listening) and echo1 (--echo) under it in secret mode: ``addr``, ``secret``, ``secret_file``
    (mode 0600)."""
    secret = "tree-query-secret-0123456789abcdef"
    path = cluster.path("cluster.secret")
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(secret + "\n")
    addr = cluster.addr("root")
    cluster.start_node("root", "--listen", addr, "--secret-file", path)
    cluster.start_node("echo1", "--parent", addr, "--echo", "--secret-file", path)
    return {"addr": addr, "secret": secret, "secret_file": path}
