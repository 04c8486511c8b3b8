#!/usr/bin/env python3
"""Near-duplicates on real-photo relisting sets (tests/bench/photo_relistings.py folders: every
photo a product, 300 of them relisted as other products with one or two edits, and ~290
look-alike pairs of different photos as hard negatives) and on demo catalogs, with a given CLIP
bundle: per set, ingest, embed and index once (2 ranks, 4 shards), dedup with default options,
then `lookbook eval dedup` with the negatives. Reports F1, precision, recall, look-alikes
flagged, candidates, verification milliseconds per candidate pair per core and per image, and
for the photo sets how each edit fared (found; rejected by verification; never a candidate).

  /usr/bin/python3 tests/bench/relisting_bench.py --build build/release [--model models/demo/clip]
      --set tune:photos:PHOTOS_EVEN --set report:photos:PHOTOS_ODD
      [--set tune:demo:train:2500:11 --set report:demo:test:2500:7] [--json out.json]
"""
import argparse
import collections
import csv
import os
import shutil
import tempfile

import h5py

from bench_common import finish
from cascade_bench import lookbook, prepare

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def product_of(file):
    """A photo set's image file (p00012.jpg, c00003.jpg): its product id (P00012, C00003)."""
    return os.path.splitext(os.path.basename(file))[0].upper()


def by_edit(run, truth_csv):
    """For each edit of a photo set's truth: how many pairs were found, rejected, never candidates."""
    with h5py.File(os.path.join(run, "dedup", "dedup.h5"), "r") as f:
        keys = dict(zip(f["neighbours/image"][:], f["neighbours/key"].asstr()[:]))
        product = {i: k.split("/")[0] for i, k in keys.items()}
        candidates = {frozenset((product[int(a)], product[int(b)]))
                      for a, b in zip(f["candidates/image_a"][:], f["candidates/image_b"][:])}
        found = {frozenset((product[int(a)], product[int(b)])) for a, b in zip(f["pairs/image_a"][:], f["pairs/image_b"][:])}
    out = collections.defaultdict(collections.Counter)
    with open(truth_csv, newline="") as f:
        for row in csv.DictReader(f):
            pair = frozenset((product_of(row["image_a"]), product_of(row["image_b"])))
            state = "found" if pair in found else ("rejected" if pair in candidates else "no_candidate")
            for edit in row["transform"].split("+"):
                out[edit][state] += 1
    return {edit: dict(counts) for edit, counts in sorted(out.items())}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", required=True)
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "demo", "clip"))
    parser.add_argument("--set", action="append", required=True,
                        help="ROLE:photos:FOLDER or ROLE:demo:SPLIT:ITEMS:SEED")
    parser.add_argument("--json")
    args = parser.parse_args()
    binary = os.path.join(os.path.abspath(args.build), "jobs", "lookbook")
    tmp = tempfile.mkdtemp(prefix="relisting-")
    results = {"model": os.path.abspath(args.model), "sets": {}}
    try:
        for spec in args.set:
            s = prepare(binary, spec, tmp, model=args.model)
            dedup = lookbook(binary, ["dedup", "--run", s["run"]])
            evaluation = lookbook(binary, ["eval", "dedup", "--run", s["run"], "--truth", s["truth"], "--negatives",
                                           s["negatives"]], 1)
            verify_s = next(step["seconds"] for k, step in dedup["steps"].items() if k.startswith("verify"))
            r = {k: evaluation[k] for k in ("f1", "precision", "recall", "truth_pairs", "predicted_pairs",
                                            "negative_pairs", "negatives_flagged")}
            r.update(images=s["images"], candidates=dedup["candidates"], hash_pairs=dedup["hash_pairs"],
                     dedup_s=dedup["seconds"], verify_s=verify_s,
                     verify_ms_per_pair_core=1000 * verify_s * 2 / max(1, dedup["candidates"]),
                     verify_ms_per_image_core=1000 * verify_s * 2 / max(1, s["images"]),
                     blas_core=dedup.get("blas_core"))
            if s["kind"] == "photos":
                r["by_edit"] = by_edit(s["run"], s["truth"])
            results["sets"][s["name"]] = r
        finish(results, args.json)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
