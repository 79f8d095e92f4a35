// The Major TOM thumbnail renderings (reference/majortom.md): physical bands in, the 8-bit
// RGB images COP-GEN-Beta was trained on out, and the S2 inverse. Pure functions on CPU
// tensors; the statistics a rendering stretches by (S1 dB range, hillshade range) are
// taken over the whole array given, so callers pass a whole scene or a whole Major
// TOM-sized cell, never a 256-pixel window.
#pragma once

#include <torch/torch.h>

namespace copgen {

// Sentinel-2: dn [3, H, W] holds B04, B03, B02 digital numbers (reflectance x 10000,
// plus `offset` for L2A baseline >= 04.00, which is subtracted first).
// v = 1.3 * (DN / 10000)^0.6, clipped to [0, 1], times 255, truncated -> uint8 [3, H, W].
// Negative (and NaN) DNs (after the offset) count as 0. Computed in float64, as numpy
// does with uint16 DNs: equal to Major TOM's numpy rendering for every DN 0..65535.
torch::Tensor render_s2(const torch::Tensor& dn, double offset = 0.0);

// The inverse: DN = 10000 * ((p + 0.5) / 255 / 1.3)^(1 / 0.6) + offset, rounded to uint16
// (returned as int32 [3, H, W]). p + 0.5: grey level p stands for v * 255 in [p, p + 1),
// whose middle is the estimate with the smallest worst-case error (within half a
// quantisation step); plain p rounded would render back to p - 1 for half the levels.
// Every p < 255 renders back to p exactly (each DN is checked against render_s2).
// Pixels at 255 are saturated (the rendering clipped them) and get the smallest DN that
// renders 255 (6458 + offset); `saturated` gets a uint8 [H, W] mask, 1 where any band
// is 255. `pixels` is uint8 (or any integer type holding 0..255).
torch::Tensor s2_dn_from_pixels(const torch::Tensor& pixels, double offset, torch::Tensor* saturated = nullptr);

// Sentinel-1 RTC: vv, vh [H, W] linear power (float32), nodata value `nodata`.
// valid = value != nodata; negatives replaced by the band's smallest non-negative valid
// value; dB = 10 log10(v); each band min-max scaled to 0..255 over its valid pixels;
// invalid -> 0; R = s_vv, G = 255 (s_vv + s_vh) / max(s_vv + s_vh), B = s_vh; truncated.
// Returns uint8 [3, H, W]. Float32 throughout, in numpy's order of operations, with a
// correctly rounded float32 log10. Where numpy would fail or make NaN: non-finite
// values count as nodata, zeros (-inf dB) render 0 and stay out of the min, a band
// without valid data or without range renders 0, and max(s_vv + s_vh) = 0 gives G = 0.
torch::Tensor render_s1(const torch::Tensor& vv, const torch::Tensor& vh, double nodata = -32768.0);

// matplotlib LightSource(azdeg=315, altdeg=45).hillshade(elevation, vert_exag=1, dx=1,
// dy=1): float64 [H, W] in [0, 1]. `valid` (bool [H, W], optional; all when undefined)
// marks the pixels that hold elevation: the gradient treats the others as it treats the
// array's edge (numpy.gradient's one-sided differences beside them, 0 with no valid
// neighbour), and only valid pixels take part in the min-max stretch. Non-finite
// intensities never do and come out 0. Gradients in the elevation's dtype when
// float32/float64 (np.gradient), float64 otherwise; the rest in float64. Throws
// std::invalid_argument for fewer than 2 x 2 pixels (np.gradient needs two per axis) or
// a mask of another size.
torch::Tensor hillshade(const torch::Tensor& elevation, const torch::Tensor& valid = {});

// The DEM thumbnail at the DEM's own grid: hillshade * 255 truncated, grey in 3 bands:
// uint8 [3, H, W].
torch::Tensor render_dem(const torch::Tensor& elevation, const torch::Tensor& valid = {});

}  // namespace copgen
