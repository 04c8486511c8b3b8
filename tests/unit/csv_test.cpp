#include "catalog/csv.h"

#include <gtest/gtest.h>

#include "tests/unit/test_support.h"
#include "util/error.h"

namespace lookbook {
namespace {

std::vector<CsvRecord> ReadAll(std::string text, CsvReaderLimits limits = {}) {
  CsvReader reader = CsvReader::FromString(std::move(text), limits);
  std::vector<CsvRecord> records;
  CsvRecord record;
  while (reader.Next(&record)) records.push_back(record);
  return records;
}

using Fields = std::vector<std::string>;

TEST(CsvReader, ReadsHeaderAndRecordsWithIndexes) {
  const auto records = ReadAll("a,b\n1,2\n3,4\n");
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[0].fields, (Fields{"a", "b"}));
  EXPECT_EQ(records[0].index, 0);
  EXPECT_EQ(records[2].fields, (Fields{"3", "4"}));
  EXPECT_EQ(records[2].index, 2);
  EXPECT_EQ(records[2].first_line, 3);
}

TEST(CsvReader, QuotedFieldsHoldCommasDoubledQuotesAndNewlines) {
  const auto records = ReadAll("id,title\n1,\"a, b\"\n2,\"say \"\"hi\"\"\"\n3,\"two\nlines\"\n4,x\n");
  ASSERT_EQ(records.size(), 5u);
  EXPECT_EQ(records[1].fields[1], "a, b");
  EXPECT_EQ(records[2].fields[1], "say \"hi\"");
  EXPECT_EQ(records[3].fields[1], "two\nlines");
  EXPECT_EQ(records[4].first_line, 6) << "the embedded newline counts as a physical line";
  for (const auto& record : records) EXPECT_EQ(record.error, CsvError::kNone);
}

TEST(CsvReader, AcceptsCrlfLoneCrAndMissingFinalNewline) {
  const auto records = ReadAll("a,b\r\n1,2\r3,4");
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[1].fields, (Fields{"1", "2"}));
  EXPECT_EQ(records[2].fields, (Fields{"3", "4"}));
}

TEST(CsvReader, CrlfInsideQuotesIsKept) {
  const auto records = ReadAll("a\r\n\"x\r\ny\"\r\n");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1].fields[0], "x\r\ny");
}

TEST(CsvReader, StripsUtf8ByteOrderMarkOnlyAtTheStart) {
  const auto records = ReadAll("\xEF\xBB\xBFproduct_id,x\n\xEF\xBB\xBF,2\n");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[0].fields[0], "product_id");
  EXPECT_EQ(records[1].fields[0], "\xEF\xBB\xBF") << "a BOM later in the file is data";
}

TEST(CsvReader, SkipsAndCountsBlankLines) {
  CsvReader reader = CsvReader::FromString("a\n\n1\r\n\r\n2\n");
  CsvRecord record;
  std::vector<std::string> values;
  while (reader.Next(&record)) values.push_back(record.fields[0]);
  EXPECT_EQ(values, (Fields{"a", "1", "2"}));
  EXPECT_EQ(reader.blank_lines(), 2);
}

TEST(CsvReader, EmptyQuotedFieldIsARecord) {
  const auto records = ReadAll("a\n\"\"\n");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1].fields, (Fields{""}));
}

TEST(CsvReader, FlagsInvalidUtf8AndGoesOn) {
  const auto records = ReadAll("a,b\n1,\xFF\xFE\n2,ok\n3,\xC0\xAF\n4,\xED\xA0\x80\n5,caf\xC3\xA9\n");
  ASSERT_EQ(records.size(), 6u);
  EXPECT_EQ(records[1].error, CsvError::kInvalidUtf8);
  EXPECT_EQ(records[2].error, CsvError::kNone);
  EXPECT_EQ(records[3].error, CsvError::kInvalidUtf8) << "overlong encoding";
  EXPECT_EQ(records[4].error, CsvError::kInvalidUtf8) << "UTF-16 surrogate";
  EXPECT_EQ(records[5].error, CsvError::kNone);
  EXPECT_EQ(records[5].fields[1], "caf\xC3\xA9");
}

