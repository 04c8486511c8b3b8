// Copy verification for near-duplicate candidates: does one image, warped by the affine map
// that best aligns it, reproduce the other?
//
// Both images are shrunk to AlignView::kSide pixels square. The affine map comes from OpenCV's
// ECC alignment (findTransformECC, MOTION_AFFINE, on grey levels), started from the identity
// and, when that does not converge well, from a zoom in and a zoom out (a crop or an added
// border of about 15%). The score is the zero-mean normalised correlation of the colour values
// over the pixels both images cover, restricted to the foreground (pixels that differ from
// their image's border colour): a plain studio background would make any two shots look alike.
// The correlation ignores gain and offset, so the garment's colour is checked apart: when its
// mean over the foreground moves more than a brightened copy's would, or unevenly across the
// channels (a hue change), the images are not copies, whatever their correlation.
//
// A crop, a border, a small rotation, a resize, a re-encode or a brightness change of the same
// photo scores 0.97 to 1.00; a look-alike garment of the same class and colour scores below,
// and a colour variant far below. Measured on the demo catalogs: docs/performance.md#near-duplicates.
#pragma once

#include <vector>

#include "image/decode.h"

namespace lookbook {

struct AlignView {
  static constexpr int kSide = 64;
  std::vector<float> rgb;   // kSide x kSide x 3, in [0, 1]
  std::vector<float> grey;  // kSide x kSide
};

// The decode size that suffices for a view: JPEGs may be shrunk in the DCT down to this side.
inline constexpr int kAlignMinSide = AlignView::kSide;

AlignView MakeAlignView(const RgbImage& image);

// The aligned correlation of b onto a, in [-1, 1]; -1 when no alignment converges, the
// images share fewer than a few dozen foreground pixels, or the garment changed colour. Not
// symmetric in general, but nearly so for copies. Thread-safe.
float AlignedCorrelation(const AlignView& a, const AlignView& b);

}  // namespace lookbook
