"""Shared helpers for the integration tests: run the real lookbook binary, with or without
mpirun, and read what it printed."""
import argparse
import csv
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


def run(args, mpi=False, check=None, env=None):
    """Runs lookbook with `args`; returns CompletedProcess (text). check: expected exit code;
    env: variables to add (e.g. LOOKBOOK_FAULT)."""
    command = ([*shlex.split(ARGS.mpiexec)] if mpi else []) + [ARGS.lookbook, *map(str, args)]
    full_env = dict(os.environ, OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1",
                    OMP_NUM_THREADS="1", **(env or {}))
    if mpi and env:
        command[1:1] = sum((["-x", name] for name in env), [])  # mpirun passes them to every rank
    result = subprocess.run(command, capture_output=True, text=True, env=full_env, timeout=300)
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


def summaries(result):
    """Every stage's summary line of a `lookbook run` (one per stage), by stage."""
    return {line["stage"]: line for line in map(json.loads, (l for l in result.stdout.splitlines() if l.startswith("{")))}


def read_csv(path):
    """A CSV file's rows as dicts by header."""
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


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


# Skips. A test that cannot run in some environment says why with cannot_run_here(), which
# skips with a reason that starts with "cannot run here:" and records it. Every skip is printed
# at the end and appended to $LOOKBOOK_SKIP_LOG (tests/run.sh prints that file). With
# LOOKBOOK_STRICT_SKIPS=1 (CI), any other skip fails the run: a skip must say why.
SKIP_PREFIX = "cannot run here: "


def cannot_run_here(test, reason):
    """Skips `test` (a TestCase) because this environment lacks something; `reason` says what."""
    test.skipTest(SKIP_PREFIX + reason)


def note_partial_skip(test, reason):
    """A check inside a test that could not run here (the rest of the test did): recorded and
    printed like a skip, without skipping the test."""
    _record_skip(test.id(), SKIP_PREFIX + reason, partial=True)


def _record_skip(test_id, reason, partial=False):
    line = f"{'PARTIAL SKIP' if partial else 'SKIPPED'} {test_id}: {reason}"
    print(line, file=sys.stderr)
    log = os.environ.get("LOOKBOOK_SKIP_LOG")
    if log:
        with open(log, "a") as f:
            f.write(line + "\n")


def main():
    argv = parse_args()
    program = unittest.main(argv=argv, verbosity=2, exit=False)
    result = program.result
    unexplained = []
    for test, reason in result.skipped:
        _record_skip(test.id(), reason)
        if not reason.startswith(SKIP_PREFIX):
            unexplained.append(test.id())
    if unexplained and os.environ.get("LOOKBOOK_STRICT_SKIPS") == "1":
        print(f"skips without a reason (LOOKBOOK_STRICT_SKIPS=1): {', '.join(unexplained)}", file=sys.stderr)
        sys.exit(1)
    sys.exit(0 if result.wasSuccessful() else 1)
