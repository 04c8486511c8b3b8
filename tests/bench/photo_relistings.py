#!/usr/bin/env python3
"""A near-duplicate evaluation catalog from real photos: every photo of a folder of class
folders (such as the CC0 clothing-dataset-small train split, alexeygrigorev/clothing-dataset-small
on GitHub) is one product, and `--copies` of them are relisted as another product with an edited
copy of the photo: a crop, a white border, a small rotation, a downscale, a brighter copy or a
harsh re-encode (one or two of them). The truth is the planted pairs; the other photos of the same
class are the look-alikes that must not be flagged, and `--negatives` of them are written out as
hard negatives: a photo and the other photo of its class nearest to it in pixels (16 x 16 colour
thumbnails, squared distance), which `lookbook eval dedup --negatives` counts when flagged.

  /usr/bin/python3 tests/bench/photo_relistings.py --photos DIR --out OUT [--half even|odd]
      [--copies 300] [--negatives 300] [--seed 1]

Writes OUT/catalog.csv (product_id,image_1,category,in_stock,title), OUT/images/*.jpg,
OUT/truth.csv (image_a,image_b,transform) and OUT/negatives.csv (image_a,image_b). `--half` keeps every other photo of each class, so
that thresholds tuned on one half are reported on the other. Needs Pillow (python3-pil).
"""
import argparse
import csv
import os
import random

from PIL import Image, ImageEnhance, ImageOps

TRANSFORMS = ["crop", "border", "rotate", "downscale", "brighter", "reencode"]


def edit(image, transform, rng):
    w, h = image.size
    if transform == "crop":
        f = rng.uniform(0.82, 0.93)
        cw, ch = int(w * f), int(h * f)
        x, y = rng.randint(0, w - cw), rng.randint(0, h - ch)
        return image.crop((x, y, x + cw, y + ch))
    if transform == "border":
        b = int(min(w, h) * rng.uniform(0.05, 0.15))
        return ImageOps.expand(image, border=b, fill=(255, 255, 255))
    if transform == "rotate":
        angle = rng.choice([-1, 1]) * rng.uniform(2, 6)
        return image.rotate(angle, resample=Image.BILINEAR, expand=True, fillcolor=(255, 255, 255))
    if transform == "downscale":
        f = rng.uniform(0.5, 0.75)
        return image.resize((max(1, int(w * f)), max(1, int(h * f))), Image.LANCZOS)
    if transform == "brighter":
        return ImageEnhance.Brightness(image).enhance(rng.uniform(1.08, 1.2))
    if transform == "reencode":
        return image  # the quality below does it
    raise ValueError(transform)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--photos", required=True)
    parser.add_argument("--out", required=True)
    parser.add_argument("--half", choices=["even", "odd", "all"], default="all")
    parser.add_argument("--copies", type=int, default=300)
    parser.add_argument("--negatives", type=int, default=300)
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    rng = random.Random(args.seed)
    photos = []
    for cls in sorted(os.listdir(args.photos)):
        folder = os.path.join(args.photos, cls)
        if not os.path.isdir(folder):
            continue
        names = sorted(n for n in os.listdir(folder) if n.lower().endswith((".jpg", ".jpeg", ".png")))
        if args.half != "all":
            names = names[0 if args.half == "even" else 1::2]
        photos += [(cls, os.path.join(folder, n)) for n in names]
    images = os.path.join(args.out, "images")
    os.makedirs(images, exist_ok=True)
    rows, truth = [], []
    for i, (cls, path) in enumerate(photos):
        name = f"p{i:05d}.jpg"
        Image.open(path).convert("RGB").save(os.path.join(images, name), quality=92)
        rows.append([f"P{i:05d}", name, cls, "1", f"{cls} {i}"])
    for j, i in enumerate(sorted(rng.sample(range(len(photos)), min(args.copies, len(photos))))):
        cls, path = photos[i]
        image = Image.open(path).convert("RGB")
        chosen = rng.sample(TRANSFORMS, rng.choice([1, 1, 2]))
        for transform in chosen:
            image = edit(image, transform, rng)
        quality = rng.randint(25, 45) if "reencode" in chosen else 88
        name = f"c{j:05d}.jpg"
        image.save(os.path.join(images, name), quality=quality)
        rows.append([f"C{j:05d}", name, cls, rng.choice(["0", "1"]), f"{cls} relisted {j}"])
        truth.append([f"p{i:05d}.jpg", name, "+".join(chosen)])
    with open(os.path.join(args.out, "catalog.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["product_id", "image_1", "category", "in_stock", "title"])
        w.writerows(rows)
    with open(os.path.join(args.out, "truth.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image_a", "image_b", "transform"])
        w.writerows(truth)
    # Hard negatives: a seeded sample of the photos, each with its class's nearest other photo.
    thumbs = [list(Image.open(path).convert("RGB").resize((16, 16), Image.BILINEAR).tobytes()) for _, path in photos]
    negatives = set()
    for i in random.Random(args.seed + 1).sample(range(len(photos)), min(args.negatives, len(photos))):
        best = None
        for j in range(len(photos)):
            if j == i or photos[j][0] != photos[i][0]:
                continue
            d = sum((x - y) * (x - y) for x, y in zip(thumbs[i], thumbs[j]))
            if best is None or d < best[0]:
                best = (d, j)
        if best is not None:
            negatives.add(tuple(sorted((i, best[1]))))
    with open(os.path.join(args.out, "negatives.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["image_a", "image_b"])
        w.writerows([f"p{i:05d}.jpg", f"p{j:05d}.jpg"] for i, j in sorted(negatives))
    print(f"{len(rows)} products, {len(truth)} planted copies, {len(negatives)} look-alike pairs -> {args.out}")


if __name__ == "__main__":
    main()
