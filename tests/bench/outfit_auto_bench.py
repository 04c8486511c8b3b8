#!/usr/bin/env python3
"""`lookbook embed --segment-images auto`: which images count as outfit photos. auto segments
every image and keeps an image's garments only when it is an outfit photo: two slots, each with
a garment of at least --outfit-min-area of the image and --outfit-min-score mean confidence. A
lone product shot must not pass (its products would lose their substitutes); a demo outfit photo
(the image_3 column of demo-catalog) should.

For every set it runs ingest and embed once with --segment-images all (every garment the
segmenter finds at the garment bars is stored) and applies each (area, score) bar to the stored
garments: lone shots passed (photo_relistings.py folders: every image is a lone product shot;
demo catalogs: image_1 and image_2) and outfit photos passed (demo image_3). Choose on the tune
sets, report on the others.

  /usr/bin/python3 tests/bench/outfit_auto_bench.py --build build/release \\
      --set tune:photos:/tmp/photos_even --set tune:demo:train:600:21 \\
      --set report:photos:/tmp/photos_odd --set report:demo:test:600:22 [--segmenter BUNDLE] [--json out.json]
"""
import argparse
import glob
import os
import tempfile

import h5py

from bench_common import finish
from cascade_bench import ROOT, lookbook

BARS = [(0.005, 0.7), (0.005, 0.8), (0.01, 0.8), (0.02, 0.8), (0.03, 0.8), (0.05, 0.8), (0.03, 0.85), (0.03, 0.9)]


def prepare(binary, spec, tmp, segmenter):
    role, kind, *rest = spec.split(":")
    folder = os.path.join(tmp, f"{role}-{kind}-" + "-".join(os.path.basename(r) for r in rest))
    if kind == "demo":
        split, items, seed = rest
        source = os.path.join(folder, "catalog")
        lookbook(binary, ["demo-catalog", "--out", source, "--items", items, "--split", split, "--seed", seed], 1)
    else:
        source = rest[0]
    run = os.path.join(folder, "run")
    models = os.path.join(ROOT, "models", "demo")
    lookbook(binary, ["ingest", "--run", run, "--catalog", os.path.join(source, "catalog.csv"), "--images",
                      os.path.join(source, "images"), "--shards", "4"])
    summary = lookbook(binary, ["embed", "--run", run, "--model", os.path.join(models, "clip"), "--segmenter",
                                segmenter, "--segment-images", "all"])
    return role, kind, os.path.basename(folder), run, summary


def images(run):
    """(key, [(slot, area share, score)]) of every ok image."""
    out = []
    for path in sorted(glob.glob(os.path.join(run, "embed", "shard-*.h5"))):
        with h5py.File(path, "r") as f:
            keys, status = f["images/key"].asstr()[:], f["images/status"][:]
            pixels = f["images/width"][:].astype(float) * f["images/height"][:]
            g = f["garments"]
            found = {}
            for i, slot, area, score in zip(g["image_index"][:], g["slot"].asstr()[:], g["area"][:], g["score"][:]):
                found.setdefault(int(i), []).append((slot, area / pixels[i], float(score)))
            out += [(keys[r], found.get(r, [])) for r in range(len(keys)) if status[r] == 0]
    return out


def outfit(garments, area, score):
    return len({slot for slot, a, s in garments if a >= area and s >= score}) >= 2


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build/release")
    parser.add_argument("--set", action="append", required=True)
    parser.add_argument("--segmenter", default=os.path.join(ROOT, "models", "demo", "unet"))
    parser.add_argument("--json")
    args = parser.parse_args()
    binary = os.path.abspath(os.path.join(args.build, "jobs", "lookbook"))
    results = {"segmenter": os.path.abspath(args.segmenter), "sets": []}
    with tempfile.TemporaryDirectory(prefix="lookbook-outfit-bench-", dir=os.environ.get("BENCH_TMP")) as tmp:
        for spec in args.set:
            role, kind, name, run, summary = prepare(binary, spec, tmp, os.path.abspath(args.segmenter))
            data = images(run)
            outfits = [g for k, g in data if kind == "demo" and k.endswith("/image_3")]
            shots = [g for k, g in data if not (kind == "demo" and k.endswith("/image_3"))]
            rows = []
            for area, score in BARS:
                row = {"outfit_min_area": area, "outfit_min_score": score, "lone_shots": len(shots),
                       "lone_shots_passed": sum(outfit(g, area, score) for g in shots),
                       "outfit_photos": len(outfits), "outfit_photos_passed": sum(outfit(g, area, score) for g in outfits)}
                rows.append(row)
                print(f"{role:6s} {name:28s} area {area:5.3f} score {score:4.2f}: lone shots passed "
                      f"{row['lone_shots_passed']}/{len(shots)}, outfit photos passed "
                      f"{row['outfit_photos_passed']}/{len(outfits)}", flush=True)
            results["sets"].append({"name": name, "role": role, "rows": rows, "blas_core": summary.get("blas_core")})
    finish(results, args.json)


if __name__ == "__main__":
    main()
