"""scripts/bench refuses a dagent that the last build did not relink (issue 10).

`swift build -c release --product dagent --product dagent-bench` builds only dagent-bench
(SwiftPM takes the last --product): the shared modules are recompiled and dagent-bench is
linked against them, while dagent stays an older build. Benchmarking that pair measured the
old replicas with the new client: the old replicas answered @state as their node name, the
new client matches answers on (cookie, responder) and dropped them, and every request timed
out. The bench now checks each binary against the object files it links and says what to run.
These tests build a fake SwiftPM bin directory, so they run in a fraction of a second."""
import os
import subprocess

from harness import ROOT

BENCH = os.path.join(ROOT, "scripts", "bench")


def fake_build(tmp_path, stale):
    """A bin dir with dagent and dagent-bench, each with its Objects.LinkFileList; if `stale`,
    dagent is an hour older than a shared object (what the two --product flags leave)."""
    objdir = tmp_path / "DAgentNode.build"
    objdir.mkdir()
    shared = objdir / "Node.swift.o"
    shared.write_bytes(b"\0")
    now = os.path.getmtime(shared)
    for exe in ("dagent", "dagent-bench"):
        path = tmp_path / exe
        path.write_text("#!/bin/sh\nexit 3\n")
        path.chmod(0o755)
        product = tmp_path / f"{exe}.product"
        product.mkdir()
        (product / "Objects.LinkFileList").write_text(f"{shared}\n")
        linked = now - 3600 if (stale and exe == "dagent") else now + 1
        os.utime(path, (linked, linked))
    return str(tmp_path / "dagent")


def run_bench(binary):
    env = dict(os.environ, DAGENT_BIN=binary)
    return subprocess.run([BENCH, "--suite", "python"], env=env, capture_output=True, text=True, timeout=60)


def test_a_dagent_older_than_its_objects_is_refused_with_the_commands_to_run(tmp_path):
    r = run_bench(fake_build(tmp_path, stale=True))
    assert r.returncode != 0
    assert "dagent is older than 1 of the object files it links" in r.stderr, r.stderr
    assert "Node.swift.o" in r.stderr
    assert "swift build -c release --product dagent && swift build -c release --product dagent-bench" in r.stderr
    assert "only the last of several --product flags" in r.stderr


def test_a_relinked_pair_passes_the_check(tmp_path):
    # The fake binaries pass the check; the suite then runs them and fails on their exit code.
    r = run_bench(fake_build(tmp_path, stale=False))
    assert "older than" not in r.stderr, r.stderr
    assert "not relink" not in r.stderr
