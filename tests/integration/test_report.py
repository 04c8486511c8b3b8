"""The HTML report end to end: the demo catalog (with catalog text that must be escaped and a
few rows and images that must be rejected) through `lookbook run`, the evaluations and
`lookbook report`; every page and thumbnail it links exists, links are relative, text is
escaped, pages hold at most --page-size cards; and the pages open in headless Chromium
(Debian's chromium): screenshots are saved, the DOM after loading has the expected cards,
and the browser logs no console error (a missing thumbnail would be one)."""
import csv
import glob
import html.parser
import json
import math
import os
import re
import shutil
import subprocess
import tempfile
import unittest

import lookbook_test as lt

SLOTS = ("T-shirt/top=top,Shirt=top,Pullover=top,Trouser=bottom,Dress=dress,Coat=top,Sandal=shoes,"
         "Sneaker=shoes,Ankle boot=shoes,Bag=bag")
HOSTILE = '<b>bold</b> & "quoted"'


class Links(html.parser.HTMLParser):
    def __init__(self):
        super().__init__()
        self.links, self.classes = [], []

    def handle_starttag(self, tag, attrs):
        attrs = dict(attrs)
        for name in ("href", "src"):
            if attrs.get(name):
                self.links.append(attrs[name])
        if attrs.get("class"):
            self.classes.extend(attrs["class"].split())


def chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(name):
            return shutil.which(name)
    return None


