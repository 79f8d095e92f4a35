// Conversions between 8-bit thumbnails and the model's value range, exactly as the
// reference does them: x = p / 255 * 2 - 1 and p = floor(clamp((y + 1) / 2, 0, 1) * 255 + 0.5).
#pragma once

#include <torch/torch.h>

#include "copgen/raster_io.hpp"

namespace copgen {

// uint8 tensor of any shape -> float32 in [-1, 1].
torch::Tensor pixels_to_model(const torch::Tensor& pixels);
// float tensor of any shape (model range) -> uint8.
torch::Tensor model_to_pixels(const torch::Tensor& values);

// ImageU8 -> uint8 tensor [bands, H, W] (a copy, CPU).
torch::Tensor image_to_tensor(const ImageU8& image);
// uint8 tensor [bands, H, W] -> ImageU8 carrying `geo`.
ImageU8 tensor_to_image(const torch::Tensor& pixels, const GeoInfo& geo);

}  // namespace copgen
