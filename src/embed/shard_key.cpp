#include "embed/shard_key.h"

#include "stage/stage.h"
#include "util/error.h"
#include "util/hash.h"

namespace lookbook {

std::map<std::string, std::string> EmbedIdentityOptions(const EmbedOptions& options, const std::string& model_sha256,
                                                        const std::string& segmenter_sha256) {
  LB_CHECK(options.segmenter.empty() == segmenter_sha256.empty(), "a segmenter's sha256 exactly when one runs");
  // The garment options are marked OnlyWith("segmenter") in the table: without one they are out.
  std::map<std::string, std::string> out = EmbedOptionTable().Identity(options);
  out["model_sha256"] = model_sha256;
  out["segmenter_sha256"] = segmenter_sha256;
  out["schema_version"] = std::to_string(kEmbedSchemaVersion);
  out["embed_version"] = std::to_string(kEmbedVersion);
  return out;
}

std::string ImageContent(ImageStatus status, std::uint64_t checksum) {
  return status == ImageStatus::kOk ? FormatChecksum(checksum) : std::string("status:") + ImageStatusName(status);
}

std::string EmbedShardKey(const std::string& identity, const std::vector<ImageRow>& rows,
                          const std::vector<std::string>& contents) {
  LB_CHECK(rows.size() == contents.size(), "one content per image row");
  StageKey key;
  key.Add("embed_version", kEmbedVersion);
  key.Add("identity", identity);
  for (std::size_t i = 0; i < rows.size(); ++i) {
    key.Add("image", rows[i].key + "\t" + rows[i].path + "\t" + rows[i].file + "\t" + contents[i]);
  }
  return key.Hash();
}

}  // namespace lookbook
