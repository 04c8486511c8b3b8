"""A run folder is trusted by content, never by file names or positions. Each case is an
operator's bad night, reproduced on the demo: after it, the pipeline either redoes exactly the
affected work or fails with a clear message; never `_SUCCESS` beside mixed outputs, never a stale
row published as valid.

  1. an image replaced in place (same path, catalog unchanged); a moved row, a stock flip and a
     title edit, which change no image
  2. the same catalog ingested again from another image root
  3. an ingest shard edited by hand
  4. images replaced between embed and dedup
  5. two writers on one run folder
  6. a rank killed while index or recs publishes
  7. manifest paths that lead out of the run
  8. exit codes of status and verify that scripts can trust
"""
import csv
import glob
import json
import os
import shlex
import shutil
import subprocess
import tempfile
import time
import unittest

import h5py

import lookbook_test as lt

SLOTS = ("T-shirt/top=top,Shirt=top,Pullover=top,Trouser=bottom,Dress=dress,Coat=top,Sandal=shoes,"
         "Sneaker=shoes,Ankle boot=shoes,Bag=bag")
TABLES = ["dedup/pairs.csv", "dedup/clusters.csv", "recs/substitutes.csv", "recs/outfits.csv"]


read_csv = lt.read_csv


summaries = lt.summaries


