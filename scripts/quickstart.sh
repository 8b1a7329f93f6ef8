#!/usr/bin/env bash
# Build the programs, then start a local master and minion under a throw-away root dir with
# embedded defaults (loopback only, a free port), accept this pair's key, and run a first
# `salt '*' test.ping`. Needs no database or other service.
#
#   scripts/quickstart.sh          # prints how to use and stop the pair it started
#   SALTRS_ROOT=/tmp/x scripts/quickstart.sh
set -euo pipefail
cd "$(dirname "$0")/.."

cargo build --release --bins
BIN=$PWD/target/release
ROOT=${SALTRS_ROOT:-$(mktemp -d /tmp/saltrs.XXXXXX)}
PORT=${SALTRS_PORT:-$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')}
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
for _ in $(seq 1 100); do
  "$BIN/salt-key" -c "$ETC" -l un 2>/dev/null | grep -qx local-minion && break
  sleep 0.1
done
"$BIN/salt-key" -c "$ETC" -a local-minion -y
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
