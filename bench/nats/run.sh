#!/usr/bin/env bash
# NATS peer benchmark: hub + 2 leaf nodes on loopback, client A on leaf1, client B on leaf2.
# Path measured: A -> leaf1 -> hub -> leaf2 -> B (and back for round trips).
#
# Usage: bench/nats/run.sh [--count N] [--rtt-count N] [--sizes "64 1024"] [--port-base P]
#   --count N      stream messages per size (default 200000)
#   --rtt-count N  measured round trips per size (default 20000, capped at --count)
#   --sizes LIST   payload sizes in bytes (default "64 1024")
#   --port-base P  use ports P..P+3 (default: a random free block)
#   --tls DIR      mutual TLS on every connection (clients and leafnodes); DIR holds ca.crt and
#                  nats-hub, nats-leaf1, nats-leaf2 (SAN localhost) and natsbench .crt/.key files
# Prints one JSON line per size on stdout; progress goes to stderr.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
COUNT=200000
RTT_COUNT=20000
SIZES="64 1024"
PORT_BASE=""
TLS_DIR=""

die() { echo "run.sh: error: $*" >&2; exit 1; }
log() { echo "run.sh: $*" >&2; }

while [ $# -gt 0 ]; do
    case "$1" in
        --count) COUNT="${2:?--count needs a value}"; shift 2 ;;
        --rtt-count) RTT_COUNT="${2:?--rtt-count needs a value}"; shift 2 ;;
        --sizes) SIZES="${2:?--sizes needs a value}"; shift 2 ;;
        --port-base) PORT_BASE="${2:?--port-base needs a value}"; shift 2 ;;
        --tls) TLS_DIR="${2:?--tls needs a directory}"; shift 2 ;;
        -h|--help) sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 0 ;;
        *) die "unknown argument: $1 (see --help)" ;;
    esac
done
[[ "$COUNT" =~ ^[0-9]+$ && "$COUNT" -gt 0 ]] || die "--count must be a positive integer"
[[ "$RTT_COUNT" =~ ^[0-9]+$ && "$RTT_COUNT" -gt 0 ]] || die "--rtt-count must be a positive integer"
[ "$RTT_COUNT" -gt "$COUNT" ] && RTT_COUNT="$COUNT"
[ -n "${SIZES// /}" ] || die "--sizes is empty"
for size in $SIZES; do
    [[ "$size" =~ ^[0-9]+$ && "$size" -gt 0 ]] || die "bad size: $size (positive integer bytes)"
done

NATS_SERVER="$(command -v nats-server || true)"
[ -n "$NATS_SERVER" ] || die "nats-server not found in PATH (install it: apt-get install -y nats-server)"
command -v gcc >/dev/null || die "gcc not found in PATH"

