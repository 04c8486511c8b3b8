#!/usr/bin/env python3
"""Reduced precision on CPU (the performance issue): the embed stage with --precision bf16
(LibTorch through oneDNN, where the CPU has avx512_bf16 or amx) against fp32 in the same run,
on the demo catalog with the demo CLIP and on photo-like JPEGs with a ViT-B/32-sized encoder:
inference seconds (the summary's "inference" step) and the embeddings' drift, the mean and
the lowest cosine between each image's bf16 and fp32 embedding (target: mean >= 0.999).

  /usr/bin/python3 tests/bench/precision_bench.py --build build/release [--json out.json]
"""
import argparse
import glob
import os
import sys
import tempfile

import h5py
import numpy as np

from bench_common import MPI_ENV, finish, run, summary


def embeddings(run_dir):
    out = []
    for name in sorted(glob.glob(os.path.join(run_dir, "embed", "shard-*.h5"))):
        with h5py.File(name, "r") as f:
            ok = f["images/status"][:] == 0
            out.append(f["images/embedding"][:][ok].astype(np.float64))
    return np.concatenate(out)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build/release")
    parser.add_argument("--json")
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    lookbook = os.path.join(build, "jobs", "lookbook")
    here = os.path.dirname(os.path.abspath(__file__))
    source = os.path.dirname(os.path.dirname(here))
    flags = open("/proc/cpuinfo").read()
    results = {"cpu_bf16": "avx512_bf16" in flags or "amx_bf16" in flags}
    with tempfile.TemporaryDirectory(prefix="lookbook-precision-bench-") as tmp:
        demo = os.path.join(tmp, "demo")
        run([lookbook, "demo-catalog", "--out", demo], env=MPI_ENV)
        vit = os.path.join(tmp, "vit")
        run(["/usr/bin/python3", os.path.join(here, "make_vit_bundle.py"), vit], env=MPI_ENV)
        photos = os.path.join(tmp, "photos")
        os.makedirs(photos)
        run([os.path.join(build, "tests", "bench", "decode_bench"), "--make", photos, "48"])
        with open(os.path.join(tmp, "photos.csv"), "w") as f:
            f.write("product_id,image_1\n")
            for i, name in enumerate(sorted(os.listdir(photos))):
                f.write(f"P{i:04d},{name}\n")
        for name, catalog, images, model in (
                ("demo_clip", os.path.join(demo, "catalog.csv"), os.path.join(demo, "images"), os.path.join(source, "models", "demo", "clip")),
                ("vit_b32", os.path.join(tmp, "photos.csv"), photos, vit)):
            runs = {}
            for precision in ("fp32", "bf16"):
                run_dir = os.path.join(tmp, f"{name}-{precision}")
                run([lookbook, "ingest", "--catalog", catalog, "--images", images, "--run", run_dir, "--shards", "2"], env=MPI_ENV)
                line = summary(run([lookbook, "embed", "--run", run_dir, "--model", model, "--precision", precision,
                                    "--threads", "1", "--decode-threads", "1"], env=MPI_ENV).stdout)
                runs[precision] = {"inference_s": line["steps"]["inference (rank-seconds)"]["seconds"],
                                   "images": line["images_ok"], "blas_core": line.get("blas_core")}
                runs[precision]["vectors"] = embeddings(run_dir)
            a, b = runs["fp32"].pop("vectors"), runs["bf16"].pop("vectors")
            cosine = np.sum(a * b, axis=1) / (np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1))
            results[name] = {"fp32": runs["fp32"], "bf16": runs["bf16"], "mean_cosine": float(cosine.mean()),
                             "min_cosine": float(cosine.min()),
                             "bf16_speedup": runs["fp32"]["inference_s"] / max(runs["bf16"]["inference_s"], 1e-9)}
            results["blas_core"] = runs["fp32"]["blas_core"]
    finish(results, args.json)


if __name__ == "__main__":
    sys.exit(main())
