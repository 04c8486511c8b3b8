"""Recommendations end to end on the demo catalog under mpirun: substitutes and outfits meet
the recs issue's quality targets, every listed item obeys the filters (in stock, same category
or the garment's slot, never the product itself or a near-duplicate of it, never fewer than k
while k qualify), products without a category get one zero-shot through the CLIP text encoder,
1 and 2 ranks give the same bytes, and `lookbook query` matches a photo's garments (and texts)
from the command line, rejecting unreadable photos with a reason."""
import csv
import json
import os
import re
import shutil
import tempfile

import h5py

import lookbook_test as lt

# A 64 x 64 plain grey PNG: nothing for the segmenter to find.
PLAIN_PNG = bytes.fromhex(
    "89504e470d0a1a0a0000000d49484452000000400000004008000000008f022e02000000294944415478daedcc411100000c0220a31bdd"
    "10fbed2000e951040281402010080402814020107c0f06df6d007970ba79fa0000000049454e44ae426082")


read_csv = lt.read_csv


def pipeline(demo, run, catalog=None, segment=True):
    models = os.path.join(lt.ARGS.source, "models", "demo")
    lt.run(["ingest", "--run", run, "--catalog", catalog or os.path.join(demo, "catalog.csv"),
            "--images", os.path.join(demo, "images"), "--shards", "3"], mpi=True, check=0)
    extra = ["--segmenter", os.path.join(models, "unet"), "--segment-images", "image_3"] if segment else []
    lt.run(["embed", "--run", run, "--model", os.path.join(models, "clip"), "--decode-threads", "1", *extra],
           mpi=True, check=0)
    lt.run(["index", "--run", run], mpi=True, check=0)
    lt.run(["dedup", "--run", run], mpi=True, check=0)


