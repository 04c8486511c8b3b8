#include "util/publish.h"

#include <gtest/gtest.h>

#include "tests/unit/test_support.h"
#include "util/error.h"

namespace lookbook {
namespace {

int CountEntries(const std::filesystem::path& folder) {
  int count = 0;
  for ([[maybe_unused]] const auto& entry : std::filesystem::directory_iterator(folder)) ++count;
  return count;
}

TEST(AtomicFile, NothingIsVisibleUnderTheFinalNameBeforeCommit) {
  testing::ScopedTempDir dir;
  const auto target = dir.path() / "out.csv";
  AtomicFile file = AtomicFile::Create(target);
  file.Write("a,b\n");
  EXPECT_FALSE(std::filesystem::exists(target));
  EXPECT_TRUE(std::filesystem::exists(file.temp_path()));
  file.Commit();
  EXPECT_EQ(testing::ReadFile(target), "a,b\n");
  EXPECT_EQ(CountEntries(dir.path()), 1) << "the temporary file is gone";
}

TEST(AtomicFile, AbandonedWriterLeavesNothing) {
  testing::ScopedTempDir dir;
  {
    AtomicFile file = AtomicFile::Create(dir.path() / "out.csv");
    file.Write(std::string(3 << 20, 'x'));  // past the buffer: bytes reached the disk
  }
  EXPECT_EQ(CountEntries(dir.path()), 0);
}

TEST(AtomicFile, ReplacesAnOldFileWhole) {
  testing::ScopedTempDir dir;
  const auto target = dir.path() / "out.csv";
  testing::WriteFile(target, std::string(1000, 'o'));
  PublishFile(target, "new");
  EXPECT_EQ(testing::ReadFile(target), "new");
}

TEST(AtomicFile, LargeWritesArriveInOrder) {
  testing::ScopedTempDir dir;
  std::string expected;
  AtomicFile file = AtomicFile::Create(dir.path() / "big");
  for (int i = 0; i < 300000; ++i) {
    const std::string line = std::to_string(i) + "\n";
    expected += line;
    file.Write(line);
  }
  file.Commit();
  EXPECT_EQ(testing::ReadFile(dir.path() / "big"), expected);
  EXPECT_EQ(file.bytes_written(), expected.size());
}

TEST(AtomicFile, UnwritableFolderIsAnInputError) {
  EXPECT_THROW(AtomicFile::Create("/nonexistent-folder/out.csv"), InputError);
}

TEST(AtomicFile, CommitTwiceIsAProgrammingError) {
  testing::ScopedTempDir dir;
  AtomicFile file = AtomicFile::Create(dir.path() / "x");
  file.Commit();
  EXPECT_THROW(file.Commit(), InternalError);
}

TEST(RemoveStaleTemporaries, RemovesOnlyTemporaries) {
  testing::ScopedTempDir dir;
  testing::WriteFile(dir.path() / "shard-00000.csv", "kept");
  testing::WriteFile(dir.path() / "shard-00001.csv.tmp-123-0", "left by a killed writer");
  EXPECT_EQ(RemoveStaleTemporaries(dir.path()), 1);
  EXPECT_EQ(CountEntries(dir.path()), 1);
}

}  // namespace
}  // namespace lookbook
