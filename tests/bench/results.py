#!/usr/bin/env python3
"""The benchmark results: tests/bench/results.json is the one record, and the tables in
docs/performance.md and the README's headline figures are generated from it, so the three
cannot disagree.

  results.py collect RAW_DIR   reads the per-benchmark JSON files of one tests/bench/run.sh run
                               and writes tests/bench/results.json: one line per measurement
                               with lookbook's figure, the peer's figure from the same run,
                               the ratio, the target, the machine and the BLAS kernel
  results.py render            rewrites the generated tables in docs/performance.md and README.md
  results.py check             exit 1 when those tables differ from what render would write
"""
import json
import os
import sys


GARMENT_BAR = 0.7  # lookbook embed --garment-min-score's default (src/garments/garments.h)


def load(folder, name):
    path = os.path.join(folder, name + ".json")
    if not os.path.exists(path):
        return None
    with open(path) as f:
        return json.load(f)


def rows(folder):
    out = []

    def add(bench, what, ours, peer, ratio, target, data, blas=None):
        out.append({"bench": bench, "what": what, "lookbook": ours, "peer": peer,
                    "ratio": None if ratio is None else round(ratio, 3), "target": target,
                    "machine": data.get("machine", "?"),
                    "blas": blas or data.get("blas_core") or data.get("openblas_coretype_env") or "?"})

    if d := load(folder, "ingest"):
        r = d["results"]
        add("ingest", f"ingest of {d['rows']:,} rows, 16 io threads (rows/s)", f"{r['lookbook_io16']['rows_per_s']:,.0f}",
            f"Python ingest doing the same checks {r['python_ingest']['rows_per_s']:,.0f}",
            r["lookbook_io16"]["rows_per_s"] / r["python_ingest"]["rows_per_s"], "", d, "not used")
        add("ingest", "ingest vs parsing alone (rows/s)", f"{r['lookbook_io16']['rows_per_s']:,.0f}",
            f"pandas.read_csv {r['pandas_read_csv']['rows_per_s']:,.0f}",
            r["lookbook_io16"]["rows_per_s"] / r["pandas_read_csv"]["rows_per_s"], "", d, "not used")
    if d := load(folder, "embed"):
        x = d["decode"]
        add("embed", "decode + preprocess, 1000x1333 JPEG at 1/4, 1 core (img/s)", f"{x['lookbook_decode_preprocess_per_s']:.1f}",
            f"tjbench {x['tjbench_fps']:.1f}", x["ratio_vs_tjbench"], ">= 0.8", d)
        for i in d["inference"]:
            how = "side by side on one core each" if i.get("method", "").startswith("side by side") else "paired rounds"
            spread = f", rounds {i['ratio_min']:.2f}..{i['ratio_max']:.2f}" if "ratio_min" in i else ""
            add("embed", f"ViT-B/32 inference, batch {i['batch']}, {i['threads']} thread(s) (img/s; median of {how}{spread})",
                f"{i['lookbook_per_s']:.1f}", f"Python PyTorch, same TorchScript {i['pytorch_per_s']:.1f}", i["ratio"], ">= 1.0", d,
                i.get("blas_core"))
        e = d["end_to_end"]
        spread = f"; median of paired rounds, {min(e['speedup_rounds']):.2f}..{max(e['speedup_rounds']):.2f}" if "speedup_rounds" in e else ""
        add("embed", f"embed stage, {e['images']} images: 2 ranks vs 1 (s{spread})", f"{e['two_ranks_two_cores_s']:.1f}",
            f"1 rank {e['one_rank_one_core_s']:.1f}", e["speedup_2_vs_1"], ">= 1.8", d, e.get("blas_core"))
    if d := load(folder, "garments"):
        for s in d["segmenter"]:
            spread = f"; side by side, rounds {s['ratio_min']:.2f}..{s['ratio_max']:.2f}" if "ratio_min" in s else ""
            add("garments", f"segmenter {s['model']} {s['input']} px, batch {s['batch']} (img/s{spread})", f"{s['lookbook_per_s']:.3f}",
                f"Python PyTorch, same TorchScript {s['pytorch_per_s']:.3f}", s["ratio"], "", d, s.get("blas_core"))
    if d := load(folder, "findimagedupes"):
        ours, theirs = d["lookbook"], d["findimagedupes"]
        add("dedup", f"near-duplicates on the demo catalog ({d['images']} images): F1", f"{ours['f1']:.3f} (P {ours['precision']:.3f}, R {ours['recall']:.3f})",
            f"findimagedupes at its best threshold ({theirs.get('threshold', '90%')}) {theirs['f1']:.3f} (P {theirs['precision']:.3f}, R {theirs['recall']:.3f})", d["f1_ratio"], "", d)
        add("dedup", "near-duplicates on the demo catalog: images/s, files to pairs", f"{ours['images_per_s']:.0f}",
            f"findimagedupes {theirs['images_per_s']:.0f}", d["speed_ratio"], "", d)
    if d := load(folder, "dedup"):
        full = d["full"]
        one, two = full["ranks_1"], full["ranks_2"]
        add("dedup", f"index + dedup of {full['vectors']:,} vectors, 1 rank (s)", f"{one['total_s']:.0f} ({one['factory']}, planted recall {one['planted_recall_vs_exact']:.4f})",
            f"exact FAISS self-join, {d['subset']['vectors']:,}-vector subset x{(full['vectors'] / d['subset']['vectors']) ** 2:.0f}: {full['exact_join_estimate_s']:.0f}",
            full["speedup_vs_exact_1_rank"], ">= 10", d, one.get("blas_core"))
        add("dedup", f"index + dedup of {full['vectors']:,} vectors: 2 ranks vs 1 (s)", f"{two['total_s']:.0f}", f"1 rank {one['total_s']:.0f}",
            full["speedup_2_vs_1_ranks"], "", d, two.get("blas_core"))
        same = "dedup.h5 byte-identical" if full.get("dedup_h5_identical_1_vs_2_ranks") else "dedup.h5 NOT identical"
        add("dedup", f"dedup peak memory per rank at that size, 2 ranks vs 1 (GB; {same})",
            f"{two['dedup_peak_rss_gb_per_rank']:.2f}", f"1 rank {one['dedup_peak_rss_gb_per_rank']:.2f}",
            two["dedup_peak_rss_gb_per_rank"] / one["dedup_peak_rss_gb_per_rank"], "<= 0.6", d, two.get("blas_core"))
    if (d := load(folder, "dedup")) and "verify" in d:
        v = d["verify"]
        add("dedup", f"dedup of {v['vectors']:,} vectors with verification on (synthetic align thumbnails), {v['ranks']} ranks (s; "
            f"{v['candidates']:,} candidates, planted recall {v['planted_recall']:.4f})", f"{v['dedup_s']:.0f}",
            f"verification {v['verify_s']:.1f} s = {v['verify_ms_per_pair_per_core']:.2f} ms a pair a core", None, "", d, v.get("blas_core"))
    if d := load(folder, "nightly"):
        inc, ful = d["images_night2_incremental"], d["images_night2_full"]
        same = "tables and embed shards byte-identical" if d["identical"] else "NOT identical"
        rounds = ", ".join(f"{r:.3f}" for r in d["ratio_overall_rounds"])
        add("nightly", f"night 2 of a {d['items']:,}-product demo catalog (2% new, 1% changed, 1% removed, 5% stock): "
            f"whole run, 2 ranks (s; median of {d['rounds']} paired rounds {rounds}; {same})",
            f"incremental {d['incremental_wall_s']:.1f}", f"full night-2 run {d['full_wall_s']:.1f}", d["ratio_overall"],
            "<= 0.15", d, d.get("blas_core"))
        for stage, target in (("embed", "<= 0.10"), ("dedup", ""), ("report", ""), ("recs", "")):
            s = d["stages"][stage]
            extra = ""
            if stage == "embed":
                extra = f"; images decoded and inferred {inc['images_decoded']:,} vs {ful['images_decoded']:,}, read {inc['images_read']:,} vs {ful['images_read']:,}"
            if stage == "dedup":
                x, y = d["dedup_incremental"], d["dedup_full"]
                extra = f"; images searched {x['queries']:,} vs {y['queries']:,}, pairs verified {x['pairs_verified']:,} vs {y['pairs_verified']:,}"
            add("nightly", f"night 2: {stage} stage (s{extra})", f"incremental {s['incremental_s']:.2f}",
                f"full {s['full_s']:.2f}", s["ratio"], target, d, d.get("blas_core"))
    if d := load(folder, "cascade"):
        for name, r in d["sets"].items():
            on, base = r["gates_on"], r["baseline"]
            add("dedup", f"verification of {r['candidates']:,} candidates, {name} (ms per pair per core; F1 "
                f"{on['f1']:.4f} vs {base['f1']:.4f}; stored thumbnails, cascade, vs decoding both files again)",
                f"{on['ms_per_pair_core']:.2f}", f"before {base['ms_per_pair_core']:.2f}",
                on["ms_per_pair_core"] / base["ms_per_pair_core"], "<= 0.5 ms", d)
    if d := load(folder, "ecc"):
        for name, r in d["sets"].items():
            add("dedup", f"verification of {r['candidates']:,} candidates, {name} (ms per pair per core; F1 "
                f"{r['f1_new']:.4f} vs {r['f1_old']:.4f}; the ECC of src/image/ecc.h vs OpenCV's, same run)",
                f"{r['ms_per_pair_core_new']:.3f}", f"OpenCV's ECC {r['ms_per_pair_core_old']:.3f}",
                r["ratio_ms_per_pair"], "<= 0.5 ms", d)
    if d := load(folder, "dedup_scale"):
        sizes = list(d["sizes"].values())
        for r in sizes[1:]:
            add("dedup", f"dedup seconds per image, {r['items']:,} vs {sizes[0]['items']:,} demo items (candidates per "
                f"image {r['candidates_per_image']:.1f} vs {sizes[0]['candidates_per_image']:.1f})",
                f"{1000 * r['dedup_s_per_image']:.2f} ms", f"{1000 * sizes[0]['dedup_s_per_image']:.2f} ms",
                r["ratio_dedup_s_per_image"], "<= 1.5" if r["items"] == 10000 else "", d)
            # The time ratio round by round where the run paired the rounds (both sizes back to back).
            paired = "ratio_report_s_paired" in r
            time_ratio = r["ratio_report_s_paired"] if paired else r["ratio_report_s"]
            add("report", f"report seconds and MB, {r['items']:,} vs {sizes[0]['items']:,} demo items"
                + (" (time: median ratio of paired rounds)" if paired else ""),
                f"{r['report_s']:.2f} s, {r['report_bytes'] / 1e6:.1f} MB",
                f"{sizes[0]['report_s']:.2f} s, {sizes[0]['report_bytes'] / 1e6:.1f} MB",
                max(time_ratio, r["ratio_report_bytes"]), "<= 1.5" if r["items"] == 10000 else "", d)
            if r["items"] == 10000:
                add("dedup", f"verification at {r['items']:,} demo items (ms per candidate pair per core; "
                    f"{sizes[0]['items']:,} items: {sizes[0]['ms_per_pair_core']:.3f})",
                    f"{r['ms_per_pair_core']:.3f}", "target 0.5", r["ms_per_pair_core"] / 0.5, "<= 0.5 ms", d)
    if d := load(folder, "relisting"):
        for name, r in d["sets"].items():
            if not name.startswith("report-photos"):
                continue
            add("dedup", f"near-duplicates on real-photo relistings, {name} ({r['truth_pairs']:.0f} copies; F1, "
                f"P {r['precision']:.3f}, R {r['recall']:.3f}; look-alikes flagged {r['negatives_flagged']:.0f} of "
                f"{r['negative_pairs']:.0f}; verification {r['verify_ms_per_image_core']:.2f} ms per image)",
                f"{r['f1']:.4f}", "target 0.95", r["f1"] / 0.95, ">= 0.95, 0 look-alikes", d,
                r.get("blas_core"))
    if d := load(folder, "garment_bar"):
        for entry in d["sets"]:
            if entry["role"] != "report" or not entry["name"].endswith("-random"):
                continue
            r = next(r for r in entry["rows"] if r["bar"] == GARMENT_BAR)
            add("garments", f"garments on randomized outfit photos, {entry['name']} ({r['outfit_photos']:.0f} photos, bar "
                f"{GARMENT_BAR}; slot recall, P {r['slot_precision']:.3f}; outfit recall@5 {r['outfit_recall_at_k']:.3f} "
                f"of {r['outfit_items']:.0f} in-stock items)", f"{r['slot_recall']:.3f}", "target 0.9",
                min(r["slot_recall"], r["slot_precision"]) / 0.9, "P, R >= 0.9; outfit recall@5 >= 0.8", d,
                r.get("blas_core"))
    if d := load(folder, "query"):
        add("recs", f"lookbook query, {d['many_photos']['photos']} outfit photos in one call (s per photo)", f"{d['many_photos']['per_photo_s']:.3f}",
            "target 1.0", d["per_photo_vs_target"], "<= 1.0", d)
    if d := load(folder, "zero_shot"):
        x = d["described"]
        add("recs", f"zero-shot categories of {d['images']:,} real photos ({d['half']} half), classes described in words "
            f"(accuracy; folder names alone {d['folder_names_only']['accuracy']:.3f})", f"{x['accuracy']:.3f}",
            f"always the largest class ({d['largest_class']['class']}) {d['largest_class']['share']:.3f}",
            x["accuracy"] / d["largest_class"]["share"], "accuracy >= 0.6", d)
    if d := load(folder, "precision"):
        for name in ("demo_clip", "vit_b32"):
            if name in d:
                x = d[name]
                add("precision", f"{name} inference bf16 vs fp32 (s), drift mean cosine {x['mean_cosine']:.5f} (min {x['min_cosine']:.4f})",
                    f"bf16 {x['bf16']['inference_s']:.2f}", f"fp32 {x['fp32']['inference_s']:.2f}", x["bf16_speedup"], "mean cosine >= 0.999", d)
    return out


ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
RESULTS = os.path.join(ROOT, "tests", "bench", "results.json")

