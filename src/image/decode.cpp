#include "image/decode.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>

#include <turbojpeg.h>

#include <algorithm>
#include <condition_variable>
#include <cstring>
#include <memory>
#include <mutex>
#include <opencv2/core.hpp>
#include <opencv2/imgcodecs.hpp>
#include <opencv2/imgproc.hpp>
#include <optional>

namespace lookbook {
namespace {

std::uint32_t BigEndian32(const unsigned char* p) {
  return (std::uint32_t{p[0]} << 24) | (std::uint32_t{p[1]} << 16) | (std::uint32_t{p[2]} << 8) | p[3];
}
std::uint32_t LittleEndian24(const unsigned char* p) {
  return std::uint32_t{p[0]} | (std::uint32_t{p[1]} << 8) | (std::uint32_t{p[2]} << 16);
}

// Width and height from a PNG or WebP header, without decoding; false when the header is
// not readable.
bool HeaderSize(std::string_view bytes, ImageFormat format, std::uint64_t* width, std::uint64_t* height) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (format == ImageFormat::kPng) {
    if (bytes.size() < 24 || std::memcmp(p + 12, "IHDR", 4) != 0) return false;
    *width = BigEndian32(p + 16);
    *height = BigEndian32(p + 20);
    return true;
  }
  if (format == ImageFormat::kWebp) {
    if (bytes.size() < 30) return false;
    if (std::memcmp(p + 12, "VP8 ", 4) == 0) {
      if (p[23] != 0x9d || p[24] != 0x01 || p[25] != 0x2a) return false;
      *width = (p[26] | (p[27] << 8)) & 0x3fff;
      *height = (p[28] | (p[29] << 8)) & 0x3fff;
      return true;
    }
    if (std::memcmp(p + 12, "VP8L", 4) == 0) {
      if (p[20] != 0x2f) return false;
      const std::uint32_t bits = p[21] | (p[22] << 8) | (p[23] << 16) | (std::uint32_t{p[24]} << 24);
      *width = (bits & 0x3fff) + 1;
      *height = ((bits >> 14) & 0x3fff) + 1;
      return true;
    }
    if (std::memcmp(p + 12, "VP8X", 4) == 0) {
      *width = LittleEndian24(p + 24) + 1;
      *height = LittleEndian24(p + 27) + 1;
      return true;
    }
    return false;
  }
  return false;
}

void ApplyOrientation(int orientation, cv::Mat* image) {
  switch (orientation) {
    case 2: cv::flip(*image, *image, 1); break;
    case 3: cv::rotate(*image, *image, cv::ROTATE_180); break;
    case 4: cv::flip(*image, *image, 0); break;
    case 5: cv::transpose(*image, *image); break;
    case 6: cv::rotate(*image, *image, cv::ROTATE_90_CLOCKWISE); break;
    case 7:
      cv::transpose(*image, *image);
      cv::rotate(*image, *image, cv::ROTATE_180);
      break;
    case 8: cv::rotate(*image, *image, cv::ROTATE_90_COUNTERCLOCKWISE); break;
    default: break;
  }
}

RgbImage ToRgbImage(const cv::Mat& rgb) {
  RgbImage image;
  image.width = rgb.cols;
  image.height = rgb.rows;
  image.rgb.resize(static_cast<std::size_t>(rgb.cols) * rgb.rows * 3);
  cv::Mat view(rgb.rows, rgb.cols, CV_8UC3, image.rgb.data());
  rgb.copyTo(view);
  return image;
}

struct TjHandle {
  tjhandle handle = tjInitDecompress();
  ~TjHandle() {
    if (handle != nullptr) tjDestroy(handle);
  }
};

DecodeResult DecodeJpeg(std::string_view bytes, const DecodeLimits& limits) {
  DecodeResult result;
  TjHandle tj;
  if (tj.handle == nullptr) {
    result.status = ImageStatus::kCorrupt;
    result.detail = "TurboJPEG could not start";
    return result;
  }
  const auto* data = reinterpret_cast<const unsigned char*>(bytes.data());
  int width = 0, height = 0, subsampling = 0, colorspace = 0;
  if (tjDecompressHeader3(tj.handle, data, static_cast<unsigned long>(bytes.size()), &width, &height, &subsampling,
                          &colorspace) != 0) {
    result.status = ImageStatus::kCorrupt;
    result.detail = tjGetErrorStr2(tj.handle);
    return result;
  }
  result.source_width = width;
  result.source_height = height;
  if (width <= 0 || height <= 0) {
    result.status = ImageStatus::kCorrupt;
    result.detail = "no image dimensions in the header";
    return result;
  }
  if (static_cast<std::uint64_t>(width) * static_cast<std::uint64_t>(height) > limits.max_pixels) {
    result.status = ImageStatus::kTooManyPixels;
    result.detail = std::to_string(width) + "x" + std::to_string(height);
    return result;
  }
  // The smallest DCT scale that keeps the short side at or above min_side.
  int count = 0;
  const tjscalingfactor* factors = tjGetScalingFactors(&count);
  tjscalingfactor best{1, 1};
  for (int i = 0; i < count && limits.min_side > 0; ++i) {
    const tjscalingfactor f = factors[i];
    if (f.num > f.denom) continue;
    const int w = TJSCALED(width, f), h = TJSCALED(height, f);
    if (std::min(w, h) >= limits.min_side &&
        static_cast<long>(w) * h < static_cast<long>(TJSCALED(width, best)) * TJSCALED(height, best)) {
      best = f;
    }
  }
  const int out_w = TJSCALED(width, best), out_h = TJSCALED(height, best);
  std::optional<DecodeBudget::Lease> lease;
  if (limits.budget != nullptr) lease.emplace(limits.budget, DecodeBytes(out_w, out_h));
  const bool cmyk = colorspace == TJCS_CMYK || colorspace == TJCS_YCCK;
  cv::Mat decoded(out_h, out_w, cmyk ? CV_8UC4 : CV_8UC3);
  const int flags = TJFLAG_STOPONWARNING | TJFLAG_ACCURATEDCT;
  if (tjDecompress2(tj.handle, data, static_cast<unsigned long>(bytes.size()), decoded.data, out_w,
                    static_cast<int>(decoded.step), out_h, cmyk ? TJPF_CMYK : TJPF_RGB, flags) != 0) {
    result.status = ImageStatus::kCorrupt;
    result.detail = tjGetErrorStr2(tj.handle);
    return result;
  }
  cv::Mat rgb;
  if (cmyk) {
    // JPEG CMYK is stored inverted (Adobe): the ink-free value is 255, so R = C * K / 255.
    rgb.create(out_h, out_w, CV_8UC3);
    for (int y = 0; y < out_h; ++y) {
      const auto* in = decoded.ptr<cv::Vec4b>(y);
      auto* out = rgb.ptr<cv::Vec3b>(y);
      for (int x = 0; x < out_w; ++x) {
        const int k = in[x][3];
        out[x] = cv::Vec3b(static_cast<uchar>(in[x][0] * k / 255), static_cast<uchar>(in[x][1] * k / 255),
                           static_cast<uchar>(in[x][2] * k / 255));
      }
    }
  } else {
    rgb = decoded;
  }
  const int orientation = JpegExifOrientation(bytes);
  result.sides_swapped = orientation >= 5;  // 5..8 transpose or turn by 90 degrees
  ApplyOrientation(orientation, &rgb);
  result.image = ToRgbImage(rgb);
  return result;
}

DecodeResult DecodeWithOpenCv(std::string_view bytes, ImageFormat format, const DecodeLimits& limits) {
  DecodeResult result;
  std::uint64_t width = 0, height = 0;
  if (!HeaderSize(bytes, format, &width, &height)) {
    result.status = ImageStatus::kCorrupt;
    result.detail = "unreadable header";
    return result;
  }
  result.source_width = static_cast<int>(std::min<std::uint64_t>(width, INT32_MAX));
  result.source_height = static_cast<int>(std::min<std::uint64_t>(height, INT32_MAX));
  if (width == 0 || height == 0) {
    result.status = ImageStatus::kCorrupt;
    result.detail = "no image dimensions in the header";
    return result;
  }
  if (width * height > limits.max_pixels) {
    result.status = ImageStatus::kTooManyPixels;
    result.detail = std::to_string(width) + "x" + std::to_string(height);
    return result;
  }
  std::optional<DecodeBudget::Lease> lease;  // 16-bit and alpha images hold more: counted twice
  if (limits.budget != nullptr) lease.emplace(limits.budget, 2 * DecodeBytes(width, height));
  cv::Mat decoded;
  try {
    const cv::Mat buffer(1, static_cast<int>(bytes.size()), CV_8U, const_cast<char*>(bytes.data()));
    decoded = cv::imdecode(buffer, cv::IMREAD_UNCHANGED | cv::IMREAD_IGNORE_ORIENTATION);
  } catch (const cv::Exception& error) {
    result.status = ImageStatus::kCorrupt;
    result.detail = error.what();
    return result;
  }
  if (decoded.empty()) {
    result.status = ImageStatus::kCorrupt;
    result.detail = "the decoder failed";
    return result;
  }
  if (decoded.depth() == CV_16U) decoded.convertTo(decoded, CV_8U, 1.0 / 257.0);
  if (decoded.depth() != CV_8U) {
    result.status = ImageStatus::kCorrupt;
    result.detail = "unsupported sample type";
    return result;
  }
  cv::Mat rgb;
  switch (decoded.channels()) {
    case 1: cv::cvtColor(decoded, rgb, cv::COLOR_GRAY2RGB); break;
    case 3: cv::cvtColor(decoded, rgb, cv::COLOR_BGR2RGB); break;
    case 4: {
      // Transparent product cut-outs: composite on white, the usual studio background.
      rgb.create(decoded.rows, decoded.cols, CV_8UC3);
      for (int y = 0; y < decoded.rows; ++y) {
        const auto* in = decoded.ptr<cv::Vec4b>(y);
        auto* out = rgb.ptr<cv::Vec3b>(y);
        for (int x = 0; x < decoded.cols; ++x) {
          const int a = in[x][3];
          for (int c = 0; c < 3; ++c) {
            out[x][2 - c] = static_cast<uchar>((in[x][c] * a + 255 * (255 - a) + 127) / 255);
          }
        }
      }
      break;
    }
    default:
      result.status = ImageStatus::kCorrupt;
      result.detail = "unsupported channel count";
      return result;
  }
  result.image = ToRgbImage(rgb);
  return result;
}

}  // namespace

