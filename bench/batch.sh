#!/usr/bin/env bash
# Batch benchmarks (issue 10) for OUR programs: what `salt -b` costs against one publish, with 10
# minions on this host: `salt '*' test.ping` beside `salt -b 10|5|2|1 '*' test.ping` (10, 2, 5
# and 10 slices under one jid). Same set-up as bench/core.sh (bench/lib.sh), markdown rows out.
#
#   bash bench/batch.sh                # RUNS=30 WARMUP=3 by default
#   BIN=/some/release/dir bash bench/batch.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

BIN=${BIN:-$PWD/target/release}
ensure_hyperfine
WORK=$(mktemp -d /tmp/bench-batch.XXXXXX)
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
printf 'root_dir: %s\ninterface: 127.0.0.1\nret_port: %s\n' "$WORK/master" "$PORT" > "$ETC/master"
"$BIN/salt-master" -c "$ETC" -l quiet >"$WORK/master.out" 2>&1 &
PIDS+=("$!")
for _ in $(seq 1 200); do [ -S "$WORK/master/var/run/salt/master/master.sock" ] && break; sleep 0.1; done
for i in $(seq 1 10); do
  mkdir -p "$WORK/etc-minion$i"
  printf 'id: minion%s\nroot_dir: %s\nmaster: 127.0.0.1\nmaster_port: %s\nacceptance_wait_time: 1\n' \
    "$i" "$WORK/root-minion$i" "$PORT" > "$WORK/etc-minion$i/minion"
  "$BIN/salt-minion" -c "$WORK/etc-minion$i" -l quiet >"$WORK/minion$i.out" 2>&1 &
  PIDS+=("$!")
done
for _ in $(seq 1 200); do
  [ "$("$BIN/salt-key" -c "$ETC" -l un 2>/dev/null | grep -c '^minion')" -ge 10 ] && break
  sleep 0.1
done
"$BIN/salt-key" -c "$ETC" -A -y >/dev/null
wait_answers 10 60 "$BIN/salt" -c "$ETC" '*' test.ping --out txt -t 2

time_cmd "salt '*' test.ping (one publish)" "$BIN/salt" -c "$ETC" '*' test.ping
for b in 10 5 2 1; do
  time_cmd "salt -b $b '*' test.ping ($(( (10 + b - 1) / b )) slices or more)" "$BIN/salt" -c "$ETC" -b "$b" '*' test.ping
done

echo
echo "Machine: $(nproc) cores, load average at the end: $(cut -d' ' -f1-3 /proc/loadavg). Warm-up $WARMUP, runs $RUNS."
echo
echo "| 10 minions (ms) | mean | median | min | max | runs | CLI CPU (user+sys) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
cat "$ROWS"
