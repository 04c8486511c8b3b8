// Copy verification for near-duplicate candidates: does one image, warped by the affine map
// that best aligns it, reproduce the other?
//
// Both images are shrunk to AlignView::kSide pixels square. The affine map comes from ECC
// alignment on grey levels (image/ecc.h: OpenCV's findTransformECC algorithm, MOTION_AFFINE,
// written for these small views), started from the identity
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

#include <array>
#include <cstdint>
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

// What embed stores per image so that dedup never reads an image file again (the views come
// from the very bytes embed read): the align thumbnail, kSide x kSide x 3 RGB bytes (the
// INTER_AREA shrink MakeAlignView starts from, so ViewFromThumb(MakeAlignThumb(i)) ==
// MakeAlignView(i)), the content box and the colour of its foreground.
inline constexpr std::size_t kAlignThumbBytes = static_cast<std::size_t>(AlignView::kSide) * AlignView::kSide * 3;
std::vector<std::uint8_t> MakeAlignThumb(const RgbImage& image);
AlignView ViewFromThumb(const std::uint8_t* thumb);  // kAlignThumbBytes bytes

struct ThumbStats {
  // The foreground's bounding box in the thumbnail's pixels (x0, y0, x1, y1; x1 and y1
  // exclusive); the whole thumbnail when nothing stands out from the border colour.
  std::array<std::int16_t, 4> box{0, 0, AlignView::kSide, AlignView::kSide};
  // Mean R, G, B and their standard deviations over the foreground pixels of the box, in [0, 1].
  std::array<float, 6> colour{};
};
ThumbStats DescribeThumb(const std::uint8_t* thumb);
// The share of the thumbnail's pixels that are not near white (a channel below
// kNearWhite), in [0, 1]: how much of the frame is content rather than white paper. The white
// border or fill an edit adds (a framed copy, the corners of a rotated one) is not content, so
// an edited copy has no more content pixels than its original; the border colour of the
// picture itself is not used, since a border makes a photo's own background look like content.
inline constexpr std::uint8_t kNearWhite = 240;
float NonWhiteShare(const std::uint8_t* thumb);

// The cheap checks that run before the alignment (dedup's verification cascade), in
// increasing cost. Each is a necessary condition of AlignedCorrelation passing the rule, with a
// margin measured on copies (docs/performance.md#verification-cascade):
//  - the colour gate: how far the foreground's mean colour moved, in brightness (mean over the
//    channels) and in hue (the channels' spread around that mean), from the stored statistics
//    alone (nanoseconds);
//  - the coarse correlation: zero-mean correlation of the two content boxes, each shrunk to
//    kCoarseSide grey pixels, without alignment (microseconds).
// The gates' thresholds, chosen on the tune sets (a train-split demo catalog and one half of
// the real-photo relisting set; docs/performance.md#verification-cascade): every candidate the
// full-size alignment accepted there passes the colour and coarse gates with a margin (their
// largest colour shifts x1.5, their lowest coarse correlation -0.15). The half-size alignment
// (AlignCoarseToFine) stops a pair whose aligned correlation at half size is below
// kGateMinHalfColour: copies of the demo scored 0.942 and above there, look-alikes a median of
// 0.81; real photos need the lower bar.
inline constexpr float kGateMaxBrightness = 0.42f;
inline constexpr float kGateMaxHue = 0.32f;
inline constexpr float kGateMinCoarse = 0.04f;
inline constexpr float kGateMinHalfColour = 0.65f;

struct ColourShift {
  float brightness = 0, hue = 0;
};
ColourShift CompareColour(const ThumbStats& a, const ThumbStats& b);
inline constexpr int kCoarseSide = 16;
float CoarseCorrelation(const std::uint8_t* thumb_a, const ThumbStats& a, const std::uint8_t* thumb_b,
                        const ThumbStats& b);

// The aligned correlation of b onto a, in [-1, 1]; -1 when no alignment converges, the
// images share fewer than a few dozen foreground pixels, or the garment changed colour. Not
// symmetric in general, but nearly so for copies. Thread-safe.
float AlignedCorrelation(const AlignView& a, const AlignView& b);

// The alignment coarse to fine, for dedup's cascade: the ECC search on both views shrunk to half
// size (a quarter of the pixels, fewer iterations), scored there; stopped when that aligned
// correlation is below min_half_colour (aligned -1, aligned_full false), else refined at full
// size from the half-size warp and scored as AlignedCorrelation scores. The starts
// (image_internal::HalfSizeStarts) are also scored as they stand at half size when the search
// found nothing that looks like a copy there, and one takes the search's place when it does; a
// half-size warp that looked like a copy is scored at full size beside its refinement, the
// better counting (a search on a textured real photo can drift from a right start). When nothing
// converges at half size the full-size search decides; when the refinement at full size does not
// converge, the half-size warp is scored. A half-size iteration costs a quarter of a full-size
// one, and most non-copies stop there (measured: docs/performance.md#verification-cascade). Thread-safe.
// Bumped when how a pair is aligned or scored changes: last night's verifications of another
// version are not reused (dedup's search identity).
inline constexpr int kAlignVersion = 4;
struct AlignSearch {
  int half_iterations = 15;                    // ECC iterations per start at half size
  bool zoom_starts = true;                     // also from a 15% zoom in and out (identity not good enough)
  int refine_iterations = 8;                   // ECC iterations at full size, from the half-size warp
  float min_half_colour = kGateMinHalfColour;  // -2: never stop at half size
};
struct AlignResult {
  float aligned = -1.0f;
  float half_score = -1.0f;   // the half-size ECC correlation (grey levels)
  float half_colour = -2.0f;  // the aligned correlation at half size (-2: not computed)
  bool aligned_full = false;
};
// With both images' stats, the search starts from the map of one content box onto the other.
AlignResult AlignCoarseToFine(const AlignView& a, const AlignView& b, const AlignSearch& search = {},
                              const ThumbStats* box_a = nullptr, const ThumbStats* box_b = nullptr);

namespace image_internal {
// AlignCoarseToFine's starts at half size (for its tests): with both images' stats, the map of a's
// content box onto b's when it is not the identity (a crop or a border on a plain background;
// *box_starts 1), then the identity; otherwise (no stats, or boxes that agree: a textured
// background makes the whole frame content) the identity, a zoom in and a zoom out by a 15%
// crop's factor (search.zoom_starts). Each a 2x3 affine map in half-size pixels (image/ecc.h).
std::vector<std::array<float, 6>> HalfSizeStarts(const AlignSearch& search, const ThumbStats* box_a,
                                                 const ThumbStats* box_b, std::size_t* box_starts);
}  // namespace image_internal

}  // namespace lookbook
