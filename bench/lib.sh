# Helpers shared by bench/core.sh (our programs) and bench/real-salt.sh (real Salt), so that both
# sides are timed and measured by exactly the same code. Sourced, not run.
#
# Knobs (environment): RUNS (timed runs per latency figure, default 30, at least 20 is asked for),
# WARMUP (untimed runs first, default 3), IDLE_SECS (seconds of quiet before reading memory, 5).

RUNS=${RUNS:-30}
WARMUP=${WARMUP:-3}
IDLE_SECS=${IDLE_SECS:-5}

log() { echo "== $*" >&2; }

# A free TCP port on the loopback interface.
free_port() {
  python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

# hyperfine from Debian's packages; without it (no apt, offline) timings fall back to a plain loop.
ensure_hyperfine() {
  command -v hyperfine >/dev/null 2>&1 && return 0
  if command -v apt-get >/dev/null 2>&1 && [ "$(id -u)" = 0 ]; then
    log "installing hyperfine (apt-get)"
    DEBIAN_FRONTEND=noninteractive apt-get install -y hyperfine >/dev/null 2>&1 \
      || { apt-get update >/dev/null 2>&1 && DEBIAN_FRONTEND=noninteractive apt-get install -y hyperfine >/dev/null 2>&1; } \
      || true
  fi
  command -v hyperfine >/dev/null 2>&1 || log "hyperfine unavailable: timing with a plain loop"
}

# time_cmd LABEL CMD...: runs CMD (no shell; output discarded) WARMUP + RUNS times and appends one
# markdown row "| LABEL | mean | median | min | max | runs | CPU |" (milliseconds) to $ROWS.
# CPU is the timed process's own mean user+system time (hyperfine only): unlike wall time it
# hardly moves when other work shares the cores, but it leaves out the daemons' work.
# A run that exits non-zero aborts the benchmark: a timing of a failing command means nothing.
time_cmd() {
  local label=$1; shift
  local samples=$WORK/samples.$$ json=$WORK/hyperfine.json cpu=n/a
  if command -v hyperfine >/dev/null 2>&1; then
    # --shell=none: no shell start-up inside the figure; the command is one quoted word list.
    local cmdline; cmdline=$(printf '%q ' "$@")
    hyperfine --shell=none --style basic --warmup "$WARMUP" --runs "$RUNS" \
      --export-json "$json" "$cmdline" >&2
    python3 - "$json" > "$samples" <<'PY'
import json, sys
for t in json.load(open(sys.argv[1]))["results"][0]["times"]:
    print(t * 1000.0)
PY
    cpu=$(python3 -c 'import json, sys; r = json.load(open(sys.argv[1]))["results"][0]; print("%.1f" % ((r["user"] + r["system"]) * 1000))' "$json")
  else
    local i s e
    for i in $(seq 1 "$WARMUP"); do "$@" >/dev/null 2>&1 || { log "failed: $*"; return 1; }; done
    : > "$samples"
    for i in $(seq 1 "$RUNS"); do
      s=$(date +%s%N); "$@" >/dev/null 2>&1 || { log "failed: $*"; return 1; }; e=$(date +%s%N)
      awk -v s="$s" -v e="$e" 'BEGIN { printf "%.3f\n", (e - s) / 1e6 }' >> "$samples"
    done
  fi
  python3 - "$label" "$samples" "$cpu" >> "$ROWS" <<'PY'
import statistics, sys
label, path, cpu = sys.argv[1:4]
xs = [float(l) for l in open(path) if l.strip()]
print("| %s | %.1f | %.1f | %.1f | %.1f | %d | %s |" % (
    label, statistics.mean(xs), statistics.median(xs), min(xs), max(xs), len(xs), cpu))
PY
  rm -f "$samples" "$json"
}

# The pid and all its descendants (Salt's master is a dozen forked processes).
pid_tree() {
  local pid=$1 child
  echo "$pid"
  for child in $(cat /proc/"$pid"/task/*/children 2>/dev/null); do pid_tree "$child"; done
}

# One process's VmRSS or Pss in kB (0 if it is gone).
vmrss() { awk '/^VmRSS:/ { print $2 }' /proc/"$1"/status 2>/dev/null || echo 0; }
pss() { awk '/^Pss:/ { print $2 }' /proc/"$1"/smaps_rollup 2>/dev/null || echo 0; }

# rss_row LABEL PID: appends "| LABEL | processes | VmRSS of PID | VmRSS summed over the tree |
# Pss summed over the tree |" (MiB) to $MEM_ROWS. The sum of VmRSS counts pages that forked
# processes share once per process; Pss splits them, so it is the fair total for a process tree.
rss_row() {
  local label=$1 pid=$2 p n=0 main rss_sum=0 pss_sum=0
  kill -0 "$pid" 2>/dev/null || { log "$label: pid $pid is not running"; return 1; }
  main=$(vmrss "$pid")
  for p in $(pid_tree "$pid"); do
    n=$((n + 1))
    rss_sum=$((rss_sum + $(vmrss "$p")))
    pss_sum=$((pss_sum + $(pss "$p")))
  done
  awk -v l="$label" -v n="$n" -v m="$main" -v r="$rss_sum" -v s="$pss_sum" \
    'BEGIN { printf "| %s | %d | %.1f | %.1f | %.1f |\n", l, n, m / 1024, r / 1024, s / 1024 }' >> "$MEM_ROWS"
}

# count_true CMD...: how many minions answered True to a test.ping given as CMD (output as txt).
count_true() { "$@" 2>/dev/null | grep -c ': True$' || true; }

# wait_answers N TRIES CMD...: waits until CMD (a '*' test.ping, txt output) shows N True answers.
wait_answers() {
  local want=$1 tries=$2 got=0; shift 2
  for _ in $(seq 1 "$tries"); do
    got=$(count_true "$@")
    [ "$got" -eq "$want" ] && return 0
    sleep 1
  done
  log "only $got of $want minions answered: $*"
  return 1
}

# stop_pid PID: SIGTERM, up to 30 s to exit, then SIGKILL.
stop_pid() {
  local p=$1
  kill -TERM "$p" 2>/dev/null || return 0
  for _ in $(seq 1 300); do kill -0 "$p" 2>/dev/null || return 0; sleep 0.1; done
  kill -KILL "$p" 2>/dev/null || true
}

# CPU seconds (user+system) a process has used so far.
cpu_secs() { awk -v hz="$(getconf CLK_TCK)" '{ printf "%.2f", ($14 + $15) / hz }' /proc/"$1"/stat; }
# The same over PID and all its descendants, counting also the children they have reaped
# (fields 16, 17): Salt's master forks workers, its minion a process per job.
tree_cpu_secs() {
  local p
  for p in $(pid_tree "$1"); do cat /proc/"$p"/stat 2>/dev/null || true; done \
    | awk -v hz="$(getconf CLK_TCK)" '{ t += $14 + $15 + $16 + $17 } END { printf "%.2f", t / hz }'
}
now() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.2f", b - a }'; }

# start_master DIR: our release master ($BIN) with config DIR/etc and root_dir DIR/root, output
# appended to DIR/master.out; returns once its control socket is up. Sets MASTER_PID, adds to PIDS.
start_master() {
  local dir=$1
  rm -f "$dir/root/var/run/salt/master/master.sock"
  "$BIN/salt-master" -c "$dir/etc" -l quiet >>"$dir/master.out" 2>&1 &
  MASTER_PID=$!
  PIDS+=("$MASTER_PID")
  for _ in $(seq 1 300); do [ -S "$dir/root/var/run/salt/master/master.sock" ] && return 0; sleep 0.1; done
  log "the master did not start"; cat "$dir/master.out" >&2; return 1
}

# start_minions FIRST LAST: our release minions minion<FIRST>..minion<LAST> ($BIN), each with its
# own config and root dir under ${MINION_DIR:-$WORK}, dialling 127.0.0.1:$PORT; accepts their keys
# on the master configured in $ETC and waits until all minions started so far answer a '*'
# test.ping. Sets PID_minion<i>, adds to PIDS.
start_minions() {
  local i id dir=${MINION_DIR:-$WORK}
  for i in $(seq "$1" "$2"); do
    id=minion$i
    mkdir -p "$dir/etc-$id"
    cat > "$dir/etc-$id/minion" <<CONF
id: $id
root_dir: $dir/root-$id
master: 127.0.0.1
master_port: $PORT
acceptance_wait_time: 1
CONF
    "$BIN/salt-minion" -c "$dir/etc-$id" -l quiet >"$dir/$id.out" 2>&1 &
    PIDS+=("$!")
    eval "PID_$id=$!"
  done
  accept_pending minion $(( $2 - $1 + 1 )) "$2"
}

# accept_pending PREFIX PENDING ANSWERING: once PENDING keys of ids starting with PREFIX wait
# (up to 60 s), accepts every pending key on the master configured in $ETC, then waits until
# ANSWERING minions answer a '*' test.ping.
accept_pending() {
  local prefix=$1 pending=$2 answering=$3
  for _ in $(seq 1 600); do
    [ "$("$BIN/salt-key" -c "$ETC" -l un 2>/dev/null | grep -c "^$prefix")" -ge "$pending" ] && break
    sleep 0.1
  done
  "$BIN/salt-key" -c "$ETC" -A -y >/dev/null
  wait_answers "$answering" 60 "$BIN/salt" -c "$ETC" '*' test.ping --out txt -t 2
}

# start_real_salt_minions FIRST LAST: real Salt minions minion<FIRST>..minion<LAST> from $VENV,
# next to the master and minion1 that /work/shared/tools/real-salt.sh set up under $BASE (configs
# in $ETC/<id>, roots in $BASE/root/<id>, where its `stop` finds them), on $RET_PORT/$PUB_PORT.
# They daemonize; the master (auto_accept: True) accepts them. Does not wait for them.
start_real_salt_minions() {
  local i id
  for i in $(seq "$1" "$2"); do
    id=minion$i
    mkdir -p "$ETC/$id"
    # The same settings real-salt.sh gives minion1 (minus the unused mysql.* keys).
    cat > "$ETC/$id/minion" <<EOF
root_dir: $BASE/root/$id
id: $id
master: 127.0.0.1
master_port: $RET_PORT
publish_port: $PUB_PORT
user: root
log_level_logfile: info
EOF
    "$VENV/bin/salt-minion" -c "$ETC/$id" -d
  done
}

# Prints the two tables collected in $ROWS and $MEM_ROWS under the heading $1.
print_tables() {
  echo
  echo "### $1"
  echo
  echo "Machine: $(nproc) cores, $(awk -F': ' '/^model name/ { print $2; exit }' /proc/cpuinfo)," \
       "$(awk '/^MemTotal/ { printf "%.1f GiB", $2 / 1048576 }' /proc/meminfo), kernel $(uname -r)." \
       "Timer: $(command -v hyperfine >/dev/null 2>&1 && hyperfine --version || echo 'plain loop')," \
       "warm-up $WARMUP, runs $RUNS. Load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)."
  echo
  echo "| Latency (ms) | mean | median | min | max | runs | CLI CPU (user+sys) |"
  echo "|---|---:|---:|---:|---:|---:|---:|"
  cat "$ROWS"
  echo
  echo "| Memory after ${IDLE_SECS}s idle (MiB) | processes | VmRSS main pid | VmRSS sum | Pss sum |"
  echo "|---|---:|---:|---:|---:|"
  cat "$MEM_ROWS"
}
