"""Nightly runs (docs/operations.md#nightly-runs): dated immutable runs under a runs root, a
`latest` pointer that moves only after _SUCCESS, and nights that reuse the previous night's work.

Nights 2 and 3 each apply the scripted delta of catalog_delta.py to the demo catalog: 2% new
products, 1% of the images changed in place, 1% of the products removed, 5% of the stock flags
flipped, rows shuffled.
  * night 2 is killed mid-embed: `latest` stays on night 1, and the rerun resumes it and finishes;
  * night 3's tables (pairs, clusters, substitutes, outfits), every embed shard and dedup.h5 are
    byte-identical to a from-scratch run of the same catalog (a Flat index); it decoded and
    inferred only the new and changed images, and dedup searched and verified only them;
  * night 1's files are untouched (checksums before and after every later night);
  * night 4 (nothing changed) applies reviewer decisions (RUNS_ROOT/decisions.csv), the report
    marks them, and --keep-runs 1 removes night 2 and 3, never `latest` (night 4) and never night 1
    while a reader holds its lock.
"""
import csv
import fcntl
import glob
import hashlib
import json
import os
import shutil
import sys
import tempfile
import unittest

import lookbook_test as lt
from catalog_delta import next_night

SLOTS = ("T-shirt/top=top,Shirt=top,Pullover=top,Trouser=bottom,Dress=dress,Coat=top,Sandal=shoes,"
         "Sneaker=shoes,Ankle boot=shoes,Bag=bag")
TABLES = ["dedup/pairs.csv", "dedup/clusters.csv", "recs/substitutes.csv", "recs/outfits.csv"]


def checksums(folder):
    out = {}
    for dirpath, _, files in os.walk(folder):
        for name in files:
            path = os.path.join(dirpath, name)
            with open(path, "rb") as f:
                out[os.path.relpath(path, folder)] = hashlib.sha256(f.read()).hexdigest()
    return out


summaries = lt.summaries


read_csv = lt.read_csv


