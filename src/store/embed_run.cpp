#include "store/embed_run.h"

#include <algorithm>
#include <cstdio>

#include "catalog/csv.h"
#include "catalog/ingest.h"
#include "catalog/sharding.h"
#include "util/error.h"
#include "util/hash.h"

namespace lookbook {

EmbedRun ReadEmbedRun(const std::filesystem::path& run) {
  EmbedRun embed;
  embed.dir = run / "embed";
  std::string why;
  const auto manifest = ReadManifest(embed.dir, &why);
  if (!manifest)
    throw InputError("run " + run.string() + " has no embed stage (" + why + "): run lookbook embed first");
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
                                 [&](const ManifestEntry& entry) { return entry.path == ShardFileName(k, ".h5"); });
    if (it == manifest->outputs.end()) {
      throw InputError("the embed stage of " + run.string() + " lacks " + ShardFileName(k, ".h5") +
                       ": rerun lookbook embed");
    }
    embed.shards.push_back(*it);
  }
  embed.manifest_checksum = ChecksumFile(embed.dir / "manifest.json").checksum;
  auto get = [](const std::map<std::string, std::string>& map, const char* key) {
    const auto it = map.find(key);
    return it == map.end() ? std::string() : it->second;
  };
  embed.model = get(manifest->locations, "model");
  embed.segmenter = get(manifest->locations, "segmenter");
  embed.model_sha256 = get(manifest->options, "model_sha256");
  embed.segmenter_sha256 = get(manifest->options, "segmenter_sha256");
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
    throw InputError(path.string() +
                     " does not match its checksum in the embed manifest (damaged or replaced): "
                     "rerun lookbook embed --shard " +
                     std::to_string(shard) + " --force");
  }
  return ReadEmbedShard(path);
}

std::vector<std::vector<std::string>> ReadIngestRows(const std::filesystem::path& run, const EmbedRun& embed, int shard,
                                                     std::size_t images) {
  const std::filesystem::path csv = run / "ingest" / ShardFileName(shard, ".csv");
  std::string why_not;
  const auto record = ReadManifestFile(embed.dir / ShardFileName(shard, ".json"), &why_not);
  if (!record || record->inputs.size() != 1 || !std::filesystem::exists(csv) ||
      ChecksumFile(csv).checksum != record->inputs[0].checksum) {
    throw InputError(csv.string() + " is not the ingest shard embed shard " + std::to_string(shard) +
                     " was made from: rerun lookbook embed");
  }
  std::vector<std::vector<std::string>> rows = ReadCsvFile(csv, kIngestShardHeader);
  if (rows.size() != images) throw InputError(csv.string() + " does not match embed shard " + std::to_string(shard));
  return rows;
}

}  // namespace lookbook
