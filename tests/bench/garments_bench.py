#!/usr/bin/env python3
"""Garment benchmarks (the garments issue), each against a peer in the same run:

 1. segmenter images/s on one core: the demo U-Net (128 px) and a U²-Net of the public
    cloth-segmentation model's size (random weights, 768 px), lookbook's Segmenter against
    Python PyTorch running the same TorchScript file, same batch and threads, and the same
    output (per-pixel class and its softmax probability);
 2. what the segmenter adds to the embed stage: the demo catalog embedded by one rank
    (one core, one decode thread) without a segmenter, with the demo U-Net on the outfit
    photos (image_3), and on every image (auto); wall seconds and the ratio to the plain run;
 3. quality: `lookbook eval garments` on the demo catalog (slot precision / recall, crop rank-1).

  /usr/bin/python3 tests/bench/garments_bench.py --build build/release [--json out.json]

The BLAS kernel is whatever OPENBLAS_CORETYPE says; it is recorded with the results.
"""
import argparse
import json
import os
import sys
import tempfile

from bench_common import MPI_ENV, finish, images_per_s_summary, run, side_by_side, summary


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build/release")
    parser.add_argument("--json")
    parser.add_argument("--u2net-seconds", type=float, default=20)
    args = parser.parse_args()
    build = os.path.abspath(args.build)
    lookbook = os.path.join(build, "jobs", "lookbook")
    bench = os.path.join(build, "tests", "bench", "inference_bench")
    here = os.path.dirname(os.path.abspath(__file__))
    source = os.path.dirname(os.path.dirname(here))
    env = MPI_ENV
    demo_unet = os.path.join(source, "models", "demo", "unet")
    results = {}
    with tempfile.TemporaryDirectory(prefix="lookbook-garments-bench-") as tmp:
        u2net = os.path.join(tmp, "u2net")
        made = json.loads(run(["/usr/bin/python3", os.path.join(here, "make_u2net_bundle.py"), u2net]).stdout)

        # 1. Segmenter throughput, one thread: side by side on the two cores over the same
        # window, cores swapped between the two rounds; the median of the per-round ratios.
        segmenters = []
        for name, bundle, batch, seconds, size in (("demo-unet", demo_unet, 8, 6, 128),
                                                   ("u2net-cloth-size", u2net, 1, args.u2net_seconds, 768)):
            pairs = side_by_side([bench, bundle, "--batch", str(batch), "--threads", "1"],
                                 ["/usr/bin/python3", os.path.join(here, "pytorch_peer.py"),
                                  os.path.join(bundle, "segmenter.pt"), "--threads", "1", "--batch", str(batch),
                                  "--size", str(size), "--segment"], 2, seconds, env)
            segmenters.append({"model": name, "input": size, "batch": batch, "threads": 1, **images_per_s_summary(pairs),
                               "method": "side by side, one core each, same window"})
        segmenters[1]["parameters"] = made["parameters"]
        results["segmenter"] = segmenters

        # 2. The embed stage with and without the segmenter.
        demo = os.path.join(tmp, "demo")
        run([lookbook, "demo-catalog", "--out", demo], env=env)
        run_dir = os.path.join(tmp, "run")
        run([lookbook, "ingest", "--catalog", os.path.join(demo, "catalog.csv"), "--images",
             os.path.join(demo, "images"), "--run", run_dir, "--shards", "4"], env=env)
        clip = os.path.join(source, "models", "demo", "clip")

        def embed(*extra):
            out = run(["mpirun", "-np", "1", "--bind-to", "core", lookbook, "embed", "--run", run_dir, "--model", clip,
                       "--threads", "1", "--decode-threads", "1", "--force", "--log-level", "warn", *extra], env=env)
            return summary(out.stdout)

        stage = {}
        for label, extra in (("plain", []),
                             ("outfit_photos", ["--segmenter", demo_unet, "--segment-images", "image_3"]),
                             ("auto_all_images", ["--segmenter", demo_unet, "--segment-images", "auto"])):
            best = None
            for _ in range(2):
                stats = embed(*extra)
                if best is None or stats["steps"]["shards (wall)"]["seconds"] < best["steps"]["shards (wall)"]["seconds"]:
                    best = stats
            stage[label] = {"wall_s": best["steps"]["shards (wall)"]["seconds"],
                            "images": best["images_in"],
                            "segmented": best.get("images_segmented", 0),
                            "garments": best.get("garments", 0),
                            "garment_s": best["steps"].get("garments (rank-seconds)", {}).get("seconds", 0.0)}
        for label in ("outfit_photos", "auto_all_images"):
            stage[label]["ratio_to_plain"] = stage[label]["wall_s"] / stage["plain"]["wall_s"]
        stage["blas_core"] = best["blas_core"]
        results["embed_stage"] = stage

        # 3. Quality on the outfit photos (the run embedded last used auto; redo image_3).
        embed("--segmenter", demo_unet, "--segment-images", "image_3")
        results["quality"] = json.loads(run([lookbook, "eval", "garments", "--run", run_dir, "--truth",
                                             os.path.join(demo, "truth")], env=env).stdout.splitlines()[-1])
    finish(results, args.json)


if __name__ == "__main__":
    sys.exit(main())
