#!/usr/bin/env bash
# Job-cache benchmarks (issue 3), end to end, for OUR programs and for real Salt 3008.4:
#   1. `salt '*' test.ping` (1 minion) with `job_cache: True` (the default) and `job_cache: False`;
#   2. `salt-run jobs.list_jobs` and `salt-run jobs.lookup_jid <jid of a job with 10,000 returns>`
#      against a master whose local_cache holds N jobs (plus that one), for each N in SIZES (ours)
#      and SALT_SIZES (real Salt; its cache is a directory tree read in full by every listing).
# Caches are filled once and kept under DATA: ours by the bench_local_cache example (`--keep`,
# the store's own batch calls), Salt's by bench/salt_local_cache.py (salt.returners.local_cache
# itself), which also prints Salt's returner-level timings (JSON, kept next to the cache). Each
# timed master works on a copy, so the runner jobs it records never change the kept cache.
# Everything runs on loopback, under temporary dirs, and is stopped on exit.
#
#   bash bench/jobs.sh                          # all parts, RUNS=30 WARMUP=3 for ours
#   PARTS=list SIZES="100000" SALT_SIZES="" bash bench/jobs.sh
#
# Knobs: PARTS ("publish list"), SIZES ("1000 10000 100000 1000000"), SALT_SIZES ("1000 10000
# 100000"), DATA (/var/tmp/bench-jobs), RUNS/WARMUP (ours), SALT_RUNS/SALT_WARMUP (Salt: 10/1,
# 3/0 for list_jobs at 100,000 jobs and more, where one run takes many seconds), BASE (the
# real-salt venv's base, /var/tmp/real-salt-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

PARTS=${PARTS:-publish list}
SIZES=${SIZES-1000 10000 100000 1000000}
SALT_SIZES=${SALT_SIZES-1000 10000 100000}
DATA=${DATA:-/var/tmp/bench-jobs}
SALT_RUNS=${SALT_RUNS:-10}
SALT_WARMUP=${SALT_WARMUP:-1}
BIG_RETURNS=10000
REAL_SALT_SH=${REAL_SALT_SH:-/work/shared/tools/real-salt.sh}
export BASE=${BASE:-/var/tmp/real-salt-bench}
VENV=$BASE/venv

BIN=$PWD/target/release
EXAMPLE=$BIN/examples/bench_local_cache
if [ ! -x "$BIN/salt-run" ] || [ ! -x "$EXAMPLE" ]; then
  log "building release binaries and the bench_local_cache example"
  CARGO_TARGET_DIR=$PWD/target cargo build --release --bins
  CARGO_TARGET_DIR=$PWD/target cargo build --release -p salt-returners --example bench_local_cache
fi
ensure_hyperfine
[ -x "$VENV/bin/salt" ] || bash "$REAL_SALT_SH" install >&2
mkdir -p "$DATA"

WORK=$(mktemp -d /tmp/bench-jobs.XXXXXX)
ROWS=$WORK/rows MEM_ROWS=$WORK/mem_rows
: > "$ROWS"; : > "$MEM_ROWS"
PIDS=()        # our daemons
SALT_PIDFILES=() # real Salt daemons (they daemonize; their pid files say who they are)

stop_pid() {
  local p=$1
  kill -TERM "$p" 2>/dev/null || return 0
  for _ in $(seq 1 100); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
}
stop_all() {
  local p f
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  PIDS=()
  for f in "${SALT_PIDFILES[@]}"; do [ -f "$f" ] && stop_pid "$(cat "$f")"; done
  SALT_PIDFILES=()
}
cleanup() { stop_all; rm -rf "$WORK"; }
trap cleanup EXIT

# ---------------------------------------------------------------------------------------------
# Ours

# our_master DIR [EXTRA CONFIG LINES]: starts our master with root_dir DIR/root (cachedir
# DIR/root/cache) on a free port and waits for its control socket. Sets ETC and PORT.
our_master() {
  local dir=$1; shift
  ETC=$dir/etc PORT=$(free_port)
  mkdir -p "$ETC" "$dir/root/cache"
  {
    echo "root_dir: $dir/root"
    echo "cachedir: $dir/root/cache"
    echo "interface: 127.0.0.1"
    echo "ret_port: $PORT"
    printf '%s\n' "$@"
  } > "$ETC/master"
  "$BIN/salt-master" -c "$ETC" -l quiet >"$dir/master.out" 2>&1 &
  PIDS+=("$!")
  for _ in $(seq 1 300); do [ -S "$dir/root/var/run/salt/master/master.sock" ] && return 0; sleep 0.1; done
  log "our master in $dir did not start: $(cat "$dir/master.out")"
  return 1
}

