#!/usr/bin/env bash
# The GPU check, prepared to run once on a GPU machine that has a CUDA PyTorch but none of
# lookbook's other dependencies (under 8 minutes on one H200):
#   tests/bench/gpu_check.sh OUT_DIR
# 1. builds tests/bench/gpu (gpu_bench: LibTorch only) against this machine's PyTorch;
# 2. writes the ViT-B/32-sized stand-in CLIP image tower and the U²-Net-sized segmenter
#    (tests/bench/make_vit_bundle.py, make_u2net_bundle.py: random weights, the real shapes);
# 3. measures images/s: the ViT in fp32, fp16 and bf16 at batch 64, 256 and 1024; the U²-Net at
#    768 px in fp16 and bf16 at batch 8 and 32; each beside the Python peer (pytorch_peer.py, the
#    same TorchScript file under the same PyTorch, same batch, same precision);
# 4. checks CUDA against CPU on the same images: cosine >= 0.999 in fp32, >= 0.995 in fp16/bf16.
# Writes OUT_DIR/gpu_check.jsonl (every measurement) and OUT_DIR/environment.txt (GPU, driver,
# CUDA, PyTorch), and exits 1 when a check fails.
# GPU_CHECK_DEVICE=cpu rehearses the whole script on a CPU with small models (how it is tested
# before a GPU is lent: tests/integration/test_gpu_bench.py); TORCH_DIR overrides the LibTorch
# CMake package (default: the one of the PyTorch that python3 imports).
set -euo pipefail
out=${1:?usage: tests/bench/gpu_check.sh OUT_DIR}
mkdir -p "$out"
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
py=${PYTHON:-python3}
log="$out/gpu_check.jsonl"
: > "$log"
{
  nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader 2>&1 || echo "no nvidia-smi"
  echo "device ${GPU_CHECK_DEVICE:-cuda}"
  "$py" -c 'import torch; print("torch", torch.__version__, "cuda", torch.version.cuda, "devices", torch.cuda.device_count())'
} | tee "$out/environment.txt"

device=${GPU_CHECK_DEVICE:-cuda}
if [ "$device" = cpu ]; then  # the rehearsal: small models, short windows
  vit_args=(--layers 2 --width 128); u2net_size=128; clip_batches="4"; seg_batches="2"
  precisions="fp32 bf16"; seg_precisions="bf16"; seconds=1; clip_check=4; seg_check=2
else
  vit_args=(); u2net_size=768; clip_batches="64 256 1024"; seg_batches="8 32"
  precisions="fp32 fp16 bf16"; seg_precisions="fp16 bf16"; seconds=6; clip_check=64; seg_check=4
fi
torch_dir=${TORCH_DIR:-$("$py" -c 'import torch; print(torch.utils.cmake_prefix_path)')/Torch}
cmake -S "$here/gpu" -B "$out/build" -DTorch_DIR="$torch_dir" -DCMAKE_BUILD_TYPE=Release > "$out/cmake.log"
cmake --build "$out/build" -j"$(nproc)" >> "$out/cmake.log"
bench="$out/build/gpu_bench"

"$py" "$here/make_vit_bundle.py" "$out/vit" "${vit_args[@]}" > /dev/null
"$py" "$here/make_u2net_bundle.py" "$out/u2net" --size "$u2net_size" > /dev/null
vit=$(ls "$out"/vit/*.pt | head -1)
u2net=$(ls "$out"/u2net/*.pt | head -1)

measure() {  # KIND MODULE SIZE PRECISION BATCH [--segment]
  local kind=$1 module=$2 size=$3 precision=$4 batch=$5 segment=${6:-}
  "$bench" "$module" --kind "$kind" --size "$size" --devices "$device" --precisions "$precision" --batches "$batch" \
    --seconds "$seconds" | grep '"images_per_s"' | sed "s/^{/{\"model\": \"$kind\", \"who\": \"lookbook (LibTorch)\", /" >> "$log"
  "$py" "$here/pytorch_peer.py" "$module" --device "$device" --precision "$precision" --batch "$batch" --size "$size" \
    --seconds "$seconds" $segment | sed "s/^{/{\"model\": \"$kind\", \"who\": \"python peer\", \"precision\": \"$precision\", \"batch\": $batch, /" >> "$log"
}
for precision in $precisions; do
  for batch in $clip_batches; do measure clip "$vit" 224 "$precision" "$batch"; done
done
for precision in $seg_precisions; do
  for batch in $seg_batches; do measure segmenter "$u2net" "$u2net_size" "$precision" "$batch" --segment; done
done
"$bench" "$vit" --kind clip --size 224 --devices "$device" --precisions "${precisions// /,}" --batches 1 --seconds 0 \
  --check "$clip_check" | grep '"check"' | sed 's/^{/{"model": "clip", /' >> "$log"
"$bench" "$u2net" --kind segmenter --size "$u2net_size" --devices "$device" --precisions "${precisions// /,}" \
  --batches 1 --seconds 0 --check "$seg_check" | grep '"check"' | sed 's/^{/{"model": "segmenter", /' >> "$log"

"$py" - "$log" <<'PY'
import json, sys
rows = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
failed = []
for r in rows:
    if "check" in r:
        need = 0.999 if "fp32" in r["check"].split(" vs ")[0] else 0.995
        ok = r["min_cosine"] >= need
        print(f'{r["model"]:9} {r["check"]:24} min cosine {r["min_cosine"]:.5f} (need {need}) {"ok" if ok else "FAILED"}')
        failed += [] if ok else [r]
    else:
        print(f'{r["model"]:9} {r.get("precision", ""):5} batch {r.get("batch", ""):>5} {r["who"]:20} {r["images_per_s"]:10.1f} images/s')
sys.exit(1 if failed else 0)
PY
