#include "catalog/ingest.h"

#include <gtest/gtest.h>
#include <sys/stat.h>

#include <map>
#include <set>

#include "catalog/csv.h"
#include "catalog/sharding.h"
#include "stage/run_lock.h"
#include "tests/unit/test_support.h"
#include "util/error.h"
#include "util/hash.h"

namespace lookbook {
namespace {

class IngestTest : public ::testing::Test {
 protected:
  void SetUp() override {
    images_ = dir_.path() / "images";
    for (const char* name : {"p1.jpg", "p2a.jpg", "p2b.jpg", "p3.jpg", "p5.jpg"}) {
      testing::WriteFile(images_ / name, "jpeg");
    }
    testing::WriteFile(images_ / "empty.jpg", "");
    options_.images = images_;
    options_.run = dir_.path() / "run";
    options_.shards = 3;
    options_.code_version = "test";
    options_.io_threads = 4;
  }

  StageReport Ingest(const std::string& catalog) {
    options_.catalog = dir_.path() / "catalog.csv";
    testing::WriteFile(options_.catalog, catalog);
    // As the command does: a stage writes only under the run lock (stage/run_lock.h).
    const RunLock lock = RunLock::Acquire(options_.run, RunLockMode::kExclusive, "ingest_test");
    return RunIngest(options_);
  }

  // Every line of every shard, parsed.
  std::vector<CsvRecord> ShardLines() {
    std::vector<CsvRecord> lines;
    for (int shard = 0; shard < options_.shards; ++shard) {
      CsvReader reader = CsvReader::Open(options_.run / "ingest" / ShardFileName(shard, ".csv"));
      CsvRecord record;
      EXPECT_TRUE(reader.Next(&record));
      EXPECT_EQ(record.fields.size(), kIngestShardColumns);
      while (reader.Next(&record)) {
        EXPECT_EQ(ShardOf(record.fields[0], options_.shards), shard) << record.fields[0];
        lines.push_back(record);
      }
    }
    return lines;
  }

  std::vector<std::vector<std::string>> Rejects() {
    CsvReader reader = CsvReader::Open(options_.run / "ingest" / "rejects.csv");
    CsvRecord record;
    std::vector<std::vector<std::string>> rows;
    EXPECT_TRUE(reader.Next(&record));
    // row, product_id, column, path, reason (the detail column is checked where it is filled)
    while (reader.Next(&record)) rows.emplace_back(record.fields.begin(), record.fields.begin() + 5);
    return rows;
  }

