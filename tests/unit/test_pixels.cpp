#include "catch_torch.hpp"

#include <cmath>

#include "copgen/pixels.hpp"

using namespace copgen;

TEST_CASE("pixels: p / 255 * 2 - 1 and back - exactly", "[pixels]") {
  const auto p = torch::arange(0, 256, torch::kInt32).to(torch::kUInt8);
  const auto x = pixels_to_model(p);
  CHECK(x[0].item<float>() == -1.0f);
  CHECK(x[255].item<float>() == 1.0f);
  CHECK(x[128].item<float>() == Approx(128.0 / 255.0 * 2.0 - 1.0).margin(1e-7));
  // every pixel value survives the round trip
  CHECK(torch::equal(model_to_pixels(x), p));
}

TEST_CASE("pixels: floor(clamp((y + 1) / 2 - 0 - 1) * 255 + 0.5)", "[pixels]") {
  const auto y = torch::tensor({-3.0f, -1.0f, 0.0f, 1.0f, 7.0f, 0.5f, -0.999f});
  const auto p = model_to_pixels(y);
  CHECK(p[0].item<uint8_t>() == 0);
  CHECK(p[1].item<uint8_t>() == 0);
  CHECK(p[2].item<uint8_t>() == 128);  // 127.5 + 0.5 -> 128
  CHECK(p[3].item<uint8_t>() == 255);
  CHECK(p[4].item<uint8_t>() == 255);
  CHECK(p[5].item<uint8_t>() == 191);  // 0.75 * 255 = 191.25 -> 191
  CHECK(p[6].item<uint8_t>() == 0);    // 0.0005 * 255 = 0.1275 -> 0
}

TEST_CASE("pixels: ImageU8 <-> tensor keeps band-sequential order", "[pixels]") {
  ImageU8 img;
  img.width = 3;
  img.height = 2;
  img.bands = 2;
  for (int i = 0; i < 12; ++i) img.pixels.push_back(static_cast<uint8_t>(i * 10));
  const auto t = image_to_tensor(img);
  CHECK(t.sizes() == torch::IntArrayRef({2, 2, 3}));
  CHECK(t[1][0][2].item<uint8_t>() == 80);  // band 1, row 0, col 2 -> index 6 + 2
  const ImageU8 back = tensor_to_image(t, GeoInfo{});
  CHECK(back.pixels == img.pixels);
  CHECK(back.width == 3);
}
