// make_test_bundle DIR [--dim N] [--input-size S]: writes a tiny test CLIP bundle, for the
// integration tests (which drive the real lookbook binary and need a bundle on disk).
// make_test_bundle --clip-merges FILE: writes a small self-made CLIP merges file instead.
#include <cstdlib>
#include <cstring>
#include <iostream>

#include "tests/support/test_bundles.h"

int main(int argc, char** argv) {
  if (argc < 2) {
    std::cerr << "usage: make_test_bundle DIR [--dim N] [--input-size S]\n";
    return 2;
  }
  if (std::strcmp(argv[1], "--clip-merges") == 0) {
    if (argc != 3) {
      std::cerr << "usage: make_test_bundle --clip-merges FILE\n";
      return 2;
    }
    lookbook::testing::WriteTestClipMerges(argv[2]);
    return 0;
  }
  lookbook::testing::TestClipBundleOptions options;
  for (int i = 2; i + 1 < argc; i += 2) {
    if (std::strcmp(argv[i], "--dim") == 0)
      options.embedding_dim = std::atoi(argv[i + 1]);
    else if (std::strcmp(argv[i], "--input-size") == 0)
      options.input_size = std::atoi(argv[i + 1]);
    else {
      std::cerr << "unknown option " << argv[i] << "\n";
      return 2;
    }
  }
  lookbook::testing::WriteTestClipBundle(argv[1], options);
  return 0;
}
