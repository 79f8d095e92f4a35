// Windows over a canvas larger than the model's 256 x 256 (32 x 32 latent) input, and the
// weights that fuse overlapping windows back into one canvas. Pure functions, in any
// unit (pixels or latent cells).
//
//   auto xs = window_starts(137, 32, 8);            // 32-wide windows, >= 8 overlap
//   auto w  = window_weight(32, 8);                 // [32, 32], 1 inside, ramps at edges
//   Layout l = make_layout(height, width, 32, 8);   // all windows, row-major
#pragma once

#include <cstdint>
#include <vector>

#include <torch/torch.h>

namespace copgen {

// Start offsets of windows of `size` covering [0, length) with at least `overlap`
// between neighbours, spread evenly; the last window ends at `length`. A length not
// larger than `size` gives one window at 0 (the caller pads the canvas to `size`).
std::vector<std::int64_t> window_starts(std::int64_t length, std::int64_t size, std::int64_t overlap);

struct Window {
  std::int64_t y = 0;  // top row
  std::int64_t x = 0;  // left column
};

struct Layout {
  std::int64_t height = 0;  // canvas size (>= size in both dimensions)
  std::int64_t width = 0;
  std::int64_t size = 0;    // window side
  std::int64_t overlap = 0;
  std::vector<Window> windows;  // row-major
};
Layout make_layout(std::int64_t height, std::int64_t width, std::int64_t size, std::int64_t overlap);

// Feathering weight of one window, [size, size] float32: 1 in the interior, a linear
// ramp over `overlap` cells towards each edge, never 0.
torch::Tensor window_weight(std::int64_t size, std::int64_t overlap);

// Per-window weights normalised so that, at every canvas cell, the weights of the
// windows covering it sum to 1 ([N, size, size], float32). A cell covered by one window
// gets weight exactly 1, so a single window is fused without any rounding.
torch::Tensor normalised_weights(const Layout& layout);

// Cuts windows out of a canvas [..., H, W] -> [N, ..., size, size] (window order of
// `layout`).
torch::Tensor extract_windows(const torch::Tensor& canvas, const Layout& layout);

// Weighted sum of windows [N, ..., size, size] into a canvas [..., H, W] with the
// normalised weights [N, size, size].
torch::Tensor fuse_windows(const torch::Tensor& windows, const torch::Tensor& weights, const Layout& layout);

// The part of window i that it alone writes when windows are cut to their cores
// (interior windows lose half the overlap on shared sides): rows [y0, y1), cols [x0, x1)
// in canvas coordinates. The cores of all windows tile the canvas exactly.
struct Core {
  std::int64_t y0, y1, x0, x1;
};
std::vector<Core> window_cores(const Layout& layout);

}  // namespace copgen
