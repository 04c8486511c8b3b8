// Model bundles: a folder with bundle.json and the files it names (TorchScript modules,
// tokenizer vocabularies). The format is documented in models/README.md.
//
// Loading verifies the sha256 of every file bundle.json lists before any byte of it reaches
// LibTorch: a TorchScript file is code, so only bundles whose checksums match what their
// author published are run.
#pragma once

#include <array>
#include <filesystem>
#include <map>
#include <string>
#include <vector>

#include "image/preprocess.h"

namespace lookbook {

enum class BundleKind { kClip, kSegmenter };
enum class TokenizerType { kNone, kClipBpe, kWord };

struct ModelBundle {
  std::filesystem::path dir;
  std::string sha256;  // of bundle.json, which holds every file's checksum: the bundle's identity
  BundleKind kind = BundleKind::kClip;
  std::string name;
  std::map<std::string, std::string> files;  // file name -> sha256 (hex)

  // The image tower (both kinds).
  std::string image_encoder;  // file name
  PreprocessSpec preprocess;
  int embedding_dim = 0;  // clip: output width; segmenter: 0

  // The text tower (clip bundles; optional).
  std::string text_encoder;
  TokenizerType tokenizer = TokenizerType::kNone;
  std::string tokenizer_file;
  int context_length = 77;

  // Segmenters: the model's classes (output channel order) and their default slots.
  std::vector<std::string> class_names;
  std::map<std::string, std::string> class_slots;

  std::filesystem::path Path(const std::string& file) const { return dir / file; }
};

// Reads and checks `dir`/bundle.json and every file it lists. Throws InputError naming the
// file and what was expected (missing file, checksum mismatch, unknown field value).
ModelBundle LoadBundle(const std::filesystem::path& dir);

// A bundle from a trusted place, never from a path a run folder names (a bundle is code):
// `given` (an explicit --model/--segmenter), which must have `sha256` when that is known; else
// the bundle under `models_root` (a configured folder of bundles) whose bundle.json has
// `sha256`. Throws InputError naming `option` when neither finds it.
ModelBundle LoadTrustedBundle(const std::filesystem::path& given, const std::filesystem::path& models_root,
                              const std::string& sha256, const std::string& option);

// sha256 of a file as lower-case hex; throws InputError when it cannot be read.
std::string Sha256File(const std::filesystem::path& path);

}  // namespace lookbook
