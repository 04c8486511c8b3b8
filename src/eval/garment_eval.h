// `lookbook eval garments`: the garments the embed stage found in a run's outfit photos,
// against the demo catalog's truth (truth/outfits.csv and truth/products.csv).
//
//   outfit_photos        outfit photos found in the run (ok images named in outfits.csv)
//   slot_precision       detected slots that are in the photo / all detected slots, summed
//                        over photos (a slot counts once per photo)
//   slot_recall          slots of the photo's products that were detected / all such slots
//   crop_rank1           share of (photo, product) pairs whose garment crop (the largest
//                        garment of the product's slot in the photo) has that product as its
//                        nearest catalog product; a product's score is the best cosine over its
//                        images that are not outfit photos; a slot not detected is a miss
//   crop_rank1_detected  the same over the pairs whose slot was detected
//   crop_recall_at_5     the product among the 5 nearest
//   garments_per_photo   mean garments stored per outfit photo
// Every shard file is checked against the embed manifest's checksum before it is read.
#pragma once

#include <filesystem>
#include <map>
#include <string>

namespace lookbook {

struct GarmentEvalOptions {
  std::filesystem::path run;
  std::filesystem::path truth;  // the demo catalog's truth/ folder
};

// Throws InputError when the run has no valid embed stage or its shards have no garments.
std::map<std::string, double> EvaluateGarments(const GarmentEvalOptions& options);

}  // namespace lookbook
