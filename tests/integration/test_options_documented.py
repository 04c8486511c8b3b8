"""config/README.md documents every option of every command once: each option that
`lookbook <command> --help` lists must appear there as `name`."""
import os
import re
import unittest

import lookbook_test as lt


class OptionsDocumented(unittest.TestCase):
    def test_every_option_is_documented(self):
        with open(os.path.join(lt.ARGS.source, "config", "README.md")) as f:
            readme = f.read()
        listing = lt.run(["--help"], check=0).stdout
        commands = re.findall(r"^  ([a-z][a-z-]+) ", listing, re.M)
        self.assertIn("ingest", commands)
        missing = []
        for command in commands:
            text = lt.run([command, "--help"], check=0).stdout
            for option in sorted(set(re.findall(r"^\s+--([a-z][a-z-]*)", text, re.M))):
                if option == "help":
                    continue
                if f"`{option}`" not in readme:
                    missing.append(f"{command} --{option}")
        self.assertEqual(missing, [], "options missing from config/README.md")


if __name__ == "__main__":
    lt.main()
