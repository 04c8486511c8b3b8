"""Inputs and behaviours the documentation promises, each from the command line on the real
binary: product ids over 256 bytes or with control characters, the Inditex layout end to end,
URL references and renamed stock and title columns, float16 embeddings, `--categories`,
images that appear or vanish before a rerun, `run` removing `_SUCCESS` before anything else,
`status` saying partial and stale, and exit code 70 for an internal error."""
import csv
import json
import os
import shutil
import subprocess
import tempfile
import time
import unittest

import h5py
import numpy as np

import lookbook_test as lt

JPEG = None  # a real product shot, read once from a demo catalog


def demo_image():
    global JPEG
    if JPEG is None:
        with tempfile.TemporaryDirectory() as tmp:
            lt.run(["demo-catalog", "--out", tmp, "--items", "10"], check=0)
            first = sorted(os.listdir(os.path.join(tmp, "images", "products")))[0]
            with open(os.path.join(tmp, "images", "products", first), "rb") as f:
                JPEG = f.read()
    return JPEG


def shard_rows(run):
    rows = []
    for name in sorted(os.listdir(os.path.join(run, "ingest"))):
        if name.startswith("shard-"):
            with open(os.path.join(run, "ingest", name), newline="") as f:
                rows += list(csv.DictReader(f))
    return rows


def rejects(run):
    with open(os.path.join(run, "ingest", "rejects.csv"), newline="") as f:
        return list(csv.DictReader(f))


