# Sourced by the pub/sub profiling scripts: starts root, a1 and a2 (agents under root) from
# $BIN with their logs in $D, sets R/A1/A2 (ports) and RP/A1P/A2P (pids), and waits until
# root sees a2.
P() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
R=$(P); A1=$(P); A2=$(P)
$BIN run --name root --listen tcp://127.0.0.1:$R > $D/root.log 2>&1 & RP=$!
$BIN run --name a1 --role agent --listen tcp://127.0.0.1:$A1 --parent tcp://127.0.0.1:$R > $D/a1.log 2>&1 & A1P=$!
$BIN run --name a2 --role agent --listen tcp://127.0.0.1:$A2 --parent tcp://127.0.0.1:$R > $D/a2.log 2>&1 & A2P=$!
for i in $(seq 1 100); do $BIN tree --via tcp://127.0.0.1:$R --json 2>/dev/null | grep -q '"a2"' && break; sleep 0.1; done