class RunIntegrity(lt.TempDirTest):
    @classmethod
    def setUpClass(cls):
        cls._shared = tempfile.TemporaryDirectory(prefix="lookbook-it-integrity-")
        cls.demo = os.path.join(cls._shared.name, "demo")
        lt.run(["demo-catalog", "--out", cls.demo, "--items", "120", "--seed", "5"], check=0)
        cls.clean = os.path.join(cls._shared.name, "clean")
        lt.run(["run", "--config", cls.config(cls._shared.name, cls.clean, cls.demo)], mpi=True, check=0)

    @classmethod
    def tearDownClass(cls):
        cls._shared.cleanup()

    @staticmethod
    def config(folder, run, demo, images=None):
        models = os.path.join(lt.ARGS.source, "models", "demo")
        path = os.path.join(folder, os.path.basename(run) + ".ini")
        with open(path, "w") as f:
            f.write(f"run = {run}\n[ingest]\ncatalog = {demo}/catalog.csv\nimages = {images or demo + '/images'}\n"
                    f"shards = 3\n[embed]\nmodel = {models}/clip\ndecode-threads = 1\n[recs]\ncategory-slots = {SLOTS}\n")
        return path

    def copy_run(self, name="run"):
        run = self.path(name)
        shutil.copytree(self.clean, run)
        return run

    def copy_demo(self, name="demo"):
        demo = self.path(name)
        shutil.copytree(self.demo, demo)
        return demo

    def tables(self, run):
        out = {}
        for name in TABLES:
            with open(os.path.join(run, name), "rb") as f:
                out[name] = f.read()
        return out

    def shard_of(self, run, key):
        """The embed shard that holds image `key`."""
        for shard in range(3):
            with h5py.File(os.path.join(run, "embed", f"shard-{shard:05d}.h5"), "r") as f:
                if key in list(f["images/key"].asstr()[:]):
                    return shard
        self.fail(f"{key} is in no shard")

    def assert_no_leftovers(self, run):
        for folder in ("ingest", "embed", "index", "dedup", "recs", "report"):
            self.assertEqual(glob.glob(os.path.join(run, folder, "*.tmp-*")), [], folder)

    # 1 ---------------------------------------------------------------------------------------
    def test_an_image_replaced_in_place_redoes_exactly_its_shard(self):
        demo = self.copy_demo()
        run = self.path("run")
        shutil.copytree(self.clean, run)
        config = self.config(self.dir, run, demo)
        # The demo's first product shot now holds the bytes of another product's shot: a fresh
        # run finds the two as exact duplicates.
        rows = read_csv(os.path.join(demo, "catalog.csv"))
        victim, source = rows[0], rows[5]
        shutil.copyfile(os.path.join(demo, "images", source["image_1"]), os.path.join(demo, "images", victim["image_1"]))
        os.utime(os.path.join(demo, "images", victim["image_1"]))
        result = lt.run(["run", "--config", config], mpi=True, check=0)
        stages = summaries(result)
        self.assertEqual(stages["ingest"]["status"], "ok", "ingest sees the file changed (size or date)")
        self.assertEqual((stages["embed"]["shards_embedded"], stages["embed"]["shards_skipped"]), (1, 2))
        pairs = read_csv(os.path.join(run, "dedup", "pairs.csv"))
        found = {(p["image_a"], p["image_b"]) for p in pairs} | {(p["image_b"], p["image_a"]) for p in pairs}
        self.assertIn((victim["product_id"] + "/image_1", source["product_id"] + "/image_1"), found)
        self.assertTrue(os.path.exists(os.path.join(run, "_SUCCESS")))
        self.assertEqual(lt.summary(lt.run(["verify", run], check=0))["problems"], 0)
        # The same tables as a run from scratch over the changed images.
        fresh = self.path("fresh")
        lt.run(["run", "--config", self.config(self.dir, fresh, demo)], mpi=True, check=0)
        self.assertEqual(self.tables(run), self.tables(fresh))

    def test_a_moved_row_a_stock_flip_and_a_title_edit_redo_no_shard(self):
        demo = self.copy_demo()
        run = self.copy_run()
        path = os.path.join(demo, "catalog.csv")
        with open(path, newline="") as f:
            rows = list(csv.DictReader(f))
        fields = list(rows[0].keys())
        rows.append(rows.pop(0))  # the first product now comes last
        rows[1]["in_stock"] = "0" if rows[1]["in_stock"] == "1" else "1"
        rows[2]["title"] = rows[2]["title"] + " (new season)"
        with open(path, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields, lineterminator="\n")
            writer.writeheader()
            writer.writerows(rows)
        stages = summaries(lt.run(["run", "--config", self.config(self.dir, run, demo)], mpi=True, check=0))
        self.assertEqual(stages["ingest"]["status"], "ok", "the catalog changed: ingest publishes")
        self.assertEqual((stages["embed"]["shards_embedded"], stages["embed"]["shards_skipped"]), (0, 3),
                         "no image changed: no shard is embedded again")
        # What the downstream stages made of the edit is what a run from scratch makes of it.
        fresh = self.path("fresh")
        lt.run(["run", "--config", self.config(self.dir, fresh, demo)], mpi=True, check=0)
        self.assertEqual(self.tables(run), self.tables(fresh))
        with open(os.path.join(run, "ingest", "shard-00000.csv"), newline="") as f:
            ids = [r["product_id"] for r in csv.DictReader(f)]
        self.assertEqual(ids, sorted(ids), "a shard lists its products in id order, wherever they sit in the catalog")
        self.assertTrue(os.path.exists(os.path.join(run, "_SUCCESS")))

    # 2 ---------------------------------------------------------------------------------------
    def test_another_image_root_is_embedded_by_content(self):
        run = self.copy_run()
        # The same files under another root: nothing to redo (the content is the same).
        same = self.path("same-images")
        shutil.copytree(os.path.join(self.demo, "images"), same)
        stages = summaries(lt.run(["run", "--config", self.config(self.dir, run, self.demo, same)], mpi=True, check=0))
        self.assertEqual(stages["embed"]["shards_embedded"], 0)
        # Another root whose files differ (each product shot swapped with the next one's): every
        # shard with a changed image is redone.
        other = self.path("other-images")
        shutil.copytree(os.path.join(self.demo, "images"), other)
        shots = sorted(glob.glob(os.path.join(other, "products", "*.jpg")))
        data = [open(p, "rb").read() for p in shots]
        for path, bytes_ in zip(shots, data[1:] + data[:1]):
            with open(path, "wb") as f:
                f.write(bytes_)
        stages = summaries(lt.run(["run", "--config", self.config(self.dir, run, self.demo, other)], mpi=True, check=0))
        self.assertEqual(stages["embed"]["shards_embedded"], 3)
        with open(os.path.join(run, "ingest", "manifest.json")) as f:
            self.assertEqual(json.load(f)["options"]["images"], os.path.realpath(other))

    # 3 ---------------------------------------------------------------------------------------
    def test_an_edited_ingest_shard_is_refused_before_it_is_parsed(self):
        run = self.copy_run()
        path = os.path.join(run, "ingest", "shard-00001.csv")
        with open(path, newline="") as f:
            rows = list(csv.reader(f))
        other = rows[2][3]
        rows[1][3] = other  # the first image now points at another product's file
        with open(path, "w", newline="") as f:
            csv.writer(f, lineterminator="\n").writerows(rows)
                # Every stage that reads the ingest shards refuses it (index reads only the embeddings).
        for stage in ("embed", "dedup", "recs"):
            result = lt.run([stage, "--run", run, "--force", *(["--model", os.path.join(lt.ARGS.source, "models",
                             "demo", "clip")] if stage == "embed" else [])], mpi=True, check=1)
            self.assertRegex(result.stderr, r"shard-00001\.csv|ingest", stage)
            self.assertIn("rerun lookbook ingest", result.stderr, stage)
        # Nothing was published from it: the old tables stand, and a new ingest repairs the run.
        self.assertEqual(self.tables(run), self.tables(self.clean))
        result = lt.run(["run", "--config", self.config(self.dir, run, self.demo)], mpi=True, check=0)
        self.assertEqual(summaries(result)["embed"]["shards_embedded"], 0, "the images did not change")
        self.assertEqual(self.tables(run), self.tables(self.clean))

    # 4 ---------------------------------------------------------------------------------------
    def test_images_replaced_between_embed_and_dedup_do_not_change_its_answer(self):
        # Dedup verifies the pixels embed saw (its stored align thumbnails), never the files again:
        # an image replaced after embed can neither make a false pair nor lose a true one.
        demo = self.copy_demo()
        run = self.path("run")
        lt.run(["run", "--config", self.config(self.dir, run, demo), "--stages", "ingest,embed,index,dedup"],
               mpi=True, check=0)
        pairs = read_csv(os.path.join(run, "dedup", "pairs.csv"))
        cross = [p for p in pairs if p["kind"] == "cross_product"]
        self.assertTrue(cross)
        # A true pair: one of its images now holds an unrelated photo.
        true_pair = cross[0]
        catalog = {r["product_id"]: r for r in read_csv(os.path.join(demo, "catalog.csv"))}
        def file_of(key):
            product, column = key.split("/")
            return os.path.join(demo, "images", catalog[product][column])
        unrelated_key = next(k for k in (f"{p}/image_1" for p in catalog) if k not in (true_pair["image_a"], true_pair["image_b"]))
        shutil.copyfile(file_of(unrelated_key), file_of(true_pair["image_b"]))
        result = lt.run(["dedup", "--run", run, "--force"], mpi=True, check=0)
        self.assertEqual(lt.summary(result)["status"], "ok")
        after = read_csv(os.path.join(run, "dedup", "pairs.csv"))
        self.assertEqual(after, pairs, "decided on embed's pixels")
        # The replaced file is now a byte copy of the unrelated image: a dedup that read the files
        # again would publish that false pair.
        published = {tuple(sorted((p["image_a"], p["image_b"]))) for p in after}
        self.assertNotIn(tuple(sorted((unrelated_key, true_pair["image_b"]))), published)
        self.assertIn(tuple(sorted((true_pair["image_a"], true_pair["image_b"]))), published)

    def test_the_report_leaves_out_stages_older_than_their_inputs(self):
        # Embed again with another storage type: every shard's bytes change, so dedup and recs
        # are older than embed. The report must not show them as if they were current.
        run = self.copy_run()
        config = self.config(self.dir, run, self.demo)
        lt.run(["embed", "--config", config, "--embedding-dtype", "float16"], mpi=True, check=0)
        result = lt.run(["report", "--run", run], check=0)
        for stage in ("dedup", "recs"):
            self.assertRegex(result.stderr, stage + r" is not valid \(stale: embed/shard-0000\d\.h5 changed\): left out")
        with open(os.path.join(run, "report", "index.html")) as f:
            page = f.read()
        self.assertIn(">0 duplicate clusters</a>", page)
        self.assertIn(">substitutes for 0 out-of-stock products</a>", page)
        self.assertIn("<td>dedup</td><td>stale</td>", page)
        # Dedup and recs redone: the report shows them again.
        lt.run(["index", "--run", run], mpi=True, check=0)
        lt.run(["dedup", "--run", run], mpi=True, check=0)
        lt.run(["recs", "--config", config], mpi=True, check=0)
        again = lt.run(["report", "--run", run], check=0)
        self.assertNotIn("left out of the report", again.stderr)
        with open(os.path.join(run, "report", "index.html")) as f:
            page = f.read()
        self.assertNotIn(">0 duplicate clusters</a>", page)
        self.assertIn("<td>dedup</td><td>valid</td>", page)

    # 5 ---------------------------------------------------------------------------------------
    def test_a_second_writer_fails_at_once_naming_the_first(self):
        run = self.copy_run()
        config = self.config(self.dir, run, self.demo)
        # The first writer is held in its embed stage until this test has tried the others: a
        # second writer that waited for the lock would never finish (lt.run's timeout fails it).
        release = os.path.join(self.dir, "release-first-writer")
        command = [*shlex.split(lt.ARGS.mpiexec), "-x", "LOOKBOOK_FAULT", lt.ARGS.lookbook, "run", "--config", config,
                   "--force"]
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1",
                   LOOKBOOK_FAULT=f"embed.shard_start:hold={release}:rank=0:nth=1")
        first = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            deadline = time.time() + 60
            while time.time() < deadline and not glob.glob(os.path.join(run, ".locks", "holder-*.json")):
                time.sleep(0.1)
            time.sleep(0.5)
            # The second writer brings another catalog (half of the products) and image root.
            other = self.copy_demo("other-demo")
            with open(os.path.join(other, "catalog.csv")) as f:
                lines = f.readlines()
            with open(os.path.join(other, "catalog.csv"), "w") as f:
                f.writelines(lines[:1 + (len(lines) - 1) // 2])
            os.makedirs(self.path("second-writer"))
            second_config = self.config(self.path("second-writer"), run, other)
            second = lt.run(["run", "--config", second_config, "--force"], mpi=True, check=1)
            self.assertIn("is being written by", second.stderr)
            self.assertRegex(second.stderr, r"pid \d+, `lookbook run`, since 20")
            for stage in ("embed", "index"):
                blocked = lt.run([stage, "--run", run, *(["--model", "x"] if stage == "embed" else [])], check=1)
                self.assertIn("is being written by", blocked.stderr)
            shard = lt.run(["embed", "--run", run, "--model", "x", "--shard", "0"], check=1)
            self.assertIn("is being written by", shard.stderr)
            # Readers do not lock.
            lt.run(["verify", run])
        finally:
            open(release, "w").close()
            out, err = first.communicate(timeout=300)
        self.assertEqual(first.returncode, 0, err[-3000:])
        self.assertEqual(lt.summary(lt.run(["verify", run], check=0))["problems"], 0)
        lt.run(["status", run], check=0)
        self.assertEqual(self.tables(run), self.tables(self.clean))
        self.assert_no_leftovers(run)

    def test_shard_writers_share_the_run_but_not_a_shard(self):
        run = self.copy_run()
        clip = os.path.join(lt.ARGS.source, "models", "demo", "clip")
        release = os.path.join(self.dir, "release-shard-writer")
        env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1",
                   LOOKBOOK_FAULT=f"embed.shard_start:hold={release}")
        held = subprocess.Popen([lt.ARGS.lookbook, "embed", "--run", run, "--model", clip, "--shard", "0", "--force"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
        try:
            deadline = time.time() + 60
            while time.time() < deadline and not glob.glob(os.path.join(run, ".locks", "holder-*.json")):
                time.sleep(0.1)
            self.assertEqual(lt.summary(lt.run(["embed", "--run", run, "--model", clip, "--shard", "1", "--force"],
                                               check=0))["shards_embedded"], 1)
            same = lt.run(["embed", "--run", run, "--model", clip, "--shard", "0", "--force"], check=1)
            self.assertIn("embed shard 0", same.stderr)
            whole = lt.run(["index", "--run", run, "--force"], check=1)
            self.assertIn("is being written by", whole.stderr)
        finally:
            open(release, "w").close()
            held.communicate(timeout=120)
        self.assertEqual(held.returncode, 0)
        # A staging folder a killed writer left behind goes with the next exclusive writer.
        os.makedirs(os.path.join(run, ".staging", "index-deadhost-1-0"))
        lt.run(["embed", "--run", run, "--model", clip], check=0)
        self.assertEqual(os.listdir(os.path.join(run, ".staging")), [])
        self.assertEqual(lt.summary(lt.run(["verify", run], check=0))["problems"], 0)

    # 6 ---------------------------------------------------------------------------------------
    def test_a_rank_killed_while_a_stage_publishes_leaves_the_old_stage_whole(self):
        # Rank 0 killed just before and just after the rename; rank 1 killed with its files staged,
        # while rank 0 waits for it.
        for stage, extra in (("index", ["--factory", "IVF8,Flat"]), ("recs", ["--top-k", "5"])):
            for point, rank in (("stage.publish", 0), ("stage.published", 0), ("stage.staged", 1)):
                run = self.copy_run(f"{stage}-{point}")
                before = json.load(open(os.path.join(run, stage, "manifest.json")))
                fault = {"LOOKBOOK_FAULT": f"{point}:kill:rank={rank}"}
                lt.run([stage, "--run", run, *extra], mpi=True, check=None, env=fault)
                status = json.loads(lt.run(["status", run, "--format", "json"]).stdout)
                self.assertIn(status["stages"][stage]["state"], ("valid",), (stage, point, status))
                after = json.load(open(os.path.join(run, stage, "manifest.json")))
                if point != "stage.published":
                    self.assertEqual(after, before, "killed before the rename: the old stage, whole")
                    self.assertTrue(os.path.exists(os.path.join(run, "_SUCCESS")), "nothing changed")
                else:
                    self.assertNotEqual(after["key"], before["key"], "killed after the rename: the new stage, whole")
                    self.assertFalse(os.path.exists(os.path.join(run, "_SUCCESS")), "the run changed")
                self.assertEqual(lt.summary(lt.run(["verify", run], check=0))["problems"], 0)
                self.assert_no_leftovers(run)
                # The next writer removes what the killed one left, and finishes.
                lt.run(["run", "--config", self.config(self.dir, run, self.demo)], mpi=True, check=0)
                self.assertEqual(os.listdir(os.path.join(run, ".staging")), [])
                lt.run(["status", run], check=0)

    # 7 ---------------------------------------------------------------------------------------
    def test_manifest_paths_that_leave_the_run_are_damage_and_never_opened(self):
        run = self.copy_run()
        other = self.copy_run("other")
        path = os.path.join(run, "embed", "manifest.json")
        manifest = json.load(open(path))
        for bad in (os.path.join(other, "embed", "shard-00000.h5"), "../../other/embed/shard-00000.h5"):
            for entry in manifest["outputs"]:
                if entry["path"] == "shard-00000.h5":
                    entry["path"] = bad  # another run's file, with the right size and checksum
            with open(path, "w") as f:
                json.dump(manifest, f)
            status = json.loads(lt.run(["status", run, "--format", "json"], check=1).stdout)
            self.assertEqual(status["stages"]["embed"]["state"], "damaged", status)
            verify = lt.run(["verify", run], check=1)
            self.assertIn("embed/" + bad, verify.stdout)
            result = lt.run(["index", "--run", run, "--force"], check=1)
            self.assertIn("rerun lookbook embed", result.stderr)
            manifest = json.load(open(os.path.join(self.clean, "embed", "manifest.json")))
        # A symlink out of the run is damage too.
        shutil.copyfile(os.path.join(self.clean, "embed", "manifest.json"), path)
        os.remove(os.path.join(run, "embed", "shard-00000.h5"))
        os.symlink(os.path.join(other, "embed", "shard-00000.h5"), os.path.join(run, "embed", "shard-00000.h5"))
        status = json.loads(lt.run(["status", run, "--format", "json"], check=1).stdout)
        self.assertEqual(status["stages"]["embed"]["state"], "damaged")
        # The rerun repairs it: embed publishes its stage again.
        lt.run(["run", "--config", self.config(self.dir, run, self.demo)], mpi=True, check=0)
        self.assertFalse(os.path.islink(os.path.join(run, "embed", "shard-00000.h5")))
        lt.run(["status", run], check=0)

    # 8 ---------------------------------------------------------------------------------------
    def test_status_and_verify_exit_codes(self):
        run = self.copy_run()
        lt.run(["status", run], check=0)
        self.assertEqual(lt.summary(lt.run(["verify", run], check=0))["problems"], 0)
        empty = self.path("not-a-run")
        os.makedirs(empty)
        self.assertIn("not a run folder", lt.run(["verify", empty], check=1).stderr)
        self.assertIn("not a run folder", lt.run(["status", self.path("missing")], check=1).stderr)
        with open(os.path.join(run, "dedup", "pairs.csv"), "a") as f:
            f.write("x,y,p,q,1.0,0,cross_product\n")
        status = json.loads(lt.run(["status", run, "--format", "json"], check=1).stdout)
        self.assertEqual(status["stages"]["dedup"]["state"], "damaged")
        self.assertIn("BAD dedup/pairs.csv", lt.run(["verify", run], check=1).stdout)


if __name__ == "__main__":
    lt.main()
