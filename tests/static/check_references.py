#!/usr/bin/env python3
"""Every reference to the README or a doc in the repository must resolve.

Checks, over every tracked text file:
  - Markdown links to local files ([text](path) and [text](path#anchor)): the file exists and,
    with an anchor, one of its headings has that GitHub anchor;
  - plain references in comments, scripts and docs, written `README.md#anchor`,
    `docs/FILE.md#anchor`, `models/README.md` (relative to the repository root, or `../`
    relative to the file): the same;
  - the older free-text forms ("README: Dedup", "README, \"Errors\"", "the README's Index
    section") are refused: they cannot be checked, so they drift;
  - nothing points outside the repository (`../shared`): a user's clone has no such folder.
    Only the tests that compare against reference data may name it (they skip without it).

  tests/static/check_references.py [ROOT]     exit 1 with one line per broken reference
  tests/static/check_references.py --self-test   plants each kind of broken reference in a scratch
                                                 repository and checks that every one is reported
"""
import os
import re
import subprocess
import sys

TEXT_SUFFIXES = (".md", ".h", ".cpp", ".py", ".sh", ".ini", ".sbatch", ".txt", ".cmake", ".clang-format")
# Files that may name ../shared: the golden tests and what runs them.
SHARED_ALLOWED = ("tests/unit/clip_tokenizer_test.cpp", "tests/run.sh", "tests/static/check_references.py",
                  "tests/CMakeLists.txt")

MD_LINK = re.compile(r"\[[^\]]*\]\(([^)\s]+)\)")
PLAIN = re.compile(r"(?<![\w/.\-\[(])((?:\.\./)*(?:[\w.-]+/)*(?:README\.md|docs/[\w.-]+\.md))(#[\w-]+)?")
FREE_TEXT = re.compile(r"(?<![\w/])README(?:(?:\.md)?(?:[:,]\s*(?:\"|[A-Z]|$)|\s+[A-Z][a-z]+\b|'s\s+[A-Z]\w*\s+section"
                       r"|\s+(?:calls|says|explains)\b)|\))")
SELF = "tests/static/check_references.py"


def slug(heading):
    text = heading.strip().lower()
    text = re.sub(r"[`*]", "", text)  # GitHub keeps underscores: "## _SUCCESS" is #_success
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", text)
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


_anchors = {}


def anchors(path):
    if path not in _anchors:
        found = set()
        counts = {}
        in_code = False
        with open(path, encoding="utf-8") as f:
            for line in f:
                if line.startswith("```"):
                    in_code = not in_code
                    continue
                m = re.match(r"#{1,6}\s+(.*)", line)
                if m and not in_code:
                    s = slug(m.group(1))
                    n = counts.get(s, 0)
                    counts[s] = n + 1
                    found.add(s if n == 0 else f"{s}-{n}")
        _anchors[path] = found
    return _anchors[path]


def check_target(root, base_dir, target, anchor, where, problems):
    path = os.path.normpath(os.path.join(base_dir, target))
    if not path.startswith(root + os.sep) and path != root:
        problems.append(f"{where}: {target} points outside the repository")
        return
    if not os.path.exists(path):
        problems.append(f"{where}: {target} does not exist")
        return
    if anchor and path.endswith(".md") and anchor not in anchors(path):
        problems.append(f"{where}: {target}#{anchor}: no such heading (have: {', '.join(sorted(anchors(path)))})")


def check(root):
    files = subprocess.run(["git", "ls-files", "--cached", "--others", "--exclude-standard"], cwd=root,
                           capture_output=True, text=True, check=True).stdout.split()
    problems = []
    for name in files:
        if not (name.endswith(TEXT_SUFFIXES) or name in (".ci/run", "CMakeLists.txt") or name.endswith("CMakeLists.txt")):
            continue
        full = os.path.join(root, name)
        if not os.path.isfile(full) or name == SELF:
            continue
        with open(full, encoding="utf-8", errors="replace") as f:
            lines = f.read().splitlines()
        is_md = name.endswith(".md")
        in_code = False
        for number, line in enumerate(lines, 1):
            where = f"{name}:{number}"
            if "../shared" in line and name not in SHARED_ALLOWED:
                problems.append(f"{where}: names ../shared, which a user's clone does not have")
            link_spans = [m.span() for m in MD_LINK.finditer(line)] if is_md else []
            if any(not any(a <= m.start() < b for a, b in link_spans) for m in FREE_TEXT.finditer(line)):
                problems.append(f"{where}: free-text README reference; write README.md#anchor or docs/FILE.md#anchor")
            if is_md:
                if line.startswith("```"):
                    in_code = not in_code
                for m in MD_LINK.finditer(line):
                    target = m.group(1)
                    if re.match(r"[a-z]+:", target):
                        continue  # http:, https:, mailto:
                    file_part, _, anchor = target.partition("#")
                    if not file_part:
                        check_target(root, os.path.dirname(full), os.path.basename(full), anchor, where, problems)
                    else:
                        check_target(root, os.path.dirname(full), file_part, anchor, where, problems)
            spans = [m.span() for m in MD_LINK.finditer(line)] if is_md else []
            for m in PLAIN.finditer(line):
                if any(a <= m.start() < b for a, b in spans):
                    continue
                target, anchor = m.group(1), (m.group(2) or "")[1:]
                base = os.path.dirname(full) if target.startswith("../") else root
                check_target(root, base, target, anchor, where, problems)
    return files, problems


def self_test():
    """Each planted fault must be reported, and the clean file must not be."""
    import tempfile
    planted = {
        "README.md": "# Title\n## Use it\n[ok](README.md#use-it) [ok2](docs/a.md#_success)\n",
        "docs/a.md": "# A\n## _SUCCESS\n[gone](missing.md)\n[bad anchor](../README.md#no-such)\n",
        "src/x.h": "// see docs/a.md#nowhere and README: Errors\n// the README calls it so\n// ../shared/x\n",
    }
    expected = ["docs/a.md:3: missing.md does not exist", "docs/a.md:4: ../README.md#no-such: no such heading",
                "src/x.h:1: docs/a.md#nowhere: no such heading", "src/x.h:1: free-text README reference",
                "src/x.h:2: free-text README reference", "src/x.h:3: names ../shared"]
    with tempfile.TemporaryDirectory() as root:
        for name, text in planted.items():
            os.makedirs(os.path.join(root, os.path.dirname(name)), exist_ok=True)
            with open(os.path.join(root, name), "w") as f:
                f.write(text)
        subprocess.run(["git", "init", "-q", root], check=True)
        _, problems = check(os.path.realpath(root))
    missed = [e for e in expected if not any(p.startswith(e) for p in problems)]
    extra = [p for p in problems if not any(p.startswith(e) for e in expected)]
    for line in missed:
        print(f"self-test: not reported: {line}")
    for line in extra:
        print(f"self-test: reported without a fault: {line}")
    if missed or extra:
        return 1
    print(f"references self-test: all {len(expected)} planted faults reported, nothing else")
    return 0


def main():
    if sys.argv[1:] == ["--self-test"]:
        return self_test()
    root = os.path.abspath(sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..", ".."))
    files, problems = check(root)
    for problem in problems:
        print(problem)
    if problems:
        print(f"{len(problems)} broken reference(s)", file=sys.stderr)
        return 1
    print(f"references: {len(files)} files checked, all resolve")
    return 0


if __name__ == "__main__":
    sys.exit(main())
