#!/usr/bin/env bash
# Retrains the demo bundles from scratch and rewrites models/demo/ with their metrics.
# Reproducible: fixed seeds, CPU, the same thread count gives the same weights.
#   models/train/train_demo_models.sh        (about 15 minutes on 2 cores)
set -euo pipefail
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
cd "$root"
source jobs/lookbook-env.sh
jobs/setup-debian.sh build
cmake -S . -B build/release -G Ninja -DLOOKBOOK_PRESET=release >/dev/null
cmake --build build/release --target train_clip lookbook
lookbook=build/release/jobs/lookbook
source jobs/blas-env.sh

rm -rf models/demo/clip.new
time build/release/models/train/train_clip --out models/demo/clip.new --steps 1500 --batch 96 --seed 1 --threads 2
rm -rf models/demo/clip && mv models/demo/clip.new models/demo/clip
build/release/jobs/lookbook eval model --model models/demo/clip --out models/demo/clip/metrics.json