TEST(CsvReader, FlagsTextAfterClosingQuoteButKeepsRecordBoundaries) {
  const auto records = ReadAll("a,b\n\"x\"y,2\n3,4\n");
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[1].error, CsvError::kMalformedQuote);
  EXPECT_EQ(records[2].fields, (Fields{"3", "4"}));
  EXPECT_EQ(records[2].error, CsvError::kNone);
}

TEST(CsvReader, KeepsQuoteInsideUnquotedFieldAsLiteral) {
  const auto records = ReadAll("a\n5\" screen\n");
  ASSERT_EQ(records.size(), 2u);
  EXPECT_EQ(records[1].fields[0], "5\" screen");
  EXPECT_EQ(records[1].error, CsvError::kNone);
}

TEST(CsvReader, FlagsUnterminatedQuoteAtEndOfFile) {
  const auto records = ReadAll("a,b\n1,2\n3,\"open\n4,5\n");
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[1].error, CsvError::kNone);
  EXPECT_EQ(records[2].error, CsvError::kUnterminatedQuote);
}

TEST(CsvReader, FlagsRecordsLongerThanTheLimitAndResumes) {
  const std::string long_field(100, 'x');
  const auto records = ReadAll("a\n" + long_field + "\nshort\n", CsvReaderLimits{50});
  ASSERT_EQ(records.size(), 3u);
  EXPECT_EQ(records[1].error, CsvError::kRecordTooLong);
  EXPECT_EQ(records[2].fields[0], "short");
}

TEST(CsvReader, ReadsFilesInChunksAcrossBufferBoundaries) {
  testing::ScopedTempDir dir;
  std::string text = "id,title\n";
  for (int i = 0; i < 200000; ++i) text += std::to_string(i) + ",\"t, " + std::to_string(i) + "\"\n";
  testing::WriteFile(dir.path() / "big.csv", text);
  CsvReader reader = CsvReader::Open(dir.path() / "big.csv");
  CsvRecord record;
  std::int64_t count = 0;
  while (reader.Next(&record)) {
    if (count > 0) {
      ASSERT_EQ(record.fields.size(), 2u);
      ASSERT_EQ(record.fields[1], "t, " + std::to_string(count - 1));
    }
    ++count;
  }
  EXPECT_EQ(count, 200001);
  EXPECT_EQ(reader.bytes_read(), text.size());
}

TEST(CsvReader, MissingFileIsAnInputError) { EXPECT_THROW(CsvReader::Open("/nonexistent/catalog.csv"), InputError); }

TEST(CsvWriter, QuotesOnlyWhatNeedsQuotingAndRoundTrips) {
  const Fields fields = {"plain", "a,b", "say \"hi\"", "two\nlines", " padded", "", "cr\rx"};
  std::string text;
  std::vector<std::string_view> views(fields.begin(), fields.end());
  AppendCsvRow(views, &text);
  EXPECT_EQ(text, "plain,\"a,b\",\"say \"\"hi\"\"\",\"two\nlines\",\" padded\",,\"cr\rx\"\n");
  const auto records = ReadAll(text);
  ASSERT_EQ(records.size(), 1u);
  EXPECT_EQ(records[0].fields, fields);
}

TEST(Utf8, AcceptsValidAndRejectsTruncatedSequences) {
  EXPECT_TRUE(IsValidUtf8(""));
  EXPECT_TRUE(IsValidUtf8("\xF0\x9F\x91\x97 dress"));
  EXPECT_FALSE(IsValidUtf8("\xF0\x9F\x91"));
  EXPECT_FALSE(IsValidUtf8("\xF4\x90\x80\x80")) << "above U+10FFFF";
  EXPECT_FALSE(IsValidUtf8("\x80"));
}

}  // namespace
}  // namespace lookbook