const char* ImageStatusName(ImageStatus status) {
  switch (status) {
    case ImageStatus::kOk: return "ok";
    case ImageStatus::kMissing: return "missing";
    case ImageStatus::kUnreadable: return "unreadable";
    case ImageStatus::kEmptyFile: return "empty_file";
    case ImageStatus::kFileTooLarge: return "file_too_large";
    case ImageStatus::kUnsupportedFormat: return "unsupported_format";
    case ImageStatus::kTooManyPixels: return "too_many_pixels";
    case ImageStatus::kCorrupt: return "corrupt";
  }
  return "unknown";
}

ImageFormat SniffFormat(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  if (bytes.size() >= 3 && p[0] == 0xFF && p[1] == 0xD8 && p[2] == 0xFF) return ImageFormat::kJpeg;
  if (bytes.size() >= 8 && std::memcmp(p, "\x89PNG\r\n\x1a\n", 8) == 0) return ImageFormat::kPng;
  if (bytes.size() >= 12 && std::memcmp(p, "RIFF", 4) == 0 && std::memcmp(p + 8, "WEBP", 4) == 0) {
    return ImageFormat::kWebp;
  }
  return ImageFormat::kUnknown;
}

DecodeResult DecodeImage(std::string_view bytes, const DecodeLimits& limits) {
  DecodeResult result;
  if (bytes.empty()) {
    result.status = ImageStatus::kEmptyFile;
    return result;
  }
  if (bytes.size() > limits.max_file_bytes) {
    result.status = ImageStatus::kFileTooLarge;
    result.detail = std::to_string(bytes.size()) + " bytes";
    return result;
  }
  switch (SniffFormat(bytes)) {
    case ImageFormat::kJpeg: return DecodeJpeg(bytes, limits);
    case ImageFormat::kPng: return DecodeWithOpenCv(bytes, ImageFormat::kPng, limits);
    case ImageFormat::kWebp: return DecodeWithOpenCv(bytes, ImageFormat::kWebp, limits);
    case ImageFormat::kUnknown: break;
  }
  result.status = ImageStatus::kUnsupportedFormat;
  return result;
}

