// Given inputs: what a path given for a modality holds, and reading the small ones. A path
// is a .npy latent or moments, a tile (a thumbnail of 3 Byte bands at the model's image
// size), a Major TOM product folder, or any other raster GDAL reads: a scene, which the
// scene path reads (scene.hpp). This module answers "tile or scene?" once for every
// command (translate, the batch runner) and reads tiles and latents for all of them.
//
//   const copgen::GivenProbe p = copgen::probe_given(Modality::S2L1C, path, "S2L1C input", 256);
//   if (p.form == copgen::GivenForm::Tile) {
//     copgen::GivenFile d = copgen::read_given(p, "S2L1C input", 4, 32);  // d.pixels: uint8 [3, 256, 256]
//   }
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include <ATen/core/Tensor.h>

#include "copgen/modality.hpp"
#include "copgen/raster_io.hpp"
#include "copgen/scene.hpp"
#include "copgen/tuples.hpp"

namespace copgen {

// A given input as read from its file: the tensors the sampler takes (tuples.hpp's
// GivenData) and, with pixels read from a raster, their validity and georeferencing.
struct GivenFile : GivenData {
  // [H * W], 0 where GDAL's mask of band 1 says nodata (those pixels are 0); empty when
  // every pixel is valid.
  std::vector<std::uint8_t> valid;
  GeoInfo geo;  // the raster's georeferencing
};

// One given input: --from with -i, --input MOD=PATH, a field of a batch tuple.
struct GivenInput {
  Modality modality;
  std::string path;
};

enum class GivenForm {
  Npy,    // a .npy latent [C, h, w] or moments [2C, h, w]
  Tile,   // a raster of 3 Byte bands at the model's image size (perhaps a product folder's thumbnail)
  Scene,  // anything else: a raster of another size or type, physical bands, a band list
          // "a.tif,b.tif,c.tif", a STAC item, a product folder with its physical bands
};

struct GivenProbe {
  GivenForm form = GivenForm::Scene;
  // The file read for a tile or .npy: the path itself, or the thumbnail of a product
  // folder; a scene's path as given.
  std::string file;
};

// What `path` holds for `modality`, from one look at it (a raster is probed once, without
// reading pixels; a folder is listed). A Major TOM product folder is what resolve_input
// (scene.hpp) reads from it: its physical bands (a scene) unless `requested` is
// Thumbnail or the bands are missing, else its thumbnail (a tile when it is one). With
// `requested` Physical nothing is a tile. Throws InputError naming `what` and the path
// when it is not there or GDAL cannot open it.
GivenProbe probe_given(Modality modality, const std::string& path, const std::string& what, int image_size,
                       InputKind requested = InputKind::Auto);

// Tile or scene? The one answer every command asks: each input probed once; a tile run
// when every input is a .npy or a tile and the scene options ask for nothing only the
// scene path does (needs_scene_path). Returns the probes, in the order of `inputs`, for a
// tile run; empty for a scene run.
std::vector<GivenProbe> probe_tile_run(const std::vector<GivenInput>& inputs, const SceneOptions& scene,
                                       int image_size);

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
GivenFile read_given_tile(const std::string& path, const std::string& what);

// A probed tile or .npy read (probe.file): a .npy into `latent` ([c, h, h]) or `moments`
// ([2c, h, h]) by its shape (read_given_npy), a tile into `pixels` (read_given_tile).
GivenFile read_given(const GivenProbe& probe, const std::string& what, std::int64_t c, std::int64_t h);

}  // namespace copgen
