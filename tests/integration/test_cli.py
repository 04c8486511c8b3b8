"""The command line as a user meets it: help, usage errors (exit 2, one line naming the
option), config files (the command line wins), input errors (exit 1), with and without
mpirun."""
import os

import lookbook_test as lt


class Cli(lt.TempDirTest):
    def setUp(self):
        super().setUp()
        os.makedirs(self.path("images"))
        with open(self.path("images", "a.jpg"), "wb") as f:
            f.write(b"jpeg")
        with open(self.path("catalog.csv"), "w") as f:
            f.write("product_id,image_1\np1,a.jpg\np2,a.jpg\np3,a.jpg\n")

    def ingest_args(self, run="run"):
        return ["ingest", "--catalog", self.path("catalog.csv"), "--images", self.path("images"),
                "--run", self.path(run)]

    def assert_usage_error(self, args, needle, mpi=False):
        result = lt.run(args, mpi=mpi, check=2)
        # Under mpirun the launcher adds its own report; ours is one line, from rank 0 only.
        lines = [line for line in result.stderr.splitlines()
                 if line.strip() and (not mpi or line.startswith("lookbook"))]
        self.assertEqual(len(lines), 1, result.stderr)
        self.assertIn(needle, lines[0])

    def test_help_lists_commands_and_options(self):
        result = lt.run(["--help"], check=0)
        for command in ["ingest", "demo-catalog"]:
            self.assertIn(command, result.stdout)
        result = lt.run(["ingest", "--help"], check=0)
        for option in ["--catalog", "--images", "--run", "--shards", "--layout", "--config"]:
            self.assertIn(option, result.stdout)
        lt.run([], check=2)

    def test_usage_errors_name_the_option(self):
        self.assert_usage_error(["frobnicate"], "unknown command 'frobnicate'")
        self.assert_usage_error(self.ingest_args() + ["--shard", "3"], "--shard")
        self.assert_usage_error(["ingest", "--images", "x", "--run", "y"], "--catalog")
        self.assert_usage_error(self.ingest_args() + ["--shards", "many"], "--shards")
        self.assert_usage_error(self.ingest_args() + ["--shards", "0"], "--shards")
        self.assert_usage_error(self.ingest_args() + ["--layout", "zara"], "--layout")
        self.assert_usage_error(self.ingest_args() + ["--log-level", "loud"], "--log-level")
        self.assert_usage_error(["demo-catalog", "--out", self.dir, "--items", "0"], "--items")

    def test_usage_errors_under_mpirun_exit_2_on_every_rank(self):
        self.assert_usage_error(self.ingest_args() + ["--shards", "many"], "--shards", mpi=True)

    def write_config(self, text):
        with open(self.path("lookbook.ini"), "w") as f:
            f.write(text)
        return self.path("lookbook.ini")

    def shard_count(self, run):
        folder = self.path(run, "ingest")
        return len([n for n in os.listdir(folder) if n.startswith("shard-")])

    def test_config_file_and_command_line_precedence(self):
        config = self.write_config("# nightly\nshards = 3\nlog-level = warn\n"
                                   "[ingest]\nio-threads = 2\n[demo-catalog]\nitems = 50\n")
        lt.run(self.ingest_args("top") + ["--config", config], check=0)
        self.assertEqual(self.shard_count("top"), 3)
        config = self.write_config("shards = 3\n[ingest]\nshards = 5\n")
        lt.run(self.ingest_args("section") + ["--config", config], check=0)
        self.assertEqual(self.shard_count("section"), 5, "[ingest] wins over the top")
        lt.run(self.ingest_args("cli") + ["--config", config, "--shards", "2"], check=0)
        self.assertEqual(self.shard_count("cli"), 2, "the command line wins over the file")

    def test_config_file_errors(self):
        config = self.write_config("[ingest]\nshard = 5\n")
        self.assert_usage_error(self.ingest_args() + ["--config", config], "'shard' in [ingest]")
        config = self.write_config("[ingets]\nshards = 5\n")
        self.assert_usage_error(self.ingest_args() + ["--config", config], "[ingets]")
        config = self.write_config("[demo-catalog]\nshards = 5\n")
        self.assert_usage_error(self.ingest_args() + ["--config", config], "[demo-catalog]")
        self.assert_usage_error(self.ingest_args() + ["--config", self.path("none.ini")],
                                "none.ini")

    def test_input_errors_exit_1_with_the_reason(self):
        result = lt.run(["ingest", "--catalog", self.path("nope.csv"), "--images",
                         self.path("images"), "--run", self.path("run")], check=1)
        self.assertIn("nope.csv", result.stderr)
        result = lt.run(["ingest", "--catalog", self.path("nope.csv"), "--images",
                         self.path("images"), "--run", self.path("run")], mpi=True, check=1)
        self.assertIn("nope.csv", result.stderr)
        with open(self.path("bad.csv"), "w") as f:
            f.write("sku,picture\n1,a.jpg\n")
        result = lt.run(["ingest", "--catalog", self.path("bad.csv"), "--images",
                         self.path("images"), "--run", self.path("run")], check=1)
        self.assertIn("lacks required column(s) 'product_id'", result.stderr)
        result = lt.run(["ingest", "--catalog", self.path("catalog.csv"), "--images",
                         self.path("no-images"), "--run", self.path("run")], check=1)
        self.assertIn("no-images", result.stderr)

    def test_custom_column_mapping(self):
        with open(self.path("other.csv"), "w") as f:
            f.write("sku;x,front,back,family\n1,a.jpg,,Dress\n")
        result = lt.run(["ingest", "--catalog", self.path("other.csv"), "--images",
                         self.path("images"), "--run", self.path("run"), "--id-column", "sku;x",
                         "--image-columns", "front,back", "--category-column", "family"], check=0)
        self.assertEqual(lt.summary(result)["rows_ok"], 1)

    def test_demo_catalog_under_mpirun_is_written_once(self):
        result = lt.run(["demo-catalog", "--out", self.path("demo"), "--items", "30"], mpi=True,
                        check=0)
        stats = lt.summary(result)
        self.assertEqual(stats["products"], 30)
        result = lt.run(["ingest", "--catalog", self.path("demo", "catalog.csv"), "--images",
                         self.path("demo", "images"), "--run", self.path("run")], mpi=True, check=0)
        stats = lt.summary(result)
        self.assertEqual(stats["rows_ok"], 30)
        self.assertEqual(stats["rows_rejected"], 0)


if __name__ == "__main__":
    lt.main()
