"""config/README.md's option reference is what the commands' option tables say: the region
between its options markers must equal `lookbook --options-markdown`, so that no option, default,
range or meaning can drift from the code. With LOOKBOOK_UPDATE_DOCS=1 the test rewrites the region
instead (after an option changed). Every option --help lists must also be in the reference."""
import os
import re
import unittest

import lookbook_test as lt

BEGIN = "<!-- options:begin"
END = "<!-- options:end -->"


class OptionsDocumented(unittest.TestCase):
    def test_the_reference_is_generated_from_the_option_tables(self):
        path = os.path.join(lt.ARGS.source, "config", "README.md")
        with open(path) as f:
            readme = f.read()
        begin = readme.index("\n", readme.index(BEGIN)) + 1
        end = readme.index(END)
        generated = lt.run(["--options-markdown"], check=0).stdout
        if os.environ.get("LOOKBOOK_UPDATE_DOCS") == "1":
            with open(path, "w") as f:
                f.write(readme[:begin] + generated + readme[end:])
            return
        self.assertEqual(readme[begin:end], generated,
                         "config/README.md's options differ from the tables: LOOKBOOK_UPDATE_DOCS=1 ctest -R options_documented")

    def test_every_option_help_lists_is_in_its_section(self):
        generated = lt.run(["--options-markdown"], check=0).stdout
        sections = {}
        for block in generated.split("\n### ")[1:]:
            name = re.match(r"`\[([a-z-]+)\]`", block)
            if name:
                sections[name.group(1)] = set(re.findall(r"^\| `([a-z0-9-]+)` \|", block, re.M))
        listing = lt.run(["--help"], check=0).stdout
        for command in re.findall(r"^  ([a-z][a-z-]+) ", listing, re.M):
            text = lt.run([command, "--help"], check=0).stdout
            options = set(re.findall(r"^\s+--([a-z][a-z0-9-]*)", text, re.M)) - {"help", "config", "log-level"}
            if options:
                self.assertEqual(options, sections.get(command), command)


if __name__ == "__main__":
    lt.main()
