// What decides whether an embed shard's output is still valid: its key, built from content.
//
// A shard's key holds the embedding identity (the version of the decode and preprocessing code,
// the model's and segmenter's sha256, the options that change embeddings) and, for every image
// row in order, what the HDF5 row holds of the catalog (key, reference, file) and the content
// of the file (its xxh3, or why it could not be read). Not the ingest shard's bytes: row numbers,
// titles, categories and stock flags change no embedding. Options that change only how the work
// runs (threads, batch sizes) are not in it, nor are the garment options when no segmenter runs.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "embed/embed_stage.h"
#include "image/decode.h"
#include "store/embed_shard.h"

namespace lookbook {

// The options and identities an embed shard's outputs depend on, name -> value (hashed into the
// identity by OptionsHash; recorded in the manifest). `segmenter_sha256` is empty without one.
std::map<std::string, std::string> EmbedIdentityOptions(const EmbedOptions& options, const std::string& model_sha256,
                                                        const std::string& segmenter_sha256);

// The content part of an image's key: "xxh3:..." of its bytes, or "status:NAME" when it could
// not be read (a missing file is content too: it appearing later changes the key).
std::string ImageContent(ImageStatus status, std::uint64_t checksum);

// The key of one shard's output; `contents[i]` is ImageContent of `rows[i]`.
std::string EmbedShardKey(const std::string& identity, const std::vector<ImageRow>& rows,
                          const std::vector<std::string>& contents);

}  // namespace lookbook
