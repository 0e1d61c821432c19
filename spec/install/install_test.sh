#!/bin/bash
# cmake --install BUILD --prefix (a fresh directory): the binary, scripts,
# plugins, the systemd unit (pointing into the prefix) and the docs are
# installed; the installed binary, started from another directory on the
# installed scripts and plugins, serves /healthz and a Socket.IO handshake;
# with the defaults relative to a working directory it says where they resolved.
# systemd-analyze verify checks the unit when it is installed on this machine.
set -euo pipefail
build=${1:?usage: install_test.sh BUILD_DIR}
prefix=$(mktemp -d)
work=$(mktemp -d)
pid=
cleanup() {
  [ -n "$pid" ] && kill "$pid" 2>/dev/null && wait "$pid" 2>/dev/null || true
  rm -rf "$prefix" "$work"
}
trap cleanup EXIT
fail() { echo "FAIL: $*" >&2; [ -f "$work/stderr" ] && sed 's/^/  server: /' "$work/stderr" >&2; exit 1; }

cmake --install "$build" --prefix "$prefix" >"$work/install.log" || { cat "$work/install.log"; fail "cmake --install"; }

for f in bin/space-server share/space-server/scripts/init.lua share/space-server/scripts/rules.lua \
         share/space-server/plugins/ratelimit/handler.lua share/space-server/plugins/jwt/schema.lua \
         lib/systemd/system/space-server.service share/doc/space-server/README.md \
         share/doc/space-server/protocol.md share/doc/space-server/lua-api.md share/doc/space-server/operations.md \
         share/doc/space-server/ops/nginx.conf share/doc/space-server/ops/grafana-dashboard.json; do
  [ -e "$prefix/$f" ] || fail "$f not installed"
done
[ -x "$prefix/bin/space-server" ] || fail "bin/space-server not executable"
unit=$prefix/lib/systemd/system/space-server.service
grep -q "^ExecStart=$prefix/bin/space-server" "$unit" || fail "the unit's ExecStart does not name the installed binary"
grep -q -- "--scripts $prefix/share/space-server/scripts" "$unit" || fail "the unit does not name the installed scripts"
! grep -v "^#" "$unit" | grep -q /usr/local/ || fail "the unit still names /usr/local"
if command -v systemd-analyze >/dev/null; then
  SYSTEMD_LOG_LEVEL=err systemd-analyze verify "$unit" || fail "systemd-analyze verify"
fi

# Started with paths relative to the working directory.
cd "$prefix/share"
"$prefix/bin/space-server" --scripts space-server/scripts --plugins space-server/plugins --files-dir "$work/files" \
  --data-dir "$work/data" --host 127.0.0.1 --port 0 2>"$work/stderr" &
pid=$!
port=
for _ in $(seq 100); do
  port=$(sed -n 's/.*listening address=127\.0\.0\.1:\([0-9]*\).*/\1/p' "$work/stderr")
  [ -n "$port" ] && break
  kill -0 "$pid" 2>/dev/null || fail "the installed server exited"
  sleep 0.1
done
[ -n "$port" ] || fail "no listening line"
grep -q "relative paths resolved against the working directory scripts=\"$(pwd -P)/space-server/scripts\" plugins=\"$(pwd -P)/space-server/plugins\"" \
  "$work/stderr" || fail "the resolved relative paths are not logged"
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
grep -q "^HTTP/1.1 200" <&3 || fail "/healthz"
exec 3<&-
exec 3<>"/dev/tcp/127.0.0.1/$port"
printf 'GET /socket.io/?EIO=4&transport=polling HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n' >&3
grep -q '"sid"' <&3 || fail "Engine.IO handshake"
exec 3<&-
kill "$pid"
wait "$pid" || fail "exit status after SIGTERM"
pid=
echo "install: ok ($prefix)"
