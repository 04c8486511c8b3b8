"""Every numeric option of every command is parsed into a checked range: given -1, 0 and a huge
value, an option answers with a one-line usage error (exit 2) naming it wherever the value is
outside its documented range, and never wraps around (--max-image-bytes -1 is not 2^64 - 1).
The options and their ranges come from `lookbook --options-markdown` (the option tables)."""
import concurrent.futures
import os
import re
import unittest

import lookbook_test as lt

VALUES = ["-1", "0", "1" + "0" * 30]


def numeric_options():
    """(command, option, low, high, required options) for every option with a numeric range."""
    text = lt.run(["--options-markdown"], check=0).stdout
    out = []
    for block in text.split("\n### ")[1:]:
        name = re.match(r"`\[([a-z-]+)\]`", block)
        if not name:
            continue
        rows = re.findall(r"^\| `([a-z0-9-]+)` \| ([^|]*) \| ((?:[^|]|\\\|)*) \|", block, re.M)
        required = [option for option, default, _ in rows if default.strip() == "required"]
        for option, _, values in rows:
            values = values.strip()
            integer = re.fullmatch(r"(-?\d+)\.\.(\d+)", values)
            real = re.fullmatch(r"\[(-?[\d.e+-]+), ([\d.e+-]+|\.\.\.)\]", values)
            if integer:
                out.append((name.group(1), option, float(integer.group(1)), float(integer.group(2)), required))
            elif real:
                high = float("inf") if real.group(2) == "..." else float(real.group(2))
                out.append((name.group(1), option, float(real.group(1)), high, required))
    return out


class OptionRanges(lt.TempDirTest):
    def test_every_numeric_option_is_range_checked(self):
        options = numeric_options()
        self.assertGreater(len(options), 30)
        commands = {command for command, *_ in options}
        for wanted in ("ingest", "embed", "index", "dedup", "recs", "report", "query", "eval", "demo-catalog"):
            self.assertIn(wanted, commands)
        cases = []
        for command, option, low, high, required in options:
            for value in VALUES:
                if low <= float(value) <= high:
                    continue  # in range: the command would run; test_cli covers valid options
                args = [command]
                for name in required:
                    if name != option:
                        args += [f"--{name}", {"what": "model", "expect": "1"}.get(name, self.path(f"x-{name}"))]
                args += [f"--{option}", value] + (["--text", "x"] if command == "query" else [])
                cases.append((option, args))
        # Independent processes that each stop at option parsing: several at a time.
        with concurrent.futures.ThreadPoolExecutor(max_workers=4) as pool:
            results = list(pool.map(lambda case: (case, lt.run(case[1])), cases))
        for (option, args), result in results:
            self.assertEqual(result.returncode, 2, f"{args}: {result.stderr[-500:]}")
            lines = [line for line in result.stderr.splitlines() if line.strip()]
            self.assertEqual(len(lines), 1, lines)
            self.assertIn(f"--{option}", lines[0])
        checked = len(results)
        self.assertGreater(checked, 60)


if __name__ == "__main__":
    lt.main()
