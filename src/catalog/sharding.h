// Deterministic, stable sharding: a product's shard depends only on its id and the shard
// count, xxh64(id, seed 0) mod N, so tonight's run puts a product where last night's did.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace lookbook {

using ShardId = int;

ShardId ShardOf(std::string_view product_id, int shard_count);

// "shard-00042" + extension (".csv", ".h5", ...).
std::string ShardFileName(ShardId shard, std::string_view extension);

}  // namespace lookbook
