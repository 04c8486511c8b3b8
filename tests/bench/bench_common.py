"""What every benchmark script shares: running a command, reading a stage's summary line,
and naming the machine and BLAS kernel the figures came from."""
import json
import os
import subprocess

# The environment for lookbook under Open MPI as root, one OpenMP thread per rank.
# What jobs/lookbook-env.sh sets, for lookbook and its peers alike.
MPI_ENV = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1", OMP_NUM_THREADS="1",
               OMP_WAIT_POLICY="PASSIVE")


def run(command, **kwargs):
    return subprocess.run(command, check=True, capture_output=True, text=True, **kwargs)


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
