#include "copgen/inputs.hpp"

#include <algorithm>
#include <filesystem>

#include <torch/torch.h>

#include "copgen/error.hpp"
#include "copgen/npy.hpp"
#include "copgen/pixels.hpp"
#include "copgen/safe.hpp"
#include "copgen/stac.hpp"
#include "text.hpp"

namespace copgen {

namespace fs = std::filesystem;
using detail::ends_with_ci;
using detail::lower;

std::string find_product_thumbnail(const std::string& dir) {
  std::vector<std::string> suffixed;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code type_ec;
    if (!ends_with_ci(name, "thumbnail.png") || !it->is_regular_file(type_ec)) continue;
    if (lower(name) == "thumbnail.png") return it->path().string();
    suffixed.push_back(it->path().string());
  }
  if (suffixed.empty()) return "";
  return *std::min_element(suffixed.begin(), suffixed.end());
}

namespace {

// A raster or list probed: a tile when it is 3 Byte bands of image_size x image_size.
GivenProbe probe_file(const std::string& path, const std::string& what, int image_size, InputKind requested) {
  if (path.find(',') != std::string::npos && !path_exists(path)) return {GivenForm::Scene, path};  // a band list
  if (is_stac_reference(path)) return {GivenForm::Scene, path};  // a STAC item's assets
  const RasterInfo info = probe_raster(path, what);
  const bool tile = info.bands == 3 && info.data_type == "Byte" && info.width == image_size &&
                    info.height == image_size && requested != InputKind::Physical;
  return {tile ? GivenForm::Tile : GivenForm::Scene, path};
}

}  // namespace

GivenProbe probe_given(Modality modality, const std::string& path, const std::string& what, int image_size,
                       InputKind requested) {
  if (ends_with_ci(path, ".npy")) return {GivenForm::Npy, path};
  if (is_safe_product(path)) return {GivenForm::Scene, path};  // physical bands; resolve_input reads it
  std::error_code ec;
  if (!fs::is_directory(path, ec)) return probe_file(path, what, image_size, requested);
  // a product folder: as resolve_input reads it
  if (requested == InputKind::Physical || (requested != InputKind::Thumbnail && has_band_files(path, modality))) {
    return {GivenForm::Scene, path};
  }
  const std::string thumbnail = find_product_thumbnail(path);
  if (thumbnail.empty()) return {GivenForm::Scene, path};  // resolve_input says what is missing
  const GivenProbe t = probe_file(thumbnail, what, image_size, requested);
  return t.form == GivenForm::Tile ? t : GivenProbe{GivenForm::Scene, path};
}

std::vector<GivenProbe> probe_tile_run(const std::vector<GivenInput>& inputs, const SceneOptions& scene,
                                       int image_size) {
  if (needs_scene_path(scene)) return {};
  std::vector<GivenProbe> probes;
  for (const GivenInput& g : inputs) {
    probes.push_back(probe_given(g.modality, g.path, modality_name(g.modality) + " input", image_size,
                                 scene.input_kind));
    if (probes.back().form == GivenForm::Scene) return {};
  }
  return probes;
}

at::Tensor read_given_npy(const std::string& path, const std::string& what, std::int64_t c, std::int64_t h) {
  if (!path_exists(path)) throw InputError(what + " '" + path + "': file not found");
  torch::Tensor t = read_npy(path);
  if (!(t.dim() == 3 && t.size(1) == h && t.size(2) == h && (t.size(0) == c || t.size(0) == 2 * c))) {
    throw InputError(what + " '" + path + "': expected a latent [" + std::to_string(c) + ", " + std::to_string(h) +
                     ", " + std::to_string(h) + "] or autoencoder moments [" + std::to_string(2 * c) + ", " +
                     std::to_string(h) + ", " + std::to_string(h) + "], found " + detail::shape_str(t));
  }
  if (!torch::isfinite(t).all().item<bool>()) {
    throw InputError(what + " '" + path + "': contains NaN or infinite values");
  }
  const double peak = t.abs().max().item<double>();
  if (peak > kMaxLatentMagnitude) {
    throw InputError(what + " '" + path + "': holds values up to " + detail::number_str(peak) +
                     " in magnitude; autoencoder latents and moments stay far below " +
                     detail::number_str(kMaxLatentMagnitude) + " (is it a latent of this autoencoder?)");
  }
  return t;
}

GivenFile read_given_tile(const std::string& path, const std::string& what) {
  const ImageU8 img = read_image_u8(path, what);
  GivenFile d;
  d.geo = img.geo;
  d.pixels = image_to_tensor(img);
  d.valid = img.valid;
  if (!d.valid.empty()) {  // nodata pixels are encoded as 0, as scenes render them
    const torch::Tensor v =
        torch::from_blob(d.valid.data(), {1, img.height, img.width}, torch::kUInt8);
    d.pixels = torch::where(v != 0, d.pixels, torch::zeros_like(d.pixels));
  }
  return d;
}

GivenFile read_given(const GivenProbe& probe, const std::string& what, std::int64_t c, std::int64_t h) {
  if (probe.form == GivenForm::Tile) return read_given_tile(probe.file, what);
  if (probe.form != GivenForm::Npy) throw std::invalid_argument("read_given: '" + probe.file + "' is a scene");
  GivenFile d;
  torch::Tensor t = read_given_npy(probe.file, what, c, h);
  (t.size(0) == c ? d.latent : d.moments) = t;
  return d;
}

}  // namespace copgen
