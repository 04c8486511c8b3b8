#!/usr/bin/env bash
# Every benchmark, each against its peer in the same run, then one table:
#   tests/bench/run.sh [RAW_DIR]      (per-benchmark JSON to RAW_DIR/raw, default tests/bench/raw;
#                                      the table to tests/bench/results.json, docs/performance.md, README.md)
# Installs the peers (jobs/setup-debian.sh bench), builds the release tree, and chooses the
# BLAS kernel the way the job scripts do (jobs/blas-env.sh); every line records it.
# LOOKBOOK_BENCH_VECTORS (default 1000000) sizes the dedup benchmark; the whole suite takes
# about 40 minutes on 2 cores, most of it the 1M-vector dedup (1 and 2 ranks).
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
out=$(cd "${1:-tests/bench}" && pwd)
jobs/setup-debian.sh bench
source jobs/lookbook-env.sh
cmake -S . -B build/release -G Ninja -DLOOKBOOK_PRESET=release -DLOOKBOOK_BUILD_TESTS=ON >/dev/null
cmake --build build/release
lookbook=build/release/jobs/lookbook
source jobs/blas-env.sh
py=/usr/bin/python3
bench=tests/bench
raw=$(mktemp -d)
trap 'rm -rf "$raw"' EXIT

step() { echo "== $1" >&2; }
step ingest;         $py $bench/ingest_bench.py --lookbook "$lookbook" --json "$raw/ingest.json" >/dev/null
step embed;          $py $bench/embed_bench.py --build build/release --json "$raw/embed.json" >/dev/null
step garments;       $py $bench/garments_bench.py --build build/release --json "$raw/garments.json" >/dev/null
step findimagedupes; $py $bench/findimagedupes_bench.py --build build/release --json "$raw/findimagedupes.json" >/dev/null
step query;          $py $bench/query_bench.py --build build/release --json "$raw/query.json" >/dev/null
step nightly;        $py $bench/nightly_bench.py --build build/release --json "$raw/nightly.json" >/dev/null
step precision;      $py $bench/precision_bench.py --build build/release --json "$raw/precision.json" >/dev/null
step dedup;          $py $bench/dedup_bench.py --build build/release --vectors "${LOOKBOOK_BENCH_VECTORS:-1000000}" --json "$raw/dedup.json" >/dev/null
$py $bench/results.py collect "$raw"
$py $bench/results.py render
mkdir -p "$out/raw" && cp "$raw"/*.json "$out/raw/"
echo "wrote tests/bench/results.json, its tables in docs/performance.md and README.md (per-benchmark JSON in $out/raw/)" >&2
