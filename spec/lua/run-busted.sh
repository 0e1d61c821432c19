#!/usr/bin/env bash
# Runs the busted specs under Lua 5.4 and ends with a plain
# "busted: N passed, N failed" line; keeps busted's exit status.
set -uo pipefail
cd "$(dirname "$0")/../.."
out=$(lua5.4 /usr/bin/busted -o plainTerminal spec/lua 2>&1)
rc=$?
echo "$out"
line=$(echo "$out" | grep -E '^[0-9]+ successes? / [0-9]+ failures? / [0-9]+ errors?' | tail -1)
passed=$(echo "$line" | sed -E 's/^([0-9]+) success.*/\1/')
failed=$(echo "$line" | sed -E 's/.* ([0-9]+) failures? \/ ([0-9]+) errors?.*/\1 \2/' | awk '{print $1 + $2}')
echo "busted: ${passed:-0} passed, ${failed:-0} failed"
[ -n "$line" ] || rc=1
exit $rc
