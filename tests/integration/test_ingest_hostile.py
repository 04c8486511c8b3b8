"""The real binary, under mpirun with 2 ranks, on a small hostile catalog: every row is
accounted for, every reject has its reason, and the outputs read back with Python's csv and
pandas."""
import csv
import json
import os

import pandas as pd
import xxhash

import lookbook_test as lt

SHARDS = 4

# (row, product_id, column, path, reason) expected in rejects.csv, in this order.
EXPECTED_REJECTS = [
    ("3", "p3", "image_2", "missing.jpg", "missing"),
    ("4", "p4", "", "", "invalid_utf8"),
    ("5", "", "", "", "field_count"),
    ("6", "p1", "", "", "duplicate_product_id"),
    ("7", "", "", "", "missing_product_id"),
    ("8", "a/b", "", "", "invalid_product_id"),
    ("9", "p9", "", "", "no_images"),
    ("10", "p10", "", "", "bad_in_stock"),
    ("11", "p11", "image_1", "/etc/passwd", "absolute_path"),
    ("11", "p11", "image_2", "../outside.jpg", "escapes_root"),
    ("11", "p11", "", "", "all_images_rejected"),
    ("12", "p12", "image_1", "leak.jpg", "outside_root"),
    ("12", "p12", "image_2", "folder.jpg", "not_a_file"),
    ("12", "p12", "", "", "all_images_rejected"),
    ("13", "p13", "image_1", "empty.jpg", "empty_file"),
    ("13", "p13", "image_2", "big.jpg", "too_large"),
    ("13", "p13", "", "", "all_images_rejected"),
    ("14", "p14", "image_1", "dangling.jpg", "missing"),
    ("14", "p14", "image_2", "up/outside.jpg", "outside_root"),
    ("14", "p14", "", "", "all_images_rejected"),
    ("16", "", "", "", "malformed_quote"),
    ("17", "", "", "", "unterminated_quote"),
]
ACCEPTED = {"p1": ["good1.jpg"], "p2": ["good2.jpg", "sub/good3.jpg"], "p3": ["good1.jpg"],
            "p15": ["good2.jpg"]}


