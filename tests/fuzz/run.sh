#!/usr/bin/env bash
# run.sh - builds the libFuzzer targets with clang in a tree of their own and runs each
# one in turn for SECONDS, then prints one summary line per target (runs, runs/s, corpus
# size, crashes) and every crash input found. Exits 1 if any target crashed (or leaked,
# timed out, ran out of memory), 2 on a usage or build error.
#
#   tests/fuzz/run.sh SECONDS [TARGET...]       (default: every target)
#
# Targets: ingest parsers certinfo ocsp agent_config collector_config testssl http_request sketch.
# Everything lives under $TP_FUZZ_DIR (default /tmp/tlsprobe-fuzz):
#   build-fuzz/            CC=clang cmake -DTP_FUZZ=ON tree (only the fuzz targets built)
#   corpus/<target>/       working corpus: the committed seeds plus what the fuzzer adds,
#                          kept between runs; the committed corpus stays small and curated
#   artifacts/<target>/    crash-*, leak-*, timeout-*, oom-* inputs
#   logs/<target>.log      the fuzzer's output
# One fuzzer process at a time, one worker each (the project's machines have 2 cores
# that others build on); TP_FUZZ_BUILD_JOBS (default 2) bounds the build. Every run is
# bounded: -max_total_time=SECONDS, -rss_limit_mb=2048, -timeout=10 per input.
# A crash input, once fixed, goes into tests/fuzz/corpus/<target>/ as a regression seed
# (the fuzz_<target>_seeds ctest then runs it in every build).
set -euo pipefail

ROOT=$(cd "$(dirname "$0")/../.." && pwd)
ALL_TARGETS=(ingest parsers certinfo ocsp agent_config collector_config testssl http_request sketch)

usage() {
  echo "usage: $0 SECONDS [TARGET...]   (targets: ${ALL_TARGETS[*]})" >&2
  exit 2
}

[ $# -ge 1 ] && [[ $1 =~ ^[1-9][0-9]*$ ]] || usage
SECS=$1
shift
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=("${ALL_TARGETS[@]}")
for t in "${TARGETS[@]}"; do
  [[ " ${ALL_TARGETS[*]} " == *" $t "* ]] || { echo "$0: unknown target \"$t\"" >&2; usage; }
done

DIR=${TP_FUZZ_DIR:-/tmp/tlsprobe-fuzz}
BUILD=$DIR/build-fuzz
JOBS=${TP_FUZZ_BUILD_JOBS:-2}
say() { echo "== run.sh: $*" >&2; }

# Largest input each target is given: room for its biggest seed (a chain of certificates,
# a testssl.sh file of several clients) without making every run slow.
max_len() {
  case $1 in
  parsers | ocsp | collector_config) echo 4096 ;;
  ingest | http_request) echo 8192 ;;
  sketch) echo 2048 ;;
  certinfo | agent_config | testssl) echo 16384 ;;
  esac
}

# LeakSanitizer needs ptrace-like access; where a container forbids it every run would
# abort, so probe once (as deploy/scripts/test.sh does) and fuzz without leak checks then.
lsan_works() {
  local tmp rc=0
  tmp=$(mktemp -d)
  printf '#include <stdlib.h>\nint main(void) { void *volatile p = malloc(8); p = 0; return 0; }\n' \
    >"$tmp/leak.c"
  if ! clang -fsanitize=address -o "$tmp/leak" "$tmp/leak.c" 2>/dev/null; then
    rm -rf "$tmp"
    return 1
  fi
  ASAN_OPTIONS=detect_leaks=1 "$tmp/leak" >"$tmp/out" 2>&1 || rc=$?
  local found=1
  if [ $rc -ne 0 ] && grep -q 'detected memory leaks' "$tmp/out" &&
    ! grep -q 'LeakSanitizer has encountered a fatal error' "$tmp/out"; then
    found=0
  fi
  rm -rf "$tmp"
  return $found
}

command -v clang >/dev/null || { echo "$0: clang is needed (apt-get install clang libclang-rt-14-dev)" >&2; exit 2; }
mkdir -p "$DIR/logs"
say "configure $BUILD"
CC=clang cmake -S "$ROOT" -B "$BUILD" -DTP_FUZZ=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  >"$DIR/logs/configure.log" 2>&1 || { cat "$DIR/logs/configure.log" >&2; exit 2; }
build_targets=()
for t in "${TARGETS[@]}"; do build_targets+=("fuzz_$t"); done
say "build ${build_targets[*]} (-j$JOBS)"
cmake --build "$BUILD" -j"$JOBS" --target "${build_targets[@]}" >"$DIR/logs/build.log" 2>&1 ||
  { tail -50 "$DIR/logs/build.log" >&2; exit 2; }

leaks=1
lsan_works || { leaks=0; say "LeakSanitizer does not work here: fuzzing with -detect_leaks=0"; }
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

summary=()
crashes=()
failed=0
for t in "${TARGETS[@]}"; do
  corpus=$DIR/corpus/$t
  artifacts=$DIR/artifacts/$t
  log=$DIR/logs/$t.log
  mkdir -p "$corpus" "$artifacts"
  cp -p "$ROOT/tests/fuzz/corpus/$t/"* "$corpus/"
  dict=()
  [ -f "$ROOT/tests/fuzz/dict/$t.dict" ] && dict=(-dict="$ROOT/tests/fuzz/dict/$t.dict")
  before=$(ls "$artifacts" | sort)
  say "fuzz_$t for ${SECS}s (log: $log)"
  rc=0
  # -print_final_stats: runs and runs/s from libFuzzer itself, not from the log's progress lines.
  "$BUILD/tests/fuzz/fuzz_$t" "$corpus" -max_total_time="$SECS" -rss_limit_mb=2048 -timeout=10 \
    -max_len="$(max_len "$t")" -detect_leaks=$leaks -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "${dict[@]}" >"$log" 2>&1 || rc=$?
  runs=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  # After a crash libFuzzer may stop before its final stats: the last progress line counts.
  [ -n "$runs" ] || runs=$(sed -n 's/^#\([0-9]*\).*/\1/p' "$log" | tail -1)
  new=$(comm -13 <(printf '%s\n' "$before") <(ls "$artifacts" | sort) | sed '/^$/d')
  n_new=$(printf '%s' "$new" | grep -c . || true)
  status=ok
  if [ "$n_new" -gt 0 ] || [ $rc -ne 0 ]; then
    status=FAILED
    failed=1
    for a in $new; do crashes+=("$t: $artifacts/$a"); done
    [ "$n_new" -gt 0 ] || crashes+=("$t: exit status $rc without an artifact, see $log")
  fi
  summary+=("$(printf '%-17s %10s %9s %8s %8s  %s' "$t" "${runs:-?}" "${rate:-?}" \
    "$(ls "$corpus" | wc -l)" "$n_new" "$status")")
done

echo
printf '%-17s %10s %9s %8s %8s  %s\n' TARGET RUNS RUNS/S CORPUS CRASHES STATUS
printf '%s\n' "${summary[@]}"
if [ ${#crashes[@]} -gt 0 ]; then
  echo
  echo "crash inputs (reproduce: $BUILD/tests/fuzz/fuzz_TARGET FILE):"
  printf '  %s\n' "${crashes[@]}"
fi
exit $failed
