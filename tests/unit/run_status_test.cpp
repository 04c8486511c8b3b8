#include "stage/run_status.h"

#include <gtest/gtest.h>

#include <map>

#include "tests/unit/test_support.h"
#include "util/manifest.h"

namespace lookbook {
namespace {

// A small run: an ingest stage of two shards made from a catalog outside the run, and an embed
// stage whose two shard records name those shards as inputs.
class RunStatusTest : public ::testing::Test {
 protected:
  void SetUp() override {
    run_ = dir_.path() / "run";
    catalog_ = dir_.path() / "catalog.csv";
    testing::WriteFile(catalog_, "product_id,image_1\np1,a.jpg\np2,b.jpg\n");
    StageManifest ingest;
    ingest.stage = "ingest";
    ingest.sources.push_back(DescribeFile(catalog_, catalog_.string(), -1));  // outside the run: never read
    ingest.options["shards"] = "2";
    for (int k = 0; k < 2; ++k) {
      const std::string name = "shard-0000" + std::to_string(k) + ".csv";
      testing::WriteFile(run_ / "ingest" / name, "header\nrow " + std::to_string(k) + "\n");
      ingest.outputs.push_back(DescribeFile(run_ / "ingest" / name, name, 1));
    }
    WriteManifest(run_ / "ingest", ingest);
    StageManifest embed;
    embed.stage = "embed";
    for (int k = 0; k < 2; ++k) {
      const std::string base = "shard-0000" + std::to_string(k);
      testing::WriteFile(run_ / "embed" / (base + ".h5"), "hdf5 bytes " + std::to_string(k));
      StageManifest record;
      record.stage = "embed-shard";
      record.inputs.push_back(DescribeFile(run_ / "ingest" / (base + ".csv"), "ingest/" + base + ".csv", 1));
      record.outputs.push_back(DescribeFile(run_ / "embed" / (base + ".h5"), base + ".h5", 1));
      WriteManifestFile(run_ / "embed" / (base + ".json"), record);
      embed.inputs.push_back(record.inputs[0]);
      embed.outputs.push_back(record.outputs[0]);
    }
    embed.counts = {{"shards", 2}, {"shards_valid", 2}};
    WriteManifest(run_ / "embed", embed);
  }

  std::map<std::string, StageState> Inspect() {
    std::map<std::string, StageState> out;
    for (auto& stage : InspectRun(run_)) out[stage.stage] = stage;
    return out;
  }

