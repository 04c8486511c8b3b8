#include "util/manifest.h"

#include <gtest/gtest.h>

#include <fstream>

#include "tests/unit/test_support.h"
#include "util/hash.h"
#include "util/json_fields.h"

namespace lookbook {
namespace {

StageManifest SampleManifest(const std::filesystem::path& dir) {
  testing::WriteFile(dir / "shard-00000.csv", "header\nrow\n");
  StageManifest manifest;
  manifest.stage = "ingest";
  manifest.code_version = "test";
  manifest.options = {{"shards", "1"}};
  manifest.options_hash = OptionsHash(manifest.options);
  manifest.outputs.push_back(DescribeFile(dir / "shard-00000.csv", "shard-00000.csv", 1));
  manifest.counts = {{"rows_in", 1}};
  return manifest;
}

TEST(Manifest, RoundTripsThroughJson) {
  testing::ScopedTempDir dir;
  const StageManifest written = SampleManifest(dir.path());
  WriteManifest(dir.path(), written);
  std::string why_not;
  const auto read = ReadManifest(dir.path(), &why_not);
  ASSERT_TRUE(read) << why_not;
  EXPECT_EQ(read->stage, "ingest");
  EXPECT_EQ(read->options, written.options);
  EXPECT_EQ(read->options_hash, written.options_hash);
  ASSERT_EQ(read->outputs.size(), 1u);
  EXPECT_EQ(read->outputs[0].checksum, FormatChecksum(Xxh3("header\nrow\n")));
  EXPECT_EQ(read->outputs[0].rows, 1);
  EXPECT_EQ(read->counts.at("rows_in"), 1);
  EXPECT_EQ(VerifyOutputs(dir.path(), *read), "");
}

TEST(Manifest, VerifyFindsChangedAndMissingOutputs) {
  testing::ScopedTempDir dir;
  const StageManifest manifest = SampleManifest(dir.path());
  testing::WriteFile(dir.path() / "shard-00000.csv", "header\nrow!\n");
  EXPECT_EQ(VerifyOutputs(dir.path(), manifest), "shard-00000.csv: size changed");
  testing::WriteFile(dir.path() / "shard-00000.csv", "header\nrox\n");
  EXPECT_EQ(VerifyOutputs(dir.path(), manifest), "shard-00000.csv: checksum mismatch");
  std::filesystem::remove(dir.path() / "shard-00000.csv");
  EXPECT_EQ(VerifyOutputs(dir.path(), manifest), "shard-00000.csv: missing");
}

TEST(Manifest, MissingOrMalformedManifestSaysWhy) {
  testing::ScopedTempDir dir;
  std::string why_not;
  EXPECT_FALSE(ReadManifest(dir.path(), &why_not));
  EXPECT_NE(why_not.find("no manifest"), std::string::npos);
  testing::WriteFile(dir.path() / "manifest.json", "{\"schema_version\": 1,");
  EXPECT_FALSE(ReadManifest(dir.path(), &why_not));
  EXPECT_NE(why_not.find("malformed"), std::string::npos);
  testing::WriteFile(dir.path() / "manifest.json", "{\"schema_version\": 99}");
  EXPECT_FALSE(ReadManifest(dir.path(), &why_not));
  EXPECT_NE(why_not.find("schema_version 99"), std::string::npos);
}

TEST(OptionsHash, DistinguishesKeysFromValues) {
  EXPECT_NE(OptionsHash({{"a", "bc"}}), OptionsHash({{"ab", "c"}}));
  EXPECT_NE(OptionsHash({{"shards", "16"}}), OptionsHash({{"shards", "17"}}));
  EXPECT_EQ(OptionsHash({{"x", "1"}, {"y", "2"}}), OptionsHash({{"y", "2"}, {"x", "1"}}));
}

}  // namespace
}  // namespace lookbook

namespace lookbook {
namespace {

TEST(JsonFields, NumbersOutOfKindOrRangeAreRefusedNotConverted) {
  std::int64_t i = 0;
  std::uint64_t u = 0;
  int small = 0;
  float f = 0;
  EXPECT_TRUE(JsonInteger(nlohmann::json(42), &i));
  EXPECT_EQ(i, 42);
  EXPECT_FALSE(JsonInteger(nlohmann::json(5.93556e+102), &u));  // found by tests/fuzz: was UB
  EXPECT_FALSE(JsonInteger(nlohmann::json(-1), &u));
  EXPECT_FALSE(JsonInteger(nlohmann::json(std::int64_t{1} << 40), &small));
  EXPECT_FALSE(JsonInteger(nlohmann::json("7"), &i));
  EXPECT_TRUE(JsonFloat(nlohmann::json(0.5), &f));
  EXPECT_EQ(f, 0.5f);
  EXPECT_FALSE(JsonFloat(nlohmann::json(1e300), &f));
}

TEST(JsonFields, AManifestWithAFloatSizeIsMalformedNotRead) {
  testing::ScopedTempDir dir;
  const auto path = dir.path() / "manifest.json";
  std::ofstream(path) << R"({"schema_version": 1, "stage": "embed", "code_version": "v", "options": {},
    "options_hash": "", "inputs": [], "counts": {"images": 1},
    "outputs": [{"path": "a", "size": 5.93556e+102, "checksum": "xxh3:0"}]})";
  std::string why;
  EXPECT_FALSE(ReadManifestFile(path, &why));
  EXPECT_NE(why.find("'size' is not an integer in range"), std::string::npos) << why;
}

}  // namespace
}  // namespace lookbook
