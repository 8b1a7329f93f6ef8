#!/usr/bin/env bash
# The data-size measures of issue 10, at 1,000 to 50,000 minions, with no minion connected:
#
#   keys     `salt-key -A -y` over N pending keys, and `salt-key -L` over N accepted keys
#            (release salt-key; real Salt's salt-key -L on the same directory when SALT_VENV has it)
#   targets  `-G 'os:Debian'` and `G@os:Debian and web* or L@a,b` resolved over N minions' grains,
#            as publish() does it; the master's start with N data.p files; its RSS holding them
#            (the `bench_targeting` example of salt-master)
#   returns  `salt-run jobs.lookup_jid <jid>` of a job with N returns, to the end of printing,
#            stdout to a file and to a pipe (release salt-master and salt-run)
#
# Run from the repository root:  bash bench/scale.sh
# Knobs: PARTS ("keys targets returns"), SIZES ("1000 5000 10000 25000 50000"), RUNS (10),
# SALT_RUNS (5),
# DATA (/var/tmp/bench-scale: laid-out keys and caches are kept there between runs),
# SALT_VENV (/var/tmp/real-salt-bench/venv; `bash /work/shared/tools/real-salt.sh install`
# with BASE=/var/tmp/real-salt-bench makes it), SALT_SIZES (Salt's sizes, default SIZES).
# Binaries are built here (release) and copied under DATA, so a build of another branch into the
# shared target directory cannot change them half-way.
set -euo pipefail
cd "$(dirname "$0")/.."

PARTS=${PARTS:-keys targets returns}
SIZES=${SIZES:-1000 5000 10000 25000 50000}
SALT_SIZES=${SALT_SIZES:-$SIZES}
RUNS=${RUNS:-10}
SALT_RUNS=${SALT_RUNS:-5}
DATA=${DATA:-/var/tmp/bench-scale}
SALT_VENV=${SALT_VENV:-/var/tmp/real-salt-bench/venv}
TARGET=${CARGO_TARGET_DIR:-target}
BIN=${BIN:-$DATA/bin}
ROWS=$DATA/rows.md

log() { echo "== $*" >&2; }

mkdir -p "$DATA" "$BIN"
: > "$ROWS"

build() {
  log "building release binaries"
  cargo build -q --release -p saltrs --no-default-features --bin salt-key --bin salt-run --bin salt-master
  cargo build -q --release -p salt-pki --example lay_out_keys
  cargo build -q --release -p salt-master --example bench_targeting
  cargo build -q --release -p salt-returners --example bench_local_cache
  for b in salt-key salt-run salt-master examples/lay_out_keys examples/bench_targeting examples/bench_local_cache; do
    cp "$TARGET/release/$b" "$BIN/"
  done
}

# row LABEL JSON: one markdown row from a hyperfine export: mean / median / min / max ms, runs.
row() {
  python3 - "$1" "$2" >> "$ROWS" <<'PY'
import json, statistics, sys
label, path = sys.argv[1:3]
r = json.load(open(path))["results"][0]
t = [x * 1000 for x in r["times"]]
print(f"| {label} | {statistics.mean(t):.1f} | {statistics.median(t):.1f} | {min(t):.1f} | {max(t):.1f} | {len(t)} |")
PY
  tail -n1 "$ROWS" >&2
}

# A master config dir whose pki_dir is $1/pki.
conf_for() {
  mkdir -p "$1/conf"
  printf 'pki_dir: %s\nroot_dir: %s\ncachedir: %s\nsock_dir: %s\n' "$1/pki" "$1" "$1/cache" "$1/run" > "$1/conf/master"
}

# keys N: N pending keys laid out once under DATA/keys-N/template; every timed -A runs on a fresh
# copy (hyperfine --prepare), -L on the accepted result.
keys() {
  local n=$1 dir=$DATA/keys-$n
  if [ ! -d "$dir/template/minions_pre" ]; then
    rm -rf "$dir"
    "$BIN/lay_out_keys" "$n" "$dir/template"
  fi
  conf_for "$dir"
  local prepare="rm -rf $dir/pki && cp -a $dir/template $dir/pki"
  hyperfine --style basic --runs "$RUNS" --prepare "$prepare" --export-json "$dir/accept.json" \
    --output=pipe "$BIN/salt-key -c $dir/conf -A -y" >&2
  row "\`salt-key -A -y\`, $n pending keys" "$dir/accept.json"
  # The last run left every key accepted: -L lists N accepted keys.
  [ "$(ls "$dir/pki/minions" | wc -l)" = "$n" ] || { log "accept left $(ls "$dir/pki/minions" | wc -l) of $n accepted"; exit 1; }
  hyperfine --style basic --shell=none --warmup 3 --runs "$RUNS" --export-json "$dir/list.json" \
    --output=pipe "$BIN/salt-key -c $dir/conf -L" >&2
  row "\`salt-key -L\`, $n accepted keys" "$dir/list.json"
}

