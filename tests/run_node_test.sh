#!/bin/sh
# Runs one JS test file with node's test runner (TAP output) and turns its
# totals into an exit status for ctest: 0 only if every test ran and passed;
# 77 (ctest's SKIP_RETURN_CODE here) if any test was skipped or left "todo",
# or if the file declared no test at all; node's own status on a failure.
set -u
out=$(mktemp)
trap 'rm -f "$out"' EXIT
node --test --test-reporter=tap "$@" >"$out" 2>&1
status=$?
cat "$out"
[ "$status" -eq 0 ] || exit "$status"
count() { sed -n "s/^# $1 \([0-9][0-9]*\)\$/\1/p" "$out" | tail -n 1; }
tests=$(count tests); skip=$(count skipped); todo=$(count todo)
if [ -z "$tests" ] || [ "$tests" -eq 0 ]; then
    echo "run_node_test: no test ran" >&2; exit 77
fi
if [ "${skip:-0}" -ne 0 ] || [ "${todo:-0}" -ne 0 ]; then
    echo "run_node_test: $skip skipped, $todo todo: a skipped test is a failure in make test" >&2
    exit 77
fi
exit 0
