#!/usr/bin/env bash
# The database servers the integration tests talk to, on loopback.
#
#   scripts/services.sh check          # exit 1 unless MariaDB and PostgreSQL take the tests' logins
#   scripts/services.sh start          # use the usual ones (3306, 5432) if they take the tests'
#                                      # logins, else start PRIVATE instances; write the env file
#   scripts/services.sh start-private  # always start private instances (the usual ones may run)
#   scripts/services.sh env            # print the env file (export lines for the tests)
#   scripts/services.sh stop           # stop the private instances (never the machine's own)
#
# The tests expect: MariaDB with a passwordless `root` over TCP (SALTRS_TEST_MYSQL,
# SALTRS_TEST_MYSQL_HOST, SALTRS_TEST_MYSQL_PORT) and PostgreSQL with a passwordless
# `postgres` over TCP (SALTRS_TEST_POSTGRES). A stock Debian install gives neither (MariaDB's
# root is socket-only, PostgreSQL asks for a password over TCP), so the private instances are
# set up for that: their own data under $SALTRS_SERVICES_DIR (default /var/tmp/saltrs-services),
# their own ports ($SALTRS_PRIVATE_MYSQL_PORT, default 13306; $SALTRS_PRIVATE_PG_PORT, default
# 15432), run as the `mysql` and `postgres` users when started as root. Missing server
# packages are installed from Debian's (as root).
#
# `start` writes the variables to $SALTRS_SERVICES_DIR/env and prints them; `.ci/run` sources
# that file. Every server is stopped by its own pid file, never by name.
set -uo pipefail

DIR=${SALTRS_SERVICES_DIR:-/var/tmp/saltrs-services}
MY_PORT=${SALTRS_PRIVATE_MYSQL_PORT:-13306}
PG_PORT=${SALTRS_PRIVATE_PG_PORT:-15432}
ENV_FILE=$DIR/env
# Where the machine's own servers would be (overridable to try the fallback on a machine
# that has them).
USUAL_MY_PORT=${SALTRS_USUAL_MYSQL_PORT:-3306}
USUAL_PG_PORT=${SALTRS_USUAL_PG_PORT:-5432}

say() { echo "services: $*" >&2; }
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
as_root() { [ "$(id -u)" -eq 0 ]; }

apt_install() {
  as_root || { say "cannot install $* (not root)"; return 1; }
  say "installing $*"
  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@"
}

# Runs "$@" as user $1 when root (for the servers that refuse root), else as ourselves.
as_user() {
  local user=$1; shift
  if as_root; then
    su "$user" -s /bin/sh -c "$(printf '%q ' "$@")"
  else
    "$@"
  fi
}

# Does the MariaDB on port $1 take a passwordless root over TCP?
mysql_ok() { mariadb -h 127.0.0.1 -P "$1" -uroot --connect-timeout=3 -e 'SELECT 1' >/dev/null 2>&1; }
# Does the PostgreSQL on port $1 take a passwordless postgres over TCP?
pg_ok() { PGCONNECT_TIMEOUT=3 psql -h 127.0.0.1 -p "$1" -U postgres -w -d postgres -Atc 'SELECT 1' >/dev/null 2>&1; }

pg_bin() {
  local v
  v=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -1)
  [ -n "$v" ] && echo "/usr/lib/postgresql/$v/bin"
}

start_private_mysql() {
  command -v mariadbd >/dev/null || command -v /usr/sbin/mariadbd >/dev/null || apt_install mariadb-server mariadb-client || return 1
  command -v mariadb >/dev/null || apt_install mariadb-client || return 1
  local d=$DIR/mariadb cnf=$DIR/mariadb/my.cnf
  if up "$MY_PORT"; then
    mysql_ok "$MY_PORT" && { say "private MariaDB already up on 127.0.0.1:$MY_PORT"; return 0; }
    say "something else listens on 127.0.0.1:$MY_PORT; set SALTRS_PRIVATE_MYSQL_PORT"; return 1
  fi
  mkdir -p "$d/data" "$d/run"
  local user_line=""
  if as_root; then
    user_line="user=mysql"
    chown -R mysql:mysql "$d"
  fi
  cat > "$cnf" <<CNF
[mysqld]
$user_line
datadir=$d/data
socket=$d/run/mysqld.sock
pid-file=$d/run/mysqld.pid
port=$MY_PORT
bind-address=127.0.0.1
log-error=$d/error.log
skip-log-bin
innodb_buffer_pool_size=64M
[client]
socket=$d/run/mysqld.sock
CNF
  if [ ! -d "$d/data/mysql" ]; then
    say "initialising a private MariaDB in $d"
    mariadb-install-db --defaults-file="$cnf" --auth-root-authentication-method=normal \
      --skip-test-db >"$d/install.log" 2>&1 || { cat "$d/install.log" >&2; return 1; }
    as_root && chown -R mysql:mysql "$d"
  fi
  /usr/sbin/mariadbd --defaults-file="$cnf" </dev/null >/dev/null 2>&1 &
  for _ in $(seq 1 60); do
    mariadb --defaults-file="$cnf" -uroot -e 'SELECT 1' >/dev/null 2>&1 && break
    sleep 0.5
  done
  # A passwordless root over TCP, whatever 127.0.0.1 resolves to.
  mariadb --defaults-file="$cnf" -uroot -e "
    CREATE USER IF NOT EXISTS 'root'@'127.0.0.1'; GRANT ALL ON *.* TO 'root'@'127.0.0.1' WITH GRANT OPTION;
    CREATE USER IF NOT EXISTS 'root'@'localhost'; GRANT ALL ON *.* TO 'root'@'localhost' WITH GRANT OPTION;
    FLUSH PRIVILEGES;" || { say "cannot set up MariaDB's logins (see $d/error.log)"; return 1; }
  mysql_ok "$MY_PORT" || { say "the private MariaDB does not take root over TCP (see $d/error.log)"; return 1; }
  say "private MariaDB up on 127.0.0.1:$MY_PORT (data $d, pid $(cat "$d/run/mysqld.pid" 2>/dev/null))"
}

