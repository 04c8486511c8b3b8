#!/usr/bin/env bash
# The README's test command; CI (.ci/run) runs exactly this. Installs the missing Debian
# packages, builds, runs every test, prints each phase's time and every skipped test; exits
# non-zero on any failure. The phases (docs/operations.md#tests-and-ci):
#   static      code format, README/docs references, generated benchmark tables
#   builds      debug-asan (unit tests), fuzz (clang, libFuzzer targets), release (the binary
#               and the test tools only: no benchmarks, no training programs)
#   unit        every unit test once, under AddressSanitizer + UBSan, in two shards
#   fuzz        each libFuzzer target for LOOKBOOK_FUZZ_SECONDS (default 30) seconds
#   ctest       integration, end-to-end and static tests of the release build, longest first
#   no-shared   the tests that read ../shared (CLIP's reference data) again with it hidden:
#               they must pass or skip saying why, as in a user's clone
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jobs=${LOOKBOOK_TEST_JOBS:-2}
mkdir -p build
export LOOKBOOK_STRICT_SKIPS=1 LOOKBOOK_SKIP_LOG="$root/build/test-skips.log"
: >"$LOOKBOOK_SKIP_LOG"

phases=()
phase_start=$SECONDS
phase_name=""
phase() {  # ends the current phase (recording its time) and starts the next
  if [ -n "$phase_name" ]; then phases+=("$(printf '%-10s %5d s' "$phase_name" $((SECONDS - phase_start)))"); fi
  phase_name=$1
  phase_start=$SECONDS
  if [ -n "$1" ]; then echo "== $1: $2"; fi
}
report() {
  local status=$?
  phase ""
  echo "== phase times (total $SECONDS s)"
  printf '  %s\n' "${phases[@]}"
  echo "== skipped tests"
  if [ -s "$LOOKBOOK_SKIP_LOG" ]; then sed 's/^/  /' "$LOOKBOOK_SKIP_LOG"; else echo "  none"; fi
  [ "$status" -eq 0 ] && echo "== all tests passed" || echo "== FAILED (exit $status)"
  return "$status"
}
trap report EXIT

phase packages "jobs/setup-debian.sh test"
jobs/setup-debian.sh test
source jobs/lookbook-env.sh

phase static "code format, README and docs references, generated tables"
tests/static/check_format.sh
/usr/bin/python3 tests/static/check_references.py
/usr/bin/python3 tests/static/check_references.py --self-test
/usr/bin/python3 tests/static/gtest_skips.py --self-test
/usr/bin/python3 tests/static/python_skips_self_test.py
/usr/bin/python3 tests/bench/results.py check

phase build "debug-asan (unit tests), release (lookbook and the test tools), fuzz (clang)"
cmake -S . -B build/debug-asan -G Ninja -DLOOKBOOK_PRESET=debug-asan >/dev/null
cmake --build build/debug-asan --target lookbook_unit_tests
cmake -S . -B build/release -G Ninja -DLOOKBOOK_PRESET=release -DLOOKBOOK_BUILD_TESTS=ON >/dev/null
cmake --build build/release --target lookbook make_test_bundle
cmake -S . -B build/fuzz -G Ninja -DLOOKBOOK_PRESET=release -DLOOKBOOK_BUILD_TESTS=ON \
  -DLOOKBOOK_BUILD_FUZZERS=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
fuzzers=$(cat build/fuzz/fuzzers.txt)
# shellcheck disable=SC2086
cmake --build build/fuzz --target $fuzzers

phase unit "every unit test once, under ASan + UBSan, two shards in parallel"
unit_tests=build/debug-asan/tests/lookbook_unit_tests
pids=()
for shard in $(seq 0 $((jobs - 1))); do
  GTEST_TOTAL_SHARDS=$jobs GTEST_SHARD_INDEX=$shard "$unit_tests" --gtest_brief=1 \
    --gtest_output="xml:build/unit-$shard.xml" >"build/unit-$shard.log" 2>&1 &
  pids+=($!)
done
failed=0
for shard in "${!pids[@]}"; do
  if ! wait "${pids[$shard]}"; then failed=1; cat "build/unit-$shard.log"; fi
done
[ $failed -eq 0 ] || { echo "unit tests failed" >&2; exit 1; }
# Every skipped unit test by name and reason; a skip that does not say why fails (strict skips).
/usr/bin/python3 tests/static/gtest_skips.py unit build/unit-[0-9]*.xml --log "$LOOKBOOK_SKIP_LOG"
grep -h "tests ran\|PASSED" build/unit-*.log

phase fuzz "each libFuzzer target for ${LOOKBOOK_FUZZ_SECONDS:-30} s (UBSan and ASan stop at the first report)"
for fuzzer in $fuzzers; do
  corpus=build/fuzz/corpus-$fuzzer
  mkdir -p "$corpus"
  seeds=tests/fuzz/corpus/${fuzzer%_fuzz}
  if ! "build/fuzz/tests/$fuzzer" -max_total_time="${LOOKBOOK_FUZZ_SECONDS:-30}" -max_len=65536 -print_final_stats=1 \
      "$corpus" "$seeds" >"build/fuzz/$fuzzer.log" 2>&1; then
    cat "build/fuzz/$fuzzer.log"
    echo "$fuzzer found a crash or a sanitizer report (above); the input is in build/fuzz/" >&2
    exit 1
  fi
  echo "$fuzzer: $(grep -o 'stat::number_of_executed_units: [0-9]*' "build/fuzz/$fuzzer.log" | cut -d' ' -f2) runs, no report"
done

phase ctest "integration, end-to-end and static tests of the release build, longest first"
(cd build/release && ctest -j "$jobs" -L 'integration|static' --output-on-failure)

phase no-shared "the tests that read ../shared, with it hidden (LOOKBOOK_CLIP_REFERENCE=/nonexistent)"
if ! LOOKBOOK_CLIP_REFERENCE=/nonexistent "$unit_tests" --gtest_filter='ClipTokenizer*' --gtest_brief=1 \
    --gtest_output=xml:build/unit-no-shared.xml >build/unit-no-shared.log 2>&1; then
  cat build/unit-no-shared.log
  exit 1
fi
tail -n 3 build/unit-no-shared.log
/usr/bin/python3 tests/static/gtest_skips.py "unit (no ../shared)" build/unit-no-shared.xml --log "$LOOKBOOK_SKIP_LOG"
(cd build/release && LOOKBOOK_CLIP_REFERENCE=/nonexistent ctest -R 'integration.export_scripts' --output-on-failure)
