#!/usr/bin/python3
"""CPU per message of the threads of one `dagent-bench python` run.

    bench/python/plugin_cpu.py DAGENT_BENCH [--count N] [--rounds R] [--python-path DIR]

Runs the bench once and reads its threads' utime+stime (and voluntary context switches) from
/proc/PID/task/*/stat every ~2 ms until it exits. Prints one JSON line: the bench's own figures,
the plugin thread's (`dagent-python`) CPU per Python message, and the event loop's CPU per
message in the native and in the Python rounds (a sampling interval counts as Python when the
plugin thread's CPU moved within +-15 samples of it). Per-message figures include the warm-up
round (min(count, 50000) messages of each kind) and the interpreter's start-up (measure it with
--count 10). The kernel counts CPU in ticks (10 ms here): use a large --count.
"""
import argparse
import json
import os
import subprocess
import time


def thread_times(pid):
    """{tid: (name, cpu seconds, voluntary switches)} of the live threads of `pid`."""
    tck = os.sysconf("SC_CLK_TCK")
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            st = open(f"/proc/{pid}/task/{tid}/stat").read()
            vol = 0
            for line in open(f"/proc/{pid}/task/{tid}/status"):
                if line.startswith("voluntary_ctxt_switches"):
                    vol = int(line.split()[1])
        except OSError:
            continue
        name = st[st.index("(") + 1:st.rindex(")")]
        f = st[st.rindex(")") + 2:].split()
        out[tid] = (name, (int(f[11]) + int(f[12])) / tck, vol)
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("bench")
    ap.add_argument("--count", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--python-path", default=os.path.join(os.path.dirname(__file__), "..", "..", "python"))
    a = ap.parse_args()
    p = subprocess.Popen([a.bench, "python", "--count", str(a.count), "--rounds", str(a.rounds), "--json",
                          "--python-path", os.path.abspath(a.python_path)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    samples = []   # (loop cpu, plugin cpu)
    last = {}
    while p.poll() is None:
        try:
            now = thread_times(p.pid)
        except OSError:
            break
        last.update(now)
        # from every thread seen so far (one that has exited keeps its last figure): monotonic
        loop = sum(c for n, c, _ in last.values() if n.startswith("NIO-ELT"))
        py = sum(c for n, c, _ in last.values() if n.startswith("dagent-python"))
        samples.append((loop, py))
        time.sleep(0.002)
    out, err = p.communicate()
    if p.returncode != 0 or not out.strip():
        raise SystemExit(f"the bench failed (exit {p.returncode}): {err.strip()[-2000:]}")
    res = json.loads(out.strip().splitlines()[-1])
    msgs = min(a.count, 50_000) + a.rounds * a.count   # per kind of round
    w = 15
    loop_cpu = {True: 0.0, False: 0.0}
    for i in range(1, len(samples)):
        lo, hi = max(0, i - w), min(len(samples) - 1, i + w)
        loop_cpu[samples[hi][1] - samples[lo][1] > 0] += samples[i][0] - samples[i - 1][0]
    py_total = sum(c for n, c, _ in last.values() if n.startswith("dagent-python"))
    res["plugin_thread_us_per_msg"] = round(py_total / msgs * 1e6, 3)
    res["loop_us_per_msg_native"] = round(loop_cpu[False] / msgs * 1e6, 3)
    res["loop_us_per_msg_python"] = round(loop_cpu[True] / msgs * 1e6, 3)
    res["threads"] = sorted(([n, round(c, 2), v] for n, c, v in last.values()), key=lambda t: -t[1])[:3]
    print(json.dumps(res))


if __name__ == "__main__":
    main()
