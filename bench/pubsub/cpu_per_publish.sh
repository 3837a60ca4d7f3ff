#!/bin/bash
# CPU per latency-phase publish at 100 subscribers (docs/performance.md, pub/sub p50):
# starts root, a1, a2 from DAGENT (default .build/release/dagent), runs `dagent-bench fanout`
# with --latency-count 1 and then N (default 3000) and prints, for each, the wall time, a2's
# CPU ticks (/proc, 10 ms each) and the client's task-clock (perf stat). The difference of
# the two runs over N is the CPU one publish to 100 subscribers costs.
set -u
ROOT="$(cd "$(dirname "$0")/../.." && pwd)"
BIN=${1:-$ROOT/.build/release/dagent}; LC=${2:-3000}; D=$(mktemp -d)
P() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
R=$(P); A1=$(P); A2=$(P)
$BIN run --name root --listen tcp://127.0.0.1:$R > $D/root.log 2>&1 & RP=$!
$BIN run --name a1 --role agent --listen tcp://127.0.0.1:$A1 --parent tcp://127.0.0.1:$R > $D/a1.log 2>&1 & A1P=$!
$BIN run --name a2 --role agent --listen tcp://127.0.0.1:$A2 --parent tcp://127.0.0.1:$R > $D/a2.log 2>&1 & A2P=$!
for i in $(seq 1 100); do $BIN tree --via tcp://127.0.0.1:$R --json 2>/dev/null | grep -q '"a2"' && break; sleep 0.1; done
cpu() { awk '{print $14+$15}' /proc/$1/stat; }
for lc in 1 $LC; do
  a=$(cpu $A2P); s=$(date +%s.%N)
  perf stat -x, -e task-clock -o $D/c$lc.stat -- $BIN-bench fanout --system dagent --pub tcp://127.0.0.1:$A1 \
    --sub tcp://127.0.0.1:$A2 --subscribers 100 --count 1 --latency-count $lc --json > $D/c$lc.json
  e=$(date +%s.%N); b=$(cpu $A2P)
  echo "latency-count=$lc wall=$(echo "$e - $s" | bc)s a2_ticks=$((b-a)) client=$(grep task-clock $D/c$lc.stat | cut -d, -f1)ms $(cat $D/c$lc.json)"
done
kill $RP $A1P $A2P
