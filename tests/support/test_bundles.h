// Tiny but real model bundles for tests: TorchScript modules made in C++ (Module + define() +
// save()), bundle.json with sha256 checksums. Nothing is downloaded.
#pragma once

#include <filesystem>
#include <string>

namespace lookbook::testing {

struct TestClipBundleOptions {
  int embedding_dim = 16;
  int input_size = 32;
  int declared_dim = 0;  // what bundle.json claims; 0 = embedding_dim (set it to test a mismatch)
  unsigned seed = 1;
};

// Image tower: 4x4 average pooling of each channel, a fixed random projection, L2 norm;
// text tower: mean of word embeddings over a small fashion vocabulary (word tokenizer).
void WriteTestClipBundle(const std::filesystem::path& dir, const TestClipBundleOptions& options = {});

// A small, self-made CLIP merges file in the reference's format (a version line, then CLIP's
// 48,894 merges): every word of a short fashion vocabulary becomes one token, the rest of the
// list is filler merges of non-ASCII byte stand-ins. It loads like CLIP's own file (same
// vocabulary size), so tests that need a tokenizer do not need CLIP's data; only the golden
// tests compare with the reference.
void WriteTestClipMerges(const std::filesystem::path& file);

}  // namespace lookbook::testing
