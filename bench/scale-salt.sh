#!/usr/bin/env bash
# Issue 10's measures for REAL Salt (3008.4 from PyPI) at the largest number of real Python
# salt-minions this machine holds, and for ours at the same size, as a ratio. For each N in
# $SIZES, three fleets in turn (never two at once), each with its own master:
#
#   salt    real salt-master + N real salt-minion processes (the venv of
#           /work/shared/tools/real-salt.sh, master_job_cache local_cache: no database)
#   ours    our salt-master + N of our salt-minion processes, each its own config and root dir
#   swarm   our salt-master + one `salt-swarm -m N` (N minion sessions in one process)
#
# and, per fleet, by the same code:
#   - `salt '*' test.ping` until every minion returned: hyperfine (bench/lib.sh time_cmd), after
#     checking that all N answer; and the master's CPU over those runs (for Salt summed over all
#     its processes: it forks workers), per ping
#   - the minions' CPU (all N summed) over the same runs, and the `salt` CLI's own (hyperfine)
#   - the master's CPU and RSS with N idle minions, and the minions' RSS per minion
#   - `salt-key -L`, and `salt-run jobs.lookup_jid <jid>` of a '*' test.ping job
#   - the master restarted with N connected: seconds from its start until a '*' test.ping
#     (-t $RESTART_T) gets all N answers
# Prints one markdown table per N with the ratio Salt / ours, then hyperfine's rows.
# All on loopback, on free ports, under a throw-away directory; everything is stopped on exit.
# Every root dir (masters' and minions') is on the same disk, under $WORK.
#
#   bash bench/scale-salt.sh                          # SIZES="10 25 50"
#   SIZES="10" RUNS=5 BIN=/path/to/release bash bench/scale-salt.sh
#
# Knobs: SIZES; RUNS, WARMUP, IDLE_SECS as in bench/lib.sh (30, 3, 5: the idle master's CPU is read
# over IDLE_SECS after IDLE_SECS of quiet, its memory after that); RESTART_T (2),
# BIN (our release binaries; default ${CARGO_TARGET_DIR:-target}/release, built if missing),
# SALT_VENV (/var/tmp/real-salt-bench/venv, installed by real-salt.sh if missing),
# SALT_MINION_MIB (150: memory a real Salt minion is given when checking a size fits).
set -euo pipefail
cd "$(dirname "$0")/.."
. bench/lib.sh

SIZES=${SIZES:-10 25 50}
RESTART_T=${RESTART_T:-2}
SALT_MINION_MIB=${SALT_MINION_MIB:-150}
REAL_SALT_SH=${REAL_SALT_SH:-/work/shared/tools/real-salt.sh}
SALT_VENV=${SALT_VENV:-/var/tmp/real-salt-bench/venv}
BIN=${BIN:-${CARGO_TARGET_DIR:-$PWD/target}/release}
for p in salt salt-master salt-minion salt-key salt-run salt-swarm; do
  if [ ! -x "$BIN/$p" ]; then
    log "building release binaries into $BIN/.."
    CARGO_TARGET_DIR=$(dirname "$BIN") cargo build --release -p saltrs --bins
    break
  fi
done
ensure_hyperfine
[ -x "$SALT_VENV/bin/salt" ] || BASE=$(dirname "$SALT_VENV") bash "$REAL_SALT_SH" install >&2
SALT_VERSION=$("$SALT_VENV/bin/salt" --version)
OUR_VERSION=$("$BIN/salt" --version)

WORK=$(mktemp -d /tmp/bench-scale-salt.XXXXXX)
ROWS=$WORK/rows MEM_ROWS=$WORK/mem_rows
RESULTS=$WORK/results   # lines "N|measure|fleet|value"
NOTES=$WORK/notes
: > "$ROWS"; : > "$MEM_ROWS"; : > "$RESULTS"; : > "$NOTES"
PIDS=()          # our daemons
SALT_BASES=()    # real Salt set-ups; real-salt.sh stop finds their daemons by pid file

