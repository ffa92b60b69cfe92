# shellcheck shell=bash
# PostgreSQL and MySQL/MariaDB servers for the objectql test suite.
#
# Sourced by scripts/test (bash 4+); it only defines functions, nothing runs
# on `source`:
#
#   source scripts/servers.sh
#   trap objectql_servers_cleanup EXIT      # or call it from your own trap
#   objectql_servers_setup || exit 1
#   objectql_servers_summary                # optional: what is being used
#
# Servers. OBJECTQL_POSTGRES_URL and OBJECTQL_MYSQL_URL name the servers to
# use (scheme://user[:password]@host[:port]/db[?query]; percent-encode
# '@', ':', '/', '?' and '#' in the user name and password). An explicitly
# given URL must be reachable, or setup fails saying so. Unset, they default
# to
#
#   postgres://postgres@127.0.0.1:5432/postgres
#   mysql://root@127.0.0.1:3306/test
#
# and when a default server is not reachable a throwaway one is started from
# the installed binaries (PostgreSQL: initdb/pg_ctl under
# /usr/lib/postgresql/*/bin; MariaDB: mariadb-install-db + mariadbd, or
# MySQL's mysqld --initialize-insecure) on a free local port, with its data
# in a temporary directory. When those binaries are missing and we are root
# on Debian/Ubuntu, `apt-get install postgresql` / `mariadb-server` is tried
# first. Whatever cannot be provided is reported — which server, which URL,
# which binaries — and setup returns 1; nothing is skipped.
#
# Per-run isolation. Setup creates one fresh database per server, named
# objectql_t_<pid>_<epoch>, and exports
#
#   OBJECTQL_TEST_RUN_ID         objectql_t_<pid>_<epoch>
#   OBJECTQL_TEST_POSTGRES_URL   the PostgreSQL URL with that database
#   OBJECTQL_TEST_MYSQL_URL      the MySQL URL with that database
#   OBJECTQL_POSTGRES_URL        the server URLs actually used (a throwaway
#   OBJECTQL_MYSQL_URL           server's when one was started)
#
# Tests put per-case schemas inside the PostgreSQL run database and create
# per-case MySQL databases named <run id>_<something>. objectql_servers_cleanup
# drops the run databases and every database named <run id>_*, and stops and
# deletes throwaway servers. At setup, objectql_t_<pid>_<epoch>[_*] databases
# older than six hours (left by crashed runs) are dropped.
#
# Knobs, mostly for testing this file:
#   OBJECTQL_FORCE_THROWAWAY=1|all|postgres|mysql[,...]
#                      do not use the default (or given) server; always start
#                      a throwaway one for the named servers
#   OBJECTQL_NO_APT=1  never run apt-get
#   OBJECTQL_SERVER_BIN_PATH=dir:dir
#                      where to look for server binaries (initdb, pg_ctl,
#                      mariadbd, mysqld, mariadb-install-db, mysql_install_db)
#                      instead of $PATH, /usr/lib/postgresql/*/bin, /usr/sbin …

if [[ -z ${BASH_VERSINFO:-} || ${BASH_VERSINFO[0]} -lt 4 ]]; then
  echo "scripts/servers.sh needs bash 4 or newer" >&2
  return 1 2>/dev/null || exit 1
fi

_OQ_DEFAULT_POSTGRES_URL='postgres://postgres@127.0.0.1:5432/postgres'
_OQ_DEFAULT_MYSQL_URL='mysql://root@127.0.0.1:3306/test'
_OQ_STALE_AFTER=21600 # seconds: six hours
# Our databases: objectql_t_<pid>_<epoch>, optionally followed by _<case>.
_OQ_NAME_RE='^objectql_t_([0-9]{1,10})_([0-9]{1,12})(_[a-z0-9_]*)?$'

_oq_say() { printf 'servers: %s\n' "$*" >&2; }

# A failure: the message, then `return 1` by the caller.
_oq_fail() {
  printf 'servers: ERROR: %s\n' "$1" >&2
  shift
  local arg line
  for arg in "$@"; do
    while IFS= read -r line; do printf 'servers:   %s\n' "$line" >&2; done <<<"$arg"
  done
}