# The README's headline rows: (bench, the start of `what`).
HEADLINE = [("ingest", "ingest of"), ("embed", "decode + preprocess"), ("embed", "ViT-B/32 inference, batch 32, 2 thread"),
            ("dedup", "near-duplicates on the demo catalog ("), ("dedup", "index + dedup of 1,000,000 vectors, 1 rank"),
            ("recs", "lookbook query")]


def ratio_text(r):
    return "" if r["ratio"] is None else f"{r['ratio']:.3g}"


def full_table(table):
    lines = ["| bench | what | lookbook | peer (same run) | ratio | target | machine | BLAS kernel |", "|---|---|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r['bench']} | {r['what']} | {r['lookbook']} | {r['peer']} | {ratio_text(r)} | {r['target']} | {r['machine']} | {r['blas']} |")
    return lines


def headline_table(table):
    lines = ["| what | lookbook | peer (same run) | ratio |", "|---|---|---|---|"]
    for bench, start in HEADLINE:
        for r in table:
            if r["bench"] == bench and r["what"].startswith(start):
                lines.append(f"| {r['what']} | {r['lookbook']} | {r['peer']} | {ratio_text(r)} |")
                break
    return lines


def replace_between(text, marker, lines, path):
    begin = text.find(f"<!-- {marker}:begin")
    end = text.find(f"<!-- {marker}:end -->")
    if begin < 0 or end < 0:
        raise SystemExit(f"{path}: no <!-- {marker}:begin ... --> / <!-- {marker}:end --> markers")
    begin = text.index("\n", begin) + 1
    return text[:begin] + "\n".join(lines) + "\n" + text[end:]


def rendered():
    with open(RESULTS) as f:
        table = json.load(f)
    out = {}
    for name, marker, lines in (("docs/performance.md", "results", full_table(table)), ("README.md", "headline", headline_table(table))):
        path = os.path.join(ROOT, name)
        with open(path) as f:
            text = f.read()
        out[path] = (text, replace_between(text, marker, lines, name))
    return out


def main():
    command = sys.argv[1] if len(sys.argv) > 1 else ""
    if command == "collect" and len(sys.argv) == 3:
        with open(RESULTS, "w") as f:
            json.dump(rows(sys.argv[2]), f, indent=2)
            f.write("\n")
    elif command == "render":
        for path, (_, new) in rendered().items():
            with open(path, "w") as f:
                f.write(new)
    elif command == "check":
        stale = [os.path.relpath(path, ROOT) for path, (old, new) in rendered().items() if old != new]
        if stale:
            print("generated tables differ from tests/bench/results.json: " + ", ".join(stale) +
                  " (run tests/bench/results.py render)", file=sys.stderr)
            sys.exit(1)
    else:
        print(__doc__, file=sys.stderr)
        sys.exit(2)


if __name__ == "__main__":
    main()
