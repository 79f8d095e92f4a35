// Given inputs: what a path given for a modality holds, and reading the small ones. A path
// is a .npy latent or moments, a tile (a thumbnail of 3 Byte bands at the model's image
// size), a Major TOM product folder, or any other raster GDAL reads: a scene, which the
// scene path reads (scene.hpp). translate(), the batch runner and eval read their given
// inputs here.
//
//   const copgen::GivenProbe p = copgen::probe_given(path, "S2L1C input", models.image_size());
//   if (p.form == copgen::GivenForm::Tile) {
//     copgen::GivenData d = copgen::read_given_tile(p.file, "S2L1C input");  // d.pixels: uint8 [3, 256, 256]
//   }
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "copgen/raster_io.hpp"

namespace copgen {

// One given modality of one tuple: exactly one of pixels, moments and latent is defined
// (CPU tensors).
struct GivenData {
  at::Tensor pixels;   // uint8 [3, H, W] thumbnail, encoded by the autoencoder
  at::Tensor moments;  // float [2C, h, w] posterior moments (mean, logvar)
  at::Tensor latent;   // float [C, h, w] scaled latent, used as is
  // With pixels read from a raster: [H * W], 0 where GDAL's mask of band 1 says nodata
  // (those pixels are 0); empty when every pixel is valid.
  std::vector<std::uint8_t> valid;
  GeoInfo geo;         // with pixels read from a raster: its georeferencing
};

enum class GivenForm {
  Npy,            // a .npy latent [C, h, w] or moments [2C, h, w]
  Tile,           // a raster of 3 Byte bands at the model's image size
  ProductFolder,  // a Major TOM product folder (physical bands and/or a thumbnail)
  Scene,          // anything else: a raster of another size or type, a band list "a.tif,b.tif,c.tif"
};

struct GivenProbe {
  GivenForm form = GivenForm::Scene;
  // Npy, Tile, Scene: the path; ProductFolder: its thumbnail (find_product_thumbnail, not
  // probed), "" when it has none.
  std::string file;
};

// What `path` holds, from one look at it (a raster is probed once, without reading
// pixels; a folder is listed, not probed). Throws InputError naming `what` and the path when it is not there or GDAL
// cannot open it.
GivenProbe probe_given(const std::string& path, const std::string& what, int image_size);

// The thumbnail of a Major TOM product folder: the file named thumbnail.png (any case),
// else the first by name whose name ends in thumbnail.png; "" when there is none.
std::string find_product_thumbnail(const std::string& dir);

// Autoencoder latents and moments are of order 1 to 10; a .npy with values beyond this is
// not one (and would only overflow the network).
inline constexpr double kMaxLatentMagnitude = 1e4;

// A given .npy latent [c, h, h] or moments [2c, h, h], finite and below
// kMaxLatentMagnitude; InputError naming `what` and the path otherwise.
at::Tensor read_given_npy(const std::string& path, const std::string& what, std::int64_t c, std::int64_t h);

// The pixels of a tile (any size; 3 Byte bands), nodata pixels set to 0 and marked in
// valid, with the raster's georeferencing.
GivenData read_given_tile(const std::string& path, const std::string& what);

}  // namespace copgen
