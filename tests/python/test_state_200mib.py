"""The root group with 200 MiB of state (issue 13), as `scripts/bench --suite bigstate` runs it:
three replicas with one down during a 200 MiB load, a chunked backup from a follower with its
checksum, the replica that was down catching up by chunked InstallSnapshot and serving the
leader's values, and the backup restored into a new group at the same revision with the same
values. Every step raises (SystemExit) on a wrong result; this test fails on any of them."""
import argparse
import os
import sys

import pytest

from harness import dagent_binary, free_port

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "scripts"))
from bench_bigstate import bench_bigstate  # noqa: E402


@pytest.mark.timeout(900)
def test_200_mib_backup_restore_and_catch_up_by_snapshot(workdir):
    args = argparse.Namespace(bigstate_mib=200, bigstate_snapshot_entries=200)
    res = bench_bigstate(dagent_binary(), workdir, args, free_port)
    assert res["puts"] * res["value_bytes"] >= 200 * 2**20
    assert res["backup_bytes"] >= 200 * 2**20, res
    assert res["backup_checksum"].startswith("crc32c:"), res
    for step in ("load_s", "backup_s", "catchup_s", "restore_s"):
        print(f"{step}: {res[step]:.1f} s")
