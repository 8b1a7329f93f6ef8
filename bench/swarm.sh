#!/usr/bin/env bash
# Scale benchmarks (issue 10): one master and a salt-swarm of N minions on this machine, for each
# N in $SIZES. Both share the machine's cores (no pinning); the CLI runs beside them. Per size:
#   - `salt-key -A -y` of N pending keys (once, the keys the swarm made), `salt-key -L` (hyperfine)
#   - how long until all N sessions are up after the acceptance
#   - master and swarm RSS with N idle minions, and their CPU over $IDLE_SECS idle seconds
#   - `salt '*' test.ping`: wall time until every minion returned, and the master's CPU in it
#   - `salt-run jobs.lookup_jid` of that job, printed to a file
#   - the master restarted with N connected: time until all N are back, the reconnects per
#     second (from the master's log), and failed authentications
# Prints markdown tables. Everything runs under a throw-away directory and is stopped on exit.
#
#   bash bench/swarm.sh                         # SIZES="1000 5000 10000" PINGS=5 IDLE_SECS=10
#   SIZES="19000" bash bench/swarm.sh
#   MYSQL_N=10000 bash bench/swarm.sh           # also: cmd.run to N minions, job cache in MariaDB
#                                               # (SALTRS_TEST_MYSQL_HOST/PORT: scripts/services.sh env)
set -euo pipefail
cd "$(dirname "$0")/.."
# This bench's own defaults, set before lib.sh sets its (lib.sh keeps what is already set).
IDLE_SECS=${IDLE_SECS:-10}
RUNS=${RUNS:-10}
WARMUP=${WARMUP:-2}
. bench/lib.sh

SIZES=${SIZES-1000 5000 10000}
PINGS=${PINGS:-5}
MYSQL_N=${MYSQL_N:-}
TARGET=${CARGO_TARGET_DIR:-$PWD/target}
BIN=$TARGET/release
for p in salt salt-master salt-key salt-run salt-swarm; do
  if [ ! -x "$BIN/$p" ]; then
    log "building release binaries"
    CARGO_TARGET_DIR=$TARGET cargo build --release -p saltrs --bins
    break
  fi
done
ensure_hyperfine

WORK=$(mktemp -d /tmp/bench-swarm.XXXXXX)
# The swarm's minions keep their keys, outboxes and proc files in memory (tmpfs): a fleet has a
# disk per minion, and one disk taking every minion's fsync in a row would measure that disk,
# not the master. The master's own files (keys, job cache, spool) stay on the disk.
SHM=$(mktemp -d /dev/shm/bench-swarm.XXXXXX)
ROWS=$WORK/rows MEM_ROWS=$WORK/mem_rows
OUT=$WORK/report
: > "$ROWS"; : > "$MEM_ROWS"; : > "$OUT"
PIDS=()

cleanup() {
  local p
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  rm -rf "$WORK" "$SHM"
}
trap cleanup EXIT

# The last "<up>/<total> sessions up" the swarm printed.
sessions_up() { grep -o '[0-9]*/[0-9]* sessions up' "$1" | tail -1 | cut -d/ -f1; }
wait_sessions() {
  local file=$1 want=$2 tries=$3
  for _ in $(seq 1 "$tries"); do
    [ "$(sessions_up "$file")" = "$want" ] && return 0
    sleep 0.2
  done
  log "only $(sessions_up "$file") of $want sessions came up"; return 1
}

# start_cluster N DIR: a master (config under DIR, $MASTER_EXTRA appended) and a swarm of N
# minions dialling it; returns once their N keys wait in minions_pre (not yet accepted).
start_cluster() {
  local n=$1 dir=$2 port
  mkdir -p "$dir/etc" "$dir/etc-swarm"
  port=$(free_port)
  cat > "$dir/etc/master" <<CONF
root_dir: $dir/root
interface: 127.0.0.1
ret_port: $port
log_level_logfile: info
${MASTER_EXTRA:-}
CONF
  cat > "$dir/etc-swarm/minion" <<CONF
root_dir: $SHM/$(basename "$dir")
master: 127.0.0.1
master_port: $port
acceptance_wait_time: 2
log_level_logfile: warning
CONF
  start_master "$dir"
  "$BIN/salt-swarm" -c "$dir/etc-swarm" -m "$n" --rand-os -l quiet >"$dir/swarm.out" 2>&1 &
  SWARM_PID=$!
  PIDS+=("$SWARM_PID")
  local pre=$dir/root/etc/salt/pki/master/minions_pre
  for _ in $(seq 1 3000); do [ "$(ls "$pre" 2>/dev/null | wc -l)" -ge "$n" ] && break; sleep 0.2; done
  log "$n: keys pending: $(ls "$pre" | wc -l)"
}

