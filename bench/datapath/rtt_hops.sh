#!/usr/bin/env bash
# Where a 3-hop round trip's time goes (issue 10), dagent or NATS, in the round-trip phase only:
#
#   DAGENT_BIN=.build/release/dagent bench/datapath/rtt_hops.sh dagent|nats strace|sched [ROUND_TRIPS]
#
# strace: `strace -c -f` attached to each relay (a1, root, a2 / hub, leaf1, leaf2) and the bench
#         run under it: syscalls per process; divide by the round trips (+1,000 warm-up ones).
# sched:  `perf sched record -a` for 2 s of the round trips, then per process (sched_hops.py):
#         switch-ins, wake-up delay and run time per switch-in.
# The tree is the one of scripts/bench --suite tree (root + 2 agents / a hub + 2 leaf nodes).
set -euo pipefail
system=${1:?usage: rtt_hops.sh dagent|nats strace|sched [ROUND_TRIPS]}
mode=${2:?usage: rtt_hops.sh dagent|nats strace|sched [ROUND_TRIPS]}
n=${3:-30000}
here=$(cd "$(dirname "$0")" && pwd)
root=$(cd "$here/../.." && pwd)
D=$(mktemp -d /tmp/dagent-rtt-hops.XXXXXX)
pids=()
cleanup() { for p in "${pids[@]:-}"; do [ -n "$p" ] && kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT
port() { /usr/bin/python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
echo "rtt_hops: $system $mode, $n round trips, files in $D; load: $(uptime)" >&2
if [ "$system" = dagent ]; then
    : "${DAGENT_BIN:?set DAGENT_BIN to a release dagent (dagent-bench next to it)}"
    R=$(port); A1=$(port); A2=$(port)
    "$DAGENT_BIN" run --name root --listen tcp://127.0.0.1:$R > $D/root.log 2>&1 & rp=$!
    "$DAGENT_BIN" run --name a1 --role agent --listen tcp://127.0.0.1:$A1 --parent tcp://127.0.0.1:$R > $D/a1.log 2>&1 & a1p=$!
    "$DAGENT_BIN" run --name a2 --role agent --listen tcp://127.0.0.1:$A2 --parent tcp://127.0.0.1:$R > $D/a2.log 2>&1 & a2p=$!
    pids=($rp $a1p $a2p)
    for _ in $(seq 1 100); do "$DAGENT_BIN" tree --via tcp://127.0.0.1:$R --json 2>/dev/null | grep -q '"a2"' && break; sleep 0.1; done
    bench=("$DAGENT_BIN-bench" pingpong --from tcp://127.0.0.1:$A1 --to tcp://127.0.0.1:$A2 --count 1000 --rtt-count "$n" --json)
    labels=("$rp=root" "$a1p=a1" "$a2p=a2")
elif [ "$system" = nats ]; then
    gcc -O2 -o $D/natsbench "$root/bench/nats/natsbench.c"
    H=$(port); HL=$(port); L1=$(port); L2=$(port)
    for c in hub leaf1 leaf2; do
        sed -e "s/@HUB_PORT@/$H/g" -e "s/@HUB_LEAF_PORT@/$HL/g" -e "s/@LEAF1_PORT@/$L1/g" -e "s/@LEAF2_PORT@/$L2/g" \
            "$root/bench/nats/$c.conf" > $D/$c.conf
    done
    nats-server -c $D/hub.conf -l $D/hub.log & hp=$!
    for _ in $(seq 1 100); do (exec 3<>/dev/tcp/127.0.0.1/$H) 2>/dev/null && break; sleep 0.05; done
    nats-server -c $D/leaf1.conf -l $D/leaf1.log & l1p=$!
    nats-server -c $D/leaf2.conf -l $D/leaf2.log & l2p=$!
    pids=($hp $l1p $l2p)
    for _ in $(seq 1 200); do grep -q "Leafnode connection created" $D/leaf1.log 2>/dev/null && grep -q "Leafnode connection created" $D/leaf2.log 2>/dev/null && break; sleep 0.05; done
    bench=($D/natsbench --a nats://127.0.0.1:$L1 --b nats://127.0.0.1:$L2 --size 64 --count "$n" --rtt-count "$n" --json)
    labels=("$hp=hub" "$l1p=leaf1" "$l2p=leaf2")
else
    echo "rtt_hops: unknown system '$system' (dagent or nats)" >&2; exit 2
fi
case $mode in
    strace)
        tracers=()
        for p in "${pids[@]}"; do strace -c -f -o $D/strace.$p -p $p 2>/dev/null & tracers+=($!); done
        sleep 1
        strace -c -f -o $D/strace.bench "${bench[@]}"
        sleep 0.5
        for t in "${tracers[@]}"; do kill -INT $t; done
        wait "${tracers[@]}" 2>/dev/null || true
        for l in "${labels[@]}" bench=bench; do
            echo "== ${l#*=}"; head -12 $D/strace.${l%%=*}
        done ;;
    sched)
        "${bench[@]}" & bp=$!
        sleep 1.5
        perf sched record -a -o $D/sched.data -- sleep 2 > /dev/null 2>&1
        wait $bp
        /usr/bin/python3 "$here/sched_hops.py" $D/sched.data "${labels[@]}" "$bp=bench" ;;
    *) echo "rtt_hops: unknown mode '$mode' (strace or sched)" >&2; exit 2 ;;
esac
echo "rtt_hops: done; load: $(uptime)" >&2
