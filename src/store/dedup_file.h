// RUN/dedup/dedup.h5: the dedup stage's pairs, clusters and every candidate pair it scored.
// Images are 64-bit image ids (store/embed_run.h ImageId: embed shard << 32 | row in /images).
// Schema (version kDedupSchemaVersion below): docs/outputs.md#deduph5.
#pragma once

#include <cstdint>
#include <filesystem>
#include <limits>
#include <string>
#include <vector>

namespace lookbook {

inline constexpr int kDedupSchemaVersion = 4;

// How a candidate's verification ended (dedup's cascade: image/align.h): the alignment ran, or a
// cheap check before it showed the images are not copies (aligned is then -1).
enum class VerifiedBy : std::int8_t {
  kNotVerified = -1,
  kAlignment = 0,
  kColourGate = 1,
  kCoarseGate = 2,
  kHalfSizeAlignment = 3
};
const char* VerifiedByName(VerifiedBy by);

struct ScoredPair {
  std::int64_t a = 0, b = 0;
  float cosine = 0;
  std::int32_t hamming = 0;
  float aligned = std::numeric_limits<float>::quiet_NaN();  // NaN: not verified
  // The cascade's cheap checks (candidates only; NaN when not verified): image/align.h.
  float colour_brightness = std::numeric_limits<float>::quiet_NaN();
  float colour_hue = std::numeric_limits<float>::quiet_NaN();
  float coarse = std::numeric_limits<float>::quiet_NaN();        // NaN too when the colour gate decided
  float half_aligned = std::numeric_limits<float>::quiet_NaN();  // at half size; NaN: a gate before decided
  std::int8_t verified_by = static_cast<std::int8_t>(VerifiedBy::kNotVerified);
};

// Which scored candidates are duplicates; the dedup stage, `eval dedup`'s sweep and the report
// all apply this one rule. Chosen on train-split demo catalogs (docs/performance.md#near-duplicates). The deciding
// signal is the aligned correlation when the images were verified (verify), else the cosine:
//   signal >= threshold, or signal >= phash threshold and hamming <= max_hamming.
// With verification: threshold `aligned`, pHash threshold `aligned_phash`; without: `cosine`,
// `phash_cosine`. A NaN signal (a pair left unverified) is never a
// duplicate.
struct DedupRule {
  bool verify = true;
  float aligned = 0.975f;
  float aligned_phash = 0.96f;
  float cosine = 0.99f;         // without verification
  float phash_cosine = 0.965f;  // without verification
  int max_hamming = 3;

  const char* signal_name() const { return verify ? "aligned" : "cosine"; }
  float signal(const ScoredPair& pair) const { return verify ? pair.aligned : pair.cosine; }
  float threshold() const { return verify ? aligned : cosine; }
  float phash_threshold() const { return verify ? aligned_phash : phash_cosine; }
  // The same rule with its deciding threshold moved (its pHash clause as is): sweeps.
  DedupRule WithThreshold(float value) const;
};

bool IsDuplicate(const DedupRule& rule, const ScoredPair& pair);

// Every ok image's neighbour list as the search left it: the entries of its top list_size
// (the image itself included) scoring at or above list_floor. The next night's incremental
// dedup starts from these (dedup/neighbours.h). One row per ok image, in image id order.
struct NeighbourLists {
  int list_size = 0;                    // candidates + 1
  double list_floor = 0;                // entries scoring below this are not kept
  std::vector<std::int64_t> image;      // image id
  std::vector<std::string> key;         // image key (product/column)
  std::vector<std::uint64_t> checksum;  // xxh3 of the image file embed read
  std::vector<std::int8_t> truncated;   // 1: more images than list_size scored >= list_floor
  std::vector<std::int64_t> offset{0};  // image.size() + 1; row r's entries are [offset[r], offset[r+1])
  std::vector<std::int64_t> member;     // entries: a row of this table
  std::vector<float> score;             // entries: the index's score
  std::size_t rows() const { return image.size(); }
};

// Who decided that a published pair is a duplicate.
enum class DecidedBy : std::int8_t { kRule = 0, kReviewer = 1 };

struct DedupFile {
  std::vector<ScoredPair> pairs;
  std::vector<std::int8_t> pair_kind;
  std::vector<std::int8_t> pair_decided_by;  // DecidedBy
  std::vector<std::int64_t> cluster_image;
  std::vector<std::int64_t> cluster_id;
  std::vector<std::int8_t> representative;
  std::vector<ScoredPair> candidates;
  DedupRule rule;  // the rule the stage ran
  double candidate_floor = 0;
  std::string keep;
  NeighbourLists neighbours;

  // Where sweeps and plots of the rule's signal start: the candidate floor for the cosine
  // (nothing below it was kept), 0.9 for the aligned correlation (copies score >= 0.975,
  // look-alikes anywhere down to -1).
  double signal_floor() const { return rule.verify ? 0.9 : candidate_floor; }
};

// Atomically. Throws InputError on an I/O error.
void WriteDedupFile(const std::filesystem::path& path, const DedupFile& file);
// Throws InputError when the file is not a dedup file of this schema version.
DedupFile ReadDedupFile(const std::filesystem::path& path);

}  // namespace lookbook
