#!/usr/bin/env bash
# The servers the integration tests talk to, on loopback.
#
#   scripts/services.sh check          # exit 1 unless MariaDB and PostgreSQL take the tests' logins
#   scripts/services.sh tools          # install the store servers the tests start themselves
#                                      # (see below) and write their paths to the env file
#   scripts/services.sh start          # tools, then: use the usual MariaDB and PostgreSQL (3306,
#                                      # 5432) if they take the tests' logins, else start PRIVATE
#                                      # instances; write the env file
#   scripts/services.sh start-private  # the same, but always private instances (the usual ones may run)
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
# The other stores (Redis, memcached, etcd, MongoDB, CouchDB, Elasticsearch) are started by the
# tests themselves, one server per test on a free port in a temporary dir (saltrs-testkit's
# `Server`); `tools` only installs the programs. Debian has Redis, memcached and etcd; the other
# three are stand-ins from PyPI and npm, pinned, installed under $SALTRS_SERVICES_DIR:
# SecantusDB (MongoDB wire protocol) and osmem-server (OpenSearch REST) in a venv, and
# pouchdb-server (CouchDB REST) with npm (slow: minutes); each is installed only when the pinned
# version is not already there. The carbon and syslog returners' tests start Debian's
# carbon-cache (graphite-carbon; python3-whisper for looking at its files by hand) and rsyslogd.
# Their paths go to the env file as SALTRS_REDIS_SERVER, SALTRS_MEMCACHED, SALTRS_ETCD,
# SALTRS_SECANTUSD, SALTRS_POUCHDB_SERVER, SALTRS_OSMEM_SERVER, SALTRS_CARBON_CACHE,
# SALTRS_RSYSLOGD.
# The smtp and highstate tests start aiosmtpd (Debian's python3-aiosmtpd, under Debian's
# Python: SALTRS_AIOSMTPD_PYTHON) and render HTML in headless Chromium (SALTRS_CHROMIUM).
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
# The store servers from PyPI and npm, pinned: a new release must not change what the tests run against.
SECANTUSDB_VERSION=0.7.0b3
OSMEM_VERSION=0.1.6
POUCHDB_VERSION=4.2.0
VENV=$DIR/venv
POUCH_DIR=$DIR/pouchdb
DB_VARS='SALTRS_TEST_MYSQL|SALTRS_TEST_MYSQL_HOST|SALTRS_TEST_MYSQL_PORT|SALTRS_TEST_POSTGRES'
TOOL_VARS='SALTRS_REDIS_SERVER|SALTRS_MEMCACHED|SALTRS_ETCD|SALTRS_SECANTUSD|SALTRS_POUCHDB_SERVER|SALTRS_OSMEM_SERVER|SALTRS_CARBON_CACHE|SALTRS_RSYSLOGD|SALTRS_AIOSMTPD_PYTHON|SALTRS_CHROMIUM'

say() { echo "services: $*" >&2; }
up() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }
as_root() { [ "$(id -u)" -eq 0 ]; }

