#include "util/manifest.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "util/error.h"
#include "util/hash.h"
#include "util/publish.h"

namespace lookbook {
namespace {

using nlohmann::json;

json EntryToJson(const ManifestEntry& entry) {
  return json{{"path", entry.path}, {"size", entry.size}, {"checksum", entry.checksum}, {"rows", entry.rows}};
}

ManifestEntry EntryFromJson(const json& value) {
  ManifestEntry entry;
  entry.path = value.at("path").get<std::string>();
  entry.size = value.at("size").get<std::uint64_t>();
  entry.checksum = value.at("checksum").get<std::string>();
  entry.rows = value.value("rows", std::int64_t{-1});
  return entry;
}

}  // namespace

std::string OptionsHash(const std::map<std::string, std::string>& options) {
  // Length-prefixed so that no two different maps serialise the same way.
  std::string canonical;
  for (const auto& [key, value] : options) {
    canonical += std::to_string(key.size()) + ":" + key + "=" + std::to_string(value.size()) + ":" + value + ";";
  }
  return FormatChecksum(Xxh3(canonical));
}

ManifestEntry DescribeFile(const std::filesystem::path& path, const std::string& name, std::int64_t rows) {
  const FileChecksum sum = ChecksumFile(path);
  return ManifestEntry{name, sum.size, sum.checksum, rows};
}

std::string ManifestToJson(const StageManifest& manifest) {
  json root;
  root["schema_version"] = manifest.schema_version;
  root["stage"] = manifest.stage;
  root["code_version"] = manifest.code_version;
  root["options"] = manifest.options;
  root["options_hash"] = manifest.options_hash;
  root["inputs"] = json::array();
  for (const auto& entry : manifest.inputs) root["inputs"].push_back(EntryToJson(entry));
  root["outputs"] = json::array();
  for (const auto& entry : manifest.outputs) root["outputs"].push_back(EntryToJson(entry));
  root["counts"] = manifest.counts;
  if (!manifest.locations.empty()) root["locations"] = manifest.locations;
  return root.dump(2) + "\n";
}

void WriteManifest(const std::filesystem::path& stage_dir, const StageManifest& manifest) {
  WriteManifestFile(stage_dir / "manifest.json", manifest);
}

void WriteManifestFile(const std::filesystem::path& path, const StageManifest& manifest) {
  PublishFile(path, ManifestToJson(manifest));
}

std::optional<StageManifest> ReadManifest(const std::filesystem::path& stage_dir, std::string* why_not) {
  return ReadManifestFile(stage_dir / "manifest.json", why_not);
}

std::optional<StageManifest> ReadManifestFile(const std::filesystem::path& path, std::string* why_not) {
  std::ifstream in(path);
  if (!in) {
    *why_not = "no manifest at " + path.string();
    return std::nullopt;
  }
  std::stringstream text;
  text << in.rdbuf();
  try {
    const json root = json::parse(text.str());
    StageManifest manifest;
    manifest.schema_version = root.at("schema_version").get<int>();
    if (manifest.schema_version != kManifestSchemaVersion) {
      *why_not = path.string() + " has schema_version " + std::to_string(manifest.schema_version) +
                 ", this build reads " + std::to_string(kManifestSchemaVersion);
      return std::nullopt;
    }
    manifest.stage = root.at("stage").get<std::string>();
    manifest.code_version = root.at("code_version").get<std::string>();
    manifest.options = root.at("options").get<std::map<std::string, std::string>>();
    manifest.options_hash = root.at("options_hash").get<std::string>();
    for (const auto& entry : root.at("inputs")) manifest.inputs.push_back(EntryFromJson(entry));
    for (const auto& entry : root.at("outputs")) manifest.outputs.push_back(EntryFromJson(entry));
    manifest.counts = root.at("counts").get<std::map<std::string, std::int64_t>>();
    if (root.contains("locations")) manifest.locations = root.at("locations").get<std::map<std::string, std::string>>();
    return manifest;
  } catch (const json::exception& error) {
    *why_not = path.string() + " is malformed: " + error.what();
    return std::nullopt;
  }
}

std::string VerifyOutputs(const std::filesystem::path& stage_dir, const StageManifest& manifest) {
  for (const auto& entry : manifest.outputs) {
    const std::filesystem::path path = stage_dir / entry.path;
    std::error_code error;
    const auto size = std::filesystem::file_size(path, error);
    if (error) return entry.path + ": missing";
    if (size != entry.size) return entry.path + ": size changed";
    try {
      if (ChecksumFile(path).checksum != entry.checksum) return entry.path + ": checksum mismatch";
    } catch (const InputError& read_error) {
      return entry.path + ": " + read_error.what();
    }
  }
  return {};
}

std::string WhyRedoStage(const std::filesystem::path& stage_dir, const std::vector<ManifestEntry>& inputs,
                         const std::string& options_hash, const std::string& code_version) {
  std::string why;
  const auto manifest = ReadManifest(stage_dir, &why);
  if (!manifest) return why;
  if (manifest->options_hash != options_hash) return "options changed";
  if (manifest->code_version != code_version) return "code version changed";
  if (manifest->inputs.size() != inputs.size()) return "inputs changed";
  for (std::size_t i = 0; i < inputs.size(); ++i) {
    if (manifest->inputs[i].checksum != inputs[i].checksum) return inputs[i].path + " changed";
  }
  return VerifyOutputs(stage_dir, *manifest);
}

}  // namespace lookbook
