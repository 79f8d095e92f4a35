// Windowed raster access for scenes of any size (part of the GDAL module; see
// raster_io.hpp for whole-image reads): a target grid, sources read window by window and
// optionally warped onto that grid (a GDAL warped VRT, so nothing is read until asked),
// and sinks written window by window under a temporary name and renamed on commit.
//
//   Grid g = grid_of(src);                                   // or choose_grid(...)
//   auto dem = src.warped(g, "bilinear");                    // lazily resampled
//   torch::Tensor win = dem.read({1}, x, y, 256, 256);       // float32 [1, 256, 256]
//   RasterSink out = RasterSink::create("out.tif", spec);
//   out.write(pixels_u8, x, y); out.commit();
#pragma once

#include <array>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "copgen/raster_io.hpp"

namespace copgen {

// A raster grid: size, geotransform and CRS (WKT). Without georeferencing the grid is
// just a pixel size.
struct Grid {
  int width = 0;
  int height = 0;
  bool georeferenced = false;
  std::array<double, 6> geotransform{0, 1, 0, 0, 0, 1};
  std::string crs_wkt;
  // How copgen chose the CRS itself when no input's could serve (e.g. "EPSG:32632 (UTM zone
  // 32N, ...)"); empty when it is an input's or --target-crs. Logged and recorded in the
  // outputs as COPGEN_GRID_CRS_CHOSEN.
  std::string chosen;

  double resolution() const { return std::abs(geotransform[1]); }
};

// An opened raster (shared handle; GDAL datasets are not thread-safe, so one
// RasterSource is used by one thread at a time).
class RasterSource {
 public:
  // Throws InputError naming `what` and the path (missing, not a raster, zero size).
  static RasterSource open(const std::string& path, const std::string& what);

  const RasterInfo& info() const { return info_; }
  Grid grid() const;
  const std::string& path() const { return info_.path; }
  // Nodata of `band` (1-based), if set (by the file, else by with_nodata).
  std::optional<double> nodata(int band) const;
  // The same raster with `value` as the nodata of every band the file gives none (a SAFE
  // product's 0, which its metadata names but its JPEG 2000 files do not): such pixels are
  // invalid in read_valid() and are not spread by warped(). The file is not touched.
  RasterSource with_nodata(double value) const;

  // This raster resampled onto `target` ("nearest", "bilinear", "cubic", "average"):
  // pixels outside the source read as its nodata (or NaN for float, 0 for integers) and
  // are invalid in read_valid(). Throws InputError when the source has no georeferencing
  // or its CRS cannot be transformed into the target's.
  RasterSource warped(const Grid& target, const std::string& resampling) const;

  // Reads `bands` (1-based) of the window as float32 [bands.size(), h, w]. The window may
  // extend past the raster; outside cells read as NaN.
  torch::Tensor read(const std::vector<int>& bands, int x, int y, int w, int h) const;
  // Validity of the window's cells (bool [h, w]): inside the raster, and valid in the mask
  // of every band in `bands` (nodata, alpha or per-dataset masks, as GDAL reports them).
  torch::Tensor read_valid(const std::vector<int>& bands, int x, int y, int w, int h) const;

