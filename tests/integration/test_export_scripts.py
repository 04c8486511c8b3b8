"""The export scripts' bundles load in lookbook: models/export_clip.py and export_unet.py
with their plain-PyTorch stand-ins (Debian's python3-torch; no model is downloaded) and a
small CLIP merges file made by make_test_bundle, then embed-text, embed and eval model on the
results."""
import json
import os
import subprocess

import numpy as np

import lookbook_test as lt


class ExportScripts(lt.TempDirTest):
    def export(self, script, *args):
        subprocess.run(["/usr/bin/python3", os.path.join(lt.ARGS.source, "models", script), *args],
                       check=True, capture_output=True)

    def test_exported_clip_bundle_embeds_texts_and_images(self):
        # A small merges file made here: the test must not need CLIP's own data (a user's clone has none).
        vocab = self.path("bpe_test_merges.txt")
        subprocess.run([lt.ARGS.make_bundle, "--clip-merges", vocab], check=True)
        bundle = self.path("clip")
        self.export("export_clip.py", "--source", "stand-in", "--out", bundle, "--vocab", vocab)
        with open(os.path.join(bundle, "bundle.json")) as f:
            manifest = json.load(f)
        self.assertEqual(manifest["text"]["tokenizer"], "clip_bpe")
        result = lt.run(["embed-text", "--model", bundle, "--text", "a red dress", "--text", "caf\u00e9"], check=0)
        rows = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertEqual(len(rows), 2)
        self.assertEqual(len(rows[0]["embedding"]), 64)
        self.assertAlmostEqual(float(np.linalg.norm(rows[0]["embedding"])), 1.0, places=4)
        lt.run(["demo-catalog", "--out", self.path("demo"), "--items", "20"], check=0)
        run = self.path("run")
        lt.run(["ingest", "--catalog", self.path("demo", "catalog.csv"), "--images", self.path("demo", "images"),
                "--run", run, "--shards", "2"], check=0)
        stats = lt.summary(lt.run(["embed", "--run", run, "--model", bundle], check=0))
        self.assertEqual(stats["images_ok"], stats["images_in"])

    def test_exported_segmenter_bundle_loads_and_evaluates(self):
        bundle = self.path("unet")
        self.export("export_unet.py", "--source", "stand-in", "--out", bundle)
        metrics = json.loads(lt.run(["eval", "model", "--model", bundle, "--items", "60"], check=0).stdout.splitlines()[-1])
        self.assertIn("mean_iou", metrics)
        self.assertGreater(metrics["outfit_photos"], 0)


if __name__ == "__main__":
    lt.main()
