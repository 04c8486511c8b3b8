#include "recs/query.h"

#include <algorithm>
#include <map>
#include <optional>

#include "garments/garments.h"
#include "image/decode.h"
#include "image/preprocess.h"
#include "index/index_stage.h"
#include "index/vector_index.h"
#include "model/bundle.h"
#include "model/encoders.h"
#include "model/segmenter.h"
#include "recs/product_catalog.h"
#include "recs/product_search.h"
#include "stage/run_status.h"
#include "stage/stage.h"
#include "store/embed_run.h"
#include "store/recs_file.h"
#include "util/error.h"
#include "util/manifest.h"

namespace lookbook {
namespace {

std::string OptionOf(const StageManifest& manifest, const char* key) {
  const auto it = manifest.options.find(key);
  if (it == manifest.options.end())
    throw InputError(std::string("the embed manifest lacks option ") + key + ": rerun lookbook embed");
  return it->second;
}

double NumberOption(const StageManifest& manifest, const char* key) {
  const std::string text = OptionOf(manifest, key);
  try {
    return std::stod(text);
  } catch (const std::exception&) {
    throw InputError(std::string("the embed manifest's option ") + key + " is not a number: '" + text + "'");
  }
}

}  // namespace

struct QueryEngine::Impl {
  QueryOptions options;
  ProductCatalog catalog;
  std::optional<ShardedIndex> index;
  ModelBundle clip;
  std::optional<ImageEncoder> image_encoder;
  mutable std::optional<TextEncoder> text_encoder;
  std::optional<ModelBundle> segmenter_bundle;
  std::optional<Segmenter> segmenter;
  SlotMap slots;
  GarmentOptions garment_options;
  DecodeLimits limits;
  std::map<std::string, ProductFilter> slot_filters;
  std::optional<ProductFilter> all_filter;

