#include "copgen/render.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <stdexcept>
#include <string>

// Numeric conventions, chosen so that the renderings equal Major TOM's numpy code pixel
// for pixel (reference/majortom.md):
// - S2: numpy divides uint16 DNs by 10000 in float64, so everything here is float64;
//   every DN 0..65535 lands at least 1e-4 of a grey level away from a truncation
//   boundary, so the last-ulp differences between pow implementations never show.
// - S1: numpy keeps float32 arrays in float32 (a Python scalar does not promote them), so
//   dB, the min-max scaling and the G channel are float32, in numpy's operation order.
//   log10 is taken in float64 and rounded to float32 (correctly rounded): numpy's own
//   float32 log10 is machine-dependent (SVML on AVX-512 is 1 ulp off for about half of
//   the inputs), and rounding is the one result every machine can agree on.
// - Hillshade: np.gradient keeps float32 elevations in float32 (float64 for integers);
//   matplotlib's normals, intensity and stretch are float64.
// - Every uint8 conversion truncates, as numpy's astype(np.uint8) does.

namespace copgen {
namespace {

// Sentinel-2 gain and gamma of the Major TOM thumbnails.
constexpr double kS2Gain = 1.3;
constexpr double kS2Gamma = 0.6;
constexpr double kS2Scale = 10000.0;
constexpr double kPi = 3.14159265358979323846;  // numpy's NPY_PI

// matplotlib LightSource(azdeg=315, altdeg=45), its unit vector towards the light:
// azimuth turned from degrees clockwise from north to radians counterclockwise from east.
std::array<double, 3> light_direction() {
  const double az = (90.0 - 315.0) * (kPi / 180.0);
  const double alt = 45.0 * (kPi / 180.0);
  return {std::cos(az) * std::cos(alt), std::sin(az) * std::cos(alt), std::sin(alt)};
}

// float in [0, 255] -> uint8, truncated (values are never negative here).
torch::Tensor truncate_to_u8(const torch::Tensor& values) {
  return torch::trunc(torch::clamp(values, 0.0, 255.0)).to(torch::kUInt8);
}

// numpy.gradient(f, spacing, axis=dim) with edge_order=1, where the pixels outside `valid`
// and beyond the array end the data alike: central differences (f[i+1] - f[i-1]) /
// (2 spacing) between two valid neighbours, one-sided (f[i+1] - f[i]) / spacing or
// (f[i] - f[i-1]) / spacing beside an edge, 0 with no valid neighbour and on invalid
// pixels; in f's dtype.
// With every pixel valid this is numpy.gradient exactly.
torch::Tensor gradient(const torch::Tensor& f, const torch::Tensor& valid, int64_t dim, double spacing) {
  const int64_t n = f.size(dim);
  // the previous and the next pixel along dim (an edge pixel repeats itself)
  const torch::Tensor prev = torch::cat({f.slice(dim, 0, 1), f.slice(dim, 0, n - 1)}, dim);
  const torch::Tensor next = torch::cat({f.slice(dim, 1, n), f.slice(dim, n - 1, n)}, dim);
  const torch::Tensor none = torch::zeros_like(valid.slice(dim, 0, 1));
  const torch::Tensor has_prev = torch::cat({none, valid.slice(dim, 0, n - 1)}, dim);
  const torch::Tensor has_next = torch::cat({valid.slice(dim, 1, n), none}, dim);
  const torch::Tensor central = (next - prev) / (2.0 * spacing);
  const torch::Tensor forward = (next - f) / spacing;
  const torch::Tensor backward = (f - prev) / spacing;
  const torch::Tensor slope =
      torch::where(has_prev.logical_and(has_next), central,
                   torch::where(has_next, forward, torch::where(has_prev, backward, torch::zeros_like(f))));
  return torch::where(valid, slope, torch::zeros_like(f));
}

// One S1 band scaled to 0..255 (float32 [H, W]); 0 where the pixel is not valid.
// Beyond the reference: non-finite values count as nodata, zeros (-inf dB) render 0 and
// stay out of the min, and a band without two distinct valid dB values renders 0 (numpy
// would fail or produce NaN in those cases).
torch::Tensor s1_scaled_band(const torch::Tensor& band, double nodata) {
  torch::Tensor v = band.to(torch::kCPU).to(torch::kFloat32);
  const torch::Tensor valid = v.ne(nodata).logical_and(torch::isfinite(v));
  const torch::Tensor zeros = torch::zeros_like(v);
  const torch::Tensor non_negative = valid.logical_and(v.ge(0));
  if (!non_negative.any().item<bool>()) return zeros;
  const float replacement = v.masked_select(non_negative).min().item<float>();
  v = torch::where(valid.logical_and(v.lt(0)), torch::full_like(v, replacement), v);

  const torch::Tensor db = torch::log10(v.to(torch::kFloat64)).to(torch::kFloat32) * 10.0;
  const torch::Tensor use = valid.logical_and(torch::isfinite(db));
  if (!use.any().item<bool>()) return zeros;
  const torch::Tensor used = db.masked_select(use);
  const float lo = used.min().item<float>();
  const float hi = used.max().item<float>();
  const float range = hi - lo;  // float32, as numpy subtracts its float32 scalars
  if (!(range > 0.0f)) return zeros;
  const torch::Tensor s = (db - lo) / range * 255.0;
  return torch::where(use, s, zeros);
}

void check_2d(const torch::Tensor& t, const char* what) {
  if (!t.defined() || t.dim() != 2) {
    throw std::invalid_argument(std::string(what) + ": expected a 2-D tensor [H, W]");
  }
}

}  // namespace

torch::Tensor render_s2(const torch::Tensor& dn, double offset) {
  if (!dn.defined() || dn.dim() != 3 || dn.size(0) != 3) {
    throw std::invalid_argument("render_s2: expected DNs [3, H, W] (B04, B03, B02)");
  }
  torch::Tensor x = dn.to(torch::kCPU).to(torch::kFloat64);
  if (offset != 0.0) x = x - offset;
  // Negative (and NaN) DNs count as 0: numpy's power would give NaN there.
  x = torch::nan_to_num(x, 0.0).clamp_min(0.0);
  const torch::Tensor v = kS2Gain * torch::pow(x / kS2Scale, kS2Gamma);
  return truncate_to_u8(torch::clamp(v, 0.0, 1.0) * 255.0);
}

torch::Tensor s2_dn_from_pixels(const torch::Tensor& pixels, double offset, torch::Tensor* saturated) {
  if (!pixels.defined() || pixels.dim() != 3 || pixels.size(0) != 3) {
    throw std::invalid_argument("s2_dn_from_pixels: expected pixels [3, H, W] (R, G, B)");
  }
  // One DN per grey level. Below 255 a grey level p stands for every DN whose rendering
  // truncates to p, i.e. v * 255 in [p, p + 1): the DN at the middle of that interval,
  // (p + 0.5) in the inverse formula, is the estimate with the smallest worst-case error,
  // and it renders back to p (the interval's lower end, plain p, rounded to nearest
  // renders to p - 1 for about half the grey levels). 255 stands for everything from
  // the smallest saturating DN up, which is what it gets. Each candidate is checked
  // against the forward rendering and moved to the nearest DN that renders to p.
  constexpr int kLevels = 256;
  torch::Tensor candidates = torch::empty({kLevels}, torch::kFloat64);
  auto c = candidates.accessor<double, 1>();
  for (int p = 0; p < kLevels; ++p) {
    const double level = p < 255 ? p + 0.5 : 255.0;
    const double phys = kS2Scale * std::pow(level / 255.0 / kS2Gain, 1.0 / kS2Gamma);
    c[p] = std::clamp(p < 255 ? std::round(phys + offset) : std::ceil(phys + offset), 0.0, 65535.0);
  }
  auto render_one = [offset](double dn_value) {
    const torch::Tensor t = torch::full({3, 1, 1}, dn_value, torch::kFloat64);
    return static_cast<int>(render_s2(t, offset)[0][0][0].item<uint8_t>());
  };
  for (int p = 0; p < kLevels; ++p) {
    double d = c[p];
    // DNs render monotonically: step towards p while it is missed.
    for (int step = 0; step < 256 && d < 65535.0 && render_one(d) < p; ++step) d += 1.0;
    for (int step = 0; step < 256 && d > 0.0 && render_one(d) > p; ++step) d -= 1.0;
    // Saturation: the smallest DN that still renders 255.
    if (p == 255) {
      while (d > 0.0 && render_one(d - 1.0) == 255) d -= 1.0;
    }
    c[p] = d;
  }
  const torch::Tensor lut = candidates.to(torch::kInt32);
  const torch::Tensor index = pixels.to(torch::kCPU).to(torch::kLong).clamp(0, 255);
  if (saturated != nullptr) {
    *saturated = index.eq(255).any(0).to(torch::kUInt8);
  }
  return lut.index({index});
}

torch::Tensor render_s1(const torch::Tensor& vv, const torch::Tensor& vh, double nodata) {
  check_2d(vv, "render_s1 (VV)");
  check_2d(vh, "render_s1 (VH)");
  if (vv.sizes() != vh.sizes()) {
    throw std::invalid_argument("render_s1: VV and VH differ in size");
  }
  const torch::Tensor s_vv = s1_scaled_band(vv, nodata);
  const torch::Tensor s_vh = s1_scaled_band(vh, nodata);
  const torch::Tensor sum = s_vv + s_vh;
  const float sum_max = sum.max().item<float>();
  // numpy computes 255 * (s_vv + s_vh) first, then divides by the max, in float32.
  const torch::Tensor g = sum_max > 0.0f ? sum * 255.0 / sum_max : torch::zeros_like(sum);
  return truncate_to_u8(torch::stack({s_vv, g, s_vh}));
}

torch::Tensor hillshade(const torch::Tensor& elevation, const torch::Tensor& valid) {
  check_2d(elevation, "hillshade");
  if (elevation.size(0) < 2 || elevation.size(1) < 2) {
    throw std::invalid_argument("hillshade: the elevation needs at least 2 x 2 pixels for its gradient");
  }
  if (valid.defined() && valid.sizes() != elevation.sizes()) {
    throw std::invalid_argument("hillshade: the valid mask differs in size from the elevation");
  }
  torch::Tensor e = elevation.to(torch::kCPU);
  if (e.scalar_type() != torch::kFloat32 && e.scalar_type() != torch::kFloat64) {
    e = e.to(torch::kFloat64);
  }
  const torch::Tensor inside = valid.defined() ? valid.to(torch::kCPU).to(torch::kBool)
                                               : torch::ones(e.sizes(), torch::TensorOptions().dtype(torch::kBool));
  // dy = -dy: the first row is the top (north) of the image.
  const torch::Tensor e_dy = gradient(e, inside, 0, -1.0).to(torch::kFloat64);
  const torch::Tensor e_dx = gradient(e, inside, 1, 1.0).to(torch::kFloat64);
  const torch::Tensor nx = -e_dx;
  const torch::Tensor ny = -e_dy;
  // matplotlib divides each component of (nx, ny, 1) by the length, then dots it with
  // the light direction, in this order.
  const torch::Tensor norm = torch::sqrt(nx * nx + ny * ny + 1.0);
  const auto light = light_direction();
  torch::Tensor intensity = nx / norm * light[0] + ny / norm * light[1] + 1.0 / norm * light[2];

  // Stretched by its own min and max (over the valid, finite pixels) when it varies.
  const torch::Tensor use = torch::isfinite(intensity).logical_and(inside);
  if (use.any().item<bool>()) {
    const torch::Tensor used = intensity.masked_select(use);
    const double lo = used.min().item<double>();
    const double hi = used.max().item<double>();
    if (hi - lo > 1e-6) intensity = (intensity - lo) / (hi - lo);
  }
  return torch::nan_to_num(torch::clamp(intensity, 0.0, 1.0), 0.0, 1.0, 0.0);
}

torch::Tensor render_dem(const torch::Tensor& elevation, const torch::Tensor& valid) {
  const torch::Tensor grey = truncate_to_u8(hillshade(elevation, valid) * 255.0);
  return grey.unsqueeze(0).expand({3, grey.size(0), grey.size(1)}).contiguous();
}

}  // namespace copgen
