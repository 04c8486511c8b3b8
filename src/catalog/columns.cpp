#include "catalog/columns.h"

#include <algorithm>
#include <cctype>
#include <map>

#include "util/error.h"
#include "util/text.h"

namespace lookbook {
namespace {

int HexValue(char ch) {
  if (ch >= '0' && ch <= '9') return ch - '0';
  if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
  if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
  return -1;
}

// "image_12" -> 12; -1 for other names.
int ImageColumnNumber(const std::string& name) {
  constexpr std::string_view kPrefix = "image_";
  if (name.size() <= kPrefix.size() || name.compare(0, kPrefix.size(), kPrefix) != 0) return -1;
  int number = 0;
  for (std::size_t i = kPrefix.size(); i < name.size(); ++i) {
    if (!std::isdigit(static_cast<unsigned char>(name[i])) || number > 100000) return -1;
    number = number * 10 + (name[i] - '0');
  }
  return number;
}

}  // namespace

bool ParseCatalogLayout(std::string_view text, CatalogLayout* layout) {
  if (text == "default")
    *layout = CatalogLayout::kDefault;
  else if (text == "inditex")
    *layout = CatalogLayout::kInditex;
  else
    return false;
  return true;
}

bool ParseImageReferenceStyle(std::string_view text, ImageReferenceStyle* style) {
  if (text == "path")
    *style = ImageReferenceStyle::kRelativePath;
  else if (text == "url")
    *style = ImageReferenceStyle::kUrl;
  else
    return false;
  return true;
}

ColumnMapping LayoutMapping(CatalogLayout layout) {
  ColumnMapping mapping;
  if (layout == CatalogLayout::kInditex) {
    mapping.id_source = ProductIdSource::kImageFileName;
    mapping.product_id.clear();
    mapping.image_columns = {"IMAGE_VERSION_1", "IMAGE_VERSION_2", "IMAGE_VERSION_3"};
    mapping.image_references = ImageReferenceStyle::kUrl;
  }
  return mapping;
}

CatalogColumns ResolveColumns(const std::vector<std::string>& header, const ColumnMapping& mapping) {
  CatalogColumns columns;
  columns.field_count = header.size();
  std::map<std::string, int> index;
  for (std::size_t i = 0; i < header.size(); ++i) {
    if (!index.emplace(header[i], static_cast<int>(i)).second) {
      throw InputError("catalog header names column '" + header[i] + "' twice");
    }
  }
  auto find = [&](const std::string& name) {
    const auto it = index.find(name);
    return it == index.end() ? -1 : it->second;
  };
  std::vector<std::string> missing;
  if (mapping.id_source == ProductIdSource::kColumn) {
    columns.product_id = find(mapping.product_id);
    if (columns.product_id < 0) missing.push_back(mapping.product_id);
  }
  if (mapping.image_columns.empty()) {
    std::vector<std::pair<int, std::string>> numbered;
    for (const auto& name : header) {
      const int number = ImageColumnNumber(name);
      if (number >= 0) numbered.emplace_back(number, name);
    }
    std::sort(numbered.begin(), numbered.end());
    for (const auto& [number, name] : numbered) {
      columns.images.push_back(find(name));
      columns.image_names.push_back(name);
    }
    if (numbered.empty()) missing.push_back("image_1 (or any image_<n>)");
  } else {
    for (const auto& name : mapping.image_columns) {
      const int column = find(name);
      if (column < 0) {
        missing.push_back(name);
      } else {
        columns.images.push_back(column);
        columns.image_names.push_back(name);
      }
    }
  }
  if (!missing.empty()) {
    std::string list;
    for (const auto& name : missing) list += (list.empty() ? "'" : ", '") + name + "'";
    throw InputError("catalog header lacks required column(s) " + list);
  }
  columns.category = mapping.category.empty() ? -1 : find(mapping.category);
  columns.in_stock = mapping.in_stock.empty() ? -1 : find(mapping.in_stock);
  columns.title = mapping.title.empty() ? -1 : find(mapping.title);
  return columns;
}

std::optional<std::string> UrlPath(std::string_view url) {
  std::size_t scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::nullopt;
  const std::string scheme = AsciiLower(url.substr(0, scheme_end));
  if (scheme != "http" && scheme != "https") return std::nullopt;
  const std::string_view rest = url.substr(scheme_end + 3);
  const std::size_t path_start = rest.find('/');
  if (path_start == 0 || path_start == std::string_view::npos) return std::nullopt;  // no host/path
  std::string_view path = rest.substr(path_start);
  const std::size_t query = path.find_first_of("?#");
  if (query != std::string_view::npos) path = path.substr(0, query);
  std::string decoded;
  decoded.reserve(path.size());
  for (std::size_t i = 0; i < path.size(); ++i) {
    if (path[i] != '%') {
      decoded.push_back(path[i]);
      continue;
    }
    if (i + 2 >= path.size()) return std::nullopt;
    const int high = HexValue(path[i + 1]);
    const int low = HexValue(path[i + 2]);
    if (high < 0 || low < 0) return std::nullopt;
    decoded.push_back(static_cast<char>(high * 16 + low));
    i += 2;
  }
  // Collapse empty segments ("photos///2024" -> "photos/2024") and drop the leading '/'.
  std::string collapsed;
  for (const char ch : decoded) {
    if (ch == '/' && (collapsed.empty() || collapsed.back() == '/')) continue;
    collapsed.push_back(ch);
  }
  if (!collapsed.empty() && collapsed.back() == '/') collapsed.pop_back();
  if (collapsed.empty()) return std::nullopt;
  return collapsed;
}

std::optional<std::string> InditexProductReference(std::string_view url) {
  const auto path = UrlPath(url);
  if (!path) return std::nullopt;
  const std::size_t slash = path->rfind('/');
  std::string_view name = std::string_view(*path).substr(slash == std::string::npos ? 0 : slash + 1);
  const std::size_t underscore = name.find('_');
  const std::size_t dot = name.rfind('.');
  const std::size_t end = std::min(underscore, dot);
  const std::string_view reference = name.substr(0, end);
  if (reference.empty() || reference.size() > 64) return std::nullopt;
  for (const char ch : reference) {
    if (!std::isalnum(static_cast<unsigned char>(ch))) return std::nullopt;
  }
  return std::string(reference);
}

std::optional<bool> ParseInStock(std::string_view text) {
  const std::string value = AsciiLower(text);
  if (value == "1" || value == "true" || value == "yes" || value == "y") return true;
  if (value == "0" || value == "false" || value == "no" || value == "n") return false;
  if (value.empty() || value.size() > 12) return std::nullopt;
  for (const char ch : value) {
    if (!std::isdigit(static_cast<unsigned char>(ch))) return std::nullopt;
  }
  return std::stoll(value) > 0;
}

}  // namespace lookbook
