#include "model/bundle.h"

#include <openssl/evp.h>

#include <cstdio>
#include <fstream>
#include <memory>
#include <nlohmann/json.hpp>
#include <sstream>
#include <type_traits>

#include "util/error.h"
#include "util/json_fields.h"
#include "util/run_path.h"

namespace lookbook {
namespace {

using nlohmann::json;

std::string Hex(const unsigned char* bytes, unsigned length) {
  std::string hex;
  char two[3];
  for (unsigned i = 0; i < length; ++i) {
    std::snprintf(two, sizeof two, "%02x", bytes[i]);
    hex += two;
  }
  return hex;
}

template <typename T>
T Field(const json& object, const char* key, const std::string& where) {
  if (!object.contains(key)) throw InputError(where + ": missing field '" + key + "'");
  const json& value = object.at(key);
  if constexpr (std::is_integral_v<T> && !std::is_same_v<T, bool>) {
    // Not get<T>(): it converts a float such as 5e102 with undefined behaviour (util/json_fields.h).
    T number{};
    if (!JsonInteger(value, &number)) throw InputError(where + ": field '" + key + "' is not an integer in range");
    return number;
  } else if constexpr (std::is_same_v<T, std::array<float, 3>>) {
    std::array<float, 3> numbers{};
    if (!value.is_array() || value.size() != 3 || !JsonFloat(value[0], &numbers[0]) ||
        !JsonFloat(value[1], &numbers[1]) || !JsonFloat(value[2], &numbers[2])) {
      throw InputError(where + ": field '" + key + "' is not three finite numbers");
    }
    return numbers;
  } else {
    try {
      return value.get<T>();
    } catch (const json::exception&) {
      throw InputError(where + ": field '" + key + "' has the wrong type");
    }
  }
}

}  // namespace

ModelBundle LoadTrustedBundle(const std::filesystem::path& given, const std::filesystem::path& models_root,
                              const std::string& sha256, const std::string& option) {
  if (!given.empty()) {
    ModelBundle bundle = LoadBundle(given);
    if (!sha256.empty() && bundle.sha256 != sha256) {
      throw InputError("--" + option + " " + given.string() + " is not the bundle the run's embed stage ran (sha256 " +
                       bundle.sha256.substr(0, 12) + ", the run's " + sha256.substr(0, 12) + ")");
    }
    return bundle;
  }
  if (!models_root.empty() && !sha256.empty()) {
    std::error_code error;
    for (const auto& entry : std::filesystem::directory_iterator(models_root, error)) {
      const std::filesystem::path candidate = entry.path() / "bundle.json";
      if (!std::filesystem::is_regular_file(candidate, error)) continue;
      if (Sha256File(candidate) == sha256) return LoadBundle(entry.path());
    }
    throw InputError("no bundle under --models-root " + models_root.string() +
                     " has the sha256 the run's embed stage ran (" + sha256.substr(0, 12) + "...): pass --" + option);
  }
  throw InputError("this command needs the " + option + " bundle the run's embed stage ran: pass --" + option +
                   " BUNDLE or --models-root DIR (a bundle is code: lookbook loads bundles only from where you say, "
                   "never from a path a run folder names)");
}

std::string Sha256File(const std::filesystem::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw InputError("cannot read " + path.string());
  std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)> context(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  LB_CHECK(context && EVP_DigestInit_ex(context.get(), EVP_sha256(), nullptr) == 1, "sha256 init");
  std::vector<char> buffer(1 << 20);
  while (in) {
    in.read(buffer.data(), static_cast<std::streamsize>(buffer.size()));
    if (in.gcount() > 0) EVP_DigestUpdate(context.get(), buffer.data(), static_cast<std::size_t>(in.gcount()));
  }
  if (in.bad()) throw InputError("cannot read " + path.string());
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned length = 0;
  EVP_DigestFinal_ex(context.get(), digest, &length);
  return Hex(digest, length);
}

ModelBundle LoadBundle(const std::filesystem::path& dir) {
  const std::filesystem::path manifest = dir / "bundle.json";
  const std::string where = manifest.string();
  std::string outside;
  if (std::filesystem::exists(manifest) && !InsideRun(dir, "bundle.json", &outside)) {
    throw InputError(where + " leaves the bundle folder: " + outside);
  }
  std::ifstream in(manifest);
  if (!in) throw InputError("model bundle " + dir.string() + " has no readable bundle.json");
  std::stringstream text;
  text << in.rdbuf();
  json root;
  try {
    root = json::parse(text.str());
  } catch (const json::exception& error) {
    throw InputError(where + " is not valid JSON: " + error.what());
  }
  if (Field<std::string>(root, "format", where) != "lookbook-bundle" || Field<int>(root, "version", where) != 1) {
    throw InputError(where + ": expected \"format\": \"lookbook-bundle\", \"version\": 1");
  }
  ModelBundle bundle;
  bundle.dir = dir;
  bundle.sha256 = Sha256File(manifest);
  const std::string kind = Field<std::string>(root, "kind", where);
  if (kind == "clip")
    bundle.kind = BundleKind::kClip;
  else if (kind == "segmenter")
    bundle.kind = BundleKind::kSegmenter;
  else
    throw InputError(where + ": kind must be clip or segmenter, not '" + kind + "'");
  bundle.name = Field<std::string>(root, "name", where);
  bundle.files = Field<std::map<std::string, std::string>>(root, "files", where);

  // Every listed file, checked before anything is parsed or loaded from it.
  for (const auto& [file, expected] : bundle.files) {
    const std::filesystem::path path = dir / file;
    std::string outside;
    if (file.find("..") != std::string::npos || std::filesystem::path(file).is_absolute() ||
        !InsideRun(dir, file, &outside)) {
      // A bundle is code: every file it runs must be the bundle's own, not a symlink elsewhere.
      throw InputError(where + ": file '" + file + "' leaves the bundle folder" +
                       (outside.empty() ? "" : ": " + outside));
    }
    if (!std::filesystem::is_regular_file(path)) {
      throw InputError("model bundle file " + path.string() + " is missing");
    }
    const std::string actual = Sha256File(path);
    if (actual != expected) {
      throw InputError("model bundle file " + path.string() + ": sha256 " + actual + " does not match bundle.json's " +
                       expected);
    }
  }
  auto listed = [&](const std::string& file, const std::string& role) {
    if (!bundle.files.count(file)) {
      throw InputError(where + ": " + role + " '" + file + "' is not listed in \"files\" (no checksum)");
    }
    return file;
  };

  const json image = Field<json>(root, "image", where);
  bundle.image_encoder = listed(Field<std::string>(image, "encoder", where + " image"), "image encoder");
  bundle.preprocess.size = Field<int>(image, "input_size", where + " image");
  if (bundle.preprocess.size < 8 || bundle.preprocess.size > 4096) {
    throw InputError(where + ": image input_size must be in 8..4096");
  }
  if (!ParseResizePolicy(Field<std::string>(image, "resize", where + " image"), &bundle.preprocess.resize)) {
    throw InputError(where + ": image resize must be short_side_center_crop, pad_to_square or stretch");
  }
  if (!ParseChannelOrder(image.value("channel_order", std::string("rgb")), &bundle.preprocess.channels)) {
    throw InputError(where + ": image channel_order must be rgb or bgr");
  }
  bundle.preprocess.mean = Field<std::array<float, 3>>(image, "mean", where + " image");
  bundle.preprocess.std = Field<std::array<float, 3>>(image, "std", where + " image");
  for (const float s : bundle.preprocess.std) {
    if (!(s > 0)) throw InputError(where + ": image std must be positive");
  }

  if (bundle.kind == BundleKind::kClip) {
    bundle.embedding_dim = Field<int>(root, "embedding_dim", where);
    if (bundle.embedding_dim < 1 || bundle.embedding_dim > 65536) {
      throw InputError(where + ": embedding_dim must be in 1..65536");
    }
    if (root.contains("text")) {
      const json text_tower = root.at("text");
      bundle.text_encoder = listed(Field<std::string>(text_tower, "encoder", where + " text"), "text encoder");
      const std::string type = Field<std::string>(text_tower, "tokenizer", where + " text");
      if (type == "clip_bpe")
        bundle.tokenizer = TokenizerType::kClipBpe;
      else if (type == "word")
        bundle.tokenizer = TokenizerType::kWord;
      else
        throw InputError(where + ": text tokenizer must be clip_bpe or word");
      bundle.tokenizer_file = listed(Field<std::string>(text_tower, "vocab", where + " text"), "tokenizer vocabulary");
      bundle.context_length = Field<int>(text_tower, "context_length", where + " text");
      if (bundle.context_length < 2 || bundle.context_length > 4096) {
        throw InputError(where + ": text context_length must be in 2..4096");
      }
    }
  } else {
    const json segmenter = Field<json>(root, "segmenter", where);
    bundle.class_names = Field<std::vector<std::string>>(segmenter, "classes", where + " segmenter");
    if (bundle.class_names.size() < 2) throw InputError(where + ": a segmenter needs at least 2 classes");
    bundle.class_slots = segmenter.value("slots", std::map<std::string, std::string>{});
  }
  return bundle;
}

}  // namespace lookbook
