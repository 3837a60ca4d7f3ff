"""bench/state/fsync_wake.py measures real pwrite + fdatasync calls on real files (issue 13's
analysis of a lone put rests on it): every measurement is there, the scratch files are removed,
and bad arguments get a clear error."""
import json
import os
import subprocess

from harness import ROOT

SCRIPT = os.path.join(ROOT, "bench", "state", "fsync_wake.py")


def test_one_round_measures_every_variant_and_cleans_up(tmp_path):
    d = tmp_path / "scratch"
    out = subprocess.run(["/usr/bin/python3", SCRIPT, "--dir", str(d), "--count", "10", "--rounds", "1", "--json"],
                         capture_output=True, text=True, timeout=120, check=True).stdout
    report = json.loads(out)
    (row,) = report["rounds"]
    assert len(row["alone"]) == 3 and row["alone"][0] <= row["alone"][1] <= row["alone"][2]
    assert len(row["concurrent-2"]) == 2 and len(row["concurrent-3"]) == 3
    assert set(row["variants-p50"]) == {"fdatasync", "rwf_dsync", "o_dsync", "direct", "direct_dsync"}
    assert all(v > 0 for v in row["variants-p50"].values())
    assert not d.exists()


def test_too_few_records_is_refused():
    r = subprocess.run(["/usr/bin/python3", SCRIPT, "--count", "0"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 2 and "--count must be at least 10" in r.stderr
