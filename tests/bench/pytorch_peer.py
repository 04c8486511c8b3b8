#!/usr/bin/env python3
"""The peer of inference_bench: Python PyTorch running the same TorchScript file.
  pytorch_peer.py MODULE.pt THREADS BATCH SECONDS [SIZE] [segment]   -> prints images/s
SIZE: the input side (224). segment: the module is a segmenter, and each batch also gets what
lookbook's Segmenter returns (per-pixel class and its softmax probability), as lookbook does."""
import sys
import time

import torch

path, threads, batch, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
size = int(sys.argv[5]) if len(sys.argv) > 5 else 224
segment = len(sys.argv) > 6 and sys.argv[6] == "segment"


def step(x):
    y = module(x)
    if segment:
        confidence, labels = torch.softmax(y, 1).max(1)
        labels.to(torch.uint8).contiguous()
        confidence.contiguous()


torch.set_num_threads(threads)
torch.set_num_interop_threads(1)
module = torch.jit.load(path).eval()
x = torch.randn(batch, 3, size, size)
with torch.inference_mode():
    step(x)
    images = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        step(x)
        images += batch
print(images / (time.perf_counter() - start))
