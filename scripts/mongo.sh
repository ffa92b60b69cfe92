# shellcheck shell=bash
# A MongoDB wire-protocol server (mongoeco) for the MongoDB driver's tests.
#
# Sourced by scripts/test (bash 4+); it only defines functions:
#
#   source scripts/mongo.sh
#   objectql_mongo_setup || exit 1      # exports OBJECTQL_MONGO_URL
#   objectql_mongo_cleanup              # from the EXIT trap
#
# OBJECTQL_MONGO_URL names a server to use — a real MongoDB (replica set or
# standalone) or your own; the tests empty their databases, so never point
# them at data you keep. Unset, a throwaway server is started on a free
# loopback port: scripts/mongoeco_server.py, which runs mongoeco's wire
# server (PyPI `mongoeco[wire]`, pinned, Apache-2.0) in memory with the
# fixes the Rust driver needs (see there), and OBJECTQL_MONGO_URL is exported
# for it; cleanup stops it (TERM, then KILL) and deletes its directory.
#
# mongoeco needs Python 3.13+: OBJECTQL_PYTHON, else `python3.13` on PATH
# (when it runs), else a pyenv-installed 3.13+, else `python3` when it is
# 3.13+. It is installed once, with pip, into a virtual environment under
# ~/.cache/objectql/ (XDG_CACHE_HOME is honoured). What cannot be provided is
# reported and setup returns 1; nothing is skipped.

_OQ_MONGOECO_VERSION='4.11.0'
_OQ_MONGO_SCRIPTS=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
_oq_mongo_dir=''
_oq_mongo_pid=''

_oq_mongo_say() { echo "mongo: $*" >&2; }

# Runs the interpreter command given as arguments; prints its executable path
# when it works and is Python 3.13 or newer.
_oq_mongo_python_exe() {
  "$@" -c 'import sys; assert sys.version_info >= (3, 13); print(sys.executable)' 2>/dev/null
}

_oq_mongo_python() {
  local candidate version root
  if [[ -n ${OBJECTQL_PYTHON:-} ]]; then
    _oq_mongo_python_exe "$OBJECTQL_PYTHON" && return 0
    _oq_mongo_say "OBJECTQL_PYTHON=$OBJECTQL_PYTHON is not a working Python 3.13 or newer"
    return 1
  fi
  if command -v python3.13 >/dev/null 2>&1 && _oq_mongo_python_exe python3.13; then
    return 0
  fi
  if command -v pyenv >/dev/null 2>&1; then
    # A pyenv shim runs only for the selected version; name the version.
    for version in $(pyenv versions --bare 2>/dev/null | grep -E '^3\.(1[3-9]|[2-9][0-9])(\.[0-9]+)*$' | sort -rV); do
      _oq_mongo_python_exe env PYENV_VERSION="$version" "python${version%.*}" && return 0
    done
  fi
  root=$( (command -v pyenv >/dev/null 2>&1 && pyenv root) || echo "${PYENV_ROOT:-$HOME/.pyenv}")
  for candidate in "$root"/versions/3.1[3-9]*/bin/python3; do
    [[ -x $candidate ]] && _oq_mongo_python_exe "$candidate" && return 0
  done
  if command -v python3 >/dev/null 2>&1 && _oq_mongo_python_exe python3; then
    return 0
  fi
  _oq_mongo_say "Python 3.13 or newer is missing (mongoeco $_OQ_MONGOECO_VERSION needs it; python3 is $(python3 -V 2>&1 || echo 'not installed'));"
  _oq_mongo_say "install it (pyenv install 3.13, uv python install 3.13, or your distribution's python3.13 and python3.13-venv),"
  _oq_mongo_say "or set OBJECTQL_PYTHON to one, or OBJECTQL_MONGO_URL to a MongoDB server"
  return 1
}

