#!/usr/bin/env bash
# Where the data path's time goes (issue 10): one round of a scripts/bench suite, 64 B, with
# `perf record -g` attached to the processes that carry the messages for their whole life.
#
#   DAGENT_BIN=.build/release/dagent bench/datapath/profile.sh tree|p2p|python [OUTDIR]
#
# tree:   the pingpong endpoints (dagent-bench) and the three relays (a1, root, a2)
# p2p:    the first brother pingpong of the round (both brothers, msgq loops, one process);
#         2026-12-01 it attached too late to that short-lived process and recorded nothing
# python: the dagent-bench python process (the node's loop and the plugin thread)
# Prints `perf report --no-children` (top symbols, and the split by shared object) of each.
set -euo pipefail
suite=${1:?usage: profile.sh tree|p2p|python [OUTDIR]}
out=${2:-$(mktemp -d /tmp/dagent-profile.XXXXXX)}
root=$(cd "$(dirname "$0")/../.." && pwd)
: "${DAGENT_BIN:?set DAGENT_BIN to a release dagent (dagent-bench next to it)}"
mkdir -p "$out"
echo "profile: $suite, perf data in $out; load: $(uptime)" >&2
extra=()
[ "$suite" = python ] && extra=(--count 200000)
"$root/scripts/bench" --suite "$suite" --rounds 1 --sizes 64 "${extra[@]}" > "$out/bench.txt" 2> "$out/bench.log" &
bench=$!
case $suite in
    tree) pattern="dagent-bench pingpong" ;;
    p2p) pattern="dagent-bench pingpong --from msgq" ;;
    python) pattern="dagent-bench python" ;;
    *) echo "profile: unknown suite '$suite'" >&2; exit 2 ;;
esac
until pid=$(pgrep -f "$pattern" | head -1) && [ -n "$pid" ]; do
    kill -0 $bench 2>/dev/null || { echo "profile: the bench ended before '$pattern' started" >&2; cat "$out/bench.log" >&2; exit 1; }
    sleep 0.1
done
perfs=()
perf record -q -g -o "$out/endpoint.data" -p "$pid" > /dev/null 2>&1 & perfs+=($!)
if [ "$suite" = tree ]; then
    for name in a1 root a2; do
        rpid=$(pgrep -f -- "dagent run --name $name " | head -1)
        perf record -q -g -o "$out/relay-$name.data" -p "$rpid" > /dev/null 2>&1 & perfs+=($!)
    done
fi
while kill -0 "$pid" 2>/dev/null; do sleep 0.2; done
for p in "${perfs[@]}"; do kill -INT "$p" 2>/dev/null || true; done
wait "${perfs[@]}" 2>/dev/null || true
wait $bench || true
for data in "$out"/*.data; do
    echo "=== $(basename "$data" .data): by shared object"
    perf report -i "$data" --no-children --sort dso --stdio 2>/dev/null | grep -v '^#' | grep -v '^$' | head -8
    echo "=== $(basename "$data" .data): top symbols"
    perf report -i "$data" --no-children --sort sym --stdio -g none 2>/dev/null | grep -v '^#' | grep -v '^$' | head -25
done
cat "$out/bench.txt"
