"""The 100-subscriber latency phase alone, several dagent builds against NATS in one run.

    /usr/bin/python3 bench/pubsub/latency_ab.py OLD/dagent,NEW/dagent ROUNDS [SUBSCRIBERS]

Starts one tree (root + a1 + a2) per build and one NATS hub + 2 leaves, then per round runs
`dagent-bench fanout` (1,000 measured publishes one at a time, a 2,000-message throughput
phase that is not reported) against each tree and NATS, alternating. Prints each round's
p50 and the medians: a quicker, paired look at the p50 than `scripts/bench --suite pubsub`.
"""
import contextlib
import os
import statistics
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import pubsub_bench as pb  # noqa: E402  (it puts bench/ on the path for benchlib)


def main():
    bins = sys.argv[1].split(",")
    rounds = int(sys.argv[2])
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 100
    res = {}
    with contextlib.ExitStack() as st:
        logdir = tempfile.mkdtemp(prefix="dagent-latency-ab.")
        trees = [st.enter_context(pb.DAgentTree(b, logdir)) for b in bins]
        nats = st.enter_context(pb.NATS(logdir))
        for r in range(rounds):
            for b, t in zip(bins, trees):
                res.setdefault(b, []).append(pb.fanout(b, "dagent", t.a1, t.a2, n, 2000, 1000, 1000, 64)["p50_us"])
            res.setdefault("nats", []).append(pb.fanout(bins[0], "nats", nats.leaf1, nats.leaf2, n, 2000, 1000, 1000, 64)["p50_us"])
            print(f"round {r + 1}:", {k: v[-1] for k, v in res.items()}, flush=True)
    for k, v in res.items():
        print(f"{k}: median p50 {statistics.median(v):.1f} us over {len(v)} rounds {v}")


if __name__ == "__main__":
    main()
