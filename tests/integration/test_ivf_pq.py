"""The production index path on the demo catalog: an IVF-PQ index (the kind `--factory auto`
picks above 50,000 vectors) trained on a sample gathered from every rank and broadcast, dedup
over it with approximate search, and recs' filtered IVF search, which searches again over more
lists when the filter leaves a query short. One rank and two ranks must publish the same bytes,
and dedup and recs must keep their quality."""
import csv
import json
import os
import shutil
import tempfile
import unittest

import faiss

import lookbook_test as lt

FACTORY = "IVF32,PQ16x4np"
TABLES = ["index/trained.faiss", "dedup/pairs.csv", "dedup/clusters.csv", "dedup/dedup.h5", "recs/substitutes.csv",
          "recs/outfits.csv", "recs/recs.h5"]


read_csv = lt.read_csv


class IvfPq(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="lookbook-it-ivf-")
        tmp = cls._tmp.name
        cls.demo = os.path.join(tmp, "demo")
        models = os.path.join(lt.ARGS.source, "models", "demo")
        cls.config = os.path.join(lt.ARGS.source, "config", "demo.ini")
        lt.run(["demo-catalog", "--out", cls.demo], check=0)
        base = os.path.join(tmp, "base")
        lt.run(["ingest", "--run", base, "--catalog", os.path.join(cls.demo, "catalog.csv"),
                "--images", os.path.join(cls.demo, "images"), "--shards", "3"], check=0)
        lt.run(["embed", "--run", base, "--model", os.path.join(models, "clip"), "--segmenter", os.path.join(models, "unet"),
                "--segment-images", "image_3", "--decode-threads", "1"], mpi=True, check=0)
        cls.runs, cls.summaries = {}, {}
        for ranks in (1, 2):
            run = os.path.join(tmp, f"ranks-{ranks}")
            shutil.copytree(base, run)
            mpi = ranks == 2
            cls.summaries[ranks] = {
                "index": lt.summary(lt.run(["index", "--run", run, "--factory", FACTORY], mpi=mpi, check=0)),
                "dedup": lt.summary(lt.run(["dedup", "--run", run, "--nprobe", "4"], mpi=mpi, check=0)),
                "recs": lt.summary(lt.run(["recs", "--config", cls.config, "--run", run, "--nprobe", "2"], mpi=mpi, check=0)),
            }
            cls.runs[ranks] = run

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def test_index_is_ivf_pq_trained_once(self):
        report = self.summaries[2]["index"]
        self.assertEqual(report["factory"], FACTORY)
        self.assertEqual(report["training_vectors"], report["vectors"])  # the whole demo is the sample
        trained = faiss.read_index(os.path.join(self.runs[2], "index", "trained.faiss"))
        ivf = faiss.extract_index_ivf(trained)
        self.assertEqual(ivf.nlist, 32)
        self.assertTrue(trained.is_trained)
        self.assertEqual(trained.ntotal, 0)
        total = 0
        for shard in range(3):
            index = faiss.read_index(os.path.join(self.runs[2], "index", f"shard-{shard:05d}.faiss"))
            self.assertIsInstance(faiss.downcast_index(faiss.extract_index_ivf(index)), faiss.IndexIVFPQ)
            total += index.ntotal
        self.assertEqual(total, report["vectors"])

    def test_one_and_two_ranks_publish_the_same_bytes(self):
        for name in TABLES:
            with open(os.path.join(self.runs[1], name), "rb") as a, open(os.path.join(self.runs[2], name), "rb") as b:
                self.assertEqual(a.read(), b.read(), name)

    def test_dedup_and_recs_keep_their_quality(self):
        truth = os.path.join(self.demo, "truth")
        run = self.runs[2]
        dedup = json.loads(lt.run(["eval", "dedup", "--run", run, "--truth", os.path.join(truth, "duplicates.csv"),
                                   "--negatives", os.path.join(truth, "colour_variants.csv")], check=0).stdout.splitlines()[-1])
        self.assertGreaterEqual(dedup["f1"], 0.95, dedup)
        self.assertEqual(dedup["negatives_flagged"], 0)
        recs = json.loads(lt.run(["eval", "recs", "--run", run, "--truth", os.path.join(truth, "outfits.csv"),
                                  "--products", os.path.join(truth, "products.csv")], check=0).stdout.splitlines()[-1])
        self.assertGreaterEqual(recs["outfit_recall_at_k"], 0.8, recs)
        # The filtered search is never short while k products qualify, even from 2 of 32 lists.
        catalog = {row["product_id"]: row for row in read_csv(os.path.join(self.demo, "catalog.csv"))}
        mates = {}
        for row in read_csv(os.path.join(run, "dedup", "clusters.csv")):
            mates.setdefault(row["cluster_id"], set()).add(row["product_id"])
        excluded = {}
        for products in mates.values():
            for p in products:
                excluded.setdefault(p, set()).update(products)
        lists = {}
        for row in read_csv(os.path.join(run, "recs", "substitutes.csv")):
            lists.setdefault(row["product_id"], []).append(row)
        for product, mine in catalog.items():
            qualifying = [p for p, r in catalog.items() if r["in_stock"] == "1" and r["category"] == mine["category"]
                          and p != product and p not in excluded.get(product, set())]
            self.assertEqual(len(lists.get(product, [])), min(10, len(qualifying)), product)


if __name__ == "__main__":
    lt.main()
