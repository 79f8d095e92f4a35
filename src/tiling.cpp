#include "copgen/tiling.hpp"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace copgen {

std::vector<std::int64_t> window_starts(std::int64_t length, std::int64_t size, std::int64_t overlap) {
  if (size <= 0 || overlap < 0 || overlap >= size) {
    throw std::invalid_argument("window_starts: need 0 <= overlap < size");
  }
  if (length <= size) return {0};
  const std::int64_t stride = size - overlap;
  const std::int64_t n = (length - size + stride - 1) / stride + 1;
  std::vector<std::int64_t> starts(static_cast<size_t>(n));
  for (std::int64_t i = 0; i < n; ++i) {
    // evenly spread: the first at 0, the last at length - size
    starts[static_cast<size_t>(i)] = (i * (length - size) + (n - 1) / 2) / (n - 1);
  }
  return starts;
}

Layout make_layout(std::int64_t height, std::int64_t width, std::int64_t size, std::int64_t overlap) {
  Layout l;
  l.height = std::max(height, size);
  l.width = std::max(width, size);
  l.size = size;
  l.overlap = overlap;
  for (std::int64_t y : window_starts(l.height, size, overlap)) {
    for (std::int64_t x : window_starts(l.width, size, overlap)) l.windows.push_back({y, x});
  }
  return l;
}

torch::Tensor window_weight(std::int64_t size, std::int64_t overlap) {
  std::vector<float> ramp(static_cast<size_t>(size));
  for (std::int64_t i = 0; i < size; ++i) {
    const double edge = static_cast<double>(std::min(i, size - 1 - i)) + 1.0;
    ramp[static_cast<size_t>(i)] = static_cast<float>(std::min(1.0, edge / (static_cast<double>(overlap) + 1.0)));
  }
  const torch::Tensor r = torch::tensor(ramp);
  return torch::outer(r, r);
}

torch::Tensor normalised_weights(const Layout& layout) {
  const torch::Tensor w = window_weight(layout.size, layout.overlap);
  torch::Tensor total = torch::zeros({layout.height, layout.width});
  for (const Window& win : layout.windows) {
    total.narrow(0, win.y, layout.size).narrow(1, win.x, layout.size).add_(w);
  }
  const auto n = static_cast<std::int64_t>(layout.windows.size());
  torch::Tensor out = torch::empty({n, layout.size, layout.size});
  for (std::int64_t i = 0; i < n; ++i) {
    const Window& win = layout.windows[static_cast<size_t>(i)];
    out[i] = w / total.narrow(0, win.y, layout.size).narrow(1, win.x, layout.size);
  }
  return out;
}

torch::Tensor extract_windows(const torch::Tensor& canvas, const Layout& layout) {
  const int64_t hd = canvas.dim() - 2, wd = canvas.dim() - 1;
  std::vector<torch::Tensor> parts;
  parts.reserve(layout.windows.size());
  for (const Window& win : layout.windows) {
    parts.push_back(canvas.narrow(hd, win.y, layout.size).narrow(wd, win.x, layout.size));
  }
  return torch::stack(parts, 0);
}

torch::Tensor fuse_windows(const torch::Tensor& windows, const torch::Tensor& weights, const Layout& layout) {
  std::vector<int64_t> shape(windows.sizes().begin() + 1, windows.sizes().end());
  shape[shape.size() - 2] = layout.height;
  shape[shape.size() - 1] = layout.width;
  torch::Tensor canvas = torch::zeros(shape, windows.options());
  const torch::Tensor w = weights.to(windows.device(), windows.scalar_type());
  const int64_t hd = canvas.dim() - 2, wd = canvas.dim() - 1;
  for (size_t i = 0; i < layout.windows.size(); ++i) {
    const Window& win = layout.windows[i];
    const auto k = static_cast<int64_t>(i);
    canvas.narrow(hd, win.y, layout.size).narrow(wd, win.x, layout.size).add_(windows[k] * w[k]);
  }
  return canvas;
}

namespace {

// Along one axis: the core of each start position.
std::vector<std::pair<std::int64_t, std::int64_t>> axis_cores(const std::vector<std::int64_t>& starts,
                                                              std::int64_t size, std::int64_t length) {
  std::vector<std::pair<std::int64_t, std::int64_t>> cores;
  for (size_t i = 0; i < starts.size(); ++i) {
    const std::int64_t lo = i == 0 ? 0 : (starts[i] + starts[i - 1] + size) / 2;
    const std::int64_t hi = i + 1 == starts.size() ? length : (starts[i] + size + starts[i + 1]) / 2;
    cores.emplace_back(lo, hi);
  }
  return cores;
}

}  // namespace

std::vector<Core> window_cores(const Layout& layout) {
  const auto ys = window_starts(layout.height, layout.size, layout.overlap);
  const auto xs = window_starts(layout.width, layout.size, layout.overlap);
  const auto cy = axis_cores(ys, layout.size, layout.height);
  const auto cx = axis_cores(xs, layout.size, layout.width);
  std::vector<Core> cores;
  for (const auto& [y0, y1] : cy) {
    for (const auto& [x0, x1] : cx) cores.push_back({y0, y1, x0, x1});
  }
  return cores;
}

}  // namespace copgen
