#!/usr/bin/env bash
# The `go test -exec` program of `make test-patched` for upstream test
# suites that start real nodes (ergo's tests/): runs the test binary in a
# loopback-only network namespace (scripts/loopback-only.sh) and, if some
# tests fail, runs just those once more, alone. ergo's node tests race on
# its embedded name service on a busy machine ("no route to node", a
# stopping process not yet gone), on the pristine module too; a test that
# fails twice fails the run, and a crash or timeout (no "--- FAIL" line) is
# not retried. Every retry is printed and (since go test shows a passing
# package's output only with -v) appended to build/upstream-test-retries.log.
#
#   go test -exec scripts/upstream-test-exec.sh ...
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
bin=$1
shift
out=$(mktemp)
trap 'rm -f "$out"' EXIT
"$here/loopback-only.sh" "$bin" "$@" 2>&1 | tee "$out"
rc=${PIPESTATUS[0]}
[ "$rc" -eq 0 ] && exit 0
failed=$(sed -n 's/^.*--- FAIL: \([^ /]*\).*/\1/p' "$out" | sort -u | paste -sd'|')
if [ -z "$failed" ] || grep -q -e '^panic: ' -e 'test timed out' "$out"; then
  exit "$rc"
fi
echo "upstream-test-exec: retrying once, alone: $failed"
mkdir -p "$here/../build"
echo "$(date -u +%FT%TZ) $(basename "$PWD") $bin: retried $failed" >> "$here/../build/upstream-test-retries.log"
args=()
for a in "$@"; do
  case $a in -test.run=*) ;; *) args+=("$a") ;; esac
done
exec "$here/loopback-only.sh" "$bin" "${args[@]}" "-test.run=^($failed)\$"
