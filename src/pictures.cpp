#include "copgen/pictures.hpp"

#include <algorithm>
#include <cctype>
#include <map>
#include <stdexcept>

namespace copgen {

namespace {

std::size_t plane(const ImageU8& image) { return static_cast<std::size_t>(image.width) * image.height; }

// The 5 x 7 glyphs, one row of 5 bits per line, bit 4 the leftmost pixel.
const std::map<char, std::array<std::uint8_t, 7>>& font() {
  static const std::map<char, std::array<std::uint8_t, 7>> glyphs = {
      {'A', {0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}}, {'B', {0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E}},
      {'C', {0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E}}, {'D', {0x1E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x1E}},
      {'E', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F}}, {'F', {0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10}},
      {'G', {0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F}}, {'H', {0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11}},
      {'I', {0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E}}, {'J', {0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C}},
      {'K', {0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11}}, {'L', {0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F}},
      {'M', {0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11}}, {'N', {0x11, 0x19, 0x15, 0x13, 0x11, 0x11, 0x11}},
      {'O', {0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'P', {0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10}},
      {'Q', {0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D}}, {'R', {0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11}},
      {'S', {0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E}}, {'T', {0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04}},
      {'U', {0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E}}, {'V', {0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04}},
      {'W', {0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A}}, {'X', {0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11}},
      {'Y', {0x11, 0x11, 0x0A, 0x04, 0x04, 0x04, 0x04}}, {'Z', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F}},
      {'0', {0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E}}, {'1', {0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E}},
      {'2', {0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F}}, {'3', {0x1E, 0x01, 0x01, 0x0E, 0x01, 0x01, 0x1E}},
      {'4', {0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02}}, {'5', {0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E}},
      {'6', {0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E}}, {'7', {0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08}},
      {'8', {0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E}}, {'9', {0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C}},
      {'(', {0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02}}, {')', {0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08}},
      {'#', {0x0A, 0x0A, 0x1F, 0x0A, 0x1F, 0x0A, 0x0A}}, {'-', {0x00, 0x00, 0x00, 0x1F, 0x00, 0x00, 0x00}},
  };
  return glyphs;
}

void check_bands(const ImageU8& image, const char* what) {
  if (image.bands != 1 && image.bands != 3) {
    throw std::invalid_argument(std::string(what) + ": expected 1 or 3 bands, got " + std::to_string(image.bands));
  }
}

}  // namespace

int preview_factor(int width, int panels, int max_width) {
  const int n = std::max(panels, 1);
  for (int f = 1;; ++f) {
    const long long w = static_cast<long long>(n) * ((width + f - 1) / f) + static_cast<long long>(n - 1) * kPanelGap;
    if (w <= max_width || f >= width) return f;
  }
}

int thumbnail_factor(int width, int height, int max_side) {
  const int side = std::max(width, height);
  return std::max(1, (side + max_side - 1) / std::max(max_side, 1));
}

ImageU8 downsample(const ImageU8& image, int factor) {
  if (factor < 1) throw std::invalid_argument("downsample: factor must be at least 1, got " + std::to_string(factor));
  if (factor == 1) return image;
  ImageU8 out;
  out.width = (image.width + factor - 1) / factor;
  out.height = (image.height + factor - 1) / factor;
  out.bands = image.bands;
  out.geo = image.geo;
  out.pixels.assign(plane(out) * static_cast<std::size_t>(out.bands), 0);
  std::vector<std::uint8_t> valid(plane(out), 255);
  bool any_invalid = false;
  const std::size_t in_plane = plane(image), out_plane = plane(out);
  std::vector<std::uint64_t> sums(static_cast<std::size_t>(image.bands));
  for (int oy = 0; oy < out.height; ++oy) {
    for (int ox = 0; ox < out.width; ++ox) {
      std::fill(sums.begin(), sums.end(), 0);
      std::uint64_t n = 0;
      for (int y = oy * factor; y < std::min(image.height, (oy + 1) * factor); ++y) {
        for (int x = ox * factor; x < std::min(image.width, (ox + 1) * factor); ++x) {
          const std::size_t i = static_cast<std::size_t>(y) * image.width + x;
          if (!image.valid.empty() && image.valid[i] == 0) continue;
          ++n;
          for (int b = 0; b < image.bands; ++b) sums[static_cast<std::size_t>(b)] += image.pixels[b * in_plane + i];
        }
      }
      const std::size_t o = static_cast<std::size_t>(oy) * out.width + ox;
      if (n == 0) {
        valid[o] = 0;
        any_invalid = true;
        continue;
      }
      for (int b = 0; b < out.bands; ++b) {
        out.pixels[b * out_plane + o] = static_cast<std::uint8_t>((sums[static_cast<std::size_t>(b)] + n / 2) / n);
      }
    }
  }
  if (any_invalid) out.valid = std::move(valid);
  return out;
}

