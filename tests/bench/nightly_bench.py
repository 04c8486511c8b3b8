#!/usr/bin/env python3
"""A second night's cost against starting over (docs/operations.md#nightly-runs).

A demo catalog of --items products (default 10,000) is run once as night 1 under a runs root.
The scripted delta of tests/integration/catalog_delta.py (2% new products, 1% of the images
changed in place, 1% of the products removed, 5% of the stock flags flipped, rows shuffled)
makes night 2's catalog, which is then run twice, in paired rounds whose order alternates:
  * incremental: `lookbook run --runs-root` (reuses night 1),
  * full: `lookbook run --run` into an empty folder (the peer, same catalog, same binary).
Both under mpirun -np 2. Reports each stage's seconds (from its summary) and the whole run's wall
time, the ratio incremental / full (targets: <= 0.15 overall, <= 0.10 for embed), the images
decoded and inferred on each night, and whether the four tables and every embed shard came out
byte-identical.

  /usr/bin/python3 tests/bench/nightly_bench.py --build build/release [--items 10000] [--rounds 3] [--json out.json]
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time

import bench_common

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
sys.path.insert(0, os.path.join(ROOT, "tests", "integration"))
from catalog_delta import next_night  # noqa: E402

STAGES = ["ingest", "embed", "index", "dedup", "recs", "report"]
TABLES = ["dedup/pairs.csv", "dedup/clusters.csv", "recs/substitutes.csv", "recs/outfits.csv"]
SLOTS = ("T-shirt/top=top,Shirt=top,Pullover=top,Trouser=bottom,Dress=dress,Coat=top,Sandal=shoes,"
         "Sneaker=shoes,Ankle boot=shoes,Bag=bag")


def night(lookbook, config, where):
    start = time.perf_counter()
    result = subprocess.run(["mpirun", "-np", "2", "--oversubscribe", lookbook, "run", "--config", config, *where],
                            capture_output=True, text=True, env=bench_common.MPI_ENV)
    wall = time.perf_counter() - start
    if result.returncode != 0:
        raise RuntimeError(f"lookbook run {where} exited {result.returncode}:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    lines = {}
    for line in result.stdout.splitlines():
        if line.startswith("{"):
            data = json.loads(line)
            lines[data["stage"]] = data
    out = {"wall_s": wall, "stages": {s: lines[s]["seconds"] for s in STAGES}, "run": lines["run"]["run"]}
    embed, dedup = lines["embed"], lines["dedup"]
    out["images"] = {k: embed.get(k, 0) for k in ("images_ok", "images_read", "images_trusted", "images_decoded",
                                                     "images_copied", "images_segmented")}
    out["dedup"] = {k: dedup.get(k) for k in ("night", "queries", "lists_carried", "candidates", "pairs_verified",
                                                "pairs_reused", "pairs")}
    out["blas_core"] = embed.get("blas_core", "?")
    return out


def same_files(a, b):
    names = TABLES + sorted(os.path.relpath(os.path.join(d, f), a) for d, _, files in os.walk(os.path.join(a, "embed"))
                            for f in files if f.startswith("shard-") and f.endswith(".h5")) + ["dedup/dedup.h5"]
    differ = []
    for name in names:
        with open(os.path.join(a, name), "rb") as x, open(os.path.join(b, name), "rb") as y:
            if x.read() != y.read():
                differ.append(name)
    return {"compared": len(names), "differ": differ}


def pairs(run):
    with open(os.path.join(run, "dedup", "pairs.csv")) as f:
        return {tuple(line.split(",")[:2]) for line in f.read().splitlines()[1:]}


def clusters(run):
    groups = {}
    with open(os.path.join(run, "dedup", "clusters.csv")) as f:
        for line in f.read().splitlines()[1:]:
            cluster, image = line.split(",")[:2]
            groups.setdefault(cluster, set()).add(image)
    return {frozenset(members) for members in groups.values()}


def dedup_agreement(lookbook, night, tmp):
    """The incremental night's dedup against a full dedup of the same run (same index, same
    quantizer): only what carrying last night's lists changed. Exact on Flat; on IVF the two
    sides of a pair are scored differently."""
    check = os.path.join(tmp, "agreement")
    shutil.copytree(night, check, symlinks=True)
    os.remove(os.path.join(check, "_SUCCESS"))
    subprocess.run(["mpirun", "-np", "2", "--oversubscribe", lookbook, "dedup", "--run", check, "--force",
                    "--log-level", "warn"], check=True, capture_output=True, env=bench_common.MPI_ENV)
    inc, ful = pairs(night), pairs(check)
    same_clusters = clusters(night) == clusters(check)
    shutil.rmtree(check)
    return {"pairs_incremental": len(inc), "pairs_full": len(ful), "pairs_both": len(inc & ful),
            "pairs_only_incremental": len(inc - ful), "pairs_only_full": len(ful - inc),
            "jaccard": len(inc & ful) / max(1, len(inc | ful)), "clusters_identical": same_clusters}


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build/release")
    parser.add_argument("--items", type=int, default=10000)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--shards", type=int, default=8)
    parser.add_argument("--factory", default="auto", help="the index factory (auto: Flat up to 50,000 images)")
    parser.add_argument("--json")
    args = parser.parse_args()
    lookbook = os.path.abspath(os.path.join(args.build, "jobs", "lookbook"))
    models = os.path.join(ROOT, "models", "demo")
    results = {"items": args.items, "rounds": args.rounds, "shards": args.shards, "ranks": 2, "factory": args.factory}
    with tempfile.TemporaryDirectory(prefix="lookbook-nightly-bench-") as tmp:
        demo = os.path.join(tmp, "demo")
        bench_common.run([lookbook, "demo-catalog", "--out", demo, "--items", str(args.items), "--seed", "21"],
                         env=bench_common.MPI_ENV)
        catalog, images = os.path.join(demo, "catalog.csv"), os.path.join(demo, "images")
        shutil.copyfile(catalog, os.path.join(demo, "night1.csv"))
        config = os.path.join(tmp, "nightly.ini")
        with open(config, "w") as f:
            f.write(f"models-root = {models}\n[ingest]\ncatalog = {catalog}\nimages = {images}\nshards = {args.shards}\n"
                    f"[embed]\nmodel = {models}/clip\nsegmenter = {models}/unet\nsegment-images = image_3\n"
                    f"decode-threads = 1\nbatch-size = 32\n[index]\nfactory = {args.factory}\n"
                    f"[recs]\ncategory-slots = {SLOTS}\n")
        root = os.path.join(tmp, "root")
        results["night1"] = night(lookbook, config, ["--runs-root", root, "--run-name", "night1"])
        results["delta"] = next_night(os.path.join(demo, "night1.csv"), images, catalog, seed=22)

        rounds = []
        for round_ in range(args.rounds):
            name = f"night2-{round_}"
            full = os.path.join(tmp, f"full-{round_}")

            def incremental():
                return night(lookbook, config, ["--runs-root", root, "--run-name", name])

            def scratch():
                return night(lookbook, config, ["--run", full])

            if round_ % 2 == 0:  # the order alternates (bench_common.paired_rounds)
                inc = incremental()
                ful = scratch()
            else:
                ful = scratch()
                inc = incremental()
            inc["identical"] = same_files(os.path.join(root, "runs", name), full)
            rounds.append({"incremental": inc, "full": ful})
            if round_ == 0:
                results["dedup_agreement"] = dedup_agreement(lookbook, os.path.join(root, "runs", name), tmp)
            # The next round's night 2 must reuse night 1 again, not this round's night 2.
            shutil.rmtree(os.path.join(root, "runs", name))
            shutil.rmtree(full)

    def median(key):
        return statistics.median(key(r) for r in rounds)

    results["rounds_detail"] = rounds
    results["incremental_wall_s"] = median(lambda r: r["incremental"]["wall_s"])
    results["full_wall_s"] = median(lambda r: r["full"]["wall_s"])
    results["ratio_overall"] = median(lambda r: r["incremental"]["wall_s"] / r["full"]["wall_s"])
    results["ratio_overall_rounds"] = [r["incremental"]["wall_s"] / r["full"]["wall_s"] for r in rounds]
    results["stages"] = {}
    for stage in STAGES:
        inc = median(lambda r: r["incremental"]["stages"][stage])
        ful = median(lambda r: r["full"]["stages"][stage])
        results["stages"][stage] = {"incremental_s": inc, "full_s": ful, "ratio": inc / ful if ful > 0 else None}
    results["images_night2_incremental"] = rounds[0]["incremental"]["images"]
    results["images_night2_full"] = rounds[0]["full"]["images"]
    results["images_night1"] = results["night1"]["images"]
    results["dedup_incremental"] = rounds[0]["incremental"]["dedup"]
    results["dedup_full"] = rounds[0]["full"]["dedup"]
    results["identical"] = all(not r["incremental"]["identical"]["differ"] for r in rounds)
    results["blas_core"] = rounds[0]["full"]["blas_core"]
    bench_common.finish(results, args.json)


if __name__ == "__main__":
    main()
