#!/usr/bin/env python3
"""Which image of a near-duplicate cluster the keep policy keeps (`lookbook dedup --keep`), on
planted copies of real photos: tests/bench/photo_relistings.py folders, where each planted pair
is an original photo and an edited copy (a crop, a white border, a small rotation, a downscale,
a brighter copy or a harsh re-encode, one or two of them). The catalog rows are shuffled (seeded),
so that catalog order says nothing about which is the original.

For every set it runs ingest, embed and index once (2 ranks), then dedup once per policy, and
counts, over the planted pairs whose two images end in one cluster, how often that cluster's
representative is the original: overall and by edit.

  /usr/bin/python3 tests/bench/keep_policy_bench.py --build build/release \\
      --set tune:photos:/tmp/photos_even --set report:photos:/tmp/photos_odd \\
      [--policy first --policy largest --policy in-stock --policy original] [--seed 3] [--json out.json]
"""
import argparse
import collections
import csv
import os
import random
import shutil
import tempfile

from bench_common import finish
from cascade_bench import lookbook, prepare

POLICIES = ["first", "largest", "in-stock", "original"]


def shuffled_copy(source, folder, seed):
    """`source` (a photo_relistings.py folder) with its catalog rows shuffled."""
    os.makedirs(folder)
    with open(os.path.join(source, "catalog.csv"), newline="") as f:
        reader = csv.reader(f)
        header = next(reader)
        rows = list(reader)
    random.Random(seed).shuffle(rows)
    with open(os.path.join(folder, "catalog.csv"), "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(header)
        writer.writerows(rows)
    os.symlink(os.path.join(os.path.abspath(source), "images"), os.path.join(folder, "images"))
    shutil.copyfile(os.path.join(source, "truth.csv"), os.path.join(folder, "truth.csv"))
    return folder


def keys_by_file(run):
    out = {}
    for name in os.listdir(os.path.join(run, "ingest")):
        if name.startswith("shard-"):
            with open(os.path.join(run, "ingest", name), newline="") as f:
                for row in csv.DictReader(f):
                    out[row["file"]] = row["product_id"] + "/" + row["column"]
    return out


def kept_originals(binary, s, policy, truth, keys):
    summary = lookbook(binary, ["dedup", "--run", s["run"], "--keep", policy])
    cluster, representative = {}, {}
    with open(os.path.join(s["run"], "dedup", "clusters.csv"), newline="") as f:
        for row in csv.DictReader(f):
            cluster[row["image"]] = row["cluster_id"]
            if row["is_representative"] == "1":
                representative[row["cluster_id"]] = row["image"]
    by_edit = collections.defaultdict(lambda: [0, 0])  # edit -> [original kept, pairs clustered]
    for original, copy, edit in truth:
        a, b = keys.get(original), keys.get(copy)
        if a is None or b is None or a not in cluster or cluster.get(a) != cluster.get(b):
            continue
        for name in ("all", edit):
            by_edit[name][1] += 1
            by_edit[name][0] += representative[cluster[a]] == a
    return {"policy": policy, "clusters": summary.get("clusters"), "dedup_s": summary.get("seconds"),
            "blas_core": summary.get("blas_core"),
            "kept_original": {k: {"kept": v[0], "pairs": v[1], "rate": v[0] / v[1] if v[1] else None}
                              for k, v in sorted(by_edit.items())}}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build/release")
    parser.add_argument("--set", action="append", required=True)
    parser.add_argument("--policy", action="append")
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()
    binary = os.path.abspath(os.path.join(args.build, "jobs", "lookbook"))
    results = {"sets": [], "seed": args.seed}
    with tempfile.TemporaryDirectory(prefix="lookbook-keep-bench-", dir=os.environ.get("BENCH_TMP")) as tmp:
        for spec in args.set:
            role, kind, source = spec.split(":", 2)
            assert kind == "photos", "keep_policy_bench.py needs photo_relistings.py sets (they know the original)"
            folder = shuffled_copy(source, os.path.join(tmp, role + "-" + os.path.basename(source)), args.seed)
            s = prepare(binary, f"{role}:photos:{folder}", tmp)
            with open(os.path.join(folder, "truth.csv"), newline="") as f:
                truth = [(r["image_a"], r["image_b"], r["transform"]) for r in csv.DictReader(f)]
            keys = keys_by_file(s["run"])
            rows = [kept_originals(binary, s, p, truth, keys) for p in (args.policy or POLICIES)]
            for row in rows:
                k = row["kept_original"].get("all", {"kept": 0, "pairs": 0, "rate": None})
                print(f"{s['name']:40s} {row['policy']:9s}: original kept in {k['kept']} of {k['pairs']} clustered "
                      f"planted pairs ({k['rate'] if k['rate'] is None else round(k['rate'], 3)})", flush=True)
            results["sets"].append({"name": s["name"], "role": role, "source": source, "rows": rows})
    finish(results, args.json)


if __name__ == "__main__":
    main()
