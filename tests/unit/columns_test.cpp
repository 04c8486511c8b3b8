#include "catalog/columns.h"

#include <gtest/gtest.h>

#include "util/error.h"

namespace lookbook {
namespace {

TEST(ResolveColumns, DefaultLayoutFindsImageColumnsInNumericOrder) {
  const std::vector<std::string> header = {"title",   "image_10", "product_id", "image_2",
                                           "image_1", "category", "in_stock",   "image_x"};
  const CatalogColumns columns = ResolveColumns(header, LayoutMapping(CatalogLayout::kDefault));
  EXPECT_EQ(columns.product_id, 2);
  EXPECT_EQ(columns.image_names, (std::vector<std::string>{"image_1", "image_2", "image_10"}));
  EXPECT_EQ(columns.images, (std::vector<int>{4, 3, 1}));
  EXPECT_EQ(columns.category, 5);
  EXPECT_EQ(columns.in_stock, 6);
  EXPECT_EQ(columns.title, 0);
  EXPECT_EQ(columns.field_count, header.size());
}

TEST(ResolveColumns, OptionalColumnsMayBeAbsent) {
  const CatalogColumns columns = ResolveColumns({"product_id", "image_1"}, LayoutMapping(CatalogLayout::kDefault));
  EXPECT_EQ(columns.category, -1);
  EXPECT_EQ(columns.in_stock, -1);
  EXPECT_EQ(columns.title, -1);
}

TEST(ResolveColumns, MissingRequiredColumnsAreNamed) {
  try {
    ResolveColumns({"id", "category"}, LayoutMapping(CatalogLayout::kDefault));
    FAIL() << "expected InputError";
  } catch (const InputError& error) {
    const std::string message = error.what();
    EXPECT_NE(message.find("'product_id'"), std::string::npos) << message;
    EXPECT_NE(message.find("image_1"), std::string::npos) << message;
  }
}

TEST(ResolveColumns, DuplicatedHeaderColumnIsAnError) {
  EXPECT_THROW(ResolveColumns({"product_id", "image_1", "image_1"}, LayoutMapping(CatalogLayout::kDefault)),
               InputError);
}

TEST(ResolveColumns, CustomMappingReadsOtherLayouts) {
  ColumnMapping mapping;
  mapping.product_id = "sku";
  mapping.image_columns = {"front", "back"};
  mapping.category = "family";
  const CatalogColumns columns = ResolveColumns({"back", "sku", "front", "family"}, mapping);
  EXPECT_EQ(columns.product_id, 1);
  EXPECT_EQ(columns.images, (std::vector<int>{2, 0}));
  EXPECT_EQ(columns.category, 3);
}

TEST(InditexLayout, HasThreeUrlColumnsAndNoIdColumn) {
  const ColumnMapping mapping = LayoutMapping(CatalogLayout::kInditex);
  EXPECT_EQ(mapping.id_source, ProductIdSource::kImageFileName);
  EXPECT_EQ(mapping.image_references, ImageReferenceStyle::kUrl);
  const CatalogColumns columns = ResolveColumns({"IMAGE_VERSION_1", "IMAGE_VERSION_2", "IMAGE_VERSION_3"}, mapping);
  EXPECT_EQ(columns.product_id, -1);
  EXPECT_EQ(columns.images, (std::vector<int>{0, 1, 2}));
}

// URLs in the form of the Inditex challenge data set.
constexpr const char* kZaraUrl =
    "https://static.zara.net/photos///2024/V/0/2/p/5767/521/712/2/w/2048/"
    "5767521712_6_1_1.jpg?ts=1707742047283";

TEST(UrlPath, IsThePathUnderTheRootWithoutHostQueryOrEmptySegments) {
  EXPECT_EQ(UrlPath(kZaraUrl).value(), "photos/2024/V/0/2/p/5767/521/712/2/w/2048/5767521712_6_1_1.jpg");
  EXPECT_EQ(UrlPath("http://example.com/a%20b/c.jpg#frag").value(), "a b/c.jpg");
  EXPECT_EQ(UrlPath("HTTPS://host/x.png").value(), "x.png");
}

TEST(UrlPath, RejectsWhatIsNotAnHttpUrlWithAPath) {
  EXPECT_FALSE(UrlPath("ftp://host/x.jpg"));
  EXPECT_FALSE(UrlPath("photos/x.jpg"));
  EXPECT_FALSE(UrlPath("https://host"));
  EXPECT_FALSE(UrlPath("https://host/"));
  EXPECT_FALSE(UrlPath("https://host/%zz.jpg"));
  EXPECT_FALSE(UrlPath("https://host/x%2"));
}

TEST(UrlPath, DecodesEscapesSoThatPathChecksSeeThem) {
  // "%2e%2e" is "..": decoded here, rejected by the path validation afterwards.
  EXPECT_EQ(UrlPath("https://host/%2e%2e/%2e%2e/etc/passwd").value(), "../../etc/passwd");
}

TEST(InditexProductReference, IsTheFileNameBeforeTheFirstUnderscore) {
  EXPECT_EQ(InditexProductReference(kZaraUrl).value(), "5767521712");
  EXPECT_EQ(InditexProductReference("https://static.zara.net/photos///2023/I/0/1/p/6543/610/433/2/w/2048/"
                                    "6543610433_1_1_1.jpg?ts=1696492375812")
                .value(),
            "6543610433");
  EXPECT_EQ(InditexProductReference("https://static.zara.net/photos/T1234.jpg").value(), "T1234");
}

TEST(InditexProductReference, MatchesTheReferenceInThePath) {
  // /p/<model>/<quality>/<colour>/ in the path spells the same reference as the file name.
  const std::string path = UrlPath(kZaraUrl).value();
  const std::size_t p = path.find("/p/");
  std::string from_path;
  for (std::size_t i = p + 3, slashes = 0; slashes < 3; ++i) {
    if (path[i] == '/')
      ++slashes;
    else
      from_path.push_back(path[i]);
  }
  EXPECT_EQ(from_path, InditexProductReference(kZaraUrl).value());
}

TEST(InditexProductReference, RejectsNamesWithoutAReference) {
  EXPECT_FALSE(InditexProductReference("https://host/photos/_1_1.jpg"));
  EXPECT_FALSE(InditexProductReference("https://host/photos/a-b_1.jpg"));
  EXPECT_FALSE(InditexProductReference("not a url"));
}

TEST(ParseInStock, AcceptsFlagsAndCounts) {
  EXPECT_EQ(ParseInStock("1"), true);
  EXPECT_EQ(ParseInStock("0"), false);
  EXPECT_EQ(ParseInStock("TRUE"), true);
  EXPECT_EQ(ParseInStock("no"), false);
  EXPECT_EQ(ParseInStock("17"), true);
  EXPECT_EQ(ParseInStock("00"), false);
  EXPECT_FALSE(ParseInStock(""));
  EXPECT_FALSE(ParseInStock("-1"));
  EXPECT_FALSE(ParseInStock("maybe"));
  EXPECT_FALSE(ParseInStock("99999999999999999999"));
}

}  // namespace
}  // namespace lookbook
