#!/usr/bin/env python3
"""Ingest benchmark: parse + validate + shard a synthetic catalog of N rows (default
1,000,000, three image columns), with lookbook and, in the same run, with two peers:

  pandas    pandas.read_csv of the same file (parsing only, C engine): the floor a Python
            pipeline pays before it validates anything;
  python    a straightforward Python ingest doing the same work as lookbook (csv module,
            realpath + stat of every image, xxh64 sharding, one CSV per shard).

Reports rows/s for each and lookbook's ratio to each. Timings are wall-clock, best of
--repeat runs, on this machine; the ratios are what to compare across machines.

  /usr/bin/python3 tests/bench/ingest_bench.py --lookbook build/release/jobs/lookbook
"""
import argparse
import csv
import json
import os
import random
import subprocess
import sys
import tempfile
import time

import pandas as pd
import xxhash

SHARDS = 16
IMAGE_FILES = 10000


def make_catalog(folder, rows, seed=1):
    """A catalog with the defects a real feed has: ~1% missing images, ~0.2% duplicate ids,
    titles with commas and quotes."""
    rng = random.Random(seed)
    images = os.path.join(folder, "images")
    for k in range(IMAGE_FILES):
        sub = os.path.join(images, f"d{k % 100:02d}")
        os.makedirs(sub, exist_ok=True)
        with open(os.path.join(sub, f"img{k:05d}.jpg"), "wb") as f:
            f.write(b"\xff\xd8 jpeg")
    path = os.path.join(folder, "catalog.csv")
    with open(path, "w", newline="") as f:
        writer = csv.writer(f, lineterminator="\n")
        writer.writerow(["product_id", "image_1", "image_2", "image_3", "category", "in_stock",
                         "title"])
        for i in range(rows):
            pid = f"P{i:08d}" if rng.random() > 0.002 else f"P{rng.randrange(max(i, 1)):08d}"
            refs = []
            for _ in range(3):
                k = rng.randrange(IMAGE_FILES)
                name = f"d{k % 100:02d}/img{k:05d}.jpg"
                if rng.random() < 0.01:
                    name = f"d{k % 100:02d}/missing{k:05d}.jpg"
                refs.append(name)
            writer.writerow([pid, *refs, rng.choice(["Dress", "Coat", "Bag", "Shirt"]),
                             rng.choice(["1", "0"]), f'Item {i}, "style" {rng.randrange(999)}'])
    return path, images


def python_ingest(catalog, images, out):
    """The peer: the same validation and sharding, written the way one would in Python."""
    root = os.path.realpath(images)
    os.makedirs(out, exist_ok=True)
    files = [open(os.path.join(out, f"shard-{k:05d}.csv"), "w", newline="") for k in range(SHARDS)]
    writers = [csv.writer(f, lineterminator="\n") for f in files]
    rejects = csv.writer(open(os.path.join(out, "rejects.csv"), "w", newline=""), lineterminator="\n")
    seen = set()
    ok = rejected = 0
    with open(catalog, newline="", encoding="utf-8") as f:
        reader = csv.reader(f)
        header = next(reader)
        for row_number, row in enumerate(reader, 1):
            if len(row) != len(header):
                rejects.writerow([row_number, "", "", "", "field_count"]); rejected += 1; continue
            pid = row[0]
            if not pid or pid in seen:
                rejects.writerow([row_number, pid, "", "", "duplicate_product_id"]); rejected += 1; continue
            seen.add(pid)
            accepted = []
            for column, ref in zip(header[1:4], row[1:4]):
                if not ref:
                    continue
                real = os.path.realpath(os.path.join(root, ref))
                if not real.startswith(root + "/") or not os.path.isfile(real) or os.path.getsize(real) == 0:
                    rejects.writerow([row_number, pid, column, ref, "missing"]); continue
                accepted.append((column, ref, real[len(root) + 1:]))
            if not accepted:
                rejects.writerow([row_number, pid, "", "", "all_images_rejected"]); rejected += 1; continue
            shard = writers[xxhash.xxh64_intdigest(pid.encode(), 0) % SHARDS]
            for column, ref, rel in accepted:
                shard.writerow([pid, column, ref, rel, row[4], row[5], row[6], row_number])
            ok += 1
    for f in files:
        f.close()
    return ok, rejected


def best_of(repeat, fn):
    best = None
    for _ in range(repeat):
        start = time.perf_counter()
        result = fn()
        elapsed = time.perf_counter() - start
        best = elapsed if best is None or elapsed < best else best
    return best, result


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--lookbook", required=True)
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--json", help="also write the results here")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(prefix="lookbook-bench-") as tmp:
        catalog, images = make_catalog(tmp, args.rows)
        size_mb = os.path.getsize(catalog) / 1e6
        results = {}

        def lookbook(threads):
            run = os.path.join(tmp, f"run-{threads}")
            out = subprocess.run([args.lookbook, "ingest", "--catalog", catalog, "--images", images,
                                  "--run", run, "--shards", str(SHARDS), "--io-threads",
                                  str(threads), "--force", "--log-level", "warn"],
                                 check=True, capture_output=True, text=True)
            return json.loads(out.stdout.strip().splitlines()[-1])

        for threads in (1, 16):
            seconds, summary = best_of(args.repeat, lambda: lookbook(threads))
            assert summary["rows_in"] == args.rows == summary["rows_ok"] + summary["rows_rejected"]
            results[f"lookbook_io{threads}"] = {"seconds": seconds, "rows_per_s": args.rows / seconds,
                                                "rows_ok": summary["rows_ok"]}
        seconds, frame = best_of(args.repeat, lambda: pd.read_csv(catalog, dtype=str, keep_default_na=False))
        assert len(frame) == args.rows
        results["pandas_read_csv"] = {"seconds": seconds, "rows_per_s": args.rows / seconds}
        seconds, (ok, _) = best_of(1, lambda: python_ingest(catalog, images, os.path.join(tmp, "py")))
        results["python_ingest"] = {"seconds": seconds, "rows_per_s": args.rows / seconds, "rows_ok": ok}
        assert ok == results["lookbook_io16"]["rows_ok"], (ok, results["lookbook_io16"]["rows_ok"])

    best = max(results["lookbook_io1"]["rows_per_s"], results["lookbook_io16"]["rows_per_s"])
    cpu = "unknown"
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    report = {
        "benchmark": "ingest", "rows": args.rows, "catalog_mb": round(size_mb, 1),
        "image_columns": 3, "shards": SHARDS, "machine": f"{cpu}, {os.cpu_count()} cores",
        "blas": "not used by ingest", "results": results,
        "ratio_vs_pandas_read_csv": best / results["pandas_read_csv"]["rows_per_s"],
        "ratio_vs_python_ingest": best / results["python_ingest"]["rows_per_s"],
    }
    print(f"ingest of {args.rows:,} rows x 3 images ({size_mb:.0f} MB) on {report['machine']}")
    print("| what | seconds | rows/s |")
    print("|---|---|---|")
    for name, value in results.items():
        print(f"| {name} | {value['seconds']:.2f} | {value['rows_per_s']:,.0f} |")
    print(f"lookbook / pandas.read_csv (parse only): {report['ratio_vs_pandas_read_csv']:.2f}x; "
          f"lookbook / Python ingest (same work): {report['ratio_vs_python_ingest']:.2f}x")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(report, f, indent=2)


if __name__ == "__main__":
    sys.exit(main())
