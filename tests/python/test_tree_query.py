"""`dagent.tree()` from standalone Python (C API `dagent_tree_with` through SWIG) against trees
that demand credentials: mutual TLS (certificate, key, CA; the query's name must be allowed by
the certificate) and secret mode (the cluster secret, given or read from a 0600 file). Without
the credentials the query fails with a clear error; `python -m dagent tree` takes the same flags."""
import subprocess
import sys

import pytest

from harness import PYTHON_DIR, wait_for

sys.path.insert(0, PYTHON_DIR)

import dagent  # noqa: E402
from dagent.errors import InvalidArgument, Unauthenticated  # noqa: E402


def names(report):
    return {n["name"] for n in report["names"]}


def test_tree_with_mutual_tls(cluster, pki, tls_tree):
    tls = pki["kwargs"]("py1")
    # No name given: the query registers as the certificate's name (py1).
    wait_for("echo1 in root's tree over TLS", lambda: "echo1" in names(dagent.tree(tls_tree, json=True, **tls)),
             logs=cluster.logs)
    text = dagent.tree(tls_tree, name="py1", **tls)
    assert "echo1" in text and "root" in text, text
    assert "py1" not in names(dagent.tree(tls_tree, json=True, **tls)), "a query is never added to the tree"
    # A name the certificate does not allow is refused by the node.
    with pytest.raises(dagent.Refused) as info:
        dagent.tree(tls_tree, name="someone", timeout=5.0, **tls)
    assert "does not allow the name 'someone'" in str(info.value)
    # Without a certificate the query reads the node's TLS alert, and says so.
    with pytest.raises(dagent.DAgentError) as info:
        dagent.tree(tls_tree, timeout=5.0)
    assert "the peer speaks TLS" in str(info.value)
    # Half the TLS files: a config error naming what is missing, before any connection.
    with pytest.raises(InvalidArgument) as info:
        dagent.tree(tls_tree, tls_cert=tls["tls_cert"])
    assert "missing tls_key, tls_ca" in str(info.value)
    # The module's CLI takes the same flags.
    r = subprocess.run([sys.executable, "-m", "dagent", "tree", "--via", tls_tree, "--json", *pki["flags"]("py1")],
                       capture_output=True, text=True, cwd=PYTHON_DIR, timeout=30)
    assert r.returncode == 0 and '"echo1"' in r.stdout, r.stderr


def test_tree_in_secret_mode(cluster, secret_tree):
    addr, secret, secret_file = secret_tree["addr"], secret_tree["secret"], secret_tree["secret_file"]
    wait_for("echo1 in root's tree in secret mode",
             lambda: "echo1" in names(dagent.tree(addr, json=True, secret=secret)), logs=cluster.logs)
    assert "echo1" in dagent.tree(addr, secret_file=secret_file, name="py-query")
    # A wrong secret fails the handshake; none at all is refused with the fix.
    with pytest.raises(Unauthenticated) as info:
        dagent.tree(addr, secret="not-the-cluster-secret-0123456789", timeout=5.0)
    assert "did not prove it knows the cluster secret" in str(info.value)
    with pytest.raises(Unauthenticated) as info:
        dagent.tree(addr, timeout=5.0)
    assert "requires the cluster secret" in str(info.value)
    with pytest.raises(InvalidArgument) as info:
        dagent.tree(addr, secret_file=cluster.path("no-such.secret"))
    assert "cannot read the secret file" in str(info.value)
    with pytest.raises(InvalidArgument) as info:
        dagent.tree(addr, secret=secret, secret_file=secret_file)
    assert "secret or secret_file" in str(info.value)
    r = subprocess.run([sys.executable, "-m", "dagent", "tree", "--via", addr, "--secret-file", secret_file],
                       capture_output=True, text=True, cwd=PYTHON_DIR, timeout=30)
    assert r.returncode == 0 and "echo1" in r.stdout, r.stderr


