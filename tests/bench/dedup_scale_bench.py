#!/usr/bin/env python3
"""How dedup and the report grow with the catalog: demo catalogs of growing size (Fashion-MNIST
train split, so that 40,000 items and more are possible), each through ingest, embed, index
and dedup (2 ranks, default options), then the report of every size in alternating rounds, in
one run. Per size: images, candidates, candidates per image, how the verification cascade
decided them, verification milliseconds per candidate pair per core, dedup seconds and seconds
per image, peak RSS, report seconds (the median of --report-rounds timings, each into a fresh
report folder) and bytes.
Ratios are against the smallest size of the same run. The capacity table in docs/operations.md
is extrapolated from these curves.

  /usr/bin/python3 tests/bench/dedup_scale_bench.py --build build/release [--sizes 2500,10000,40000]
      [--json out.json]
"""
import argparse
import json
import os
import statistics
import subprocess
import tempfile
import time

from bench_common import MPI_ENV, finish

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def lookbook(binary, args, ranks=2):
    command = (["mpirun", "-np", str(ranks), "--oversubscribe"] if ranks > 1 else []) + [binary, *args]
    start = time.perf_counter()
    result = subprocess.run(command, capture_output=True, text=True, env=MPI_ENV)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    lines = [l for l in result.stdout.splitlines() if l.startswith("{")]
    summary = json.loads(lines[-1]) if lines else {}
    summary["wall_s"] = time.perf_counter() - start
    return summary


def folder_bytes(path):
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, files in os.walk(path) for f in files)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build/release")
    parser.add_argument("--sizes", default="2500,10000,40000")
    parser.add_argument("--report-rounds", type=int, default=5,
                        help="the report is timed this many times per size (a fresh report folder each), median")
    parser.add_argument("--json")
    args = parser.parse_args()
    binary = os.path.abspath(os.path.join(args.build, "jobs", "lookbook"))
    models = os.path.join(ROOT, "models", "demo")
    results = {"sizes": {}}
    runs = {}
    with tempfile.TemporaryDirectory(prefix="lookbook-scale-") as tmp:
        for items in [int(s) for s in args.sizes.split(",")]:
            demo, run = os.path.join(tmp, f"demo-{items}"), os.path.join(tmp, f"run-{items}")
            lookbook(binary, ["demo-catalog", "--out", demo, "--items", str(items), "--split", "train", "--seed", "5"],
                     1)
            lookbook(binary, ["ingest", "--run", run, "--catalog", f"{demo}/catalog.csv", "--images",
                              f"{demo}/images", "--shards", "8"])
            embed = lookbook(binary, ["embed", "--run", run, "--model", f"{models}/clip"])
            lookbook(binary, ["index", "--run", run])
            dedup = lookbook(binary, ["dedup", "--run", run])
            with open(os.path.join(run, "dedup", "manifest.json")) as f:
                counts = json.load(f)["counts"]
            verify = next(v["seconds"] for k, v in dedup["steps"].items() if k.startswith("verify"))
            candidates, queries = dedup["candidates"], dedup["queries"]
            row = {"items": items, "images": queries, "candidates": candidates,
                   "candidates_per_image": candidates / queries,
                   "verified_by": {k[len("verified_by_"):]: v for k, v in counts.items() if k.startswith("verified_by_")},
                   "verify_s": verify, "ms_per_pair_core": 2 * 1000 * verify / max(1, candidates),
                   "dedup_s": dedup["seconds"], "dedup_s_per_image": dedup["seconds"] / queries,
                   "dedup_peak_rss_bytes_max_rank": dedup.get("peak_rss_bytes_max_rank"),
                   "pairs": dedup["pairs"], "embed_s": embed["seconds"]}
            results["sizes"][str(items)] = row
            runs[str(items)] = run
            print(json.dumps(row), flush=True)
        # The report takes a second or less, most of it creating ~1,000 thumbnail files: a single
        # timing is mostly the machine's noise, and creating files where as many were just deleted
        # gets slower round after round (ext4 looks through its recently deleted inodes). So the
        # rounds alternate between the sizes (the order turning each round), each into a fresh
        # report folder, and the folders of earlier rounds are moved aside, deleted after the last.
        trash = os.path.join(tmp, "old-reports")
        os.makedirs(trash)
        names = list(runs)
        for round_ in range(args.report_rounds):
            for name in (names if round_ % 2 == 0 else names[::-1]):
                report_dir = os.path.join(runs[name], "report")
                if os.path.exists(report_dir):
                    os.rename(report_dir, os.path.join(trash, f"{name}-{round_}"))
                report = lookbook(binary, ["report", "--run", runs[name]], 1)
                row = results["sizes"][name]
                row.setdefault("report_rounds_s", []).append(report["seconds"])
                row["report_thumbnails"] = report.get("thumbnails")
        for name, run in runs.items():
            row = results["sizes"][name]
            row["report_s"] = statistics.median(row["report_rounds_s"])
            row["report_bytes"] = folder_bytes(os.path.join(run, "report"))
    sizes = list(results["sizes"].values())
    base = sizes[0]
    for row in sizes[1:]:
        row["ratio_dedup_s_per_image"] = row["dedup_s_per_image"] / base["dedup_s_per_image"]
        row["ratio_report_s"] = row["report_s"] / base["report_s"]
        # The same ratio round by round (each round times both sizes back to back), median.
        row["ratio_report_s_paired"] = statistics.median(
            t / b for t, b in zip(row["report_rounds_s"], base["report_rounds_s"]))
        row["ratio_report_bytes"] = row["report_bytes"] / base["report_bytes"]
        row["ratio_ms_per_pair"] = row["ms_per_pair_core"] / base["ms_per_pair_core"]
    finish(results, args.json)


if __name__ == "__main__":
    main()