# Stops every real Salt daemon under BASE: all are sent SIGTERM first, so that real-salt.sh stop,
# which waits for one after the other, finds them mostly gone.
stop_salt() {
  local f
  for f in "$1"/root/*/var/run/salt-*.pid; do
    if [ -f "$f" ]; then kill -TERM "$(cat "$f")" 2>/dev/null || true; fi
  done
  BASE=$1 bash "$REAL_SALT_SH" stop >&2 || true
}
stop_ours() {
  local p
  for p in "${PIDS[@]}"; do stop_pid "$p"; done
  PIDS=()
}
cleanup() {
  local b
  stop_ours
  for b in "${SALT_BASES[@]}"; do stop_salt "$b"; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# The CLI's wait for minions that have not returned by -t: a poll after a restart that misses some
# gives up after 1 s rather than Salt's 10 (the CLI reads it from the master's config).
GATHER_CONF="gather_job_timeout: 1"

record() { echo "$1|$2|$3|$4" >> "$RESULTS"; }
note() { log "$*"; echo "- $*" >> "$NOTES"; }
load1() { cut -d' ' -f1 /proc/loadavg; }
# Field K (2 = mean, 3 = median, 7 = the CLI's CPU) of the last time_cmd row.
last_row() { tail -n1 "$ROWS" | awk -F'|' -v k="$(($1 + 1))" '{ gsub(/ /, "", $k); print $k }'; }
# The sum of VmRSS and of Pss (kB) over PIDs and their descendants, and the process count.
tree_mem() {
  local p n=0 rss=0 pss_sum=0 root
  for root in "$@"; do
    for p in $(pid_tree "$root"); do
      n=$((n + 1)); rss=$((rss + $(vmrss "$p"))); pss_sum=$((pss_sum + $(pss "$p")))
    done
  done
  echo "$rss $pss_sum $n"
}

# CPU seconds of all minions (the trees of MINION_PIDS).
minions_cpu_secs() {
  local p
  for p in "${MINION_PIDS[@]}"; do tree_cpu_secs "$p"; echo; done | awk '{ t += $1 } END { printf "%.2f", t }'
}

# all_answer N CLI_DIR CONF: polls '*' test.ping (-t $RESTART_T) until all N answer, at most
# 300 s; prints how many answered the last poll, and the number of polls.
all_answer() {
  local n=$1 cli=$2 conf=$3 got=0 start polls=0
  start=$(date +%s)
  while [ $(($(date +%s) - start)) -lt 300 ]; do
    polls=$((polls + 1))
    got=$(count_true "$cli/salt" -c "$conf" '*' test.ping --out txt -t "$RESTART_T")
    [ "$got" -eq "$n" ] && break
    sleep 0.2
  done
  echo "$got $polls"
}

# measure FLEET N CLI_DIR CONF: the measures, on a fleet whose master is $MASTER_PID (its process
# tree) and whose minions are the trees of MINION_PIDS; restart_<FLEET> restarts its master.
measure() {
  local fleet=$1 n=$2 cli=$3 conf=$4 c0 c1 m0 m1 rss pss_kb procs got jid load0
  load0=$(load1)
  wait_answers "$n" 1 "$cli/salt" -c "$conf" '*' test.ping --out txt

  sleep "$IDLE_SECS"
  c0=$(tree_cpu_secs "$MASTER_PID"); sleep "$IDLE_SECS"; c1=$(tree_cpu_secs "$MASTER_PID")
  record "$n" idle_cpu "$fleet" "$(awk -v a="$c0" -v b="$c1" -v s="$IDLE_SECS" 'BEGIN { printf "%.1f", (b - a) * 1000 / s }')"
  read -r rss pss_kb procs < <(tree_mem "$MASTER_PID")
  record "$n" master_rss "$fleet" "$(awk -v r="$rss" 'BEGIN { printf "%.1f", r / 1024 }')"
  record "$n" master_pss "$fleet" "$(awk -v r="$pss_kb" 'BEGIN { printf "%.1f", r / 1024 }')"
  record "$n" master_procs "$fleet" "$procs"
  read -r rss pss_kb procs < <(tree_mem "${MINION_PIDS[@]}")
  record "$n" minion_rss "$fleet" "$(awk -v r="$rss" -v n="$n" 'BEGIN { printf "%.2f", r / 1024 / n }')"
  record "$n" minion_pss "$fleet" "$(awk -v r="$pss_kb" -v n="$n" 'BEGIN { printf "%.2f", r / 1024 / n }')"
  record "$n" minion_procs "$fleet" "$procs"

  c0=$(tree_cpu_secs "$MASTER_PID"); m0=$(minions_cpu_secs)
  time_cmd "$fleet, $n minions: salt '*' test.ping" "$cli/salt" -c "$conf" '*' test.ping
  c1=$(tree_cpu_secs "$MASTER_PID"); m1=$(minions_cpu_secs)
  record "$n" ping_mean "$fleet" "$(last_row 2)"
  record "$n" ping_median "$fleet" "$(last_row 3)"
  record "$n" ping_cli_cpu "$fleet" "$(last_row 7)"
  record "$n" ping_master_cpu "$fleet" "$(awk -v a="$c0" -v b="$c1" -v k="$((WARMUP + RUNS))" 'BEGIN { printf "%.1f", (b - a) * 1000 / k }')"
  record "$n" ping_minions_cpu "$fleet" "$(awk -v a="$m0" -v b="$m1" -v k="$((WARMUP + RUNS))" 'BEGIN { printf "%.1f", (b - a) * 1000 / k }')"
  got=$(count_true "$cli/salt" -c "$conf" '*' test.ping --out txt)
  [ "$got" -eq "$n" ] || note "$fleet, $n: a test.ping after the timed runs got $got of $n answers"

  time_cmd "$fleet, $n minions: salt-key -L" "$cli/salt-key" -c "$conf" -L
  record "$n" key_list "$fleet" "$(last_row 2)"

  jid=$("$cli/salt" -c "$conf" '*' test.ping --show-jid --out txt | sed -n 's/^jid: //p')
  got=$("$cli/salt-run" -c "$conf" jobs.lookup_jid "$jid" | grep -c True || true)
  [ "$got" -eq "$n" ] || note "$fleet, $n: jobs.lookup_jid $jid printed $got of $n returns"
  time_cmd "$fleet, $n minions: salt-run jobs.lookup_jid (test.ping)" "$cli/salt-run" -c "$conf" jobs.lookup_jid "$jid"
  record "$n" lookup "$fleet" "$(last_row 2)"

  local t1 polls
  "restart_$fleet"
  read -r got polls < <(all_answer "$n" "$cli" "$conf")
  t1=$(now)
  [ "$got" -eq "$n" ] || note "$fleet, $n: after the master's restart only $got of $n answered within 300 s"
  record "$n" restart "$fleet" "$(elapsed "$RESTARTED_AT" "$t1")"
  record "$n" restart_polls "$fleet" "$polls"
  record "$n" restart_up "$fleet" "$(elapsed "$RESTARTED_AT" "$MASTER_UP_AT")"
  record "$n" load "$fleet" "$load0 → $(load1)"
}

# --- real Salt --------------------------------------------------------------------------------

# salt_fleet N: a master and minion1 from real-salt.sh under a fresh BASE (the shared venv linked
# in), minion2..minionN beside them; fails unless all N answer.
salt_fleet() {
  local n=$1 i
  export BASE=$WORK/salt-$n JOB_CACHE=local_cache MINION_ID=minion1
  export PUB_PORT; PUB_PORT=$(free_port)
  export RET_PORT; RET_PORT=$(free_port)
  VENV=$BASE/venv ETC=$BASE/etc
  mkdir -p "$BASE"
  ln -s "$SALT_VENV" "$VENV"
  SALT_BASES+=("$BASE")
  bash "$REAL_SALT_SH" conf >&2
  echo "$GATHER_CONF" >> "$ETC/master"
  log "real Salt, $n minions: master and minion1 (pub $PUB_PORT, ret $RET_PORT)"
  bash "$REAL_SALT_SH" start >&2
  log "real Salt: starting minion2..minion$n"
  start_real_salt_minions 2 "$n"
  # auto_accept: True; the minions need time to start (a Python start each) and authenticate.
  wait_answers "$n" 60 "$VENV/bin/salt" -c "$ETC" '*' test.ping --out txt -t 5 || return 1
  MASTER_PID=$(cat "$BASE/root/master/var/run/salt-master.pid")
  MINION_PIDS=()
  for i in $(seq 1 "$n"); do MINION_PIDS+=("$(cat "$BASE/root/minion$i/var/run/salt-minion.pid")"); done
}

# Stops the master's whole tree and starts it again; sets RESTARTED_AT to the time of the start
# and MASTER_UP_AT to when its event socket is there.
restart_salt() {
  local p tree
  tree=$(pid_tree "$MASTER_PID")
  kill -TERM "$MASTER_PID"
  for p in $tree; do
    for _ in $(seq 1 300); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
    kill -KILL "$p" 2>/dev/null || true
  done
  local sock=$BASE/root/master/var/run/salt/master/master_event_pub.ipc
  rm -f "$sock"
  RESTARTED_AT=$(now)
  "$VENV/bin/salt-master" -c "$ETC" -d >&2
  for _ in $(seq 1 600); do [ -S "$sock" ] && break; sleep 0.1; done
  MASTER_UP_AT=$(now)
}

# --- ours -------------------------------------------------------------------------------------

# our_master DIR: our master with config DIR/etc on a free port. Sets ETC, PORT, MASTER_PID.
our_master() {
  local dir=$1
  ETC=$dir/etc PORT=$(free_port)
  mkdir -p "$ETC"
  cat > "$ETC/master" <<CONF
root_dir: $dir/root
interface: 127.0.0.1
ret_port: $PORT
log_level_logfile: info
$GATHER_CONF
CONF
  start_master "$dir"
}

# ours_fleet N: N of our salt-minion processes.
ours_fleet() {
  local n=$1 i v
  OUR_DIR=$WORK/ours-$n
  our_master "$OUR_DIR"
  log "ours, $n salt-minion processes"
  MINION_DIR=$OUR_DIR start_minions 1 "$n"
  MINION_PIDS=()
  for i in $(seq 1 "$n"); do v=PID_minion$i; MINION_PIDS+=("${!v}"); done
}

# swarm_fleet N: one salt-swarm -m N.
swarm_fleet() {
  local n=$1
  OUR_DIR=$WORK/swarm-$n
  our_master "$OUR_DIR"
  mkdir -p "$OUR_DIR/etc-swarm"
  cat > "$OUR_DIR/etc-swarm/minion" <<CONF
root_dir: $OUR_DIR/swarm-root
master: 127.0.0.1
master_port: $PORT
acceptance_wait_time: 1
log_level_logfile: warning
CONF
  log "ours, salt-swarm -m $n"
  "$BIN/salt-swarm" -c "$OUR_DIR/etc-swarm" -m "$n" -l quiet > "$OUR_DIR/swarm.out" 2>&1 &
  MINION_PIDS=("$!")
  PIDS+=("$!")
  accept_pending swarm- "$n" "$n"
}

restart_ours() {
  stop_pid "$MASTER_PID"
  RESTARTED_AT=$(now)
  start_master "$OUR_DIR"
  MASTER_UP_AT=$(now)
}
restart_swarm() { restart_ours; }

# --- the run ----------------------------------------------------------------------------------

log "load average at the start: $(cut -d' ' -f1-3 /proc/loadavg)"
DONE_SIZES=""
for n in $SIZES; do
  avail=$(awk '/^MemAvailable/ { print $2 }' /proc/meminfo)
  if [ "$avail" -lt $(( (n * SALT_MINION_MIB + 1024) * 1024 )) ]; then
    note "N=$n skipped: $((avail / 1024)) MiB available, $n real Salt minions are given $((n * SALT_MINION_MIB)) MiB"
    continue
  fi
  if salt_fleet "$n"; then
    measure salt "$n" "$VENV/bin" "$ETC"
  else
    note "N=$n: not all $n real Salt minions answered; this size is skipped"
    stop_salt "$BASE"
    continue
  fi
  stop_salt "$BASE"

  ours_fleet "$n"
  measure ours "$n" "$BIN" "$ETC"
  stop_ours

  swarm_fleet "$n"
  measure swarm "$n" "$BIN" "$ETC"
  stop_ours
  DONE_SIZES="$DONE_SIZES $n"
done

echo
echo "### Real Salt and ours at the same number of minions (issue 10)"
echo
echo "Machine: $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)," \
     "$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r);" \
     "master, minions and CLI share the cores, one fleet at a time. Load average at the end:" \
     "$(cut -d' ' -f1-3 /proc/loadavg)."
echo "Real Salt: $SALT_VERSION, master_job_cache local_cache, N salt-minion processes." \
     "Ours: $OUR_VERSION; \"ours\" is N salt-minion processes, \"swarm\" one \`salt-swarm -m N\`."
echo "Timer: $(hyperfine --version), warm-up $WARMUP, runs $RUNS."
echo
echo "Command: \`SIZES=\"$SIZES\" RUNS=$RUNS WARMUP=$WARMUP IDLE_SECS=$IDLE_SECS RESTART_T=$RESTART_T bash bench/scale-salt.sh\`"
for n in $DONE_SIZES; do
  echo
  python3 - "$RESULTS" "$n" "$IDLE_SECS" "$RESTART_T" "$((WARMUP + RUNS))" "$(getconf CLK_TCK)" <<'PY'
import sys
path, n, idle, restart_t = sys.argv[1:5]
pings, hz = int(sys.argv[5]), int(sys.argv[6])
# The kernel reports CPU time in ticks: a CPU figure of 0 means less than one tick over the runs.
tick_ms = 1000 / hz
resolution = {"ping_master_cpu": tick_ms / pings, "ping_minions_cpu": tick_ms / pings, "idle_cpu": tick_ms / int(idle)}
vals = {}
for line in open(path):
    size, key, fleet, value = line.rstrip("\n").split("|")
    if size == n:
        vals[key, fleet] = value
rows = [
    ("ping_mean", "`salt '*' test.ping`, all returned: wall mean (ms)", True),
    ("ping_median", "`salt '*' test.ping`: wall median (ms)", True),
    ("ping_master_cpu", "master CPU per test.ping, its idle CPU included (ms; Salt: all its processes)", True),
    ("ping_minions_cpu", f"all {n} minions' CPU per test.ping (ms; Salt: a forked process per job included)", True),
    ("ping_cli_cpu", "the `salt` CLI's own CPU per test.ping (ms)", True),
    ("idle_cpu", f"master CPU with {n} idle minions (ms per s, over {idle} s)", True),
    ("master_rss", f"master RSS, {n} idle minions (MiB; Salt: VmRSS summed over its processes)", True),
    ("master_pss", "master Pss (MiB; pages its processes share counted once)", True),
    ("master_procs", "master processes", False),
    ("minion_rss", "minion RSS per minion (MiB; swarm: its RSS / N)", True),
    ("minion_pss", "minion Pss per minion (MiB)", True),
    ("minion_procs", f"minion processes for {n} minions", False),
    ("key_list", "`salt-key -L`, mean (ms)", True),
    ("lookup", f"`salt-run jobs.lookup_jid` of a test.ping ({n} returns), mean (ms)", True),
    ("restart", f"master restarted with {n} connected: s until all answer (polls of -t {restart_t})", True),
    ("restart_up", "… of which until the restarted master's socket is up (s)", True),
    ("restart_polls", "… test.ping polls it took, the last one answered by all", False),
    ("load", "load average (1 min) at the fleet's start → end", False),
]
def ratio(a, b, res):
    try:
        a, b = float(a), float(b)
    except ValueError:
        return "—"
    if b:
        return f"{a / b:.1f}×"
    return f"> {a / res:.0f}×" if res else "∞"
print(f"#### {n} minions")
print()
print("| measure | real Salt | ours (salt-minion processes) | ours (salt-swarm) | Salt / ours | Salt / swarm |")
print("|---|---:|---:|---:|---:|---:|")
for key, label, has_ratio in rows:
    s, o, w = (vals.get((key, f), "n/a") for f in ("salt", "ours", "swarm"))
    res = resolution.get(key)
    r1, r2 = (ratio(s, o, res), ratio(s, w, res)) if has_ratio else ("—", "—")
    if res:
        s, o, w = (f"< {res:.1f}" if v == "0.0" else v for v in (s, o, w))
    print(f"| {label} | {s} | {o} | {w} | {r1} | {r2} |")
PY
done
echo
echo "| hyperfine (ms) | mean | median | min | max | runs | CLI CPU (user+sys) |"
echo "|---|---:|---:|---:|---:|---:|---:|"
cat "$ROWS"
if [ -s "$NOTES" ]; then
  echo
  echo "Notes:"
  cat "$NOTES"
fi
