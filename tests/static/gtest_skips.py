#!/usr/bin/env python3
"""The skipped GoogleTest cases of one or more --gtest_output=xml reports, by name and reason.

  tests/static/gtest_skips.py LABEL REPORT.xml... [--log FILE]

Prints one line per skipped test ("LABEL Suite.Test: reason") and appends them to FILE. With
LOOKBOOK_STRICT_SKIPS=1 (tests/run.sh, CI), a skip whose reason does not start with
"cannot run here: " fails (exit 1): a test may skip only where it says why it cannot run.
  tests/static/gtest_skips.py --self-test   checks both outcomes on planted reports
"""
import os
import sys
import tempfile
import xml.etree.ElementTree as ET

PREFIX = "cannot run here: "


def skips(paths):
    found = []
    for path in paths:
        for case in ET.parse(path).getroot().iter("testcase"):
            skipped = case.find("skipped")
            if skipped is None and case.get("result") != "skipped":
                continue
            reason = (skipped.get("message") if skipped is not None else "") or ""
            # GoogleTest writes "file:line\nmessage"; the message is what the test said.
            reason = reason.split("\n", 1)[-1].strip()
            found.append((f"{case.get('classname')}.{case.get('name')}", reason))
    return found


def report(label, paths, log, strict):
    unexplained = []
    lines = []
    for name, reason in skips(paths):
        lines.append(f"{label} {name}: {reason or '(no reason given)'}")
        if not reason.startswith(PREFIX):
            unexplained.append(name)
    for line in lines:
        print(line)
    if log:
        with open(log, "a") as f:
            f.writelines(line + "\n" for line in lines)
    if unexplained and strict:
        print(f"skips without a reason (LOOKBOOK_STRICT_SKIPS=1): {', '.join(unexplained)}", file=sys.stderr)
        return 1
    return 0


def self_test():
    template = ('<?xml version="1.0"?><testsuites><testsuite name="S">'
                '<testcase name="Ran" classname="S" status="run" result="completed"/>'
                '<testcase name="Skip" classname="S" status="run" result="skipped">'
                '<skipped message="x.cpp:1&#x0A;{}"/></testcase></testsuite></testsuites>')
    with tempfile.TemporaryDirectory() as tmp:
        good, bad = os.path.join(tmp, "good.xml"), os.path.join(tmp, "bad.xml")
        with open(good, "w") as f:
            f.write(template.format(PREFIX + "no data"))
        with open(bad, "w") as f:
            f.write(template.format("later"))
        ok = report("self-test", [good], None, True) == 0 and report("self-test", [bad], None, True) == 1
    print("gtest skips self-test:", "a skip with a reason passes, one without fails" if ok else "FAILED")
    return 0 if ok else 1


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    args = sys.argv[1:]
    log = None
    if "--log" in args:
        i = args.index("--log")
        log = args[i + 1]
        del args[i:i + 2]
    if len(args) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    return report(args[0], args[1:], log, os.environ.get("LOOKBOOK_STRICT_SKIPS") == "1")


if __name__ == "__main__":
    sys.exit(main())
