#!/bin/bash
# Profiles the 100-subscriber fan-out (docs/performance.md, pub/sub): perf record -g on a2 (the
# node that fans out) and on the dagent-bench client, perf stat on a2. Prints the directory
# holding a2.top, client.top and a2.stat.
set -u
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN="$ROOT/.build/release/dagent"   # swift build -c release --product dagent --product dagent-bench
D=$(mktemp -d)
P() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
R=$(P); A1=$(P); A2=$(P)
$BIN run --name root --listen tcp://127.0.0.1:$R > $D/root.log 2>&1 & RP=$!
$BIN run --name a1 --role agent --listen tcp://127.0.0.1:$A1 --parent tcp://127.0.0.1:$R > $D/a1.log 2>&1 & A1P=$!
$BIN run --name a2 --role agent --listen tcp://127.0.0.1:$A2 --parent tcp://127.0.0.1:$R > $D/a2.log 2>&1 & A2P=$!
for i in $(seq 1 100); do $BIN tree --via tcp://127.0.0.1:$R --json 2>/dev/null | grep -q '"a2"' && break; sleep 0.1; done
perf record -F 999 -g -p $A2P -o $D/a2.data -- sleep 25 > /dev/null 2>&1 &
PERF=$!
perf stat -e task-clock,context-switches,cpu-migrations -p $A2P -o $D/a2.stat -- sleep 25 &
perf record -F 999 -g -o $D/client.data -- $BIN-bench fanout --system dagent --pub tcp://127.0.0.1:$A1 --sub tcp://127.0.0.1:$A2 --subscribers 100 --count 4000 --latency-count 300 --json
wait $PERF
perf report -i $D/a2.data --no-children --percent-limit 1.5 --stdio 2>/dev/null | grep -v "^$" | grep "%" | head -40 > $D/a2.top
perf report -i $D/client.data --no-children --percent-limit 1.5 --stdio 2>/dev/null | grep "%" | head -30 > $D/client.top
kill $RP $A1P $A2P
echo $D
