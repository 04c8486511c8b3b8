#!/usr/bin/env python3
"""The peer of inference_bench: Python PyTorch running the same TorchScript file.
  pytorch_peer.py MODULE.pt THREADS BATCH SECONDS [SIZE]   -> prints images/s (SIZE: input side, 224)"""
import sys
import time

import torch

path, threads, batch, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
size = int(sys.argv[5]) if len(sys.argv) > 5 else 224
torch.set_num_threads(threads)
torch.set_num_interop_threads(1)
module = torch.jit.load(path).eval()
x = torch.randn(batch, 3, size, size)
with torch.inference_mode():
    module(x)
    images = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        module(x)
        images += batch
print(images / (time.perf_counter() - start))
