#!/usr/bin/env python3
"""Dedup at scale (the index/dedup issue), against an exact self-join in the same run.

Synthetic embeddings with the structure of real ones (tests/bench/make_synthetic_run.cpp:
unit norm, d = 512, grouped around cluster centres, planted near-duplicate pairs at cosine
0.96..0.995), written as a run whose embed stage looks published. Then:

 1. N vectors (default 1,000,000): lookbook index + dedup, with 1 rank and with 2 ranks
    (one core each): wall seconds, peak memory per rank, recall of the planted pairs. Every
    planted pair is above the rule's cosine, so an exact self-join finds all of them: the
    recall is relative to exact search.
 3. N vectors with synthetic align thumbnails (make_synthetic_run --thumbs 1): dedup with
    verification on (the default rule and cascade), 2 ranks: time, candidates verified and how
    the cascade ended them, planted recall. The thumbnails stand in for real ones: their
    candidates are the synthetic clusters', so the figure is the cost at that scale, not quality.
 2. A subset (default 50,000 vectors): lookbook dedup against Python FAISS's exact
    self-join (IndexFlatIP range search in blocks, Debian python3-faiss) on the same vectors:
    recall of every exact pair above the threshold, and time. The exact join's time at N is
    its subset time scaled by (N / n)^2 (it does n^2 dot products); the ratio to lookbook's
    index + dedup time at N is the speed-up.

  /usr/bin/python3 tests/bench/dedup_bench.py --build build/release [--vectors 1000000] [--json out.json]
      [--parts subset,full,verify]

The BLAS kernel (OPENBLAS_CORETYPE) is recorded; FAISS and the exact join both use it.
"""
import argparse
import csv
import glob
import json
import os
import shutil
import sys
import tempfile

from bench_common import MPI_ENV, finish, run, summary
import time

import h5py
import numpy as np

THRESHOLD = 0.95


def vectors_of(run_dir):
    """All embeddings in image-id order (shard << 32 | row) and their ids."""
    blocks, ids = [], []
    for name in sorted(glob.glob(os.path.join(run_dir, "embed", "shard-*.h5"))):
        shard = int(os.path.basename(name)[6:11])
        with h5py.File(name, "r") as f:
            x = f["images/embedding"][:]
        blocks.append(x)
        ids.append((shard << 32) + np.arange(len(x), dtype=np.int64))
    return np.ascontiguousarray(np.concatenate(blocks).astype(np.float32)), np.concatenate(ids)


def exact_pairs(x, ids, threshold):
    import faiss
    index = faiss.IndexFlatIP(x.shape[1])
    index.add(x)
    pairs = set()
    start = time.perf_counter()
    for begin in range(0, len(x), 4096):
        lims, _, found = index.range_search(x[begin:begin + 4096], threshold)
        for q in range(len(lims) - 1):
            a = ids[begin + q]
            for j in found[lims[q]:lims[q + 1]]:
                b = ids[j]
                if a < b:
                    pairs.add((int(a), int(b)))
    return pairs, time.perf_counter() - start