class Inputs(lt.TempDirTest):
    def write(self, name, data):
        path = self.path(name)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "wb" if isinstance(data, bytes) else "w") as f:
            f.write(data)
        return path

    def test_product_ids_over_256_bytes_or_with_control_characters_are_rejected(self):
        self.write("images/a.jpg", demo_image())
        ok_id = "x" * 256
        rows = [ok_id, "y" * 257, "tab\there", "bell\x07", "del\x7f", "fine"]
        catalog = "product_id,image_1\n" + "".join(f'"{r}",a.jpg\n' for r in rows)
        self.write("catalog.csv", catalog)
        run = self.path("run")
        report = lt.summary(lt.run(["ingest", "--catalog", self.path("catalog.csv"), "--images", self.path("images"),
                                    "--run", run, "--shards", "2"], check=0))
        self.assertEqual((report["rows_ok"], report["rows_rejected"]), (2, 4))
        self.assertEqual({r["product_id"] for r in shard_rows(run)}, {ok_id, "fine"})
        self.assertEqual([r["reason"] for r in rejects(run)], ["invalid_product_id"] * 4)

    def test_inditex_layout_from_the_command_line(self):
        # IMAGE_VERSION_1..3 URLs, no id column: files are the URLs' paths under the image root.
        urls = {
            "5767521712": ["https://static.zara.net/photos///2024/V/0/2/p/5767/521/712/2/w/2048/5767521712_6_1_1.jpg?ts=1707742047283",
                           "https://static.zara.net/photos///2024/V/0/2/p/5767/521/712/2/w/2048/5767521712_6_2_1.jpg?ts=1707742047283",
                           ""],
            "1234567890": ["https://static.zara.net/photos/2024/x/1234567890_1_1_1.jpg", "", ""],
        }
        for refs in urls.values():
            for url in refs:
                if url:
                    path = url.split("://", 1)[1].split("/", 1)[1].split("?")[0]
                    path = "/".join(p for p in path.split("/") if p)
                    self.write(os.path.join("images", path), demo_image())
        lines = ["IMAGE_VERSION_1,IMAGE_VERSION_2,IMAGE_VERSION_3"] + [",".join(refs) for refs in urls.values()]
        lines.append("https://static.zara.net/photos/2024/x/9999999999_1_1_1.jpg,,")  # no such file
        self.write("inditex.csv", "\n".join(lines) + "\n")
        run = self.path("run")
        report = lt.summary(lt.run(["ingest", "--layout", "inditex", "--catalog", self.path("inditex.csv"),
                                    "--images", self.path("images"), "--run", run, "--shards", "2"], check=0))
        self.assertEqual((report["rows_ok"], report["images_ok"], report["rows_rejected"]), (2, 3, 1))
        rows = shard_rows(run)
        self.assertEqual(sorted({r["product_id"] for r in rows}), ["1234567890", "5767521712"])
        self.assertEqual(sorted(r["column"] for r in rows if r["product_id"] == "5767521712"),
                         ["IMAGE_VERSION_1", "IMAGE_VERSION_2"])
        for r in rows:
            self.assertTrue(r["file"].startswith("photos/"), r)
            self.assertTrue(r["image"].startswith("https://"), r)
        clip = os.path.join(lt.ARGS.source, "models", "demo", "clip")
        embed = lt.summary(lt.run(["embed", "--run", run, "--model", clip], mpi=True, check=0))
        self.assertEqual(embed["images_ok"], 3)
        with h5py.File(os.path.join(run, "embed", "catalog.h5"), "r") as f:
            self.assertIn("5767521712/IMAGE_VERSION_2", list(f["images/key"].asstr()[:]))
        # And on through every later stage, which know images by key only. The three files hold
        # the same picture: one cluster, its pairs named by the Inditex columns.
        self.assertEqual(lt.summary(lt.run(["index", "--run", run], mpi=True, check=0))["vectors"], 3)
        lt.run(["dedup", "--run", run], mpi=True, check=0)
        with open(os.path.join(run, "dedup", "pairs.csv"), newline="") as f:
            pairs = {frozenset((p["image_a"], p["image_b"])) for p in csv.DictReader(f)}
        keys = ["5767521712/IMAGE_VERSION_1", "5767521712/IMAGE_VERSION_2", "1234567890/IMAGE_VERSION_1"]
        self.assertEqual(pairs, {frozenset((a, b)) for a in keys for b in keys if a < b})
        # No category column: zero-shot over the given names; no stock column: all in stock.
        recs = lt.summary(lt.run(["recs", "--run", run, "--categories", "Dress,Bag", "--model", clip], mpi=True,
                                 check=0))
        self.assertEqual((recs["status"], recs["categories_zero_shot"]), ("ok", 2))
        report = lt.summary(lt.run(["report", "--run", run], check=0))
        self.assertEqual(report["status"], "ok")
        with open(os.path.join(run, "report", "clusters-1.html"), encoding="utf-8") as f:
            self.assertIn("5767521712/IMAGE_VERSION_2", f.read())
        self.assertEqual(lt.summary(lt.run(["verify", run], check=0))["problems"], 0)

    def test_url_references_and_renamed_stock_and_title_columns(self):
        self.write("images/shop/a.jpg", demo_image())
        self.write("catalog.csv", "sku,front,availability,name\n"
                                  "s1,https://cdn.example.com/shop/a.jpg?w=800,0,Blue coat\n"
                                  "s2,https://cdn.example.com/shop/a.jpg,17,Red dress\n"
                                  "s3,ftp://cdn.example.com/shop/a.jpg,1,Bad scheme\n")
        run = self.path("run")
        report = lt.summary(lt.run(["ingest", "--catalog", self.path("catalog.csv"), "--images", self.path("images"),
                                    "--run", run, "--id-column", "sku", "--image-columns", "front", "--image-refs", "url",
                                    "--stock-column", "availability", "--title-column", "name"], check=0))
        self.assertEqual((report["rows_ok"], report["rows_rejected"]), (2, 1))
        rows = {r["product_id"]: r for r in shard_rows(run)}
        self.assertEqual((rows["s1"]["in_stock"], rows["s1"]["title"], rows["s1"]["file"]), ("0", "Blue coat", "shop/a.jpg"))
        self.assertEqual((rows["s2"]["in_stock"], rows["s2"]["title"]), ("1", "Red dress"))
        self.assertIn("bad_url", {r["reason"] for r in rejects(run)})

    def test_float16_embeddings_are_stored_and_indexed(self):
        lt.run(["demo-catalog", "--out", self.path("demo"), "--items", "40"], check=0)
        run = self.path("run")
        lt.run(["ingest", "--catalog", self.path("demo", "catalog.csv"), "--images", self.path("demo", "images"),
                "--run", run, "--shards", "2"], check=0)
        bundle = lt.make_bundle(self.path("bundle"))
        lt.run(["embed", "--run", run, "--model", bundle, "--embedding-dtype", "float16"], check=0)
        ok_images = 0
        for shard in range(2):
            with h5py.File(os.path.join(run, "embed", f"shard-{shard:05d}.h5"), "r") as f:
                self.assertEqual(f["images/embedding"].dtype, np.float16)
                vectors = f["images/embedding"][:].astype(np.float32)
                ok = f["images/status"][:] == 0
            np.testing.assert_allclose(np.linalg.norm(vectors[ok], axis=1), 1.0, atol=2e-3)
            ok_images += int(ok.sum())
        self.assertEqual(lt.summary(lt.run(["index", "--run", run], check=0))["vectors"], ok_images)

    def test_categories_limit_the_zero_shot_choices(self):
        demo = self.path("demo")
        lt.run(["demo-catalog", "--out", demo, "--items", "60"], check=0)
        with open(os.path.join(demo, "catalog.csv"), newline="") as f:
            reader = csv.DictReader(f)
            rows = list(reader)
            fields = reader.fieldnames
        for row in rows:
            row["category"] = ""
        with open(self.path("blank.csv"), "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows)
        run = self.path("run")
        models = os.path.join(lt.ARGS.source, "models", "demo")
        lt.run(["ingest", "--catalog", self.path("blank.csv"), "--images", os.path.join(demo, "images"), "--run", run,
                "--shards", "2"], check=0)
        lt.run(["embed", "--run", run, "--model", os.path.join(models, "clip")], check=0)
        for stage in ("index", "dedup"):
            lt.run([stage, "--run", run], check=0)
        report = lt.summary(lt.run(["recs", "--run", run, "--categories", "Dress,Bag", "--model",
                                    os.path.join(models, "clip")], check=0))
        self.assertEqual(report["categories_zero_shot"], 60)
        with h5py.File(os.path.join(run, "recs", "recs.h5"), "r") as f:
            categories = set(f["products/category"].asstr()[:])
        self.assertEqual(categories, {"Dress", "Bag"})

    def ingested_run(self):
        self.write("images/a.jpg", demo_image())
        self.write("images/b.jpg", demo_image()[:-10] + b"\xff\xd9")
        self.write("catalog.csv", "product_id,image_1\np1,a.jpg\np2,b.jpg\np3,c.jpg\n")
        run = self.path("run")
        args = ["ingest", "--catalog", self.path("catalog.csv"), "--images", self.path("images"), "--run", run]
        return run, args

    def test_images_appearing_or_vanishing_are_seen_by_the_next_ingest(self):
        run, args = self.ingested_run()
        self.assertEqual(lt.summary(lt.run(args, check=0))["images_ok"], 2)  # c.jpg is missing
        self.assertEqual(lt.summary(lt.run(args, check=0))["status"], "skipped")  # nothing changed
        os.remove(self.path("images", "b.jpg"))
        self.write("images/c.jpg", demo_image())
        # The catalog is unchanged, the image files are not: ingest checks them every time.
        again = lt.summary(lt.run(args, check=0))
        self.assertEqual(again["status"], "ok")
        self.assertEqual(again["images_ok"], 2)
        self.assertEqual({r["product_id"] for r in shard_rows(run)}, {"p1", "p3"})
        self.assertEqual([(r["product_id"], r["reason"]) for r in rejects(run) if r["column"]], [("p2", "missing")])

    def test_run_removes_success_first_and_status_says_partial_and_stale(self):
        # status exits 0 only when every stage present is valid.
        lt.run(["demo-catalog", "--out", self.path("demo"), "--items", "30"], check=0)
        run = self.path("run")
        bundle = lt.make_bundle(self.path("bundle"))
        config = self.write("run.ini", f"run = {run}\n[ingest]\ncatalog = {self.path('demo', 'catalog.csv')}\n"
                                       f"images = {self.path('demo', 'images')}\nshards = 3\n[embed]\nmodel = {bundle}\n")
        lt.run(["run", "--config", config, "--stages", "ingest,embed"], check=0)
        self.assertTrue(os.path.exists(os.path.join(run, "_SUCCESS")))
        # Held just before its first stage (ingest) publishes, a run has already removed
        # _SUCCESS, and nothing of the run has changed yet.
        with open(os.path.join(run, "ingest", "manifest.json"), "rb") as f:
            ingest_manifest = f.read()
        release = self.path("release")
        held = subprocess.Popen([lt.ARGS.lookbook, "run", "--config", config, "--stages", "ingest,embed", "--force"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                env=dict(os.environ, OMP_NUM_THREADS="1",
                                         LOOKBOOK_FAULT=f"stage.publish:hold={release}:nth=1"))
        try:
            deadline = time.time() + 120
            staging = os.path.join(run, ".staging")
            while time.time() < deadline and held.poll() is None and not (
                    os.path.isdir(staging) and any(os.path.exists(os.path.join(staging, d, "manifest.json"))
                                                   for d in os.listdir(staging))):
                time.sleep(0.05)
            self.assertIsNone(held.poll(), "the run is held at its first publication")
            self.assertFalse(os.path.exists(os.path.join(run, "_SUCCESS")))
            with open(os.path.join(run, "ingest", "manifest.json"), "rb") as f:
                self.assertEqual(f.read(), ingest_manifest, "nothing published yet")
        finally:
            open(release, "w").close()
            held.communicate(timeout=300)
        self.assertEqual(held.returncode, 0)
        self.assertTrue(os.path.exists(os.path.join(run, "_SUCCESS")))
        # The next run fails in embed (an injected input error): _SUCCESS was removed before.
        result = lt.run(["run", "--config", config, "--stages", "ingest,embed", "--force"], check=1,
                        env={"LOOKBOOK_FAULT": "embed.shard_start:input"})
        self.assertIn("fault injected", result.stderr)
        self.assertFalse(os.path.exists(os.path.join(run, "_SUCCESS")))
                # One shard computed of three, the stage not published: partial.
        shutil.rmtree(os.path.join(run, "embed"))
        lt.run(["embed", "--run", run, "--model", bundle, "--shard", "1"], check=0)
        status = json.loads(lt.run(["status", run, "--format", "json"], check=1).stdout)
        self.assertEqual(status["stages"]["embed"]["state"], "partial", status)
        self.assertEqual([s["state"] for s in status["stages"]["embed"]["shards"]], ["absent", "pending", "absent"])
        # The next embed publishes all three, reusing shard 1.
        report = lt.summary(lt.run(["embed", "--run", run, "--model", bundle], check=0))
        self.assertEqual((report["shards_embedded"], report["shards_skipped"]), (2, 1))
        lt.run(["status", run], check=0)
        # A product added to the catalog and ingested again: the embed stage no longer lists
        # every image of its shard, so it is stale.
        with open(self.path("demo", "catalog.csv"), "a") as f:
            f.write("extra,products/" + sorted(os.listdir(self.path("demo", "images", "products")))[0] + ",,,Dress,1,x\n")
        lt.run(["ingest", "--catalog", self.path("demo", "catalog.csv"), "--images", self.path("demo", "images"),
                "--run", run, "--shards", "3"], check=0)
        status = json.loads(lt.run(["status", run, "--format", "json"], check=1).stdout)
        self.assertEqual(status["stages"]["ingest"]["state"], "valid", status)
        self.assertEqual(status["stages"]["embed"]["state"], "stale", status)
        self.assertIn("lists other images", status["stages"]["embed"]["detail"])

    def test_an_internal_error_exits_70_naming_where(self):
        fault = {"LOOKBOOK_FAULT": "command.run:internal"}
        result = lt.run(["ingest", "--catalog", "x", "--images", "y", "--run", self.path("run")], check=70, env=fault)
        self.assertIn("fault injected", result.stderr)
        self.assertIn("fault.cpp", result.stderr)
        # Under mpirun every rank fails the same way: the job's exit code is 70 too.
        lt.run(["index", "--run", self.path("run")], mpi=True, check=70, env=fault)


if __name__ == "__main__":
    lt.main()
