#!/usr/bin/env bash
# Core benchmarks (issue 2) for OUR programs: `salt '*' test.ping` latency with 1 and 10 minions,
# the CLI's start-up time (`salt --version`), and the resident memory of an idle master and minion.
# Starts a master and minions under a throw-away root on a free loopback port, stops them on exit,
# and prints markdown tables. bench/real-salt.sh measures real Salt the same way (bench/lib.sh).
#
#   bash bench/core.sh                 # RUNS=30 WARMUP=3 IDLE_SECS=5 by default
#   RUNS=50 bash bench/core.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

BIN=$PWD/target/release
for p in salt salt-master salt-minion salt-key; do
  if [ ! -x "$BIN/$p" ]; then
    log "building release binaries"
    CARGO_TARGET_DIR=$PWD/target cargo build --release --bins
    break
  fi
done
ensure_hyperfine

WORK=$(mktemp -d /tmp/bench-core.XXXXXX)
ROWS=$WORK/rows MEM_ROWS=$WORK/mem_rows
: > "$ROWS"; : > "$MEM_ROWS"
PORT=$(free_port)
ETC=$WORK/etc
PIDS=()

cleanup() {
  local p
  for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
  for p in "${PIDS[@]}"; do
    for _ in $(seq 1 50); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

mkdir -p "$ETC"
cat > "$ETC/master" <<CONF
root_dir: $WORK/master
interface: 127.0.0.1
ret_port: $PORT
CONF
"$BIN/salt-master" -c "$ETC" -l quiet >"$WORK/master.out" 2>&1 &
MASTER_PID=$!
PIDS+=("$MASTER_PID")
for _ in $(seq 1 200); do [ -S "$WORK/master/var/run/salt/master/master.sock" ] && break; sleep 0.1; done

# ping N: the timed command, after checking that it really gets N answers (a timing of a job that
# waited for a missing minion would measure the timeout instead).
ping() {
  wait_answers "$1" 1 "$BIN/salt" -c "$ETC" '*' test.ping --out txt
  time_cmd "salt '*' test.ping, $1 minion$([ "$1" = 1 ] || echo s)" "$BIN/salt" -c "$ETC" '*' test.ping
}

log "1 minion"
start_minions 1 1
ping 1
sleep "$IDLE_SECS"
rss_row "master, 1 minion connected" "$MASTER_PID"
rss_row "minion (minion1)" "$PID_minion1"

log "10 minions"
start_minions 2 10
ping 10
time_cmd "salt --version (CLI start-up)" "$BIN/salt" --version
sleep "$IDLE_SECS"
rss_row "master, 10 minions connected" "$MASTER_PID"
rss_row "minion (minion1, after the 10-minion runs)" "$PID_minion1"

print_tables "Ours ($("$BIN/salt" --version)), master_job_cache local_cache (default)"
