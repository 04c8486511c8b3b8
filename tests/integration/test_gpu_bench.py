"""The GPU inference benchmark builds without the rest of lookbook: tests/bench/gpu is configured
on its own against Debian's LibTorch (CPU only here), built, and run on the demo bundles' own
TorchScript files. On this machine it must measure the CPU, say plainly that there is no CUDA
device instead of failing, and agree with itself across precisions (bf16 against fp32). On a GPU
machine tests/bench/gpu_check.sh runs the same program on CUDA (docs/performance.md)."""
import json
import os
import shutil
import subprocess
import tempfile
import unittest

import lookbook_test as lt

TORCH_DIR = "/usr/lib/x86_64-linux-gnu/cmake/Torch"


class GpuBench(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if not os.path.isdir(TORCH_DIR):
            raise unittest.SkipTest(lt.SKIP_PREFIX + f"no LibTorch CMake package at {TORCH_DIR}")
        cls.tmp = tempfile.mkdtemp(prefix="lookbook-gpu-bench-")
        source = os.path.join(lt.ARGS.source, "tests", "bench", "gpu")
        configure = subprocess.run(["cmake", "-S", source, "-B", cls.tmp, "-G", "Ninja", f"-DTorch_DIR={TORCH_DIR}",
                                    "-DCMAKE_BUILD_TYPE=Release"], capture_output=True, text=True)
        assert configure.returncode == 0, configure.stdout + configure.stderr
        cls.configure_log = configure.stdout
        build = subprocess.run(["cmake", "--build", cls.tmp], capture_output=True, text=True)
        assert build.returncode == 0, build.stdout + build.stderr
        cls.bench = os.path.join(cls.tmp, "gpu_bench")

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def run_bench(self, module, kind, size):
        result = subprocess.run([self.bench, module, "--kind", kind, "--size", str(size), "--devices", "cpu,cuda",
                                 "--precisions", "fp32,bf16", "--batches", "4", "--seconds", "0.3", "--check", "4",
                                 "--threads", "1"], capture_output=True, text=True, timeout=300)
        self.assertEqual(result.returncode, 0, result.stderr)
        return [json.loads(line) for line in result.stdout.splitlines()]

    def test_builds_with_libtorch_alone_and_measures_the_cpu(self):
        self.assertIn("LibTorch has no CUDA: CPU only", self.configure_log)  # Debian's LibTorch
        models = os.path.join(lt.ARGS.source, "models", "demo")
        for module, kind, size in ((os.path.join(models, "clip", "image_encoder.pt"), "clip", 32),
                                   (os.path.join(models, "unet", "segmenter.pt"), "segmenter", 128)):
            rows = self.run_bench(module, kind, size)
            self.assertEqual(rows[0]["torch_cuda_available"], False)
            self.assertIn({"device": "cuda", "skipped": "this LibTorch has no CUDA device"}, rows)
            speed = [r for r in rows if r.get("device") == "cpu" and "images_per_s" in r]
            self.assertEqual([(r["precision"], r["status"]) for r in speed], [("fp32", "ok"), ("bf16", "ok")])
            self.assertTrue(all(r["images_per_s"] > 0 for r in speed), speed)
            checks = [r for r in rows if "check" in r]
            self.assertEqual([c["check"] for c in checks], ["cpu bf16 vs cpu fp32"])
            self.assertGreater(checks[0]["min_cosine"], 0.95, checks)


    def test_the_prepared_gpu_check_rehearses_on_the_cpu(self):
        # tests/bench/gpu_check.sh end to end with GPU_CHECK_DEVICE=cpu (small models, short
        # windows): the build, both bundles, lookbook beside the Python peer, the cosine checks.
        try:
            subprocess.run(["/usr/bin/python3", "-c", "import torch"], check=True, capture_output=True)
        except subprocess.CalledProcessError:
            lt.cannot_run_here(self, "no PyTorch for /usr/bin/python3 (python3-torch)")
        out = os.path.join(self.tmp, "check")
        result = subprocess.run([os.path.join(lt.ARGS.source, "tests", "bench", "gpu_check.sh"), out],
                                capture_output=True, text=True, timeout=900,
                                env=dict(os.environ, GPU_CHECK_DEVICE="cpu", PYTHON="/usr/bin/python3",
                                         TORCH_DIR=TORCH_DIR))
        self.assertEqual(result.returncode, 0, result.stdout + result.stderr)
        rows = [json.loads(line) for line in open(os.path.join(out, "gpu_check.jsonl"))]
        who = {(r["model"], r["who"]) for r in rows if "who" in r}
        self.assertEqual(who, {("clip", "lookbook (LibTorch)"), ("clip", "python peer"),
                               ("segmenter", "lookbook (LibTorch)"), ("segmenter", "python peer")})
        self.assertTrue(all(r["images_per_s"] > 0 for r in rows if "who" in r), rows)
        self.assertEqual(sorted(r["model"] for r in rows if "check" in r), ["clip", "segmenter"])
        self.assertIn("min cosine", result.stdout)


if __name__ == "__main__":
    lt.main()
