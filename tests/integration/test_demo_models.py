"""The committed demo bundles load and, when `lookbook eval model` recomputes their metrics on
the demo's test split from the committed files, give the figures pinned below. The pins are
written here by hand, not read from the bundle's metrics.json (which the same code writes), so
a change of the model, the demo catalog or the evaluation that moves a figure fails until the
pin is deliberately updated; metrics.json must agree with the pins too."""
import json
import os
import unittest

import lookbook_test as lt

# Pinned on 2026-11-30 (models/demo as committed; docs/performance.md#the-demo-models).
# Counts must match exactly; rates to within what a different BLAS kernel may move them.
PINNED = {
    # Retrained 2026-11-30 on Fashion-MNIST renders and the even half of the real photos (3000 steps).
    "clip": {
        "images": 447, "near_duplicate_pairs": 94, "same_class_negative_pairs": 7927, "text_to_image_queries": 143,
        "zero_shot_accuracy": 0.8525, "near_duplicate_auc": 0.99969, "text_to_image_recall_at_10": 1.0,
        "class_prompt_precision_at_10": 0.96, "near_duplicate_threshold_p99": 0.99037,
        "colour_variant_max_cosine": 0.82615,
    },
    # Retrained 2026-11-30 on flat lays and randomized outfit photos (3000 steps), then 2000 and
    # 2000 more from those weights on 2026-12-01; random_*: the same catalog's outfits composed
    # at random (demo-catalog --outfits random).
    "unet": {
        "outfit_photos": 33, "mean_iou": 0.92344, "pixel_accuracy": 0.98439, "iou_top": 0.95236,
        "iou_bottom": 0.92857, "iou_dress": 0.95324, "iou_shoes": 0.88624, "iou_bag": 0.89681,
        "random_outfit_photos": 33, "random_mean_iou": 0.79299, "random_pixel_accuracy": 0.97256,
    },
}
RATE_TOLERANCE = 0.002


class DemoModels(unittest.TestCase):
    @staticmethod
    def committed(name):
        with open(os.path.join(lt.ARGS.source, "models", "demo", name, "metrics.json")) as f:
            return json.load(f)

    def compare(self, name, metrics, committed):
        """Both sets of figures against the pins: counts exactly, rates within the tolerance."""
        for key, pinned in PINNED[name].items():
            for source, values in (("recomputed", metrics), ("metrics.json", committed)):
                if isinstance(pinned, int):
                    self.assertEqual(values[key], pinned, f"{name} {key} ({source})")
                else:
                    self.assertAlmostEqual(values[key], pinned, delta=RATE_TOLERANCE, msg=f"{name} {key} ({source})")

    def check(self, name):
        bundle = os.path.join(lt.ARGS.source, "models", "demo", name)
        metrics = json.loads(lt.run(["eval", "model", "--model", bundle], check=0).stdout.splitlines()[-1])
        self.compare(name, metrics, self.committed(name))
        return metrics

    def test_unet_recomputes_the_pinned_figures(self):
        metrics = self.check("unet")
        self.assertGreaterEqual(metrics["mean_iou"], 0.85)
        self.assertGreaterEqual(metrics["random_mean_iou"], 0.7)

    def test_clip_recomputes_the_pinned_figures(self):
        metrics = self.check("clip")
        self.assertGreaterEqual(metrics["zero_shot_accuracy"], 0.85)
        self.assertGreaterEqual(metrics["near_duplicate_auc"], 0.99)

    def test_a_moved_figure_fails_the_pin(self):
        # The comparison the two tests above make is not a no-op: the committed figures pass it,
        # and each planted change fails it, whichever side (recomputed or metrics.json) has it.
        for name in PINNED:
            committed = self.committed(name)
            self.compare(name, committed, committed)
            for key, pinned in PINNED[name].items():
                moved = dict(committed)
                moved[key] = pinned + 1 if isinstance(pinned, int) else pinned + 2 * RATE_TOLERANCE
                for metrics, on_disk in ((moved, committed), (committed, moved)):
                    with self.assertRaises(AssertionError, msg=f"{name} {key}"):
                        self.compare(name, metrics, on_disk)
            missing = {k: v for k, v in committed.items() if k != next(iter(PINNED[name]))}
            with self.assertRaises((AssertionError, KeyError)):
                self.compare(name, missing, committed)

    def test_bundle_size_budget(self):
        total = 0
        for folder, _, files in os.walk(os.path.join(lt.ARGS.source, "models", "demo")):
            total += sum(os.path.getsize(os.path.join(folder, f)) for f in files)
        self.assertLess(total, 25 * 1024 * 1024)


if __name__ == "__main__":
    lt.main()
