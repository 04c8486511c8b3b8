#!/usr/bin/env bash
# Installs the missing Debian packages, builds, and runs every test; exits non-zero on any
# failure. CI (.ci/run) runs exactly this.
#   1. unit tests under AddressSanitizer + UBSan (preset debug-asan)
#   2. the CSV reader under libFuzzer for LOOKBOOK_FUZZ_SECONDS (default 30) seconds
#   3. the release build and every test: unit, integration (mpirun), end to end (ctest)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
cd "$root"
jobs/setup-debian.sh test
source jobs/lookbook-env.sh
jobs=${LOOKBOOK_TEST_JOBS:-2}

echo "== static checks: code format, README and docs references, generated tables"
tests/static/check_format.sh
/usr/bin/python3 tests/static/check_references.py
/usr/bin/python3 tests/bench/results.py check

echo "== unit tests under ASan + UBSan"
cmake -S . -B build/debug-asan -G Ninja -DLOOKBOOK_PRESET=debug-asan >/dev/null
cmake --build build/debug-asan --target lookbook_unit_tests
(cd build/debug-asan && ctest -L unit -j "$jobs" --output-on-failure)

echo "== fuzzing the CSV reader for ${LOOKBOOK_FUZZ_SECONDS:-30} s"
cmake -S . -B build/fuzz -G Ninja -DLOOKBOOK_PRESET=release -DLOOKBOOK_BUILD_TESTS=ON \
  -DLOOKBOOK_BUILD_FUZZERS=ON -DCMAKE_C_COMPILER=clang -DCMAKE_CXX_COMPILER=clang++ >/dev/null
cmake --build build/fuzz --target csv_fuzz
corpus=build/fuzz/csv-corpus
mkdir -p "$corpus"
build/fuzz/tests/csv_fuzz -max_total_time="${LOOKBOOK_FUZZ_SECONDS:-30}" -max_len=4096 \
  -print_final_stats=1 "$corpus" tests/fuzz/corpus 2>&1 | tail -n 6

echo "== release build, all tests"
cmake -S . -B build/release -G Ninja -DLOOKBOOK_PRESET=release -DLOOKBOOK_BUILD_TESTS=ON >/dev/null
cmake --build build/release
cd build/release
ctest -j "$jobs" --output-on-failure