run_size() {
  local n=$1 dir=$WORK/n$1 t0 t1 c0 c1 s0 s1 i jid
  start_cluster "$n" "$dir"

  t0=$(now); "$BIN/salt-key" -c "$dir/etc" -A -y >/dev/null; t1=$(now)
  echo "| $n | salt-key -A -y ($n pending) | $(elapsed "$t0" "$t1") s |" >> "$OUT"
  time_cmd "salt-key -L, $n keys" "$BIN/salt-key" -c "$dir/etc" -L
  wait_sessions "$dir/swarm.out" "$n" 3000
  t1=$(now)
  echo "| $n | all sessions up after the acceptance | $(elapsed "$t0" "$t1") s |" >> "$OUT"

  sleep "$IDLE_SECS"
  c0=$(cpu_secs "$MASTER_PID"); s0=$(cpu_secs "$SWARM_PID")
  sleep "$IDLE_SECS"
  c1=$(cpu_secs "$MASTER_PID"); s1=$(cpu_secs "$SWARM_PID")
  local mrss srss
  mrss=$(vmrss "$MASTER_PID"); srss=$(vmrss "$SWARM_PID")
  echo "| $n | master RSS, idle | $(awk -v r="$mrss" 'BEGIN { printf "%.0f MiB", r / 1024 }') |" >> "$OUT"
  echo "| $n | swarm RSS per idle minion | $(awk -v r="$srss" -v n="$n" 'BEGIN { printf "%.1f KiB (%.0f MiB in all)", r / n, r / 1024 }') |" >> "$OUT"
  echo "| $n | CPU over ${IDLE_SECS} s idle: master, swarm | $(elapsed "$c0" "$c1") s, $(elapsed "$s0" "$s1") s |" >> "$OUT"

  local walls="" cpus="" scpus="" got
  for i in $(seq 1 "$PINGS"); do
    c0=$(cpu_secs "$MASTER_PID"); s0=$(cpu_secs "$SWARM_PID"); t0=$(now)
    "$BIN/salt" -c "$dir/etc" '*' test.ping --out txt > "$dir/ping.out" 2>&1 || true
    t1=$(now); c1=$(cpu_secs "$MASTER_PID"); s1=$(cpu_secs "$SWARM_PID")
    scpus="$scpus $(elapsed "$s0" "$s1")"
    got=$(grep -c ': True$' "$dir/ping.out" || true)
    [ "$got" -eq "$n" ] || { log "test.ping: $got of $n returned"; tail -3 "$dir/ping.out" >&2; }
    walls="$walls $(elapsed "$t0" "$t1")"; cpus="$cpus $(elapsed "$c0" "$c1")"
  done
  echo "| $n | salt '*' test.ping, every one returned (wall; of $PINGS:$walls s) | min $(tr ' ' '\n' <<<"$walls" | sort -n | sed -n 2p) s, median $(tr ' ' '\n' <<<"$walls" | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') s |" >> "$OUT"
  echo "| $n | master CPU in each test.ping (s:$cpus) | median $(tr ' ' '\n' <<<"$cpus" | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') s |" >> "$OUT"
  echo "| $n | swarm CPU in each test.ping (s:$scpus) | median $(tr ' ' '\n' <<<"$scpus" | grep . | sort -n | awk '{a[NR]=$1} END {print a[int((NR+1)/2)]}') s |" >> "$OUT"

  jid=$("$BIN/salt-run" -c "$dir/etc" jobs.list_jobs --out json 2>/dev/null | python3 -c 'import json,sys; print(max(json.load(sys.stdin)))')
  sleep 2
  t0=$(now); "$BIN/salt-run" -c "$dir/etc" jobs.lookup_jid "$jid" > "$dir/lookup.out"; t1=$(now)
  echo "| $n | salt-run jobs.lookup_jid, $(grep -c 'True' "$dir/lookup.out" || true) returns printed to a file | $(elapsed "$t0" "$t1") s |" >> "$OUT"

  # Restart: the reconnect storm, spread by the minions' back-off.
  local log=$dir/root/var/log/salt/master mark
  stop_pid "$MASTER_PID"
  # The swarm reports its count at most once a second: wait until it has seen the master go,
  # or its last line would still say all are up.
  for _ in $(seq 1 100); do [ "$(sessions_up "$dir/swarm.out")" != "$n" ] && break; sleep 0.1; done
  mark=$(wc -l < "$log")
  t0=$(now)
  start_master "$dir"
  wait_sessions "$dir/swarm.out" "$n" 3000 || true
  t1=$(now)
  echo "| $n | master restarted: all back and answering | $(elapsed "$t0" "$t1") s |" >> "$OUT"
  "$BIN/salt" -c "$dir/etc" '*' test.ping --out txt > "$dir/ping.out" 2>&1 || true
  echo "| $n | after the restart, test.ping answered by | $(grep -c ': True$' "$dir/ping.out" || true) |" >> "$OUT"
  local fails
  fails=$(tail -n +"$mark" "$log" | grep -ciE 'denied|rejected|authentication failed|refused' || true)
  echo "| $n | failed authentications after the restart | $fails |" >> "$OUT"
  # Reconnects per second after the restart, from the log's "minion <id> connected" lines.
  echo "histogram $n: $(tail -n +"$mark" "$log" | grep ' connected$' | cut -c1-19 | uniq -c | awk '{ printf "%s ", $1 }')" >> "$WORK/histograms"

  stop_pid "$SWARM_PID"; stop_pid "$MASTER_PID"
}

