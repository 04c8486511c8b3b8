#include "demo/demo_catalog.h"

#include <algorithm>
#include <cctype>
#include <cstdio>
#include <limits>
#include <map>
#include <random>
#include <string>
#include <vector>

#include "catalog/csv.h"
#include "demo/render.h"
#include "util/error.h"
#include "util/publish.h"

namespace lookbook {
namespace {

constexpr int kProductSide = 224;
constexpr int kJpegQuality = 90;

// Platform-independent draws (std:: distributions differ between standard libraries).
class Draw {
 public:
  explicit Draw(std::uint64_t seed) : engine_(seed) {}
  std::uint64_t Below(std::uint64_t n) { return engine_() % n; }
  bool Chance(int percent) { return Below(100) < static_cast<std::uint64_t>(percent); }
  template <typename T>
  void Shuffle(std::vector<T>* items) {
    for (std::size_t i = items->size(); i > 1; --i) std::swap((*items)[i - 1], (*items)[Below(i)]);
  }

 private:
  std::mt19937_64 engine_;
};

enum class Role { kBase, kRelisting, kColourVariant };

struct ProductSpec {
  Role role = Role::kBase;
  std::size_t garment = 0;  // Fashion-MNIST index
  int label = 0;
  int colour = 0;
  int source = -1;  // the base product a relisting or colour variant copies
  CopyTransform transform = CopyTransform::kReencode;
  bool second_shot = false;
  bool in_stock = true;
  int style = 0;
  std::string id;
  std::string image_1, image_2, image_3;
};

void WriteBytes(const std::filesystem::path& path, const std::vector<std::uint8_t>& bytes) {
  PublishFile(path, std::string_view(reinterpret_cast<const char*>(bytes.data()), bytes.size()));
}

std::string Capitalised(std::string text) {
  if (!text.empty()) text[0] = static_cast<char>(std::toupper(static_cast<unsigned char>(text[0])));
  return text;
}

std::string LowerClass(int label) {
  std::string name = FashionClassNames()[static_cast<std::size_t>(label)];
  for (char& ch : name) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return name;
}

}  // namespace

DemoCatalogSummary WriteDemoCatalog(const DemoCatalogOptions& options) {
  LB_CHECK(options.items > 0, "item count must be positive");
  const FashionMnist data = FashionMnist::Load(options.fashion_mnist, options.split);
  if (static_cast<std::size_t>(options.items) > data.size()) {
    throw InputError("--items " + std::to_string(options.items) + " is more than the " + std::to_string(data.size()) +
                     " garments of the split");
  }
  Draw draw(options.seed);
  const auto& palette = DemoPalette();

  // Roles: 10% relistings of another product's shot, 10% colour variants, the rest base.
  const int relistings = options.items / 10;
  const int variants = options.items / 10;
  const int bases = options.items - relistings - variants;
  std::vector<std::size_t> garments(data.size());
  for (std::size_t i = 0; i < garments.size(); ++i) garments[i] = i;
  draw.Shuffle(&garments);

  std::vector<ProductSpec> specs;
  for (int i = 0; i < bases; ++i) {
    ProductSpec spec;
    spec.garment = garments[static_cast<std::size_t>(i)];
    spec.label = data.labels[spec.garment];
    spec.colour = static_cast<int>(draw.Below(palette.size()));
    spec.second_shot = draw.Chance(15);
    specs.push_back(spec);
  }
  for (int i = 0; i < relistings + variants; ++i) {
    const int source = static_cast<int>(draw.Below(static_cast<std::uint64_t>(bases)));
    ProductSpec spec = specs[static_cast<std::size_t>(source)];
    spec.source = source;
    spec.second_shot = false;
    if (i < relistings) {
      spec.role = Role::kRelisting;
      spec.transform = static_cast<CopyTransform>(i % kCopyTransformCount);
    } else {
      spec.role = Role::kColourVariant;
      spec.colour = static_cast<int>((spec.colour + 1 + draw.Below(palette.size() - 1)) % palette.size());
    }
    specs.push_back(spec);
  }
  for (auto& spec : specs) {
    spec.in_stock = draw.Chance(75);
    spec.style = 100 + static_cast<int>(draw.Below(900));
  }
  // Catalog order and ids: shuffled so that copies are not next to their originals.
  std::vector<int> order(specs.size());
  for (std::size_t i = 0; i < order.size(); ++i) order[i] = static_cast<int>(i);
  draw.Shuffle(&order);
  for (std::size_t position = 0; position < order.size(); ++position) {
    char id[32];
    std::snprintf(id, sizeof id, "P%06zu", position + 1);
    ProductSpec& spec = specs[static_cast<std::size_t>(order[position])];
    spec.id = id;
    spec.image_1 = "products/" + spec.id + "_1.jpg";
    if (spec.second_shot) spec.image_2 = "products/" + spec.id + "_2.jpg";
  }

  // Outfits: a top and trousers, or a dress, with shoes and sometimes a bag; the top or dress
  // is the anchor whose image_3 is the outfit photo.
  std::map<DemoSlot, std::vector<int>> by_slot;
  for (int i = 0; i < bases; ++i) {
    by_slot[SlotOfFashionClass(specs[static_cast<std::size_t>(i)].label)].push_back(i);
  }
  for (auto& [slot, list] : by_slot) draw.Shuffle(&list);
  std::map<DemoSlot, std::size_t> next_of_slot;
  auto take = [&](DemoSlot slot) -> int {
    auto& list = by_slot[slot];
    if (list.empty()) return -1;
    std::size_t& next = next_of_slot[slot];
    return list[next++ % list.size()];
  };
  struct Outfit {
    std::vector<int> products;  // anchor first
    std::vector<DemoSlot> slots;
  };
  std::vector<Outfit> outfits;
  const int outfit_count = std::max(1, options.items / 12);
  for (int i = 0; i < outfit_count; ++i) {
    Outfit outfit;
    const bool dress = draw.Chance(40) && !by_slot[DemoSlot::kDress].empty();
    const DemoSlot anchor_slot = dress ? DemoSlot::kDress : DemoSlot::kTop;
    // Each anchor owns at most one outfit photo.
    int anchor = -1;
    for (std::size_t tries = 0; tries < by_slot[anchor_slot].size() && anchor < 0; ++tries) {
      const int candidate = take(anchor_slot);
      if (candidate >= 0 && specs[static_cast<std::size_t>(candidate)].image_3.empty()) anchor = candidate;
    }
    if (anchor < 0) continue;
    outfit.products.push_back(anchor);
    outfit.slots.push_back(anchor_slot);
    std::vector<DemoSlot> others;
    if (!dress) others.push_back(DemoSlot::kBottom);
    others.push_back(DemoSlot::kShoes);
    if (draw.Chance(40)) others.push_back(DemoSlot::kBag);
    for (const DemoSlot slot : others) {
      const int product = take(slot);
      if (product < 0) continue;
      outfit.products.push_back(product);
      outfit.slots.push_back(slot);
    }
    if (outfit.products.size() < 2) continue;
    ProductSpec& anchor_spec = specs[static_cast<std::size_t>(anchor)];
    anchor_spec.image_3 = "outfits/" + anchor_spec.id + "_outfit.jpg";
    outfits.push_back(outfit);
  }

  // Write everything.
  const auto images_dir = options.out / "images";
  const auto truth_dir = options.out / "truth";
  for (const auto& folder : {images_dir / "products", images_dir / "outfits", truth_dir / "labels"}) {
    std::error_code error;
    std::filesystem::create_directories(folder, error);
    if (error) throw InputError("cannot create " + folder.string() + ": " + error.message());
  }
  DemoCatalogSummary summary;
  std::vector<BgrImage> shots(specs.size());
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const ProductSpec& spec = specs[i];
    const GarmentColour& colour = palette[static_cast<std::size_t>(spec.colour)];
    shots[i] = RenderProductShot(data.image(spec.garment), colour, kProductSide, 245);
  }
  std::string duplicates = "image_a,image_b,kind,transform\n";
  std::string colour_variants = "image_a,image_b\n";
  std::string products = "product_id,fashion_index,class,colour,slot\n";
  for (std::size_t i = 0; i < specs.size(); ++i) {
    const ProductSpec& spec = specs[i];
    if (spec.role == Role::kRelisting) {
      const ProductSpec& source = specs[static_cast<std::size_t>(spec.source)];
      const BgrImage copy = ApplyCopyTransform(shots[static_cast<std::size_t>(spec.source)], spec.transform);
      WriteBytes(images_dir / spec.image_1, EncodeJpeg(copy, kJpegQuality));
      AppendCsvRow({source.image_1, spec.image_1, "cross_product", CopyTransformName(spec.transform)}, &duplicates);
      ++summary.duplicate_pairs;
    } else {
      WriteBytes(images_dir / spec.image_1, EncodeJpeg(shots[i], kJpegQuality));
    }
    ++summary.images;
    if (spec.role == Role::kColourVariant) {
      AppendCsvRow({specs[static_cast<std::size_t>(spec.source)].image_1, spec.image_1}, &colour_variants);
      ++summary.colour_variants;
    }
    if (!spec.image_2.empty()) {
      // A second export of the same shot, at another size and quality.
      const BgrImage second = ApplyCopyTransform(shots[i], CopyTransform::kResize);
      WriteBytes(images_dir / spec.image_2, EncodeJpeg(second, 80));
      AppendCsvRow({spec.image_1, spec.image_2, "same_product", "resize"}, &duplicates);
      ++summary.duplicate_pairs;
      ++summary.images;
    }
    AppendCsvRow({spec.id, std::to_string(spec.garment), FashionClassNames()[static_cast<std::size_t>(spec.label)],
                  palette[static_cast<std::size_t>(spec.colour)].name, DemoSlotName(SlotOfFashionClass(spec.label))},
                 &products);
  }

