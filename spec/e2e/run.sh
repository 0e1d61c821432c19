#!/usr/bin/env bash
# End-to-end tests of space-server against stock clients.
#   spec/e2e/run.sh node|python|all
# SPACE_SERVER  the binary to test (default: <repo>/build/space-server; point it at a sanitizer build too)
# SPACE_SCRIPTS the scripts dir     (default: <repo>/scripts)
# SPACE_TEST_SLOW=N scales every wait bound by N (for slow sanitizer builds).
# SPACE_TEST_TRANSPORTS=websocket,default,polling  socket.io-client configurations chat.test.js runs (default: all)
# SPACE_TEST_CHROMIUM the browser for cors.test.js (default: chromium on PATH; the test is skipped without one)
# Exits non-zero when any test fails.
set -u

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
export SPACE_SERVER="${SPACE_SERVER:-$REPO/build/space-server}"
export SPACE_SCRIPTS="${SPACE_SCRIPTS:-$REPO/scripts}"
PYTHON="${SPACE_TEST_PYTHON:-/usr/bin/python3}"   # Debian's interpreter: it has python3-socketio

what="${1:-all}"
case "$what" in node|python|all) ;; *) echo "usage: $0 node|python|all" >&2; exit 2 ;; esac

if [ ! -x "$SPACE_SERVER" ]; then
  echo "run.sh: server binary not found or not executable: $SPACE_SERVER" >&2
  exit 2
fi
if [ ! -d "$SPACE_SCRIPTS" ]; then
  echo "run.sh: scripts dir not found: $SPACE_SCRIPTS" >&2
  exit 2
fi

status=0

run_node() {
  echo "== node e2e tests (server: $SPACE_SERVER)"
  # each file gets its own servers, so files may run in parallel; 120 s is a hard stop, not a pace
  (cd "$REPO" && timeout 180 node --test --test-timeout=120000 spec/e2e/) || status=1
}

run_python() {
  echo "== python-socketio e2e tests (server: $SPACE_SERVER)"
  (cd "$HERE" && timeout 240 "$PYTHON" -m unittest discover -s "$HERE" -p "test_python_*.py") || status=1
}

case "$what" in
  node) run_node ;;
  python) run_python ;;
  all) run_node; run_python ;;
esac

if [ "$status" -ne 0 ]; then echo "run.sh: FAILED" >&2; else echo "run.sh: all passed"; fi
exit "$status"
