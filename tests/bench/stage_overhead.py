#!/usr/bin/env python3
"""The cost of the stage machinery: the demo pipeline (ingest, embed, index, dedup, recs,
report under mpirun -np 2, as jobs/demo.sh runs it) by two lookbook binaries on the same demo
catalog, in paired rounds (one after the other, the order alternating), each into a fresh run
folder. Reports each stage's seconds (from its summary line) and the whole run's, the median
over rounds, and the ratio new / old.

  /usr/bin/python3 tests/bench/stage_overhead.py --old OLD/lookbook --new build/release/jobs/lookbook \\
      [--rounds 3] [--json out.json]
  /usr/bin/python3 tests/bench/stage_overhead.py --new build/release/jobs/lookbook [--items N] [--rounds 3] \\
      [--json out.json]

Used to check that the stage skeleton (run lock, verified inputs, staging and one-rename
publication) costs nothing measurable against the code before it. Every stage also reports the
skeleton's own seconds (its step "stage skeleton (rank 0)": the time rank 0 spent inside the
Stage calls), so the skeleton is also measured alone, as a share of each stage in the same
run; without --old only that is measured.
"""
import argparse
import json
import os
import shutil
import statistics
import subprocess
import tempfile
import time

import bench_common

STAGES = ["ingest", "embed", "index", "dedup", "recs", "report"]


def pipeline(lookbook, source, demo, run):
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1")
    config = os.path.join(source, "config", "demo.ini")
    models = os.path.join(source, "models", "demo")
    mpirun = ["mpirun", "-np", "2", "--oversubscribe"]
    steps = [
        (mpirun, ["ingest", "--config", config, "--catalog", f"{demo}/catalog.csv", "--images", f"{demo}/images"]),
        (mpirun, ["embed", "--config", config, "--model", f"{models}/clip", "--segmenter", f"{models}/unet"]),
        (mpirun, ["index", "--config", config]),
        (mpirun, ["dedup", "--config", config]),
        (mpirun, ["recs", "--config", config]),
        ([], ["report"]),
    ]
    seconds = {}
    skeleton = {}
    start = time.perf_counter()
    for (launcher, args), stage in zip(steps, STAGES):
        result = subprocess.run([*launcher, lookbook, *args, "--run", run], capture_output=True, text=True, env=env,
                                check=True)
        line = [l for l in result.stdout.splitlines() if l.startswith("{")][-1]
        summary = json.loads(line)
        seconds[stage] = summary["seconds"]
        skeleton[stage] = summary["steps"]["stage skeleton (rank 0)"]["seconds"] if "stage skeleton (rank 0)" in summary.get("steps", {}) else None
    seconds["whole (wall)"] = time.perf_counter() - start
    return seconds, skeleton


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--old", help="the binary to compare with; without it only the skeleton's share is measured")
    parser.add_argument("--new", required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--items", type=int, help="demo catalog size (default: config/demo.ini's)")
    parser.add_argument("--json")
    args = parser.parse_args()
    source = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    with tempfile.TemporaryDirectory(prefix="lookbook-overhead-") as tmp:
        demo = os.path.join(tmp, "demo")
        subprocess.run([args.new, "demo-catalog", "--config", os.path.join(source, "config", "demo.ini"), "--out", demo,
                        *(["--items", str(args.items)] if args.items else [])], check=True, capture_output=True)
        rounds = {"old": [], "new": []}
        skeletons = []
        for r in range(args.rounds):
            order = ["old", "new"] if r % 2 == 0 else ["new", "old"]
            for which in order:
                if getattr(args, which) is None:
                    continue
                run = os.path.join(tmp, f"{which}-{r}")
                seconds, skeleton = pipeline(getattr(args, which), source, demo, run)
                rounds[which].append(seconds)
                if which == "new":
                    skeletons.append(skeleton)
                shutil.rmtree(run)
    result = {"rounds": args.rounds, "items": args.items or "config/demo.ini", "stages": {}, "skeleton": {}}
    bench_common.describe_machine(result)
    print(f"{'stage':16} {'stage s':>8} {'skeleton s':>11} {'share':>7}")
    for stage in STAGES:
        whole = statistics.median(r[stage] for r in rounds["new"])
        alone = statistics.median(s[stage] for s in skeletons)
        result["skeleton"][stage] = {"stage_s": whole, "skeleton_s": alone, "share": alone / whole if whole > 0 else None,
                                     "skeleton_rounds": [s[stage] for s in skeletons]}
        print(f"{stage:16} {whole:8.3f} {alone:11.4f} {alone / whole if whole > 0 else float('nan'):7.3f}")
    if args.old is None:
        if args.json:
            with open(args.json, "w") as f:
                json.dump(result, f, indent=2)
        return
    print(f"{'stage':16} {'old s':>8} {'new s':>8} {'new/old':>8}")
    for stage in STAGES + ["whole (wall)"]:
        old = statistics.median(r[stage] for r in rounds["old"])
        new = statistics.median(r[stage] for r in rounds["new"])
        result["stages"][stage] = {"old_s": old, "new_s": new, "ratio": new / old if old > 0 else None,
                                   "old_rounds": [r[stage] for r in rounds["old"]],
                                   "new_rounds": [r[stage] for r in rounds["new"]]}
        print(f"{stage:16} {old:8.3f} {new:8.3f} {new / old if old > 0 else float('nan'):8.2f}")
    if args.json:
        with open(args.json, "w") as f:
            json.dump(result, f, indent=2)


if __name__ == "__main__":
    main()
