#include "catalog/image_path.h"

#include <gtest/gtest.h>

#include "tests/unit/test_support.h"
#include "util/error.h"

namespace lookbook {
namespace {

class ImageRootTest : public ::testing::Test {
 protected:
  void SetUp() override {
    root_ = dir_.path() / "images";
    testing::WriteFile(root_ / "a" / "ok.jpg", "jpeg bytes");
    testing::WriteFile(root_ / "empty.jpg", "");
    testing::WriteFile(root_ / "big.jpg", std::string(2000, 'x'));
    testing::WriteFile(dir_.path() / "secret.jpg", "outside");
    std::filesystem::create_directories(root_ / "folder.jpg");
    std::filesystem::create_symlink(dir_.path() / "secret.jpg", root_ / "leak.jpg");
    std::filesystem::create_symlink(dir_.path(), root_ / "up");
    std::filesystem::create_symlink("a/ok.jpg", root_ / "alias.jpg");
    std::filesystem::create_symlink("nowhere.jpg", root_ / "dangling.jpg");
    // "deep/.." is inside the root lexically, but deep points outside.
    std::filesystem::create_directories(dir_.path() / "elsewhere" / "x");
    testing::WriteFile(dir_.path() / "elsewhere" / "x.jpg", "outside");
    std::filesystem::create_symlink(dir_.path() / "elsewhere" / "x", root_ / "deep");
  }

  std::optional<RejectReason> Check(const std::string& reference) {
    return ImageRoot::Open(root_).Check(reference, 1000).reject;
  }

  testing::ScopedTempDir dir_;
  std::filesystem::path root_;
};

TEST_F(ImageRootTest, AcceptsRegularFilesInsideTheRoot) {
  const ImagePathCheck check = ImageRoot::Open(root_).Check("./a//ok.jpg", 1000);
  EXPECT_FALSE(check.reject);
  EXPECT_EQ(check.relative, "a/ok.jpg");
  EXPECT_EQ(check.size, 10u);
  EXPECT_FALSE(Check("alias.jpg")) << "a symlink that stays inside the root is fine";
  EXPECT_FALSE(Check("a/../a/ok.jpg"));
}

TEST_F(ImageRootTest, RejectsEachKindOfEscape) {
  EXPECT_EQ(Check("/etc/passwd"), RejectReason::kAbsolutePath);
  EXPECT_EQ(Check("../secret.jpg"), RejectReason::kEscapesRoot);
  EXPECT_EQ(Check("a/../../secret.jpg"), RejectReason::kEscapesRoot);
  EXPECT_EQ(Check("leak.jpg"), RejectReason::kOutsideRoot);
  EXPECT_EQ(Check("up/secret.jpg"), RejectReason::kOutsideRoot);
  EXPECT_EQ(Check("deep/../x.jpg"), RejectReason::kOutsideRoot) << "the kernel resolves the symlink before '..'";
}

TEST_F(ImageRootTest, RejectsWhatIsNotAUsableFile) {
  EXPECT_EQ(Check("a/missing.jpg"), RejectReason::kMissing);
  EXPECT_EQ(Check("dangling.jpg"), RejectReason::kMissing);
  EXPECT_EQ(Check("a/ok.jpg/x"), RejectReason::kMissing);
  EXPECT_EQ(Check("folder.jpg"), RejectReason::kNotAFile);
  EXPECT_EQ(Check("."), RejectReason::kNotAFile);
  EXPECT_EQ(Check("empty.jpg"), RejectReason::kEmptyFile);
  EXPECT_EQ(Check("big.jpg"), RejectReason::kTooLarge);
  EXPECT_EQ(Check(std::string("a/ok.jpg\0x", 10)), RejectReason::kInvalidPath);
  EXPECT_EQ(Check("a/ok\n.jpg"), RejectReason::kInvalidPath);
}

TEST_F(ImageRootTest, RootMustBeAFolder) {
  EXPECT_THROW(ImageRoot::Open(dir_.path() / "secret.jpg"), InputError);
  EXPECT_THROW(ImageRoot::Open(dir_.path() / "none"), InputError);
}

TEST(NormaliseReference, IsLexicalOnly) {
  std::string relative;
  EXPECT_FALSE(NormaliseReference("x/./y/../z.jpg", &relative));
  EXPECT_EQ(relative, "x/z.jpg");
  EXPECT_EQ(NormaliseReference("x/../../z.jpg", &relative), RejectReason::kEscapesRoot);
}

}  // namespace
}  // namespace lookbook
