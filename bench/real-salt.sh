#!/usr/bin/env bash
# Core benchmarks (issue 2) for REAL Salt (3008.4 from PyPI), the same figures as bench/core.sh
# measured by the same code (bench/lib.sh): `salt '*' test.ping` latency with 1 and 10 minions,
# `salt --version`, and the resident memory of the idle master and minion.
#
# The master and minion1 come from /work/shared/tools/real-salt.sh (installed into a venv under
# BASE on first use) with JOB_CACHE=local_cache, Salt's default and ours, so no database is used;
# minion2..minion10 get their own config and root dirs next to minion1's. All on loopback, on
# free ports; everything started here is stopped on exit (real-salt.sh stop).
#
#   bash bench/real-salt.sh            # RUNS=30 WARMUP=3 IDLE_SECS=5 by default
#   BASE=/var/tmp/other bash bench/real-salt.sh
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

REAL_SALT_SH=${REAL_SALT_SH:-/work/shared/tools/real-salt.sh}
export BASE=${BASE:-/var/tmp/real-salt-bench}
export JOB_CACHE=local_cache MINION_ID=minion1
export PUB_PORT=${PUB_PORT:-$(free_port)}
export RET_PORT=${RET_PORT:-$(free_port)}
VENV=$BASE/venv
ETC=$BASE/etc
SALT=$VENV/bin/salt

ensure_hyperfine
[ -x "$SALT" ] || bash "$REAL_SALT_SH" install >&2

WORK=$(mktemp -d /tmp/bench-real-salt.XXXXXX)
ROWS=$WORK/rows MEM_ROWS=$WORK/mem_rows
: > "$ROWS"; : > "$MEM_ROWS"

cleanup() {
  bash "$REAL_SALT_SH" stop >&2 || true
  rm -rf "$WORK"
}
trap cleanup EXIT

# A fresh master and minions: stale accepted keys of minions from an earlier run would make '*'
# wait for them. The venv is kept.
bash "$REAL_SALT_SH" stop >&2
rm -rf "$BASE/root" "$ETC"
bash "$REAL_SALT_SH" conf >&2
log "starting the real master and minion1 (pub $PUB_PORT, ret $RET_PORT)"
bash "$REAL_SALT_SH" start >&2
MASTER_PID=$(cat "$BASE/root/master/var/run/salt-master.pid")
minion_pid() { cat "$BASE/root/$1/var/run/salt-minion.pid"; }

# ping N: checks that '*' test.ping gets N answers, then times it.
ping() {
  wait_answers "$1" 1 "$SALT" -c "$ETC" '*' test.ping --out txt
  time_cmd "salt '*' test.ping, $1 minion$([ "$1" = 1 ] || echo s)" "$SALT" -c "$ETC" '*' test.ping
}

log "1 minion"
ping 1
sleep "$IDLE_SECS"
rss_row "master, 1 minion connected" "$MASTER_PID"
rss_row "minion (minion1)" "$(minion_pid minion1)"

log "starting minion2..minion10"
start_real_salt_minions 2 10
# The master has auto_accept: True; the minions only need time to start and authenticate.
wait_answers 10 120 "$SALT" -c "$ETC" '*' test.ping --out txt -t 5

log "10 minions"
ping 10
time_cmd "salt --version (CLI start-up)" "$SALT" --version
sleep "$IDLE_SECS"
rss_row "master, 10 minions connected" "$MASTER_PID"
rss_row "minion (minion1, after the 10-minion runs)" "$(minion_pid minion1)"

print_tables "Real Salt ($("$SALT" --version)), master_job_cache local_cache (default)"
