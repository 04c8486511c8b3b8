#!/usr/bin/env python3
"""The peer of inference_bench: Python PyTorch running the same TorchScript file.

  pytorch_peer.py MODULE.pt --threads T --batch B --seconds S [--size 224] [--segment] [--start-at EPOCH]
                  [--device cpu|cuda] [--precision fp32|fp16|bf16]

Prints one JSON line: images_per_s, and the measured window (epoch seconds). --segment: the
module is a segmenter, and each batch also gets what lookbook's Segmenter returns (per-pixel
class and its softmax probability), as lookbook does. --start-at: load and warm up, then wait
for that wall-clock time before measuring, so that a peer started beside it measures the same
window (bench_common.side_by_side); "late" says the warm-up overran it."""
import argparse
import json
import time

import torch

parser = argparse.ArgumentParser()
parser.add_argument("module")
parser.add_argument("--threads", type=int, default=1)
parser.add_argument("--batch", type=int, default=8)
parser.add_argument("--seconds", type=float, default=4)
parser.add_argument("--size", type=int, default=224)
parser.add_argument("--segment", action="store_true")
parser.add_argument("--start-at", type=float, default=0)
parser.add_argument("--device", default="cpu", help="cpu | cuda[:N]")
parser.add_argument("--precision", default="fp32", choices=["fp32", "fp16", "bf16"])
args = parser.parse_args()
device = torch.device(args.device)
dtype = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}[args.precision]


def step(x):
    # As gpu_bench and the embed stage: the host batch copied to the device, then the model.
    y = module(x.to(device, dtype, non_blocking=device.type == "cuda"))
    if args.segment:
        confidence, labels = torch.softmax(y, 1).max(1)
        labels.to(torch.uint8).contiguous()
        confidence.contiguous()


torch.set_num_threads(args.threads)
torch.set_num_interop_threads(1)
module = torch.jit.load(args.module, map_location=device).eval().to(dtype)
x = torch.randn(args.batch, 3, args.size, args.size)
if device.type == "cuda":
    x = x.pin_memory()


def sync():
    if device.type == "cuda":
        torch.cuda.synchronize(device)
with torch.inference_mode():
    step(x)
    sync()
    late = args.start_at > 0 and time.time() > args.start_at
    if args.start_at > 0 and not late:
        time.sleep(args.start_at - time.time())
    images = 0
    window_start = time.time()
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        step(x)
        images += args.batch
        if device.type == "cuda" and images % (4 * args.batch) == 0:
            sync()
    sync()
    elapsed = time.perf_counter() - start
print(json.dumps({"images_per_s": images / elapsed, "window": [window_start, window_start + elapsed], "late": late}))