  testing::ScopedTempDir dir_;
  std::filesystem::path images_;
  IngestOptions options_;
};

TEST_F(IngestTest, AcceptsGoodRowsAndExplainsEveryReject) {
  const StageReport report = Ingest(
      "product_id,image_1,image_2,category,in_stock,title\n"
      "p1,p1.jpg,,Dress,1,\"Red dress, long\"\n"
      "p2,p2a.jpg,p2b.jpg,Coat,0,Coat\n"
      "p3,p3.jpg,missing.jpg,Bag,yes,Bag\n"  // one image rejected, row kept
      "p1,p1.jpg,,Dress,1,again\n"           // duplicate id
      ",p5.jpg,,Dress,1,no id\n"             // missing id
      "p6,,,Dress,1,no images\n"
      "p7,empty.jpg,../secret.jpg,Dress,1,bad\n"  // all images rejected
      "p8,p5.jpg,,Dress,perhaps,bad stock\n"
      "p9,p5.jpg\n");  // field count
  EXPECT_EQ(report.status, "ok");
  EXPECT_EQ(report.counts.at("rows_in"), 9);
  EXPECT_EQ(report.counts.at("rows_ok"), 3);
  EXPECT_EQ(report.counts.at("rows_rejected"), 6);
  EXPECT_EQ(report.counts.at("images_in"), 7);  // p1, p2 x2, p3 x2, p7 x2
  EXPECT_EQ(report.counts.at("images_ok"), 4);
  EXPECT_EQ(report.counts.at("images_rejected"), 3);

  const auto rejects = Rejects();
  const std::vector<std::vector<std::string>> expected = {
      {"3", "p3", "image_2", "missing.jpg", "missing"},
      {"4", "p1", "", "", "duplicate_product_id"},
      {"5", "", "", "", "missing_product_id"},
      {"6", "p6", "", "", "no_images"},
      {"7", "p7", "image_1", "empty.jpg", "empty_file"},
      {"7", "p7", "image_2", "../secret.jpg", "escapes_root"},
      {"7", "p7", "", "", "all_images_rejected"},
      {"8", "p8", "", "", "bad_in_stock"},
      {"9", "", "", "", "field_count"},
  };
  EXPECT_EQ(rejects, expected);

  std::map<std::string, std::vector<std::string>> by_product;
  for (const auto& line : ShardLines()) {
    by_product[line.fields[0]].push_back(line.fields[1] + "=" + line.fields[3]);
  }
  EXPECT_EQ(by_product["p1"], (std::vector<std::string>{"image_1=p1.jpg"}));
  EXPECT_EQ(by_product["p2"], (std::vector<std::string>{"image_1=p2a.jpg", "image_2=p2b.jpg"}));
  EXPECT_EQ(by_product["p3"], (std::vector<std::string>{"image_1=p3.jpg"}));
  EXPECT_EQ(by_product.size(), 3u);
}

TEST_F(IngestTest, ShardLinesCarryTheProductFields) {
  Ingest("product_id,image_1,category,in_stock,title\np1,./p1.jpg,Dress,TRUE,\"Red, \"\"long\"\"\"\n");
  const auto lines = ShardLines();
  ASSERT_EQ(lines.size(), 1u);
  ASSERT_EQ(lines[0].fields.size(), kIngestShardColumns);
  EXPECT_EQ(std::vector<std::string>(lines[0].fields.begin(), lines[0].fields.begin() + 8),
            (std::vector<std::string>{"p1", "image_1", "./p1.jpg", "p1.jpg", "Dress", "1", "Red, \"long\"", "1"}));
  // The file's size and modification time, as ingest saw them (nanoseconds).
  const auto path = options_.images / "p1.jpg";
  EXPECT_EQ(lines[0].fields[8], std::to_string(std::filesystem::file_size(path)));
  struct stat info {};
  ASSERT_EQ(::stat(path.c_str(), &info), 0);
  EXPECT_EQ(lines[0].fields[9], std::to_string(info.st_mtim.tv_sec * 1000000000ll + info.st_mtim.tv_nsec));
}

TEST_F(IngestTest, ShardsListProductsInIdOrderWhereverTheCatalogHasThem) {
  options_.shards = 1;
  Ingest("product_id,image_1,image_2\np3,p3.jpg,\np1,p1.jpg,\np2,p2a.jpg,p2b.jpg\n");
  const std::string first = ReadFileBytes(options_.run / "ingest" / "shard-00000.csv");
  std::vector<std::string> order;
  for (const auto& line : ShardLines()) order.push_back(line.fields[0] + "/" + line.fields[1]);
  EXPECT_EQ(order, (std::vector<std::string>{"p1/image_1", "p2/image_1", "p2/image_2", "p3/image_1"}));
  // The same products in another order: the same lines but for their `row` cells.
  Ingest("product_id,image_1,image_2\np2,p2a.jpg,p2b.jpg\np1,p1.jpg,\np3,p3.jpg,\n");
  std::vector<std::string> rows;
  for (const auto& line : ShardLines()) rows.push_back(line.fields[0] + ":" + line.fields[7]);
  EXPECT_EQ(rows, (std::vector<std::string>{"p1:2", "p2:1", "p2:1", "p3:3"}));
  EXPECT_NE(ReadFileBytes(options_.run / "ingest" / "shard-00000.csv"), first);
  EXPECT_EQ(IngestRowsChecksum(ReadFileBytes(options_.run / "ingest" / "shard-00000.csv")), IngestRowsChecksum(first))
      << "what embed takes of the shard is the same";
  // No spill file is left in the stage.
  for (const auto& entry : std::filesystem::directory_iterator(options_.run / "ingest")) {
    EXPECT_EQ(entry.path().filename().string().rfind("catalog-order-", 0), std::string::npos) << entry.path();
  }
  // Quoted cells (a comma, a line break) survive the reordering byte for byte.
  const std::string shard = std::string(kIngestShardHeader) +
                            "\nb,image_1,b.jpg,b.jpg,,1,\"two\nlines, one\",1,4,0\na,image_1,a.jpg,a.jpg,,0,x,2,4,0\n";
  EXPECT_EQ(CanonicalShardOrder(shard),
            std::string(kIngestShardHeader) +
                "\na,image_1,a.jpg,a.jpg,,0,x,2,4,0\nb,image_1,b.jpg,b.jpg,,1,\"two\nlines, "
                "one\",1,4,0\n");
  EXPECT_THROW(CanonicalShardOrder("not,a,shard\n"), InputError);
}

TEST_F(IngestTest, RerunSkipsValidOutputsAndRedoesChangedOnes) {
  const std::string catalog = "product_id,image_1\np1,p1.jpg\np2,p2a.jpg\n";
  EXPECT_EQ(Ingest(catalog).status, "ok");
  const StageReport again = Ingest(catalog);
  EXPECT_EQ(again.status, "skipped");
  EXPECT_EQ(again.counts.at("rows_ok"), 2);

  // A damaged output is redone.
  testing::WriteFile(options_.run / "ingest" / "shard-00001.csv", "tampered\n");
  EXPECT_EQ(Ingest(catalog).status, "ok");
  // Other options: redone.
  options_.shards = 4;
  EXPECT_EQ(Ingest(catalog).status, "ok");
  EXPECT_EQ(Ingest(catalog).status, "skipped");
  options_.rerun = RerunPolicy::kForce;
  EXPECT_EQ(Ingest(catalog).status, "ok");
}

TEST_F(IngestTest, EmptyShardsStillHaveTheirHeader) {
  options_.shards = 50;
  Ingest("product_id,image_1\np1,p1.jpg\n");
  for (int shard = 0; shard < 50; ++shard) {
    const auto text = testing::ReadFile(options_.run / "ingest" / ShardFileName(shard, ".csv"));
    EXPECT_EQ(text.rfind(std::string(kIngestShardHeader) + "\n", 0), 0u);
  }
}

TEST_F(IngestTest, InditexLayoutDerivesIdsAndPathsFromUrls) {
  const std::string folder = "photos/2024/V/0/2/p/5767/521/712/2/w/2048/";
  testing::WriteFile(images_ / folder / "5767521712_1_1_1.jpg", "jpeg");
  testing::WriteFile(images_ / folder / "5767521712_2_1_1.jpg", "jpeg");
  testing::WriteFile(images_ / "photos/x/1111111111_1_1_1.jpg", "jpeg");
  options_.columns = LayoutMapping(CatalogLayout::kInditex);
  const std::string base = "https://static.zara.net/photos///2024/V/0/2/p/5767/521/712/2/w/2048/";
  const StageReport report =
      Ingest("IMAGE_VERSION_1,IMAGE_VERSION_2,IMAGE_VERSION_3\n" + base + "5767521712_1_1_1.jpg?ts=1707742047283," +
             base + "5767521712_2_1_1.jpg?ts=1," + base +
             "5767521712_3_1_1.jpg?ts=2\n"
             ",https://static.zara.net/photos///x/1111111111_1_1_1.jpg?ts=3,\n"
             "not-a-url,,\n"
             "https://static.zara.net/%2e%2e/%2e%2e/etc/2222222222_1.jpg,,\n");
  EXPECT_EQ(report.counts.at("rows_ok"), 2);
  EXPECT_EQ(report.counts.at("rows_rejected"), 2);
  std::map<std::string, std::vector<std::string>> files;
  for (const auto& line : ShardLines()) files[line.fields[0]].push_back(line.fields[3]);
  EXPECT_EQ(files["5767521712"],
            (std::vector<std::string>{folder + "5767521712_1_1_1.jpg", folder + "5767521712_2_1_1.jpg"}));
  EXPECT_EQ(files["1111111111"], (std::vector<std::string>{"photos/x/1111111111_1_1_1.jpg"}));
  const auto rejects = Rejects();
  ASSERT_EQ(rejects.size(), 4u);
  EXPECT_EQ(rejects[0][2], "IMAGE_VERSION_3");
  EXPECT_EQ(rejects[0][4], "missing");
  EXPECT_EQ(rejects[1], (std::vector<std::string>{"3", "", "", "", "missing_product_id"}));
  EXPECT_EQ(rejects[2][4], "escapes_root");
  EXPECT_EQ(rejects[3][4], "all_images_rejected");
}

TEST_F(IngestTest, HeaderWithoutRequiredColumnsStopsTheStage) {
  EXPECT_THROW(Ingest("id,picture\n1,p1.jpg\n"), InputError);
  EXPECT_FALSE(std::filesystem::exists(options_.run / "ingest" / "manifest.json"));
}

TEST_F(IngestTest, EmptyCatalogStopsTheStage) { EXPECT_THROW(Ingest(""), InputError); }

TEST_F(IngestTest, ChunkBoundariesDoNotChangeTheOutput) {
  std::string catalog = "product_id,image_1\n";
  for (int i = 0; i < 100; ++i) catalog += "p" + std::to_string(i) + "," + (i % 3 ? "p1.jpg" : "none.jpg") + "\n";
  Ingest(catalog);
  const auto whole = ShardLines();
  const auto whole_rejects = Rejects();
  options_.chunk_rows = 7;
  options_.rerun = RerunPolicy::kForce;
  Ingest(catalog);
  const auto chunked = ShardLines();
  ASSERT_EQ(whole.size(), chunked.size());
  for (std::size_t i = 0; i < whole.size(); ++i) EXPECT_EQ(whole[i].fields, chunked[i].fields);
  EXPECT_EQ(whole_rejects, Rejects());
}

}  // namespace
}  // namespace lookbook