  testing::ScopedTempDir dir_;
  std::filesystem::path run_, catalog_;
  std::string why_;
};

TEST_F(RunStatusTest, ValidStagesAndAbsentOnes) {
  auto stages = Inspect();
  EXPECT_EQ(stages["ingest"].state, "valid") << stages["ingest"].detail;
  EXPECT_EQ(stages["embed"].state, "valid") << stages["embed"].detail;
  ASSERT_EQ(stages["embed"].shards.size(), 2u);
  EXPECT_EQ(stages["embed"].shards[1].state, "valid");
  for (const char* stage : {"index", "dedup", "recs", "report"}) EXPECT_EQ(stages[stage].state, "absent") << stage;
  const RunVerification verified = VerifyRun(run_);
  EXPECT_TRUE(verified.problems.empty());
  EXPECT_EQ(verified.files, 4);  // two ingest shards, two embed shards (records and manifest agree)
}

TEST_F(RunStatusTest, SourcesOutsideTheRunAreNotRead) {
  std::filesystem::remove(catalog_);
  EXPECT_EQ(Inspect()["ingest"].state, "valid") << "status never opens a file outside the run";
}

TEST_F(RunStatusTest, ChangedInputIsStale) {
  // The index stage read embed shard 0; the embed stage has published another since.
  StageManifest index;
  index.stage = "index";
  index.inputs.push_back(DescribeFile(run_ / "embed" / "shard-00000.h5", "embed/shard-00000.h5", 1));
  testing::WriteFile(run_ / "index" / "shard-00000.faiss", "faiss");
  index.outputs.push_back(DescribeFile(run_ / "index" / "shard-00000.faiss", "shard-00000.faiss", 1));
  WriteManifest(run_ / "index", index);
  EXPECT_EQ(Inspect()["index"].state, "valid");
  // The same bytes changed behind the embed manifest: embed is damaged, index not yet stale.
  testing::WriteFile(run_ / "embed" / "shard-00000.h5", "other bytes");
  EXPECT_EQ(Inspect()["embed"].state, "damaged");
  // Embed publishes the new shard: index is older than it.
  StageManifest embed = *ReadManifest(run_ / "embed", &why_);
  for (auto& output : embed.outputs) {
    if (output.path == "shard-00000.h5") output = DescribeFile(run_ / "embed" / "shard-00000.h5", "shard-00000.h5", 1);
  }
  WriteManifest(run_ / "embed", embed);
  auto stages = Inspect();
  EXPECT_EQ(stages["embed"].state, "valid");
  EXPECT_EQ(stages["index"].state, "stale");
  EXPECT_EQ(stages["index"].detail, "embed/shard-00000.h5 changed");
}

TEST_F(RunStatusTest, PathsOutsideTheRunAreDamage) {
  StageManifest manifest = *ReadManifest(run_ / "embed", &why_);
  manifest.outputs[0].path = "../../etc/passwd";
  WriteManifest(run_ / "embed", manifest);
  auto stages = Inspect();
  EXPECT_EQ(stages["embed"].state, "damaged");
  EXPECT_NE(stages["embed"].detail.find("climbs out"), std::string::npos) << stages["embed"].detail;
  manifest.outputs[0].path = (run_ / "embed" / "shard-00000.h5").string();  // absolute, though it exists
  WriteManifest(run_ / "embed", manifest);
  EXPECT_EQ(Inspect()["embed"].state, "damaged");
  const RunVerification verified = VerifyRun(run_);
  ASSERT_FALSE(verified.problems.empty());
  EXPECT_NE(verified.problems[0].find("not a relative path"), std::string::npos) << verified.problems[0];
}

TEST_F(RunStatusTest, ChangedOutputIsDamagedAndTheShardsReadingItStale) {
  testing::WriteFile(run_ / "ingest" / "shard-00001.csv", "header\nedited\n");
  auto stages = Inspect();
  EXPECT_EQ(stages["ingest"].state, "damaged");
  EXPECT_NE(stages["ingest"].detail.find("shard-00001.csv"), std::string::npos);
  const RunVerification verified = VerifyRun(run_);
  ASSERT_EQ(verified.problems.size(), 1u);
  EXPECT_NE(verified.problems[0].find("ingest/shard-00001.csv"), std::string::npos);
}

TEST_F(RunStatusTest, ShardsWaitingInTheWorkFolderMakeEmbedPartial) {
  std::filesystem::remove_all(run_ / "embed");
  StageManifest record;
  record.stage = "embed-shard";
  record.key = "xxh3:0000000000000001";
  testing::WriteFile(run_ / ".work" / "embed" / "shard-00001.h5", "computed");
  record.outputs.push_back(DescribeFile(run_ / ".work" / "embed" / "shard-00001.h5", "shard-00001.h5", 1));
  WriteManifestFile(run_ / ".work" / "embed" / "shard-00001.json", record);
  auto stages = Inspect();
  EXPECT_EQ(stages["embed"].state, "partial");
  ASSERT_EQ(stages["embed"].shards.size(), 2u);
  EXPECT_EQ(stages["embed"].shards[0].state, "absent");
  EXPECT_EQ(stages["embed"].shards[1].state, "pending");
}

TEST_F(RunStatusTest, UnreadableManifestIsDamaged) {
  testing::WriteFile(run_ / "embed" / "manifest.json", "{not json");
  EXPECT_EQ(Inspect()["embed"].state, "damaged");
  EXPECT_FALSE(VerifyRun(run_).problems.empty());
}

}  // namespace
}  // namespace lookbook