START_TS=$(date +%s.%N)
elapsed() { awk -v s="$START_TS" -v e="$(date +%s.%N)" 'BEGIN{printf "%.1f", e-s}'; }
WORK="$(mktemp -d -t natsbench.XXXXXX)"
PIDS=()
BENCH_PID=""
cleanup() {
    local rc=$?
    [ -n "$BENCH_PID" ] && kill "$BENCH_PID" 2>/dev/null || true
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] && kill "$pid" 2>/dev/null || true
    done
    for pid in "${PIDS[@]:-}"; do
        [ -n "$pid" ] && wait "$pid" 2>/dev/null || true
    done
    if [ "$rc" -ne 0 ]; then
        for f in "$WORK"/*.log; do
            [ -f "$f" ] || continue
            echo "---- last lines of $(basename "$f") ----" >&2
            tail -n 15 "$f" >&2
        done
    fi
    rm -rf "$WORK"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- build ----
log "building natsbench"
TLS_ARGS=()
CONF_SUFFIX=""
if [ -n "$TLS_DIR" ]; then
    for f in ca.crt nats-hub.crt nats-hub.key nats-leaf1.crt nats-leaf1.key nats-leaf2.crt nats-leaf2.key natsbench.crt natsbench.key; do
        [ -f "$TLS_DIR/$f" ] || die "--tls $TLS_DIR: missing $f"
    done
    gcc -O2 -Wall -DNATSBENCH_TLS -o "$WORK/natsbench" "$HERE/natsbench.c" -lssl -lcrypto || die "failed to compile natsbench.c with TLS (libssl-dev?)"
    TLS_ARGS=(--tls-ca "$TLS_DIR/ca.crt" --tls-cert "$TLS_DIR/natsbench.crt" --tls-key "$TLS_DIR/natsbench.key")
    CONF_SUFFIX="-tls"
else
    gcc -O2 -Wall -o "$WORK/natsbench" "$HERE/natsbench.c" || die "failed to compile natsbench.c"
fi

# ---- pick ports ----
port_in_use() { ss -Hltn "sport = :$1" 2>/dev/null | grep -q . ; }
block_free() {
    local b=$1 i
    for i in 0 1 2 3; do port_in_use $((b + i)) && return 1; done
    return 0
}
if [ -n "$PORT_BASE" ]; then
    [[ "$PORT_BASE" =~ ^[0-9]+$ && "$PORT_BASE" -ge 1024 && "$PORT_BASE" -le 65530 ]] || die "bad --port-base"
    block_free "$PORT_BASE" || die "ports $PORT_BASE..$((PORT_BASE + 3)) are not all free"
else
    # Below the ephemeral range (ip_local_port_range): an outgoing connection of the same run
    # (a dagent node, a client) can take a port from that range between this check and the bind.
    read -r EPHEMERAL_LOW _ < /proc/sys/net/ipv4/ip_local_port_range 2>/dev/null || EPHEMERAL_LOW=32768
    span=$(( (EPHEMERAL_LOW - 20000) / 10 ))
    [ "$span" -ge 50 ] || span=2000   # an unusual range: fall back to the old block
    for _ in $(seq 1 50); do
        cand=$((20000 + (RANDOM % span) * 10))
        if block_free "$cand"; then PORT_BASE=$cand; break; fi
    done
    [ -n "$PORT_BASE" ] || die "could not find 4 free loopback ports"
fi
HUB_PORT=$PORT_BASE
HUB_LEAF_PORT=$((PORT_BASE + 1))
LEAF1_PORT=$((PORT_BASE + 2))
LEAF2_PORT=$((PORT_BASE + 3))
log "ports: hub client $HUB_PORT, hub leafnode $HUB_LEAF_PORT, leaf1 $LEAF1_PORT, leaf2 $LEAF2_PORT"

for n in hub leaf1 leaf2; do
    sed -e "s/@HUB_PORT@/$HUB_PORT/g" -e "s/@HUB_LEAF_PORT@/$HUB_LEAF_PORT/g" \
        -e "s/@LEAF1_PORT@/$LEAF1_PORT/g" -e "s/@LEAF2_PORT@/$LEAF2_PORT/g" -e "s#@CERTS@#$TLS_DIR#g" \
        "$HERE/$n$CONF_SUFFIX.conf" > "$WORK/$n.conf"
done

# ---- start servers ----
start_server() { # name
    "$NATS_SERVER" -c "$WORK/$1.conf" -l "$WORK/$1.log" &
    PIDS+=($!)
    eval "PID_$1=$!"
}
# Wait until 127.0.0.1:port accepts connections (polling with a deadline, no fixed sleeps).
# Client ports: a real TCP connect. Leafnode port ("listen" mode): check the LISTEN socket
# with ss instead, so we don't create a bogus leafnode connection on the hub.
wait_port() { # name pid port [connect|listen]
    local name=$1 pid=$2 port=$3 mode=${4:-connect} deadline=$((SECONDS + 10))
    while :; do
        kill -0 "$pid" 2>/dev/null || die "$name nats-server (pid $pid) exited during startup"
        if [ "$mode" = listen ]; then
            port_in_use "$port" && return 0
        elif (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            return 0
        fi
        [ $SECONDS -lt $deadline ] || die "$name not accepting connections on port $port after 10s"
        sleep 0.02
    done
}
# wait until a log line appears (deadline)
wait_log() { # name pattern what
    local deadline=$((SECONDS + 15))
    until grep -q "$2" "$WORK/$1.log" 2>/dev/null; do
        [ $SECONDS -lt $deadline ] || die "$1: timed out waiting for $3"
        sleep 0.02
    done
}

log "starting hub"
start_server hub
wait_port hub "$PID_hub" "$HUB_PORT"
wait_port hub "$PID_hub" "$HUB_LEAF_PORT" listen
log "starting leaf1, leaf2"
start_server leaf1
start_server leaf2
wait_port leaf1 "$PID_leaf1" "$LEAF1_PORT"
wait_port leaf2 "$PID_leaf2" "$LEAF2_PORT"
wait_log leaf1 "Leafnode connection created" "leafnode connection to hub"
wait_log leaf2 "Leafnode connection created" "leafnode connection to hub"
log "servers ready after $(elapsed)s"

# ---- run ----
for size in $SIZES; do
    log "size $size: $RTT_COUNT round trips + $COUNT stream messages"
    # background + wait so that INT/TERM traps run immediately (cleanup kills it)
    "$WORK/natsbench" --a "nats://127.0.0.1:$LEAF1_PORT" --b "nats://127.0.0.1:$LEAF2_PORT" \
        --size "$size" --count "$COUNT" --rtt-count "$RTT_COUNT" "${TLS_ARGS[@]}" --json &
    BENCH_PID=$!
    wait "$BENCH_PID" || die "natsbench failed for size $size (exit $?)"
    BENCH_PID=""
    for n in hub leaf1 leaf2; do
        eval "p=\$PID_$n"
        kill -0 "$p" 2>/dev/null || die "$n nats-server died during the run"
    done
done
log "done in $(elapsed)s"
