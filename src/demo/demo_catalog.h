// `lookbook demo-catalog`: the built-in catalog for the demo and the tests, drawn from
// Fashion-MNIST. Layout of DIR:
//   catalog.csv            product_id,image_1,image_2,image_3,category,in_stock,title
//                          image_1 product shot; image_2 (some products) a second export of
//                          the same shot; image_3 (outfit anchors) a flat-lay outfit photo.
//   images/products/*.jpg  product shots, 224x224, one colour per product, light background
//   images/outfits/*.jpg   flat-lay outfit photos, 448x448 on light grey (--outfits flat-lay,
//                          the default); with --outfits random, photos composed as
//                          demo/render.h RenderRandomOutfit says (other frame sizes, aspect
//                          ratios, backgrounds, layouts, scales, turns, shadows, noise) and saved
//                          at a JPEG quality from 40 to 95: the randomized test split. Product
//                          shots are the same either way (a retailer's studio shots).
//   truth/duplicates.csv   image_a,image_b,kind,transform: every planted near-duplicate pair
//                          (kind same_product: image_2 of a product; cross_product: a relisting
//                          of another product's shot under a new id, after `transform`).
//                          Copies are transitive: two relistings of one shot, or a relisting
//                          and the original's image_2, are near-duplicates of each other too.
//   truth/colour_variants.csv  image_a,image_b: the same garment in another colour as another
//                          product; hard negatives, not duplicates
//   truth/outfits.csv      outfit,product_ids: an outfit photo (as in the catalog) and the
//                          space-separated products drawn in it, the anchor first
//   truth/labels/*.png     per-pixel label maps of the outfit photos, the photo's size (0 background, 1 top,
//                          2 bottom, 3 dress, 4 shoes, 5 bag)
//   truth/products.csv     product_id,fashion_index,class,colour,slot: where each came from
// The same options give byte-identical files.
#pragma once

#include <cstdint>
#include <filesystem>

#include "demo/fashion_mnist.h"

namespace lookbook {

enum class DemoOutfits { kFlatLay, kRandom };

struct DemoCatalogOptions {
  std::filesystem::path out;
  int items = 400;  // products in catalog.csv
  std::uint64_t seed = 7;
  FashionSplit split = FashionSplit::kTest;
  std::filesystem::path fashion_mnist = kFashionMnistDir;
  DemoOutfits outfits = DemoOutfits::kFlatLay;
};

struct DemoCatalogSummary {
  int products = 0;
  int images = 0;
  int duplicate_pairs = 0;
  int colour_variants = 0;
  int outfits = 0;
};

// Throws InputError when Fashion-MNIST is missing or DIR cannot be written.
DemoCatalogSummary WriteDemoCatalog(const DemoCatalogOptions& options);

}  // namespace lookbook