# Installers write to stderr: stdout is the env file that .ci/run evals.
APT_UPDATED=
apt_install() {
  as_root || { say "cannot install $* (not root)"; return 1; }
  say "installing $*"
  if [ -z "$APT_UPDATED" ]; then
    apt-get update -qq >&2 || return 1
    APT_UPDATED=1
  fi
  DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >&2
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

# set_env NAMES: replaces the env file's lines for the variables NAMES (an ERE alternation)
# with the lines on stdin, keeping the others (`tools` and `start` each own some).
set_env() {
  local names=$1 new
  new=$(cat)
  mkdir -p "$DIR"
  {
    [ -f "$ENV_FILE" ] && grep -Ev "^export ($names)=" "$ENV_FILE"
    [ -n "$new" ] && printf '%s\n' "$new"
  } > "$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
}

write_env() {
  local my_port=$1 pg_port=$2
  set_env "$DB_VARS" <<ENV
export SALTRS_TEST_MYSQL=mysql://root@127.0.0.1:$my_port
export SALTRS_TEST_MYSQL_HOST=127.0.0.1
export SALTRS_TEST_MYSQL_PORT=$my_port
export SALTRS_TEST_POSTGRES=postgres://postgres@127.0.0.1:$pg_port
ENV
  cat "$ENV_FILE"
}

# The version of Python package $1 in the venv, if it is installed there.
venv_version() {
  "$VENV/bin/python" -c 'import importlib.metadata as m, sys; print(m.version(sys.argv[1]))' "$1" 2>/dev/null
}

# The installed pouchdb-server's version, from its package.json.
pouchdb_version() {
  sed -n 's/^ *"version": *"\([^"]*\)".*/\1/p' "$POUCH_DIR/node_modules/pouchdb-server/package.json" 2>/dev/null | head -1
}

# Installs what is missing of the store servers the tests start themselves, then writes their
# paths to the env file. Fails, naming each, when a program is still missing: its tests would
# skip, which CI forbids.
tools() {
  local pkgs=() need_venv='' need_pouch='' py=/usr/bin/python3 missing=() lines='' f
  command -v redis-server >/dev/null || pkgs+=(redis-server)
  command -v memcached >/dev/null || pkgs+=(memcached)
  command -v etcd >/dev/null || pkgs+=(etcd-server)
  [ -x /usr/bin/carbon-cache ] || pkgs+=(graphite-carbon)
  [ -x /usr/bin/whisper-fetch ] || pkgs+=(python3-whisper)
  [ -x /usr/sbin/rsyslogd ] || pkgs+=(rsyslog)
  # The smtp and highstate tests: a mail server (aiosmtpd, under Debian's Python) and a
  # browser that renders the HTML report headless.
  "$py" -c 'import aiosmtpd' 2>/dev/null || pkgs+=(python3-aiosmtpd)
  [ -x /usr/bin/chromium ] || pkgs+=(chromium)
  # Debian's Python, not a pyenv one on PATH that may come and go; its venv module needs
  # python3-venv (ensurepip).
  if [ "$(venv_version SecantusDB)" != "$SECANTUSDB_VERSION" ] || [ "$(venv_version osmem-server)" != "$OSMEM_VERSION" ]; then
    need_venv=1
    "$py" -c 'import ensurepip, venv' 2>/dev/null || pkgs+=(python3-venv)
  fi
  if [ "$(pouchdb_version)" != "$POUCHDB_VERSION" ]; then
    need_pouch=1
    command -v npm >/dev/null || pkgs+=(npm)
  fi
  [ ${#pkgs[@]} -eq 0 ] || apt_install "${pkgs[@]}"
  mkdir -p "$DIR"
  if [ -n "$need_venv" ]; then
    say "installing SecantusDB $SECANTUSDB_VERSION and osmem-server $OSMEM_VERSION in $VENV"
    # --clear: a venv whose Python went away cannot be repaired in place.
    if ! { "$VENV/bin/python" -c '' 2>/dev/null || "$py" -m venv --clear "$VENV" >&2; } \
      || ! "$VENV/bin/pip" install -q "SecantusDB==$SECANTUSDB_VERSION" "osmem-server==$OSMEM_VERSION" >&2; then
      say "could not install SecantusDB and osmem-server from PyPI"
    fi
  fi
  if [ -n "$need_pouch" ]; then
    say "installing pouchdb-server $POUCHDB_VERSION in $POUCH_DIR (npm: a few minutes)"
    mkdir -p "$POUCH_DIR"
    npm install --prefix "$POUCH_DIR" --no-audit --no-fund --loglevel=error "pouchdb-server@$POUCHDB_VERSION" >&2 \
      || say "could not install pouchdb-server from npm"
  fi

  # found VAR PROGRAM PATH: one export line, or a missing program.
  found() {
    if [ -n "$3" ] && [ -x "$3" ]; then
      lines+=$(printf 'export %s=%q' "$1" "$3")$'\n'
    else
      missing+=("$2 ($1)")
    fi
  }
  found SALTRS_REDIS_SERVER redis-server "$(command -v redis-server)"
  found SALTRS_MEMCACHED memcached "$(command -v memcached)"
  found SALTRS_ETCD etcd "$(command -v etcd)"
  found SALTRS_SECANTUSD secantusd-py "$VENV/bin/secantusd-py"
  found SALTRS_POUCHDB_SERVER pouchdb-server "$POUCH_DIR/node_modules/.bin/pouchdb-server"
  # The wheel's Go binary sits in site-packages, under the venv's Python version.
  local osmem=''
  for f in "$VENV"/lib/python3*/site-packages/osmem_server/bin/osmem-server; do [ -x "$f" ] && osmem=$f; done
  found SALTRS_OSMEM_SERVER osmem-server "$osmem"
  found SALTRS_CARBON_CACHE carbon-cache /usr/bin/carbon-cache
  found SALTRS_RSYSLOGD rsyslogd /usr/sbin/rsyslogd
  if "$py" -c 'import aiosmtpd' 2>/dev/null; then found SALTRS_AIOSMTPD_PYTHON python3-aiosmtpd "$py"
  else found SALTRS_AIOSMTPD_PYTHON python3-aiosmtpd ''; fi
  found SALTRS_CHROMIUM chromium /usr/bin/chromium
  printf '%s' "$lines" | set_env "$TOOL_VARS"
  if [ ${#missing[@]} -gt 0 ]; then
    say "missing store servers: ${missing[*]} (see the messages above); the tests that need them skip, a failure under CI=true"
    return 1
  fi
  say "store servers installed (paths in $ENV_FILE)"
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
  local private=${1:-} my_port=$USUAL_MY_PORT pg_port=$USUAL_PG_PORT rc=0
  # A missing store server fails `start`, but only after the databases are up and the env file
  # is written: the tests that do not need it can still run.
  tools || rc=1
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
  return $rc
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
  # The store servers' paths stay valid.
  set_env "$DB_VARS" </dev/null
}

case "${1:-check}" in
  check) check ;;
  tools) tools; rc=$?; cat "$ENV_FILE"; exit $rc ;;
  start) start ;;
  start-private) start private ;;
  env) cat "$ENV_FILE" ;;
  stop) stop ;;
  *) echo "usage: $0 check|tools|start|start-private|env|stop" >&2; exit 2 ;;
esac