struct DecodeBudget::State {
  std::mutex mutex;
  std::condition_variable freed;
  std::uint64_t limit = 0, held = 0, peak = 0;
  int holders = 0;
  std::int64_t waited = 0;
};

DecodeBudget::DecodeBudget(std::uint64_t bytes) : state_(new State) { state_->limit = bytes; }
DecodeBudget::~DecodeBudget() { delete state_; }
std::uint64_t DecodeBudget::limit() const { return state_->limit; }
std::uint64_t DecodeBudget::peak() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->peak;
}
std::int64_t DecodeBudget::waited() const {
  std::lock_guard<std::mutex> lock(state_->mutex);
  return state_->waited;
}

DecodeBudget::Lease::Lease(DecodeBudget* budget, std::uint64_t bytes) : budget_(budget), bytes_(bytes) {
  State& s = *budget_->state_;
  std::unique_lock<std::mutex> lock(s.mutex);
  // Fits beside the others, or is alone (an image larger than the budget decodes by itself).
  auto fits = [&] { return s.holders == 0 || s.held + bytes_ <= s.limit; };
  if (!fits()) {
    ++s.waited;
    s.freed.wait(lock, fits);
  }
  s.held += bytes_;
  ++s.holders;
  s.peak = std::max(s.peak, s.held);
}

