"""The embed stage, the real binary under mpirun with 2 ranks, on a shard of hostile images:
every image reference ends with a status and a reason, h5py reads every dataset of the shard
files and of catalog.h5 (virtual datasets), reruns skip valid shards and redo damaged ones."""
import json
import os
import random
import shutil
import stat
import struct
import subprocess
import zlib

import h5py
import numpy as np
import xxhash

import lookbook_test as lt

SHARDS = 3


def png(width, height, color_type, bit_depth, rows):
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, bit_depth, color_type, 0, 0, 0)
    data = zlib.compress(b"".join(b"\x00" + row for row in rows))
    return b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) + chunk(b"IDAT", data) + chunk(b"IEND", b"")


def with_exif_orientation(jpeg, orientation):
    tiff = b"MM\x00\x2a\x00\x00\x00\x08" + b"\x00\x01" + b"\x01\x12\x00\x03\x00\x00\x00\x01" + \
        bytes([0, orientation, 0, 0]) + b"\x00\x00\x00\x00"
    payload = b"Exif\x00\x00" + tiff
    return jpeg[:2] + b"\xff\xe1" + struct.pack(">H", len(payload) + 2) + payload + jpeg[2:]


# product -> (file, expected status name)
EXPECTED = {
    "p01": ("good1.jpg", "ok"),
    "p02": ("truncated.jpg", "corrupt"),
    "p03": ("flipped.jpg", "corrupt"),
    "p04": ("noise.jpg", "unsupported_format"),
    "p05": ("gif.jpg", "unsupported_format"),
    "p06": ("page.jpg", "unsupported_format"),
    "p07": ("bomb.png", "too_many_pixels"),
    "p08": ("rgba.png", "ok"),
    "p09": ("gray16.png", "ok"),
    "p10": ("rotated.jpg", "ok"),
    "p11": ("padded.jpg", "file_too_large"),
    "p12": ("vanished.jpg", "missing"),
    "p13": ("header_only.jpg", "corrupt"),
    "p14": ("good2.jpg", "ok"),
    "p15": ("outfit.jpg", "ok"),
    "p16": ("upright.jpg", "ok"),      # the non-square crop turned 90 degrees in the file itself
    "p17": ("unrotated.jpg", "ok"),    # the same crop without EXIF
    "p18": ("fifo.jpg", "unreadable"),   # a FIFO put where the image was after ingest
    "p19": ("folder.jpg", "unreadable"),  # a folder put where the image was after ingest
}


def jpegtran(data, *args):
    """Lossless JPEG transforms (libjpeg-turbo-progs): crop, rotate."""
    return subprocess.run(["jpegtran", *args], input=data, capture_output=True, check=True).stdout


