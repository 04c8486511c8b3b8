// How the demo draws its photos from Fashion-MNIST garments. Shared by the demo catalog and
// the demo-model training (the models learn from exactly what the demo shows them).
//
// Images are plain 8-bit BGR, row-major (OpenCV's order), `width * height * 3` bytes.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "image/decode.h"

namespace lookbook {

struct BgrImage {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> bgr;
};

// The segmentation classes of the demo's outfit label maps (values of each label pixel).
enum class DemoSlot : std::uint8_t { kBackground = 0, kTop, kBottom, kDress, kShoes, kBag };
inline constexpr int kDemoSlotCount = 6;
const char* DemoSlotName(DemoSlot slot);  // "background", "top", ...
DemoSlot SlotOfFashionClass(int fashion_class);

struct GarmentColour {
  const char* name;  // "red", "navy", ...
  std::uint8_t b, g, r;
};
const std::vector<GarmentColour>& DemoPalette();

// A product shot: the garment in `colour`, shaded by its Fashion-MNIST intensities, centred
// on a light `background` grey (e.g. 245), `side` x `side` pixels.
BgrImage RenderProductShot(const std::uint8_t* garment28, const GarmentColour& colour, int side,
                           std::uint8_t background);

struct OutfitItem {
  const std::uint8_t* garment28;
  GarmentColour colour;
  DemoSlot slot;
  int x, y, side;  // where the garment is drawn
};

struct OutfitPhoto {
  BgrImage photo;
  std::vector<std::uint8_t> labels;  // width * height DemoSlot values
};

// A flat-lay photo: items drawn in order on a light background, later items on top.
OutfitPhoto RenderOutfit(const std::vector<OutfitItem>& items, int side, std::uint8_t background);

// Where the demo's flat-lay layout puts a garment of `slot` on a 448 x 448 photo, shifted
// by (jitter_x, jitter_y): top upper left, bottom below it, a dress in their place, shoes
// lower right, a bag upper right.
OutfitItem PlaceInOutfit(const std::uint8_t* garment28, const GarmentColour& colour, DemoSlot slot, int jitter_x,
                         int jitter_y);
inline constexpr int kOutfitSide = 448;

// An outfit photo composed unlike the demo's flat lays, for training and for the randomized
// test split (demo-catalog --outfits random): a frame of another size and aspect ratio (short
// side 320..640 px, aspect 0.6..1.67); a background that is a plain colour from the whole range
// (kept apart from the garments' colours), a gradient, a texture (stripes, checks, fabric
// grain) or any of these with sensor noise; the garments in a free layout (anywhere, at
// 28..55% of the short side, overlapping at most a quarter of an earlier garment's box) or in a
// grid, each turned by up to 12 degrees, some with a soft drop shadow. Later garments lie on top;
// the label map says what is visible. The same seed gives the same photo.
struct RandomOutfitGarment {
  const std::uint8_t* garment28;
  GarmentColour colour;
  DemoSlot slot;
};
OutfitPhoto RenderRandomOutfit(const std::vector<RandomOutfitGarment>& garments, std::uint64_t seed);

// The same pixels in RGB order, as the decoder hands them to preprocessing.
RgbImage ToRgb(const BgrImage& image);

// Near-duplicate transforms, each a copy a retailer's feed really contains.
enum class CopyTransform { kReencode, kCrop, kResize, kBorder, kBrighten, kRotate };
inline constexpr int kCopyTransformCount = 6;
const char* CopyTransformName(CopyTransform transform);

// Encodes `image` as JPEG; the reencode transform uses a low quality, the others 90.
std::vector<std::uint8_t> EncodeJpeg(const BgrImage& image, int quality);
std::vector<std::uint8_t> EncodePngGray(const std::vector<std::uint8_t>& gray, int width, int height);
BgrImage ApplyCopyTransform(const BgrImage& image, CopyTransform transform);

}  // namespace lookbook