 private:
  struct Handle;
  std::shared_ptr<Handle> handle_;
  RasterInfo info_;
  std::optional<double> nodata_default_;  // with_nodata's value
};

// The grid of a source.
Grid grid_of(const RasterSource& source);

// Whether two CRS definitions (WKT or anything GDAL reads) name the same CRS, however
// they are written; false when either cannot be read.
bool same_crs(const std::string& a, const std::string& b);

// How the target grid is chosen (the --grid-from / --target-crs / --target-res / --extent
// flags).
struct GridOptions {
  int reference = 0;                 // index of the input whose CRS and alignment define the grid
  std::string target_crs;            // overrides the reference's CRS (any GDAL SRS string)
  // metres (target CRS units); unset: the reference's own pixel size, so that the grid is
  // the reference's exactly (CRS, origin, pixel size) where it covers the extent; 10 m when
  // the reference is rotated or in another CRS than the target
  std::optional<double> target_resolution;
  bool union_extent = false;         // false: intersection of the inputs
};

// The target grid for `inputs` (named by `labels` in messages): the reference input's
// CRS (or target_crs) at target_resolution, aligned to the reference's pixel corners,
// over the intersection (or union) of the inputs' extents. A reference in a geographic
// CRS (degrees) gives way to the first input with a projected CRS; with none, the grid is
// in the UTM zone of the centre of the inputs' extent (UPS beyond 84 N / 80 S: EPSG:32661,
// EPSG:32761), aligned to whole pixels, and Grid::chosen says so. Throws UsageError for a
// geographic target_crs (naming that zone), InputError when an input has no georeferencing
// while others differ, a CRS cannot be transformed, or the inputs do not overlap.
Grid choose_grid(const std::vector<Grid>& inputs, const std::vector<std::string>& labels, const GridOptions& options);

// A window of a grid in its pixels (x, y: the top-left pixel), as gdal_translate -srcwin
// takes it; it may extend past the grid.
struct PixelWindow {
  int x = 0;
  int y = 0;
  int width = 0;
  int height = 0;
};

// The pixels of `grid` that gdal_translate -projwin ULX ULY LRX LRY selects (nearest
// resampling): offsets floor(v + 0.001), sizes floor(v + 0.5) in the grid's pixels. With
// `srs` (any GDAL SRS; empty: the grid's CRS) the four corners are transformed into the
// grid's CRS and their bounding box is the window. Throws UsageError naming --projwin
// (or --projwin-srs) when the grid is rotated or has no georeferencing, or the corners
// cannot be transformed.
PixelWindow projwin_pixels(const Grid& grid, const std::array<double, 4>& projwin, const std::string& srs);

// --target-crs before any work: UsageError unless GDAL understands it and it has a map
// plane (a geocentric CRS has none) in metres (a projected CRS in feet is refused too; a
// geographic one is the grid rules' business, which name a UTM or UPS zone instead).
void check_target_crs(const std::string& crs);

// For a source in a geographic CRS: the larger side of its central pixel in the units of
// `crs` (metres for a projected CRS in metres), e.g. about 31 m for GLO-30's 1 arc-second
// pixels anywhere (its longitude spacing widens towards the poles). nullopt when the
// source's CRS is not geographic or cannot be transformed into `crs`.
std::optional<double> geographic_pixel_size(const Grid& source, const std::string& crs);

// The part of `grid` under `window`: its size, and the geotransform moved to its corner.
Grid window_grid(const Grid& grid, const PixelWindow& window);

// A CRS as a STAC item's projection extension names it: its EPSG code where it has one
// (0 otherwise) and its WKT2. Throws InputError when `crs` cannot be read.
struct CrsCode {
  int epsg = 0;
  std::string wkt2;
};
CrsCode crs_code(const std::string& crs);

// The grid's outline in WGS84 (longitude, latitude), densified along its edges: a closed
// ring, counter-clockwise. Throws InputError when the grid has no georeferencing or its
// CRS cannot be transformed.
std::vector<std::array<double, 2>> lonlat_outline(const Grid& grid);

// What a RasterSink writes.
struct SinkSpec {
  Grid grid;                                    // size and georeferencing
  int bands = 3;
  std::string data_type = "Byte";               // GDAL type name
  std::string format = "GTiff";                 // GTiff or COG (COG: converted on commit, with overviews)
  std::optional<double> nodata;                 // set on every band
  bool mask = false;                            // write an internal per-dataset mask band
  std::vector<std::string> band_descriptions;   // optional, one per band
  bool rgb = true;                              // colour interpretation R, G, B for 3 bands
  std::map<std::string, std::string> metadata;  // default-domain items
  bool overwrite = false;
};

// A raster written window by window. Nothing appears at `path` until commit(); a sink
// destroyed without commit() removes its temporary files.
class RasterSink {
 public:
  static RasterSink create(const std::string& path, const SinkSpec& spec);
  RasterSink(RasterSink&&) noexcept;
  RasterSink& operator=(RasterSink&&) noexcept;
  ~RasterSink();

  // data [bands, h, w] (any dtype; converted to the sink's type) at column x, row y.
  void write(const torch::Tensor& data, int x, int y);
  // mask [h, w]: nonzero = valid. Only with spec.mask.
  void write_mask(const torch::Tensor& mask, int x, int y);
  // Flushes, converts (COG), renames into place. Throws OutputError.
  void commit();
  const std::string& path() const;

 private:
  RasterSink() = default;
  struct State;
  std::unique_ptr<State> state_;
};

}  // namespace copgen
