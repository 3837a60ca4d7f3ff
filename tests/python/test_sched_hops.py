"""bench/datapath/sched_hops.py groups `perf sched timehist` rows by process (issue 10).

The per-hop table of docs/performance.md ("Round trips: where the time goes per hop") rests on
it: switch-ins, wake-up delay and run time per labelled process, threads summed by process id.
Synthetic timehist rows, so no perf is needed."""
import os
import sys

from harness import ROOT

sys.path.insert(0, os.path.join(ROOT, "bench", "datapath"))
import sched_hops as sh  # noqa: E402

ROWS = """           time    cpu  task name                       wait time  sch delay   run time
                        [tid/pid]                          (msec)     (msec)     (msec)
--------------- ------  ------------------------------  ---------  ---------  ---------
    3208.446268 [0000]  perf[3084]                          0.000      0.000      0.000
    3208.446372 [0000]  <idle>                              0.000      0.000      0.053
    3208.446437 [0000]  NIO-ELT-1-#1[3081/3079]             0.100      0.005      0.016
    3208.446616 [0001]  NIO-ELT-1-#1[3081/3079]             0.090      0.007      0.020
    3208.446700 [0001]  NIO-ELT-0-#0[3082/3079]             0.050      0.009      0.030
    3208.446800 [0000]  nats-server[4001/4000]              0.010      0.017      0.013
""".splitlines()


def test_threads_are_grouped_by_process_and_unlabelled_ones_are_other():
    per, span = sh.parse(ROWS, {"3079": "root", "4000": "hub"})
    assert per["root"]["n"] == 3
    assert per["root"]["delay_us"] == [5.0, 7.0, 9.0]
    assert per["root"]["run_us"] == [16.0, 20.0, 30.0]
    assert per["hub"]["n"] == 1
    assert per["other"]["n"] == 1          # perf itself; <idle> is not a process
    assert abs(span - (3208.446800 - 3208.446268)) < 1e-9


def test_table_gives_medians_and_cpu_per_process():
    per, span = sh.parse(ROWS, {"3079": "root"})
    lines = sh.table(per, span).splitlines()
    root = next(line for line in lines if line.startswith("| root |"))
    assert root == "| root | 3 | 7.0 | 20.0 | 0.1 |"


def test_header_and_garbage_lines_are_skipped():
    per, span = sh.parse(["garbage", "", "--------------- ------"], {})
    assert per == {} and span == 0.0
