#!/usr/bin/env python3
"""The garment bar (`lookbook embed --garment-min-score`): how sure the segmenter must be of a
garment before it is stored, measured on demo catalogs with flat-lay and randomized outfit
photos. A bar too high loses garments of photos unlike the training's (slot recall); too low,
it stores garments that are not there (slot precision).

Every set (ROLE:SPLIT:ITEMS:SEED:flat-lay|random, a `demo-catalog` with --outfits OUTFITS) is
ingested once; each bar then runs embed (the demo CLIP and U-Net on image_3), index, dedup and
recs, and `lookbook eval garments` and `lookbook eval recs` (the real stages: nothing is
recomputed here). Choose on the tune sets, report on the others.

  /usr/bin/python3 tests/bench/garment_bar_bench.py --build build/release \\
      --set tune:train:600:21:random --set tune:train:600:21:flat-lay \\
      --set report:test:1200:8:random --set report:test:400:7:flat-lay [--bars 0.5,0.6,0.7] [--json out.json]

(report:test:1200:8:random and report:test:400:7:flat-lay are the two catalogs jobs/demo.sh runs.)
"""
import argparse
import os
import shutil
import tempfile

from bench_common import finish
from cascade_bench import ROOT, lookbook

CONFIG = os.path.join(ROOT, "config", "demo.ini")


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build/release")
    parser.add_argument("--set", action="append", required=True)
    parser.add_argument("--bars", default="0.5,0.55,0.6,0.65,0.7")
    parser.add_argument("--segmenter", default=os.path.join(ROOT, "models", "demo", "unet"))
    parser.add_argument("--json")
    args = parser.parse_args()
    binary = os.path.abspath(os.path.join(args.build, "jobs", "lookbook"))
    segmenter = os.path.abspath(args.segmenter)
    bars = [float(b) for b in args.bars.split(",")]
    results = {"segmenter": segmenter, "sets": []}
    with tempfile.TemporaryDirectory(prefix="lookbook-garment-bar-", dir=os.environ.get("BENCH_TMP")) as tmp:
        for spec in args.set:
            role, split, items, seed, outfits = spec.split(":")
            name = f"{role}-{split}-{items}-{seed}-{outfits}"
            source = os.path.join(tmp, name, "catalog")
            lookbook(binary, ["demo-catalog", "--config", CONFIG, "--out", source, "--items", items, "--split", split,
                              "--seed", seed, "--outfits", outfits], 1)
            ingested = os.path.join(tmp, name, "ingested")
            lookbook(binary, ["ingest", "--config", CONFIG, "--run", ingested, "--catalog",
                              os.path.join(source, "catalog.csv"), "--images", os.path.join(source, "images")])
            truth = os.path.join(source, "truth")
            rows = []
            for bar in bars:
                run = os.path.join(tmp, name, f"run-{bar}")
                shutil.copytree(ingested, run)
                embed = lookbook(binary, ["embed", "--config", CONFIG, "--run", run, "--model",
                                          os.path.join(ROOT, "models", "demo", "clip"), "--segmenter", segmenter,
                                          "--garment-min-score", str(bar)])
                for stage in ("index", "dedup", "recs"):
                    lookbook(binary, [stage, "--config", CONFIG, "--run", run])
                garments = lookbook(binary, ["eval", "garments", "--run", run, "--truth", truth], 1)
                recs = lookbook(binary, ["eval", "recs", "--run", run, "--truth", os.path.join(truth, "outfits.csv"),
                                         "--products", os.path.join(truth, "products.csv")], 1)
                row = {"bar": bar, "garments": embed.get("garments"), "blas_core": embed.get("blas_core"),
                       **{k: garments.get(k) for k in ("outfit_photos", "slot_precision", "slot_recall",
                                                       "crop_rank1", "crop_recall_at_5", "garments_per_photo")},
                       **{k: v for k, v in recs.items() if k.startswith("outfit")}}
                rows.append(row)
                print(f"{name:28s} bar {bar:4.2f}: slot P {row['slot_precision']:.3f} R {row['slot_recall']:.3f}, "
                      f"crop recall@5 {row['crop_recall_at_5']:.3f}, outfit recall@5 "
                      f"{row.get('outfit_recall_at_k', float('nan')):.3f} MRR {row.get('outfit_mrr', float('nan')):.3f}",
                      flush=True)
            results["sets"].append({"name": name, "role": role, "rows": rows})
    finish(results, args.json)


if __name__ == "__main__":
    main()
