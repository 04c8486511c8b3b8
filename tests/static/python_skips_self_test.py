#!/usr/bin/env python3
"""The strict-skip rule of the Python integration tests (tests/integration/lookbook_test.py),
shown on planted tests: under LOOKBOOK_STRICT_SKIPS=1 (tests/run.sh, CI) a test that skips
without saying why it cannot run here fails the file; one that says why passes, and both are
written to LOOKBOOK_SKIP_LOG.

  tests/static/python_skips_self_test.py     exit 0 when both outcomes hold
"""
import os
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
INTEGRATION = os.path.join(os.path.dirname(HERE), "integration")

TEMPLATE = """import sys
sys.path.insert(0, {integration!r})
import unittest
import lookbook_test as lt


class Planted(unittest.TestCase):
    def test_skips(self):
        {skip}


if __name__ == "__main__":
    lt.main()
"""


def run(skip, tmp):
    path = os.path.join(tmp, "test_planted.py")
    with open(path, "w") as f:
        f.write(TEMPLATE.format(integration=INTEGRATION, skip=skip))
    log = os.path.join(tmp, "skips.log")
    env = dict(os.environ, LOOKBOOK_STRICT_SKIPS="1", LOOKBOOK_SKIP_LOG=log)
    result = subprocess.run([sys.executable, path, "--lookbook", "/nonexistent", "--mpiexec", "mpirun",
                             "--source", tmp], capture_output=True, text=True, env=env)
    with open(log) as f:
        logged = f.read()
    return result.returncode, result.stderr, logged


def main():
    with tempfile.TemporaryDirectory() as tmp:
        bare, bare_err, bare_log = run('self.skipTest("later")', tmp)
        said, _, said_log = run('lt.cannot_run_here(self, "no GPU")', tmp)
    ok = (bare == 1 and "skips without a reason" in bare_err and "later" in bare_log and said == 0
          and "cannot run here: no GPU" in said_log)
    print("python skips self-test:", "a skip without a reason fails, one with a reason passes, both logged"
          if ok else f"FAILED (exit {bare} and {said})\n{bare_err}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
