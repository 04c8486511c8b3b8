"""A scripted next night of a demo catalog: what changes in a retailer's catalog from one night
to the next. Used by the nightly tests (test_nightly.py) and benchmark (tests/bench/nightly_bench.py).

    python3 catalog_delta.py CATALOG IMAGES OUT_CATALOG [--seed N]

From CATALOG (the demo's layout: product_id,image_1,image_2,image_3,category,in_stock,title) it
writes OUT_CATALOG where, by default,
  * 2% new products appear, each a copy of an existing product's row under a new id with its
    own image files: half byte-identical copies of the original's (new duplicates), half
    mirrored (jpegtran -flip horizontal: a new look-alike);
  * 1% of the products' first images change in place (same path, mirrored bytes);
  * 1% of the products are removed;
  * 5% of the stock flags flip;
  * the rows are shuffled.
Image files are changed under IMAGES (in place: night 1's run keeps its own checksums, which is
what an incremental night must notice). Prints a JSON summary of what it did."""
import argparse
import csv
import json
import os
import random
import shutil
import subprocess
import sys


def mirror(source, target):
    tmp = target + ".tmp"
    subprocess.run(["jpegtran", "-flip", "horizontal", "-outfile", tmp, source], check=True)
    os.replace(tmp, target)


def next_night(catalog, images, out_catalog, seed=1, add=0.02, change=0.01, remove=0.01, flip=0.05,
               shuffle=True):
    rng = random.Random(seed)
    with open(catalog, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = [row for row in reader]
    column = {name: i for i, name in enumerate(header)}
    image_columns = [column[c] for c in header if c.startswith("image_")]
    n = len(rows)
    count = lambda share: max(1, round(share * n))
    order = list(range(n))
    rng.shuffle(order)
    picks = iter(order)
    removed = {next(picks) for _ in range(count(remove))}
    changed = [next(picks) for _ in range(count(change))]
    flipped = [next(picks) for _ in range(count(flip))]
    summary = {"products_before": n, "removed": len(removed), "changed_images": 0, "flipped_stock": 0,
               "added": 0, "added_copies": 0, "added_mirrored": 0}

    for r in changed:
        path = rows[r][image_columns[0]]
        if path:
            mirror(os.path.join(images, path), os.path.join(images, path))
            summary["changed_images"] += 1
    for r in flipped:
        rows[r][column["in_stock"]] = "0" if rows[r][column["in_stock"]] == "1" else "1"
        summary["flipped_stock"] += 1

    kept = [row for r, row in enumerate(rows) if r not in removed]
    existing = {row[column["product_id"]] for row in rows}
    next_id = 900000
    for i in range(count(add)):
        source = rows[rng.randrange(n)]
        while f"P{next_id}" in existing:
            next_id += 1
        new_id = f"P{next_id}"
        next_id += 1
        row = list(source)
        row[column["product_id"]] = new_id
        copy = i % 2 == 0
        for c in image_columns:
            if not source[c]:
                continue
            folder, name = os.path.split(source[c])
            target = os.path.join(folder, f"{new_id}_{c}{os.path.splitext(name)[1]}")
            if copy:
                shutil.copyfile(os.path.join(images, source[c]), os.path.join(images, target))
            else:
                mirror(os.path.join(images, source[c]), os.path.join(images, target))
            row[c] = target
        kept.append(row)
        summary["added"] += 1
        summary["added_copies" if copy else "added_mirrored"] += 1
    if shuffle:
        rng.shuffle(kept)
    with open(out_catalog, "w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(header)
        writer.writerows(kept)
    summary["products_after"] = len(kept)
    return summary


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("catalog")
    parser.add_argument("images")
    parser.add_argument("out_catalog")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    print(json.dumps(next_night(args.catalog, args.images, args.out_catalog, args.seed)))


if __name__ == "__main__":
    sys.exit(main())