# our_publish JOB_CACHE: the 1-minion test.ping latency with `job_cache: JOB_CACHE`.
our_publish() {
  local dir=$WORK/publish-$1
  our_master "$dir" "job_cache: $1"
  MINION_DIR=$dir start_minions 1 1
  time_cmd "ours: salt '*' test.ping, 1 minion, job_cache: $1" "$BIN/salt" -c "$ETC" '*' test.ping
  stop_all
}

# our_cache N: the kept cache of N jobs (filled on first use); prints the big job's jid.
our_cache() {
  local n=$1 dir=$DATA/ours-$1
  if [ ! -f "$dir/job_cache.sqlite" ] || [ ! -s "$dir.bigjid" ]; then
    rm -rf "$dir" "$dir.bigjid"
    log "filling our local_cache with $n jobs + 1 of $BIG_RETURNS returns (once; kept in $dir)"
    "$EXAMPLE" "$n" "$BIG_RETURNS" --keep "$dir" > "$dir.report.md" 2> "$dir.log"
    sed -n 's/^big jid: //p' "$dir.log" > "$dir.bigjid"
  fi
  cat "$dir.bigjid"
}

# our_list N: list_jobs and lookup_jid against a copy of the N-job cache.
our_list() {
  local n=$1 jid dir=$WORK/ours-$1 out
  jid=$(our_cache "$n")
  mkdir -p "$dir/root/cache"
  cp --reflink=auto "$DATA/ours-$n/job_cache.sqlite" "$dir/root/cache/"
  # keep_jobs_seconds: 0 keeps the purge (of jobs dated 2026-01-01) out of the figures.
  our_master "$dir" "keep_jobs_seconds: 0"
  # Check the answers before timing them: 100 jobs on the first page, every return found.
  out=$("$BIN/salt-run" -c "$ETC" jobs.list_jobs --out json)
  [ "$(printf '%s' "$out" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = 100 ] \
    || { log "ours, $n jobs: list_jobs did not give 100 jobs"; return 1; }
  out=$("$BIN/salt-run" -c "$ETC" jobs.lookup_jid "$jid" --out json)
  [ "$(printf '%s' "$out" | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')" = "$BIG_RETURNS" ] \
    || { log "ours, $n jobs: lookup_jid did not give $BIG_RETURNS returns"; return 1; }
  time_cmd "ours: salt-run jobs.list_jobs (first page of 100), $n jobs" "$BIN/salt-run" -c "$ETC" jobs.list_jobs
  time_cmd "ours: salt-run jobs.lookup_jid ($BIG_RETURNS returns), $n jobs" "$BIN/salt-run" -c "$ETC" jobs.lookup_jid "$jid"
  stop_all
  rm -rf "$dir"
}

# ---------------------------------------------------------------------------------------------
# Real Salt

# salt_master DIR [EXTRA CONFIG LINES]: starts a real master with root_dir DIR/root (cachedir
# DIR/root/cache) on free ports and waits for it. Sets SETC.
salt_master() {
  local dir=$1; shift
  SETC=$dir/etc
  mkdir -p "$SETC" "$dir/root/cache"
  {
    echo "root_dir: $dir/root"
    echo "cachedir: $dir/root/cache"
    echo "interface: 127.0.0.1"
    echo "publish_port: $(free_port)"
    echo "ret_port: $(free_port)"
    echo "user: root"
    echo "auto_accept: True"
    printf '%s\n' "$@"
  } > "$SETC/master"
  "$VENV/bin/salt-master" -c "$SETC" -d
  SALT_PIDFILES+=("$dir/root/var/run/salt-master.pid")
  # Up when the runner can reach it (manage.status would need minions; a local runner call is enough).
  for _ in $(seq 1 120); do
    [ -S "$dir/root/var/run/salt/master/master_event_pub.ipc" ] && return 0; sleep 0.5
  done
  log "real master in $dir did not start"; return 1
}

salt_publish() {
  local dir=$WORK/salt-publish-$1
  salt_master "$dir" "job_cache: $1"
  local ret_port; ret_port=$(awk '/^ret_port:/ { print $2 }' "$SETC/master")
  local pub_port; pub_port=$(awk '/^publish_port:/ { print $2 }' "$SETC/master")
  mkdir -p "$dir/etc-minion1"
  cat > "$dir/etc-minion1/minion" <<CONF
root_dir: $dir/root-minion1
id: minion1
master: 127.0.0.1
master_port: $ret_port
publish_port: $pub_port
user: root
CONF
  "$VENV/bin/salt-minion" -c "$dir/etc-minion1" -d
  SALT_PIDFILES+=("$dir/root-minion1/var/run/salt-minion.pid")
  wait_answers 1 120 "$VENV/bin/salt" -c "$SETC" '*' test.ping --out txt -t 5
  RUNS=$SALT_RUNS WARMUP=$SALT_WARMUP \
    time_cmd "Salt: salt '*' test.ping, 1 minion, job_cache: $1" "$VENV/bin/salt" -c "$SETC" '*' test.ping
  stop_all
}

# salt_list N: fills Salt's local_cache with N jobs (once, kept in DATA/salt-N), records the
# returner-level timings, then times salt-run against a real master on a hard-linked copy
# (Salt never rewrites a job's files in place, and new jobs go to new directories).
salt_list() {
  local n=$1 dir=$WORK/salt-$1 json=$DATA/salt-$1.json jid runs warmup
  log "Salt local_cache, $n jobs: filling (first use) and timing the returner calls"
  "$VENV/bin/python" bench/salt_local_cache.py "$DATA/salt-$n/cache" "$n" "$BIG_RETURNS" \
    > "$json.new" 2>> "$DATA/salt-$n.log"
  # The fill figures of the first run are kept beside the latest read timings.
  if [ -f "$json" ]; then
    python3 - "$json" "$json.new" <<'PY'
import json, sys
old, new = (json.load(open(p)) for p in sys.argv[1:3])
for k in ("fill_jobs_s", "fill_big_s"):
    if k in old and k not in new:
        new[k] = old[k]
json.dump(new, open(sys.argv[1], "w"))
PY
    rm -f "$json.new"
  else
    mv "$json.new" "$json"
  fi
  jid=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["big_jid"])' "$json")
  mkdir -p "$dir/root"
  cp -al "$DATA/salt-$n/cache" "$dir/root/cache"
  salt_master "$dir" "keep_jobs_seconds: 0"
  # The same checks as ours: every job listed (runner jobs of these checks come on top), 100 on
  # the filtered page, every return found.
  count() { python3 -c 'import json,sys; print(len(json.load(sys.stdin)))'; }
  [ "$("$VENV/bin/salt-run" -c "$SETC" jobs.list_jobs --out json | count)" -gt "$n" ] \
    || { log "Salt, $n jobs: list_jobs did not list them all"; return 1; }
  [ "$("$VENV/bin/salt-run" -c "$SETC" jobs.list_jobs_filter 100 --out json | count)" = 100 ] \
    || { log "Salt, $n jobs: list_jobs_filter 100 did not give 100 jobs"; return 1; }
  [ "$("$VENV/bin/salt-run" -c "$SETC" jobs.lookup_jid "$jid" --out json | count)" = "$BIG_RETURNS" ] \
    || { log "Salt, $n jobs: lookup_jid did not give $BIG_RETURNS returns"; return 1; }
  runs=$SALT_RUNS warmup=$SALT_WARMUP
  if [ "$n" -ge 100000 ]; then runs=3 warmup=0; fi
  RUNS=$runs WARMUP=$warmup time_cmd "Salt: salt-run jobs.list_jobs (all jobs), $n jobs" \
    "$VENV/bin/salt-run" -c "$SETC" jobs.list_jobs
  RUNS=$runs WARMUP=$warmup time_cmd "Salt: salt-run jobs.list_jobs_filter 100, $n jobs" \
    "$VENV/bin/salt-run" -c "$SETC" jobs.list_jobs_filter 100
  RUNS=$SALT_RUNS WARMUP=$SALT_WARMUP time_cmd "Salt: salt-run jobs.lookup_jid ($BIG_RETURNS returns), $n jobs" \
    "$VENV/bin/salt-run" -c "$SETC" jobs.lookup_jid "$jid"
  stop_all
  rm -rf "$dir"
}

# ---------------------------------------------------------------------------------------------

for part in $PARTS; do
  case $part in
    publish)
      log "publish with and without the job cache"
      our_publish True
      our_publish False
      salt_publish True
      salt_publish False
      ;;
    list)
      for n in $SIZES; do log "ours, $n jobs"; our_list "$n"; done
      for n in $SALT_SIZES; do salt_list "$n"; done
      ;;
    *) log "unknown part $part"; exit 2 ;;
  esac
done

echo
echo "### Job cache, end to end"
echo
echo "Machine: $(nproc) cores, $(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo)," \
     "kernel $(uname -r). Timer: $(command -v hyperfine >/dev/null 2>&1 && hyperfine --version || echo 'plain loop')." \
     "Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| Wall ms | mean | median | min | max | runs | CLI CPU (user+sys) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
cat "$ROWS"
for n in $SALT_SIZES; do
  [ -f "$DATA/salt-$n.json" ] && { echo; echo "Salt returner-level, $n jobs: $(cat "$DATA/salt-$n.json")"; }
done
for n in $SIZES; do
  [ -f "$DATA/ours-$n.report.md" ] && { echo; echo "Ours, store level, $n jobs (fill run):"; echo; cat "$DATA/ours-$n.report.md"; }
done
exit 0