class Report(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        cls._tmp = tempfile.TemporaryDirectory(prefix="lookbook-it-report-")
        tmp = cls._tmp.name
        cls.demo = os.path.join(tmp, "demo")
        lt.run(["demo-catalog", "--out", cls.demo], check=0)
        # Catalog text with markup, a row whose image is missing and one whose JPEG is cut short.
        catalog = os.path.join(tmp, "catalog.csv")
        with open(os.path.join(cls.demo, "catalog.csv"), newline="") as f:
            rows = list(csv.DictReader(f))
            fields = list(rows[0].keys())
        for row in rows:
            row["title"] = row["title"] + " " + HOSTILE
        broken = os.path.join(cls.demo, "images", "products", "broken.jpg")
        with open(os.path.join(cls.demo, "images", rows[0]["image_1"]), "rb") as f:
            data = f.read()
        with open(broken, "wb") as f:
            f.write(data[: len(data) // 3])
        extra = dict(rows[0], product_id="X-MISSING", image_1="products/nowhere.jpg", image_2="", image_3="")
        cut = dict(rows[0], product_id="X-BROKEN", image_1="products/broken.jpg", image_2="", image_3="")
        with open(catalog, "w", newline="") as f:
            writer = csv.DictWriter(f, fieldnames=fields)
            writer.writeheader()
            writer.writerows(rows + [extra, cut])
        cls.run_dir = os.path.join(tmp, "run")
        models = os.path.join(lt.ARGS.source, "models", "demo")
        config = os.path.join(tmp, "c.ini")
        with open(config, "w") as f:
            f.write(f"run = {cls.run_dir}\n[ingest]\ncatalog = {catalog}\nimages = {cls.demo}/images\nshards = 3\n"
                    f"[embed]\nmodel = {models}/clip\nsegmenter = {models}/unet\nsegment-images = image_3\ndecode-threads = 1\n"
                    f"[recs]\ncategory-slots = {SLOTS}\n")
        lt.run(["run", "--config", config], mpi=True, check=0)
        truth = os.path.join(cls.demo, "truth")
        lt.run(["eval", "dedup", "--run", cls.run_dir, "--truth", os.path.join(truth, "duplicates.csv")], check=0)
        lt.run(["eval", "recs", "--run", cls.run_dir, "--truth", os.path.join(truth, "outfits.csv")], check=0)
        cls.report = lt.summary(lt.run(["report", "--run", cls.run_dir, "--page-size", "20"], check=0))
        cls.site = os.path.join(cls.run_dir, "report")

    @classmethod
    def tearDownClass(cls):
        cls._tmp.cleanup()

    def expected_rejects(self):
        """Rows and images ingest rejected, plus images embed could not decode."""
        with open(os.path.join(self.run_dir, "ingest", "rejects.csv")) as f:
            count = len(list(csv.DictReader(f)))
        import h5py
        for name in glob.glob(os.path.join(self.run_dir, "embed", "shard-*.h5")):
            with h5py.File(name, "r") as f:
                count += int((f["images/status"][:] != 0).sum())
        self.assertGreaterEqual(count, 2)
        return count

    def page(self, name):
        with open(os.path.join(self.site, name)) as f:
            return f.read()

    def parse(self, name):
        parser = Links()
        parser.feed(self.page(name))
        return parser

    def test_every_link_resolves_and_is_relative_and_text_is_escaped(self):
        self.assertEqual(self.report["status"], "ok")  # redone: the evaluations are new inputs
        pages = sorted(os.path.basename(p) for p in glob.glob(os.path.join(self.site, "*.html")))
        self.assertIn("index.html", pages)
        for name in pages:
            parser = self.parse(name)
            for link in parser.links:
                self.assertFalse(re.match(r"^([a-z]+:|/)", link), f"{name}: {link} is not relative")
                target = link.split("#")[0]
                if target:
                    self.assertTrue(os.path.exists(os.path.join(self.site, target)), f"{name} links to missing {link}")
            text = self.page(name)
            self.assertNotIn("<b>bold</b>", text, name)
        self.assertIn("&lt;b&gt;bold&lt;/b&gt; &amp; &quot;quoted&quot;", self.page("clusters-1.html"))
        # The report's own manifest lists every file it wrote.
        with open(os.path.join(self.site, "manifest.json")) as f:
            manifest = json.load(f)
        listed = {o["path"] for o in manifest["outputs"]}
        written = {os.path.relpath(p, self.site) for p in glob.glob(os.path.join(self.site, "**", "*.*"), recursive=True)}
        self.assertEqual(written - {"manifest.json"}, listed)

    def test_overview_sections_and_pagination(self):
        index = self.page("index.html")
        for element in ('id="counts"', 'id="reject-reasons"', 'id="throughput"', 'class="histogram"', 'class="lines"', 'id="recs-eval"'):
            self.assertIn(element, index)
        # The histogram shows the signal the rule decided on (images verified: the alignment),
        # with the rule's thresholds marked.
        self.assertIn("Aligned correlation of every candidate pair", index)
        self.assertIn(">rule 0.975<", index)
        self.assertIn(">with pHash 0.960<", index)
        # Pairs the bars leave out have their own counts; the sweep names its truth file.
        self.assertRegex(index, r"Not in the bars: \d+ pair\(s\) below the plot's floor and \d+ rejected before")
        self.assertIn("against the truth in duplicates.csv", index)
        with open(os.path.join(self.run_dir, "dedup", "clusters.csv")) as f:
            clusters = len({row["cluster_id"] for row in csv.DictReader(f)})
        pages = math.ceil(clusters / 20)
        self.assertEqual(len(glob.glob(os.path.join(self.site, "clusters-*.html"))), pages)
        cards = sum(self.parse(f"clusters-{p}.html").classes.count("cluster-card") for p in range(1, pages + 1))
        self.assertEqual(cards, clusters)
        rejects = self.page("rejects-1.html")
        self.assertIn("X-MISSING", rejects)
        self.assertIn("X-BROKEN", rejects)
        self.assertEqual(rejects.count('<tr class="reject">'), self.expected_rejects())
        outfits = self.page("outfits-1.html")
        self.assertIn("<rect", outfits)  # garment boxes drawn over the photo
        self.assertGreater(self.parse("substitutes-1.html").classes.count("substitute-card"), 0)
        # A rerun with nothing new skips.
        self.assertEqual(lt.summary(lt.run(["report", "--run", self.run_dir, "--page-size", "20"], check=0))["status"], "skipped")

    def test_a_capped_report_shows_what_to_act_on_and_says_so(self):
        # --max-shown 4: the 2 largest clusters, then a seeded sample of 2; the 4 cross-product
        # candidates nearest the rule; counts and plots over everything; thumbnails only for what
        # is shown. On a copy of the run, so the other tests see the full report.
        capped = os.path.join(self._tmp.name, "capped")
        shutil.copytree(self.run_dir, capped, symlinks=True)
        report = lt.summary(lt.run(["report", "--run", capped, "--max-shown", "4", "--force"], check=0))
        self.assertEqual(report["status"], "ok")
        site = os.path.join(capped, "report")
        with open(os.path.join(capped, "dedup", "clusters.csv")) as f:
            rows = list(csv.DictReader(f))
        sizes = {}
        for row in rows:
            sizes[row["cluster_id"]] = sizes.get(row["cluster_id"], 0) + 1
        self.assertGreater(len(sizes), 4)
        with open(os.path.join(site, "clusters-1.html")) as f:
            page = f.read()
        shown = re.findall(r'id="cluster-(\d+)"', page)
        self.assertEqual(len(shown), 4)
        largest = sorted(sizes.values(), reverse=True)[:2]
        self.assertEqual([sizes[c] for c in shown[:2]], largest)
        self.assertIn(f"4 shown of {len(sizes)}", page)
        with open(os.path.join(site, "index.html")) as f:
            self.assertIn(f">{len(sizes)} duplicate clusters<", f.read())  # the counts cover everything
        with open(os.path.join(site, "near-1.html")) as f:
            near = f.read()
        self.assertEqual(near.count('<tr class="near-pair">'), 4)
        with open(os.path.join(site, "manifest.json")) as f:
            counts = json.load(f)["counts"]
        self.assertEqual(counts["clusters"], len(sizes))
        self.assertEqual(counts["clusters_shown"], 4)
        with open(os.path.join(self.site, "manifest.json")) as f:
            full = json.load(f)["counts"]
        self.assertLess(counts["thumbnails"], full["thumbnails"])
        # The same seed shows the same sample; another seed another one.
        again = os.path.join(self._tmp.name, "capped-seed")
        shutil.copytree(self.run_dir, again, symlinks=True)
        lt.run(["report", "--run", again, "--max-shown", "4", "--sample-seed", "2", "--force"], check=0)
        with open(os.path.join(again, "report", "clusters-1.html")) as f:
            other = re.findall(r'id="cluster-(\d+)"', f.read())
        self.assertEqual(other[:2], shown[:2])

    def browse(self, browser, path, shot):
        """Opens `path` in headless Chromium twice (a screenshot, then the DOM); returns the DOM and
        every console message either printed."""
        url = "file://" + path
        common = [browser, "--headless=new", "--no-sandbox", "--disable-gpu", "--hide-scrollbars",
                  "--allow-file-access-from-files", "--enable-logging=stderr", "--v=0", "--no-first-run",
                  "--disable-background-networking", "--disable-component-update", "--disable-sync"]
        result = subprocess.run([*common, f"--screenshot={shot}", "--window-size=1280,1600", url],
                                capture_output=True, text=True, timeout=120)
        self.assertTrue(os.path.exists(shot) and os.path.getsize(shot) > 1000, f"{path}: no screenshot\n{result.stderr[-2000:]}")
        dom = subprocess.run([*common, "--dump-dom", url], capture_output=True, text=True, timeout=120)
        console = [line for line in (result.stderr + dom.stderr).splitlines() if "CONSOLE" in line]
        return dom.stdout, console

    def test_pages_load_in_headless_chromium(self):
        browser = chromium()
        if browser is None:
            lt.cannot_run_here(self, "chromium is not installed (jobs/setup-debian.sh test installs it)")
        shots = os.path.join(self.run_dir, "screenshots")
        os.makedirs(shots, exist_ok=True)
        # The console check fires: a page that logs an error is caught by the same filter.
        planted = os.path.join(shots, "planted.html")
        with open(planted, "w") as f:
            f.write("<!doctype html><html><body><p>x</p><script>console.error('planted error')</script></body></html>")
        _, console = self.browse(browser, planted, os.path.join(shots, "planted.png"))
        self.assertTrue(any("planted error" in line for line in console), console)
        for name, cls_name, expected in (("index.html", None, None), ("clusters-1.html", "cluster-card", None),
                                         ("substitutes-1.html", "substitute-card", None),
                                         ("outfits-1.html", "outfit-card", None), ("rejects-1.html", "reject", self.expected_rejects())):
            shot = os.path.join(shots, name.replace(".html", ".png"))
            dom, console = self.browse(browser, os.path.join(self.site, name), shot)
            self.assertGreater(os.path.getsize(shot), 10000, name)
            self.assertEqual(console, [], f"{name}: console messages")
            self.assertIn("</html>", dom)
            if cls_name:
                parser = Links()
                parser.feed(dom)
                found = parser.classes.count(cls_name)
                wanted = expected if expected is not None else self.parse(name).classes.count(cls_name)
                self.assertEqual(found, wanted, name)
                self.assertGreater(found, 0, name)

if __name__ == "__main__":
    lt.main()
