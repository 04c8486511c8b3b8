#!/usr/bin/env python3
"""Where a one-thread forward pass of a TorchScript image encoder spends its time, and how
close its matrix products run to the core's peak: the evidence behind docs/performance.md#results, that
on one thread lookbook and Python PyTorch sit at parity (the same LibTorch kernels, most of
the time in OpenBLAS's sgemm).

  OMP_NUM_THREADS=1 /usr/bin/python3 tests/bench/vit_profile.py MODULE.pt [--batch 8] [--width 768]

Prints one JSON line: the share of self time per operator (top ten), the share of the GEMM
operators, the forward's milliseconds, and the sgemm GFLOPS of the encoder's linear layers'
shapes on their own (batch x 50 tokens; width -> 3 x width, width, 4 x width and back) and
inside the forward pass (their flops over the GEMM operators' share of its time).
Set OMP_NUM_THREADS=1 first: OpenBLAS reads it, and without it runs its own two threads."""
import argparse
import json
import os
import time

import torch
import torch.nn.functional as F


def timed(fn, repeat):
    fn()
    start = time.perf_counter()
    for _ in range(repeat):
        fn()
    return (time.perf_counter() - start) / repeat


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("module")
    parser.add_argument("--batch", type=int, default=8)
    parser.add_argument("--width", type=int, default=768)
    parser.add_argument("--tokens", type=int, default=50)
    parser.add_argument("--layers", type=int, default=12)
    args = parser.parse_args()
    if os.environ.get("OMP_NUM_THREADS") != "1":
        parser.error("set OMP_NUM_THREADS=1 (OpenBLAS reads it)")
    torch.set_num_threads(1)
    module = torch.jit.load(args.module).eval()
    x = torch.randn(args.batch, 3, 224, 224)
    with torch.inference_mode():
        forward_s = timed(lambda: module(x), 3)
        with torch.autograd.profiler.profile() as profile:
            for _ in range(3):
                module(x)
    events = [e for e in profile.key_averages() if e.self_cpu_time_total > 0]
    total = sum(e.self_cpu_time_total for e in events)
    shares = sorted(((e.key, e.self_cpu_time_total / total) for e in events), key=lambda kv: -kv[1])
    gemm = sum(share for key, share in shares if key in ("aten::addmm", "aten::_addmm_activation", "aten::mm"))
    m, w = args.batch * args.tokens, args.width
    gflops = {}
    shapes = ((w, 3 * w), (w, w), (w, 4 * w), (4 * w, w))
    # The same products inside the forward pass: their flops over the GEMM operators' share of it.
    in_forward = 2 * m * args.layers * sum(k * n for k, n in shapes) / (gemm * forward_s) / 1e9
    for k, n in shapes:
        a, b = torch.randn(m, k), torch.randn(n, k)
        seconds = timed(lambda: F.linear(a, b), 10)
        gflops[f"{m}x{k}x{n}"] = round(2 * m * k * n / seconds / 1e9, 1)
    print(json.dumps({"forward_ms": round(forward_s * 1e3, 1), "gemm_share": round(gemm, 3),
                      "top": [[key, round(share, 3)] for key, share in shares[:10]], "sgemm_gflops": gflops,
                      "gemm_gflops_in_forward": round(in_forward, 1),
                      "openblas_coretype": os.environ.get("OPENBLAS_CORETYPE", "(unset)")}))


if __name__ == "__main__":
    main()