  std::string outfits_csv = "outfit,product_ids\n";
  for (const auto& outfit : outfits) {
    const ProductSpec& anchor = specs[static_cast<std::size_t>(outfit.products.front())];
    std::vector<OutfitItem> items;
    std::vector<RandomOutfitGarment> garments;
    std::string ids;
    for (std::size_t k = 0; k < outfit.products.size(); ++k) {
      const ProductSpec& spec = specs[static_cast<std::size_t>(outfit.products[k])];
      ids += (ids.empty() ? "" : " ") + spec.id;
      const GarmentColour& colour = palette[static_cast<std::size_t>(spec.colour)];
      if (options.outfits == DemoOutfits::kRandom) {
        garments.push_back(RandomOutfitGarment{data.image(spec.garment), colour, outfit.slots[k]});
        continue;
      }
      const int jitter_x = static_cast<int>(draw.Below(17)) - 8;
      const int jitter_y = static_cast<int>(draw.Below(17)) - 8;
      items.push_back(PlaceInOutfit(data.image(spec.garment), colour, outfit.slots[k], jitter_x, jitter_y));
    }
    OutfitPhoto photo;
    int quality = kJpegQuality;
    if (options.outfits == DemoOutfits::kRandom) {
      // The garments in a shuffled order (which lies on top varies too).
      for (std::size_t i = garments.size(); i > 1; --i) std::swap(garments[i - 1], garments[draw.Below(i)]);
      photo = RenderRandomOutfit(garments, draw.Below(std::numeric_limits<std::uint64_t>::max()));
      quality = 40 + static_cast<int>(draw.Below(56));
    } else {
      photo = RenderOutfit(items, kOutfitSide, 240);
    }
    WriteBytes(images_dir / anchor.image_3, EncodeJpeg(photo.photo, quality));
    WriteBytes(truth_dir / "labels" / (anchor.id + "_outfit.png"),
               EncodePngGray(photo.labels, photo.photo.width, photo.photo.height));
    AppendCsvRow({anchor.image_3, ids}, &outfits_csv);
    ++summary.outfits;
    ++summary.images;
  }

  std::string catalog = "product_id,image_1,image_2,image_3,category,in_stock,title\n";
  for (const int index : order) {
    const ProductSpec& spec = specs[static_cast<std::size_t>(index)];
    const std::string title = Capitalised(palette[static_cast<std::size_t>(spec.colour)].name) + " " +
                              LowerClass(spec.label) + ", style " + std::to_string(spec.style);
    AppendCsvRow({spec.id, spec.image_1, spec.image_2, spec.image_3,
                  FashionClassNames()[static_cast<std::size_t>(spec.label)], spec.in_stock ? "1" : "0", title},
                 &catalog);
  }
  PublishFile(options.out / "catalog.csv", catalog);
  PublishFile(truth_dir / "duplicates.csv", duplicates);
  PublishFile(truth_dir / "colour_variants.csv", colour_variants);
  PublishFile(truth_dir / "outfits.csv", outfits_csv);
  PublishFile(truth_dir / "products.csv", products);
  summary.products = static_cast<int>(specs.size());
  return summary;
}

}  // namespace lookbook