def dedup_pairs(run_dir):
    with h5py.File(os.path.join(run_dir, "dedup", "dedup.h5"), "r") as f:
        return set(zip(f["pairs/image_a"][:].tolist(), f["pairs/image_b"][:].tolist()))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build/release")
    parser.add_argument("--vectors", type=int, default=1_000_000)
    parser.add_argument("--subset", type=int, default=50_000)
    parser.add_argument("--json")
    parser.add_argument("--parts", default="subset,full,verify", help="which of subset, full, verify to run")
    args = parser.parse_args()
    parts = set(args.parts.split(","))
    build = os.path.abspath(args.build)
    lookbook = os.path.join(build, "jobs", "lookbook")
    make = os.path.join(build, "tests", "bench", "make_synthetic_run")
    env = MPI_ENV
    # Synthetic vectors have no images to verify: the cosine rule decides (--verify off).
    rule = ["--verify", "off", "--cosine", str(THRESHOLD), "--phash-cosine", str(THRESHOLD), "--candidate-floor", str(THRESHOLD)]
    results = {"threshold": THRESHOLD}

    def stages(run_dir, ranks):
        launcher = ["mpirun", "-np", str(ranks), "--oversubscribe", "--bind-to", "core"]
        out = {}
        begin = time.perf_counter()
        index = summary(run([*launcher, lookbook, "index", "--run", run_dir, "--force", "--train-sample", "65536",
                             "--log-level", "warn"], env=env).stdout)
        middle = time.perf_counter()
        dedup = summary(run([*launcher, lookbook, "dedup", "--run", run_dir, "--force", *rule, "--log-level", "warn"],
                            env=env).stdout)
        end = time.perf_counter()
        out["index_s"], out["dedup_s"], out["total_s"] = middle - begin, end - middle, end - begin
        out["factory"] = index["factory"]
        out["index_peak_rss_gb_per_rank"] = index["peak_rss_bytes_max_rank"] / 2**30
        out["dedup_peak_rss_gb_per_rank"] = dedup["peak_rss_bytes_max_rank"] / 2**30
        out["index_code_gb"] = index["code_bytes"] / 2**30
        out["pairs"] = dedup["pairs"]
        out["blas_core"] = dedup["blas_core"]
        out["score_bytes_sent"] = dedup["score_bytes_sent"]
        return out

    def manifest_counts(run_dir):
        with open(os.path.join(run_dir, "dedup", "manifest.json")) as f:
            return json.load(f)["counts"]

    def planted_pairs(run_dir):
        """The planted pairs above the threshold, as image id pairs."""
        id_of = {}
        for name in sorted(glob.glob(os.path.join(run_dir, "embed", "shard-*.h5"))):
            shard = int(os.path.basename(name)[6:11])
            with h5py.File(name, "r") as f:
                for row, path in enumerate(f["images/path"].asstr()[:]):
                    id_of[path] = (shard << 32) + row
        with open(os.path.join(run_dir, "truth_pairs.csv")) as f:
            truth = [r for r in csv.DictReader(f) if float(r["cosine"]) >= THRESHOLD]
        return {tuple(sorted((id_of[r["image_a"]], id_of[r["image_b"]]))) for r in truth}

    with tempfile.TemporaryDirectory(prefix="lookbook-dedup-bench-", dir=os.environ.get("BENCH_TMP")) as tmp:
        exact_s = None
        if "subset" in parts:
            # 2. The subset, against the exact join.
            small = os.path.join(tmp, "small")
            run([make, small, "--vectors", str(args.subset), "--planted", str(args.subset // 100), "--shards", "4"])
            x, ids = vectors_of(small)
            exact, exact_s = exact_pairs(x, ids, THRESHOLD)
            ours = stages(small, 1)
            found = dedup_pairs(small)
            results["subset"] = {"vectors": args.subset, "exact_pairs": len(exact), "exact_join_s": exact_s,
                                 "lookbook": ours, "recall_vs_exact": len(found & exact) / max(1, len(exact)),
                                 "extra_pairs": len(found - exact)}
            del x
            shutil.rmtree(small)

        planted = max(1000, args.vectors // 500)
        if "full" in parts:
            # 1. N vectors, 1 and 2 ranks.
            big = os.path.join(tmp, "big")
            run([make, big, "--vectors", str(args.vectors), "--planted", str(planted), "--shards", "16"])
            wanted = planted_pairs(big)
            results["full"] = {"vectors": args.vectors, "planted": planted, "planted_above_threshold": len(wanted)}
            for ranks in (1, 2):
                measured = stages(big, ranks)
                measured["planted_recall_vs_exact"] = len(dedup_pairs(big) & wanted) / len(wanted)
                results["full"][f"ranks_{ranks}"] = measured
                if ranks == 2:
                    with open(os.path.join(big, "dedup", "dedup.h5"), "rb") as f:
                        two_bytes = f.read()
                else:
                    with open(os.path.join(big, "dedup", "dedup.h5"), "rb") as f:
                        one_bytes = f.read()
            results["full"]["dedup_h5_identical_1_vs_2_ranks"] = one_bytes == two_bytes
            results["full"]["peak_rss_2_vs_1_ranks"] = (results["full"]["ranks_2"]["dedup_peak_rss_gb_per_rank"] /
                                                        results["full"]["ranks_1"]["dedup_peak_rss_gb_per_rank"])
            if exact_s is not None:
                scale = (args.vectors / args.subset) ** 2
                results["full"]["exact_join_estimate_s"] = exact_s * scale
                results["full"]["exact_join_scaling"] = f"subset time x (N/n)^2 = x{scale:.0f}"
                results["full"]["speedup_vs_exact_1_rank"] = exact_s * scale / results["full"]["ranks_1"]["total_s"]
            results["full"]["speedup_2_vs_1_ranks"] = results["full"]["ranks_1"]["total_s"] / results["full"]["ranks_2"]["total_s"]
            shutil.rmtree(big)

        if "verify" in parts:
            # 3. N vectors with synthetic thumbnails, verification on, 2 ranks.
            thumbs = os.path.join(tmp, "thumbs")
            run([make, thumbs, "--vectors", str(args.vectors), "--planted", str(planted), "--shards", "16",
                 "--thumbs", "1"])
            wanted = planted_pairs(thumbs)
            launcher = ["mpirun", "-np", "2", "--oversubscribe", "--bind-to", "core"]
            run([*launcher, lookbook, "index", "--run", thumbs, "--force", "--train-sample", "65536",
                 "--log-level", "warn"], env=env)
            begin = time.perf_counter()
            dedup = summary(run([*launcher, lookbook, "dedup", "--run", thumbs, "--force", "--log-level", "warn"],
                                env=env).stdout)
            seconds = time.perf_counter() - begin
            steps = dedup.get("steps", {})
            verify_s = steps.get("verify: cascade + align (slowest rank)", {}).get("seconds")
            results["verify"] = {
                "vectors": args.vectors, "ranks": 2, "dedup_s": seconds, "verify_s": verify_s,
                "candidates": dedup["candidates"], "thumbs_read": dedup["thumbs_read"], "pairs": dedup["pairs"],
                "verify_ms_per_pair_per_core": (1000 * 2 * verify_s / max(1, dedup["candidates"])) if verify_s else None,
                "planted_recall": len(dedup_pairs(thumbs) & wanted) / len(wanted),
                "dedup_peak_rss_gb_per_rank": dedup["peak_rss_bytes_max_rank"] / 2**30,
                "blas_core": dedup["blas_core"],
                "verified_by": {k: v for k, v in manifest_counts(thumbs).items() if k.startswith("verified_by_")},
            }
            shutil.rmtree(thumbs)
    finish(results, args.json)


if __name__ == "__main__":
    sys.exit(main())
