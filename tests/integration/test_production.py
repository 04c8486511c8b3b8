"""Production runs without Slurm: `lookbook run` does every stage and writes RUN/_SUCCESS last,
`status` and `verify` read a run folder, two clean runs give byte-identical tables, and the
faults of the production issue end with nothing partial published and a rerun that redoes
only what was lost: a rank SIGKILLed mid-shard, SIGUSR1/SIGTERM (a clean stop, exit 75), a
full disk, and damaged HDF5, FAISS and model files caught by checksum before any parser."""
import csv
import filecmp
import glob
import json
import os
import shlex
import shutil
import signal
import subprocess
import tempfile
import time

import h5py

import lookbook_test as lt

SLOTS = ("T-shirt/top=top,Shirt=top,Pullover=top,Trouser=bottom,Dress=dress,Coat=top,Sandal=shoes,"
         "Sneaker=shoes,Ankle boot=shoes,Bag=bag")
TABLES = ["ingest/shard-00000.csv", "ingest/shard-00001.csv", "ingest/shard-00002.csv", "ingest/rejects.csv",
          "embed/shard-00000.h5", "embed/catalog.h5", "dedup/pairs.csv", "dedup/clusters.csv", "dedup/dedup.h5",
          "recs/substitutes.csv", "recs/outfits.csv", "recs/recs.h5"]


def write_config(path, run, demo, shards=3, segment=True):
    models = os.path.join(lt.ARGS.source, "models", "demo")
    lines = [f"run = {run}", "log-level = info", "", "[ingest]", f"catalog = {demo}/catalog.csv", f"images = {demo}/images",
             f"shards = {shards}", "", "[embed]", f"model = {models}/clip", "decode-threads = 1"]
    if segment:
        lines += [f"segmenter = {models}/unet", "segment-images = image_3"]
    lines += ["", "[recs]", f"category-slots = {SLOTS}", ""]
    with open(path, "w") as f:
        f.write("\n".join(lines))
    return path


def env(fault=None):
    """The job's environment; `fault` sets LOOKBOOK_FAULT (src/util/fault.h)."""
    out = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1")
    if fault:
        out["LOOKBOOK_FAULT"] = fault
    return out