class Recs(lt.TempDirTest):
    @classmethod
    def setUpClass(cls):
        cls._shared = tempfile.TemporaryDirectory(prefix="lookbook-it-recs-")
        cls.demo = os.path.join(cls._shared.name, "demo")
        cls.base = os.path.join(cls._shared.name, "run")
        cls.config = os.path.join(lt.ARGS.source, "config", "demo.ini")
        lt.run(["demo-catalog", "--out", cls.demo], check=0)
        pipeline(cls.demo, cls.base)
        with open(os.path.join(cls.demo, "catalog.csv"), newline="") as f:
            cls.catalog = {row["product_id"]: row for row in csv.DictReader(f)}
        cls.truth = {row["product_id"]: row for row in read_csv(os.path.join(cls.demo, "truth", "products.csv"))}

    @classmethod
    def tearDownClass(cls):
        cls._shared.cleanup()

    def setUp(self):
        super().setUp()
        self.run_dir = self.path("run")
        shutil.copytree(self.base, self.run_dir)

    def recs(self, *extra, mpi=True, check=0, run=None):
        return lt.run(["recs", "--config", self.config, "--run", run or self.run_dir, *extra], mpi=mpi, check=check)

    def evaluate(self, run=None):
        run = run or self.run_dir
        result = lt.run(["eval", "recs", "--run", run, "--truth", os.path.join(self.demo, "truth", "outfits.csv"),
                         "--products", os.path.join(self.demo, "truth", "products.csv")], check=0)
        return json.loads(result.stdout.splitlines()[-1])

    def test_tables_meet_the_quality_targets_and_obey_the_filters(self):
        report = lt.summary(self.recs())
        metrics = self.evaluate()
        self.assertGreaterEqual(metrics["outfit_recall_at_k"], 0.8, metrics)
        self.assertEqual(metrics["outfit_k"], 5)
        # Same category is what recs filters on, so it must hold exactly; whether the nearest
        # substitute looks alike is measured on what recs does not filter on: the truth colour.
        self.assertEqual(metrics["substitute_same_category_precision_at_10"], 1.0, metrics)
        self.assertGreater(metrics["outfit_items"], 20)
        self.assertTrue(os.path.exists(os.path.join(self.run_dir, "eval", "recs.json")))

        substitutes = read_csv(os.path.join(self.run_dir, "recs", "substitutes.csv"))
        self.assertEqual(list(substitutes[0].keys()), ["product_id", "rank", "substitute_id", "score"])
        self.assertEqual(len(substitutes), report["substitute_rows"])
        # Near-duplicate cluster mates, by product.
        clusters = {}
        for row in read_csv(os.path.join(self.run_dir, "dedup", "clusters.csv")):
            clusters.setdefault(row["cluster_id"], set()).add(row["product_id"])
        mates = {}
        for products in clusters.values():
            for p in products:
                mates.setdefault(p, set()).update(products)
        by_product = {}
        for row in substitutes:
            by_product.setdefault(row["product_id"], []).append(row)
        self.assertEqual(set(by_product), set(self.catalog), "every product gets substitutes (all have a category)")
        for product, rows in by_product.items():
            mine = self.catalog[product]
            self.assertEqual([int(r["rank"]) for r in rows], list(range(1, len(rows) + 1)))
            scores = [float(r["score"]) for r in rows]
            self.assertEqual(scores, sorted(scores, reverse=True))
            for row in rows:
                other = self.catalog[row["substitute_id"]]
                self.assertEqual(other["in_stock"], "1")
                self.assertEqual(other["category"], mine["category"])
                self.assertNotEqual(row["substitute_id"], product)
                self.assertNotIn(row["substitute_id"], mates.get(product, set()))
            # No two near-duplicates in one list (a relisted photo is one choice, not two).
            listed = [r["substitute_id"] for r in rows]
            for i, a in enumerate(listed):
                self.assertFalse(mates.get(a, set()) & set(listed[:i]), (product, a, listed))
            # Never short while enough products qualify (a near-duplicate cluster counts once).
            qualifying = {frozenset(mates.get(p, {p})) for p, r in self.catalog.items()
                          if r["in_stock"] == "1" and r["category"] == mine["category"] and p != product
                          and p not in mates.get(product, set())}
            self.assertEqual(len(rows), min(10, len(qualifying)), product)
        same_colour, chance = [], []
        for product, rows in by_product.items():
            colour = self.truth[product]["colour"]
            same_colour.append(self.truth[rows[0]["substitute_id"]]["colour"] == colour)
            pool = [p for p, r in self.catalog.items() if p != product and r["in_stock"] == "1"
                    and r["category"] == self.catalog[product]["category"]]
            chance.append(sum(self.truth[p]["colour"] == colour for p in pool) / max(1, len(pool)))
        precision, baseline = sum(same_colour) / len(same_colour), sum(chance) / len(chance)
        # Measured 0.715 against a chance of 0.068 (2026-11-30, demo models).
        self.assertGreaterEqual(precision, 0.5, (precision, baseline))
        self.assertGreaterEqual(precision, 5 * baseline, (precision, baseline))

        outfits = read_csv(os.path.join(self.run_dir, "recs", "outfits.csv"))
        self.assertEqual(list(outfits[0].keys()), ["product_id", "slot", "rank", "item_id", "score", "source_image"])
        self.assertEqual(len(outfits), report["outfit_rows"])
        for row in outfits:
            item = self.truth[row["item_id"]]
            self.assertEqual(self.catalog[row["item_id"]]["in_stock"], "1")
            self.assertEqual(item["slot"], row["slot"], "items come from the garment's slot")
            self.assertNotEqual(row["slot"], self.truth[row["product_id"]]["slot"], "not the product's own slot")
            self.assertTrue(row["source_image"].startswith(row["product_id"] + "/"))

        with h5py.File(os.path.join(self.run_dir, "recs", "recs.h5"), "r") as f:
            self.assertEqual(f.attrs["schema_version"], 1)
            ids = f["products/id"].asstr()[:]
            self.assertEqual(len(ids), len(self.catalog))
            self.assertEqual(len(f["substitutes/product"]), len(substitutes))
            self.assertEqual(f["outfits/box"].shape, (len(outfits), 4))
            first = substitutes[0]
            self.assertEqual(ids[f["substitutes/product"][0]], first["product_id"])
            self.assertEqual(ids[f["substitutes/substitute"][0]], first["substitute_id"])

    def test_out_of_stock_only_one_and_two_ranks_same_bytes_reruns_skip(self):
        self.recs("--substitutes-for", "out-of-stock", mpi=False)
        one = {}
        for name in ("substitutes.csv", "outfits.csv"):
            with open(os.path.join(self.run_dir, "recs", name), "rb") as f:
                one[name] = f.read()
        for row in read_csv(os.path.join(self.run_dir, "recs", "substitutes.csv")):
            self.assertEqual(self.catalog[row["product_id"]]["in_stock"], "0")
        self.assertEqual(lt.summary(self.recs("--substitutes-for", "out-of-stock"))["status"], "skipped")
        self.recs("--substitutes-for", "out-of-stock", "--force")
        for name, data in one.items():
            with open(os.path.join(self.run_dir, "recs", name), "rb") as f:
                self.assertEqual(f.read(), data, name)

    def test_missing_categories_are_classified_zero_shot(self):
        # Every fourth product loses its category; the rest keep theirs.
        catalog = self.path("catalog.csv")
        blanked = set()
        with open(os.path.join(self.demo, "catalog.csv"), newline="") as f, open(catalog, "w", newline="") as out:
            reader = csv.DictReader(f)
            writer = csv.DictWriter(out, fieldnames=reader.fieldnames)
            writer.writeheader()
            for i, row in enumerate(reader):
                if i % 4 == 0:
                    blanked.add(row["product_id"])
                    row["category"] = ""
                writer.writerow(row)
        run = self.path("blank")
        pipeline(self.demo, run, catalog=catalog, segment=False)
        report = lt.summary(self.recs("--model", os.path.join(lt.ARGS.source, "models", "demo", "clip"), run=run))
        self.assertEqual(report["categories_zero_shot"], len(blanked))
        self.assertEqual(report["products_without_category"], 0)
        with h5py.File(os.path.join(run, "recs", "recs.h5"), "r") as f:
            ids = f["products/id"].asstr()[:]
            categories = f["products/category"].asstr()[:]
            sources = f["products/category_source"].asstr()[:]
        right = 0
        for pid, category, source in zip(ids, categories, sources):
            self.assertEqual(source, "zero-shot" if pid in blanked else "catalog")
            if pid in blanked:
                right += category == self.truth[pid]["class"]
        # The demo CLIP's zero-shot accuracy is 0.85 per image (docs/performance.md#the-demo-models).
        self.assertGreaterEqual(right / len(blanked), 0.75)
        substitutes = read_csv(os.path.join(run, "recs", "substitutes.csv"))
        substituted = {row["product_id"] for row in substitutes}
        self.assertTrue(blanked <= substituted)
        # The substitutes of the zero-shot products, scored by the truth class recs never saw.
        listed = [self.truth[row["substitute_id"]]["class"] == self.truth[row["product_id"]]["class"]
                  for row in substitutes if row["product_id"] in blanked]
        # Measured 0.791 (2026-11-30, demo models): a quarter of the catalog classified zero-shot.
        self.assertGreaterEqual(sum(listed) / len(listed), 0.7)
        self.assertEqual(report["categories_unreadable"], 0)
        # Categories named with words the demo text tower does not know are not offered (they
        # would all embed as one empty prompt), and are named in a warning.
        result = self.recs("--model", os.path.join(lt.ARGS.source, "models", "demo", "clip"), "--categories",
                           "Dress,Coat,\u30c9\u30ec\u30b9,\U0001F457", "--force", run=run)
        report = lt.summary(result)
        self.assertEqual(report["categories_unreadable"], 2)
        self.assertIn("not used for zero-shot", result.stderr)
        with h5py.File(os.path.join(run, "recs", "recs.h5"), "r") as f:
            chosen = {c for c, s in zip(f["products/category"].asstr()[:], f["products/category_source"].asstr()[:])
                      if s == "zero-shot"}
        self.assertTrue(chosen <= {"Dress", "Coat"}, chosen)
        # Categories named by codes the text tower cannot read: unusable as such, and usable once
        # --category-names describes them in words (the products get the codes).
        classes = sorted({row["class"] for row in self.truth.values()})
        code = {name: f"X{i:03d}" for i, name in enumerate(classes)}
        codes = ",".join(code[name] for name in classes)
        result = self.recs("--model", os.path.join(lt.ARGS.source, "models", "demo", "clip"), "--categories", codes,
                           "--force", run=run)
        self.assertIn("--category-names", result.stderr)
        self.assertEqual(lt.summary(result)["categories_unreadable"], len(classes))
        named = ",".join(f"{code[name]}={name}" for name in classes)
        report = lt.summary(self.recs("--model", os.path.join(lt.ARGS.source, "models", "demo", "clip"),
                                      "--categories", codes, "--category-names", named, "--force", run=run))
        self.assertEqual(report["categories_unreadable"], 0)
        with h5py.File(os.path.join(run, "recs", "recs.h5"), "r") as f:
            got = dict(zip(f["products/id"].asstr()[:], f["products/category"].asstr()[:]))
        right = sum(got[pid] == code[self.truth[pid]["class"]] for pid in blanked)
        self.assertGreaterEqual(right / len(blanked), 0.75)
        bad = self.recs("--category-names", "X000", "--force", run=run, mpi=False, check=2)
        self.assertIn("is not Category=words", bad.stderr)

    def test_query_matches_a_photos_garments_and_texts(self):
        self.recs()
        outfits = read_csv(os.path.join(self.demo, "truth", "outfits.csv"))
        photos = [os.path.join(self.demo, "images", row["outfit"]) for row in outfits[:4]]
        broken = self.path("broken.jpg")
        with open(photos[0], "rb") as f:
            data = f.read()
        with open(broken, "wb") as f:
            f.write(data[: len(data) // 3])
        models = os.path.join(lt.ARGS.source, "models", "demo")
        result = lt.run(["query", "--run", self.run_dir, "--models-root", models, *sum([["--image", p] for p in photos], []),
                         "--image", broken, "--text", "a photo of a dress", "--top", "5"], check=1)
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        garments = [line for line in lines if "slot" in line]
        errors = [line for line in lines if "error" in line]
        texts = [line for line in lines if "text" in line]
        self.assertEqual([e["image"] for e in errors], [broken])
        self.assertIn("rejected", result.stderr)
        found, wanted = 0, 0
        for row, photo in zip(outfits[:4], photos):
            mine = [g for g in garments if g["image"] == photo]
            self.assertGreaterEqual(len(mine), 2, photo)
            for g in mine:
                self.assertEqual(len(g["box"]), 4)
                self.assertLessEqual(len(g["matches"]), 5)
                for match in g["matches"]:
                    self.assertEqual(self.truth[match["product_id"]]["slot"], g["slot"])
                    self.assertEqual(self.catalog[match["product_id"]]["in_stock"], "1")
            for pid in row["product_ids"].split():
                if self.catalog[pid]["in_stock"] != "1":
                    continue
                wanted += 1
                found += any(m["product_id"] == pid for g in mine for m in g["matches"])
        self.assertGreaterEqual(found / wanted, 0.75, (found, wanted))
        self.assertEqual(len(texts), 1)
        dresses = sum(self.truth[m["product_id"]]["class"] == "Dress" for m in texts[0]["matches"])
        self.assertGreaterEqual(dresses, 4, texts[0])

        csv_result = lt.run(["query", "--run", self.run_dir, "--model", os.path.join(models, "clip"), "--segmenter",
                             os.path.join(models, "unet"), "--image", photos[0], "--format", "csv"], check=0)
        rows = list(csv.DictReader(csv_result.stdout.splitlines()))
        self.assertEqual(list(rows[0].keys()),
                         ["query", "slot", "box_x", "box_y", "box_w", "box_h", "rank", "product_id", "score", "note"])

    def test_categories_without_a_slot_are_inferred_or_warned_and_counted(self):
        # Only two of the demo's categories mapped. The others take the slot the segmenter saw
        # their products wear in their outfit photos (logged), else the slot the text model reads
        # their name as (logged), checked against the demo's own map; one described with words
        # the text model does not know (--category-names) is named in a warning, with its count.
        with open(os.path.join(lt.ARGS.source, "config", "demo.ini")) as f:
            spec = next(line.split("=", 1)[1] for line in f if line.startswith("category-slots"))
        truth = dict(entry.strip().rsplit("=", 1) for entry in spec.strip().split(","))
        clip = os.path.join(lt.ARGS.source, "models", "demo", "clip")
        result = lt.run(["recs", "--run", self.run_dir, "--category-slots", "Dress=dress,Bag=bag",
                         "--category-names", "Sneaker=xyzzy plugh", "--model", clip, "--force"], mpi=True, check=0)
        report = lt.summary(result)
        unmapped = {r["category"] for r in self.catalog.values()} - {"Dress", "Bag"}
        inferred = dict(re.findall(r"category ([^:]+): slot (\w+) inferred from the segmenter", result.stderr))
        from_text = dict(re.findall(r"category ([^:]+): slot (\w+) inferred from the text model", result.stderr))
        self.assertEqual(report["categories_slot_inferred"], len(inferred))
        self.assertEqual(report["categories_slot_from_text"], len(from_text))
        self.assertEqual(report["categories_slot_inferred"] + report["categories_slot_from_text"] +
                         report["categories_without_slot"], len(unmapped))
        # Measured 2026-11-30: Coat, Pullover and Shirt inferred (4, 4 and 7 votes, all "top"),
        # each the demo map's slot; the demo segments its 33 outfit photos only, so the other
        # categories have fewer than 3 votes. The text model then reads T-shirt/top, Trouser,
        # Sandal and Ankle boot; only the slots the segmenter found are offered.
        self.assertGreaterEqual(len(inferred), 3, result.stderr)
        self.assertGreaterEqual(len(from_text), 3, result.stderr)
        for category, slot in {**inferred, **from_text}.items():
            self.assertEqual(slot, truth[category], category)
        self.assertNotIn("Sneaker", inferred)
        self.assertNotIn("Sneaker", from_text)
        with h5py.File(os.path.join(self.run_dir, "recs", "recs.h5"), "r") as f:
            slots = dict(zip(f["products/category"].asstr()[:], f["products/slot"].asstr()[:]))
        for category, slot in {**inferred, **from_text}.items():
            self.assertEqual(slots[category], slot)
        left = unmapped - set(inferred) - set(from_text)
        self.assertIn("Sneaker", left)
        self.assertEqual(report["products_without_slot"],
                         sum(1 for r in self.catalog.values() if r["category"] in left))
        self.assertIn("no garment slot", result.stderr)
        self.assertIn("Sneaker (", result.stderr)
        # Without a segmenter and without the bundle nothing can be inferred: every unmapped
        # category is warned about, and the log says how the text model could help.
        plain = self.path("plain")
        pipeline(self.demo, plain, segment=False)
        result = lt.run(["recs", "--run", plain, "--category-slots", "Dress=dress,Bag=bag"], mpi=True, check=0)
        report = lt.summary(result)
        self.assertEqual((report["categories_slot_inferred"], report["categories_slot_from_text"],
                          report["categories_without_slot"]), (0, 0, len(unmapped)))
        self.assertIn("have no garment slot", result.stderr)
        self.assertIn("pass --model or --models-root to let it infer their slots", result.stderr)
        # With the bundle, the text model infers (every slot offered): each category it can read
        # gets the slot its words say; Coat may read as outerwear, which the demo maps to top.
        result = lt.run(["recs", "--run", plain, "--category-slots", "Dress=dress,Bag=bag", "--model", clip, "--force"],
                        mpi=True, check=0)
        report = lt.summary(result)
        from_text = dict(re.findall(r"category ([^:]+): slot (\w+) inferred from the text model", result.stderr))
        self.assertEqual(report["categories_slot_inferred"], 0)
        self.assertEqual(report["categories_slot_from_text"], len(from_text))
        self.assertEqual(report["categories_slot_from_text"] + report["categories_without_slot"], len(unmapped))
        self.assertGreaterEqual(len(from_text), 5, result.stderr)
        # A category the text model cannot place is logged with why, not given a slot. The demo
        # text tower of Fashion-MNIST alone read Pullover as outerwear 0.899 and top 0.897, a near
        # tie (not taken); the one that has also seen real photos reads it as top (measured
        # 2026-11-30: all eight placed).
        for category in set(unmapped) - set(from_text):
            self.assertIn(f"category {category}: ", result.stderr)
        for category, slot in from_text.items():
            self.assertIn(slot, {truth[category], "outerwear"} if category == "Coat" else {truth[category]},
                          (category, re.findall(r"category .* inferred from the text model.*", result.stderr)))

    def test_every_query_input_gets_an_answer(self):
        self.recs()
        models = os.path.join(lt.ARGS.source, "models", "demo")
        # A photo with no garment (a plain grey picture), an empty text, a 100 KB text, and a text
        # of words the demo text tower does not know: one record each, saying what happened.
        plain = os.path.join(self.run_dir, "plain.png")
        with open(plain, "wb") as f:
            f.write(PLAIN_PNG)
        long_text = "a red dress " * 9000
        result = lt.run(["query", "--run", self.run_dir, "--models-root", models, "--image", plain, "--text", "",
                         "--text", long_text, "--text", "\U0001F457 \u30c9\u30ec\u30b9"], check=1)
        records = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertEqual(len(records), 4, result.stdout)
        photo = records[0]
        self.assertEqual((photo["image"], photo["garments"], photo["warning"]), (plain, 0, "no garment found"))
        self.assertIn("empty text", records[1]["error"])
        self.assertTrue(records[2]["truncated"])
        self.assertIn("cut to the model's context", records[2]["warning"])
        self.assertTrue(records[2]["matches"])
        self.assertIn("no word of this text is known", records[3]["error"])
        for words in ("no garment found", "empty text", "cut to the model's context", "no word of this text"):
            self.assertIn(words, result.stderr)
        # The same in CSV: a row for each, with the reason in `note`.
        result = lt.run(["query", "--run", self.run_dir, "--models-root", models, "--image", plain, "--text", "",
                         "--format", "csv"], check=1)
        rows = list(csv.DictReader(result.stdout.splitlines()))
        self.assertEqual([r["note"] for r in rows], ["no garment found", "rejected: empty text: no word to match"])

    def test_missing_stages_and_damage_are_clear_errors(self):
        shutil.rmtree(os.path.join(self.run_dir, "dedup"))
        result = self.recs(check=1)
        self.assertIn("lookbook dedup", result.stderr)
        result = lt.run(["query", "--run", self.run_dir, "--text", "a dress"], check=1)
        self.assertIn("lookbook recs", result.stderr)
        shutil.rmtree(self.run_dir)
        shutil.copytree(self.base, self.run_dir)
        self.recs()
        path = os.path.join(self.run_dir, "recs", "recs.h5")
        with open(path, "r+b") as f:
            f.seek(os.path.getsize(path) // 2)
            byte = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([byte[0] ^ 0xFF]))
        result = lt.run(["query", "--run", self.run_dir, "--text", "a dress"], check=1)
        self.assertIn("recs.h5", result.stderr)
        self.assertIn("checksum", result.stderr)
        self.assertIn("--substitutes-for", self.recs("--substitutes-for", "some", check=2).stderr)


if __name__ == "__main__":
    lt.main()
