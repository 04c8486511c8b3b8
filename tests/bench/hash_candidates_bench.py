#!/usr/bin/env python3
"""Candidates by perceptual hash (`lookbook dedup --hash-radius`): what they add to the
embedding's candidates, on catalogs unlike the demo's. A copy with an added border, a rotation
or a harsh re-encode can fall below the embedding's candidate floor while its perceptual hash
(of the frame-trimmed content box) stays within a few bits: --hash-radius R makes every pair
within R bits a candidate too, and verification (the alignment) decides as for any candidate.

For every set (tests/bench/cascade_bench.py's sets: demo catalogs of a split and seed, or
photo_relistings.py folders) it runs ingest, embed and index once (2 ranks), then dedup once per
radius on the same run, and `lookbook eval dedup` against the set's truth: candidates, the pairs
the hash added, verification seconds, precision / recall / F1. Choose the radius on the tune
sets; the report sets say what it gives elsewhere.

  /usr/bin/python3 tests/bench/hash_candidates_bench.py --build build/release \\
      --set tune:demo:train:2500:11 --set tune:photos:/tmp/photos_even \\
      --set report:demo:test:2500:7 --set report:photos:/tmp/photos_odd \\
      --radius -1 --radius 4 --radius 8 [--json out.json]
"""
import argparse
import json
import os
import tempfile

from bench_common import finish
from cascade_bench import lookbook, prepare


def dedup(binary, s, radius):
    summary = lookbook(binary, ["dedup", "--run", s["run"], "--force", "--hash-radius", str(radius)])
    lookbook(binary, ["eval", "dedup", "--run", s["run"], "--truth", s["truth"]], 1)
    with open(os.path.join(s["run"], "eval", "dedup.json")) as f:
        metrics = json.load(f)
    verify_s = next((st["seconds"] for name, st in summary.get("steps", {}).items() if name.startswith("verify")),
                    None)
    return {"radius": radius, "candidates": summary["candidates"], "hash_pairs": summary.get("hash_pairs", 0),
            "pairs": summary["pairs"], "dedup_s": summary["seconds"], "verify_s": verify_s,
            "precision": metrics["precision"], "recall": metrics["recall"], "f1": metrics["f1"],
            "truth_pairs": metrics["truth_pairs"], "blas_core": summary.get("blas_core")}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build/release")
    parser.add_argument("--set", action="append", required=True)
    parser.add_argument("--radius", action="append", type=int, required=True)
    parser.add_argument("--json")
    args = parser.parse_args()
    binary = os.path.abspath(os.path.join(args.build, "jobs", "lookbook"))
    results = {"sets": []}
    with tempfile.TemporaryDirectory(prefix="lookbook-hash-bench-", dir=os.environ.get("BENCH_TMP")) as tmp:
        for spec in args.set:
            s = prepare(binary, spec, tmp)
            rows = [dedup(binary, s, r) for r in args.radius]
            for row in rows:
                print(f"{s['name']:40s} radius {row['radius']:3d}: candidates {row['candidates']:6d} "
                      f"(hash {row['hash_pairs']:6d}), F1 {row['f1']:.4f} (P {row['precision']:.4f}, "
                      f"R {row['recall']:.4f}), verify {row['verify_s']} s", flush=True)
            results["sets"].append({"name": s["name"], "role": s["role"], "rows": rows})
    finish(results, args.json)


if __name__ == "__main__":
    main()
