#include "catalog/sharding.h"

#include <cstdio>

#include "util/error.h"
#include "util/hash.h"

namespace lookbook {

ShardId ShardOf(std::string_view product_id, int shard_count) {
  LB_CHECK(shard_count > 0, "shard count must be positive");
  return static_cast<ShardId>(Xxh64(product_id, 0) % static_cast<std::uint64_t>(shard_count));
}

std::string ShardFileName(ShardId shard, std::string_view extension) {
  char name[32];
  std::snprintf(name, sizeof name, "shard-%05d", shard);
  return std::string(name) + std::string(extension);
}

}  // namespace lookbook
