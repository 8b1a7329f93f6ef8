#!/usr/bin/env bash
# Check or start the local services the integration tests talk to, on loopback.
#   scripts/services.sh check   # exit 1 if one is down
#   scripts/services.sh start   # start whichever is down (as root, from Debian's packages)
set -uo pipefail

up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

check() {
  local rc=0
  for svc in "mariadb 3306" "postgresql 5432" "redis 6379"; do
    set -- $svc
    if up "$2"; then echo "$1 is up on 127.0.0.1:$2"; else echo "$1 is DOWN on 127.0.0.1:$2"; rc=1; fi
  done
  return $rc
}

start() {
  if ! up 3306; then
    command -v mariadbd >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq mariadb-server; }
    mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld 2>/dev/null || true
    start-stop-daemon --start --oknodo --background --exec /usr/sbin/mariadbd
  fi
  if ! up 5432; then
    command -v pg_ctlcluster >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql; }
    pg_ctlcluster --skip-systemctl-redirect "$(ls /etc/postgresql | head -1)" main start
  fi
  if ! up 6379; then
    command -v redis-server >/dev/null || { apt-get update -qq; DEBIAN_FRONTEND=noninteractive apt-get install -y -qq redis-server; }
    redis-server --daemonize yes --bind 127.0.0.1 -::1 --port 6379 --save "" --appendonly no --dir /tmp --logfile /tmp/redis-ci.log
  fi
  for _ in $(seq 1 30); do check >/dev/null && { check; return 0; }; sleep 1; done
  check
}

case "${1:-check}" in
  check) check ;;
  start) start ;;
  *) echo "usage: $0 check|start" >&2; exit 2 ;;
esac