class HostileShard(lt.TempDirTest):
    def setUp(self):
        super().setUp()
        demo = self.path("demo")
        lt.run(["demo-catalog", "--out", demo, "--items", "20"], check=0)
        products = sorted(os.listdir(os.path.join(demo, "images", "products")))
        outfits = sorted(os.listdir(os.path.join(demo, "images", "outfits")))
        read = lambda *p: open(os.path.join(demo, "images", *p), "rb").read()
        good1, good2 = read("products", products[0]), read("products", products[1])
        rng = random.Random(5)
        flipped = bytearray(good1)
        for _ in range(120):
            i = rng.randrange(len(flipped) // 3, len(flipped) - 10)
            flipped[i] ^= 1 << rng.randrange(8)
        files = {
            "good1.jpg": good1,
            "good2.jpg": good2,
            "outfit.jpg": read("outfits", outfits[0]),
            "truncated.jpg": good1[: len(good1) * 6 // 10],
            "flipped.jpg": bytes(flipped),
            "noise.jpg": bytes(rng.randrange(256) for _ in range(4000)),
            "gif.jpg": b"GIF89a\x01\x00\x01\x00\x80\x00\x00" + b"\x00" * 30,
            "page.jpg": b"<html><body>404 not found</body></html>",
            "bomb.png": png(30000, 30000, 0, 8, [b"\x00" * 16]),
            "rgba.png": png(16, 16, 6, 8, [bytes([255, 0, 0, 128] * 16)] * 16),
            "gray16.png": png(16, 16, 0, 16, [b"\x80\x00" * 16] * 16),
            # A non-square crop (224 x 112, whole MCUs) with EXIF orientation 6: its stored and upright
            # sizes differ, so applying the rotation or not changes what the model sees.
            "rotated.jpg": with_exif_orientation(jpegtran(good2, "-crop", "224x112+0+0"), 6),
            "upright.jpg": jpegtran(jpegtran(good2, "-crop", "224x112+0+0"), "-rotate", "90"),
            "unrotated.jpg": jpegtran(good2, "-crop", "224x112+0+0"),
            "fifo.jpg": good1,
            "folder.jpg": good1,
            "padded.jpg": good1 + b"\x00" * 300000,
            "vanished.jpg": good2,
            "header_only.jpg": good1[:100],
        }
        images = self.path("images")
        os.makedirs(images)
        for name, data in files.items():
            with open(os.path.join(images, name), "wb") as f:
                f.write(data)
        with open(self.path("catalog.csv"), "w") as f:
            f.write("product_id,image_1,category,in_stock,title\n")
            for product, (name, _) in sorted(EXPECTED.items()):
                f.write(f"{product},{name},Dress,1,{name}\n")
        self.run_dir = self.path("run")
        stats = lt.summary(lt.run(["ingest", "--catalog", self.path("catalog.csv"), "--images", images,
                                   "--run", self.run_dir, "--shards", SHARDS], check=0))
        self.assertEqual(stats["rows_ok"], len(EXPECTED))
        os.remove(os.path.join(images, "vanished.jpg"))  # gone between ingest and embed
        # Not regular files any more: a FIFO must not block a rank in open(), a folder not be read.
        os.remove(os.path.join(images, "fifo.jpg"))
        os.mkfifo(os.path.join(images, "fifo.jpg"))
        os.remove(os.path.join(images, "folder.jpg"))
        os.mkdir(os.path.join(images, "folder.jpg"))
        self.bundle = lt.make_bundle(self.path("bundle"))
        self.files = files

    def embed(self, *extra, mpi=True):
        # Half of this catalog is hostile on purpose: above the default --max-reject-rate.
        return lt.summary(lt.run(["embed", "--run", self.run_dir, "--model", self.bundle, "--batch-size", 4,
                                  "--max-image-bytes", 200000, "--max-reject-rate", 1, *extra], mpi=mpi, check=0))

    def test_too_many_rejects_fail_the_stage_and_publish_nothing(self):
        result = lt.run(["embed", "--run", self.run_dir, "--model", self.bundle, "--batch-size", 4,
                         "--max-image-bytes", 200000, "--max-reject-rate", "0.2"], mpi=True, check=1)
        self.assertRegex(result.stderr, r"\d+ of \d+ images were rejected \(.*corrupt.*\), more than --max-reject-rate 0.2")
        self.assertFalse(os.path.exists(os.path.join(self.run_dir, "embed", "manifest.json")))
        self.assertFalse(os.path.exists(os.path.join(self.run_dir, "_SUCCESS")))
        # Every image missing (a wrong image root): the default rate stops it too.
        shutil.move(self.path("images"), self.path("images.away"))
        try:
            result = lt.run(["embed", "--run", self.run_dir, "--model", self.bundle], mpi=True, check=1)
        finally:
            shutil.move(self.path("images.away"), self.path("images"))
        self.assertIn(f"{len(EXPECTED)} of {len(EXPECTED)} images were rejected (missing {len(EXPECTED)})", result.stderr)

    def read_catalog(self):
        with h5py.File(os.path.join(self.run_dir, "embed", "catalog.h5"), "r") as f:
            images = f["images"]
            return {name: (images[name].asstr()[:] if images[name].dtype == object else images[name][:])
                    for name in images}

    def test_every_image_has_a_status_and_a_reason(self):
        stats = self.embed()
        self.assertEqual(stats["images_in"], len(EXPECTED))
        self.assertEqual(stats["images_in"], stats["images_ok"] + stats["images_rejected"])
        self.assertEqual(stats["shards_embedded"], SHARDS)
        self.assertIn(stats["blas_core"], ["Prescott", "Haswell", "SkylakeX", "Zen", "Sandybridge", "Cooperlake",
                                           "Sapphirerapids"])
        rows = self.read_catalog()
        self.assertEqual(len(rows["key"]), len(EXPECTED))
        names = {0: "ok", 1: "missing", 2: "unreadable", 3: "empty_file", 4: "file_too_large",
                 5: "unsupported_format", 6: "too_many_pixels", 7: "corrupt"}
        for i, key in enumerate(rows["key"]):
            product = key.split("/")[0]
            file, expected = EXPECTED[product]
            self.assertEqual(key, product + "/image_1")
            self.assertEqual(rows["path"][i], file)
            self.assertEqual(names[rows["status"][i]], expected, f"{file}: {rows['reason'][i]}")
            norm = np.linalg.norm(rows["embedding"][i])
            if expected == "ok":
                self.assertEqual(rows["reason"][i], "")
                self.assertAlmostEqual(norm, 1.0, places=4)
                self.assertEqual(rows["checksum"][i], xxhash.xxh3_64_intdigest(self.files[file]))
                if file.endswith(".jpg"):  # the uniform test PNGs hash to zero, rightly
                    self.assertTrue(rows["phash"][i].any())
            else:
                self.assertTrue(rows["reason"][i].startswith(expected), rows["reason"][i])
                self.assertEqual(norm, 0.0)
        # width and height are as stored in the file; the pixels the model saw are upright: the
        # EXIF-rotated crop embeds as the crop turned in the file, not as the crop unturned.
        at = {name: list(rows["path"]).index(name) for name in ("rotated.jpg", "upright.jpg", "unrotated.jpg")}
        self.assertEqual((rows["width"][at["rotated.jpg"]], rows["height"][at["rotated.jpg"]]), (224, 112))
        self.assertEqual((rows["width"][at["upright.jpg"]], rows["height"][at["upright.jpg"]]), (112, 224))
        cosine = lambda a, b: float(np.dot(rows["embedding"][at[a]], rows["embedding"][at[b]]))
        self.assertGreater(cosine("rotated.jpg", "upright.jpg"), 0.999)
        self.assertLess(cosine("rotated.jpg", "unrotated.jpg"), 0.99)
        for name, count in stats.items():
            if name.startswith("rejected_"):
                self.assertEqual(count, sum(1 for _, s in EXPECTED.values() if s == name[len("rejected_"):]))

    def test_shard_files_and_manifest(self):
        self.embed()
        folder = os.path.join(self.run_dir, "embed")
        total = 0
        for shard in range(SHARDS):
            with h5py.File(os.path.join(folder, f"shard-{shard:05d}.h5"), "r") as f:
                self.assertEqual(f.attrs["schema_version"], 3)
                self.assertEqual(f.attrs["segmenter_name"], "")  # no segmenter: empty garments
                self.assertEqual(len(f["garments/image_index"]), 0)
                self.assertEqual(f["masks/labels"].shape[0], 0)
                self.assertEqual(f.attrs["shard"], shard)
                self.assertEqual(f.attrs["shard_count"], SHARDS)
                self.assertEqual(f.attrs["embedding_dim"], 16)
                self.assertEqual(len(f.attrs["model_sha256"]), 64)
                n = len(f["images/key"])
                for name in ["product_id", "path", "file", "status", "reason", "checksum", "width", "height"]:
                    self.assertEqual(len(f["images"][name]), n, name)
                self.assertEqual(f["images/embedding"].shape, (n, 16))
                self.assertEqual(f["images/phash"].shape, (n, 8))
                # What dedup verifies with: a thumbnail, a content box and colours for every ok
                # image, zeros for the others.
                ok = f["images/status"][:] == 0
                thumbs = f["images/align_thumb"][:]
                self.assertEqual(thumbs.shape, (n, 64, 64, 3))
                self.assertEqual(f["images/content_box"].shape, (n, 4))
                self.assertEqual(f["images/colour"].shape, (n, 6))
                self.assertTrue((thumbs[~ok] == 0).all())
                self.assertTrue(all(thumbs[i].any() for i in range(n) if ok[i]))  # none of them is black
                boxes = f["images/content_box"][:]
                self.assertTrue(((boxes[ok, 2] > boxes[ok, 0]) & (boxes[ok, 3] > boxes[ok, 1])).all())
                total += n
        self.assertEqual(total, len(EXPECTED))
        with open(os.path.join(folder, "manifest.json")) as f:
            manifest = json.load(f)
        self.assertEqual(manifest["counts"]["images"], len(EXPECTED))
        self.assertEqual(manifest["counts"]["shards"], SHARDS)
        self.assertEqual(len(manifest["key"]), len("xxh3:") + 16)
        for entry in manifest["outputs"]:
            if entry["path"].endswith(".h5") and entry["path"] != "catalog.h5":
                self.assertTrue(entry["key"].startswith("xxh3:"), entry)  # each shard's content key
        for entry in manifest["outputs"]:
            with open(os.path.join(folder, entry["path"]), "rb") as f:
                self.assertEqual(entry["checksum"], "xxh3:%016x" % xxhash.xxh3_64_intdigest(f.read()))
        self.assertEqual([n for n in os.listdir(folder) if ".tmp-" in n], [])

    def test_reruns_skip_valid_shards_and_redo_damaged_ones(self):
        self.embed()
        self.assertEqual(self.embed()["shards_skipped"], SHARDS)
        damaged = os.path.join(self.run_dir, "embed", "shard-00001.h5")
        with open(damaged, "r+b") as f:
            f.seek(200)
            f.write(b"\xff" * 8)
        stats = self.embed()
        self.assertEqual((stats["shards_embedded"], stats["shards_skipped"]), (1, SHARDS - 1))
        self.assertEqual(self.embed("--force")["shards_embedded"], SHARDS)

    def shard_bytes(self):
        out = {}
        for name in sorted(os.listdir(os.path.join(self.run_dir, "embed"))):
            if name.endswith(".h5"):
                with open(os.path.join(self.run_dir, "embed", name), "rb") as f:
                    out[name] = f.read()
        return out

    def test_one_shard_alone_and_one_versus_two_ranks(self):
        stats = self.embed("--shard", "1", "--force", mpi=False)
        self.assertEqual(stats["shards_embedded"], 1)
        self.embed("--force", mpi=False)
        one = self.read_catalog()
        one_bytes = self.shard_bytes()
        self.embed("--force")
        two = self.read_catalog()
        self.assertEqual(list(one["key"]), list(two["key"]))
        np.testing.assert_allclose(one["embedding"], two["embedding"], atol=1e-5)
        # HDF5 files carry no timestamps: the same inputs give the same bytes, whatever the ranks.
        self.assertEqual(sorted(one_bytes), sorted([f"shard-{k:05d}.h5" for k in range(SHARDS)] + ["catalog.h5"]))
        for name, data in self.shard_bytes().items():
            self.assertEqual(data, one_bytes[name], name)

    def test_embed_text(self):
        result = lt.run(["embed-text", "--model", self.bundle, "--text", "red dress", "--text", "blue coat"], check=0)
        lines = [json.loads(line) for line in result.stdout.splitlines()]
        self.assertEqual([line["text"] for line in lines], ["red dress", "blue coat"])
        for line in lines:
            self.assertAlmostEqual(float(np.linalg.norm(line["embedding"])), 1.0, places=4)
        # Words the test bundle's vocabulary does not have: embedded, but said.
        result = lt.run(["embed-text", "--model", self.bundle, "--text", "\u30c9\u30ec\u30b9"], check=0)
        line = json.loads(result.stdout)
        self.assertEqual((line["tokens"], line["unknown_words"], line["truncated"]), (1, 1, False))
        self.assertIn("no word the text model knows", result.stderr)

    def test_bad_bundle_and_missing_ingest_fail_clearly(self):
        with open(os.path.join(self.bundle, "image_encoder.pt"), "ab") as f:
            f.write(b"tampered")
        result = lt.run(["embed", "--run", self.run_dir, "--model", self.bundle], mpi=True, check=1)
        self.assertIn("image_encoder.pt: sha256", result.stderr)
        shutil.rmtree(os.path.join(self.run_dir, "ingest"))
        result = lt.run(["embed", "--run", self.run_dir, "--model", self.bundle], check=1)
        self.assertIn("run lookbook ingest first", result.stderr)


if __name__ == "__main__":
    lt.main()
