#!/bin/bash
# Profiles the 100-subscriber fan-out (docs/performance.md, pub/sub): perf record -g on a2 (the
# node that fans out) and on the dagent-bench client, perf stat on a2. Prints the directory
# holding a2.top, client.top and a2.stat.
set -u
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="$ROOT/.build/release/dagent"   # swift build -c release --product dagent --product dagent-bench
D=$(mktemp -d)
. "$ROOT/bench/pubsub/tree.sh"
perf record -F 999 -g -p $A2P -o $D/a2.data -- sleep 25 > /dev/null 2>&1 &
PERF=$!
perf stat -e task-clock,context-switches,cpu-migrations -p $A2P -o $D/a2.stat -- sleep 25 &
perf record -F 999 -g -o $D/client.data -- $BIN-bench fanout --system dagent --pub tcp://127.0.0.1:$A1 --sub tcp://127.0.0.1:$A2 --subscribers 100 --count 4000 --latency-count 300 --json
wait $PERF
perf report -i $D/a2.data --no-children --percent-limit 1.5 --stdio 2>/dev/null | grep -v "^$" | grep "%" | head -40 > $D/a2.top
perf report -i $D/client.data --no-children --percent-limit 1.5 --stdio 2>/dev/null | grep "%" | head -30 > $D/client.top
kill $RP $A1P $A2P
echo $D
