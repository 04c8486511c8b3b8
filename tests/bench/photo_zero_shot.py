#!/usr/bin/env python3
"""Zero-shot categories on real photos: every photo of a folder of class folders (such as the CC0
clothing-dataset-small train split, alexeygrigorev/clothing-dataset-small on GitHub) becomes a
product with no category, and `lookbook recs --categories` classifies it through the CLIP text
tower, the classes described in words with `--category-names` (a folder name such as
"longsleeve" is not a word the model reads). The accuracy is the share of photos whose
zero-shot category is their folder; it is reported per class, next to always guessing the
largest class, and once more without the words (each class by its folder name alone).

  /usr/bin/python3 tests/bench/photo_zero_shot.py --build build/release --photos DIR \\
      [--half odd] [--model models/demo/clip] [--json out.json]

`--half` keeps every other photo of each class in name order, as tests/bench/photo_relistings.py
does: the demo CLIP trained on the even half, so report on the odd half. Runs ingest, embed,
index, dedup and recs under mpirun -np 2. Needs h5py.
"""
import argparse
import collections
import csv
import os
import shutil
import tempfile

import h5py

from bench_common import finish
from cascade_bench import lookbook

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

# The words each class folder is described with: the names models/train/train_clip.cpp
# (PhotoClassWords) gives the demo CLIP's captions.
DESCRIPTIONS = {"longsleeve": "long sleeve top", "outwear": "jacket"}


def photo_catalog(photos, half, folder):
    """catalog.csv (no categories) and images/ (copies: embed does not follow links out of the image root) in folder; returns {product_id: class}."""
    images = os.path.join(folder, "images")
    os.makedirs(images)
    truth, rows = {}, []
    for cls in sorted(os.listdir(photos)):
        path = os.path.join(photos, cls)
        if not os.path.isdir(path):
            continue
        names = sorted(n for n in os.listdir(path) if n.lower().endswith((".jpg", ".jpeg", ".png")))
        if half != "all":
            names = names[0 if half == "even" else 1::2]
        for name in names:
            pid = f"Z{len(rows):05d}"
            link = pid + os.path.splitext(name)[1].lower()
            shutil.copyfile(os.path.join(path, name), os.path.join(images, link))
            rows.append([pid, link, "", "1", f"photo {len(rows)}"])
            truth[pid] = cls
    with open(os.path.join(folder, "catalog.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["product_id", "image_1", "category", "in_stock", "title"])
        writer.writerows(rows)
    return truth


def classify(binary, run, model, classes, names):
    args = ["recs", "--run", run, "--model", model, "--categories", ",".join(classes), "--force"]
    if names:
        args += ["--category-names", ",".join(f"{c}={w}" for c, w in names.items())]
    report = lookbook(binary, args)
    with h5py.File(os.path.join(run, "recs", "recs.h5"), "r") as f:
        got = dict(zip(f["products/id"].asstr()[:], f["products/category"].asstr()[:]))
    return got, report


def score(got, truth):
    per_class = collections.defaultdict(lambda: [0, 0])
    for pid, cls in truth.items():
        per_class[cls][0] += got.get(pid) == cls
        per_class[cls][1] += 1
    right = sum(r for r, _ in per_class.values())
    return {"accuracy": round(right / len(truth), 4),
            "per_class": {c: round(r / n, 3) for c, (r, n) in sorted(per_class.items())}}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", required=True)
    parser.add_argument("--photos", required=True)
    parser.add_argument("--half", choices=["even", "odd", "all"], default="odd")
    parser.add_argument("--model", default=os.path.join(ROOT, "models", "demo", "clip"))
    parser.add_argument("--json")
    args = parser.parse_args()
    binary = os.path.join(os.path.abspath(args.build), "jobs", "lookbook")
    model = os.path.abspath(args.model)
    tmp = tempfile.mkdtemp(prefix="zero-shot-")
    try:
        truth = photo_catalog(args.photos, args.half, tmp)
        classes = sorted(set(truth.values()))
        run = os.path.join(tmp, "run")
        lookbook(binary, ["ingest", "--run", run, "--catalog", os.path.join(tmp, "catalog.csv"), "--images",
                          os.path.join(tmp, "images"), "--shards", "4"])
        lookbook(binary, ["embed", "--run", run, "--model", model])
        lookbook(binary, ["index", "--run", run])
        lookbook(binary, ["dedup", "--run", run])
        names = {c: w for c, w in DESCRIPTIONS.items() if c in classes}
        got, report = classify(binary, run, model, classes, names)
        described = score(got, truth)
        bare_got, bare_report = classify(binary, run, model, classes, {})
        bare = score(bare_got, truth)
        largest = collections.Counter(truth.values()).most_common(1)[0]
        results = {
            "photos": args.photos, "half": args.half, "images": len(truth), "model": model,
            "category_names": names, "described": described,
            "categories_zero_shot": report.get("categories_zero_shot"),
            "categories_unreadable": report.get("categories_unreadable"),
            "folder_names_only": {**bare, "categories_unreadable": bare_report.get("categories_unreadable")},
            "largest_class": {"class": largest[0], "share": round(largest[1] / len(truth), 4)},
        }
        finish(results, args.json)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