DecodeBudget::Lease::~Lease() {
  State& s = *budget_->state_;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    s.held -= bytes_;
    --s.holders;
  }
  s.freed.notify_all();
}

std::uint64_t DecodeBytes(std::uint64_t width, std::uint64_t height) { return width * height * 10; }

int JpegExifOrientation(std::string_view bytes) {
  const auto* p = reinterpret_cast<const unsigned char*>(bytes.data());
  const std::size_t n = bytes.size();
  std::size_t pos = 2;  // after SOI
  while (pos + 4 <= n && p[pos] == 0xFF) {
    const unsigned char marker = p[pos + 1];
    if (marker == 0xDA || marker == 0xD9) break;  // start of scan / end of image
    const std::size_t length = (std::size_t{p[pos + 2]} << 8) | p[pos + 3];
    if (length < 2 || pos + 2 + length > n) break;
    const unsigned char* segment = p + pos + 4;
    const std::size_t size = length - 2;
    if (marker == 0xE1 && size >= 14 && std::memcmp(segment, "Exif\0\0", 6) == 0) {
      const unsigned char* tiff = segment + 6;
      const std::size_t tiff_size = size - 6;
      const bool little = tiff[0] == 'I' && tiff[1] == 'I';
      if (!little && !(tiff[0] == 'M' && tiff[1] == 'M')) return 1;
      auto u16 = [&](std::size_t at) -> unsigned {
        return little ? (tiff[at] | (tiff[at + 1] << 8)) : ((tiff[at] << 8) | tiff[at + 1]);
      };
      auto u32 = [&](std::size_t at) -> std::size_t {
        return little ? (std::size_t{tiff[at]} | (std::size_t{tiff[at + 1]} << 8) | (std::size_t{tiff[at + 2]} << 16) |
                         (std::size_t{tiff[at + 3]} << 24))
                      : ((std::size_t{tiff[at]} << 24) | (std::size_t{tiff[at + 1]} << 16) |
                         (std::size_t{tiff[at + 2]} << 8) | std::size_t{tiff[at + 3]});
      };
      const std::size_t ifd = u32(4);
      if (ifd + 2 > tiff_size) return 1;
      const unsigned entries = u16(ifd);
      for (unsigned e = 0; e < entries; ++e) {
        const std::size_t entry = ifd + 2 + std::size_t{e} * 12;
        if (entry + 12 > tiff_size) return 1;
        if (u16(entry) == 0x0112) {
          const unsigned value = u16(entry + 8);
          return value >= 1 && value <= 8 ? static_cast<int>(value) : 1;
        }
      }
      return 1;
    }
    pos += 2 + length;
  }
  return 1;
}

// Reads one image file: the bytes, or why not.
ImageStatus ReadImageFile(const std::filesystem::path& path, std::uint64_t max_bytes, std::string* bytes) {
  // O_NONBLOCK: a FIFO or device put where an image was would otherwise block the rank in
  // open() forever; it is refused as not a regular file below (for regular files the flag
  // changes nothing).
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) return errno == ENOENT ? ImageStatus::kMissing : ImageStatus::kUnreadable;
  struct stat info {};
  ImageStatus status = ImageStatus::kOk;
  if (::fstat(fd, &info) != 0 || !S_ISREG(info.st_mode)) {
    status = ImageStatus::kUnreadable;
  } else if (static_cast<std::uint64_t>(info.st_size) > max_bytes) {
    status = ImageStatus::kFileTooLarge;
  } else {
    bytes->resize(static_cast<std::size_t>(info.st_size));
    std::size_t done = 0;
    while (done < bytes->size()) {
      const ssize_t n = ::read(fd, bytes->data() + done, bytes->size() - done);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      done += static_cast<std::size_t>(n);
    }
    if (done != bytes->size()) status = ImageStatus::kUnreadable;  // shrank or failed while reading
  }
  ::close(fd);
  return status;
}

DecodeResult DecodeImageFile(const std::filesystem::path& path, const DecodeLimits& limits) {
  std::string bytes;
  const ImageStatus status = ReadImageFile(path, limits.max_file_bytes, &bytes);
  if (status != ImageStatus::kOk) {
    DecodeResult result;
    result.status = status;
    return result;
  }
  return DecodeImage(bytes, limits);
}

// The source size as the decoded image stands (EXIF rotations swap the stored sides).
std::pair<int, int> UprightSourceSize(const DecodeResult& decoded) {
  const int w = decoded.source_width, h = decoded.source_height;
  if (w <= 0 || h <= 0) return {decoded.image.width, decoded.image.height};
  return decoded.sides_swapped ? std::pair<int, int>{h, w} : std::pair<int, int>{w, h};
}

}  // namespace lookbook
