#include "store/embed_shard.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "store/dedup_file.h"
#include "tests/unit/test_support.h"
#include "util/error.h"

namespace lookbook {
namespace {

EmbedShard Sample(int n, int d) {
  EmbedShard shard;
  shard.meta = EmbedShardMeta{2, 8, d, "test", std::string(64, 'a'), "xxh3:1", "v1"};
  for (int i = 0; i < n; ++i) {
    ImageRow row;
    row.product_id = "p" + std::to_string(i);
    row.key = row.product_id + "/image_1";
    row.path = "caf\xC3\xA9/" + std::to_string(i) + ".jpg";  // UTF-8 survives
    row.file = row.path;
    row.status = static_cast<std::int8_t>(i % 2 == 0 ? 0 : 7);
    row.reason = i % 2 == 0 ? "" : "corrupt: Premature end of JPEG file";
    row.phash = {1, 2, 3, 4, 5, 6, 7, static_cast<std::uint8_t>(i)};
    row.checksum = 0xFEDCBA9876543210ull + static_cast<std::uint64_t>(i);
    row.width = 100 + i;
    row.height = 200 + i;
    row.content_box = {static_cast<std::int16_t>(i), 2, 60, static_cast<std::int16_t>(50 + i)};
    row.colour = {0.1f * static_cast<float>(i), 0.2f, 0.3f, 0.01f, 0.02f, 0.03f};
    shard.images.push_back(row);
    for (std::size_t b = 0; b < static_cast<std::size_t>(kAlignThumbSide) * kAlignThumbSide * 3; ++b) {
      shard.align_thumbs.push_back(static_cast<std::uint8_t>((b * 7 + static_cast<std::size_t>(i) * 31) % 251));
    }
    for (int k = 0; k < d; ++k) shard.embeddings.push_back(0.25f * static_cast<float>(k - i));
  }
  return shard;
}

TEST(EmbedShardFile, RoundTripsEveryField) {
  testing::ScopedTempDir dir;
  const EmbedShard written = Sample(5, 4);
  WriteEmbedShard(dir.path() / "shard-00002.h5", written, EmbeddingStorage::kFloat32);
  const EmbedShard read = ReadEmbedShard(dir.path() / "shard-00002.h5");
  EXPECT_EQ(read.meta.shard, 2);
  EXPECT_EQ(read.meta.shard_count, 8);
  EXPECT_EQ(read.meta.model_sha256, written.meta.model_sha256);
  EXPECT_EQ(read.meta.code_version, "v1");
  ASSERT_EQ(read.images.size(), 5u);
  for (std::size_t i = 0; i < 5; ++i) {
    EXPECT_EQ(read.images[i].key, written.images[i].key);
    EXPECT_EQ(read.images[i].path, written.images[i].path);
    EXPECT_EQ(read.images[i].status, written.images[i].status);
    EXPECT_EQ(read.images[i].reason, written.images[i].reason);
    EXPECT_EQ(read.images[i].phash, written.images[i].phash);
    EXPECT_EQ(read.images[i].checksum, written.images[i].checksum);
    EXPECT_EQ(read.images[i].height, written.images[i].height);
    EXPECT_EQ(read.images[i].content_box, written.images[i].content_box);
    EXPECT_EQ(read.images[i].colour, written.images[i].colour);
  }
  EXPECT_EQ(read.embeddings, written.embeddings);
  EXPECT_EQ(read.align_thumbs, written.align_thumbs);
  // Without the thumbnails, and only the rows asked for.
  const EmbedShard light = ReadEmbedShard(dir.path() / "shard-00002.h5", ShardParts::kWithoutThumbs);
  EXPECT_TRUE(light.align_thumbs.empty());
  EXPECT_EQ(light.images[3].colour, written.images[3].colour);
  // The rows alone (dedup and recs for another rank's shard), and with their names (the report).
  for (const ShardParts parts : {ShardParts::kRowsOnly, ShardParts::kRowsWithNames}) {
    const EmbedShard rows = ReadEmbedShard(dir.path() / "shard-00002.h5", parts);
    const bool names = parts == ShardParts::kRowsWithNames;
    EXPECT_TRUE(rows.embeddings.empty() && rows.align_thumbs.empty() && rows.masks.empty());
    ASSERT_EQ(rows.images.size(), 5u);
    for (std::size_t i = 0; i < 5; ++i) {
      EXPECT_EQ(rows.images[i].key, written.images[i].key);
      EXPECT_EQ(rows.images[i].checksum, written.images[i].checksum);
      EXPECT_EQ(rows.images[i].path, names ? written.images[i].path : "");
      EXPECT_EQ(rows.images[i].file, names ? written.images[i].file : "");
      EXPECT_EQ(rows.images[i].reason, names ? written.images[i].reason : "");
    }
  }
  const std::size_t thumb = static_cast<std::size_t>(kAlignThumbSide) * kAlignThumbSide * 3;
  const std::vector<std::uint8_t> some = ReadAlignThumbs(dir.path() / "shard-00002.h5", {0, 2, 3});
  ASSERT_EQ(some.size(), 3 * thumb);
  for (const auto [k, row] : {std::pair<std::size_t, std::size_t>{0, 0}, {1, 2}, {2, 3}}) {
    EXPECT_TRUE(std::equal(some.begin() + static_cast<long>(k * thumb),
                           some.begin() + static_cast<long>((k + 1) * thumb),
                           written.align_thumbs.begin() + static_cast<long>(row * thumb)))
        << "row " << row;
  }
  EXPECT_THROW(ReadAlignThumbs(dir.path() / "shard-00002.h5", {5}), InputError);
  int entries = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(dir.path())) ++entries;
  EXPECT_EQ(entries, 1) << "no temporary file left";
}

TEST(EmbedShardFile, GarmentsAndMasksRoundTrip) {
  testing::ScopedTempDir dir;
  EmbedShard written = Sample(4, 3);
  written.meta.segmenter_name = "demo-unet";
  written.meta.segmenter_sha256 = std::string(64, 'b');
  written.garments = {GarmentRow{1, "top", {10, 20, 30, 40}, 900, 0.75f},
                      GarmentRow{1, "shoes", {1, 2, 3, 4}, 12, 0.5f},
                      GarmentRow{3, "dress", {0, 0, 100, 200}, 15000, 0.99f}};
  for (int k = 0; k < 9; ++k) written.garment_embeddings.push_back(static_cast<float>(k) / 9);
  written.mask_side = 8;
  written.mask_image_index = {1, 3};
  for (int k = 0; k < 2 * 64; ++k) written.masks.push_back(static_cast<std::uint8_t>(k % 3));
  WriteEmbedShard(dir.path() / "g.h5", written, EmbeddingStorage::kFloat32);
  const EmbedShard read = ReadEmbedShard(dir.path() / "g.h5");
  EXPECT_EQ(read.meta.segmenter_name, "demo-unet");
  EXPECT_EQ(read.meta.segmenter_sha256, written.meta.segmenter_sha256);
  ASSERT_EQ(read.garments.size(), 3u);
  for (std::size_t g = 0; g < 3; ++g) {
    EXPECT_EQ(read.garments[g].image_index, written.garments[g].image_index);
    EXPECT_EQ(read.garments[g].slot, written.garments[g].slot);
    EXPECT_EQ(read.garments[g].box, written.garments[g].box);
    EXPECT_EQ(read.garments[g].area, written.garments[g].area);
    EXPECT_EQ(read.garments[g].score, written.garments[g].score);
  }
  EXPECT_EQ(read.garment_embeddings, written.garment_embeddings);
  EXPECT_EQ(read.mask_side, 8);
  EXPECT_EQ(read.mask_image_index, written.mask_image_index);
  EXPECT_EQ(read.masks, written.masks);
}

TEST(EmbedShardFile, Float16HalvesTheEmbeddingsWithinTolerance) {
  testing::ScopedTempDir dir;
  const EmbedShard written = Sample(200, 64);
  WriteEmbedShard(dir.path() / "half.h5", written, EmbeddingStorage::kFloat16);
  WriteEmbedShard(dir.path() / "full.h5", written, EmbeddingStorage::kFloat32);
  const EmbedShard read = ReadEmbedShard(dir.path() / "half.h5");
  for (std::size_t i = 0; i < written.embeddings.size(); ++i) {
    EXPECT_NEAR(read.embeddings[i], written.embeddings[i], 1e-2f * std::max(1.0f, std::abs(written.embeddings[i])));
  }
  EXPECT_LT(std::filesystem::file_size(dir.path() / "half.h5"), std::filesystem::file_size(dir.path() / "full.h5"));
}

TEST(EmbedShardFile, EmptyShardIsAValidFile) {
  testing::ScopedTempDir dir;
  WriteEmbedShard(dir.path() / "empty.h5", Sample(0, 8), EmbeddingStorage::kFloat32);
  const EmbedShard read = ReadEmbedShard(dir.path() / "empty.h5");
  EXPECT_TRUE(read.images.empty());
  EXPECT_EQ(read.meta.embedding_dim, 8);
}

TEST(EmbedShardFile, DamagedOrForeignFilesAreInputErrors) {
  testing::ScopedTempDir dir;
  testing::WriteFile(dir.path() / "text.h5", "not hdf5");
  EXPECT_THROW(ReadEmbedShard(dir.path() / "text.h5"), InputError);
  EXPECT_THROW(ReadEmbedShard(dir.path() / "none.h5"), InputError);
  WriteEmbedShard(dir.path() / "cut.h5", Sample(50, 32), EmbeddingStorage::kFloat32);
  std::filesystem::resize_file(dir.path() / "cut.h5", std::filesystem::file_size(dir.path() / "cut.h5") / 2);
  EXPECT_THROW(ReadEmbedShard(dir.path() / "cut.h5"), InputError);
}

TEST(EmbedShardFile, UnwritableFolderLeavesNothing) {
  EXPECT_THROW(WriteEmbedShard("/nonexistent/shard.h5", Sample(1, 2), EmbeddingStorage::kFloat32), InputError);
}

ScoredPair Scored(float cosine, int hamming, float aligned) {
  ScoredPair pair;
  pair.a = 1;
  pair.b = 2;
  pair.cosine = cosine;
  pair.hamming = hamming;
  pair.aligned = aligned;
  return pair;
}

TEST(DedupRule, VerifiedPairsAreDecidedByTheAlignmentAndThePerceptualHash) {
  const DedupRule rule;  // verify, aligned 0.975, aligned_phash 0.96, max_hamming 3
  EXPECT_TRUE(IsDuplicate(rule, Scored(0.90f, 40, 0.975f)));  // the pixels agree: cosine does not matter
  EXPECT_FALSE(IsDuplicate(rule, Scored(0.999f, 0, 0.95f)));  // a look-alike: the embedding alone is not enough
  EXPECT_TRUE(IsDuplicate(rule, Scored(0.95f, 3, 0.965f)));   // both image signals agree
  EXPECT_FALSE(IsDuplicate(rule, Scored(0.95f, 4, 0.965f)));
  const float unread = std::numeric_limits<float>::quiet_NaN();
  EXPECT_FALSE(IsDuplicate(rule, Scored(1.0f, 0, unread)));  // images not read again: never
  EXPECT_STREQ(rule.signal_name(), "aligned");
}

TEST(DedupRule, UnverifiedPairsAreDecidedByTheCosine) {
  DedupRule rule;
  rule.verify = false;  // cosine 0.99, phash_cosine 0.965
  const float unread = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(IsDuplicate(rule, Scored(0.99f, 30, unread)));
  EXPECT_TRUE(IsDuplicate(rule, Scored(0.97f, 3, unread)));
  EXPECT_FALSE(IsDuplicate(rule, Scored(0.97f, 4, unread)));
  EXPECT_FALSE(IsDuplicate(rule, Scored(0.96f, 0, 1.0f)));  // the alignment is ignored
  EXPECT_STREQ(rule.signal_name(), "cosine");
}

TEST(DedupRule, WithThresholdMovesOnlyTheDecidingThreshold) {
  const DedupRule verified = DedupRule().WithThreshold(0.99f);
  EXPECT_FLOAT_EQ(verified.aligned, 0.99f);
  EXPECT_FLOAT_EQ(verified.aligned_phash, 0.96f);
  EXPECT_FLOAT_EQ(verified.cosine, 0.99f);  // untouched default
  EXPECT_FALSE(IsDuplicate(verified, Scored(0.9f, 10, 0.98f)));
  DedupRule cosine;
  cosine.verify = false;
  const DedupRule moved = cosine.WithThreshold(0.95f);
  EXPECT_FLOAT_EQ(moved.cosine, 0.95f);
  EXPECT_FLOAT_EQ(moved.aligned, 0.975f);
  EXPECT_TRUE(IsDuplicate(moved, Scored(0.951f, 20, 0.0f)));
}

TEST(DedupFile, TheRuleRoundTripsExactly) {
  testing::ScopedTempDir dir;
  DedupFile file;
  file.rule.verify = false;
  file.rule.aligned = 0.9725f;
  file.rule.aligned_phash = 0.955f;
  file.rule.cosine = 0.987f;
  file.rule.phash_cosine = 0.961f;
  file.rule.max_hamming = 5;
  file.candidate_floor = 0.9;
  file.keep = "largest";
  file.pairs = {Scored(0.99f, 1, 0.98f)};
  file.pair_kind = {1};
  file.pair_decided_by = {static_cast<std::int8_t>(DecidedBy::kReviewer)};
  file.candidates = {Scored(0.99f, 1, 0.98f), Scored(0.93f, 20, std::numeric_limits<float>::quiet_NaN())};
  file.neighbours.list_size = 3;
  file.neighbours.list_floor = 0.88;
  file.neighbours.image = {7, 9};
  file.neighbours.key = {"P1/image_1", "P2/image_1"};
  file.neighbours.checksum = {0xfeedfacecafebeefull, 2};
  file.neighbours.truncated = {0, 1};
  file.neighbours.offset = {0, 2, 3};
  file.neighbours.member = {0, 1, 1};
  file.neighbours.score = {1.0f, 0.93f, 1.0f};
  WriteDedupFile(dir.path() / "dedup.h5", file);
  const DedupFile read = ReadDedupFile(dir.path() / "dedup.h5");
  EXPECT_FALSE(read.rule.verify);
  EXPECT_EQ(read.rule.aligned, 0.9725f);  // exactly: the file keeps the float's value
  EXPECT_EQ(read.rule.aligned_phash, 0.955f);
  EXPECT_EQ(read.rule.cosine, 0.987f);
  EXPECT_EQ(read.rule.phash_cosine, 0.961f);
  EXPECT_EQ(read.rule.max_hamming, 5);
  EXPECT_EQ(read.keep, "largest");
  EXPECT_DOUBLE_EQ(read.signal_floor(), 0.9);  // the cosine's plots start at the candidate floor
  ASSERT_EQ(read.candidates.size(), 2u);
  EXPECT_TRUE(std::isnan(read.candidates[1].aligned));
  EXPECT_EQ(read.pair_decided_by, file.pair_decided_by);
  const NeighbourLists& lists = read.neighbours;
  EXPECT_EQ(lists.list_size, 3);
  EXPECT_DOUBLE_EQ(lists.list_floor, 0.88);
  EXPECT_EQ(lists.image, file.neighbours.image);
  EXPECT_EQ(lists.key, file.neighbours.key);
  EXPECT_EQ(lists.checksum, file.neighbours.checksum);
  EXPECT_EQ(lists.truncated, file.neighbours.truncated);
  EXPECT_EQ(lists.offset, file.neighbours.offset);
  EXPECT_EQ(lists.member, file.neighbours.member);
  EXPECT_EQ(lists.score, file.neighbours.score);
}

TEST(DedupFile, InconsistentNeighbourListsAreRejected) {
  testing::ScopedTempDir dir;
  DedupFile file;
  file.neighbours.list_size = 2;
  file.neighbours.image = {1};
  file.neighbours.key = {"P1/image_1"};
  file.neighbours.checksum = {1};
  file.neighbours.truncated = {0};
  file.neighbours.offset = {0, 1};
  file.neighbours.member = {5};  // names a row the table does not have
  file.neighbours.score = {1.0f};
  WriteDedupFile(dir.path() / "dedup.h5", file);
  EXPECT_THROW(ReadDedupFile(dir.path() / "dedup.h5"), InputError);
}

}  // namespace
}  // namespace lookbook
