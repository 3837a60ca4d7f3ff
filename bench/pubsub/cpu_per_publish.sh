#!/bin/bash
# CPU per latency-phase publish at 100 subscribers (docs/performance.md, pub/sub p50):
# starts root, a1, a2 from DAGENT (default .build/release/dagent), runs `dagent-bench fanout`
# with --latency-count 1 and then N (default 3000) and prints, for each, the wall time, a2's
# CPU ticks (/proc, 10 ms each) and the client's task-clock (perf stat). The difference of
# the two runs over N is the CPU one publish to 100 subscribers costs.
set -u
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN=${1:-$ROOT/.build/release/dagent}; LC=${2:-3000}; D=$(mktemp -d)
. "$ROOT/bench/pubsub/tree.sh"
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
for lc in 1 $LC; do
  a=$(cpu $A2P); s=$(date +%s.%N)
  perf stat -x, -e task-clock -o $D/c$lc.stat -- $BIN-bench fanout --system dagent --pub tcp://127.0.0.1:$A1 \
    --sub tcp://127.0.0.1:$A2 --subscribers 100 --count 1 --latency-count $lc --json > $D/c$lc.json
  e=$(date +%s.%N); b=$(cpu $A2P)
  echo "latency-count=$lc wall=$(echo "$e - $s" | bc)s a2_ticks=$((b-a)) client=$(grep task-clock $D/c$lc.stat | cut -d, -f1)ms $(cat $D/c$lc.json)"
done
kill $RP $A1P $A2P
