#include "store/embed_run.h"

#include <algorithm>
#include <cstdio>

#include "util/error.h"
#include "util/hash.h"

namespace lookbook {
namespace {

std::string ShardName(int shard) {
  char name[32];
  std::snprintf(name, sizeof(name), "shard-%05d.h5", shard);
  return name;
}

}  // namespace

EmbedRun ReadEmbedRun(const std::filesystem::path& run) {
  EmbedRun embed;
  embed.dir = run / "embed";
  std::string why;
  const auto manifest = ReadManifest(embed.dir, &why);
  if (!manifest) throw InputError("run " + run.string() + " has no embed stage (" + why + "): run lookbook embed first");
  const auto total = manifest->counts.find("shards");
  const auto valid = manifest->counts.find("shards_valid");
  if (total == manifest->counts.end() || valid == manifest->counts.end()) {
    throw InputError((embed.dir / "manifest.json").string() + " lacks its shard counts: rerun lookbook embed");
  }
  if (valid->second != total->second || total->second <= 0) {
    throw InputError("the embed stage of " + run.string() + " has " + std::to_string(valid->second) + " of " +
                     std::to_string(total->second) + " shards: rerun lookbook embed");
  }
  embed.shard_count = static_cast<int>(total->second);
  for (int k = 0; k < embed.shard_count; ++k) {
    const auto it = std::find_if(manifest->outputs.begin(), manifest->outputs.end(),
                                 [&](const ManifestEntry& entry) { return entry.path == ShardName(k); });
    if (it == manifest->outputs.end()) {
      throw InputError("the embed stage of " + run.string() + " lacks " + ShardName(k) + ": rerun lookbook embed");
    }
    embed.shards.push_back(*it);
  }
  embed.manifest_checksum = ChecksumFile(embed.dir / "manifest.json").checksum;
  return embed;
}

EmbedShard ReadVerifiedShard(const EmbedRun& embed, int shard) {
  LB_CHECK(shard >= 0 && shard < static_cast<int>(embed.shards.size()), "no such embed shard");
  const ManifestEntry& entry = embed.shards[static_cast<std::size_t>(shard)];
  const std::filesystem::path path = embed.dir / entry.path;
  std::error_code error;
  const auto size = std::filesystem::file_size(path, error);
  if (error) throw InputError(path.string() + " is missing: rerun lookbook embed --shard " + std::to_string(shard));
  if (size != entry.size || ChecksumFile(path).checksum != entry.checksum) {
    throw InputError(path.string() + " does not match its checksum in the embed manifest (damaged or replaced): "
                     "rerun lookbook embed --shard " + std::to_string(shard) + " --force");
  }
  return ReadEmbedShard(path);
}

}  // namespace lookbook
