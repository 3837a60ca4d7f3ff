#!/usr/bin/python3
"""Per-process scheduling of a round trip's hops (issue 10): from `perf sched timehist` of a
`perf sched record -a` file, how often each labelled process was switched in, the delay from its
wake-up to running (the wake-up latency) and how long it ran each time (its work per hop).

    sched_hops.py SCHED.DATA PID=LABEL [PID=LABEL ...]

Threads are grouped by process id; processes not labelled are summed as `other`."""
import collections
import re
import statistics
import subprocess
import sys

LINE = re.compile(r'^\s*([\d.]+)\s+\[(\d+)\]\s+(.*?)\s+([\d.]+)\s+([\d.]+)\s+([\d.]+)\s*$')
TASK = re.compile(r'\[(\d+)(?:/(\d+))?\]')


def parse(lines, labels):
    """Rows of `perf sched timehist` -> {label: {"n", "delay_us": [...], "run_us": [...]}} and the span (s)."""
    per = collections.defaultdict(lambda: {"n": 0, "delay_us": [], "run_us": []})
    first = last = None
    for line in lines:
        m = LINE.match(line)
        if not m:
            continue
        t, _cpu, task, _wait, delay, run = m.groups()
        first = float(t) if first is None else first
        last = float(t)
        if task.startswith("<idle>"):
            continue
        ids = TASK.search(task)
        if not ids:
            continue
        pid = ids.group(2) or ids.group(1)
        label = labels.get(pid, "other")
        p = per[label]
        p["n"] += 1
        p["delay_us"].append(float(delay) * 1000)
        p["run_us"].append(float(run) * 1000)
    return dict(per), (last - first if first is not None else 0.0)


def table(per, span):
    out = [f"span {span:.3f} s",
           "| process | switch-ins | wake-up delay p50 (µs) | run p50 per switch-in (µs) | CPU (ms) |",
           "|---|---|---|---|---|"]
    for label, p in sorted(per.items()):
        out.append(f"| {label} | {p['n']} | {statistics.median(p['delay_us']):.1f} | "
                   f"{statistics.median(p['run_us']):.1f} | {sum(p['run_us']) / 1000:.1f} |")
    return "\n".join(out)


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    labels = {}
    for arg in sys.argv[2:]:
        pid, sep, label = arg.partition("=")
        if not sep or not pid.isdigit() or not label:
            sys.exit(f"sched_hops.py: bad PID=LABEL argument: {arg!r}")
        labels[pid] = label
    r = subprocess.run(["perf", "sched", "timehist", "-i", sys.argv[1]], capture_output=True, text=True)
    if r.returncode != 0:
        sys.exit(f"sched_hops.py: perf sched timehist failed: {r.stderr.strip()[-300:]}")
    print(table(*parse(r.stdout.splitlines(), labels)))


if __name__ == "__main__":
    main()
