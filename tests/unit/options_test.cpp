#include "util/options.h"

#include <gtest/gtest.h>

namespace lookbook {
namespace {

struct Sample {
  int count = 0;
  std::uint64_t bytes = 0;
  double ratio = 0;
  std::string mode;
  int threads = 0;
  std::filesystem::path run;
  RerunPolicy rerun = RerunPolicy::kReuseValid;
};

OptionTable<Sample> Table() {
  OptionTable<Sample> t;
  t.Path(
      "run", "DIR", [](Sample& s) -> std::filesystem::path& { return s.run; }, true, "the run");
  t.Integer<int>(
      "count", "N", [](Sample& s) -> int& { return s.count; }, 16, 1, 100, OptionEffect::kOutput, "n");
  t.Integer<std::uint64_t>(
      "bytes", "B", [](Sample& s) -> std::uint64_t& { return s.bytes; }, 64, 1, 1000, OptionEffect::kOutput, "b");
  t.Real<double>(
      "ratio", "R", [](Sample& s) -> double& { return s.ratio; }, "0.5", 0, 1, OptionEffect::kOutput, "r");
  t.Text("mode", "M", [](Sample& s) -> std::string& { return s.mode; }, "a", OptionEffect::kOutput, "m", {"a", "b"});
  t.Integer<int>(
      "threads", "N", [](Sample& s) -> int& { return s.threads; }, 1, 1, 8, OptionEffect::kResource, "t");
  t.Force([](Sample& s) -> RerunPolicy& { return s.rerun; }, "force");
  return t;
}

std::string UsageErrorOf(const OptionValues& given) {
  Sample sample;
  try {
    Table().Parse(given, &sample);
  } catch (const UsageError& error) {
    return error.what();
  }
  return "";
}

TEST(OptionTable, DefaultsAndGivenValues) {
  Sample sample;
  Table().Parse({{"run", {"/r"}}, {"count", {"7"}}, {"force", {"1"}}}, &sample);
  EXPECT_EQ(sample.run, "/r");
  EXPECT_EQ(sample.count, 7);
  EXPECT_EQ(sample.bytes, 64u);
  EXPECT_DOUBLE_EQ(sample.ratio, 0.5);
  EXPECT_EQ(sample.mode, "a");
  EXPECT_EQ(sample.rerun, RerunPolicy::kForce);
}

TEST(OptionTable, EveryValueIsCheckedAndNoneWraps) {
  EXPECT_NE(UsageErrorOf({{"count", {"5"}}}).find("--run"), std::string::npos) << "required";
  for (const char* bad : {"0", "-1", "101", "1e3", "7x", "", "99999999999999999999"}) {
    EXPECT_NE(UsageErrorOf({{"run", {"/r"}}, {"count", {bad}}}).find("--count"), std::string::npos) << bad;
  }
  for (const char* bad : {"-1", "0", "18446744073709551615", "1001"}) {
    EXPECT_NE(UsageErrorOf({{"run", {"/r"}}, {"bytes", {bad}}}).find("--bytes"), std::string::npos) << bad;
  }
  for (const char* bad : {"-0.1", "1.5", "nan", "inf", "x"}) {
    EXPECT_NE(UsageErrorOf({{"run", {"/r"}}, {"ratio", {bad}}}).find("--ratio"), std::string::npos) << bad;
  }
  EXPECT_NE(UsageErrorOf({{"run", {"/r"}}, {"mode", {"c"}}}).find("--mode must be a | b"), std::string::npos);
  // Each spec checks a value on its own too (what jobs/ does before a command starts).
  for (const auto& spec : Table().specs()) {
    if (spec.name == "count") {
      EXPECT_THROW(spec.check("-1"), UsageError);
      EXPECT_NO_THROW(spec.check("5"));
    }
  }
}

TEST(OptionTable, OnlyOptionsThatChangeOutputsAreInTheIdentity) {
  Sample a, b;
  Table().Parse({{"run", {"/one"}}, {"threads", {"2"}}}, &a);
  Table().Parse({{"run", {"/two"}}, {"threads", {"8"}}, {"force", {"1"}}}, &b);
  EXPECT_EQ(Table().Identity(a), Table().Identity(b)) << "run folder, threads and --force change no output";
  EXPECT_EQ(Table().Identity(a).count("threads"), 0u);
  EXPECT_EQ(Table().Identity(a).count("count"), 1u);
  Table().Parse({{"run", {"/two"}}, {"count", {"17"}}}, &b);
  EXPECT_NE(Table().Identity(a), Table().Identity(b));
  Table().Parse({{"run", {"/two"}}, {"ratio", {"0.50"}}}, &b);
  EXPECT_EQ(Table().Identity(a).at("ratio"), Table().Identity(b).at("ratio")) << "the value, not its spelling";
}

TEST(OptionTable, AnOptionOnlyWithAnotherIsOutOfTheIdentityWithoutIt) {
  struct Garmented {
    std::filesystem::path run, segmenter;
    int side = 0;
  };
  OptionTable<Garmented> t;
  t.Path(
      "run", "DIR", [](Garmented& g) -> std::filesystem::path& { return g.run; }, true, "the run");
  t.Integer<int>(
       "side", "N", [](Garmented& g) -> int& { return g.side; }, 8, 1, 64, OptionEffect::kOutput, "s")
      .OnlyWith("segmenter");
  t.Path(
      "segmenter", "B", [](Garmented& g) -> std::filesystem::path& { return g.segmenter; }, false, "the bundle");
  Garmented without, other_side, with;
  t.Parse({{"run", {"/r"}}}, &without);
  t.Parse({{"run", {"/r"}}, {"side", {"16"}}}, &other_side);
  t.Parse({{"run", {"/r"}}, {"segmenter", {"/s"}}}, &with);
  EXPECT_EQ(t.Identity(without).count("side"), 0u);
  EXPECT_EQ(t.Identity(without), t.Identity(other_side)) << "--side changes nothing without --segmenter";
  EXPECT_EQ(t.Identity(with).at("side"), "8");
  EXPECT_NE(t.specs()[1].help.find("(with --segmenter)"), std::string::npos) << t.specs()[1].help;
  // A table that names an option it lacks is a programming error, found on first use.
  OptionTable<Garmented> broken;
  broken
      .Integer<int>(
          "side", "N", [](Garmented& g) -> int& { return g.side; }, 8, 1, 64, OptionEffect::kOutput, "s")
      .OnlyWith("segmentor");
  EXPECT_THROW(broken.Identity(with), InternalError);
}

}  // namespace
}  // namespace lookbook
