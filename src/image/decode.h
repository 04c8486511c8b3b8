// Decoding that survives a hostile feed. Before any pixel is decoded: an allow-list by magic
// bytes (JPEG, PNG, WebP; the file name does not matter), a file size cap, and a pixel-count
// cap read from the header (a 30000x30000 PNG of 1 MB is rejected without allocating it).
// JPEG goes through TurboJPEG with stop-on-warning (libjpeg's "premature end of data" and
// friends reject the file instead of yielding grey rows) and DCT-domain downscaling to just
// above the size the model needs; PNG and WebP through OpenCV. CMYK/YCCK, grayscale, 16-bit,
// alpha (composited on white) and EXIF orientation are handled. The result is always 8-bit RGB.
#pragma once

#include <cstdint>
#include <filesystem>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace lookbook {

enum class ImageStatus : std::int8_t {
  kOk = 0,
  kMissing = 1,     // the file is gone
  kUnreadable = 2,  // it cannot be read
  kEmptyFile = 3,
  kFileTooLarge = 4,       // over DecodeLimits::max_file_bytes
  kUnsupportedFormat = 5,  // not JPEG, PNG or WebP by its magic bytes
  kTooManyPixels = 6,      // header dimensions over DecodeLimits::max_pixels
  kCorrupt = 7,            // the decoder failed or warned (truncated, bit-flipped, noise)
};
inline constexpr int kImageStatusCount = 8;

// "ok", "missing", ..., "corrupt": the vocabulary of /images/reason.
const char* ImageStatusName(ImageStatus status);

enum class ImageFormat { kUnknown, kJpeg, kPng, kWebp };
ImageFormat SniffFormat(std::string_view bytes);

// The memory the decodes of one process may hold at once (threads share it). A decode asks for
// what its image will need before allocating it (from the header: the decoded pixels and the
// copies made on the way to 8-bit RGB, about 10 bytes a pixel) and waits while others hold the
// rest; an image larger than the whole budget waits until it is alone, so it still decodes and
// nothing deadlocks. Thread-safe.
class DecodeBudget {
 public:
  explicit DecodeBudget(std::uint64_t bytes);
  DecodeBudget(const DecodeBudget&) = delete;
  DecodeBudget& operator=(const DecodeBudget&) = delete;
  ~DecodeBudget();

  // Held while it lives.
  class Lease {
   public:
    Lease(DecodeBudget* budget, std::uint64_t bytes);
    Lease(const Lease&) = delete;
    Lease& operator=(const Lease&) = delete;
    ~Lease();

   private:
    DecodeBudget* budget_;
    std::uint64_t bytes_;
  };

  std::uint64_t limit() const;
  std::uint64_t peak() const;   // the most bytes held at once
  std::int64_t waited() const;  // decodes that had to wait

 private:
  struct State;
  State* state_;
};

struct DecodeLimits {
  std::uint64_t max_file_bytes = 64ull << 20;
  std::uint64_t max_pixels = 100'000'000;  // the same default as OPENCV_IO_MAX_IMAGE_PIXELS in jobs
  int min_side = 0;                        // JPEG only: downscale in the DCT while the short side stays >= min_side
  DecodeBudget* budget = nullptr;          // shared by the decode threads; none: no bound
};

// Bytes a decode of w x h pixels holds at its peak (the decoded buffer, the RGB conversion, the
// result): what it asks of a DecodeBudget.
std::uint64_t DecodeBytes(std::uint64_t width, std::uint64_t height);

struct RgbImage {
  int width = 0;
  int height = 0;
  std::vector<std::uint8_t> rgb;  // height x width x 3
};

struct DecodeResult {
  ImageStatus status = ImageStatus::kOk;
  std::string detail;    // the decoder's message when it failed
  RgbImage image;        // upright (EXIF orientation applied)
  int source_width = 0;  // as stored in the file, before scaling and orientation
  int source_height = 0;
  bool sides_swapped = false;  // the EXIF orientation turned the image by 90 degrees
};

// Thread-safe.
DecodeResult DecodeImage(std::string_view bytes, const DecodeLimits& limits);

// The EXIF orientation (1..8) of a JPEG, 1 when it has none.
int JpegExifOrientation(std::string_view bytes);

// Reads one image file whole: kOk with its bytes, or kMissing, kUnreadable (not a regular
// file, a read error, or it changed size while being read) or kFileTooLarge (over max_bytes).
ImageStatus ReadImageFile(const std::filesystem::path& path, std::uint64_t max_bytes, std::string* bytes);

// ReadImageFile (limits.max_file_bytes) then DecodeImage: the decoded image, or the status of
// whichever step failed (detail empty when the read did). Thread-safe.
DecodeResult DecodeImageFile(const std::filesystem::path& path, const DecodeLimits& limits);

// The source size (width, height) as the decoded image stands: EXIF rotations swap the stored
// sides; the decoded size when the source size is unknown.
std::pair<int, int> UprightSourceSize(const DecodeResult& decoded);

}  // namespace lookbook
