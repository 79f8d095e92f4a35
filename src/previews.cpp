#include "copgen/previews.hpp"

#include <algorithm>

#include "copgen/error.hpp"
#include "copgen/raster_io.hpp"
#include "copgen/render.hpp"

namespace copgen {

std::optional<double> physical_dn_offset(const SceneOptions& scene, Modality m) {
  if (scene.output_kind != OutputKind::Physical || (m != Modality::S2L1C && m != Modality::S2L2A)) {
    return std::nullopt;
  }
  // as before --s2-offset: DNs carry the offset only where it is forced on (docs/scenes.md)
  return m == Modality::S2L2A && scene.s2_offset == S2Offset::On ? 1000.0 : 0.0;
}

ImageU8 read_picture(const RasterSource& src, int factor, std::optional<double> s2_dn_offset) {
  const int w = src.info().width, h = src.info().height;
  const int bands = src.info().bands >= 3 ? 3 : 1;
  const std::vector<int> band_list = bands == 3 ? std::vector<int>{1, 2, 3} : std::vector<int>{1};
  ImageU8 out;
  out.width = (w + factor - 1) / factor;
  out.height = (h + factor - 1) / factor;
  out.bands = 3;
  out.pixels.resize(static_cast<std::size_t>(out.width) * out.height * 3);
  std::vector<std::uint8_t> valid(static_cast<std::size_t>(out.width) * out.height, 255);
  bool any_invalid = false;
  const std::size_t out_plane = valid.size();
  for (int y = 0; y < h; y += factor) {
    const int rows = std::min(factor, h - y);
    torch::Tensor px = src.read(band_list, 0, y, w, rows);
    if (s2_dn_offset) {
      px = render_s2(px.to(torch::kFloat64), *s2_dn_offset);
    } else {
      px = torch::nan_to_num(px, 0.0).round().clamp(0, 255).to(torch::kUInt8);
    }
    if (bands == 1) px = px.expand({3, rows, w});
    px = px.contiguous();
    const torch::Tensor ok = src.read_valid({1}, 0, y, w, rows).to(torch::kUInt8).mul(255).contiguous();
    ImageU8 strip;
    strip.width = w;
    strip.height = rows;
    strip.bands = 3;
    strip.pixels.assign(px.data_ptr<std::uint8_t>(), px.data_ptr<std::uint8_t>() + px.numel());
    strip.valid.assign(ok.data_ptr<std::uint8_t>(), ok.data_ptr<std::uint8_t>() + ok.numel());
    const ImageU8 small = downsample(strip, factor);  // one row
    const std::size_t oy = static_cast<std::size_t>(y / factor);
    for (int b = 0; b < 3; ++b) {
      std::copy_n(small.pixels.begin() + static_cast<std::ptrdiff_t>(b) * small.width, small.width,
                  out.pixels.begin() + static_cast<std::ptrdiff_t>(b * out_plane + oy * out.width));
    }
    if (!small.valid.empty()) {
      std::copy(small.valid.begin(), small.valid.end(), valid.begin() + static_cast<std::ptrdiff_t>(oy * out.width));
      any_invalid = true;
    }
  }
  if (any_invalid) out.valid = std::move(valid);
  return out;
}

ImageU8 picture_of_file(const std::string& path, int max_side, std::optional<double> s2_dn_offset,
                        const std::string& what) {
  const RasterSource src = RasterSource::open(path, what);
  const RasterInfo& info = src.info();
  if (!s2_dn_offset && info.data_type != "Byte") {
    throw InputError(what + " '" + path + "': no picture of " + info.data_type + " bands (8-bit images only)");
  }
  if (s2_dn_offset && info.bands < 3) {
    throw InputError(what + " '" + path + "': a physical Sentinel-2 output has 3 bands or more");
  }
  return read_picture(src, thumbnail_factor(info.width, info.height, max_side), s2_dn_offset);
}

void write_png(const std::string& path, const ImageU8& image) {
  ImageU8 plain = image;
  plain.geo = GeoInfo{};
  plain.valid.clear();
  WriteOptions w;
  w.format = "PNG";
  w.overwrite = true;  // the gate has checked the path
  write_image_u8(path, plain, w);
}

}  // namespace copgen