class Production(lt.TempDirTest):
    @classmethod
    def setUpClass(cls):
        cls._shared = tempfile.TemporaryDirectory(prefix="lookbook-it-prod-")
        cls.demo = os.path.join(cls._shared.name, "demo")
        lt.run(["demo-catalog", "--out", cls.demo], check=0)
        # A clean run: the reference every fault's rerun must reproduce byte for byte.
        cls.clean = os.path.join(cls._shared.name, "clean")
        config = write_config(os.path.join(cls._shared.name, "clean.ini"), cls.clean, cls.demo)
        cls.clean_result = lt.run(["run", "--config", config], mpi=True, check=0)
        # A larger catalog (no segmenter) whose embed stage lasts long enough to interrupt.
        cls.big_demo = os.path.join(cls._shared.name, "big")
        lt.run(["demo-catalog", "--out", cls.big_demo, "--items", "2400", "--seed", "11"], check=0)

    @classmethod
    def tearDownClass(cls):
        cls._shared.cleanup()

    def tables(self, run):
        out = {}
        for name in TABLES:
            with open(os.path.join(run, name), "rb") as f:
                out[name] = f.read()
        return out

    def test_run_writes_success_last_and_status_and_verify_read_the_folder(self):
        summary = json.loads(self.clean_result.stdout.strip().splitlines()[-1])
        self.assertEqual(summary["stage"], "run")
        with open(os.path.join(self.clean, "_SUCCESS")) as f:
            success = json.load(f)
        self.assertEqual([s["stage"] for s in success["stages"]], ["ingest", "embed", "index", "dedup", "recs", "report"])
        self.assertEqual(set(success["state"].values()), {"valid"})
        self.assertIn("blas_core", success)
        # Every stage that ran reports the skeleton's own time (docs/performance.md#the-skeleton-alone).
        for line in self.clean_result.stdout.splitlines()[:-1]:
            stage = json.loads(line)
            skeleton = stage["steps"]["stage skeleton (rank 0)"]["seconds"]
            self.assertTrue(0 < skeleton < stage["seconds"], stage["stage"])
        run = self.path("run")
        shutil.copytree(self.clean, run)
        config = write_config(self.path("c.ini"), run, self.demo)
        again = lt.run(["run", "--config", config], mpi=True, check=0)
        statuses = [json.loads(line)["status"] for line in again.stdout.splitlines() if line.startswith("{")][:-1]
        self.assertEqual(statuses, ["skipped"] * 6, again.stdout)
        status = json.loads(lt.run(["status", run, "--format", "json"], check=0).stdout)
        self.assertEqual({k: v["state"] for k, v in status["stages"].items()},
                         {"ingest": "valid", "embed": "valid", "index": "valid", "dedup": "valid", "recs": "valid",
                          "report": "valid"})
        self.assertEqual(len(status["stages"]["embed"]["shards"]), 3)
        self.assertIn("valid", lt.run(["status", run], check=0).stdout)
        verified = lt.summary(lt.run(["verify", run], check=0))
        self.assertEqual(verified["problems"], 0)
        self.assertGreater(verified["files"], 10)
        # One flipped byte: verify names the file and fails; status says which shard.
        shard = os.path.join(run, "embed", "shard-00001.h5")
        with open(shard, "r+b") as f:
            f.seek(os.path.getsize(shard) // 2)
            b = f.read(1)
            f.seek(-1, 1)
            f.write(bytes([b[0] ^ 0x01]))
        bad = lt.run(["verify", run], check=1)
        self.assertIn("BAD embed/shard-00001.h5: checksum mismatch", bad.stdout)
        status = json.loads(lt.run(["status", run, "--format", "json"], check=1).stdout)
        self.assertEqual(status["stages"]["embed"]["state"], "damaged")
        self.assertEqual([s["state"] for s in status["stages"]["embed"]["shards"]], ["valid", "damaged", "valid"])
        # The rerun redoes that shard only, and everything after it, to the same bytes.
        rerun = lt.run(["run", "--config", config], mpi=True, check=0)
        embed = [json.loads(l) for l in rerun.stdout.splitlines() if '"stage":"embed"' in l][0]
        self.assertEqual((embed["shards_embedded"], embed["shards_skipped"]), (1, 2))
        self.assertEqual(self.tables(run), self.tables(self.clean))

    def test_two_clean_runs_give_byte_identical_tables(self):
        run = self.path("second")
        lt.run(["run", "--config", write_config(self.path("s.ini"), run, self.demo)], check=0)  # one rank this time
        self.assertEqual(self.tables(run), self.tables(self.clean))

    def start_embed(self, run, ranks=2, fault=None):
        lt.run(["ingest", "--run", run, "--catalog", os.path.join(self.big_demo, "catalog.csv"),
                "--images", os.path.join(self.big_demo, "images"), "--shards", "8"], check=0)
        command = [lt.ARGS.lookbook, "embed", "--run", run, "--model", os.path.join(lt.ARGS.source, "models", "demo", "clip"),
                   "--decode-threads", "1", "--batch-size", "8"]
        if ranks > 1:
            command = [*shlex.split(lt.ARGS.mpiexec), *command]
        return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env(fault),
                                start_new_session=True)

    def wait_for_records(self, run, count, process, timeout=240):
        """Until `count` shards are computed (their records in RUN/.work/embed, where shards wait
        for the stage's publication)."""
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.records(run) >= count:
                return
            if process.poll() is not None:
                self.fail("embed ended before it could be interrupted: " + process.stderr.read())
            time.sleep(0.05)
        self.fail("no shard was published in time")

    def assert_nothing_partial(self, run):
        """Readers see no embed stage (it is published whole, or not at all); every computed shard
        waiting in RUN/.work/embed is whole: its record lists it with its checksum, and no
        temporary is left. Returns how many shards are computed."""
        self.assertFalse(os.path.exists(os.path.join(run, "embed", "manifest.json")), "no partial stage is published")
        work = os.path.join(run, ".work", "embed")
        for h5 in glob.glob(os.path.join(work, "shard-*.h5")):
            record = h5[:-3] + ".json"
            self.assertTrue(os.path.exists(record), f"{h5} is there without its record")
            with h5py.File(h5, "r") as f:
                self.assertGreater(len(f["images/key"]), 0)
        self.assertEqual(glob.glob(os.path.join(work, "*.tmp-*")), [])
        status = json.loads(lt.run(["status", run, "--format", "json"]).stdout)
        for shard in status["stages"]["embed"]["shards"]:
            self.assertIn(shard["state"], ("pending", "absent"), shard)
        return sum(s["state"] == "pending" for s in status["stages"]["embed"]["shards"])

    def finish_and_compare(self, run, published_before):
        result = lt.run(["embed", "--run", run, "--model", os.path.join(lt.ARGS.source, "models", "demo", "clip"),
                         "--decode-threads", "1", "--batch-size", "8"], mpi=True, check=0)
        report = lt.summary(result)
        self.assertEqual(report["shards_skipped"], published_before)
        self.assertEqual(report["shards_embedded"], 8 - published_before)
        for stage in ("index", "dedup"):
            lt.run([stage, "--run", run], mpi=True, check=0)
        reference = self.big_reference()
        for name in ("dedup/pairs.csv", "dedup/clusters.csv"):
            self.assertTrue(filecmp.cmp(os.path.join(run, name), os.path.join(reference, name), shallow=False), name)

    def big_reference(self):
        reference = os.path.join(self._shared.name, "big-clean")
        if not os.path.exists(os.path.join(reference, "dedup", "manifest.json")):
            lt.run(["ingest", "--run", reference, "--catalog", os.path.join(self.big_demo, "catalog.csv"),
                    "--images", os.path.join(self.big_demo, "images"), "--shards", "8"], check=0)
            lt.run(["embed", "--run", reference, "--model", os.path.join(lt.ARGS.source, "models", "demo", "clip"),
                    "--decode-threads", "1"], mpi=True, check=0)
            for stage in ("index", "dedup"):
                lt.run([stage, "--run", reference], mpi=True, check=0)
        return reference

    def records(self, run):
        return len(glob.glob(os.path.join(run, ".work", "embed", "shard-*.json")))

    def test_sigkill_of_one_rank_mid_shard_loses_only_that_shard(self):
        # Rank 1 dies at its second inference batch, in the middle of its first shard (fault
        # injection, not a race with the work): that shard is never published.
        run = self.path("run")
        process = self.start_embed(run, fault="embed.batch:kill:rank=1:nth=2")
        _, stderr = process.communicate(timeout=240)
        self.assertNotEqual(process.returncode, 0, "the job fails")
        published = self.assert_nothing_partial(run)
        self.assertLess(published, 8, stderr)
        self.finish_and_compare(run, published)

    def test_sigusr1_stops_cleanly_with_exit_75_and_sigterm_too(self):
        # Rank 1 holds its first shard (a pause that a stop ends) while rank 0 publishes; the
        # stop then reaches both in the middle of a shard.
        run = self.path("run")
        process = self.start_embed(run, fault="embed.shard_start:pause=200:rank=1:nth=1")
        self.wait_for_records(run, 1, process)
        at_signal = self.records(run)
        process.send_signal(signal.SIGUSR1)  # mpirun forwards SIGUSR1 to the ranks
        _, stderr = process.communicate(timeout=120)
        self.assertEqual(process.returncode, 75, stderr)
        self.assertIn("stop requested", stderr)
        published = self.assert_nothing_partial(run)
        self.assertLess(published, 8, "rank 1's shard was abandoned")
        # Promptly: at most the shard rank 0 was finishing as the signal came is added.
        self.assertLessEqual(published, at_signal + 1)
        self.finish_and_compare(run, published)

        # SIGTERM to a single-rank process, held at its second shard: the same clean stop.
        run = self.path("term")
        process = self.start_embed(run, ranks=1, fault="embed.shard_start:pause=200:nth=2")
        self.wait_for_records(run, 1, process)
        process.send_signal(signal.SIGTERM)
        _, stderr = process.communicate(timeout=120)
        self.assertEqual(process.returncode, 75, stderr)
        self.assertEqual(self.assert_nothing_partial(run), 1)

    def test_disk_full_is_a_clear_error_with_nothing_partial(self):
        mount = self.path("small")
        os.makedirs(mount)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", "size=320k", "tmpfs", mount], capture_output=True).returncode != 0:
            lt.cannot_run_here(self, "mounting a small tmpfs needs root and CAP_SYS_ADMIN")
        try:
            run = os.path.join(mount, "run")
            lt.run(["ingest", "--run", run, "--catalog", os.path.join(self.demo, "catalog.csv"),
                    "--images", os.path.join(self.demo, "images"), "--shards", "3"], check=0)
            result = lt.run(["embed", "--run", run, "--model", os.path.join(lt.ARGS.source, "models", "demo", "clip"),
                             "--decode-threads", "1"], check=1)
            self.assertRegex(result.stderr, r"(?i)no space left|disk full|cannot write")
            self.assertEqual(glob.glob(os.path.join(run, "embed", "*.tmp*")), [], "temporaries are removed")
            self.assert_nothing_partial(run)
            self.assertEqual(lt.summary(lt.run(["verify", run], check=0))["problems"], 0)
        finally:
            subprocess.run(["umount", mount], check=False)

    def test_damaged_hdf5_faiss_and_model_files_are_caught_by_checksum(self):
        def flip(path):
            with open(path, "r+b") as f:
                f.seek(os.path.getsize(path) // 2)
                b = f.read(1)
                f.seek(-1, 1)
                f.write(bytes([b[0] ^ 0x10]))

        def truncate(path):
            with open(path, "r+b") as f:
                f.truncate(os.path.getsize(path) // 2)

        for damage in (flip, truncate):
            run = self.path(damage.__name__)
            shutil.copytree(self.clean, run)
            damage(os.path.join(run, "embed", "shard-00002.h5"))
            result = lt.run(["dedup", "--run", run, "--force"], check=1)
            self.assertIn("shard-00002.h5", result.stderr)
            self.assertIn("checksum", result.stderr)
            self.assertNotIn("HDF5", result.stderr, "HDF5 never saw the file")
            # The embed shard restored, a damaged FAISS file is what recs meets.
            shutil.copyfile(os.path.join(self.clean, "embed", "shard-00002.h5"), os.path.join(run, "embed", "shard-00002.h5"))
            damage(os.path.join(run, "index", "shard-00000.faiss"))
            result = lt.run(["recs", "--run", run, "--force"], check=1)
            self.assertIn("shard-00000.faiss", result.stderr)
            self.assertRegex(result.stderr, "checksum|size changed")
            self.assertNotIn("shard-00002.h5", result.stderr)
            models = self.path(f"models-{damage.__name__}")
            shutil.copytree(os.path.join(lt.ARGS.source, "models", "demo", "clip"), models)
            weights = max(glob.glob(os.path.join(models, "*.pt")), key=os.path.getsize)
            damage(weights)
            result = lt.run(["embed", "--run", run, "--model", models, "--force"], check=1)
            self.assertIn(os.path.basename(weights), result.stderr)
            self.assertIn("sha256", result.stderr)


if __name__ == "__main__":
    lt.main()
