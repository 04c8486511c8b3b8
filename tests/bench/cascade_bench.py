#!/usr/bin/env python3
"""The verification cascade (src/image/align.h): what the cheap gates decide, what they cost,
and that they change no answer. For every evaluation set (demo catalogs of other seeds and
splits, real-photo relisting sets made by photo_relistings.py) it runs ingest, embed and index
once (2 ranks), then dedup twice on the same run: with `--verify-gates off` (every candidate
aligned) and with the gates on. It reports per set: candidates, how many each gate decided,
verification seconds per candidate pair per core, precision / recall / F1 of both (`lookbook
eval dedup` against the set's truth), and whether both published the same pairs.

With --choose, it also prints the gate thresholds the tune sets call for: every candidate the
rule accepts with the gates off (a copy by the alignment) must pass each gate, with a margin
(brightness and hue x1.5, coarse correlation -0.15, the half-size aligned correlation of the lowest 0.5% of copies). The thresholds are constants in
src/image/align.h: choose on the tune sets, set them, rebuild, then report on the others.

  /usr/bin/python3 tests/bench/cascade_bench.py --build build/release \\
      --set tune:demo:train:2500:11 --set tune:photos:/tmp/photos_even \\
      --set report:demo:test:2500:7 --set report:photos:/tmp/photos_odd [--choose] [--json out.json]

A set is ROLE:demo:SPLIT:ITEMS:SEED or ROLE:photos:DIR (a photo_relistings.py output folder).
"""
import argparse
import csv
import json
import os
import subprocess
import tempfile

import h5py
import numpy as np

from bench_common import MPI_ENV, finish

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def lookbook(binary, args, ranks=2):
    command = (["mpirun", "-np", str(ranks), "--oversubscribe"] if ranks > 1 else []) + [binary, *args]
    result = subprocess.run(command, capture_output=True, text=True, env=MPI_ENV)
    if result.returncode != 0:
        raise SystemExit(f"{' '.join(command)} failed:\n{result.stderr[-3000:]}")
    lines = [l for l in result.stdout.splitlines() if l.startswith("{")]
    return json.loads(lines[-1]) if lines else {}


def prepare(binary, spec, tmp, tag="", model=None):
    """A set (ROLE:demo:SPLIT:ITEMS:SEED or ROLE:photos:FOLDER) ingested, embedded with `model`
    (default: the demo CLIP) and indexed: its name, role, run, truth and negatives (the demo's
    colour variants, a photo set's negatives.csv) and how many images embed took."""
    role, kind, *rest = spec.split(":")
    name = f"{role}-{kind}-" + "-".join(os.path.basename(r) for r in rest)
    folder = os.path.join(tmp, name + tag)
    model = os.path.abspath(model or os.path.join(ROOT, "models", "demo", "clip"))
    if kind == "demo":
        split, items, seed = rest
        source = os.path.join(folder, "catalog")
        lookbook(binary, ["demo-catalog", "--out", source, "--items", items, "--split", split, "--seed", seed], 1)
        catalog, images = os.path.join(source, "catalog.csv"), os.path.join(source, "images")
        truth = os.path.join(source, "truth", "duplicates.csv")
        negatives = os.path.join(source, "truth", "colour_variants.csv")
    else:
        source = rest[0]
        catalog, images, truth = (os.path.join(source, "catalog.csv"), os.path.join(source, "images"),
                                  os.path.join(source, "truth.csv"))
        negatives = os.path.join(source, "negatives.csv")
    run = os.path.join(folder, "run")
    lookbook(binary, ["ingest", "--run", run, "--catalog", catalog, "--images", images, "--shards", "4"])
    embed = lookbook(binary, ["embed", "--run", run, "--model", model])
    lookbook(binary, ["index", "--run", run])
    return {"name": name, "role": role, "kind": kind, "run": run, "truth": truth, "negatives": negatives,
            "images": embed["images_ok"]}


