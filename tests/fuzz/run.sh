#!/bin/sh
# run.sh — runs every libFuzzer target of a fuzz build for SECONDS each
# (make fuzz / make fuzz-smoke call it). Usage: run.sh BUILD_DIR SECONDS
#
# Each target starts from a fresh copy of its seed corpus in
# BUILD_DIR/work/<target>/ (the committed corpus never grows) and also reads
# tests/fuzz/regressions/<target>/ if present. Crash inputs land in
# BUILD_DIR/artifacts/<target>/, full logs in BUILD_DIR/logs/<target>.log.
# Prints one line per target (executions, coverage, corpus size) and fails
# if any target crashed, after running them all.
set -u
build=${1:?usage: run.sh BUILD_DIR SECONDS}
secs=${2:?usage: run.sh BUILD_DIR SECONDS}
here=$(cd "$(dirname "$0")" && pwd)
failed=""

mkdir -p "$build/work" "$build/artifacts" "$build/logs"
for src in "$here"/fuzz_*.c; do
  t=$(basename "$src" .c)
  bin="$build/tests/fuzz/$t"
  work="$build/work/$t"
  art="$build/artifacts/$t"
  log="$build/logs/$t.log"
  if [ ! -x "$bin" ]; then
    echo "fuzz: $t: $bin is missing (build the fuzz_targets target)" >&2
    failed="$failed $t"
    continue
  fi
  rm -rf "$work"
  mkdir -p "$work" "$art"
  cp "$here/corpus/$t"/* "$work/"
  set -- "$work"
  [ -d "$here/regressions/$t" ] && set -- "$@" "$here/regressions/$t"
  if "$bin" -max_total_time="$secs" -timeout=10 -rss_limit_mb=2048 -print_final_stats=1 \
       -artifact_prefix="$art/" "$@" >"$log" 2>&1; then
    status=ok
  else
    status=FAILED
    failed="$failed $t"
  fi
  execs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -n 1)
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -n 1)
  units=$(ls "$work" | wc -l)
  printf 'fuzz: %-15s %-6s %10s execs  %-10s corpus %s\n' "$t" "$status" "${execs:-?}" \
    "${cov:-cov: ?}" "$units"
  if [ "$status" = FAILED ]; then
    tail -n 40 "$log" | sed "s/^/  $t| /" >&2
  fi
done

if [ -n "$failed" ]; then
  echo "fuzz: FAILED:$failed (inputs in $build/artifacts/, logs in $build/logs/)" >&2
  exit 1
fi
