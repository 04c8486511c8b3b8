// Which catalog column holds what. Two built-in layouts and any other through a mapping.
//
// default   product_id, image_1..image_N (every header column named image_<n>, in n order,
//           paths relative to the image root), category, in_stock, title.
// inditex   IMAGE_VERSION_1, IMAGE_VERSION_2, IMAGE_VERSION_3 holding image URLs, no id
//           column. An image's local file is the URL's path under the image root: the
//           host, query and fragment are dropped, %XX escapes decoded and empty segments
//           collapsed, so
//             https://static.zara.net/photos///2024/V/0/2/p/5767/521/712/2/w/2048/5767521712_6_1_1.jpg?ts=1707742047283
//           is <root>/photos/2024/V/0/2/p/5767/521/712/2/w/2048/5767521712_6_1_1.jpg.
//           The product id is the product reference that starts the file name, the
//           characters before its first '_' ("5767521712": model 5767, quality 521, colour
//           712), taken from the first image column whose URL has one.
//
// category, in_stock and title are optional: when the header lacks them a product has an
// empty category, is in stock, and has an empty title.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace lookbook {

enum class CatalogLayout { kDefault, kInditex };
enum class ProductIdSource { kColumn, kImageFileName };
enum class ImageReferenceStyle { kRelativePath, kUrl };

bool ParseCatalogLayout(std::string_view text, CatalogLayout* layout);
bool ParseImageReferenceStyle(std::string_view text, ImageReferenceStyle* style);

struct ColumnMapping {
  ProductIdSource id_source = ProductIdSource::kColumn;
  std::string product_id = "product_id";
  std::vector<std::string> image_columns;  // empty: every image_<n> column, in n order
  std::string category = "category";
  std::string in_stock = "in_stock";
  std::string title = "title";
  ImageReferenceStyle image_references = ImageReferenceStyle::kRelativePath;
};

ColumnMapping LayoutMapping(CatalogLayout layout);

// The mapping resolved against a header: field indices, -1 where the column is absent.
struct CatalogColumns {
  std::size_t field_count = 0;
  int product_id = -1;
  std::vector<int> images;
  std::vector<std::string> image_names;
  int category = -1;
  int in_stock = -1;
  int title = -1;
};

// Throws InputError naming every required column the header lacks, or a duplicated column.
CatalogColumns ResolveColumns(const std::vector<std::string>& header, const ColumnMapping& mapping);

// The URL's path, %-decoded, without the leading '/', query or fragment; nullopt when `url`
// is not http(s)://host/path or has a broken %-escape.
std::optional<std::string> UrlPath(std::string_view url);

// The Inditex product reference in the URL's file name (see above), or nullopt.
std::optional<std::string> InditexProductReference(std::string_view url);

// in_stock values: 1/0, true/false, yes/no, y/n (any case) or a non-negative stock count
// (in stock when > 0). nullopt for anything else, including an empty field.
std::optional<bool> ParseInStock(std::string_view text);

}  // namespace lookbook