def dedup(binary, s, gates):
    summary = lookbook(binary, ["dedup", "--run", s["run"], "--force"] + (["--verify-gates", gates] if gates else []))
    lookbook(binary, ["eval", "dedup", "--run", s["run"], "--truth", s["truth"]], 1)
    with open(os.path.join(s["run"], "eval", "dedup.json")) as f:
        metrics = json.load(f)
    with open(os.path.join(s["run"], "dedup", "pairs.csv")) as f:
        pairs = {(r["image_a"], r["image_b"]) for r in csv.DictReader(f)}
    with h5py.File(os.path.join(s["run"], "dedup", "dedup.h5"), "r") as f:
        c = {k: f["candidates"][k][:] for k in ("aligned", "hamming", "colour_brightness", "colour_hue", "coarse",
                                                 "half_aligned", "verified_by") if k in f["candidates"]}
        rule = {k: f.attrs[k] for k in ("rule_aligned", "rule_aligned_phash", "rule_max_hamming")}
    if "verified_by" not in c:  # the baseline binary: it aligned every candidate
        c["verified_by"] = np.zeros(len(c["aligned"]), dtype=np.int8)
    verify_s = next((st["seconds"] for name, st in summary.get("steps", {}).items() if name.startswith("verify")),
                    None)
    candidates = len(c["aligned"])
    return {"summary_seconds": summary["seconds"], "verify_seconds": verify_s, "candidates": candidates,
            "gated_colour": int(np.sum(c["verified_by"] == 1)), "gated_coarse": int(np.sum(c["verified_by"] == 2)),
            "gated_half_size_alignment": int(np.sum(c["verified_by"] == 3)),
            "aligned": int(np.sum(c["verified_by"] == 0)),
            # two ranks verify in parallel: core-seconds per pair
            "ms_per_pair_core": 2 * 1000 * verify_s / candidates if verify_s and candidates else None,
            "precision": metrics.get("precision"), "recall": metrics.get("recall"), "f1": metrics.get("f1"),
            "pairs": pairs, "columns": c, "rule": rule}


def accepted(c, rule):
    return (c["aligned"] >= rule["rule_aligned"]) | ((c["aligned"] >= rule["rule_aligned_phash"]) &
                                                     (c["hamming"] <= rule["rule_max_hamming"]))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build/release")
    parser.add_argument("--set", action="append", required=True)
    parser.add_argument("--choose", action="store_true")
    parser.add_argument("--baseline", help="a lookbook binary from before the cascade (it re-reads and decodes the "
                        "image files): the same sets through its pipeline, for F1 and ms per pair in the same run")
    parser.add_argument("--json")
    parser.add_argument("--columns", help="save every set's gates-off candidate columns here (.npz)")
    args = parser.parse_args()
    saved = {}
    binary = os.path.abspath(os.path.join(args.build, "jobs", "lookbook"))
    results = {"sets": {}}
    copies = {"colour_brightness": [], "colour_hue": [], "coarse": [], "half_aligned": []}
    with tempfile.TemporaryDirectory(prefix="lookbook-cascade-") as tmp:
        for spec in args.set:
            s = prepare(binary, spec, tmp)
            off = dedup(binary, s, "off")
            on = dedup(binary, s, "on")
            ok = accepted(off["columns"], off["rule"])
            for k, v in off["columns"].items():
                saved[f"{s['name']}/{k}"] = v
            saved[f"{s['name']}/copy"] = ok
            if s["role"] == "tune":
                for k in copies:
                    copies[k] += off["columns"][k][ok].tolist()
            row = {"role": s["role"], "candidates": off["candidates"], "copies_by_alignment": int(ok.sum()),
                   "same_pairs": on["pairs"] == off["pairs"],
                   "pairs_only_gates_off": len(off["pairs"] - on["pairs"]),
                   "pairs_only_gates_on": len(on["pairs"] - off["pairs"])}
            for label, r in (("gates_off", off), ("gates_on", on)):
                row[label] = {k: v for k, v in r.items() if k not in ("pairs", "columns", "rule")}
            if ok.any():
                row["copies_max_brightness"] = float(off["columns"]["colour_brightness"][ok].max())
                row["copies_max_hue"] = float(off["columns"]["colour_hue"][ok].max())
                row["copies_min_coarse"] = float(off["columns"]["coarse"][ok].min())
                row["copies_min_half_aligned"] = float(off["columns"]["half_aligned"][ok].min())
            if args.baseline:
                base = dedup(os.path.abspath(args.baseline), prepare(os.path.abspath(args.baseline), spec, tmp, "-base"),
                             None)
                row["baseline"] = {k: v for k, v in base.items() if k not in ("pairs", "columns", "rule")}
            results["sets"][s["name"]] = row
            print(s["name"], json.dumps(row, default=str), flush=True)
    if args.choose and copies["coarse"]:
        results["chosen"] = {"max_brightness": 1.5 * max(copies["colour_brightness"]),
                             "max_hue": 1.5 * max(copies["colour_hue"]),
                             "min_coarse": min(copies["coarse"]) - 0.15,
                             "min_half_aligned": float(np.quantile(copies["half_aligned"], 0.005)),
                             "copies": len(copies["coarse"])}
        print("chosen:", json.dumps(results["chosen"]))
    if args.columns:
        np.savez_compressed(args.columns, **saved)
    finish(results, args.json)


if __name__ == "__main__":
    main()
