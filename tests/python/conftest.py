"""Fixtures of the real-process suite. The harness itself is harness.py (Cluster, Proc, RaftGroup)."""
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
