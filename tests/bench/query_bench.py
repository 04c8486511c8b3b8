#!/usr/bin/env python3
"""`lookbook query` latency on CPU with the demo models (the recs issue: under 1 s per photo).

The demo catalog goes through the pipeline (ingest, embed with the U-Net on the outfit photos,
index, dedup, recs) with one rank; then `lookbook query` is timed
 1. with one outfit photo: the wall time of the whole command (models, vectors and index
    loaded, then one photo), and
 2. with every outfit photo of the demo in one call: the command's own per-photo figure
    (decode, segment, crop, embed every garment, search by slot), printed on stderr.
One thread (OMP_NUM_THREADS=1, --threads 1); the BLAS kernel is recorded.

  /usr/bin/python3 tests/bench/query_bench.py --build build/release [--json out.json]
"""
import argparse
import csv
import os
import re
import subprocess
import sys
import tempfile
import time

from bench_common import MPI_ENV, finish, run, summary


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build/release")
    parser.add_argument("--json")
    args = parser.parse_args()
    lookbook = os.path.join(os.path.abspath(args.build), "jobs", "lookbook")
    source = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    models = os.path.join(source, "models", "demo")
    config = os.path.join(source, "config", "demo.ini")
    results = {}
    with tempfile.TemporaryDirectory(prefix="lookbook-query-bench-") as tmp:
        demo, run_dir = os.path.join(tmp, "demo"), os.path.join(tmp, "run")
        run([lookbook, "demo-catalog", "--out", demo], env=MPI_ENV)
        run([lookbook, "ingest", "--config", config, "--catalog", os.path.join(demo, "catalog.csv"),
             "--images", os.path.join(demo, "images"), "--run", run_dir], env=MPI_ENV)
        run([lookbook, "embed", "--config", config, "--model", os.path.join(models, "clip"),
             "--segmenter", os.path.join(models, "unet"), "--run", run_dir], env=MPI_ENV)
        for stage in ("index", "dedup", "recs"):
            results[f"{stage}_summary"] = summary(run([lookbook, stage, "--config", config, "--run", run_dir], env=MPI_ENV).stdout)
        results["blas_core"] = results["recs_summary"].get("blas_core")
        with open(os.path.join(demo, "truth", "outfits.csv")) as f:
            photos = [os.path.join(demo, "images", row["outfit"]) for row in csv.DictReader(f)]

        def timed(images):
            command = [lookbook, "query", "--run", run_dir, "--models-root", models, "--threads", "1"] + sum([["--image", p] for p in images], [])
            start = time.perf_counter()
            result = subprocess.run(command, check=True, capture_output=True, text=True, env=MPI_ENV)
            wall = time.perf_counter() - start
            match = re.search(r"in ([0-9.]+) s \(([0-9.]+) s per query\) after ([0-9.]+) s loading", result.stderr)
            garments = sum(1 for line in result.stdout.splitlines() if '"slot"' in line)
            return wall, float(match.group(2)), float(match.group(3)), garments

        wall_one, per_one, load_one, garments_one = timed(photos[:1])
        wall_all, per_all, load_all, garments_all = timed(photos)
        results["one_photo"] = {"wall_s": wall_one, "load_s": load_one, "query_s": per_one, "garments": garments_one}
        results["many_photos"] = {"photos": len(photos), "wall_s": wall_all, "load_s": load_all,
                                  "per_photo_s": per_all, "garments": garments_all}
        results["target_per_photo_s"] = 1.0
        results["per_photo_vs_target"] = per_all / 1.0
    finish(results, args.json)


if __name__ == "__main__":
    sys.exit(main())