_oq_urldecode() { # string varname
  local s=${1//\\/\\\\}
  printf -v "$2" '%b' "${s//%/\\x}"
}

# The URL with its password replaced by ***, for printing.
_oq_redact() {
  local url=$1
  if [[ $url =~ ^([^:]+://[^:/@]*:)[^/?#]*(@[^@/?#]*([/?#].*)?)$ ]]; then
    url="${BASH_REMATCH[1]}***${BASH_REMATCH[2]}"
  fi
  printf '%s' "$url"
}

# _oq_parse_url URL PREFIX DEFAULT_PORT DEFAULT_USER
# Sets PREFIX_{scheme,user,pass,host,port,db,query,auth,hostport}; `auth`
# is the raw "userinfo@" part (or empty), `hostport` the raw host[:port].
_oq_parse_url() {
  local url=$1 p=$2 scheme authority path query userinfo='' auth='' hostport
  local user='' pass='' host port db
  if ! [[ $url =~ ^([A-Za-z][A-Za-z0-9+.-]*)://([^/?#]*)(/[^?#]*)?(\?[^#]*)?(#.*)?$ ]]; then
    return 1
  fi
  scheme=${BASH_REMATCH[1],,}
  authority=${BASH_REMATCH[2]}
  path=${BASH_REMATCH[3]}
  query=${BASH_REMATCH[4]}
  hostport=$authority
  if [[ $authority == *@* ]]; then
    userinfo=${authority%@*}
    hostport=${authority##*@}
    auth="$userinfo@"
    if [[ $userinfo == *:* ]]; then
      _oq_urldecode "${userinfo%%:*}" user
      _oq_urldecode "${userinfo#*:}" pass
    else
      _oq_urldecode "$userinfo" user
    fi
  fi
  if [[ $hostport =~ ^\[([0-9A-Fa-f:.]+)\](:([0-9]*))?$ ]]; then
    host=${BASH_REMATCH[1]}
    port=${BASH_REMATCH[3]}
  elif [[ $hostport =~ ^([^:]*)(:([0-9]*))?$ ]]; then
    host=${BASH_REMATCH[1]}
    port=${BASH_REMATCH[3]}
  else
    return 1
  fi
  [[ -n $host ]] || return 1
  _oq_urldecode "$host" host
  _oq_urldecode "${path#/}" db
  printf -v "${p}_scheme" '%s' "$scheme"
  printf -v "${p}_user" '%s' "${user:-$4}"
  printf -v "${p}_pass" '%s' "$pass"
  printf -v "${p}_host" '%s' "$host"
  printf -v "${p}_port" '%s' "${port:-$3}"
  printf -v "${p}_db" '%s' "$db"
  printf -v "${p}_query" '%s' "$query"
  printf -v "${p}_auth" '%s' "$auth"
  printf -v "${p}_hostport" '%s' "$hostport"
}

# Is OBJECTQL_FORCE_THROWAWAY asking for a throwaway server of kind $1?
_oq_forced() {
  local v=",${OBJECTQL_FORCE_THROWAWAY:-},"
  v=${v,,}
  v=${v// /}
  case $v in
    *,1,* | *,all,* | *,yes,* | *,true,* | *",$1,"*) return 0 ;;
  esac
  if [[ $1 == postgres && $v == *,pg,* ]] || [[ $1 == mysql && $v == *,mariadb,* ]]; then
    return 0
  fi
  return 1
}

# Directories searched for server binaries, one a line.
_oq_bin_dirs() {
  local d
  if [[ -n ${OBJECTQL_SERVER_BIN_PATH:-} ]]; then
    tr ':' '\n' <<<"$OBJECTQL_SERVER_BIN_PATH"
    return 0
  fi
  tr ':' '\n' <<<"${PATH:-}"
  # Newest PostgreSQL first.
  for d in /usr/lib/postgresql/*/bin /usr/pgsql-*/bin; do
    if [[ -d $d ]]; then printf '%s\n' "$d"; fi
  done | sort -V -r
  printf '%s\n' /usr/sbin /usr/local/sbin /usr/libexec /usr/local/bin \
    /usr/local/pgsql/bin /usr/local/mysql/bin /usr/local/mysql/scripts
}

# _oq_find_bin NAME...: the first executable NAME found (PATH first, then the
# usual server directories), printed; fails when there is none.
_oq_find_bin() {
  local name d
  for name in "$@"; do
    if command -v "$name" >/dev/null 2>&1; then
      command -v "$name"
      return 0
    fi
  done
  for name in "$@"; do
    while IFS= read -r d; do
      if [[ -n $d && -x $d/$name && ! -d $d/$name ]]; then
        printf '%s\n' "$d/$name"
        return 0
      fi
    done < <(OBJECTQL_SERVER_BIN_PATH='' _oq_bin_dirs)
  done
  return 1
}

# Like _oq_find_bin, but only in the server directories (OBJECTQL_SERVER_BIN_PATH
# overrides them).
_oq_find_server_bin() {
  local name d
  for name in "$@"; do
    while IFS= read -r d; do
      if [[ -n $d && -x $d/$name && ! -d $d/$name ]]; then
        printf '%s\n' "$d/$name"
        return 0
      fi
    done < <(_oq_bin_dirs)
  done
  return 1
}

# Can we apt-get install? If not, why not in _OQ_NO_APT_WHY.
_oq_can_apt() {
  _OQ_NO_APT_WHY=''
  if [[ -n ${OBJECTQL_NO_APT:-} ]]; then
    _OQ_NO_APT_WHY='OBJECTQL_NO_APT is set'
  elif [[ ! -f /etc/debian_version ]] || ! command -v apt-get >/dev/null 2>&1; then
    _OQ_NO_APT_WHY='not Debian/Ubuntu with apt-get'
  elif [[ $(id -u) != 0 ]]; then
    _OQ_NO_APT_WHY='not root'
  fi
  [[ -z $_OQ_NO_APT_WHY ]]
}

_oq_apt_install() {
  _oq_say "installing $* (apt-get)"
  if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null 2>&1; then
    DEBIAN_FRONTEND=noninteractive apt-get update -qq >/dev/null 2>&1
    if ! DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null; then
      _oq_say "apt-get install $* failed"
      return 1
    fi
  fi
}

# Runs a command as user $1 (root only), in directory $2.
_oq_as() {
  local user=$1 dir=$2
  shift 2
  if [[ $user == "$(id -un)" ]]; then
    (cd "$dir" && "$@")
  elif command -v runuser >/dev/null 2>&1; then
    (cd "$dir" && runuser -u "$user" -- "$@")
  else
    (cd "$dir" && su -s /bin/bash "$user" -c "$(printf '%q ' "$@")")
  fi
}

# A TCP port on 127.0.0.1 nothing listens on, at or above $1.
_oq_free_port() {
  local port=$1 last=$(($1 + 200))
  while ((port <= last)); do
    if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      printf '%s\n' "$port"
      return 0
    fi
    port=$((port + 1))
  done
  return 1
}

# The user a throwaway server runs as (root may not run them) — $1 if it
# exists, else nobody — or ourselves when we are not root.
_oq_server_user() {
  if [[ $(id -u) != 0 ]]; then
    id -un
  elif id -u "$1" >/dev/null 2>&1; then
    printf '%s\n' "$1"
  else
    printf 'nobody\n'
  fi
}

_oq_tail() { # file: its last lines, for error messages
  if [[ -f $1 ]]; then tail -n 15 "$1" 2>/dev/null; fi
  return 0
}

# ---------------------------------------------------------------- PostgreSQL

# _oq_pg DB ARGS...: psql against the chosen server, as its URL's user.
_oq_pg() {
  local db=$1
  shift
  local -a envs=(PGCONNECT_TIMEOUT=10)
  if [[ -n $_OQ_PG_pass ]]; then envs+=("PGPASSWORD=$_OQ_PG_pass"); fi
  env "${envs[@]}" "$_OQ_PSQL" -X -q -A -t -v ON_ERROR_STOP=1 \
    -h "$_OQ_PG_host" -p "$_OQ_PG_port" -U "$_OQ_PG_user" -d "$db" "$@"
}

# Reachable, and the URL's user can log in? The error, if any, in _OQ_PG_ERR.
_oq_pg_reachable() {
  _OQ_PG_ERR=''
  # pg_isready only says "no response"; psql's error is the useful one.
  if [[ -n ${_OQ_PG_ISREADY:-} ]] &&
    ! "$_OQ_PG_ISREADY" -q -h "$_OQ_PG_host" -p "$_OQ_PG_port" -t 5 >/dev/null 2>&1; then
    _OQ_PG_ERR=$(_oq_pg "$_OQ_PG_admin_db" -c 'select 1' 2>&1 >/dev/null) || true
    _OQ_PG_ERR=${_OQ_PG_ERR:-"pg_isready: no response from $_OQ_PG_host:$_OQ_PG_port"}
    return 1
  fi
  if ! _OQ_PG_ERR=$(_oq_pg "$_OQ_PG_admin_db" -c 'select 1' 2>&1 >/dev/null); then
    return 1
  fi
  _OQ_PG_ERR=''
}

_oq_pg_drop() { # database name
  local out
  if out=$(_oq_pg "$_OQ_PG_admin_db" -c "DROP DATABASE IF EXISTS \"$1\" WITH (FORCE)" 2>&1); then
    return 0
  fi
  # Before PostgreSQL 13 there is no WITH (FORCE).
  if _oq_pg "$_OQ_PG_admin_db" -c "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = '$1'" >/dev/null 2>&1 &&
    out=$(_oq_pg "$_OQ_PG_admin_db" -c "DROP DATABASE IF EXISTS \"$1\"" 2>&1); then
    return 0
  fi
  _oq_say "warning: could not drop PostgreSQL database $1: $out"
  return 1
}

_oq_pg_databases() { _oq_pg "$_OQ_PG_admin_db" -c 'SELECT datname FROM pg_database'; }

# A directory holding both initdb and pg_ctl, printed.
_oq_pg_find_bindir() {
  local d
  while IFS= read -r d; do
    if [[ -n $d && -x $d/initdb && -x $d/pg_ctl ]]; then
      printf '%s\n' "$d"
      return 0
    fi
  done < <(_oq_bin_dirs)
  return 1
}

_oq_pg_start_throwaway() {
  local bindir='' dir user port attempt
  if ! bindir=$(_oq_pg_find_bindir); then
    if _oq_can_apt && _oq_apt_install postgresql; then
      bindir=$(_oq_pg_find_bindir) || bindir=''
    fi
  fi
  if [[ -z $bindir ]]; then
    _OQ_PG_ERR="no PostgreSQL server binaries: initdb and pg_ctl were not found in \
${OBJECTQL_SERVER_BIN_PATH:-\$PATH or /usr/lib/postgresql/*/bin}"
    if ! _oq_can_apt; then
      _OQ_PG_ERR+=" (and apt-get install was not tried: $_OQ_NO_APT_WHY)"
    fi
    return 1
  fi
  if ! dir=$(mktemp -d "${TMPDIR:-/tmp}/objectql-pg.XXXXXX"); then
    _OQ_PG_ERR='mktemp -d failed'
    return 1
  fi
  _OQ_PG_TMPDIR=$dir
  _OQ_PG_BINDIR=$bindir
  user=$(_oq_server_user postgres)
  _OQ_PG_OSUSER=$user
  if [[ $(id -u) == 0 ]]; then chown "$user" "$dir"; fi
  _oq_say "starting a throwaway PostgreSQL ($("$bindir/pg_ctl" --version 2>/dev/null || printf '%s' "$bindir")) in $dir"
  if ! _oq_as "$user" "$dir" "$bindir/initdb" -D "$dir/data" -A trust -U postgres \
    -E UTF8 --no-locale --no-sync >"$dir/initdb.log" 2>&1; then
    _OQ_PG_ERR="initdb failed; the end of its output:
$(_oq_tail "$dir/initdb.log")"
    return 1
  fi
  cat >>"$dir/data/postgresql.conf" <<EOF
# objectql throwaway test server
listen_addresses = '127.0.0.1'
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
EOF
  port=55431
  for attempt in 1 2 3 4 5; do
    if ! port=$(_oq_free_port $((port + 1))); then
      _OQ_PG_ERR='no free TCP port on 127.0.0.1 from 55432'
      return 1
    fi
    if _oq_as "$user" "$dir" "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" \
      -o "-p $port" -w -t 60 start >/dev/null 2>&1; then
      _OQ_PG_STARTED=1
      _OQ_PG_host=127.0.0.1 _OQ_PG_port=$port _OQ_PG_user=postgres _OQ_PG_pass=''
      _OQ_PG_db=postgres _OQ_PG_admin_db=postgres _OQ_PG_query=''
      _OQ_PG_auth='postgres@' _OQ_PG_hostport="127.0.0.1:$port"
      _OQ_PG_URL="postgres://postgres@127.0.0.1:$port/postgres"
      return 0
    fi
    _oq_say "throwaway PostgreSQL did not start on port $port (attempt $attempt)"
    _oq_as "$user" "$dir" "$bindir/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
  done
  _OQ_PG_ERR="pg_ctl start failed; the end of the server log:
$(_oq_tail "$dir/server.log")"
  return 1
}

_oq_pg_stop_throwaway() {
  local dir=${_OQ_PG_TMPDIR:-} pid
  [[ -n $dir ]] || return 0
  if [[ -f $dir/data/postmaster.pid ]]; then
    if ! _oq_as "$_OQ_PG_OSUSER" "$dir" "$_OQ_PG_BINDIR/pg_ctl" -D "$dir/data" -m immediate \
      -w -t 30 stop >/dev/null 2>&1; then
      pid=$(head -n 1 "$dir/data/postmaster.pid" 2>/dev/null) || pid=''
      if [[ $pid =~ ^[0-9]+$ ]]; then kill -KILL "$pid" 2>/dev/null || true; fi
    fi
  fi
  rm -rf "$dir"
  _OQ_PG_TMPDIR='' _OQ_PG_STARTED=''
}

_oq_setup_postgres() {
  local url=${OBJECTQL_POSTGRES_URL:-} origin db out now name throwaway
  if [[ -n $url ]]; then origin=OBJECTQL_POSTGRES_URL; else
    url=$_OQ_DEFAULT_POSTGRES_URL
    origin=default
  fi
  if ! _oq_parse_url "$url" _OQ_PG 5432 postgres ||
    [[ $_OQ_PG_scheme != postgres && $_OQ_PG_scheme != postgresql ]]; then
    _oq_fail "PostgreSQL: $origin is not a postgres://user[:password]@host[:port]/db URL: $(_oq_redact "$url")"
    return 1
  fi
  _OQ_PG_admin_db=${_OQ_PG_db:-postgres}
  _OQ_PG_URL=$url
  _OQ_PG_ORIGIN=$origin

  if ! _OQ_PSQL=$(_oq_find_bin psql); then
    if _oq_can_apt && _oq_apt_install postgresql-client; then
      _OQ_PSQL=$(_oq_find_bin psql) || _OQ_PSQL=''
    fi
    if [[ -z $_OQ_PSQL ]]; then
      _oq_fail "PostgreSQL: the psql client is not installed (needed to create the test database on $(_oq_redact "$url"))" \
        "install it (Debian/Ubuntu: apt-get install postgresql-client)"
      return 1
    fi
  fi
  _OQ_PG_ISREADY=$(_oq_find_bin pg_isready) || _OQ_PG_ISREADY=''

  _OQ_PG_ERR=''
  throwaway=''
  if _oq_forced postgres; then
    _oq_say "OBJECTQL_FORCE_THROWAWAY: not using $(_oq_redact "$url"); starting a throwaway PostgreSQL"
    throwaway='OBJECTQL_FORCE_THROWAWAY is set'
  elif _oq_pg_reachable; then
    :
  elif [[ $origin != default ]]; then
    _oq_fail "PostgreSQL: the server in OBJECTQL_POSTGRES_URL is not usable: $(_oq_redact "$url")" \
      "${_OQ_PG_ERR//$'\n'/ }" \
      "start it or fix the URL, or unset OBJECTQL_POSTGRES_URL to let the tests start a throwaway server"
    return 1
  else
    _oq_say "no PostgreSQL at the default $url (${_OQ_PG_ERR//$'\n'/ }); starting a throwaway one"
    throwaway="nothing usable at the default $url"
  fi
  if [[ -n $throwaway ]]; then
    if ! _oq_pg_start_throwaway; then
      _oq_fail "PostgreSQL: a throwaway server was needed ($throwaway) but could not be started:" \
        "$_OQ_PG_ERR" \
        "install PostgreSQL (Debian/Ubuntu: apt-get install postgresql), or set OBJECTQL_POSTGRES_URL=postgres://user[:password]@host:port/db to a server whose user may create databases"
      return 1
    fi
    _OQ_PG_ORIGIN=throwaway
    if ! _oq_pg_reachable; then
      _oq_fail "PostgreSQL: the throwaway server on port $_OQ_PG_port does not answer: $_OQ_PG_ERR"
      return 1
    fi
  fi

  # Databases of crashed runs.
  now=$(date +%s)
  if out=$(_oq_pg_databases 2>&1); then
    while IFS= read -r name; do
      if [[ $name =~ $_OQ_NAME_RE ]] && ((now - 10#${BASH_REMATCH[2]} > _OQ_STALE_AFTER)); then
        _oq_say "dropping stale PostgreSQL database $name"
        _oq_pg_drop "$name" || true
      fi
    done <<<"$out"
  else
    _oq_say "warning: could not list PostgreSQL databases: $out"
  fi

  db=$OBJECTQL_TEST_RUN_ID
  if ! out=$(_oq_pg "$_OQ_PG_admin_db" -c "CREATE DATABASE \"$db\"" 2>&1); then
    _oq_fail "PostgreSQL: could not create the test database $db on $(_oq_redact "$_OQ_PG_URL"):" \
      "$out" "the URL's user needs the CREATEDB privilege"
    return 1
  fi
  _OQ_PG_RUN_DB=$db
  if ! out=$(_oq_pg "$db" -c 'select 1' 2>&1 >/dev/null); then
    _oq_fail "PostgreSQL: created $db but cannot connect to it: $out"
    return 1
  fi
  export OBJECTQL_POSTGRES_URL="$_OQ_PG_URL"
  export OBJECTQL_TEST_POSTGRES_URL="$_OQ_PG_scheme://$_OQ_PG_auth$_OQ_PG_hostport/$db$_OQ_PG_query"
}

# --------------------------------------------------------------------- MySQL

# _oq_my ARGS...: the mariadb/mysql client against the chosen server.
_oq_my() {
  local -a envs=()
  if [[ -n $_OQ_MY_pass ]]; then envs+=("MYSQL_PWD=$_OQ_MY_pass"); fi
  env ${envs[@]+"${envs[@]}"} "$_OQ_MYSQL" --no-defaults --protocol=TCP --connect-timeout=10 \
    -h "$_OQ_MY_host" -P "$_OQ_MY_port" -u "$_OQ_MY_user" --batch --skip-column-names "$@"
}

_oq_my_reachable() {
  _OQ_MY_ERR=''
  local -a envs=()
  if [[ -n $_OQ_MY_pass ]]; then envs+=("MYSQL_PWD=$_OQ_MY_pass"); fi
  # ping says "alive" even when the login is refused, hence the select —
  # whose error is also the clearer one when ping fails.
  if [[ -n ${_OQ_MYADMIN:-} ]] && ! env ${envs[@]+"${envs[@]}"} "$_OQ_MYADMIN" --no-defaults \
    --protocol=TCP --connect-timeout=5 -h "$_OQ_MY_host" -P "$_OQ_MY_port" -u "$_OQ_MY_user" \
    ping >/dev/null 2>&1; then
    _OQ_MY_ERR=$(_oq_my --connect-timeout=5 -e 'select 1' 2>&1 >/dev/null) || true
    _OQ_MY_ERR=${_OQ_MY_ERR:-"$_OQ_MYADMIN ping failed"}
    return 1
  fi
  if ! _OQ_MY_ERR=$(_oq_my -e 'select 1' 2>&1 >/dev/null); then
    return 1
  fi
  _OQ_MY_ERR=''
}

_oq_my_drop() { # database name
  local out
  if ! out=$(_oq_my -e "DROP DATABASE IF EXISTS \`$1\`" 2>&1); then
    _oq_say "warning: could not drop MySQL database $1: $out"
    return 1
  fi
}

_oq_my_databases() { _oq_my -e 'SHOW DATABASES'; }

_oq_my_start_throwaway() {
  local server='' installdb='' dir user port attempt pid i flavour=mariadb help version
  local -a as_user=()
  server=$(_oq_find_server_bin mariadbd mysqld) || server=''
  installdb=$(_oq_find_server_bin mariadb-install-db mysql_install_db) || installdb=''
  # (Output captured, not piped into grep -q: under pipefail an early-exiting
  # grep fails the pipeline.)
  version=''
  if [[ -n $server ]]; then version=$("$server" --version 2>&1) || version=''; fi
  if [[ -n $server && ${version,,} != *mariadb* ]]; then
    flavour=mysql # Oracle MySQL: mysqld --initialize-insecure, no install-db
  fi
  if [[ -z $server || ($flavour == mariadb && -z $installdb) ]]; then
    if _oq_can_apt && _oq_apt_install mariadb-server; then
      server=$(_oq_find_server_bin mariadbd mysqld) || server=''
      installdb=$(_oq_find_server_bin mariadb-install-db mysql_install_db) || installdb=''
      flavour=mariadb
    fi
  fi
  if [[ -z $server || ($flavour == mariadb && -z $installdb) ]]; then
    _OQ_MY_ERR="no MariaDB/MySQL server binaries:"
    if [[ -z $server ]]; then _OQ_MY_ERR+=" mariadbd/mysqld not found;"; fi
    if [[ -z $installdb ]]; then _OQ_MY_ERR+=" mariadb-install-db/mysql_install_db not found;"; fi
    _OQ_MY_ERR+=" looked in ${OBJECTQL_SERVER_BIN_PATH:-\$PATH, /usr/sbin, /usr/local/mysql/bin …}"
    if ! _oq_can_apt; then
      _OQ_MY_ERR+=" (and apt-get install was not tried: $_OQ_NO_APT_WHY)"
    fi
    return 1
  fi
  if [[ -z ${_OQ_MYADMIN:-} ]]; then
    _OQ_MY_ERR='mariadb-admin/mysqladmin not found (needed to stop a throwaway server)'
    return 1
  fi
  if ! dir=$(mktemp -d "${TMPDIR:-/tmp}/objectql-my.XXXXXX"); then
    _OQ_MY_ERR='mktemp -d failed'
    return 1
  fi
  _OQ_MY_TMPDIR=$dir
  user=$(_oq_server_user mysql)
  if [[ $(id -u) == 0 ]]; then
    chown "$user" "$dir"
    as_user=("--user=$user") # root may not run the server as root
  fi
  _oq_say "starting a throwaway $flavour ($server) in $dir"
  local -a init
  if [[ $flavour == mariadb ]]; then
    init=("$installdb" --no-defaults "--datadir=$dir/data" ${as_user[@]+"${as_user[@]}"} --skip-test-db)
    # Root with an empty password over TCP (not unix-socket auth), as the
    # default URL expects; older install-dbs did that anyway.
    help=$("$installdb" --help 2>&1) || true
    if [[ $help == *--auth-root-authentication-method* ]]; then
      init+=(--auth-root-authentication-method=normal)
    fi
  else
    init=("$server" --no-defaults --initialize-insecure "--datadir=$dir/data" ${as_user[@]+"${as_user[@]}"})
  fi
  # As root, install-db/mysqld switch to --user themselves.
  if ! (cd "$dir" && "${init[@]}") >"$dir/install.log" 2>&1; then
    _OQ_MY_ERR="${init[0]##*/} failed; the end of its output:
$(_oq_tail "$dir/install.log")"
    return 1
  fi
  port=53305
  for attempt in 1 2 3 4 5; do
    if ! port=$(_oq_free_port $((port + 1))); then
      _OQ_MY_ERR='no free TCP port on 127.0.0.1 from 53306'
      return 1
    fi
    (cd "$dir" && exec "$server" --no-defaults "--datadir=$dir/data" "--port=$port" \
      --bind-address=127.0.0.1 "--socket=$dir/mysqld.sock" "--pid-file=$dir/mysqld.pid" \
      "--log-error=$dir/error.log" ${as_user[@]+"${as_user[@]}"} --character-set-server=utf8mb4 \
      --collation-server=utf8mb4_general_ci --innodb-flush-log-at-trx-commit=0 \
      --max-connections=300) </dev/null >>"$dir/stdout.log" 2>&1 &
    pid=$!
    _OQ_MY_PID=$pid
    for ((i = 0; i < 120; i++)); do
      if ! kill -0 "$pid" 2>/dev/null; then break; fi
      if "$_OQ_MYADMIN" --no-defaults "--socket=$dir/mysqld.sock" -u root ping >/dev/null 2>&1; then
        _OQ_MY_host=127.0.0.1 _OQ_MY_port=$port _OQ_MY_user=root _OQ_MY_pass=''
        _OQ_MY_db=test _OQ_MY_query='' _OQ_MY_auth='root@' _OQ_MY_hostport="127.0.0.1:$port"
        _OQ_MY_URL="mysql://root@127.0.0.1:$port/test"
        # The default URL's database, as on a stock server.
        if ! _OQ_MY_ERR=$(_oq_my -e 'CREATE DATABASE IF NOT EXISTS `test`' 2>&1); then
          _OQ_MY_ERR="the throwaway server refuses root over TCP: $_OQ_MY_ERR"
          return 1
        fi
        return 0
      fi
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then
      kill -KILL "$pid" 2>/dev/null || true
      wait "$pid" 2>/dev/null || true
      _OQ_MY_PID=''
      _OQ_MY_ERR="$server did not answer within 60 s; the end of its log:
$(_oq_tail "$dir/error.log")"
      return 1
    fi
    wait "$pid" 2>/dev/null || true
    _OQ_MY_PID=''
    _oq_say "throwaway $flavour did not start on port $port (attempt $attempt)"
  done
  _OQ_MY_ERR="$server would not start; the end of its log:
$(_oq_tail "$dir/error.log")"
  return 1
}

_oq_my_stop_throwaway() {
  local dir=${_OQ_MY_TMPDIR:-} pid=${_OQ_MY_PID:-} i
  [[ -n $dir ]] || return 0
  if [[ -n $pid ]] && kill -0 "$pid" 2>/dev/null; then
    "$_OQ_MYADMIN" --no-defaults "--socket=$dir/mysqld.sock" -u root shutdown >/dev/null 2>&1 ||
      kill -TERM "$pid" 2>/dev/null || true
    for ((i = 0; i < 60; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.5
    done
    if kill -0 "$pid" 2>/dev/null; then kill -KILL "$pid" 2>/dev/null || true; fi
    wait "$pid" 2>/dev/null || true
  fi
  rm -rf "$dir"
  _OQ_MY_TMPDIR='' _OQ_MY_PID=''
}

_oq_setup_mysql() {
  local url=${OBJECTQL_MYSQL_URL:-} origin db out now name throwaway
  if [[ -n $url ]]; then origin=OBJECTQL_MYSQL_URL; else
    url=$_OQ_DEFAULT_MYSQL_URL
    origin=default
  fi
  if ! _oq_parse_url "$url" _OQ_MY 3306 root ||
    [[ $_OQ_MY_scheme != mysql && $_OQ_MY_scheme != mariadb ]]; then
    _oq_fail "MySQL: $origin is not a mysql://user[:password]@host[:port]/db URL: $(_oq_redact "$url")"
    return 1
  fi
  _OQ_MY_URL=$url
  _OQ_MY_ORIGIN=$origin

  if ! _OQ_MYSQL=$(_oq_find_bin mariadb mysql); then
    if _oq_can_apt && _oq_apt_install mariadb-client; then
      _OQ_MYSQL=$(_oq_find_bin mariadb mysql) || _OQ_MYSQL=''
    fi
    if [[ -z $_OQ_MYSQL ]]; then
      _oq_fail "MySQL: neither the mariadb nor the mysql client is installed (needed to create the test database on $(_oq_redact "$url"))" \
        "install one (Debian/Ubuntu: apt-get install mariadb-client)"
      return 1
    fi
  fi
  _OQ_MYADMIN=$(_oq_find_bin mariadb-admin mysqladmin) || _OQ_MYADMIN=''

  _OQ_MY_ERR=''
  throwaway=''
  if _oq_forced mysql; then
    _oq_say "OBJECTQL_FORCE_THROWAWAY: not using $(_oq_redact "$url"); starting a throwaway MariaDB"
    throwaway='OBJECTQL_FORCE_THROWAWAY is set'
  elif _oq_my_reachable; then
    :
  elif [[ $origin != default ]]; then
    _oq_fail "MySQL: the server in OBJECTQL_MYSQL_URL is not usable: $(_oq_redact "$url")" \
      "${_OQ_MY_ERR//$'\n'/ }" \
      "start it or fix the URL, or unset OBJECTQL_MYSQL_URL to let the tests start a throwaway server"
    return 1
  else
    _oq_say "no MySQL/MariaDB at the default $url (${_OQ_MY_ERR//$'\n'/ }); starting a throwaway one"
    throwaway="nothing usable at the default $url"
  fi
  if [[ -n $throwaway ]]; then
    if ! _oq_my_start_throwaway; then
      _oq_fail "MySQL: a throwaway server was needed ($throwaway) but could not be started:" \
        "$_OQ_MY_ERR" \
        "install MariaDB (Debian/Ubuntu: apt-get install mariadb-server), or set OBJECTQL_MYSQL_URL=mysql://user[:password]@host:port/db to a server whose user may create databases"
      return 1
    fi
    _OQ_MY_ORIGIN=throwaway
    if ! _oq_my_reachable; then
      _oq_fail "MySQL: the throwaway server on port $_OQ_MY_port does not answer over TCP as root: $_OQ_MY_ERR"
      return 1
    fi
  fi

  now=$(date +%s)
  if out=$(_oq_my_databases 2>&1); then
    while IFS= read -r name; do
      if [[ $name =~ $_OQ_NAME_RE ]] && ((now - 10#${BASH_REMATCH[2]} > _OQ_STALE_AFTER)); then
        _oq_say "dropping stale MySQL database $name"
        _oq_my_drop "$name" || true
      fi
    done <<<"$out"
  else
    _oq_say "warning: could not list MySQL databases: $out"
  fi

  db=$OBJECTQL_TEST_RUN_ID
  if ! out=$(_oq_my -e "CREATE DATABASE \`$db\`" 2>&1); then
    _oq_fail "MySQL: could not create the test database $db on $(_oq_redact "$_OQ_MY_URL"):" \
      "$out" "the URL's user needs the CREATE and DROP privileges on all databases"
    return 1
  fi
  _OQ_MY_RUN_DB=$db
  export OBJECTQL_MYSQL_URL="$_OQ_MY_URL"
  export OBJECTQL_TEST_MYSQL_URL="$_OQ_MY_scheme://$_OQ_MY_auth$_OQ_MY_hostport/$db$_OQ_MY_query"
}

# ------------------------------------------------------------------- public

# Provides both servers and the run databases; on failure says what is
# missing, undoes what it did, and returns 1.
objectql_servers_setup() {
  local id
  id="objectql_t_$$_$(date +%s)"
  id=${id,,}
  if ! [[ $id =~ ^[a-z0-9_]+$ ]]; then
    _oq_fail "cannot make a run id from pid $$ and the clock: $id"
    return 1
  fi
  export OBJECTQL_TEST_RUN_ID="$id"
  if ! _oq_setup_postgres || ! _oq_setup_mysql; then
    objectql_servers_cleanup
    return 1
  fi
}

# What is in use, for the log (passwords masked).
objectql_servers_summary() {
  printf 'PostgreSQL (%s): %s\n' "${_OQ_PG_ORIGIN:-?}" "$(_oq_redact "${OBJECTQL_POSTGRES_URL:-}")"
  printf '  test database: %s\n' "$(_oq_redact "${OBJECTQL_TEST_POSTGRES_URL:-}")"
  printf 'MySQL (%s): %s\n' "${_OQ_MY_ORIGIN:-?}" "$(_oq_redact "${OBJECTQL_MYSQL_URL:-}")"
  printf '  test database: %s\n' "$(_oq_redact "${OBJECTQL_TEST_MYSQL_URL:-}")"
  printf 'run id: %s\n' "${OBJECTQL_TEST_RUN_ID:-}"
}

# Drops this run's databases (and per-case MySQL databases <run id>_*), stops
# throwaway servers and deletes their data. Safe to call more than once, and
# never fails (problems are printed).
objectql_servers_cleanup() {
  local run=${OBJECTQL_TEST_RUN_ID:-} out name
  if [[ -n ${_OQ_PG_RUN_DB:-} ]]; then
    if [[ -z ${_OQ_PG_STARTED:-} ]]; then
      _oq_pg_drop "$_OQ_PG_RUN_DB" || true
      if [[ -n $run ]] && out=$(_oq_pg_databases 2>/dev/null); then
        while IFS= read -r name; do
          if [[ $name == "${run}_"* ]]; then _oq_pg_drop "$name" || true; fi
        done <<<"$out"
      fi
    fi
    _OQ_PG_RUN_DB=''
  fi
  if [[ -n ${_OQ_MY_RUN_DB:-} ]]; then
    if [[ -z ${_OQ_MY_TMPDIR:-} ]]; then
      _oq_my_drop "$_OQ_MY_RUN_DB" || true
      if [[ -n $run ]]; then
        if out=$(_oq_my_databases 2>&1); then
          while IFS= read -r name; do
            if [[ $name == "${run}_"* ]]; then _oq_my_drop "$name" || true; fi
          done <<<"$out"
        else
          _oq_say "warning: could not list MySQL databases to drop ${run}_*: $out"
        fi
      fi
    fi
    _OQ_MY_RUN_DB=''
  fi
  _oq_pg_stop_throwaway
  _oq_my_stop_throwaway
  return 0
}