for n in $SIZES; do
  run_size "$n"
done

if [ -n "$MYSQL_N" ]; then
  : "${SALTRS_TEST_MYSQL_HOST:?run eval \"\$(bash scripts/services.sh env)\" first}"
  db=saltrs_bench_swarm
  # A login of its own, as an operator would give the master.
  mariadb -h "$SALTRS_TEST_MYSQL_HOST" -P "$SALTRS_TEST_MYSQL_PORT" -uroot -e "DROP DATABASE IF EXISTS $db; CREATE DATABASE $db;
    CREATE USER IF NOT EXISTS 'saltrs_bench'@'%' IDENTIFIED BY 'bench'; GRANT ALL ON $db.* TO 'saltrs_bench'@'%'"
  MASTER_EXTRA="master_job_cache: mysql
mysql.host: $SALTRS_TEST_MYSQL_HOST
mysql.port: $SALTRS_TEST_MYSQL_PORT
mysql.user: saltrs_bench
mysql.pass: bench
mysql.db: $db"
  # The schema, as an operator would create it.
  "$BIN/salt-returner-schema" mysql 2>/dev/null | mariadb -h "$SALTRS_TEST_MYSQL_HOST" -P "$SALTRS_TEST_MYSQL_PORT" -uroot "$db" || true
  n=$MYSQL_N dir=$WORK/mysql
  log "mysql: $n minions"
  start_cluster "$n" "$dir"
  "$BIN/salt-key" -c "$dir/etc" -A -y >/dev/null
  wait_sessions "$dir/swarm.out" "$n" 3000
  sleep 3
  "$BIN/salt" -c "$dir/etc" '*' cmd.run 'echo x' --out txt > "$dir/run.out" 2>&1 || true
  t0=$(now)
  jid=$(mariadb -h "$SALTRS_TEST_MYSQL_HOST" -P "$SALTRS_TEST_MYSQL_PORT" -uroot -N "$db" -e "SELECT jid FROM jids ORDER BY jid DESC LIMIT 1")
  rows=0
  for _ in $(seq 1 600); do
    rows=$(mariadb -h "$SALTRS_TEST_MYSQL_HOST" -P "$SALTRS_TEST_MYSQL_PORT" -uroot -N "$db" -e "SELECT COUNT(*) FROM salt_returns WHERE jid='$jid'")
    [ "$rows" -ge "$n" ] && break
    sleep 0.05
  done
  t1=$(now)
  echo "| $n | cmd.run 'echo x' with master_job_cache: mysql: $(grep -c ': x$' "$dir/run.out" || true) printed; $rows rows in MariaDB | $(elapsed "$t0" "$t1") s after the CLI returned |" >> "$OUT"
  stop_pid "$SWARM_PID"; stop_pid "$MASTER_PID"
fi

echo
echo "### Scale: one master, one salt-swarm (issue 10)"
echo
echo "Machine: $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)," \
     "$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), open files hard limit $(ulimit -Hn)." \
     "Master, swarm and CLI share the cores. Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
echo
echo "| minions | measure | result |"
echo "|---:|---|---|"
cat "$OUT"
echo
echo "| Latency (ms) | mean | median | min | max | runs | CLI CPU (user+sys) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
cat "$ROWS"
echo
echo "Reconnects per second after a master restart (from its log):"
echo
sed 's/^/    /' "$WORK/histograms" 2>/dev/null || true
