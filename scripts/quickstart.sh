#!/usr/bin/env bash
# Build the programs, then start a local master and minion under a throw-away root dir with
# embedded defaults (loopback only, a free port), accept this pair's key, and run a first
# `salt '*' test.ping`. Needs no database or other service.
#
#   scripts/quickstart.sh          # prints how to use and stop the pair it started
#   SALTRS_ROOT=/tmp/x scripts/quickstart.sh
#
# The programs are built where cargo puts them: `CARGO_TARGET_DIR` (or a `build.target-dir`
# setting) is honoured. If anything fails, the daemons it started are stopped and the
# throw-away directory it made is removed.
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --bins
# Where cargo put them (CARGO_TARGET_DIR, .cargo/config.toml, or ./target).
TARGET_DIR=$(cargo metadata --format-version 1 --no-deps |
  sed -n 's/.*"target_directory":"\([^"]*\)".*/\1/p')
BIN=${TARGET_DIR:-$PWD/target}/release
[ -x "$BIN/salt-master" ] || { echo "quickstart: no salt-master in $BIN after the build" >&2; exit 1; }

MADE_ROOT=
if [ -n "${SALTRS_ROOT:-}" ]; then
  ROOT=$SALTRS_ROOT
else
  ROOT=$(mktemp -d /tmp/saltrs.XXXXXX)
  MADE_ROOT=$ROOT
fi
# On failure: stop what was started, remove the directory made here (never a SALTRS_ROOT).
cleanup() {
  local rc=$?
  [ "$rc" -eq 0 ] && return
  for pidfile in "$ROOT/master/var/run/salt-master.pid" "$ROOT/minion/var/run/salt-minion.pid"; do
    [ -s "$pidfile" ] && kill "$(cat "$pidfile")" 2>/dev/null
  done
  sleep 1
  [ -n "$MADE_ROOT" ] && rm -rf "$MADE_ROOT"
  echo "quickstart failed (exit $rc); stopped what it started${MADE_ROOT:+ and removed $MADE_ROOT}" >&2
}
trap cleanup EXIT
trap 'exit 130' INT TERM

# A port nothing listens on, below Linux's ephemeral range (bash alone: no python needed).
free_port() {
  local p
  for _ in $(seq 1 200); do
    p=$(( (RANDOM % 10000) + 20000 ))
    (exec 3<>"/dev/tcp/127.0.0.1/$p") 2>/dev/null || { echo "$p"; return; }
  done
  echo "quickstart: no free port found" >&2
  return 1
}
PORT=${SALTRS_PORT:-$(free_port)}
ETC=$ROOT/etc
MINION_ETC=$ROOT/etc-minion
mkdir -p "$ETC" "$MINION_ETC"

cat > "$ETC/master" <<CONF
root_dir: $ROOT/master
interface: 127.0.0.1
ret_port: $PORT
CONF
cat > "$MINION_ETC/minion" <<CONF
id: local-minion
root_dir: $ROOT/minion
master: 127.0.0.1
master_port: $PORT
acceptance_wait_time: 1
CONF

"$BIN/salt-master" -c "$ETC" -d
"$BIN/salt-minion" -c "$MINION_ETC" -d

# Accept the key of this local minion only, once it is waiting.
pending=
for _ in $(seq 1 100); do
  "$BIN/salt-key" -c "$ETC" -l un 2>/dev/null | grep -qx local-minion && { pending=1; break; }
  sleep 0.1
done
[ -n "$pending" ] || { echo "quickstart: the minion's key never arrived (see $ROOT/minion/var/log/salt/minion)" >&2; exit 1; }
"$BIN/salt-key" -c "$ETC" -a local-minion -y
# The minion retries every acceptance_wait_time seconds (1 here; Salt's default is 10).
for _ in $(seq 1 50); do
  "$BIN/salt" -c "$ETC" local-minion test.ping -t 1 >/dev/null 2>&1 && break
  sleep 0.2
done

echo "\$ salt -c $ETC '*' test.ping"
"$BIN/salt" -c "$ETC" '*' test.ping

cat <<EOF2

A master and a minion are running under $ROOT (port $PORT). Try:
  export PATH=$BIN:\$PATH
  salt -c $ETC '*' cmd.run 'uptime'
  salt -c $ETC '*' grains.items --out json
  salt-key -c $ETC -L
  salt-call -c $MINION_ETC --local test.ping
Stop them with:
  kill \$(cat $ROOT/master/var/run/salt-master.pid) \$(cat $ROOT/minion/var/run/salt-minion.pid)
EOF2
