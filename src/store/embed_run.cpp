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
  if (total == manifest->counts.end() || total->second <= 0) {
    throw InputError((embed.dir / "manifest.json").string() + " lacks its shard count: rerun lookbook embed");
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
  embed.model_sha256 = get(manifest->options, "model_sha256");
  embed.segmenter_sha256 = get(manifest->options, "segmenter_sha256");
  return embed;
}

EmbedShard ReadVerifiedShard(const EmbedRun& embed, int shard, ShardParts parts) {
  LB_CHECK(shard >= 0 && shard < static_cast<int>(embed.shards.size()), "no such embed shard");
  const ManifestEntry& entry = embed.shards[static_cast<std::size_t>(shard)];
  std::string why;
  const auto path = VerifyEntry(embed.dir, entry, &why);
  if (!path) {
    throw InputError(embed.dir.string() + "/" + why +
                     ": not the size and checksum the embed manifest records (damaged or replaced): rerun lookbook "
                     "embed --shard " +
                     std::to_string(shard) + " --force");
  }
  return ReadEmbedShard(*path, parts);
}

std::vector<std::vector<std::string>> ReadIngestRows(const std::filesystem::path& run, int shard,
                                                     const std::vector<ImageRow>& images) {
  return ReadIngestRows(run, shard, images.size(), [&](std::size_t i) -> std::string_view { return images[i].key; });
}

std::vector<std::vector<std::string>> ReadIngestRows(const std::filesystem::path& run, int shard, std::size_t count,
                                                     const std::function<std::string_view(std::size_t)>& key_of) {
  const std::string name = ShardFileName(shard, ".csv");
  std::string why;
  const auto manifest = ReadManifest(run / "ingest", &why);
  if (!manifest) throw InputError("run " + run.string() + " has no ingest stage (" + why + ")");
  const auto entry = std::find_if(manifest->outputs.begin(), manifest->outputs.end(),
                                  [&](const ManifestEntry& output) { return output.path == name; });
  if (entry == manifest->outputs.end())
    throw InputError(name + " is not in the ingest manifest: rerun lookbook ingest");
  const std::filesystem::path csv = run / "ingest" / name;
  std::string bytes;
  try {
    bytes = ReadFileBytes(csv);
  } catch (const InputError& error) {
    throw InputError(std::string(error.what()) + ": rerun lookbook ingest");
  }
  if (!MatchesEntry(bytes, *entry)) {
    throw InputError(csv.string() + " does not match its checksum in the ingest manifest: rerun lookbook ingest");
  }
  std::vector<std::vector<std::string>> rows = ParseCsvText(csv.string(), std::move(bytes), kIngestShardHeader);
  bool same = rows.size() == count;
  for (std::size_t i = 0; same && i < rows.size(); ++i) {
    same = rows[i][kIngestProductId] + "/" + rows[i][kIngestColumn] == key_of(i);
  }
  if (!same) {
    throw InputError(csv.string() + " does not list embed shard " + std::to_string(shard) +
                     "'s images (ingest ran again since): rerun lookbook embed");
  }
  return rows;
}

}  // namespace lookbook
