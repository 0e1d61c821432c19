#!/usr/bin/env bash
# Builds the libFuzzer targets with clang in <repo>/build-fuzz and runs each
# for N seconds (default 60).
#   spec/fuzz/run.sh [seconds] [name...]     names: http sio_packet eio_packet utf8 ws_accept ws_frame base64 filecheck jwt json_scan json_lua json_lua_oracle wsjson redis_wire presence
# Env: SPACE_FUZZ_JOBS=K   run K fuzzers at once (default 1)
#      SPACE_FUZZ_BUILD=dir  build dir (default <repo>/build-fuzz)
#      CC                  clang to use (default clang)
# Each fuzzer keeps a corpus in <build>/fuzz/corpus/<name>, seeded from
# spec/fuzz/corpus/<name>; crashes are written to <build>/fuzz/artifacts/ and
# logs to <build>/fuzz/logs/<name>.log. Exits non-zero when any fuzzer fails.
set -u

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$HERE/../.." && pwd)"
BUILD="${SPACE_FUZZ_BUILD:-$REPO/build-fuzz}"
SECONDS_EACH="${1:-60}"
shift || true
ALL=(http sio_packet eio_packet utf8 ws_accept ws_frame base64 filecheck jwt json_scan json_lua json_lua_oracle wsjson redis_wire presence)
NAMES=("$@")
[ ${#NAMES[@]} -eq 0 ] && NAMES=("${ALL[@]}")
JOBS="${SPACE_FUZZ_JOBS:-1}"

case "$SECONDS_EACH" in ''|*[!0-9]*) echo "usage: $0 [seconds] [name...]" >&2; exit 2 ;; esac

export CC="${CC:-clang}"
# The hook includes spec/fuzz/fuzz.cmake even when spec/tests.cmake does
# not (include_guard makes a second include a no-op).
mkdir -p "$BUILD"
cmake -S "$REPO" -B "$BUILD" -DSPACE_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DCMAKE_PROJECT_INCLUDE="$HERE/standalone.cmake" >"$BUILD/configure.log" 2>&1 || {
  cat "$BUILD/configure.log" >&2
  echo "run.sh: cmake configure failed" >&2
  exit 2
}
targets=()
for n in "${NAMES[@]}"; do targets+=(--target "fuzz_$n"); done
cmake --build "$BUILD" -j"$(nproc)" "${targets[@]}" || { echo "run.sh: build failed" >&2; exit 2; }

OUT="$BUILD/fuzz"
mkdir -p "$OUT/logs" "$OUT/artifacts"

run_one() {
  local n="$1" dict=()
  mkdir -p "$OUT/corpus/$n"
  [ -f "$HERE/$n.dict" ] && dict=(-dict="$HERE/$n.dict")
  (cd "$OUT" && "$OUT/fuzz_$n" -max_total_time="$SECONDS_EACH" -rss_limit_mb=2048 -timeout=10 \
      -print_final_stats=1 -artifact_prefix="$OUT/artifacts/$n-" "${dict[@]}" \
      "$OUT/corpus/$n" "$HERE/corpus/$n") >"$OUT/logs/$n.log" 2>&1
}

passed=0 failed=0 failed_names=()
pids=() pnames=()
finish() { # pid name
  if wait "$1"; then
    passed=$((passed + 1))
    echo "fuzz_$2: ok ($(grep -Eo 'stat::number_of_executed_units: [0-9]+' "$OUT/logs/$2.log" | grep -Eo '[0-9]+$') runs)"
  else
    failed=$((failed + 1)); failed_names+=("$2")
    echo "fuzz_$2: FAILED (log: $OUT/logs/$2.log)"
    grep -E '^(==[0-9]+==ERROR|fuzz_[a-z0-9_]+:|SUMMARY|artifact_prefix|Test unit written)' "$OUT/logs/$2.log" | head -8 | sed 's/^/    /'
  fi
}
for n in "${NAMES[@]}"; do
  echo "fuzz_$n: running ${SECONDS_EACH}s"
  run_one "$n" & pids+=($!); pnames+=("$n")
  if [ ${#pids[@]} -ge "$JOBS" ]; then finish "${pids[0]}" "${pnames[0]}"; pids=("${pids[@]:1}"); pnames=("${pnames[@]:1}"); fi
done
while [ ${#pids[@]} -gt 0 ]; do finish "${pids[0]}" "${pnames[0]}"; pids=("${pids[@]:1}"); pnames=("${pnames[@]:1}"); done

echo "fuzz: $passed passed, $failed failed"
[ "$failed" -eq 0 ]
