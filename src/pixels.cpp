#include "copgen/pixels.hpp"

#include <cstring>
#include <stdexcept>

namespace copgen {

torch::Tensor pixels_to_model(const torch::Tensor& pixels) {
  if (pixels.scalar_type() != torch::kUInt8) {
    throw std::invalid_argument("pixels_to_model: expected a uint8 tensor");
  }
  return pixels.to(torch::kFloat32) / 255.0f * 2.0f - 1.0f;
}

torch::Tensor model_to_pixels(const torch::Tensor& values) {
  const torch::Tensor y = values.to(torch::kFloat32);
  return torch::floor(torch::clamp((y + 1.0f) / 2.0f, 0.0f, 1.0f) * 255.0f + 0.5f)
      .to(torch::kUInt8);
}

torch::Tensor image_to_tensor(const ImageU8& image) {
  torch::Tensor t = torch::empty({image.bands, image.height, image.width}, torch::kUInt8);
  if (image.pixels.size() != static_cast<size_t>(t.numel())) {
    throw std::invalid_argument("image_to_tensor: pixel buffer does not match the image size");
  }
  std::memcpy(t.data_ptr<std::uint8_t>(), image.pixels.data(), image.pixels.size());
  return t;
}

ImageU8 tensor_to_image(const torch::Tensor& pixels, const GeoInfo& geo) {
  if (pixels.dim() != 3 || pixels.scalar_type() != torch::kUInt8) {
    throw std::invalid_argument("tensor_to_image: expected a uint8 tensor [bands, H, W]");
  }
  const torch::Tensor c = pixels.to(torch::kCPU).contiguous();
  ImageU8 img;
  img.bands = static_cast<int>(c.size(0));
  img.height = static_cast<int>(c.size(1));
  img.width = static_cast<int>(c.size(2));
  img.pixels.assign(c.data_ptr<std::uint8_t>(), c.data_ptr<std::uint8_t>() + c.numel());
  img.geo = geo;
  return img;
}

}  // namespace copgen
