#!/usr/bin/env python3
"""The alignment's ECC (src/image/ecc.h) against the one it replaced (OpenCV's
findTransformECC, warpAffine and resize in src/image/align.cpp): the same dedup, on the same
run, by this build and by a binary built before the change (--old), the order alternating over
--rounds. Per set: verification seconds and ms per candidate pair per core of both (and their
ratio), F1 of both (`lookbook eval dedup` against the set's truth), whether they published the
same pairs, and how far the aligned correlations moved.

  git worktree add /tmp/old-src <revision before the change> && build it, or keep a copy of
  the binary; then
  /usr/bin/python3 tests/bench/ecc_bench.py --build build/release --old /tmp/lookbook_old \\
      --set report:demo:test:10000:7 --set report:photos:/tmp/photos_odd [--rounds 2] [--json out.json]

Sets as in cascade_bench.py (ROLE:demo:SPLIT:ITEMS:SEED or ROLE:photos:DIR).
"""
import argparse
import json
import os
import statistics
import tempfile

import numpy as np

from bench_common import finish, paired_rounds
from cascade_bench import accepted, dedup, prepare


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build/release")
    parser.add_argument("--old", required=True, help="a lookbook binary built before the change")
    parser.add_argument("--set", action="append", required=True)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--json")
    args = parser.parse_args()
    new, old = os.path.abspath(os.path.join(args.build, "jobs", "lookbook")), os.path.abspath(args.old)
    results = {"sets": {}}
    with tempfile.TemporaryDirectory(prefix="lookbook-ecc-") as tmp:
        for spec in args.set:
            s = prepare(new, spec, tmp)
            rounds = paired_rounds(lambda: dedup(new, s, None), lambda: dedup(old, s, None), args.rounds)
            ours, theirs = rounds[-1]
            moved = np.abs(ours["columns"]["aligned"] - theirs["columns"]["aligned"])
            both = (ours["columns"]["aligned"] > -1) & (theirs["columns"]["aligned"] > -1)
            verify_new = [r[0]["verify_seconds"] for r in rounds]
            verify_old = [r[1]["verify_seconds"] for r in rounds]
            row = {
                "role": s["role"], "candidates": ours["candidates"],
                "verify_s_new": verify_new, "verify_s_old": verify_old,
                "ms_per_pair_core_new": statistics.median(r[0]["ms_per_pair_core"] for r in rounds),
                "ms_per_pair_core_old": statistics.median(r[1]["ms_per_pair_core"] for r in rounds),
                "f1_new": ours["f1"], "f1_old": theirs["f1"],
                "precision_new": ours["precision"], "recall_new": ours["recall"],
                "precision_old": theirs["precision"], "recall_old": theirs["recall"],
                "same_pairs": ours["pairs"] == theirs["pairs"],
                "pairs_only_new": len(ours["pairs"] - theirs["pairs"]),
                "pairs_only_old": len(theirs["pairs"] - ours["pairs"]),
                "accepted_new": int(accepted(ours["columns"], ours["rule"]).sum()),
                "accepted_old": int(accepted(theirs["columns"], theirs["rule"]).sum()),
                "aligned_by_both": int(both.sum()),
                "aligned_moved_median": float(np.median(moved[both])) if both.any() else None,
                "aligned_moved_p99": float(np.percentile(moved[both], 99)) if both.any() else None,
                # a gate that stopped a pair in one build and not the other
                "stopped_in_one_only": int(np.sum((ours["columns"]["aligned"] > -1) !=
                                                  (theirs["columns"]["aligned"] > -1))),
            }
            row["ratio_ms_per_pair"] = row["ms_per_pair_core_new"] / row["ms_per_pair_core_old"]
            results["sets"][s["name"]] = row
            print(s["name"], json.dumps(row), flush=True)
    finish(results, args.json)


if __name__ == "__main__":
    main()