std::array<std::uint8_t, 3> nodata_colour(int x, int y) {
  return ((x / kNodataCell + y / kNodataCell) % 2 == 0) ? kNodataA : kNodataB;
}

ImageU8 flatten_nodata(const ImageU8& image) {
  check_bands(image, "flatten_nodata");
  ImageU8 out;
  out.width = image.width;
  out.height = image.height;
  out.bands = 3;
  out.geo = image.geo;
  const std::size_t n = plane(image);
  out.pixels.resize(3 * n);
  for (int y = 0; y < image.height; ++y) {
    for (int x = 0; x < image.width; ++x) {
      const std::size_t i = static_cast<std::size_t>(y) * image.width + x;
      const bool ok = image.valid.empty() || image.valid[i] != 0;
      const auto nd = nodata_colour(x, y);
      for (int b = 0; b < 3; ++b) {
        out.pixels[b * n + i] = ok ? image.pixels[(image.bands == 3 ? b : 0) * n + i] : nd[static_cast<std::size_t>(b)];
      }
    }
  }
  return out;
}

int draw_text(ImageU8& image, const std::string& text, int x, int y, int scale, int x_end,
              std::array<std::uint8_t, 3> colour) {
  const std::size_t n = plane(image);
  const int advance = 6 * scale;
  int cx = x;
  for (const char raw : text) {
    const char c = static_cast<char>(std::toupper(static_cast<unsigned char>(raw)));
    const auto it = font().find(c);
    if (it != font().end()) {
      for (int row = 0; row < 7; ++row) {
        for (int col = 0; col < 5; ++col) {
          if (((it->second[static_cast<std::size_t>(row)] >> (4 - col)) & 1) == 0) continue;
          for (int dy = 0; dy < scale; ++dy) {
            for (int dx = 0; dx < scale; ++dx) {
              const int px = cx + col * scale + dx, py = y + row * scale + dy;
              if (px < 0 || px >= std::min(x_end, image.width) || py < 0 || py >= image.height) continue;
              const std::size_t i = static_cast<std::size_t>(py) * image.width + px;
              for (int b = 0; b < std::min(image.bands, 3); ++b) image.pixels[b * n + i] = colour[static_cast<std::size_t>(b)];
            }
          }
        }
      }
    }
    cx += advance;
  }
  return cx - x;
}

ImageU8 compose_preview(const std::vector<std::vector<Panel>>& rows) {
  if (rows.empty() || rows[0].empty()) throw std::invalid_argument("compose_preview: no panels");
  int w = 0, h = 0;
  for (const auto& row : rows) {
    if (row.size() != rows[0].size()) throw std::invalid_argument("compose_preview: rows of different lengths");
    for (const Panel& p : row) {
      if (p.image.width == 0) continue;
      check_bands(p.image, "compose_preview");
      if (w == 0) w = p.image.width, h = p.image.height;
      if (p.image.width != w || p.image.height != h) {
        throw std::invalid_argument("compose_preview: panels of different sizes");
      }
    }
  }
  if (w == 0) throw std::invalid_argument("compose_preview: no panel has pixels");
  const int cols = static_cast<int>(rows[0].size()), nrows = static_cast<int>(rows.size());
  ImageU8 out;
  out.bands = 3;
  out.width = cols * w + (cols - 1) * kPanelGap;
  out.height = kLabelHeight + nrows * h + (nrows - 1) * kPanelGap;
  const std::size_t n = plane(out);
  out.pixels.assign(3 * n, kBackground);
  for (int r = 0; r < nrows; ++r) {
    for (int c = 0; c < cols; ++c) {
      const ImageU8& src = rows[static_cast<std::size_t>(r)][static_cast<std::size_t>(c)].image;
      const ImageU8 flat = src.width == 0 ? ImageU8{} : flatten_nodata(src);
      const int x0 = c * (w + kPanelGap), y0 = kLabelHeight + r * (h + kPanelGap);
      const std::size_t pn = static_cast<std::size_t>(w) * h;
      for (int y = 0; y < h; ++y) {
        for (int x = 0; x < w; ++x) {
          const std::size_t o = static_cast<std::size_t>(y0 + y) * out.width + (x0 + x);
          const auto nd = nodata_colour(x, y);
          for (int b = 0; b < 3; ++b) {
            out.pixels[b * n + o] = src.width == 0 ? nd[static_cast<std::size_t>(b)]
                                                   : flat.pixels[b * pn + static_cast<std::size_t>(y) * w + x];
          }
        }
      }
    }
  }
  // the column labels: twice the font's size where the label fits the panel, else once
  for (int c = 0; c < cols; ++c) {
    const std::string& label = rows[0][static_cast<std::size_t>(c)].label;
    const int x0 = c * (w + kPanelGap);
    const int scale = static_cast<int>(label.size()) * 12 <= w - 2 ? 2 : 1;
    draw_text(out, label, x0 + 1, (kLabelHeight - 7 * scale) / 2, scale, x0 + w);
  }
  return out;
}

}  // namespace copgen
