"""Shared helpers for the integration tests: run the real lookbook binary, with or without
mpirun, and read what it printed."""
import argparse
import json
import os
import shlex
import subprocess
import sys
import tempfile
import unittest

ARGS = None


def parse_args():
    global ARGS
    parser = argparse.ArgumentParser()
    parser.add_argument("--lookbook", required=True)
    parser.add_argument("--mpiexec", required=True, help="launcher prefix, e.g. 'mpiexec -n 2'")
    parser.add_argument("--source", required=True, help="the repository root")
    parser.add_argument("--make-bundle", help="the make_test_bundle tool")
    ARGS, rest = parser.parse_known_args()
    return [sys.argv[0]] + rest


def run(args, mpi=False, check=None):
    """Runs lookbook with `args`; returns CompletedProcess (text). check: expected exit code."""
    command = ([*shlex.split(ARGS.mpiexec)] if mpi else []) + [ARGS.lookbook, *map(str, args)]
    env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
               OMP_NUM_THREADS="1")
    result = subprocess.run(command, capture_output=True, text=True, env=env, timeout=300)
    if check is not None and result.returncode != check:
        raise AssertionError(
            f"{' '.join(command)} exited {result.returncode}, expected {check}\n"
            f"stdout:\n{result.stdout}\nstderr:\n{result.stderr}")
    return result


def summary(result):
    """The stage's one JSON summary line (the last line of stdout)."""
    lines = [line for line in result.stdout.splitlines() if line.startswith("{")]
    assert len(lines) == 1, f"expected one JSON summary line, got: {result.stdout!r}"
    return json.loads(lines[0])


def make_bundle(folder, dim=16, input_size=64):
    """A tiny real CLIP bundle (TorchScript made in C++) in `folder`."""
    subprocess.run([ARGS.make_bundle, folder, "--dim", str(dim), "--input-size", str(input_size)],
                   check=True)
    return folder


class TempDirTest(unittest.TestCase):
    def setUp(self):
        self._tmp = tempfile.TemporaryDirectory(prefix="lookbook-it-")
        self.dir = self._tmp.name

    def tearDown(self):
        self._tmp.cleanup()

    def path(self, *parts):
        return os.path.join(self.dir, *parts)


def main():
    argv = parse_args()
    unittest.main(argv=argv, verbosity=2)
