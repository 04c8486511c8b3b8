"""The slurm/ scripts on a real Slurm: the test installs Debian's slurm-wlm and munge when they
are missing, starts a single-node cluster (munged, slurmctld, slurmd, a slurm.conf generated
for this host), submits slurm/nightly.sbatch on the demo catalog, waits, checks the outputs,
damages one embed shard and reruns it through slurm/rerun.sh (a job array and a dependent
finish job), and checks that the world-size guard refuses ranks that are not one MPI world.
It stops everything it started. Needs root (it installs packages and starts daemons)."""
import json
import os
import re
import shutil
import socket
import subprocess
import tempfile
import time
import unittest

import lookbook_test as lt

SLOTS = ("T-shirt/top=top,Shirt=top,Pullover=top,Trouser=bottom,Dress=dress,Coat=top,Sandal=shoes,"
         "Sneaker=shoes,Ankle boot=shoes,Bag=bag")
TABLES = ["dedup/pairs.csv", "dedup/clusters.csv", "recs/substitutes.csv", "recs/outfits.csv"]


def sh(command, check=True, **kwargs):
    return subprocess.run(command, shell=isinstance(command, str), check=check, capture_output=True, text=True, **kwargs)


def read(path, mode="r"):
    with open(path, mode) as f:
        return f.read()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Slurm(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        if os.geteuid() != 0:
            raise unittest.SkipTest(lt.SKIP_PREFIX + "needs root to install Slurm and start its daemons")
        # Every wait of this file ends before ctest's TIMEOUT for it (tests/CMakeLists.txt, 900 s),
        # counted from the start, the package installation included.
        cls.deadline = time.time() + 840
        if shutil.which("slurmctld") is None or shutil.which("munged") is None:
            sh("DEBIAN_FRONTEND=noninteractive apt-get install -y -qq slurm-wlm munge >/dev/null", timeout=600)
        cls.tmp = tempfile.mkdtemp(prefix="lookbook-slurm-")
        cls.started = []
        cls.env = dict(os.environ, SLURM_CONF=os.path.join(cls.tmp, "slurm.conf"))
        cls.start_watchdog()
        try:
            cls.start_cluster()
        except Exception:
            cls.stop_cluster()
            raise

    @classmethod
    def start_cluster(cls):
        tmp = cls.tmp
        # munge: a key, then the daemon (unless one already answers).
        if sh("munge -n | unmunge", check=False).returncode != 0:
            if not os.path.exists("/etc/munge/munge.key"):
                sh("mungekey --create --keyfile /etc/munge/munge.key || "
                   "dd if=/dev/urandom of=/etc/munge/munge.key bs=1024 count=1")
            sh("chown munge:munge /etc/munge/munge.key && chmod 400 /etc/munge/munge.key", check=False)
            os.makedirs("/run/munge", exist_ok=True)
            sh("chown munge:munge /run/munge", check=False)
            pid_file = os.path.join(tmp, "munged.pid")
            sh(["runuser", "-u", "munge", "--", "munged", "--pid-file", "/run/munge/munged-test.pid"], check=False)
            if sh("munge -n | unmunge", check=False).returncode != 0:
                sh(["munged", "--force"])
            cls.started.append(("munged", None))
            open(os.path.join(tmp, "munged.ours"), "w").close()
            for _ in range(50):
                if sh("munge -n | unmunge", check=False).returncode == 0:
                    break
                time.sleep(0.1)
        host = socket.gethostname().split(".")[0]
        node = sh(["slurmd", "-C"]).stdout.splitlines()[0]
        node = re.sub(r"RealMemory=(\d+)", lambda m: f"RealMemory={int(m.group(1)) // 2}", node)
        for sub in ("state", "spool"):
            os.makedirs(os.path.join(tmp, sub))
        conf = f"""ClusterName=lookbook
SlurmctldHost={host}
SlurmctldPort={free_port()}
SlurmdPort={free_port()}
AuthType=auth/munge
CredType=cred/munge
SlurmUser=root
SlurmdUser=root
StateSaveLocation={tmp}/state
SlurmdSpoolDir={tmp}/spool
SlurmctldPidFile={tmp}/slurmctld.pid
SlurmdPidFile={tmp}/slurmd.pid
SlurmctldLogFile={tmp}/slurmctld.log
SlurmdLogFile={tmp}/slurmd.log
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
MpiDefault=none
ReturnToService=2
SchedulerType=sched/backfill
SelectType=select/cons_tres
SelectTypeParameters=CR_CPU
JobAcctGatherType=jobacct_gather/none
AccountingStorageType=accounting_storage/none
MinJobAge=3600
{node} State=UNKNOWN
PartitionName=test Nodes={host} Default=YES MaxTime=INFINITE State=UP OverSubscribe=FORCE:4
"""
        with open(cls.env["SLURM_CONF"], "w") as f:
            f.write(conf)
        sh(["slurmctld", "-f", cls.env["SLURM_CONF"]], env=cls.env)
        cls.started.append(("slurmctld", os.path.join(tmp, "slurmctld.pid")))
        sh(["slurmd", "-f", cls.env["SLURM_CONF"]], env=cls.env)
        cls.started.append(("slurmd", os.path.join(tmp, "slurmd.pid")))
        deadline = time.time() + 60
        while time.time() < deadline:
            state = sh(["sinfo", "-h", "-o", "%T"], check=False, env=cls.env).stdout.strip()
            if state in ("idle", "mixed", "allocated"):
                return
            time.sleep(0.5)
        raise RuntimeError("the Slurm node did not come up: " + state + "\n" + read(os.path.join(tmp, "slurmctld.log"))[-2000:])

    @classmethod
    def start_watchdog(cls):
        """A detached process that stops the daemons this test starts once the test process is
        gone, even when it was killed (ctest's timeout): no slurmctld, slurmd or munged outlives
        the test. The daemons' pid files are in cls.tmp; munged is ours when cls.tmp/munged.ours
        exists."""
        script = (f"while kill -0 {os.getpid()} 2>/dev/null; do sleep 1; done; "
                  f"for f in {cls.tmp}/slurmctld.pid {cls.tmp}/slurmd.pid; do [ -f $f ] && kill $(cat $f); done; "
                  f"[ -f {cls.tmp}/munged.ours ] && pkill -x munged; sleep 1; pkill -x slurmstepd; rm -rf {cls.tmp}")
        subprocess.Popen(["setsid", "bash", "-c", script], stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                         stderr=subprocess.DEVNULL, start_new_session=True)

    @classmethod
    def pmix(cls):
        """Whether this Slurm's srun offers PMIx; when not, the checks that need it are recorded as
        partial skips."""
        listed = sh(["srun", "--mpi=list"], check=False, env=cls.env)
        return "pmix" in listed.stdout + listed.stderr

    @classmethod
    def stop_cluster(cls):
        sh(["scancel", "--user", "root"], check=False, env=cls.env)
        for name, pid_file in reversed(cls.started):
            if pid_file and os.path.exists(pid_file):
                sh(["kill", read(pid_file).strip()], check=False)
            elif name == "munged":
                sh("pkill -x munged", check=False)
        time.sleep(1)
        sh("pkill -x slurmstepd", check=False)
        shutil.rmtree(cls.tmp, ignore_errors=True)

    @classmethod
    def tearDownClass(cls):
        cls.stop_cluster()

    def submit(self, *args):
        result = sh(["sbatch", "--parsable", *args], env=self.job_env(), cwd=lt.ARGS.source)
        return result.stdout.strip().split(";")[0]

    def job_env(self):
        return dict(self.env, LOOKBOOK=os.path.abspath(lt.ARGS.lookbook), LOOKBOOK_ROOT=os.path.abspath(lt.ARGS.source))

    def wait(self, job, timeout=240):
        deadline = min(time.time() + timeout, self.deadline)
        while time.time() < deadline:
            info = sh(["scontrol", "show", "job", job], check=False, env=self.env).stdout
            state = re.search(r"JobState=(\S+)", info)
            if state and state.group(1) not in ("PENDING", "RUNNING", "CONFIGURING", "COMPLETING", "REQUEUED"):
                return state.group(1), re.search(r"ExitCode=(\S+)", info).group(1)
            time.sleep(1)
        self.fail(f"job {job} did not finish in {timeout} s (or before the file's deadline)")

    def test_requests_follow_the_config_and_sbatch_checks_them(self):
        work = os.path.join(self.tmp, "requests")
        os.makedirs(work)
        catalog = os.path.join(work, "catalog.csv")
        with open(catalog, "w") as f:
            f.write("product_id,image_1\n" + "".join(f"P{i},{i}.jpg\n" for i in range(100000)))
        def config(device):
            path = os.path.join(work, f"{device}.ini")
            with open(path, "w") as f:
                f.write(f"runs-root = {work}/root\n[ingest]\ncatalog = {catalog}\n[embed]\ndevice = {device}\n"
                        "decode-threads = 3\n")
            return path
        def requests(kind, device, **env):
            return sh(["slurm/requests.sh", config(device), kind], cwd=lt.ARGS.source,
                      env=dict(self.job_env(), **env)).stdout.split()
        gpu = requests("nightly", "cuda")
        self.assertIn("--gpus-per-task=1", gpu)
        self.assertIn("--cpus-per-task=4", gpu)  # decode threads + the inference thread
        # Per task: 2 GiB + 300,000 images x 512 bytes of rows + the embeddings (4 x 512 bytes) of
        # its 8 of the 16 shards; 2 tasks.
        self.assertIn(f"--mem={2 * (2048 + (300000 * 512 + 300000 * 2048 * 8 // 16) // 1048576)}M", gpu)
        self.assertNotIn("--gpus-per-task=1", requests("finish", "cuda"))  # finish runs no model
        self.assertNotIn("--gpus-per-task=1", requests("nightly", "cpu"))
        gres = requests("shard", "cuda", LOOKBOOK_GPU_REQUEST="gres")
        self.assertIn("--gres=gpu:1", gres)
        self.assertIn("--ntasks-per-node=1", gres)
        # sbatch --test-only against this cluster, which has no GPUs: the GPU request is refused,
        # the same request without it is accepted.
        env = dict(self.job_env(), LOOKBOOK_CPUS_PER_TASK="1", LOOKBOOK_MEM="1G")
        refused = sh(["slurm/submit.sh", "--test-only", config("cuda")], cwd=lt.ARGS.source, env=env, check=False)
        self.assertNotEqual(refused.returncode, 0, refused.stderr)
        self.assertIn("--gpus-per-task=1", refused.stderr)
        self.assertRegex(refused.stderr.lower(), r"gres|gpu|generic resource|node configuration")
        accepted = sh(["slurm/submit.sh", "--test-only", config("cpu")], cwd=lt.ARGS.source, env=env, check=False)
        self.assertEqual(accepted.returncode, 0, accepted.stderr)
        self.assertIn("to start at", accepted.stderr)

    def test_a_job_restarted_too_often_fails_loudly(self):
        # As Slurm starts it after its fourth requeue: the script refuses before any work.
        result = sh(["bash", "slurm/nightly.sbatch", "/nonexistent.ini"], cwd=lt.ARGS.source, check=False,
                    env=dict(self.job_env(), SLURM_RESTART_COUNT="4", LOOKBOOK_MAX_RESTARTS="3",
                             LOOKBOOK_LAUNCHER="mpirun"))
        self.assertEqual(result.returncode, 1, result.stdout + result.stderr)
        self.assertIn("restarted 4 times (LOOKBOOK_MAX_RESTARTS=3)", result.stderr)

    def test_nightly_then_a_one_shard_rerun(self):
        work = os.path.join(self.tmp, "work")
        os.makedirs(work)
        demo, root = os.path.join(work, "demo"), os.path.join(work, "root")
        lt.run(["demo-catalog", "--out", demo], check=0)
        models = os.path.join(os.path.abspath(lt.ARGS.source), "models", "demo")
        config = os.path.join(work, "nightly.ini")
        with open(config, "w") as f:
            f.write(f"runs-root = {root}\n[ingest]\ncatalog = {demo}/catalog.csv\nimages = {demo}/images\nshards = 3\n"
                    f"[embed]\nmodel = {models}/clip\nsegmenter = {models}/unet\nsegment-images = image_3\ndecode-threads = 1\n"
                    f"[recs]\ncategory-slots = {SLOTS}\n")
        out = os.path.join(work, "nightly-%j.out")
        # Through slurm/submit.sh, as an operator submits it: the requests come from the config
        # (no GPU: device cpu); this test node has 2 CPUs, so 1 per task.
        result = sh(["slurm/submit.sh", config, "--", f"--output={out}"], cwd=lt.ARGS.source,
                    env=dict(self.job_env(), LOOKBOOK_CPUS_PER_TASK="1"))
        self.assertIn("--ntasks=2", result.stderr)
        self.assertNotIn("gpu", result.stderr)
        job = result.stdout.strip().split(";")[0]
        state, code = self.wait(job)
        log = read(out.replace("%j", job))
        self.assertEqual((state, code), ("COMPLETED", "0:0"), log[-4000:])
        self.assertIn("2 tasks via", log)
        run = os.path.realpath(os.path.join(root, "latest"))  # the night the job made
        self.assertEqual(os.path.dirname(run), os.path.realpath(os.path.join(root, "runs")))
        if self.pmix():
            self.assertIn("via srun --mpi=pmix", log)
        else:
            lt.note_partial_skip(self, "this Slurm's srun has no PMIx: the job launched its ranks with mpirun")
        with open(os.path.join(run, "_SUCCESS")) as f:
            success = json.load(f)
        self.assertEqual(success["ranks"], 2, "one MPI world of SLURM_NTASKS ranks")
        self.assertEqual(set(success["state"].values()), {"valid"})
        tables = {name: read(os.path.join(run, name), "rb") for name in TABLES}

        # Lose one embed shard, then rerun only it in that night: a job array of one and the
        # chained finish job, which finishes the night again and leaves latest on it.
        os.remove(os.path.join(run, "embed", "shard-00001.h5"))
        jobs = sh([os.path.join(lt.ARGS.source, "slurm", "rerun.sh"), config, os.path.join(root, "latest"), "1",
                   f"--output={work}/rerun-%j.out"],
                  env=dict(self.job_env(), LOOKBOOK_CPUS_PER_TASK="1"), cwd=lt.ARGS.source).stdout.split()
        self.assertEqual(len(jobs), 2)
        array_state, _ = self.wait(f"{jobs[0]}_1")
        self.assertEqual(array_state, "COMPLETED")
        finish_state, finish_code = self.wait(jobs[1])
        finish_log = read(os.path.join(work, f"rerun-{jobs[1]}.out"))
        self.assertEqual((finish_state, finish_code), ("COMPLETED", "0:0"), finish_log[-4000:])
        array_log = read(os.path.join(work, f"rerun-{jobs[0]}.out"))
        embed = [json.loads(l) for l in array_log.splitlines() if l.startswith('{"stage":"embed"') or '"stage": "embed"' in l]
        self.assertTrue(embed and embed[-1]["shards_embedded"] == 1, array_log[-3000:])
        for name, data in tables.items():
            self.assertEqual(read(os.path.join(run, name), "rb"), data, name)
        status = json.loads(lt.run(["status", run, "--format", "json"], check=0).stdout)
        self.assertEqual(status["stages"]["embed"]["state"], "valid")
        self.assertEqual(os.path.realpath(os.path.join(root, "latest")), run)
        self.assertEqual(os.listdir(os.path.join(root, "runs")), [os.path.basename(run)], "no second night")

    def test_a_stop_signal_requeues_and_the_next_start_finishes(self):
        """Slurm's time-limit warning path: USR1 to the batch shell (what --signal=B:USR1@300
        sends) reaches the ranks through the script, they stop with nothing partial and exit
        75, the script requeues the job, and its next start resumes and completes."""
        work = os.path.join(self.tmp, "signal")
        os.makedirs(work)
        demo, run = os.path.join(work, "demo"), os.path.join(work, "run")
        lt.run(["demo-catalog", "--out", demo, "--items", "2400", "--seed", "11"], check=0)
        models = os.path.join(os.path.abspath(lt.ARGS.source), "models", "demo")
        config = os.path.join(work, "nightly.ini")
        with open(config, "w") as f:
            f.write(f"run = {run}\n[ingest]\ncatalog = {demo}/catalog.csv\nimages = {demo}/images\nshards = 12\n"
                    f"[embed]\nmodel = {models}/clip\ndecode-threads = 1\nbatch-size = 8\n[recs]\ncategory-slots = {SLOTS}\n")
        out = os.path.join(work, "nightly-%j.out")
        job = self.submit("--ntasks=2", f"--output={out}", "slurm/nightly.sbatch", config)
        deadline = min(time.time() + 300, self.deadline)
        while time.time() < deadline:
            # Shards computed and waiting for the stage's publication (RUN/.work/embed).
            work = os.path.join(run, ".work", "embed")
            records = os.listdir(work) if os.path.isdir(work) else []
            if any(n.startswith("shard-") and n.endswith(".json") for n in records):
                break
            time.sleep(0.1)
        else:
            self.fail("the job never published a shard")
        sh(["scancel", "--signal=USR1", "--batch", job], env=self.env)
        state, code = self.wait(job, timeout=360)
        log = read(out.replace("%j", job))
        self.assertEqual((state, code), ("COMPLETED", "0:0"), log[-4000:])
        self.assertIn("requeueing job", log)
        self.assertIn("stop requested", log)
        restarted = log.split("requeueing job")[1]
        embed = [json.loads(l) for l in restarted.splitlines() if l.startswith('{"stage":"embed"')]
        self.assertTrue(embed, restarted[-3000:])
        self.assertGreaterEqual(embed[0]["shards_skipped"], 1, "the next start kept what the first published")
        self.assertEqual(embed[0]["shards_skipped"] + embed[0]["shards_embedded"], 12)
        with open(os.path.join(run, "_SUCCESS")) as f:
            self.assertEqual(set(json.load(f)["state"].values()), {"valid"})

    def test_world_size_guard_refuses_unconnected_ranks(self):
        lookbook = os.path.abspath(lt.ARGS.lookbook)
        mpi = ["--mpi=pmix"] if self.pmix() else []
        if not mpi:
            lt.note_partial_skip(self, "this Slurm's srun has no PMIx: srun cannot start one MPI world to check")
        if mpi:
            ok = sh(["srun", *mpi, "-n", "2", lookbook, "mpi-check", "--expect", "2"], check=False, env=self.env)
            self.assertEqual(ok.returncode, 0, ok.stderr)
            self.assertIn('"ranks":2', ok.stdout)
        # Ranks that are not the world the job asked for: the guard names the mismatch.
        short = sh(["srun", *mpi, "-n", "2", lookbook, "mpi-check", "--expect", "3"], check=False, env=self.env)
        self.assertNotEqual(short.returncode, 0)
        self.assertIn("did not connect the ranks", short.stderr)
        # Without PMI, Open MPI's ranks cannot start as one world: the job fails instead of
        # running the pipeline twice.
        alone = sh(["srun", "--mpi=none", "-n", "2", lookbook, "mpi-check", "--expect", "2"], check=False, env=self.env)
        self.assertNotEqual(alone.returncode, 0)


if __name__ == "__main__":
    lt.main()
