// Previews: pictures of runs for people to look at. `--preview FILE.png` of translate and
// generate (the given and generated modalities side by side, pictures.hpp's layout) and the
// small pictures of a batch's contact sheet (contact_sheet.hpp). Rasters are read through
// raster_scene.hpp a strip at a time (a scene of any size is never held whole) and written
// as PNG through raster_io.hpp (temporary name, then rename).
//
//   copgen::RasterSource src = copgen::RasterSource::open("l2a.tif", "output");
//   copgen::ImageU8 panel = copgen::read_picture(src, 3, std::nullopt);  // 3 x 3 block means
//   copgen::write_png("preview.png", copgen::compose_preview({{{"S2L2A", panel}}}));
#pragma once

#include <optional>
#include <string>

#include "copgen/modality.hpp"
#include "copgen/pictures.hpp"
#include "copgen/raster_scene.hpp"
#include "copgen/scene.hpp"

namespace copgen {

// The DN offset an output of modality m carries when the scene path writes it as physical
// bands (--output-kind physical, S2 only: 1000 for S2L2A with --s2-offset on, else 0);
// nullopt when m's outputs are thumbnails.
std::optional<double> physical_dn_offset(const SceneOptions& scene, Modality m);

// Bands 1-3 of `src` (band 1 shown grey when it has one band) downsampled by `factor`
// (pictures.hpp's rule), with their validity (read_valid of band 1). Values are rounded
// and clamped to 0..255; with `s2_dn_offset`, bands 1-3 are Sentinel-2 digital numbers and
// go through render_s2 (render.hpp) first. Read `factor` rows at a time.
ImageU8 read_picture(const RasterSource& src, int factor, std::optional<double> s2_dn_offset);

// A small picture of the raster at `path` (its longer side at most max_side pixels) for a
// contact sheet: bands 1-3 of an 8-bit raster (1 band: grey), or, with `s2_dn_offset`, the
// rendering of a physical S2 output. Throws InputError naming `what` when it has no such
// bands (e.g. physical inputs of another type).
ImageU8 picture_of_file(const std::string& path, int max_side, std::optional<double> s2_dn_offset,
                        const std::string& what);

// Writes `image` (1 or 3 bands; its nodata already drawn, flatten_nodata) as a PNG with no
// georeferencing or metadata, under a temporary name then renamed (write_image_u8).
void write_png(const std::string& path, const ImageU8& image);

}  // namespace copgen
