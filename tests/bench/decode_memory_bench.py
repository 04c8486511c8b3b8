#!/usr/bin/env python3
"""Peak memory of embed decoding four 9999 x 9999 PNGs (just under the default pixel cap) with two
decode threads, with the decode memory budget (--decode-memory, default 1 GiB: each such image
needs ~2 GB, so they decode one at a time) against no effective budget (1 TiB) in the same run.
Reports each run's peak RSS of the embed rank (its summary's peak), the budget's own peak and how
many decodes waited.

  /usr/bin/python3 tests/bench/decode_memory_bench.py --build build/release [--json out.json]
Needs Pillow (python3-pil) to write the images.
"""
import argparse
import os
import resource
import subprocess
import tempfile

from PIL import Image

from bench_common import MPI_ENV, finish

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("--build", default="build/release")
    parser.add_argument("--json")
    args = parser.parse_args()
    lookbook = os.path.abspath(os.path.join(args.build, "jobs", "lookbook"))
    env = dict(MPI_ENV, OPENCV_IO_MAX_IMAGE_PIXELS=str(2 ** 30))
    results = {"images": "4 x 9999 x 9999 PNG", "decode_threads": 2, "runs": {}}
    with tempfile.TemporaryDirectory(prefix="lookbook-decode-memory-") as tmp:
        images = os.path.join(tmp, "images")
        os.makedirs(images)
        for i in range(4):
            image = Image.new("RGB", (9999, 9999), (40 * i, 120, 200))
            image.paste((250, 250, 250), (1000, 1000, 8000, 8000 - 500 * i))
            image.save(os.path.join(images, f"big{i}.png"), compress_level=1)
        with open(os.path.join(tmp, "catalog.csv"), "w") as f:
            f.write("product_id,image_1,category,in_stock,title\n")
            f.writelines(f"P{i},big{i}.png,Dress,1,big {i}\n" for i in range(4))
        for name, budget in (("budget 1 GiB (default)", 1 << 30), ("no budget (1 TiB)", 1 << 40)):
            run = os.path.join(tmp, f"run-{budget}")
            subprocess.run([lookbook, "ingest", "--run", run, "--catalog", os.path.join(tmp, "catalog.csv"), "--images",
                            images, "--shards", "1", "--max-image-bytes", str(1 << 30)], check=True, env=env,
                           capture_output=True)
            # One process (no mpirun) so that its peak RSS is the rank's, measured from outside too.
            before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
            result = subprocess.run(["/usr/bin/time", "-f", "%M", lookbook, "embed", "--run", run, "--model",
                                     os.path.join(ROOT, "models", "demo", "clip"), "--decode-threads", "2",
                                     "--decode-memory", str(budget), "--max-image-bytes", str(1 << 30)],
                                    capture_output=True, text=True, env=env)
            if result.returncode != 0:
                raise SystemExit(result.stderr[-3000:])
            peak_kb = int(result.stderr.strip().splitlines()[-1])
            import json
            summary = json.loads([l for l in result.stdout.splitlines() if l.startswith("{")][-1])
            results["runs"][name] = {"peak_rss_bytes": peak_kb * 1024, "seconds": summary["seconds"],
                                     "images_ok": summary["images_ok"],
                                     "decode_memory_peak_bytes": summary["decode_memory_peak_bytes_max_rank"],
                                     "decode_waits": summary["decode_waits"]}
            print(name, results["runs"][name], flush=True)
    runs = list(results["runs"].values())
    results["peak_rss_ratio"] = runs[0]["peak_rss_bytes"] / runs[1]["peak_rss_bytes"]
    finish(results, args.json)


if __name__ == "__main__":
    main()
