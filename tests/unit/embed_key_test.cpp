// The embed stage's reuse decision (embed/shard_key.h): a shard's key follows the content of
// its images, the models and the options that change embeddings, and nothing else.
#include "embed/shard_key.h"

#include <gtest/gtest.h>

namespace lookbook {
namespace {

EmbedOptions Parsed(OptionValues given) {
  given["run"] = {"/runs/a"};
  given["model"] = {"/models/clip"};
  EmbedOptions options;
  EmbedOptionTable().Parse(given, &options);
  return options;
}

std::string Identity(const OptionValues& given, const std::string& model = "m1", const std::string& segmenter = "") {
  return OptionsHash(EmbedIdentityOptions(Parsed(given), model, segmenter));
}

ImageRow Row(const std::string& key, const std::string& file) {
  ImageRow row;
  row.key = key;
  row.product_id = key.substr(0, key.find('/'));
  row.path = file;
  row.file = file;
  return row;
}

TEST(EmbedIdentity, HoldsTheModelsAndOutputOptionsOnly) {
  const auto options = EmbedIdentityOptions(Parsed({}), "m1", "");
  EXPECT_EQ(options.at("model_sha256"), "m1");
  EXPECT_EQ(options.at("segmenter_sha256"), "");
  EXPECT_EQ(options.count("embed_version"), 1u);
  EXPECT_EQ(options.count("schema_version"), 1u);
  for (const char* resource : {"threads", "decode-threads", "batch-size", "decode-memory", "progress-seconds"}) {
    EXPECT_EQ(options.count(resource), 0u) << resource;
  }
  EXPECT_EQ(options.count("run"), 0u);
  EXPECT_EQ(options.count("model"), 0u) << "the bundle's path: its sha256 stands for it";
  const std::string base = Identity({});
  // How the work runs and where the run is change no embedding.
  EXPECT_EQ(Identity({{"threads", {"8"}}, {"batch-size", {"7"}}, {"decode-threads", {"3"}}}), base);
  // The model's content and options that change outputs do.
  EXPECT_NE(Identity({}, "m2"), base);
  EXPECT_NE(Identity({{"embedding-dtype", {"float16"}}}), base);
  EXPECT_NE(Identity({{"max-pixels", {"1000"}}}), base);
}

TEST(EmbedIdentity, GarmentOptionsCountOnlyWithASegmenter) {
  const std::string base = Identity({});
  EXPECT_EQ(Identity({{"crop-fill", {"0"}}, {"mask-side", {"64"}}, {"segment-images", {"all"}}}), base)
      << "without --segmenter no garment option changes an output";
  const auto options = EmbedIdentityOptions(Parsed({{"segmenter", {"/models/unet"}}}), "m1", "s1");
  for (const char* garment :
       {"segmenter-precision", "segment-images", "garment-slots", "garment-min-area", "garment-min-score",
        "garment-cleanup", "mask-side", "crop-margin", "crop-fill", "outfit-min-area", "outfit-min-score"}) {
    EXPECT_EQ(options.count(garment), 1u) << garment;
  }
  EXPECT_EQ(options.count("segment-batch-size"), 0u);
  const std::string with = Identity({{"segmenter", {"/models/unet"}}}, "m1", "s1");
  EXPECT_NE(with, base);
  EXPECT_NE(Identity({{"segmenter", {"/models/unet"}}, {"crop-fill", {"0"}}}, "m1", "s1"), with);
  EXPECT_NE(Identity({{"segmenter", {"/models/unet"}}}, "m1", "s2"), with);
  EXPECT_EQ(Identity({{"segmenter", {"/elsewhere/unet"}}}, "m1", "s1"), with) << "its content, not its path";
  // A segmenter's sha256 without one (or the reverse) is a programming error.
  EXPECT_THROW(EmbedIdentityOptions(Parsed({}), "m1", "s1"), InternalError);
}

TEST(EmbedShardKey, FollowsEachImagesContent) {
  const std::vector<ImageRow> rows = {Row("p1/image_1", "a/1.jpg"), Row("p1/image_2", "a/2.jpg"),
                                      Row("p2/image_1", "b/1.jpg")};
  const std::vector<std::string> contents = {ImageContent(ImageStatus::kOk, 1), ImageContent(ImageStatus::kOk, 2),
                                             ImageContent(ImageStatus::kMissing, 0)};
  EXPECT_EQ(contents[0].rfind("xxh3:", 0), 0u);
  EXPECT_EQ(contents[2], "status:missing");
  const std::string key = EmbedShardKey("id", rows, contents);
  EXPECT_EQ(EmbedShardKey("id", rows, contents), key) << "deterministic";
  // What the HDF5 rows hold of the catalog besides key, reference and file is not in the key.
  std::vector<ImageRow> relabelled = rows;
  for (auto& row : relabelled) {
    row.status = 3;
    row.reason = "anything";
    row.width = 17;
    row.checksum = 99;
  }
  EXPECT_EQ(EmbedShardKey("id", relabelled, contents), key);
  // One image's bytes, a missing image appearing, a moved file, another identity: another key.
  auto changed = contents;
  changed[1] = ImageContent(ImageStatus::kOk, 3);
  EXPECT_NE(EmbedShardKey("id", rows, changed), key);
  changed = contents;
  changed[2] = ImageContent(ImageStatus::kOk, 4);
  EXPECT_NE(EmbedShardKey("id", rows, changed), key);
  auto moved = rows;
  moved[0].file = "c/1.jpg";
  EXPECT_NE(EmbedShardKey("id", moved, contents), key);
  EXPECT_NE(EmbedShardKey("other", rows, contents), key);
  // Two images swapping their bytes is a change, though the set of checksums is the same.
  auto swapped = contents;
  std::swap(swapped[0], swapped[1]);
  EXPECT_NE(EmbedShardKey("id", rows, swapped), key);
  EXPECT_THROW(EmbedShardKey("id", rows, {contents[0]}), InternalError);
}

}  // namespace
}  // namespace lookbook
