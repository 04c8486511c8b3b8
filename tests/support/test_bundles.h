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

}  // namespace lookbook::testing
