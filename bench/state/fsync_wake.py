#!/usr/bin/python3
"""What a small WAL-like `pwrite` + `fdatasync` costs on this machine, alone and beside others.

  bench/state/fsync_wake.py [--dir DIR] [--count 300] [--rounds 3] [--json]

Each measurement appends 150-byte records to a zero-filled 1 MiB file (the WAL's preallocated
case: no size change, no journal commit) and prints the p10/p50/p90 of one record's write + sync:

  alone            one process, back to back
  concurrent-2/3   two or three processes on their own files, each record started together
  beside-idle-spin alone, with a lowest-priority (SCHED_IDLE) busy loop running beside it
  variants         beside the busy loop: pwrite + fdatasync, pwritev(RWF_DSYNC), an O_DSYNC fd,
                   O_DIRECT 4 KiB block writes + fdatasync, O_DIRECT | O_DSYNC

The files live in DIR (default: .build/fsync-wake in the repository, on the same filesystem
as the bench's data directories) and are removed afterwards.
(docs/performance.md, "A lone put on this VM: the fsync's wake-up, spinning, flushing".)
"""
import argparse, json, mmap, multiprocessing as mp, os, shutil, statistics, time

REC = 150
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def quantiles(lat):
    lat = sorted(lat)
    return [round(lat[int(len(lat) * q)] / 1000) for q in (0.1, 0.5, 0.9)]


def prepared(path, flags=0):
    fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_TRUNC, 0o644)
    os.pwrite(fd, b"\0" * (1 << 20), 0)
    os.fsync(fd)
    os.close(fd)
    return os.open(path, os.O_RDWR | flags)


def write_sync(path, count, kind="fdatasync", barrier=None):
    flags = {"o_dsync": os.O_DSYNC, "direct": os.O_DIRECT, "direct_dsync": os.O_DIRECT | os.O_DSYNC}.get(kind, 0)
    fd = prepared(path, flags)
    block = mmap.mmap(-1, 8192)   # page-aligned, as O_DIRECT needs
    rec, off, lat = b"x" * REC, 0, []
    for _ in range(count):
        if barrier is not None:
            barrier.wait()
        t = time.perf_counter_ns()
        if kind == "fdatasync":
            os.pwrite(fd, rec, off)
            os.fdatasync(fd)
        elif kind == "rwf_dsync":
            os.pwritev(fd, [rec], off, os.RWF_DSYNC)
        elif kind == "o_dsync":
            os.pwrite(fd, rec, off)
        else:   # rewrite the 4 KiB blocks that hold the new record (the tail block kept in memory)
            start = off // 4096 * 4096
            block[off - start:off - start + REC] = rec
            n = (off + REC - start + 4095) // 4096 * 4096
            os.pwritev(fd, [memoryview(block)[:n]], start)
            if kind == "direct":
                os.fdatasync(fd)
        lat.append(time.perf_counter_ns() - t)
        if (off + REC) // 4096 != off // 4096 and kind.startswith("direct"):
            tail = (off + REC) % 4096
            block[0:tail] = block[4096:4096 + tail]
        off += REC
    os.close(fd)
    return lat


def worker(path, count, barrier, out):
    out.put(statistics.median(write_sync(path, count, barrier=barrier)) / 1000)


def concurrent(d, n, count):
    out, barrier = mp.Queue(), mp.Barrier(n)
    procs = [mp.Process(target=worker, args=(f"{d}/c{i}.log", count, barrier, out)) for i in range(n)]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    return sorted(round(out.get()) for _ in procs)


def idle_spinner():
    os.sched_setscheduler(0, os.SCHED_IDLE, os.sched_param(0))
    while True:
        pass


def measure_round(d, count):
    """One round of every measurement: p10/p50/p90 (or the p50s of concurrent writers) in µs."""
    row = {"alone": quantiles(write_sync(f"{d}/alone.log", count)),
           "concurrent-2": concurrent(d, 2, count), "concurrent-3": concurrent(d, 3, count)}
    spin = mp.Process(target=idle_spinner, daemon=True)
    spin.start()
    time.sleep(0.2)
    try:
        row["beside-idle-spin"] = quantiles(write_sync(f"{d}/spin.log", count))
        row["variants-p50"] = {k: quantiles(write_sync(f"{d}/{k}.log", count, k))[1]
                               for k in ("fdatasync", "rwf_dsync", "o_dsync", "direct", "direct_dsync")}
    finally:
        spin.kill()
        spin.join()
    return row


def main():
    ap = argparse.ArgumentParser(description="What a 150-byte pwrite + fdatasync costs here: alone, "
                                 "concurrent, beside a SCHED_IDLE spinner, and written other ways.")
    ap.add_argument("--dir", default=os.path.join(ROOT, ".build", "fsync-wake"),
                    help="where the scratch files go (removed afterwards)")
    ap.add_argument("--count", type=int, default=300, help="records per measurement (at least 10)")
    ap.add_argument("--rounds", type=int, default=3, help="rounds of every measurement (at least 1)")
    ap.add_argument("--json", action="store_true", help="print one JSON object instead of text")
    a = ap.parse_args()
    if a.count < 10 or a.rounds < 1:
        ap.error(f"--count must be at least 10 and --rounds at least 1 (got {a.count} and {a.rounds})")
    os.makedirs(a.dir, exist_ok=True)
    try:
        load_before, rounds = os.getloadavg(), []
        if not a.json:
            print("load", load_before)
        for r in range(a.rounds):
            row = measure_round(a.dir, a.count)
            rounds.append(row)
            if not a.json:
                print(f"round {r + 1}: alone p10/p50/p90 us", row["alone"], "| concurrent-2 p50", row["concurrent-2"],
                      "| concurrent-3 p50", row["concurrent-3"])
                print(f"round {r + 1}: beside-idle-spin p10/p50/p90 us", row["beside-idle-spin"])
                print(f"round {r + 1}: variants beside the spin, p50 us", row["variants-p50"])
        if a.json:
            print(json.dumps({"load_before": load_before, "load_after": os.getloadavg(), "count": a.count,
                              "rounds": rounds}))
        else:
            print("load", os.getloadavg())
    finally:
        shutil.rmtree(a.dir, ignore_errors=True)


if __name__ == "__main__":
    main()