# The Python of a virtual environment with mongoeco[wire] installed (made once).
_oq_mongo_venv() {
  local python minor venv part
  python=$(_oq_mongo_python) || return 1
  minor=$("$python" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
  venv="${XDG_CACHE_HOME:-$HOME/.cache}/objectql/mongoeco-$_OQ_MONGOECO_VERSION-py$minor"
  if [[ -x $venv/bin/python && -f $venv/.installed ]]; then
    echo "$venv/bin/python"
    return 0
  fi
  # Installed into a directory of its own, renamed into place when complete:
  # an interrupted install leaves no half environment behind.
  mkdir -p "$(dirname "$venv")"
  part="$venv.part.$$"
  rm -rf "$part"
  _oq_mongo_say "installing mongoeco[wire]==$_OQ_MONGOECO_VERSION with pip into $venv (once)"
  if ! "$python" -m venv "$part" >"$venv.part.$$.log" 2>&1; then
    _oq_mongo_say "$python cannot create a virtual environment (Debian/Ubuntu: apt-get install python$minor-venv):"
    tail -5 "$venv.part.$$.log" | sed 's/^/    /' >&2
    rm -rf "$part" "$venv.part.$$.log"
    return 1
  fi
  if ! "$part/bin/python" -m pip install --disable-pip-version-check --no-input --quiet \
    "mongoeco[wire]==$_OQ_MONGOECO_VERSION" >>"$venv.part.$$.log" 2>&1; then
    _oq_mongo_say "pip install 'mongoeco[wire]==$_OQ_MONGOECO_VERSION' failed (no network? set PIP_INDEX_URL for a mirror):"
    tail -20 "$venv.part.$$.log" | sed 's/^/    /' >&2
    rm -rf "$part" "$venv.part.$$.log"
    return 1
  fi
  if ! "$part/bin/python" -c 'import bson, pymongo, mongoeco.wire.proxy' >>"$venv.part.$$.log" 2>&1; then
    _oq_mongo_say "mongoeco[wire]==$_OQ_MONGOECO_VERSION was installed but does not import:"
    tail -10 "$venv.part.$$.log" | sed 's/^/    /' >&2
    rm -rf "$part" "$venv.part.$$.log"
    return 1
  fi
  echo "$_OQ_MONGOECO_VERSION" >"$part/.installed"
  rm -f "$venv.part.$$.log"
  # The environment only runs as $venv/bin/python, which finds its
  # pyvenv.cfg next to itself, so it works under its final name. A
  # concurrent run may have finished first; then keep that one.
  if [[ -x $venv/bin/python && -f $venv/.installed ]]; then
    rm -rf "$part"
  else
    rm -rf "$venv"
    mv -T "$part" "$venv" 2>/dev/null || rm -rf "$part"
  fi
  if [[ ! -x $venv/bin/python || ! -f $venv/.installed ]]; then
    _oq_mongo_say "could not install the environment at $venv"
    return 1
  fi
  echo "$venv/bin/python"
}

_oq_mongo_free_port() {
  "$1" -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

objectql_mongo_setup() {
  if [[ -n ${OBJECTQL_MONGO_URL:-} ]]; then
    export OBJECTQL_MONGO_URL
    return 0
  fi
  local python port i
  python=$(_oq_mongo_venv) || return 1
  _oq_mongo_dir=$(mktemp -d)
  port=$(_oq_mongo_free_port "$python") || { _oq_mongo_say "could not find a free loopback port"; return 1; }
  "$python" "$_OQ_MONGO_SCRIPTS/mongoeco_server.py" --port "$port" >"$_oq_mongo_dir/mongoeco.log" 2>&1 &
  _oq_mongo_pid=$!
  for ((i = 0; i < 100; i++)); do
    if grep -q '^listening on ' "$_oq_mongo_dir/mongoeco.log" 2>/dev/null; then
      # The throwaway server is one Python process: on a loaded machine
      # (a parallel build) it once took more than the driver's 10 s to
      # answer a new client's `hello`. Its clients wait up to a minute.
      export OBJECTQL_MONGO_URL="mongodb://127.0.0.1:$port/?directConnection=true&serverSelectionTimeoutMS=60000&connectTimeoutMS=60000"
      return 0
    fi
    if ! kill -0 "$_oq_mongo_pid" 2>/dev/null; then break; fi
    sleep 0.2
  done
  _oq_mongo_say "mongoeco_server.py ($python) did not start listening on 127.0.0.1:$port; its log:"
  tail -20 "$_oq_mongo_dir/mongoeco.log" | sed 's/^/    /' >&2
  return 1
}

objectql_mongo_summary() {
  if [[ -n $_oq_mongo_pid ]]; then
    echo "MongoDB: throwaway mongoeco $_OQ_MONGOECO_VERSION server (pid $_oq_mongo_pid) at $OBJECTQL_MONGO_URL"
  else
    echo "MongoDB: $OBJECTQL_MONGO_URL (from OBJECTQL_MONGO_URL)"
  fi
}

objectql_mongo_cleanup() {
  if [[ -n $_oq_mongo_pid ]]; then
    kill -TERM "$_oq_mongo_pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do
      kill -0 "$_oq_mongo_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$_oq_mongo_pid" 2>/dev/null || true
    _oq_mongo_pid=''
  fi
  if [[ -n $_oq_mongo_dir ]]; then
    rm -rf "$_oq_mongo_dir"
    _oq_mongo_dir=''
  fi
}
