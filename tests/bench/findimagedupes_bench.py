#!/usr/bin/env python3
"""Near-duplicate detection on the demo catalog (test split), lookbook against Debian's
findimagedupes (perceptual fingerprints, its default 90% threshold and stricter ones, the best F1 kept) in the same run:
precision, recall and F1 of each one's pairs against the demo's planted copies (counted
transitively, as `lookbook eval dedup` does), and images per second from the image files to
the pairs (lookbook: embed + index + dedup with one rank and one thread; findimagedupes:
its whole run, one process).

  /usr/bin/python3 tests/bench/findimagedupes_bench.py --build build/release [--json out.json]
"""
import argparse
import csv
import glob
import itertools
import json
import os
import subprocess
import sys
import tempfile
import time

from bench_common import MPI_ENV, finish, run, summary


def closure(pairs):
    parent = {}

    def find(x):
        while parent.setdefault(x, x) != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    for a, b in pairs:
        parent[find(a)] = find(b)
    groups = {}
    for x in list(parent):
        groups.setdefault(find(x), []).append(x)
    return {tuple(sorted(p)) for g in groups.values() for p in itertools.combinations(g, 2)}


def score(found, truth):
    hits = len(found & truth)
    precision = hits / len(found) if found else 1.0
    recall = hits / len(truth)
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return {"pairs": len(found), "precision": precision, "recall": recall, "f1": f1}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build/release")
    parser.add_argument("--json")
    args = parser.parse_args()
    lookbook = os.path.join(os.path.abspath(args.build), "jobs", "lookbook")
    source = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    results = {}
    with tempfile.TemporaryDirectory(prefix="lookbook-fid-bench-") as tmp:
        demo, run_dir = os.path.join(tmp, "demo"), os.path.join(tmp, "run")
        run([lookbook, "demo-catalog", "--out", demo], env=MPI_ENV)
        with open(os.path.join(demo, "catalog.csv")) as f:
            images = [r[c] for r in csv.DictReader(f) for c in ("image_1", "image_2", "image_3") if r[c]]
        with open(os.path.join(demo, "truth", "duplicates.csv")) as f:
            truth = closure((r["image_a"], r["image_b"]) for r in csv.DictReader(f))
        results["images"] = len(images)
        results["truth_pairs"] = len(truth)

        # lookbook: image files to pairs.
        run([lookbook, "ingest", "--catalog", os.path.join(demo, "catalog.csv"), "--images", os.path.join(demo, "images"),
             "--run", run_dir, "--shards", "4"], env=MPI_ENV)
        seconds = 0.0
        for stage in (["embed", "--model", os.path.join(source, "models", "demo", "clip"), "--decode-threads", "1"],
                      ["index"], ["dedup"]):
            start = time.perf_counter()
            line = summary(run([lookbook, *stage, "--run", run_dir], env=MPI_ENV).stdout)
            seconds += time.perf_counter() - start
            results.setdefault("blas_core", line.get("blas_core"))
        with open(os.path.join(run_dir, "dedup", "pairs.csv")) as f:
            keys = {}
            for shard in sorted(glob.glob(os.path.join(run_dir, "ingest", "shard-*.csv"))):
                with open(shard) as g:
                    for r in csv.DictReader(g):
                        keys[f"{r['product_id']}/{r['column']}"] = r["image"]
            ours = {tuple(sorted((keys[r["image_a"]], keys[r["image_b"]]))) for r in csv.DictReader(f)}
        results["lookbook"] = dict(score(ours, truth), seconds=seconds, images_per_s=len(images) / seconds)

        # findimagedupes: the same files, at its default threshold (90%) and stricter ones; the
        # peer's best F1 is the one compared (its speed is the default run's).
        prefix = os.path.join(demo, "images") + os.sep
        results["findimagedupes_thresholds"] = {}
        for threshold in ("90%", "95%", "98%", "99%"):
            start = time.perf_counter()
            out = subprocess.run(["findimagedupes", "-q", "-R", "-t", threshold, os.path.join(demo, "images")],
                                 check=True, capture_output=True, text=True).stdout
            seconds = time.perf_counter() - start
            theirs = set()
            for line in out.splitlines():
                group = [p[len(prefix):] for p in line.split() if p.startswith(prefix)]
                theirs.update(tuple(sorted(p)) for p in itertools.combinations(group, 2))
            results["findimagedupes_thresholds"][threshold] = dict(score(theirs, truth), seconds=seconds,
                                                                   images_per_s=len(images) / seconds)
        best = max(results["findimagedupes_thresholds"].items(), key=lambda item: item[1]["f1"])
        results["findimagedupes"] = dict(best[1], threshold=best[0],
                                         images_per_s=results["findimagedupes_thresholds"]["90%"]["images_per_s"])
        results["f1_ratio"] = results["lookbook"]["f1"] / max(results["findimagedupes"]["f1"], 1e-9)
        results["speed_ratio"] = results["lookbook"]["images_per_s"] / results["findimagedupes"]["images_per_s"]
    finish(results, args.json)


if __name__ == "__main__":
    sys.exit(main())
