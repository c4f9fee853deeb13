#!/bin/sh
# scripts/ctest-strict.sh BUILD_DIR [ctest args...] — what `make test` runs in
# each build. ctest alone passes a run in which tests were skipped; here the
# run fails unless every registered test ran and passed:
#   - ctest's own status (a failed or timed-out test);
#   - any test ctest reports as not run (Skipped = exit 77, see tests/tests.cmake);
#   - fewer tests run than are registered (ctest -N), or fewer registered than
#     the test sources on disk (a test file that CMake did not pick up).
# Ends with one line: "ctest-strict: BUILD: N registered, N ran, N passed".
# The tests' own files (each node's, Redis's and nginx's directory, browser
# profiles) go to one fresh directory per run, /tmp/imgate-run.XXXXXX (the
# run's TMPDIR: short, whatever the checkout's path, for the browser's
# socket paths), removed when every test passed; a failed run keeps it and
# says where.
set -u
build=$1; shift
root=$(cd "$(dirname "$0")/.." && pwd)
log=$(mktemp); st=$(mktemp)
trap 'rm -f "$log" "$st"' EXIT
cd "$build" || exit 1
TMPDIR=$(mktemp -d "${TMPDIR:-/tmp}/imgate-run.XXXXXX") || exit 1
export TMPDIR

{ ctest "$@" 2>&1; echo $? >"$st"; } | tee "$log"
status=$(cat "$st")

fail() { echo "ctest-strict: $build: $*; the tests' files are in $TMPDIR" >&2; exit 1; }

registered=$(ctest -N | sed -n 's/^Total Tests: \([0-9]*\)$/\1/p')
ran=$(sed -n 's/.*tests failed out of \([0-9]*\)$/\1/p' "$log" | tail -n 1)
failed=$(sed -n 's/.*tests passed, \([0-9]*\) tests failed out of.*/\1/p' "$log" | tail -n 1)
skipped=$(grep -c '\*\*\*Skipped\|\*\*\*Not Run' "$log")

# What is on disk: one test per file of each kind (tests/tests.cmake globs).
sanitized=$(sed -n 's/^IMGATE_SANITIZE:BOOL=\(.*\)$/\1/p' CMakeCache.txt)
count() { ls $1 2>/dev/null | wc -l; }
on_disk=$(( $(count "$root/tests/unit/test_*.c") + $(count "$root/tests/integration/test_*.py") \
          + $(count "$root/tests/js/*.test.js") + $(count "$root/tests/fuzz/fuzz_*.c") ))
[ "$sanitized" = ON ] && on_disk=$((on_disk - 1))      # test_valgrind.py: normal build only

[ -n "$registered" ] && [ -n "$ran" ] || fail "no ctest summary"
[ "$status" -eq 0 ] || fail "ctest failed ($failed of $ran tests failed)"
[ "$skipped" -eq 0 ] || fail "$skipped test(s) skipped or not run: a skip is a failure"
[ "$ran" -eq "$registered" ] || fail "$ran tests ran but $registered are registered"
[ "$registered" -ge "$on_disk" ] || fail "$registered tests registered but $on_disk test files on disk"
rm -rf "$TMPDIR"
echo "ctest-strict: $build: $registered registered, $ran ran, $((ran - failed)) passed"
