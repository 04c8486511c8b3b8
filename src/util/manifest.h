// A stage's manifest: RUN/<stage>/manifest.json, written last (atomically) and read first.
// It says what the stage read, with which options and code, what it published (every file
// with size and xxh3 checksum) and its counts. A rerun reuses a stage's outputs only when the
// manifest's inputs and options match and every output still has its recorded checksum,
// the way ninja's .ninja_log decides what to rebuild.
//
// JSON schema (schema_version 1):
//   { "schema_version": 1, "stage": "ingest", "code_version": "0.1.0+abc",
//     "options": {"shards": "16", ...}, "options_hash": "xxh3:...",
//     "inputs":  [{"path": "/abs/catalog.csv", "size": 123, "checksum": "xxh3:..."}],
//     "outputs": [{"path": "shard-00000.csv", "size": 45, "checksum": "xxh3:...", "rows": 7}],
//     "counts":  {"rows_in": 10, ...},
//     "locations": {"model": "/abs/models/clip"} }   (optional: where the stage found things it
//                  names by checksum in its options; not part of its identity)
// Output paths are relative to the stage folder; "rows" is -1 where it does not apply.
#pragma once

#include <cstdint>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace lookbook {

inline constexpr int kManifestSchemaVersion = 1;

struct ManifestEntry {
  std::string path;
  std::uint64_t size = 0;
  std::string checksum;
  std::int64_t rows = -1;
};

struct StageManifest {
  int schema_version = kManifestSchemaVersion;
  std::string stage;
  std::string code_version;
  std::map<std::string, std::string> options;
  std::string options_hash;  // OptionsHash(options)
  std::vector<ManifestEntry> inputs;
  std::vector<ManifestEntry> outputs;
  std::map<std::string, std::int64_t> counts;
  std::map<std::string, std::string> locations;
};

std::string OptionsHash(const std::map<std::string, std::string>& options);

// Checksums `path` into an entry named `name`.
ManifestEntry DescribeFile(const std::filesystem::path& path, const std::string& name, std::int64_t rows);

std::string ManifestToJson(const StageManifest& manifest);
void WriteManifest(const std::filesystem::path& stage_dir, const StageManifest& manifest);
// The same format in any file (per-shard records such as RUN/embed/shard-00003.json).
void WriteManifestFile(const std::filesystem::path& path, const StageManifest& manifest);
std::optional<StageManifest> ReadManifestFile(const std::filesystem::path& path, std::string* why_not);

// What a rerun does with outputs whose manifest entry is still valid.
enum class RerunPolicy { kReuseValid, kForce };

// The manifest in `stage_dir`, or nullopt with the reason in *why_not (absent, unreadable,
// malformed, other schema version).
std::optional<StageManifest> ReadManifest(const std::filesystem::path& stage_dir, std::string* why_not);

// Empty when every output listed in `manifest` exists in `stage_dir` with its recorded size
// and checksum; otherwise the first problem found ("shard-00003.csv: checksum mismatch").
std::string VerifyOutputs(const std::filesystem::path& stage_dir, const StageManifest& manifest);

// Empty when the stage published in `stage_dir` was made from `inputs` (the same checksums, in
// order), with these options and this code version, and every output still has its checksum;
// otherwise why it must be redone.
std::string WhyRedoStage(const std::filesystem::path& stage_dir, const std::vector<ManifestEntry>& inputs,
                         const std::string& options_hash, const std::string& code_version);

}  // namespace lookbook
