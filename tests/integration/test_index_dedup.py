"""Index and dedup end to end on the demo catalog under mpirun: Python FAISS reads the index
files and finds every image under its id, the planted duplicates are found at the issue's
quality with colour variants left alone, outputs are identical for 1 and 2 ranks, reruns
skip valid work, and a damaged index file is caught by its checksum before FAISS reads it."""
import csv
import glob
import json
import math
import os
import shutil

import faiss
import h5py
import numpy as np
import xxhash

import lookbook_test as lt


class IndexDedup(lt.TempDirTest):
    @classmethod
    def setUpClass(cls):
        import tempfile
        cls._shared = tempfile.TemporaryDirectory(prefix="lookbook-it-dedup-")
        cls.demo = os.path.join(cls._shared.name, "demo")
        cls.base = os.path.join(cls._shared.name, "run")
        lt.run(["demo-catalog", "--out", cls.demo], check=0)
        lt.run(["ingest", "--run", cls.base, "--catalog", os.path.join(cls.demo, "catalog.csv"),
                "--images", os.path.join(cls.demo, "images"), "--shards", "3"], mpi=True, check=0)
        lt.run(["embed", "--run", cls.base, "--model", os.path.join(lt.ARGS.source, "models", "demo", "clip"),
                "--decode-threads", "1"], mpi=True, check=0)

    @classmethod
    def tearDownClass(cls):
        cls._shared.cleanup()

    def setUp(self):
        super().setUp()
        self.run_dir = self.path("run")
        shutil.copytree(self.base, self.run_dir)

    def index(self, *extra, mpi=True, check=0):
        return lt.run(["index", "--run", self.run_dir, *extra], mpi=mpi, check=check)

    def dedup(self, *extra, mpi=True, check=0):
        return lt.run(["dedup", "--run", self.run_dir, *extra], mpi=mpi, check=check)

    def test_python_faiss_reads_the_index_files_and_ids_map_to_rows(self):
        report = lt.summary(self.index())
        self.assertEqual(report["factory"], "Flat")  # auto, for a catalog this small
        with open(os.path.join(self.run_dir, "index", "manifest.json")) as f:
            manifest = json.load(f)
        for output in manifest["outputs"]:
            with open(os.path.join(self.run_dir, "index", output["path"]), "rb") as f:
                self.assertEqual(output["checksum"], "xxh3:" + xxhash.xxh3_64_hexdigest(f.read()))
        total = 0
        for shard in range(3):
            index = faiss.read_index(os.path.join(self.run_dir, "index", f"shard-{shard:05d}.faiss"))
            with h5py.File(os.path.join(self.run_dir, "embed", f"shard-{shard:05d}.h5"), "r") as f:
                ok = np.flatnonzero(f["images/status"][:] == 0)
                x = f["images/embedding"][:][ok].astype(np.float32)
            self.assertEqual(index.ntotal, len(ok))
            total += index.ntotal
            scores, ids = index.search(x, 5)
            # every image finds itself (first, or tied with a byte-identical copy)
            for row, found in zip(ok, ids):
                self.assertIn((shard << 32) + row, found.tolist())
            np.testing.assert_allclose(scores[:, 0], 1.0, atol=1e-4)
        self.assertEqual(total, report["vectors"])
        trained = faiss.read_index(os.path.join(self.run_dir, "index", "trained.faiss"))
        self.assertEqual(trained.ntotal, 0)
        self.assertTrue(trained.is_trained)

    def test_planted_duplicates_found_colour_variants_not(self):
        self.index()
        report = lt.summary(self.dedup())
        truth = os.path.join(self.demo, "truth")
        result = lt.run(["eval", "dedup", "--run", self.run_dir, "--truth", os.path.join(truth, "duplicates.csv"),
                         "--negatives", os.path.join(truth, "colour_variants.csv")], check=0)
        metrics = json.loads(result.stdout.splitlines()[-1])
        # The verified rule gives 1.000 on this catalog (docs/performance.md#near-duplicates); the gate
        # sits just below, and every truth pair is scored (none dropped because an image was missing).
        self.assertGreaterEqual(metrics["f1"], 0.99, metrics)
        self.assertGreaterEqual(metrics["precision"], 0.99, metrics)
        self.assertEqual(metrics["truth_rows_not_in_run"], 0, metrics)
        self.assertEqual(metrics["truth_rows_not_embedded"], 0, metrics)
        self.assertEqual(metrics["negatives_flagged"], 0)
        self.assertEqual(metrics["sweep_signal"], "aligned")
        self.assertGreater(len(metrics["sweep"]), 10)
        self.assertEqual(report["verify"], "on")
        # Verification reads embed's align thumbnails, and the cascade's gates decide some pairs.
        self.assertGreater(report["thumbs_read"], 0)
        with open(os.path.join(self.run_dir, "dedup", "manifest.json")) as f:
            counts = json.load(f)["counts"]
        self.assertGreater(counts.get("verified_by_alignment", 0), 0, counts)
        self.assertEqual(sum(v for k, v in counts.items() if k.startswith("verified_by_")), counts["candidates"])
        self.assertTrue(os.path.exists(os.path.join(self.run_dir, "eval", "dedup.json")))

        with open(os.path.join(self.run_dir, "dedup", "pairs.csv")) as f:
            rows = list(csv.DictReader(f))
        self.assertEqual(list(rows[0].keys()),
                         ["image_a", "image_b", "product_a", "product_b", "cosine", "hamming", "kind",
                          "decided_by"])
        self.assertEqual(len(rows), report["pairs"])
        for row in rows:
            self.assertEqual(row["kind"], "same_product" if row["product_a"] == row["product_b"] else "cross_product")
            self.assertEqual(row["decided_by"], "rule")  # no reviewer decisions given
            self.assertTrue(row["image_a"].startswith(row["product_a"] + "/"))
            self.assertTrue(0 <= int(row["hamming"]) <= 64)
        with open(os.path.join(self.run_dir, "dedup", "clusters.csv")) as f:
            clusters = list(csv.DictReader(f))
        representatives = {}
        for row in clusters:
            representatives.setdefault(row["cluster_id"], 0)
            representatives[row["cluster_id"]] += int(row["is_representative"])
        self.assertEqual(set(representatives.values()), {1}, "one representative per cluster")
        in_pairs = {r["image_a"] for r in rows} | {r["image_b"] for r in rows}
        self.assertEqual(in_pairs, {r["image"] for r in clusters})
        with h5py.File(os.path.join(self.run_dir, "dedup", "dedup.h5"), "r") as f:
            self.assertEqual(len(f["pairs/image_a"]), len(rows))
            self.assertGreaterEqual(len(f["candidates/image_a"]), len(rows))
            self.assertEqual(f.attrs["rule_verify"], 1)
            # every candidate was verified; every pair passes the rule on its aligned correlation
            self.assertFalse(np.isnan(f["candidates/aligned"][:]).any())
            aligned, hamming = f["pairs/aligned"][:], f["pairs/hamming"][:]
            self.assertTrue(((aligned >= f.attrs["rule_aligned"]) |
                             ((aligned >= f.attrs["rule_aligned_phash"]) & (hamming <= f.attrs["rule_max_hamming"]))).all())

    def test_truth_rows_that_cannot_be_scored_are_counted_not_dropped(self):
        # The planted fault for the gate above (truth_rows_not_embedded == 0): an image of a truth
        # pair that does not decode, and a truth row naming an image the catalog does not have.
        # eval scores the pairs it can and counts the others, instead of a smaller truth.
        demo = self.path("broken-demo")
        shutil.copytree(self.demo, demo)
        truth = lt.read_csv(os.path.join(demo, "truth", "duplicates.csv"))
        broken = os.path.join(demo, "images", truth[0]["image_a"])
        with open(broken, "rb") as f:
            head = f.read(200)
        with open(broken, "wb") as f:
            f.write(head)  # a JPEG cut short: embed rejects it
        planted = self.path("truth.csv")
        with open(planted, "w") as f:
            f.write("image_a,image_b\n")
            for row in truth:
                f.write(f"{row['image_a']},{row['image_b']}\n")
            f.write(f"products/nowhere.jpg,{truth[1]['image_b']}\n")
        run = self.path("broken-run")
        lt.run(["ingest", "--run", run, "--catalog", os.path.join(demo, "catalog.csv"), "--images",
                os.path.join(demo, "images"), "--shards", "3"], mpi=True, check=0)
        embed = lt.summary(lt.run(["embed", "--run", run, "--model", os.path.join(lt.ARGS.source, "models", "demo",
                                                                                  "clip"), "--decode-threads", "1"],
                                  mpi=True, check=0))
        self.assertEqual(embed["images_rejected"], 1)
        lt.run(["index", "--run", run], mpi=True, check=0)
        lt.run(["dedup", "--run", run], mpi=True, check=0)
        metrics = json.loads(lt.run(["eval", "dedup", "--run", run, "--truth", planted], check=0).stdout.splitlines()[-1])
        self.assertEqual(metrics["truth_rows_not_embedded"], 1, metrics)
        self.assertEqual(metrics["truth_rows_not_in_run"], 1, metrics)
        self.assertGreater(metrics["truth_pairs"], 0)

    def test_without_verification_the_cosine_rule_decides(self):
        self.index()
        report = lt.summary(self.dedup("--verify", "off"))
        self.assertEqual(report["verify"], "off")
        self.assertNotIn("verify: decode + align (slowest rank)", report["steps"])
        with h5py.File(os.path.join(self.run_dir, "dedup", "dedup.h5"), "r") as f:
            self.assertEqual(f.attrs["rule_verify"], 0)
            self.assertTrue(np.isnan(f["candidates/aligned"][:]).all())
            cosine, hamming = f["pairs/cosine"][:], f["pairs/hamming"][:]
            self.assertTrue(((cosine >= f.attrs["rule_cosine"]) |
                             ((cosine >= f.attrs["rule_phash_cosine"]) & (hamming <= f.attrs["rule_max_hamming"]))).all())
        truth = os.path.join(self.demo, "truth")
        metrics = json.loads(lt.run(["eval", "dedup", "--run", self.run_dir, "--truth", os.path.join(truth, "duplicates.csv")],
                                    check=0).stdout.splitlines()[-1])
        self.assertEqual(metrics["sweep_signal"], "cosine")
        self.assertEqual(self.dedup("--verify", "maybe", check=2).returncode, 2)

    def test_dedup_never_opens_an_image_file(self):
        # Verification works on what embed stored (the align thumbnails), so the whole image root
        # may be gone after embed: same pairs, same clusters, same candidates' scores.
        self.index()
        self.dedup()
        before = {}
        for name in ("pairs.csv", "clusters.csv"):
            with open(os.path.join(self.run_dir, "dedup", name), "rb") as f:
                before[name] = f.read()
        with h5py.File(os.path.join(self.run_dir, "dedup", "dedup.h5"), "r") as f:
            aligned = f["candidates/aligned"][:]
        images = os.path.join(self.demo, "images")
        os.rename(images, images + ".away")
        try:
            report = lt.summary(self.dedup("--force"))
        finally:
            os.rename(images + ".away", images)
        self.assertEqual(report["status"], "ok")
        self.assertGreater(report["thumbs_read"], 0)
        for name, data in before.items():
            with open(os.path.join(self.run_dir, "dedup", name), "rb") as f:
                self.assertEqual(f.read(), data, name)
        with h5py.File(os.path.join(self.run_dir, "dedup", "dedup.h5"), "r") as f:
            self.assertTrue(np.array_equal(f["candidates/aligned"][:], aligned))

    def test_one_and_two_ranks_give_the_same_bytes_and_reruns_skip(self):
        # Two ranks hold the vectors of their own shards only and ask each other for the exact
        # scores across ranks (dist/remote_scores.h); the tables and dedup.h5 are one rank's bytes.
        self.index()
        alone = lt.summary(self.dedup(mpi=False))
        self.assertEqual(alone["score_bytes_sent"], 0)
        one = {}
        for name in ("pairs.csv", "clusters.csv", "dedup.h5"):
            with open(os.path.join(self.run_dir, "dedup", name), "rb") as f:
                one[name] = f.read()
        self.assertEqual(lt.summary(self.dedup())["status"], "skipped")
        # Small batches: the ranks go through more search rounds, in step, with uneven shares
        # (3 shards on 2 ranks).
        for extra in (["--force"], ["--force", "--query-batch", "7"]):
            two = lt.summary(self.dedup(*extra))
            self.assertGreater(two["score_bytes_sent"], 0, extra)
            for name, data in one.items():
                with open(os.path.join(self.run_dir, "dedup", name), "rb") as f:
                    self.assertEqual(f.read(), data, (name, extra))
        self.dedup("--force")
        self.assertEqual(lt.summary(self.index())["status"], "skipped")

    def image_facts(self):
        """image key -> [catalog row, pixels, in stock, image id, content pixels, file bytes], from the
        ingest shards and the embed shards (content: pixels x the share of the align thumbnail
        that is not near white, src/dedup/clusters.h)."""
        facts = {}
        for path in sorted(glob.glob(os.path.join(self.run_dir, "embed", "shard-*.h5"))):
            shard = int(os.path.basename(path)[6:11])
            with h5py.File(path, "r") as f:
                keys = f["images/key"].asstr()[:]
                pixels = f["images/width"][:].astype(np.int64) * f["images/height"][:]
                share = (f["images/align_thumb"][:].min(axis=3) < 240).mean(axis=(1, 2))
            for row, (key, size) in enumerate(zip(keys, pixels)):
                content = math.floor(float(size) * float(np.float32(share[row])) + 0.5)  # llround
                facts[key] = [None, int(size), None, (shard << 32) + row, content, None]
        for path in glob.glob(os.path.join(self.run_dir, "ingest", "shard-*.csv")):
            with open(path, newline="") as f:
                for row in csv.DictReader(f):
                    key = row["product_id"] + "/" + row["column"]
                    facts[key][0] = int(row["row"])
                    facts[key][2] = row["in_stock"] == "1"
                    facts[key][5] = int(row["size"])
        return facts

    @staticmethod
    def original_of(members, facts):
        """The original policy's choice, written out again from its documented rule."""
        images = [m["image"] for m in members]
        most = max(facts[i][4] for i in images)
        enough = [i for i in images if facts[i][4] >= 0.9 * most]
        share = {i: facts[i][4] / facts[i][1] for i in enough}
        best = max(share.values())
        candidates = [i for i in enough if share[i] >= best - 0.03]
        return min(candidates, key=lambda i: (-facts[i][5], facts[i][0], facts[i][3]))

    def test_hash_candidates_are_each_images_nearest_hashes(self):
        # --hash-candidates K: of an image's neighbours within --hash-radius bits, the K nearest
        # (fewest bits, then image id) are kept; a pair is a candidate when either image keeps
        # the other. The same rule, written again from the stored hashes, gives the same count.
        self.index()
        uncapped = lt.summary(self.dedup("--hash-candidates", "1024", "--force"))
        capped = lt.summary(self.dedup("--hash-candidates", "1", "--force"))
        self.assertEqual(uncapped["hash_neighbours_dropped"], 0)
        self.assertGreater(capped["hash_neighbours_dropped"], 0, "the demo's plain renders share hashes")
        self.assertLess(capped["hash_pairs"], uncapped["hash_pairs"])
        with h5py.File(os.path.join(self.run_dir, "embed", "catalog.h5"), "r") as f:
            ok = f["images/status"][:] == 0
            shards = f["images/shard"][:]
            codes = f["images/phash"][:]
        rows, ids = {}, []
        for shard in shards:
            ids.append((int(shard) << 32) + rows.get(int(shard), 0))
            rows[int(shard)] = rows.get(int(shard), 0) + 1
        ids = np.array(ids)[ok]
        bits = np.unpackbits(codes[ok], axis=1)
        distance = (bits[:, None, :] != bits[None, :, :]).sum(axis=2)
        order = np.argsort(ids)
        kept, within = set(), 0
        for i in range(len(ids)):
            near = sorted((int(distance[i, j]), int(ids[j])) for j in order if j != i and distance[i, j] <= 4)
            within += len(near)
            for _, other in near[:1]:
                kept.add((min(int(ids[i]), other), max(int(ids[i]), other)))
        self.assertEqual(capped["hash_pairs"], len(kept))
        with_neighbours = sum(1 for i in range(len(ids)) if (distance[i] <= 4).sum() > 1)  # itself counts once
        self.assertEqual(capped["hash_neighbours_dropped"], within - with_neighbours)
        self.assertEqual(uncapped["hash_pairs"], within // 2)

    def test_each_images_nearest_neighbour_is_a_candidate_down_to_the_nearest_floor(self):
        # --nearest-floor: an image's nearest neighbour of another product is a candidate below
        # --candidate-floor too (a relisted copy whose crop or frame moved its embedding). With the
        # candidate floor out of reach, the candidates are exactly those nearest neighbours,
        # computed again here from the stored embeddings (Flat index: exact), at most one an image.
        self.index()
        def candidates(*extra):
            report = lt.summary(self.dedup("--hash-radius", "-1", "--candidate-floor", "0.9999", *extra, "--force"))
            with h5py.File(os.path.join(self.run_dir, "dedup", "dedup.h5"), "r") as f:
                pairs = {(int(a), int(b)) for a, b in zip(f["candidates/image_a"][:], f["candidates/image_b"][:])}
            self.assertEqual(report["candidates"], len(pairs))
            return pairs
        off = candidates("--nearest-floor", "1")
        on = candidates("--nearest-floor", "0.5")
        self.assertTrue(off <= on)
        with h5py.File(os.path.join(self.run_dir, "embed", "catalog.h5"), "r") as f:
            ok = f["images/status"][:] == 0
            shards = f["images/shard"][:]
            vectors = f["images/embedding"][:]
            products = f["images/product_id"].asstr()[:]
        rows, ids = {}, []
        for shard in shards:
            ids.append((int(shard) << 32) + rows.get(int(shard), 0))
            rows[int(shard)] = rows.get(int(shard), 0) + 1
        ids, vectors, products = np.array(ids)[ok], vectors[ok], products[ok]
        cosine = vectors @ vectors.T
        cosine[products[:, None] == products[None, :]] = -2  # itself and its product's other images
        expected, ambiguous = set(), set()
        for i in range(len(ids)):
            order = np.argsort(-cosine[i])
            j = int(order[0])
            pair = (min(int(ids[i]), int(ids[j])), max(int(ids[i]), int(ids[j])))
            # A tie or a score at the floor could go either way in float32: not asserted.
            if cosine[i, j] - cosine[i, order[1]] < 1e-5 or abs(cosine[i, j] - 0.5) < 1e-4:
                ambiguous.add(int(ids[i]))
            elif cosine[i, j] >= 0.5:
                expected.add(pair)
        self.assertGreater(len(expected), len(ids) // 4)
        self.assertTrue(expected <= on, sorted(expected - on)[:5])
        for a, b in on - off - expected:
            self.assertTrue(a in ambiguous or b in ambiguous, (a, b))
        self.assertLessEqual(len(on - off), len(ids))
        # With verification off the rule needs cosine 0.965 or more: the nearest floor is not used.
        def unverified(nearest):
            lt.summary(self.dedup("--verify", "off", "--candidate-floor", "0.96", "--nearest-floor", nearest, "--force"))
            with h5py.File(os.path.join(self.run_dir, "dedup", "dedup.h5"), "r") as f:
                return {(int(a), int(b)) for a, b in zip(f["candidates/image_a"][:], f["candidates/image_b"][:])}
        self.assertEqual(unverified("0.5"), unverified("1"))

    def test_keep_policies(self):
        # Each policy keeps exactly the image its rule names, in every cluster; the policies
        # disagree on this catalog, so a policy that ignored its rule would be caught.
        self.index()
        facts = self.image_facts()
        order = {"first": lambda f: (f[0], f[3]),
                 "largest": lambda f: (-f[1], f[0], f[3]),
                 "in-stock": lambda f: (0 if f[2] else 1, f[0], f[3]),
                 "original": None}
        kept_by_policy = {}
        for policy, key in order.items():
            self.dedup("--keep", policy, "--force")
            with open(os.path.join(self.run_dir, "dedup", "clusters.csv")) as f:
                clusters = {}
                for row in csv.DictReader(f):
                    clusters.setdefault(row["cluster_id"], []).append(row)
            self.assertGreater(len(clusters), 10)
            kept = set()
            for members in clusters.values():
                representatives = [m["image"] for m in members if m["is_representative"] == "1"]
                self.assertEqual(len(representatives), 1, members)
                expected = (self.original_of(members, facts) if policy == "original" else
                            min((m["image"] for m in members), key=lambda image: key(facts[image])))
                self.assertEqual(representatives[0], expected, (policy, members))
                kept.add(representatives[0])
            kept_by_policy[policy] = kept
        self.assertNotEqual(kept_by_policy["first"], kept_by_policy["largest"])
        self.assertNotEqual(kept_by_policy["first"], kept_by_policy["in-stock"])
        self.assertNotEqual(kept_by_policy["original"], kept_by_policy["largest"])
        result = self.dedup("--keep", "newest", check=2)
        self.assertIn("--keep", result.stderr)

    def test_damaged_index_is_caught_by_its_checksum(self):
        self.index()
        path = os.path.join(self.run_dir, "index", "shard-00001.faiss")
        with open(path, "rb") as f:
            data = bytearray(f.read())
        data[len(data) // 2] ^= 0xFF
        with open(path, "wb") as f:
            f.write(bytes(data))
        result = self.dedup(check=1)
        self.assertIn("shard-00001.faiss", result.stderr)
        self.assertIn("checksum", result.stderr)
        self.assertEqual(lt.summary(self.index())["status"], "ok")  # the rerun sees the damage and redoes it
        self.dedup()

    def test_missing_stages_and_bad_factories_are_clear_errors(self):
        result = self.dedup(check=1)
        self.assertIn("lookbook index", result.stderr)
        result = self.index("--factory", "IVF4096,Flat", check=1)  # 480 vectors cannot train 4096 lists
        self.assertIn("IVF4096,Flat", result.stderr)
        self.assertFalse(os.path.exists(os.path.join(self.run_dir, "index", "manifest.json")))


if __name__ == "__main__":
    lt.main()