class HostileCatalog(lt.TempDirTest):
    def setUp(self):
        super().setUp()
        images = self.path("images")
        os.makedirs(os.path.join(images, "sub"))
        os.makedirs(os.path.join(images, "folder.jpg"))
        for name in ["good1.jpg", "good2.jpg", "sub/good3.jpg"]:
            with open(os.path.join(images, name), "wb") as f:
                f.write(b"\xff\xd8 not really a jpeg, ingest only checks the file")
        open(os.path.join(images, "empty.jpg"), "wb").close()
        with open(os.path.join(images, "big.jpg"), "wb") as f:
            f.write(b"x" * 5000)
        with open(self.path("outside.jpg"), "wb") as f:
            f.write(b"secret")
        os.symlink(self.path("outside.jpg"), os.path.join(images, "leak.jpg"))
        os.symlink("nothing.jpg", os.path.join(images, "dangling.jpg"))
        os.symlink(self.dir, os.path.join(images, "up"))
        rows = [
            b"p1,good1.jpg,,Dress,1,\"Red dress, \"\"long\"\"\"",                     # 1
            b"p2,good2.jpg,./sub//good3.jpg,Coat,0,\"two\r\nlines\"",                  # 2
            b"p3,good1.jpg,missing.jpg,Bag,yes,Bag",                                 # 3
            b"p4,good1.jpg,,Dress,1,caf\xe9",                                        # 4 latin-1
            b"p5,good1.jpg,Dress,1,short",                                           # 5
            b"p1,good2.jpg,,Dress,1,again",                                          # 6
            b",good2.jpg,,Dress,1,no id",                                            # 7
            b"a/b,good2.jpg,,Dress,1,slash",                                         # 8
            b"p9,,,Dress,1,no images",                                               # 9
            b"p10,good2.jpg,,Dress,perhaps,stock",                                   # 10
            b"p11,/etc/passwd,../outside.jpg,Dress,1,x",                             # 11
            b"p12,leak.jpg,folder.jpg,Dress,1,x",                                    # 12
            b"p13,empty.jpg,big.jpg,Dress,1,x",                                      # 13
            b"p14,dangling.jpg,up/outside.jpg,Dress,1,x",                            # 14
            b"p15,good2.jpg,,Shirt,17,\xf0\x9f\x91\x97 emoji",                       # 15
            b"p16,\"good1.jpg\"x,,Dress,1,x",                                        # 16
            b"p17,good1.jpg,,Dress,1,\"never closed",                                # 17
        ]
        text = b"\xef\xbb\xbfproduct_id,image_1,image_2,category,in_stock,title\r\n"
        text += b"\r\n".join(rows[:-1]) + b"\r\n\r\n" + rows[-1] + b"\r\nmore,lines,after\r\n"
        with open(self.path("catalog.csv"), "wb") as f:
            f.write(text)
        self.run_dir = self.path("run")

    def ingest(self, *extra):
        return lt.run(["ingest", "--catalog", self.path("catalog.csv"), "--images",
                       self.path("images"), "--run", self.run_dir, "--shards", SHARDS,
                       "--max-image-bytes", 1000, *extra], mpi=True, check=0)

    def test_formulas_are_escaped_for_people_and_exact_for_machines(self):
        # rejects.csv is for people (a spreadsheet): cells that would run as formulas get a
        # leading '. The ingest shards are machine tables: exact.
        with open(self.path("formulas.csv"), "w", newline="") as f:
            w = csv.writer(f)
            w.writerow(["product_id", "image_1", "category", "in_stock", "title"])
            w.writerow(['=HYPERLINK("http://x")', "nowhere.jpg", "Dress", "1", "x"])
            w.writerow(["+p2", "good1.jpg", "Dress", "1", "-1+2 @SUM(A1)"])
            w.writerow(["@p3", "'quoted.jpg", "Dress", "1", "\tTab"])
        run = self.path("formula-run")
        lt.run(["ingest", "--catalog", self.path("formulas.csv"), "--images", self.path("images"), "--run", run,
                "--shards", 1], check=0)
        with open(os.path.join(run, "ingest", "rejects.csv"), newline="") as f:
            rejects = list(csv.reader(f))[1:]
        cells = {cell for row in rejects for cell in row}
        self.assertIn("'=HYPERLINK(\"http://x\")", cells)
        self.assertIn("'@p3", cells)
        self.assertIn("''quoted.jpg", cells)  # a leading ' doubled, so that it reads back exactly
        self.assertFalse([c for c in cells if c[:1] in ("=", "+", "-", "@", "\t", "\r")], rejects)
        with open(os.path.join(run, "ingest", "shard-00000.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
        self.assertEqual([(r["product_id"], r["title"]) for r in rows], [("+p2", "-1+2 @SUM(A1)")])

    def test_an_unclosed_quote_names_the_rows_it_swallowed(self):
        with open(self.path("quote.csv"), "w", newline="") as f:
            f.write('product_id,image_1,category,in_stock,title\n'
                    'P1,good1.jpg,Dress,1,fine\n'
                    'P2,good1.jpg,Dress,1,"never closed\n'
                    'P3,good2.jpg,Dress,1,lost\n'
                    'P4,good2.jpg,Dress,1,"closes the quote"\n'
                    'P5,good2.jpg,Dress,1,fine again\n')
        run = self.path("quote-run")
        stats = lt.summary(lt.run(["ingest", "--catalog", self.path("quote.csv"), "--images", self.path("images"),
                                   "--run", run, "--shards", 1], check=0))
        self.assertEqual(stats["rows_in"], stats["rows_ok"] + stats["rows_rejected"])
        with open(os.path.join(run, "ingest", "rejects.csv"), newline="") as f:
            rejects = list(csv.DictReader(f))
        self.assertEqual(len(rejects), 1, rejects)
        self.assertEqual(rejects[0]["row"], "2")
        self.assertIn(rejects[0]["reason"], ("malformed_quote", "unterminated_quote"))
        self.assertEqual(rejects[0]["detail"], "swallowed lines 4-5 of the file; ids seen there: P3, P4")

    def test_a_rejected_row_does_not_claim_its_id(self):
        # The first *accepted* row keeps an id: p1's first row has a bad stock flag, p2's first
        # row only a missing image; their second rows are valid and accepted.
        with open(self.path("dups.csv"), "w", newline="") as f:
            f.write("product_id,image_1,category,in_stock,title\n"
                    "p1,good1.jpg,Dress,perhaps,x\np1,good1.jpg,Dress,1,y\n"
                    "p2,missing.jpg,Dress,1,x\np2,good2.jpg,Dress,1,y\np2,good2.jpg,Dress,1,z\n")
        run = self.path("dups-run")
        stats = lt.summary(lt.run(["ingest", "--catalog", self.path("dups.csv"), "--images", self.path("images"),
                                   "--run", run, "--shards", 1], check=0))
        self.assertEqual((stats["rows_ok"], stats["rows_rejected"]), (2, 3))
        with open(os.path.join(run, "ingest", "rejects.csv"), newline="") as f:
            reasons = [(r["row"], r["product_id"], r["reason"]) for r in csv.DictReader(f)]
        self.assertEqual(reasons, [("1", "p1", "bad_in_stock"), ("3", "p2", "missing"),
                                   ("3", "p2", "all_images_rejected"), ("5", "p2", "duplicate_product_id")])
        with open(os.path.join(run, "ingest", "shard-00000.csv"), newline="") as f:
            kept = sorted((r["product_id"], r["title"]) for r in csv.DictReader(f))
        self.assertEqual(kept, [("p1", "y"), ("p2", "y")])

    def test_every_row_is_accounted_for(self):
        result = self.ingest()
        stats = lt.summary(result)
        self.assertEqual(stats["stage"], "ingest")
        self.assertEqual(stats["rows_in"], 17)
        self.assertEqual(stats["rows_ok"], len(ACCEPTED))
        self.assertEqual(stats["rows_in"], stats["rows_ok"] + stats["rows_rejected"])
        self.assertEqual(stats["images_in"], stats["images_ok"] + stats["images_rejected"])
        self.assertEqual(stats["images_ok"], sum(len(v) for v in ACCEPTED.values()))
        self.assertEqual(stats["blank_lines"], 1)
        self.assertIn("[r0] [ingest]", result.stderr)

        with open(os.path.join(self.run_dir, "ingest", "rejects.csv"), newline="") as f:
            rejects = [tuple(row) for row in csv.reader(f)]
        self.assertEqual(rejects[0], ("row", "product_id", "column", "path", "reason", "detail"))
        self.assertEqual([r[:5] for r in rejects[1:]], EXPECTED_REJECTS)
        # The unclosed quote of row 17 (line 20: row 2 spans two lines) swallowed the line after it, and says so, with the id seen
        # there; the other rejects have no detail.
        details = {r[0]: r[5] for r in rejects[1:] if r[5]}
        self.assertEqual(details, {"17": "swallowed line 21 of the file; ids seen there: more"})
        row_rejects = [r for r in rejects[1:] if r[2] == ""]
        self.assertEqual(len(row_rejects), stats["rows_rejected"])
        frame = pd.read_csv(os.path.join(self.run_dir, "ingest", "rejects.csv"), dtype=str,
                            keep_default_na=False)
        self.assertEqual(len(frame), len(EXPECTED_REJECTS))
        self.assertEqual(frame["reason"].value_counts()["all_images_rejected"], 4)
        for reason, count in frame[frame["column"] == ""]["reason"].value_counts().items():
            self.assertEqual(stats[f"rejected_{reason}"], count)

    def test_shards_read_back_with_csv_and_pandas(self):
        self.ingest()
        seen = {}
        for shard in range(SHARDS):
            name = os.path.join(self.run_dir, "ingest", f"shard-{shard:05d}.csv")
            frame = pd.read_csv(name, dtype=str, keep_default_na=False)
            self.assertEqual(list(frame.columns), ["product_id", "column", "image", "file",
                                                   "category", "in_stock", "title", "row", "size", "mtime_ns"])
            with open(name, newline="", encoding="utf-8") as f:
                self.assertEqual(len(list(csv.reader(f))) - 1, len(frame))
            for record in frame.itertuples():
                self.assertEqual(xxhash.xxh64_intdigest(record.product_id.encode(), 0) % SHARDS,
                                 shard, "a product's shard is xxh64(id) mod N")
                seen.setdefault(record.product_id, []).append(record)
        self.assertEqual({k: [r.file for r in v] for k, v in seen.items()}, ACCEPTED)
        self.assertEqual(seen["p1"][0].title, 'Red dress, "long"')
        self.assertEqual(seen["p2"][0].title, "two\r\nlines")
        self.assertEqual(seen["p2"][1].image, "./sub//good3.jpg")
        self.assertEqual(seen["p15"][0].title, "\U0001F457 emoji")
        self.assertEqual(seen["p15"][0].in_stock, "1")
        self.assertEqual(seen["p2"][0].in_stock, "0")

    def test_manifest_checksums_match_the_files(self):
        self.ingest()
        with open(os.path.join(self.run_dir, "ingest", "manifest.json")) as f:
            manifest = json.load(f)
        self.assertEqual(manifest["schema_version"], 1)
        self.assertEqual(manifest["counts"]["rows_in"], 17)
        names = sorted(entry["path"] for entry in manifest["outputs"])
        self.assertEqual(names, ["rejects.csv"] + [f"shard-{k:05d}.csv" for k in range(SHARDS)])
        for entry in manifest["outputs"] + manifest["inputs"]:
            path = entry["path"] if os.path.isabs(entry["path"]) else \
                os.path.join(self.run_dir, "ingest", entry["path"])
            with open(path, "rb") as f:
                data = f.read()
            self.assertEqual(entry["size"], len(data))
            self.assertEqual(entry["checksum"], "xxh3:%016x" % xxhash.xxh3_64_intdigest(data))
        leftovers = [n for n in os.listdir(os.path.join(self.run_dir, "ingest")) if ".tmp-" in n]
        self.assertEqual(leftovers, [])

    def test_rerun_skips_and_force_redoes(self):
        first = lt.summary(self.ingest())
        again = lt.summary(self.ingest())
        self.assertEqual(again["status"], "skipped")
        self.assertEqual(again["rows_ok"], first["rows_ok"])
        forced = lt.summary(self.ingest("--force"))
        self.assertEqual(forced["status"], "ok")

    def test_same_input_gives_identical_bytes(self):
        self.ingest()
        first = {}
        folder = os.path.join(self.run_dir, "ingest")
        for name in os.listdir(folder):
            with open(os.path.join(folder, name), "rb") as f:
                first[name] = f.read()
        self.ingest("--force")
        for name, data in first.items():
            with open(os.path.join(folder, name), "rb") as f:
                self.assertEqual(f.read(), data, name)


if __name__ == "__main__":
    lt.main()
