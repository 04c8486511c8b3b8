"""config/README.md documents every option of every command once, in that command's own
section, with the default `--help` shows: a row `| \\`name\\` | default | meaning |` under
`### \\`[command]\\``. An option missing from its section, documented under another command, or
with another default fails."""
import os
import re
import unittest

import lookbook_test as lt

COMMON = {"help", "config", "log-level"}


def sections(readme):
    """command -> {option: default cell} from config/README.md's tables."""
    out, current = {}, None
    for line in readme.splitlines():
        heading = re.match(r"^### `\[([a-z-]+)\]`", line)
        if heading:
            current = out.setdefault(heading.group(1), {})
            continue
        if line.startswith("### "):
            current = None
            continue
        row = re.match(r"^\| `([a-z][a-z0-9-]*)` \|\s*([^|]*?)\s*\|", line)
        if row and current is not None:
            current[row.group(1)] = row.group(2).strip()
    return out


def help_options(command):
    """option -> default ("" when none) from `lookbook COMMAND --help`."""
    text = lt.run([command, "--help"], check=0).stdout
    out = {}
    for match in re.finditer(r"^\s+--([a-z][a-z0-9-]*)(?: [A-Z|a-z]+)?(?: \(=([^)]*)\))?", text, re.M):
        out[match.group(1)] = match.group(2) or ""
    return out


def same_default(shown, cell):
    """Whether the documented cell names the default --help shows (floats compared as numbers:
    Boost prints 0.9f as 0.899999976)."""
    if f"`{shown}`" in cell:
        return True
    try:
        documented = [float(x) for x in re.findall(r"`([-0-9.e]+)`", cell)]
        return any(abs(float(shown) - d) <= 1e-6 * max(1.0, abs(d)) for d in documented)
    except ValueError:
        return False


class OptionsDocumented(unittest.TestCase):
    def test_every_option_is_documented_in_its_section_with_its_default(self):
        with open(os.path.join(lt.ARGS.source, "config", "README.md")) as f:
            documented = sections(f.read())
        listing = lt.run(["--help"], check=0).stdout
        commands = re.findall(r"^  ([a-z][a-z-]+) ", listing, re.M)
        self.assertIn("ingest", commands)
        problems = []
        for command in commands:
            options = {k: v for k, v in help_options(command).items() if k not in COMMON}
            if not options:
                continue
            table = documented.get(command)
            if table is None:
                problems.append(f"no ### `[{command}]` section")
                continue
            for option, default in sorted(options.items()):
                if option not in table:
                    problems.append(f"{command} --{option}: not in its section")
                elif default and not same_default(default, table[option]):
                    problems.append(f"{command} --{option}: --help default {default!r}, documented {table[option]!r}")
            for option in sorted(set(table) - set(options)):
                problems.append(f"{command}: documents --{option}, which the command does not have")
        self.assertEqual(problems, [], "config/README.md disagrees with --help")

    def test_the_check_catches_a_wrong_default(self):
        table = sections("### `[x]`: x\n| option | default | meaning |\n|---|---|---|\n| `shards` | `16` | n |\n")
        self.assertEqual(table, {"x": {"shards": "`16`"}})
        self.assertFalse(same_default("32", table["x"]["shards"]))
        self.assertTrue(same_default("0.899999976", "`0.9`"))
        self.assertFalse(same_default("0.899999976", "`0.95`"))


if __name__ == "__main__":
    lt.main()
