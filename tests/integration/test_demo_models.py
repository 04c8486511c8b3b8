"""The committed demo bundles load, reach the models issue's targets on the demo's test split
when `lookbook eval model` recomputes them from the committed files, and match the committed
metrics.json."""
import json
import os
import unittest

import lookbook_test as lt


class DemoUnet(unittest.TestCase):
    def test_eval_model_recomputes_the_committed_iou(self):
        bundle = os.path.join(lt.ARGS.source, "models", "demo", "unet")
        metrics = json.loads(lt.run(["eval", "model", "--model", bundle], check=0).stdout.splitlines()[-1])
        self.assertGreaterEqual(metrics["mean_iou"], 0.85)
        with open(os.path.join(bundle, "metrics.json")) as f:
            committed = json.load(f)
        self.assertAlmostEqual(metrics["mean_iou"], committed["mean_iou"], delta=0.01)


class DemoClip(unittest.TestCase):
    def test_eval_model_recomputes_the_committed_metrics(self):
        bundle = os.path.join(lt.ARGS.source, "models", "demo", "clip")
        metrics = json.loads(lt.run(["eval", "model", "--model", bundle], check=0).stdout.splitlines()[-1])
        self.assertGreaterEqual(metrics["zero_shot_accuracy"], 0.85)
        self.assertGreaterEqual(metrics["near_duplicate_auc"], 0.99)
        self.assertGreaterEqual(metrics["text_to_image_recall_at_10"], 0.9)
        with open(os.path.join(bundle, "metrics.json")) as f:
            committed = json.load(f)
        for name in ["zero_shot_accuracy", "near_duplicate_auc", "text_to_image_recall_at_10",
                     "class_prompt_precision_at_10", "near_duplicate_threshold_p99"]:
            # The BLAS kernel may differ between machines: allow rounding-level drift.
            self.assertAlmostEqual(metrics[name], committed[name], delta=0.01, msg=name)

    def test_bundle_size_budget(self):
        total = 0
        for folder, _, files in os.walk(os.path.join(lt.ARGS.source, "models", "demo")):
            total += sum(os.path.getsize(os.path.join(folder, f)) for f in files)
        self.assertLess(total, 25 * 1024 * 1024)


if __name__ == "__main__":
    lt.main()
