// Pictures for people to look at (previews, contact sheets): pure functions over 8-bit
// images (ImageU8, raster_io.hpp) and their validity masks. No files, no GDAL, no torch.
//
//   ImageU8 small = copgen::downsample(image, 3);           // 3 x 3 block means
//   ImageU8 png = copgen::compose_preview({{{"S2L1C GIVEN", l1c}, {"S2L2A GENERATED", l2a}}});
//
// The rules, written once here and documented in docs/scenes.md ("Previews"):
//   - Downsampling by an integer factor f: output pixel (x, y) is, per band, the mean of
//     the valid pixels of the block [x f, x f + f) x [y f, y f + f) (clipped at the image's
//     edge), rounded half up ((sum + n / 2) / n in integers); a block without a valid pixel
//     is nodata. f = 1 returns the image unchanged.
//   - Nodata is drawn as a checkerboard of kNodataCell x kNodataCell squares, kNodataA where
//     (x / kNodataCell + y / kNodataCell) is even and kNodataB where it is odd, x and y
//     counted from the panel's (or thumbnail's) top-left pixel.
//   - A preview is a grid of panels of one size: one row per sample, one column per
//     modality (the given ones in modality order, then the generated ones), kPanelGap
//     pixels of background (kBackground) between them, under a label strip kLabelHeight
//     pixels high that names each column (black text on the background). Panel (column c,
//     row r) has its top-left pixel at (c (w + kPanelGap), kLabelHeight + r (h + kPanelGap)).
//   - A preview is at most kPreviewMaxWidth pixels wide in total (gaps included):
//     preview_factor picks the smallest integer factor that fits.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "copgen/raster_io.hpp"

namespace copgen {

inline constexpr int kPreviewMaxWidth = 2048;  // pixels, the whole picture
inline constexpr int kPanelGap = 4;            // pixels between panels
inline constexpr int kLabelHeight = 18;        // the label strip above the panels
inline constexpr int kNodataCell = 8;          // side of a checkerboard square
inline constexpr std::array<std::uint8_t, 3> kNodataA{255, 0, 255};  // magenta
inline constexpr std::array<std::uint8_t, 3> kNodataB{64, 64, 64};   // dark grey
inline constexpr std::uint8_t kBackground = 255;                    // white gaps and label strip

// The smallest integer factor f >= 1 such that `panels` panels of ceil(width / f) pixels
// with kPanelGap between them are at most `max_width` wide.
int preview_factor(int width, int panels, int max_width = kPreviewMaxWidth);

// `image` downsampled by `factor` (the rule above): ceil(w / f) x ceil(h / f), its `valid`
// empty when every output pixel is valid. Throws std::invalid_argument for factor < 1.
ImageU8 downsample(const ImageU8& image, int factor);

// The factor that brings the longer side of a width x height image to at most max_side.
int thumbnail_factor(int width, int height, int max_side);

// The checkerboard colour at (x, y) of a panel.
std::array<std::uint8_t, 3> nodata_colour(int x, int y);

// An RGB picture of `image` (3 bands, or 1 band shown grey) with its nodata pixels drawn as
// the checkerboard; `valid` of the result is empty. Throws std::invalid_argument for
// another number of bands.
ImageU8 flatten_nodata(const ImageU8& image);

// One panel of a preview: the label of its column and its picture (any ImageU8 of 1 or 3
// bands with its mask; an image with no pixels (width 0) is all nodata at the row's size).
struct Panel {
  std::string label;
  ImageU8 image;
};

// The preview of `rows` (one per sample, each the same number of panels of one size), as
// laid out above; the labels are those of the first row. Throws std::invalid_argument for
// no rows, an empty row, rows of different lengths or panels of different sizes.
ImageU8 compose_preview(const std::vector<std::vector<Panel>>& rows);

// Draws `text` (upper-cased; letters, digits, space and ()#- in a 5 x 7 font, other
// characters blank) into an RGB image at (x, y), each font pixel `scale` x `scale`, clipped
// to [x, x_end); returns the width it took.
int draw_text(ImageU8& image, const std::string& text, int x, int y, int scale, int x_end,
              std::array<std::uint8_t, 3> colour = {0, 0, 0});

}  // namespace copgen