salt_keys() {
  local n=$1 dir=$DATA/keys-$n
  [ -x "$SALT_VENV/bin/salt-key" ] || { log "no real Salt in $SALT_VENV: skipping its salt-key -L"; return 0; }
  # Salt puts root_dir in front of every path, so pki_dir /pki is our $dir/pki; its own
  # writable dirs (cachedir, sock_dir, log) go under $dir/salt-root.
  mkdir -p "$dir/salt-conf" "$dir/salt-root"
  printf 'root_dir: %s\npki_dir: /pki\nuser: root\nlog_file: /salt-root/master.log\ncachedir: /salt-root/cache\nsock_dir: /salt-root/run\n' \
    "$dir" > "$dir/salt-conf/master"
  cmp <("$SALT_VENV/bin/salt-key" -c "$dir/salt-conf" -L) <("$BIN/salt-key" -c "$dir/conf" -L) \
    || { log "salt-key -L: our output differs from Salt's at $n keys"; exit 1; }
  hyperfine --style basic --shell=none --warmup 1 --runs "$SALT_RUNS" --export-json "$dir/salt-list.json" \
    --output=pipe "$SALT_VENV/bin/salt-key -c $dir/salt-conf -L" >&2
  row "real Salt \`salt-key -L\`, $n accepted keys" "$dir/salt-list.json"
}

targets() {
  local n=$1 dir=$DATA/targets-$n
  mkdir -p "$dir"
  "$BIN/bench_targeting" "$n" "$dir" >> "$ROWS"
  tail -n8 "$ROWS" >&2
}

# returns N: a local_cache holding 1,000 jobs plus one with N returns, filled once through the
# store's own batch calls (salt-returners' bench_local_cache --keep), read by a master with no
# minion; the job's runner records go to a copy, so the kept cache never changes.
returns() {
  local n=$1 dir=$DATA/returns-$n
  if [ ! -s "$dir/jid" ]; then
    rm -rf "$dir"
    mkdir -p "$dir/kept"
    "$BIN/bench_local_cache" 1000 "$n" --keep "$dir/kept" > "$dir/fill.md" 2> "$dir/fill.log"
    sed -n 's/^big jid: //p' "$dir/fill.log" > "$dir/jid"
  fi
  rm -rf "$dir/root" && mkdir -p "$dir/root/cache" "$dir/etc"
  cp "$dir/kept/job_cache.sqlite" "$dir/root/cache/"
  local port; port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
  printf 'root_dir: %s\ncachedir: %s\ninterface: 127.0.0.1\nret_port: %s\nkeep_jobs_seconds: 0\n' \
    "$dir/root" "$dir/root/cache" "$port" > "$dir/etc/master"
  "$BIN/salt-master" -c "$dir/etc" -l quiet > "$dir/master.out" 2>&1 &
  local master=$!
  # shellcheck disable=SC2064
  trap "kill $master 2>/dev/null || true" EXIT
  local i
  for i in $(seq 1 300); do [ -S "$dir/root/var/run/salt/master/master.sock" ] && break; sleep 0.1; done
  local jid; jid=$(cat "$dir/jid")
  local got; got=$("$BIN/salt-run" -c "$dir/etc" jobs.lookup_jid "$jid" --out json | python3 -c 'import json,sys; print(len(json.load(sys.stdin)))')
  [ "$got" = "$n" ] || { log "lookup_jid gave $got returns, not $n"; exit 1; }
  hyperfine --style basic --warmup 1 --runs "$RUNS" --export-json "$dir/file.json" \
    "$BIN/salt-run -c $dir/etc jobs.lookup_jid $jid > $dir/out.txt" >&2
  row "\`salt-run jobs.lookup_jid\`, $n returns, stdout to a file" "$dir/file.json"
  log "printed $(wc -l < "$dir/out.txt") lines, $(wc -c < "$dir/out.txt") bytes"
  hyperfine --style basic --warmup 1 --runs "$RUNS" --export-json "$dir/pipe.json" \
    "$BIN/salt-run -c $dir/etc jobs.lookup_jid $jid | cat > /dev/null" >&2
  row "\`salt-run jobs.lookup_jid\`, $n returns, stdout to a pipe" "$dir/pipe.json"
  kill "$master"
  wait "$master" 2>/dev/null || true
  trap - EXIT
}

command -v hyperfine > /dev/null || { log "hyperfine is needed (apt-get install hyperfine)"; exit 1; }
[ -n "${NO_BUILD:-}" ] || build
log "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
for part in $PARTS; do
  for n in $SIZES; do
    case $part in
      keys) keys "$n" ;;
      targets) targets "$n" ;;
      returns) returns "$n" ;;
      *) log "unknown part $part"; exit 2 ;;
    esac
  done
  if [ "$part" = keys ]; then
    for n in $SALT_SIZES; do salt_keys "$n"; done
  fi
done
log "load average: $(cut -d' ' -f1-3 /proc/loadavg)"
echo "| Measure | mean ms | median ms | min ms | max ms | runs |"
echo "|---|---:|---:|---:|---:|---:|"
cat "$ROWS"