start_private_pg() {
  local bin
  bin=$(pg_bin)
  if [ -z "$bin" ]; then apt_install postgresql postgresql-client || return 1; bin=$(pg_bin); fi
  command -v psql >/dev/null || apt_install postgresql-client || return 1
  local d=$DIR/postgresql
  if up "$PG_PORT"; then
    pg_ok "$PG_PORT" && { say "private PostgreSQL already up on 127.0.0.1:$PG_PORT"; return 0; }
    say "something else listens on 127.0.0.1:$PG_PORT; set SALTRS_PRIVATE_PG_PORT"; return 1
  fi
  mkdir -p "$d/sock"
  as_root && chown -R postgres:postgres "$d"
  if [ ! -f "$d/data/PG_VERSION" ]; then
    say "initialising a private PostgreSQL in $d"
    as_user postgres "$bin/initdb" -D "$d/data" -A trust -U postgres >"$DIR/pg-initdb.log" 2>&1 \
      || { cat "$DIR/pg-initdb.log" >&2; return 1; }
  fi
  as_user postgres "$bin/pg_ctl" -D "$d/data" -l "$d/server.log" -w -t 60 \
    -o "-p $PG_PORT -k $d/sock -c listen_addresses=127.0.0.1" start >/dev/null \
    || { say "PostgreSQL did not start (see $d/server.log)"; return 1; }
  pg_ok "$PG_PORT" || { say "the private PostgreSQL does not take postgres over TCP (see $d/server.log)"; return 1; }
  say "private PostgreSQL up on 127.0.0.1:$PG_PORT (data $d)"
}

write_env() {
  local my_port=$1 pg_port=$2
  mkdir -p "$DIR"
  cat > "$ENV_FILE" <<ENV
export SALTRS_TEST_MYSQL=mysql://root@127.0.0.1:$my_port
export SALTRS_TEST_MYSQL_HOST=127.0.0.1
export SALTRS_TEST_MYSQL_PORT=$my_port
export SALTRS_TEST_POSTGRES=postgres://postgres@127.0.0.1:$pg_port
ENV
  cat "$ENV_FILE"
}

check() {
  local rc=0
  if mysql_ok "$USUAL_MY_PORT"; then echo "mariadb takes a passwordless root on 127.0.0.1:$USUAL_MY_PORT"
  else echo "mariadb: no passwordless root over TCP on 127.0.0.1:$USUAL_MY_PORT"; rc=1; fi
  if pg_ok "$USUAL_PG_PORT"; then echo "postgresql takes a passwordless postgres on 127.0.0.1:$USUAL_PG_PORT"
  else echo "postgresql: no passwordless postgres over TCP on 127.0.0.1:$USUAL_PG_PORT"; rc=1; fi
  return $rc
}

# start [private]: the usual servers when they take the tests' logins, else private ones.
start() {
  local private=${1:-} my_port=$USUAL_MY_PORT pg_port=$USUAL_PG_PORT
  command -v mariadb >/dev/null || apt_install mariadb-client || return 1
  command -v psql >/dev/null || apt_install postgresql-client || return 1
  mkdir -p "$DIR"
  if [ -n "$private" ] || ! mysql_ok "$USUAL_MY_PORT"; then
    [ -n "$private" ] || say "no usable MariaDB on 127.0.0.1:$USUAL_MY_PORT (the tests need a passwordless root over TCP)"
    start_private_mysql || return 1
    my_port=$MY_PORT
  fi
  if [ -n "$private" ] || ! pg_ok "$USUAL_PG_PORT"; then
    [ -n "$private" ] || say "no usable PostgreSQL on 127.0.0.1:$USUAL_PG_PORT (the tests need a passwordless postgres over TCP)"
    start_private_pg || return 1
    pg_port=$PG_PORT
  fi
  write_env "$my_port" "$pg_port"
}

stop() {
  local pid bin
  pid=$(cat "$DIR/mariadb/run/mysqld.pid" 2>/dev/null)
  if [ -n "$pid" ] && kill "$pid" 2>/dev/null; then
    say "stopping the private MariaDB (pid $pid)"
    for _ in $(seq 1 60); do kill -0 "$pid" 2>/dev/null || break; sleep 0.5; done
  fi
  bin=$(pg_bin)
  if [ -n "$bin" ] && [ -f "$DIR/postgresql/data/postmaster.pid" ]; then
    say "stopping the private PostgreSQL"
    as_user postgres "$bin/pg_ctl" -D "$DIR/postgresql/data" stop -m fast >/dev/null
  fi
  rm -f "$ENV_FILE"
}

case "${1:-check}" in
  check) check ;;
  start) start ;;
  start-private) start private ;;
  env) cat "$ENV_FILE" ;;
  stop) stop ;;
  *) echo "usage: $0 check|start|start-private|env|stop" >&2; exit 2 ;;
esac