  std::vector<QueryMatch> Matches(const ProductFilter& filter, const float* query) const {
    ProductRequest request;
    request.queries.push_back(query);
    RemoteScores scores = catalog.Scores(nullptr);  // one process: every vector is here
    const auto lists = TopProducts(catalog, *index, filter, {request}, options.top_k, options.nprobe, &scores);
    std::vector<QueryMatch> out;
    for (const auto& match : lists.front())
      out.push_back(QueryMatch{catalog.products[static_cast<std::size_t>(match.product)].id, match.score});
    return out;
  }
};

QueryEngine::QueryEngine(std::unique_ptr<Impl> impl) : impl_(std::move(impl)) {}
QueryEngine::QueryEngine(QueryEngine&&) noexcept = default;
QueryEngine::~QueryEngine() = default;

QueryEngine QueryEngine::Load(const QueryOptions& options) {
  auto impl = std::make_unique<Impl>();
  impl->options = options;
  const EmbedRun embed = ReadEmbedRun(options.run);
  std::string why;
  const auto embed_manifest = ReadManifest(embed.dir, &why);
  if (!embed_manifest) throw InputError(why);

  // The recs stage's product table (categories, zero-shot ones included, and slots).
  const auto recs_manifest = ReadManifest(options.run / "recs", &why);
  if (!recs_manifest)
    throw InputError("run " + options.run.string() + " has no recs stage (" + why + "): run lookbook recs first");
  const std::string damaged = VerifyOutputs(options.run / "recs", *recs_manifest);
  if (!damaged.empty())
    throw InputError((options.run / "recs").string() + ": " + damaged + ": rerun lookbook recs --force");
  if (const std::string stale = StaleInputs(options.run, "recs"); !stale.empty()) {
    throw InputError("the recs stage is stale (" + stale + "): rerun lookbook recs");
  }
  const RecsFile recs = ReadRecsFile(options.run / "recs" / "recs.h5");

  impl->catalog = LoadProductCatalog(options.run, embed);
  if (recs.products.size() != impl->catalog.products.size())
    throw InputError("recs.h5 does not match the catalog: rerun lookbook recs");
  for (std::size_t p = 0; p < recs.products.size(); ++p) {
    Product& product = impl->catalog.products[p];
    if (recs.products[p].id != product.id) throw InputError("recs.h5 does not match the catalog: rerun lookbook recs");
    product.category = recs.products[p].category;
    product.category_source = recs.products[p].category_source;
    product.slot = recs.products[p].slot;
  }
  impl->index.emplace(ReadRunIndex(options.run, embed));

  impl->clip = LoadTrustedBundle(options.model, options.models_root, embed.model_sha256, "model");
  impl->image_encoder.emplace(ImageEncoder::Load(impl->clip, options.inference));
  if (impl->image_encoder->dim() != impl->catalog.dim)
    throw InputError("the CLIP bundle's embeddings do not have the catalog's size");
  if (!options.segmenter.empty() || !embed.segmenter_sha256.empty()) {
    impl->segmenter_bundle.emplace(
        LoadTrustedBundle(options.segmenter, options.models_root, embed.segmenter_sha256, "segmenter"));
    impl->segmenter.emplace(Segmenter::Load(*impl->segmenter_bundle, options.inference));
    const auto slot_map = embed_manifest->options.find("garment-slots");
    impl->slots = MakeSlotMap(impl->segmenter_bundle->class_names, impl->segmenter_bundle->class_slots,
                              slot_map == embed_manifest->options.end() ? "" : slot_map->second);
    if (!embed.segmenter_sha256.empty()) {
      GarmentOptions& g = impl->garment_options;
      g.min_area = NumberOption(*embed_manifest, "garment-min-area");
      g.min_score = NumberOption(*embed_manifest, "garment-min-score");
      g.cleanup_radius = static_cast<int>(NumberOption(*embed_manifest, "garment-cleanup"));
      g.mask_side = static_cast<int>(NumberOption(*embed_manifest, "mask-side"));
      g.crop_margin = NumberOption(*embed_manifest, "crop-margin");
      g.crop_fill = static_cast<std::uint8_t>(NumberOption(*embed_manifest, "crop-fill"));
    }
  }
  impl->limits.max_file_bytes = static_cast<std::uint64_t>(NumberOption(*embed_manifest, "max-image-bytes"));
  impl->limits.max_pixels = static_cast<std::uint64_t>(NumberOption(*embed_manifest, "max-pixels"));

  std::map<std::string, std::vector<int>> by_slot;
  std::vector<int> everyone;
  for (int p = 0; p < static_cast<int>(impl->catalog.products.size()); ++p) {
    const Product& product = impl->catalog.products[static_cast<std::size_t>(p)];
    if (product.shots.empty() || (!product.in_stock && !options.include_out_of_stock)) continue;
    everyone.push_back(p);
    if (!product.slot.empty()) by_slot[product.slot].push_back(p);
  }
  for (const auto& [slot, products] : by_slot)
    impl->slot_filters.emplace(slot, MakeProductFilter(impl->catalog, *impl->index, products));
  impl->all_filter.emplace(MakeProductFilter(impl->catalog, *impl->index, everyone));
  return QueryEngine(std::move(impl));
}

PhotoResult QueryEngine::QueryPhoto(const std::filesystem::path& photo) const {
  const Impl& s = *impl_;
  PhotoResult result;
  result.image = photo.string();
  if (!s.segmenter)
    throw InputError(
        "the run's embed stage ran no segmenter and none was given (--segmenter): photos cannot be segmented");
  const PreprocessSpec& clip_spec = s.image_encoder->preprocess();
  const PreprocessSpec& segment_spec = s.segmenter->preprocess();
  DecodeLimits limits = s.limits;
  limits.min_side = std::max(clip_spec.size, segment_spec.size);
  const DecodeResult decoded = DecodeImageFile(photo, limits);
  if (decoded.status != ImageStatus::kOk) {
    result.error = std::string(ImageStatusName(decoded.status)) + (decoded.detail.empty() ? "" : ": " + decoded.detail);
    return result;
  }
  std::vector<float> pixels(static_cast<std::size_t>(3) * segment_spec.size * segment_spec.size);
  Preprocess(decoded.image, segment_spec, pixels.data());
  std::vector<float> confidence;
  const std::vector<std::uint8_t> classes = s.segmenter->Segment(pixels.data(), 1, &confidence);
  const auto [source_width, source_height] = UprightSourceSize(decoded);
  const GarmentSet set = ExtractGarments(classes.data(), confidence.data(), segment_spec, decoded.image.width,
                                         decoded.image.height, source_width, source_height, s.slots, s.garment_options);
  if (set.garments.empty()) return result;
  const std::size_t image_floats = static_cast<std::size_t>(3) * clip_spec.size * clip_spec.size;
  std::vector<float> crops(set.garments.size() * image_floats);
  for (std::size_t k = 0; k < set.garments.size(); ++k) {
    Preprocess(MakeGarmentCrop(decoded.image, set, k, s.garment_options), clip_spec, crops.data() + k * image_floats);
  }
  const std::vector<float> vectors = s.image_encoder->Encode(crops.data(), static_cast<int>(set.garments.size()));
  for (std::size_t k = 0; k < set.garments.size(); ++k) {
    const Garment& garment = set.garments[k];
    GarmentHit hit;
    hit.slot = SlotName(garment.slot);
    hit.box = {garment.box[0], garment.box[1], garment.box[2], garment.box[3]};
    hit.confidence = garment.score;
    const auto filter = s.slot_filters.find(hit.slot);
    if (filter != s.slot_filters.end())
      hit.matches = s.Matches(filter->second, vectors.data() + k * static_cast<std::size_t>(s.catalog.dim));
    result.garments.push_back(std::move(hit));
  }
  return result;
}

TextTokens QueryEngine::CountText(const std::string& text) const {
  const Impl& s = *impl_;
  if (!s.text_encoder) s.text_encoder.emplace(TextEncoder::Load(s.clip, s.options.inference));
  return s.text_encoder->Count(text);
}

std::vector<QueryMatch> QueryEngine::QueryText(const std::string& text) const {
  const Impl& s = *impl_;
  if (!s.text_encoder) s.text_encoder.emplace(TextEncoder::Load(s.clip, s.options.inference));
  const std::vector<float> vector = s.text_encoder->Encode({text});
  return s.Matches(*s.all_filter, vector.data());
}

}  // namespace lookbook