class Nightly(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="lookbook-it-nightly-")
        top = cls._tmp.name
        cls.demo = os.path.join(top, "demo")
        lt.run(["demo-catalog", "--out", cls.demo, "--items", "200", "--seed", "11"], check=0)
        catalog, images = os.path.join(cls.demo, "catalog.csv"), os.path.join(cls.demo, "images")
        shutil.copyfile(catalog, os.path.join(cls.demo, "night1.csv"))
        cls.root = os.path.join(top, "root")
        cls.config = os.path.join(top, "nightly.ini")
        models = os.path.join(lt.ARGS.source, "models", "demo")
        with open(cls.config, "w") as f:
            f.write(f"models-root = {models}\n[ingest]\ncatalog = {catalog}\nimages = {images}\n"
                    f"shards = 3\n[embed]\nmodel = {models}/clip\nsegmenter = {models}/unet\nsegment-images = image_3\n"
                    f"decode-threads = 1\n[recs]\ncategory-slots = {SLOTS}\n")

        # Night 1.
        cls.night(["--run-name", "night1"], check=0)
        cls.night1_files = checksums(cls.run_dir("night1"))

        # Night 2: killed mid-embed (after its first shard), then rerun without a name: the
        # newest unfinished run is resumed.
        next_night(os.path.join(cls.demo, "night1.csv"), images, catalog, seed=4)
        shutil.copyfile(catalog, os.path.join(cls.demo, "night2.csv"))
        cls.killed = cls.night([], env={"LOOKBOOK_FAULT": "embed.shard_published:kill:rank=0:nth=1"})
        cls.runs_after_kill = sorted(os.listdir(os.path.join(cls.root, "runs")))
        cls.latest_after_kill = os.readlink(os.path.join(cls.root, "latest"))
        cls.night1_after_kill = checksums(cls.run_dir("night1"))
        night2 = cls.night([], check=0)
        cls.night2_name = os.path.basename(summaries(night2)["run"]["run"])
        cls.night2_success = os.path.exists(os.path.join(cls.run_dir(cls.night2_name), "_SUCCESS"))
        cls.latest_after_night2 = os.readlink(os.path.join(cls.root, "latest"))

        # Night 3, incremental, and the same catalog from scratch in a plain run folder.
        cls.delta = next_night(os.path.join(cls.demo, "night2.csv"), images, catalog, seed=5)
        cls.night3 = cls.night(["--run-name", "night3"], check=0)
        night3 = cls.run_dir("night3")
        cls.compared = TABLES + ["dedup/dedup.h5"] + [
            os.path.relpath(p, night3) for p in sorted(glob.glob(f"{night3}/embed/shard-*.h5"))]
        cls.night3_files = {}
        for name in cls.compared:
            with open(os.path.join(night3, name), "rb") as f:
                cls.night3_files[name] = f.read()
        cls.full3 = os.path.join(top, "full3")
        cls.full = lt.run(["run", "--config", cls.config, "--run", cls.full3], mpi=True, check=0)

        # Night 4: nothing changed; reviewer decisions; --keep-runs 1 while a reader holds night 1.
        pairs = read_csv(os.path.join(night3, "dedup", "pairs.csv"))
        cls.overridden = (pairs[0]["image_a"], pairs[0]["image_b"])
        clustered = {row["image"] for row in read_csv(os.path.join(night3, "dedup", "clusters.csv"))}
        keys = [f"{row['product_id']}/{row['column']}"
                for row in read_csv(os.path.join(night3, "ingest", "shard-00000.csv"))]
        lonely = [key for key in keys if key not in clustered]
        cls.forced = (lonely[0], lonely[1])
        with open(os.path.join(cls.root, "decisions.csv"), "w") as f:
            f.write("image_a,image_b,decision,who,when\n"
                    f"{cls.overridden[0]},{cls.overridden[1]},not_duplicate,ana,2026-11-29\n"
                    f"{cls.forced[0]},{cls.forced[1]},duplicate,ben,2026-11-29\n"
                    f"P404404/image_1,{cls.forced[1]},duplicate,ben,2026-11-29\n"
                    f"{cls.forced[0]},{cls.forced[1]},perhaps,ben,2026-11-30\n")
        with open(os.path.join(cls.run_dir("night1"), ".lock"), "a") as lock:
            fcntl.flock(lock, fcntl.LOCK_SH)  # a reader still on night 1
            cls.night4 = cls.night(["--run-name", "night4", "--keep-runs", "1"], check=0)
        cls.runs_after_night4 = sorted(os.listdir(os.path.join(cls.root, "runs")))
        cls.night1_after_night4 = checksums(cls.run_dir("night1"))

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    @classmethod
    def night(cls, extra, check=None, env=None):
        return lt.run(["run", "--config", cls.config, "--runs-root", cls.root, *extra], mpi=True, check=check,
                      env=env)

    @classmethod
    def run_dir(cls, name):
        return os.path.join(cls.root, "runs", name)

    def test_killed_night_leaves_latest_on_night_1(self):
        self.assertNotEqual(self.killed.returncode, 0, self.killed.stdout[-2000:])
        self.assertEqual(self.latest_after_kill, os.path.join("runs", "night1"))
        self.assertEqual(len(self.runs_after_kill), 2, self.runs_after_kill)  # night1 and the killed night
        unfinished = [name for name in self.runs_after_kill if name != "night1"][0]
        self.assertEqual(unfinished, self.night2_name, "the rerun resumes the unfinished night")
        self.assertTrue(self.night2_success)
        self.assertEqual(self.latest_after_night2, os.path.join("runs", self.night2_name), "a relative link")

    def test_night_1_is_untouched(self):
        self.assertEqual(self.night1_after_kill, self.night1_files)
        self.assertEqual(self.night1_after_night4, self.night1_files)

    def test_incremental_tables_equal_a_full_run(self):
        self.assertEqual(len(glob.glob(f"{self.full3}/embed/shard-*.h5")), 3)
        for name in self.compared:
            with open(os.path.join(self.full3, name), "rb") as f:
                self.assertTrue(self.night3_files[name] == f.read(), f"{name} differs from the full night-3 run")
        self.assertGreater(len(read_csv(os.path.join(self.full3, "dedup", "pairs.csv"))), 10, "the demo has duplicates")

    def test_night_costs_what_changed(self):
        embed, dedup = summaries(self.night3)["embed"], summaries(self.night3)["dedup"]
        full_embed, full_dedup = summaries(self.full)["embed"], summaries(self.full)["dedup"]
        changed = self.delta["changed_images"] + self.delta["added"]  # a new product has 1 or 2 images
        self.assertEqual(full_embed["images_decoded"], full_embed["images_ok"])
        self.assertGreaterEqual(embed["images_decoded"], self.delta["changed_images"] + self.delta["added_mirrored"])
        self.assertLessEqual(embed["images_decoded"], 3 * changed, embed)
        self.assertEqual(embed["images_copied"] + embed["images_decoded"], embed["images_ok"])
        self.assertTrue(dedup["night"].startswith("incremental from night2") or
                        dedup["night"].startswith(f"incremental from {self.night2_name}"), dedup["night"])
        self.assertLess(dedup["queries"], full_dedup["queries"] / 5)
        self.assertGreater(dedup["pairs_reused"], dedup["pairs_verified"])
        self.assertEqual(dedup["pairs"], full_dedup["pairs"])
        self.assertEqual(summaries(self.night3)["run"]["reused_from"], self.run_dir(self.night2_name))

    def test_reused_thumbnails_are_links_to_the_earlier_nights_files(self):
        # Each night's report links the thumbnails of unchanged pictures to the previous night's
        # files (no new inode); after nights 2 and 3 are removed, night 4's still share night 1's.
        night1, night4 = (os.path.join(self.run_dir(n), "report", "thumbs") for n in ("night1", "night4"))
        names = sorted(os.listdir(night4))
        shared = [n for n in names if os.path.exists(os.path.join(night1, n))
                  and os.stat(os.path.join(night1, n)).st_ino == os.stat(os.path.join(night4, n)).st_ino]
        self.assertGreater(len(names), 50)
        self.assertGreater(len(shared), len(names) // 2, f"{len(shared)} of {len(names)} thumbnails linked")
        # Night 1's files did not change under the later nights (test_night_1_is_untouched), and
        # night 4 verifies.
        lt.run(["verify", self.run_dir("night4")], check=0)

    def test_night_4_decisions_and_retention(self):
        result = self.night4
        night4 = self.run_dir("night4")
        self.assertEqual(self.runs_after_night4, ["night1", "night4"],
                         "nights 2 and 3 removed; night 1 kept while its lock is held")
        self.assertEqual(os.readlink(os.path.join(self.root, "latest")), os.path.join("runs", "night4"))
        dedup = summaries(result)["dedup"]
        self.assertEqual(dedup["queries"], 0, "nothing changed: nothing searched")
        self.assertEqual(dedup["pairs_verified"], 0)
        self.assertEqual(summaries(result)["embed"]["images_decoded"], 0)

        rows = {(r["image_a"], r["image_b"]): r for r in read_csv(os.path.join(night4, "dedup", "pairs.csv"))}
        self.assertNotIn(self.overridden, rows)
        reviewer = [r for r in rows.values() if r["decided_by"] == "reviewer"]
        self.assertEqual(len(reviewer), 1, reviewer)
        self.assertEqual({reviewer[0]["image_a"], reviewer[0]["image_b"]}, set(self.forced))
        cluster_of = {r["image"]: r["cluster_id"] for r in read_csv(os.path.join(night4, "dedup", "clusters.csv"))}
        self.assertEqual(cluster_of[self.forced[0]], cluster_of[self.forced[1]], "a reviewer's duplicate is clustered")
        status = [r["status"] for r in read_csv(os.path.join(night4, "dedup", "decisions.csv"))]
        self.assertEqual(status, ["overrides_rule", "overrides_rule", "unmatched", "rejected"])
        with open(os.path.join(night4, "report", "decisions-1.html"), encoding="utf-8") as f:
            page = f.read()
        self.assertEqual(page.count('class="decision overrides_rule"'), 2)
        self.assertEqual(page.count('class="decision unmatched"'), 1)
        self.assertIn("P404404/image_1 is not an ok image of this run", page)
        marked = ""
        for path in glob.glob(os.path.join(night4, "report", "clusters-*.html")):
            with open(path, encoding="utf-8") as f:
                marked += f.read()
        self.assertEqual(marked.count('class="decided-by-reviewer"'), 1)


if __name__ == "__main__":
    sys.argv = lt.parse_args()
    unittest.main()
