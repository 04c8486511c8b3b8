"""What every benchmark script shares: running a command, reading a stage's summary line,
and naming the machine and BLAS kernel the figures came from."""
import json
import os
import statistics
import subprocess
import time

# The environment for lookbook under Open MPI as root, one OpenMP thread per rank.
# What jobs/lookbook-env.sh sets, for lookbook and its peers alike.
MPI_ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1",
               OMP_WAIT_POLICY="PASSIVE")


def run(command, **kwargs):
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)


def paired_rounds(ours, peer, rounds):
    """Runs ours() and peer() in `rounds` pairs, one after the other, the order alternating:
    this VM's speed drifts over minutes by more than the gaps we measure, and whichever ran
    second in a pair was measured slower more often than not. Returns [(ours(), peer())]."""
    pairs = []
    for round_ in range(rounds):
        if round_ % 2 == 0:
            mine = ours()
            pairs.append((mine, peer()))
        else:
            theirs = peer()
            pairs.append((ours(), theirs))
    return pairs


def side_by_side(ours, peer, rounds, seconds, env, startup=15.0):
    """One-thread measurements on two cores at once. Each round starts both commands together,
    each pinned to its own core (swapped every round), and both measure the same wall-clock
    window: they load and warm up, then wait for --start-at. The host's drift, which moved this
    VM's one-thread speed by up to 40% within a minute, then hits both alike, where paired
    rounds one after the other left a spread of +-10% in the ratio.

    ours and peer: argument lists that take --seconds and --start-at and print a JSON line with
    images_per_s, window ([start, end], epoch seconds) and late. Returns [(ours, peer)] of those
    lines, each with its core and, on ours, the windows' overlap (a fraction of the longer)."""
    if (os.cpu_count() or 1) < 2:
        raise RuntimeError("side_by_side needs two cores")
    pairs = []
    while len(pairs) < rounds:
        cores = (0, 1) if len(pairs) % 2 == 0 else (1, 0)
        start_at = time.time() + startup
        processes = [subprocess.Popen(["taskset", "-c", str(core), *command, "--seconds", str(seconds),
                                       "--start-at", f"{start_at:.3f}"],
                                      stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
                     for core, command in zip(cores, (ours, peer))]
        lines = []
        for process in processes:
            out, err = process.communicate()
            if process.returncode != 0:
                raise RuntimeError(f"{process.args} exited {process.returncode}: {err}")
            lines.append(json.loads(out.strip().splitlines()[-1]))
        if any(line["late"] for line in lines):
            startup *= 2  # a warm-up overran the start: the round does not count
            if startup > 240:
                raise RuntimeError("the warm-ups overran the start time four times")
            continue
        mine, theirs = lines
        shared = min(mine["window"][1], theirs["window"][1]) - max(mine["window"][0], theirs["window"][0])
        mine["overlap"] = shared / max(mine["window"][1] - mine["window"][0], theirs["window"][1] - theirs["window"][0])
        mine["core"], theirs["core"] = cores
        pairs.append((mine, theirs))
    return pairs


def ratio_summary(rates):
    """[(ours, peer)] rates -> the median of the per-round ratios and their spread."""
    ratios = sorted(mine / theirs for mine, theirs in rates)
    return {"ratio": statistics.median(ratios), "ratio_min": ratios[0], "ratio_max": ratios[-1],
            "rounds": len(ratios)}


def images_per_s_summary(pairs):
    """[(ours, peer)] JSON lines of inference_bench and pytorch_peer.py -> ratio_summary, each
    side's median images/s (lookbook_per_s, pytorch_per_s) and lookbook's BLAS kernel."""
    rates = [(mine["images_per_s"], theirs["images_per_s"]) for mine, theirs in pairs]
    return {**ratio_summary(rates), "lookbook_per_s": statistics.median(mine for mine, _ in rates),
            "pytorch_per_s": statistics.median(theirs for _, theirs in rates), "blas_core": pairs[0][0]["blas_core"]}


def summary(stdout):
    """A lookbook command's one JSON summary line."""
    return json.loads([line for line in stdout.splitlines() if line.startswith("{")][-1])


def describe_machine(results):
    cpu = next((line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name")), "?")
    results["machine"] = f"{cpu}, {os.cpu_count()} cores"
    results["openblas_coretype_env"] = os.environ.get("OPENBLAS_CORETYPE", "(unset)")


def finish(results, json_path):
    describe_machine(results)
    print(json.dumps(results, indent=2))
    if json_path:
        with open(json_path, "w") as f:
            json.dump(results, f, indent=2)
