#!/usr/bin/env python3
"""The peer of inference_bench: Python PyTorch running the same TorchScript file.
  pytorch_peer.py MODULE.pt THREADS BATCH SECONDS   -> prints images/s"""
import sys
import time

import torch

path, threads, batch, seconds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4])
torch.set_num_threads(threads)
torch.set_num_interop_threads(1)
module = torch.jit.load(path).eval()
x = torch.randn(batch, 3, 224, 224)
with torch.inference_mode():
    module(x)
    images = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        module(x)
        images += batch
print(images / (time.perf_counter() - start))
