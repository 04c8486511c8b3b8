#include "recs/product_catalog.h"

#include <algorithm>
#include <set>

#include "garments/garments.h"
#include "util/error.h"
#include "util/text.h"

namespace lookbook {

const ImageRow& ProductCatalog::image(std::int64_t id) const {
  return shards[static_cast<std::size_t>(ShardOfImageId(id))].images[static_cast<std::size_t>(RowOfImageId(id))];
}

const float* ProductCatalog::vector(std::int64_t id) const {
  LB_CHECK(owner(id) == rank, "recs: the vector of an image another rank holds");
  return shards[static_cast<std::size_t>(ShardOfImageId(id))].embeddings.data() +
         static_cast<std::size_t>(RowOfImageId(id)) * static_cast<std::size_t>(dim);
}

std::vector<std::size_t> ProductCatalog::garments_of(std::int64_t id) const {
  const auto& garments = shards[static_cast<std::size_t>(ShardOfImageId(id))].garments;
  const std::int64_t row = RowOfImageId(id);
  // Garment rows are grouped by image in /images order.
  const auto begin = std::lower_bound(garments.begin(), garments.end(), row,
                                      [](const GarmentRow& g, std::int64_t r) { return g.image_index < r; });
  std::vector<std::size_t> out;
  for (auto it = begin; it != garments.end() && it->image_index == row; ++it)
    out.push_back(static_cast<std::size_t>(it - garments.begin()));
  return out;
}

const float* ProductCatalog::garment_vector(int shard, std::size_t garment) const {
  LB_CHECK(RankOfShard(shard, ranks) == rank, "recs: a garment vector another rank holds");
  return shards[static_cast<std::size_t>(shard)].garment_embeddings.data() + garment * static_cast<std::size_t>(dim);
}

RemoteScores ProductCatalog::Scores(const MpiWorld* world) const {
  LB_CHECK(world == nullptr ? ranks == 1 : world->size() == ranks && world->rank() == rank,
           "recs: scores over another world than the catalog's");
  return RemoteScores(
      world, dim, [this](std::int64_t id) { return owner(id); }, [this](std::int64_t id) { return vector(id); });
}

ProductCatalog LoadProductCatalog(const std::filesystem::path& run, const EmbedRun& embed, const MpiWorld* world) {
  ProductCatalog catalog;
  if (world != nullptr) {
    catalog.rank = world->rank();
    catalog.ranks = world->size();
  }
  for (int k = 0; k < embed.shard_count; ++k) {
    catalog.shards.push_back(ReadVerifiedShard(
        embed, k, RankOfShard(k, catalog.ranks) == catalog.rank ? ShardParts::kWithoutThumbs : ShardParts::kRowsOnly));
    const EmbedShard& shard = catalog.shards.back();
    if (k == 0) catalog.dim = shard.meta.embedding_dim;
    if (shard.meta.embedding_dim != catalog.dim)
      throw InputError("embed shards differ in embedding size: rerun lookbook embed --force");
    for (std::size_t g = 1; g < shard.garments.size(); ++g) {
      if (shard.garments[g].image_index < shard.garments[g - 1].image_index) {
        throw InputError("embed shard " + std::to_string(k) + ": /garments rows are not grouped by image");
      }
    }
    const auto rows = ReadIngestRows(run, k, shard.images);
    for (std::size_t r = 0; r < shard.images.size(); ++r) {
      const auto& fields = rows[r];
      const ImageRow& image = shard.images[r];
      if (fields[kIngestProductId] != image.product_id) {
        throw InputError("ingest shard " + std::to_string(k) + " row " + std::to_string(r) + " is not embed row " +
                         std::to_string(r));
      }
      const std::int64_t id = ImageId(k, static_cast<std::int64_t>(r));
      auto [it, added] = catalog.product_by_id.emplace(image.product_id, static_cast<int>(catalog.products.size()));
      if (added) {
        Product product;
        product.id = image.product_id;
        product.category = fields[kIngestCategory];
        product.category_source = product.category.empty() ? "" : "catalog";
        product.in_stock = fields[kIngestInStock] == "1";
        product.shard = k;
        try {
          product.catalog_row = std::stoll(fields[kIngestRow]);
        } catch (const std::exception&) {
          throw InputError("ingest shard " + std::to_string(k) + ": row '" + fields[kIngestRow] + "' is not a number");
        }
        catalog.products.push_back(std::move(product));
      }
      catalog.product_of_image[id] = it->second;
      if (image.status != 0) continue;
      std::set<std::string> slots;
      for (const std::size_t g : catalog.garments_of(id)) slots.insert(shard.garments[g].slot);
      Product& product = catalog.products[static_cast<std::size_t>(it->second)];
      (slots.size() >= 2 ? product.outfit_photos : product.shots).push_back(id);
    }
  }
  // Catalog order; the maps follow.
  std::vector<int> order(catalog.products.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  std::sort(order.begin(), order.end(), [&](int a, int b) {
    return catalog.products[static_cast<std::size_t>(a)].catalog_row <
           catalog.products[static_cast<std::size_t>(b)].catalog_row;
  });
  std::vector<int> position(order.size());
  std::vector<Product> sorted;
  sorted.reserve(order.size());
  for (std::size_t i = 0; i < order.size(); ++i) {
    position[static_cast<std::size_t>(order[i])] = static_cast<int>(i);
    sorted.push_back(std::move(catalog.products[static_cast<std::size_t>(order[i])]));
  }
  catalog.products = std::move(sorted);
  for (auto& [key, index] : catalog.product_by_id) index = position[static_cast<std::size_t>(index)];
  for (auto& [key, index] : catalog.product_of_image) index = position[static_cast<std::size_t>(index)];
  return catalog;
}

std::vector<std::pair<std::string, std::string>> SplitCategoryMap(const std::string& spec, std::string* malformed) {
  std::vector<std::pair<std::string, std::string>> out;
  malformed->clear();
  std::size_t begin = 0;
  while (begin <= spec.size()) {
    const std::size_t end = std::min(spec.find(',', begin), spec.size());
    const std::string entry = TrimBlanks(spec.substr(begin, end - begin));
    begin = end + 1;
    if (entry.empty()) continue;
    const auto equals = entry.rfind('=');
    if (equals == std::string::npos) {
      if (malformed->empty()) *malformed = entry;
      continue;
    }
    out.emplace_back(TrimBlanks(entry.substr(0, equals)), TrimBlanks(entry.substr(equals + 1)));
  }
  return out;
}

std::unordered_map<std::string, std::string> ParseCategorySlots(const std::string& spec) {
  std::string malformed;
  const auto entries = SplitCategoryMap(spec, &malformed);
  if (!malformed.empty()) throw InputError("category slot '" + malformed + "' is not Category=slot");
  std::unordered_map<std::string, std::string> out;
  for (const auto& [category, slot] : entries) {
    Slot parsed;
    if (slot != "none" && !ParseSlot(slot, &parsed))
      throw InputError("category slot '" + category + "=" + slot + "': unknown slot '" + slot + "'");
    out[category] = slot == "none" ? "" : slot;
  }
  return out;
}

std::map<std::string, std::int64_t> AssignSlots(const std::unordered_map<std::string, std::string>& slots,
                                                ProductCatalog* catalog) {
  std::map<std::string, std::int64_t> unmapped;
  for (Product& product : catalog->products) {
    product.slot.clear();
    const auto it = slots.find(product.category);
    if (it != slots.end()) {
      product.slot = it->second;
      continue;
    }
    Slot parsed;
    if (ParseSlot(AsciiLower(product.category), &parsed)) {
      product.slot = SlotName(parsed);
    } else if (!product.category.empty()) {
      ++unmapped[product.category];
    }
  }
  return unmapped;
}

}  // namespace lookbook
