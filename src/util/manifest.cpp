#include "util/manifest.h"

#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>
#include <stdexcept>

#include "util/error.h"
#include "util/hash.h"
#include "util/json_fields.h"
#include "util/publish.h"
#include "util/run_path.h"

namespace lookbook {
namespace {

using nlohmann::json;

json EntryToJson(const ManifestEntry& entry) {
  json out{{"path", entry.path}, {"size", entry.size}, {"checksum", entry.checksum}, {"rows", entry.rows}};
  if (!entry.key.empty()) out["key"] = entry.key;
  return out;
}

// A number field that is not an integer of the right range: the manifest is malformed.
struct MalformedNumber : std::runtime_error {
  using std::runtime_error::runtime_error;
};

template <typename T>
T IntegerField(const json& object, const char* key) {
  T value{};
  if (!JsonInteger(object.at(key), &value))
    throw MalformedNumber(std::string("'") + key + "' is not an integer in range");
  return value;
}

ManifestEntry EntryFromJson(const json& value) {
  ManifestEntry entry;
  entry.path = value.at("path").get<std::string>();
  entry.size = IntegerField<std::uint64_t>(value, "size");
  entry.checksum = value.at("checksum").get<std::string>();
  entry.rows = value.contains("rows") ? IntegerField<std::int64_t>(value, "rows") : -1;
  entry.key = value.value("key", std::string());
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
  return ManifestEntry{name, sum.size, sum.checksum, rows, ""};
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
  root["key"] = manifest.key;
  root["sources"] = json::array();
  for (const auto& entry : manifest.sources) root["sources"].push_back(EntryToJson(entry));
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
    manifest.schema_version = IntegerField<int>(root, "schema_version");
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
    for (const auto& [name, value] : root.at("counts").items()) {
      std::int64_t count = 0;
      if (!JsonInteger(value, &count)) throw MalformedNumber("count '" + name + "' is not an integer in range");
      manifest.counts[name] = count;
    }
    manifest.key = root.value("key", std::string());
    if (root.contains("sources")) {
      for (const auto& entry : root.at("sources")) manifest.sources.push_back(EntryFromJson(entry));
    }
    return manifest;
  } catch (const json::exception& error) {
    *why_not = path.string() + " is malformed: " + error.what();
    return std::nullopt;
  } catch (const MalformedNumber& error) {
    *why_not = path.string() + " is malformed: " + error.what();
    return std::nullopt;
  }
}

std::string ManifestOption(const StageManifest& manifest, const std::string& key) {
  const auto it = manifest.options.find(key);
  return it == manifest.options.end() ? std::string() : it->second;
}

bool MatchesEntry(std::string_view bytes, const ManifestEntry& entry) {
  return bytes.size() == entry.size && FormatChecksum(Xxh3(bytes)) == entry.checksum;
}

std::optional<std::filesystem::path> VerifyEntry(const std::filesystem::path& stage_dir, const ManifestEntry& entry,
                                                 std::string* why_not) {
  std::string outside;
  const auto inside = InsideRun(stage_dir, entry.path, &outside);
  if (!inside) {
    *why_not = entry.path + ": " + outside;
    return std::nullopt;
  }
  std::error_code error;
  const auto size = std::filesystem::file_size(*inside, error);
  if (error) {
    *why_not = entry.path + ": missing";
    return std::nullopt;
  }
  if (size != entry.size) {
    *why_not = entry.path + ": size changed";
    return std::nullopt;
  }
  try {
    if (ChecksumFile(*inside).checksum != entry.checksum) {
      *why_not = entry.path + ": checksum mismatch";
      return std::nullopt;
    }
  } catch (const InputError& read_error) {
    *why_not = entry.path + ": " + read_error.what();
    return std::nullopt;
  }
  return inside;
}

std::optional<std::filesystem::path> VerifiedOutput(const std::filesystem::path& stage_dir,
                                                    const StageManifest& manifest, const std::string& name,
                                                    std::string* why_not) {
  for (const auto& entry : manifest.outputs) {
    if (entry.path == name) return VerifyEntry(stage_dir, entry, why_not);
  }
  *why_not = name + ": not in the manifest";
  return std::nullopt;
}

std::string VerifyOutputs(const std::filesystem::path& stage_dir, const StageManifest& manifest) {
  std::string why;
  for (const auto& entry : manifest.outputs) {
    if (!VerifyEntry(stage_dir, entry, &why)) return why;
  }
  return {};
}

}  // namespace lookbook
