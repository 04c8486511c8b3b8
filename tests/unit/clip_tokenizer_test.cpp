#include "model/clip_tokenizer.h"

#include <gtest/gtest.h>

#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>

#include "tests/support/test_bundles.h"
#include "util/error.h"

namespace lookbook {
namespace {

// CLIP's reference data (its merges file and golden vectors from the reference implementation)
// is not part of the repository: it lives in ../shared/clip beside the checkout, or wherever
// LOOKBOOK_CLIP_REFERENCE points. Only the golden cases need it; they skip, saying why, when it
// is absent (a user's clone). Every other case uses a small merges file made here.
std::filesystem::path ReferenceDir() {
  if (const char* dir = std::getenv("LOOKBOOK_CLIP_REFERENCE")) return dir;
  return std::filesystem::path(LOOKBOOK_SOURCE_DIR) / ".." / "shared" / "clip";
}

class ClipTokenizerTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    const auto file = std::filesystem::temp_directory_path() / ("lookbook-test-merges-" + std::to_string(::getpid()));
    testing::WriteTestClipMerges(file);
    tokenizer_ = new ClipTokenizer(ClipTokenizer::Load(file));
    std::filesystem::remove(file);
  }
  static void TearDownTestSuite() {
    delete tokenizer_;
    tokenizer_ = nullptr;
  }
  static ClipTokenizer* tokenizer_;
};
ClipTokenizer* ClipTokenizerTest::tokenizer_ = nullptr;

TEST_F(ClipTokenizerTest, VocabularyHasCLIPsSize) { EXPECT_EQ(tokenizer_->vocab_size(), 49408); }

TEST_F(ClipTokenizerTest, KnownWordsAreOneTokenEachBetweenStartAndEnd) {
  const auto words = tokenizer_->Encode("A red  DRESS");
  ASSERT_EQ(words.size(), 3u);
  EXPECT_NE(words[0], words[1]);
  const auto tokens = tokenizer_->EncodeForModel("a red dress", 77);
  ASSERT_EQ(tokens.size(), 77u);
  EXPECT_EQ(tokens[0], ClipTokenizer::kStartOfText);
  EXPECT_EQ(std::vector<std::int32_t>(tokens.begin() + 1, tokens.begin() + 4), words);
  EXPECT_EQ(tokens[4], ClipTokenizer::kEndOfText);
}

TEST(ClipTokenizerGolden, ReproducesEveryGoldenCase) {
  const auto dir = ReferenceDir();
  if (!std::filesystem::exists(dir / "clip_tokenizer_golden.json") ||
      !std::filesystem::exists(dir / "bpe_simple_vocab_16e6.txt.gz")) {
    GTEST_SKIP() << "cannot run here: CLIP's reference data is not at " << dir
                 << " (../shared/clip beside the checkout, or LOOKBOOK_CLIP_REFERENCE); the golden cases compare "
                    "with the reference implementation and need it";
  }
  const ClipTokenizer reference = ClipTokenizer::Load(dir / "bpe_simple_vocab_16e6.txt.gz");
  EXPECT_EQ(reference.vocab_size(), 49408);
  const ClipTokenizer* tokenizer_ = &reference;
  std::ifstream in(dir / "clip_tokenizer_golden.json");
  ASSERT_TRUE(in) << "missing " << (dir / "clip_tokenizer_golden.json");
  const nlohmann::json golden = nlohmann::json::parse(in);
  ASSERT_EQ(golden.at("sot").get<int>(), ClipTokenizer::kStartOfText);
  ASSERT_EQ(golden.at("eot").get<int>(), ClipTokenizer::kEndOfText);
  const int context = golden.at("context_length").get<int>();
  int cases = 0;
  for (const auto& example : golden.at("cases")) {
    const std::string text = example.at("text").get<std::string>();
    EXPECT_EQ(tokenizer_->Encode(text), example.at("bpe_ids").get<std::vector<std::int32_t>>()) << "text: " << text;
    EXPECT_EQ(tokenizer_->EncodeForModel(text, context), example.at("context_77").get<std::vector<std::int32_t>>())
        << "text: " << text;
    ++cases;
  }
  EXPECT_EQ(cases, 25);
}

TEST_F(ClipTokenizerTest, LongTextIsCutAndEndsWithEndOfText) {
  std::string text;
  for (int i = 0; i < 100; ++i) text += "dress ";
  const auto tokens = tokenizer_->EncodeForModel(text, 77);
  ASSERT_EQ(tokens.size(), 77u);
  EXPECT_EQ(tokens.front(), ClipTokenizer::kStartOfText);
  EXPECT_EQ(tokens.back(), ClipTokenizer::kEndOfText);
}

TEST(ClipTokenizerNormalise, UnescapesCollapsesAndLowercases) {
  EXPECT_EQ(ClipTokenizer::Normalise("  &amp;amp; A\t\nB  "), "& a b");
  EXPECT_EQ(ClipTokenizer::Normalise("&#233;t&#xE9; &unknown; &lt"), "\xC3\xA9t\xC3\xA9 &unknown; &lt");
  EXPECT_EQ(ClipTokenizer::Normalise("\xCE\x9F\xCE\xA3"), "\xCE\xBF\xCF\x82") << "final sigma, as Python";
}

TEST(ClipTokenizerLoad, MissingOrShortMergesFileIsAnInputError) {
  EXPECT_THROW(ClipTokenizer::Load("/nonexistent/bpe.txt.gz"), InputError);
}

}  // namespace
}  // namespace lookbook
