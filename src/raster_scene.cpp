// Windowed reads, warping onto a target grid and windowed writes (GDAL module).
#include "copgen/raster_scene.hpp"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <atomic>
#include <limits>

#include <gdal_utils.h>
#include <ogr_spatialref.h>

#include "copgen/files.hpp"
#include "gdal_support.hpp"

namespace copgen {

using namespace gdal_detail;

namespace {

// No grid or window is a billion pixels across: beyond that a flag's value is a mistake
// (and pixel numbers would overflow).
constexpr double kMaxGridPixels = 1e9;

std::string wkt_of(const OGRSpatialReference& srs) {
  char* wkt = nullptr;
  const char* opts[] = {"FORMAT=WKT2_2018", nullptr};
  srs.exportToWkt(&wkt, opts);
  std::string out = wkt != nullptr ? wkt : "";
  CPLFree(wkt);
  return out;
}

bool parse_srs(const std::string& text, OGRSpatialReference& srs) {
  srs.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
  return srs.SetFromUserInput(text.c_str()) == OGRERR_NONE;
}

void check_resampling(const std::string& name) {
  for (const char* ok : {"nearest", "bilinear", "cubic", "average"}) {
    if (name == ok) return;
  }
  throw std::invalid_argument("unknown resampling '" + name + "'");
}

}  // namespace

struct RasterSource::Handle {
  DatasetPtr ds;
  std::string vsimem_path;  // the warped VRT's in-memory file, if any
  std::shared_ptr<Handle> parent;  // keeps the source of a warped VRT open
  int alpha_band = 0;  // the alpha band a warp added (0: none): where it is 0, no source pixel
  ~Handle() {
    ds.reset();
    if (!vsimem_path.empty()) VSIUnlink(vsimem_path.c_str());
  }
};

RasterSource RasterSource::open(const std::string& path, const std::string& what) {
  init_gdal();
  RasterSource s;
  s.handle_ = std::make_shared<Handle>();
  s.handle_->ds = open_dataset(path, what);
  s.info_ = probe_raster(path, what);
  return s;
}

std::optional<double> RasterSource::nodata(int band) const {
  int has = 0;
  const double v = handle_->ds->GetRasterBand(band)->GetNoDataValue(&has);
  if (has) return v;
  return nodata_default_;
}

RasterSource RasterSource::with_nodata(double value) const {
  RasterSource out = *this;
  out.nodata_default_ = value;
  return out;
}

Grid RasterSource::grid() const { return grid_of(*this); }

Grid grid_of(const RasterSource& source) {
  Grid g;
  g.width = source.info().width;
  g.height = source.info().height;
  g.georeferenced = source.info().geo.has_geotransform;
  g.geotransform = source.info().geo.geotransform;
  g.crs_wkt = source.info().geo.crs_wkt;
  return g;
}

bool same_crs(const std::string& a, const std::string& b) {
  if (a == b) return !a.empty();
  OGRSpatialReference sa, sb;
  return parse_srs(a, sa) && parse_srs(b, sb) && sa.IsSame(&sb);
}

RasterSource RasterSource::warped(const Grid& target, const std::string& resampling) const {
  const std::string what = "input";
  if (!info_.geo.has_geotransform || info_.geo.crs_wkt.empty()) {
    throw InputError(what + " '" + info_.path +
                     "': has no georeferencing (geotransform and CRS), so it cannot be aligned with the other inputs");
  }
  if (!target.georeferenced) throw std::invalid_argument("warped: target grid has no georeferencing");
  OGRSpatialReference src_srs, dst_srs;
  if (!parse_srs(info_.geo.crs_wkt, src_srs) || !parse_srs(target.crs_wkt, dst_srs)) {
    throw InputError("input '" + info_.path + "': its CRS cannot be read");
  }
  {
    std::unique_ptr<OGRCoordinateTransformation> ct(OGRCreateCoordinateTransformation(&src_srs, &dst_srs));
    if (!ct) {
      throw InputError("input '" + info_.path + "': its CRS cannot be transformed into the target CRS");
    }
  }
  static std::atomic<unsigned long> counter{0};
  RasterSource out;
  out.handle_ = std::make_shared<Handle>();
  out.handle_->parent = handle_;
  out.handle_->vsimem_path = "/vsimem/copgen-warp-" + std::to_string(counter.fetch_add(1)) + ".vrt";
  const auto& gt = target.geotransform;
  const double xmin = gt[0], xmax = gt[0] + gt[1] * target.width;
  const double ymax = gt[3], ymin = gt[3] + gt[5] * target.height;
  std::vector<std::string> args = {"-of", "VRT", "-t_srs", target.crs_wkt, "-te", std::to_string(xmin),
                                   std::to_string(ymin), std::to_string(xmax), std::to_string(ymax), "-ts",
                                   std::to_string(target.width), std::to_string(target.height), "-r", resampling};
  check_resampling(resampling);
  // Cells outside the source must be recognisable: give sources without nodata an alpha band.
  bool has_nodata = false;
  for (int b = 1; b <= info_.bands; ++b) has_nodata = has_nodata || nodata(b).has_value();
  if (nodata_default_) {  // the value with_nodata named: not a pixel to warp, the destination's nodata
    char v[32];
    std::snprintf(v, sizeof v, "%.17g", *nodata_default_);
    args.insert(args.end(), {"-srcnodata", v, "-dstnodata", v});
  }
  if (!has_nodata) args.push_back("-dstalpha");
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  argv.push_back(nullptr);
  ErrorCapture capture;
  GDALWarpAppOptions* opts = GDALWarpAppOptionsNew(argv.data(), nullptr);
  if (opts == nullptr) throw InputError("input '" + info_.path + "': cannot set up warping (" + capture.message() + ")");
  GDALDatasetH src = GDALDataset::ToHandle(handle_->ds.get());
  int usage_error = 0;
  GDALDatasetH dst = GDALWarp(out.handle_->vsimem_path.c_str(), nullptr, 1, &src, opts, &usage_error);
  GDALWarpAppOptionsFree(opts);
  if (dst == nullptr) {
    throw InputError("input '" + info_.path + "': cannot be warped onto the target grid (" + capture.message() + ")");
  }
  out.handle_->ds.reset(GDALDataset::FromHandle(dst));
  if (!has_nodata) out.handle_->alpha_band = info_.bands + 1;
  out.info_ = info_;
  out.info_.width = target.width;
  out.info_.height = target.height;
  out.info_.geo.has_geotransform = true;
  out.info_.geo.geotransform = target.geotransform;
  out.info_.geo.crs_wkt = target.crs_wkt;
  return out;
}

torch::Tensor RasterSource::read(const std::vector<int>& bands, int x, int y, int w, int h) const {
  torch::Tensor out = torch::full({static_cast<int64_t>(bands.size()), h, w},
                                  std::numeric_limits<float>::quiet_NaN(), torch::kFloat32);
  const int x0 = std::max(0, x), y0 = std::max(0, y);
  const int x1 = std::min(info_.width, x + w), y1 = std::min(info_.height, y + h);
  if (x1 <= x0 || y1 <= y0) return out;
  std::vector<float> buf(static_cast<size_t>(x1 - x0) * static_cast<size_t>(y1 - y0));
  for (size_t i = 0; i < bands.size(); ++i) {
    ErrorCapture capture;
    GDALRasterBand* band = handle_->ds->GetRasterBand(bands[i]);
    if (band == nullptr || band->RasterIO(GF_Read, x0, y0, x1 - x0, y1 - y0, buf.data(), x1 - x0, y1 - y0,
                                          GDT_Float32, 0, 0) != CE_None ||
        capture.failed()) {
      throw InputError("input '" + info_.path + "': cannot read band " + std::to_string(bands[i]) +
                       " at window (" + std::to_string(x0) + ", " + std::to_string(y0) +
                       "); the file may be truncated or corrupt (" + capture.message() + ")");
    }
    auto dst = out[static_cast<int64_t>(i)].narrow(0, y0 - y, y1 - y0).narrow(1, x0 - x, x1 - x0);
    dst.copy_(torch::from_blob(buf.data(), {y1 - y0, x1 - x0}, torch::kFloat32));
  }
  return out;
}

torch::Tensor RasterSource::read_valid(const std::vector<int>& bands, int x, int y, int w, int h) const {
  torch::Tensor valid = torch::zeros({h, w}, torch::kBool);
  const int x0 = std::max(0, x), y0 = std::max(0, y);
  const int x1 = std::min(info_.width, x + w), y1 = std::min(info_.height, y + h);
  if (x1 <= x0 || y1 <= y0) return valid;
  auto region = valid.narrow(0, y0 - y, y1 - y0).narrow(1, x0 - x, x1 - x0);
  region.fill_(true);
  std::vector<std::uint8_t> buf(static_cast<size_t>(x1 - x0) * static_cast<size_t>(y1 - y0));
  for (int b : bands) {
    GDALRasterBand* band = handle_->ds->GetRasterBand(b);
    if (band->GetMaskFlags() & GMF_ALL_VALID) continue;
    ErrorCapture capture;
    if (band->GetMaskBand()->RasterIO(GF_Read, x0, y0, x1 - x0, y1 - y0, buf.data(), x1 - x0, y1 - y0, GDT_Byte,
                                      0, 0) != CE_None) {
      throw InputError("input '" + info_.path + "': cannot read the validity mask of band " + std::to_string(b) +
                       " (" + capture.message() + ")");
    }
    region.logical_and_(torch::from_blob(buf.data(), {y1 - y0, x1 - x0}, torch::kUInt8).ne(0));
  }
  // with_nodata's value, in bands whose file sets no nodata of its own
  if (nodata_default_ && handle_->parent == nullptr) {
    for (int b : bands) {
      int has = 0;
      handle_->ds->GetRasterBand(b)->GetNoDataValue(&has);
      if (has) continue;
      region.logical_and_(read({b}, x0, y0, x1 - x0, y1 - y0)[0].ne(*nodata_default_));
    }
  }
  // GDAL takes a warp's alpha band as the mask of bands 1-3 of a 4-band dataset and of the
  // first of two only: a warped DEM (1 band) or S1 pair (2 bands) would read as valid
  // everywhere, outside the source included. The alpha band says where the source is.
  if (handle_->alpha_band > 0) {
    ErrorCapture capture;
    if (handle_->ds->GetRasterBand(handle_->alpha_band)
            ->RasterIO(GF_Read, x0, y0, x1 - x0, y1 - y0, buf.data(), x1 - x0, y1 - y0, GDT_Byte, 0, 0) != CE_None) {
      throw InputError("input '" + info_.path + "': cannot read where the warped source has pixels (" +
                       capture.message() + ")");
    }
    region.logical_and_(torch::from_blob(buf.data(), {y1 - y0, x1 - x0}, torch::kUInt8).ne(0));
  }
  return valid;
}

namespace {

// The grid when some input lacks georeferencing: the reference input's, if all inputs are the same size.
Grid shared_pixel_grid(const std::vector<Grid>& inputs, const std::vector<std::string>& labels, const GridOptions& o,
                       size_t ref) {
  // Without georeferencing nothing can be aligned: every input must share one pixel grid.
  for (size_t i = 0; i < inputs.size(); ++i) {
    if (inputs[i].width != inputs[0].width || inputs[i].height != inputs[0].height) {
      const size_t bad = inputs[i].georeferenced ? 0 : i;
      throw InputError("input '" + labels[bad] + "': has no georeferencing, and inputs of different sizes (" +
                       std::to_string(inputs[0].width) + "x" + std::to_string(inputs[0].height) + " and " +
                       std::to_string(inputs[i].width) + "x" + std::to_string(inputs[i].height) +
                       ") cannot be aligned without it");
    }
  }
  if (!o.target_crs.empty()) {
    throw InputError("--target-crs: input '" + labels[0] + "' has no georeferencing to reproject from");
  }
  Grid g = inputs[ref];
  for (const Grid& in : inputs) {
    if (!in.georeferenced) {
      // outputs carry the georeferencing only if every input agrees on it
      g = inputs[ref];
    }
  }
  return g;
}

// A bounding box in the target CRS.
struct Bounds {
  double x0, y0, x1, y1;
};

// The bounding box in the `dst` CRS of input `in`'s footprint, densified along the edges.
Bounds footprint_bounds(const Grid& in, const std::string& label, const OGRSpatialReference& dst) {
  OGRSpatialReference src;
  if (!parse_srs(in.crs_wkt, src)) throw InputError("input '" + label + "': its CRS cannot be read");
  std::unique_ptr<OGRCoordinateTransformation> ct(OGRCreateCoordinateTransformation(&src, &dst));
  if (!ct) throw InputError("input '" + label + "': its CRS cannot be transformed into the target CRS");
  double bx0 = HUGE_VAL, by0 = HUGE_VAL, bx1 = -HUGE_VAL, by1 = -HUGE_VAL;
  const auto& gt = in.geotransform;
  const int n = 20;
  for (int k = 0; k <= n; ++k) {
    for (int side = 0; side < 4; ++side) {
      double px = 0, py = 0;
      const double f = static_cast<double>(k) / n;
      if (side == 0) px = f * in.width, py = 0;
      if (side == 1) px = f * in.width, py = in.height;
      if (side == 2) px = 0, py = f * in.height;
      if (side == 3) px = in.width, py = f * in.height;
      double X = gt[0] + px * gt[1] + py * gt[2], Y = gt[3] + px * gt[4] + py * gt[5];
      if (!ct->Transform(1, &X, &Y)) {
        throw InputError("input '" + label + "': its footprint cannot be transformed into the target CRS");
      }
      bx0 = std::min(bx0, X), bx1 = std::max(bx1, X), by0 = std::min(by0, Y), by1 = std::max(by1, Y);
    }
  }
  return {bx0, by0, bx1, by1};
}

// The projected CRS that suits a place: the UTM zone of (lon, lat) in degrees, or UPS
// beyond 84 N / 80 S, where UTM is not defined.
struct ZoneCrs {
  int epsg = 0;
  std::string name;  // "UTM zone 32N", "UPS North, beyond 84 N"
};
ZoneCrs zone_crs(double lon, double lat) {
  if (lat > 84.0) return {32661, "UPS North, beyond 84 N"};
  if (lat < -80.0) return {32761, "UPS South, beyond 80 S"};
  const double l = lon - 360.0 * std::floor((lon + 180.0) / 360.0);  // in [-180, 180)
  const int zone = std::clamp(static_cast<int>(std::floor((l + 180.0) / 6.0)) + 1, 1, 60);
  return {(lat >= 0 ? 32600 : 32700) + zone, fmt::format("UTM zone {}{}", zone, lat >= 0 ? "N" : "S")};
}

// The centre (longitude, latitude) of the inputs' extent: the middle of the intersection
// (or union) of their footprints' bounding boxes in WGS84. Throws InputError as
// footprint_bounds does.
std::array<double, 2> inputs_centre(const std::vector<Grid>& inputs, const std::vector<std::string>& labels,
                                    bool union_extent) {
  OGRSpatialReference wgs84;
  parse_srs("EPSG:4326", wgs84);
  Bounds e = union_extent ? Bounds{HUGE_VAL, HUGE_VAL, -HUGE_VAL, -HUGE_VAL}
                          : Bounds{-HUGE_VAL, -HUGE_VAL, HUGE_VAL, HUGE_VAL};
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Bounds b = footprint_bounds(inputs[i], labels[i], wgs84);
    if (union_extent) {
      e = {std::min(e.x0, b.x0), std::min(e.y0, b.y0), std::max(e.x1, b.x1), std::max(e.y1, b.y1)};
    } else {
      e = {std::max(e.x0, b.x0), std::max(e.y0, b.y0), std::min(e.x1, b.x1), std::min(e.y1, b.y1)};
    }
  }
  return {0.5 * (e.x0 + e.x1), std::clamp(0.5 * (e.y0 + e.y1), -90.0, 90.0)};
}

// The target grid's pixels are --target-res metres; a geographic --target-crs counts in
// degrees. Says which CRS to pass instead: the UTM (or UPS) zone of the inputs' centre.
[[noreturn]] void refuse_geographic_grid(const std::vector<Grid>& inputs, const std::vector<std::string>& labels,
                                         const GridOptions& o) {
  std::string zone = "EPSG:326NN or EPSG:327NN (the UTM zone of the area; EPSG:32661 or EPSG:32761 (UPS) beyond "
                     "84 N or 80 S)";
  try {
    const auto c = inputs_centre(inputs, labels, o.union_extent);
    const ZoneCrs z = zone_crs(c[0], c[1]);
    zone = fmt::format("EPSG:{} ({}, where the inputs' centre lies)", z.epsg, z.name);
  } catch (const InputError&) {
    // no centre to name: the generic advice stands
  }
  throw UsageError(fmt::format(
      "--target-crs '{}': a geographic CRS (degrees); copgen samples on a grid of {:g} m pixels (--target-res), "
      "which needs a projected CRS in metres: pass --target-crs {}, or leave --target-crs out and copgen picks "
      "that zone itself",
      o.target_crs, o.target_resolution.value_or(10.0), zone));
}

// How a CRS is named in Grid::chosen: its EPSG code, else its name.
std::string crs_label(OGRSpatialReference srs) {
  srs.AutoIdentifyEPSG();
  const char* name = srs.GetAuthorityName(nullptr);
  const char* code = srs.GetAuthorityCode(nullptr);
  if (name != nullptr && code != nullptr) return std::string(name) + ":" + code;
  return srs.GetName() != nullptr ? srs.GetName() : "a projected CRS";
}

// The grid's CRS when the reference input's is geographic and no --target-crs is given:
// the first input with a projected CRS (which becomes the reference), else the UTM or UPS
// zone of the inputs' centre. Sets `dst` (and `ref`); returns what Grid::chosen says.
std::string projected_crs_for(const std::vector<Grid>& inputs, const std::vector<std::string>& labels,
                              bool union_extent, OGRSpatialReference& dst, size_t& ref) {
  for (size_t i = 0; i < inputs.size(); ++i) {
    OGRSpatialReference srs;
    if (parse_srs(inputs[i].crs_wkt, srs) && srs.IsProjected()) {
      const std::string why = fmt::format("{} (the CRS of '{}'; the reference input '{}' has a geographic CRS)",
                                          crs_label(srs), labels[i], labels[ref]);
      dst = srs;
      dst.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
      ref = i;
      return why;
    }
  }
  const auto c = inputs_centre(inputs, labels, union_extent);
  const ZoneCrs z = zone_crs(c[0], c[1]);
  if (!parse_srs(fmt::format("EPSG:{}", z.epsg), dst)) {
    throw InputError(fmt::format("the inputs' CRS is geographic and EPSG:{} ({}) is unknown to this GDAL; give "
                                 "--target-crs",
                                 z.epsg, z.name));
  }
  return fmt::format("EPSG:{} ({}, the centre of the inputs at {:.4f} E, {:.4f} N; no input has a projected CRS)",
                     z.epsg, z.name, c[0], c[1]);
}

}  // namespace

Grid choose_grid(const std::vector<Grid>& inputs, const std::vector<std::string>& labels, const GridOptions& o) {
  if (inputs.empty()) throw std::invalid_argument("choose_grid: no inputs");
  size_t ref = static_cast<size_t>(o.reference);
  if (ref >= inputs.size()) throw std::invalid_argument("choose_grid: reference out of range");
  const bool all_geo = std::all_of(inputs.begin(), inputs.end(),
                                   [](const Grid& g) { return g.georeferenced && !g.crs_wkt.empty(); });
  if (!all_geo) return shared_pixel_grid(inputs, labels, o, ref);
  OGRSpatialReference dst;
  const std::string crs_text = o.target_crs.empty() ? inputs[ref].crs_wkt : o.target_crs;
  if (!parse_srs(crs_text, dst)) {
    throw UsageError("--target-crs: '" + o.target_crs + "' is not a CRS GDAL understands");
  }
  if (o.target_resolution && !(*o.target_resolution > 0)) throw UsageError("--target-res: must be positive");
  if (dst.IsGeographic() && !o.target_crs.empty()) refuse_geographic_grid(inputs, labels, o);
  // no CRS in metres among the inputs: copgen chooses one (and says so)
  const std::string chosen =
      dst.IsGeographic() ? projected_crs_for(inputs, labels, o.union_extent, dst, ref) : std::string();
  double xmin = -HUGE_VAL, ymin = -HUGE_VAL, xmax = HUGE_VAL, ymax = HUGE_VAL;
  if (o.union_extent) xmin = ymin = HUGE_VAL, xmax = ymax = -HUGE_VAL;
  for (size_t i = 0; i < inputs.size(); ++i) {
    const Bounds b = footprint_bounds(inputs[i], labels[i], dst);
    const double bx0 = b.x0, by0 = b.y0, bx1 = b.x1, by1 = b.y1;
    if (o.union_extent) {
      xmin = std::min(xmin, bx0), xmax = std::max(xmax, bx1), ymin = std::min(ymin, by0), ymax = std::max(ymax, by1);
    } else {
      xmin = std::max(xmin, bx0), xmax = std::min(xmax, bx1), ymin = std::max(ymin, by0), ymax = std::min(ymax, by1);
    }
  }
  // Aligned to the reference's pixel corners when it is in the target CRS; its own pixel
  // size too when no resolution is asked for and it is north-up.
  const auto& rgt = inputs[ref].geotransform;
  OGRSpatialReference ref_srs;
  const bool ref_crs = parse_srs(inputs[ref].crs_wkt, ref_srs) && ref_srs.IsSame(&dst);
  const bool own_pixels = ref_crs && !o.target_resolution && rgt[2] == 0 && rgt[4] == 0 && rgt[1] > 0 && rgt[5] < 0;
  const double rx = own_pixels ? rgt[1] : o.target_resolution.value_or(10.0);
  const double ry = own_pixels ? -rgt[5] : rx;
  if (xmax - xmin < rx || ymax - ymin < ry) {
    std::string names;
    for (const auto& l : labels) names += (names.empty() ? "'" : ", '") + l + "'";
    throw InputError("inputs " + names + " do not overlap (their common extent is empty)");
  }
  const double ox = ref_crs ? rgt[0] : 0.0, oy = ref_crs ? rgt[3] : 0.0;
  // whole pixels inside the extent; a grid in a zone copgen chose covers it (nodata beyond)
  const bool cover = !chosen.empty() && !ref_crs;
  const double eps = cover ? -1e-6 * rx : 1e-6 * rx;
  const auto in = [&](double v) { return cover ? std::floor(v) : std::ceil(v); };
  const auto out = [&](double v) { return cover ? std::ceil(v) : std::floor(v); };
  const double cx0 = in((xmin - ox) / rx - eps), cx1 = out((xmax - ox) / rx + eps);
  const double cy1 = out((ymax - oy) / ry + eps), cy0 = in((ymin - oy) / ry - eps);
  Grid g;
  g.georeferenced = true;
  g.crs_wkt = wkt_of(dst);
  g.chosen = chosen;
  if (cx1 - cx0 >= kMaxGridPixels || cy1 - cy0 >= kMaxGridPixels) {
    throw UsageError(fmt::format("--target-res {:g}: the inputs would be a grid of {:.3g} x {:.3g} pixels, beyond any "
                                 "scene copgen can write; give a resolution in metres (default: 10)",
                                 rx, cx1 - cx0, cy1 - cy0));
  }
  g.width = static_cast<int>(std::llround(cx1 - cx0));
  g.height = static_cast<int>(std::llround(cy1 - cy0));
  // origin + whole pixels: the reference's own origin when the extent starts there
  g.geotransform = {ox + cx0 * rx, rx, 0.0, oy + cy1 * ry, 0.0, -ry};
  if (g.width <= 0 || g.height <= 0) {
    throw InputError(fmt::format("the inputs' common extent is smaller than one {:g} m pixel", rx));
  }
  return g;
}

PixelWindow projwin_pixels(const Grid& grid, const std::array<double, 4>& projwin, const std::string& srs) {
  const auto& gt = grid.geotransform;
  if (!grid.georeferenced || gt[2] != 0 || gt[4] != 0) {
    throw UsageError("--projwin: the grid " + std::string(grid.georeferenced ? "is rotated" : "has no georeferencing") +
                     "; use --srcwin (pixels) instead");
  }
  double ulx = projwin[0], uly = projwin[1], lrx = projwin[2], lry = projwin[3];
  if (!srs.empty()) {
    OGRSpatialReference from, to;
    if (!parse_srs(srs, from)) throw UsageError("--projwin-srs: '" + srs + "' is not a CRS GDAL understands");
    if (!parse_srs(grid.crs_wkt, to)) throw UsageError("--projwin-srs: the grid's CRS cannot be read");
    std::unique_ptr<OGRCoordinateTransformation> ct(OGRCreateCoordinateTransformation(&from, &to));
    double xs[4] = {ulx, lrx, ulx, lrx}, ys[4] = {uly, uly, lry, lry};
    if (!ct || !ct->Transform(4, xs, ys)) {
      throw UsageError("--projwin-srs '" + srs + "': the corners cannot be transformed into the grid's CRS");
    }
    ulx = *std::min_element(xs, xs + 4), lrx = *std::max_element(xs, xs + 4);
    uly = *std::max_element(ys, ys + 4), lry = *std::min_element(ys, ys + 4);
  }
  const double px[4] = {std::floor((ulx - gt[0]) / gt[1] + 0.001), std::floor((uly - gt[3]) / gt[5] + 0.001),
                        std::floor((lrx - ulx) / gt[1] + 0.5), std::floor((lry - uly) / gt[5] + 0.5)};
  // beyond a billion pixels a window is no region of any scene (and would overflow)
  if (!std::all_of(px, px + 4, [](double v) { return std::abs(v) < kMaxGridPixels; }) ||
      std::abs(px[0] + px[2]) >= kMaxGridPixels || std::abs(px[1] + px[3]) >= kMaxGridPixels) {
    throw UsageError(fmt::format("--projwin {} {} {} {}: lies {:.3g} x {:.3g} pixels from the grid's origin, "
                                 "far outside the inputs ({} x {} pixels); check the coordinates{}",
                                 projwin[0], projwin[1], projwin[2], projwin[3], px[0], px[1], grid.width, grid.height,
                                 srs.empty() ? " (in the grid's CRS; or give --projwin-srs)" : " and --projwin-srs"));
  }
  return {static_cast<int>(px[0]), static_cast<int>(px[1]), static_cast<int>(px[2]), static_cast<int>(px[3])};
}

void check_target_crs(const std::string& crs) {
  if (crs.empty()) return;
  OGRSpatialReference srs;
  if (!parse_srs(crs, srs)) throw UsageError("--target-crs: '" + crs + "' is not a CRS GDAL understands");
  if (srs.IsGeocentric()) {
    throw UsageError("--target-crs '" + crs + "': a geocentric CRS (X, Y, Z from the Earth's centre) has no map "
                     "plane to lay pixels on; give a projected CRS in metres (e.g. a UTM zone, EPSG:326NN)");
  }
  if (srs.IsProjected() && std::abs(srs.GetLinearUnits() - 1.0) > 1e-9) {
    const char* unit = nullptr;
    srs.GetLinearUnits(&unit);
    throw UsageError(fmt::format("--target-crs '{}': a projected CRS in {}; copgen's pixels are metres "
                                 "(--target-res), so give a projected CRS in metres",
                                 crs, unit != nullptr ? unit : "units other than metres"));
  }
}

std::optional<double> geographic_pixel_size(const Grid& source, const std::string& crs) {
  OGRSpatialReference src, dst;
  if (!source.georeferenced || !parse_srs(source.crs_wkt, src) || !src.IsGeographic() || !parse_srs(crs, dst)) {
    return std::nullopt;
  }
  std::unique_ptr<OGRCoordinateTransformation> ct(OGRCreateCoordinateTransformation(&src, &dst));
  if (!ct) return std::nullopt;
  // the central pixel's corners (c, r), (c + 1, r), (c, r + 1)
  const auto& gt = source.geotransform;
  const double c = std::floor(0.5 * source.width), r = std::floor(0.5 * source.height);
  double xs[3] = {c, c + 1, c}, ys[3] = {r, r, r + 1};
  for (int k = 0; k < 3; ++k) {
    const double px = xs[k], py = ys[k];
    xs[k] = gt[0] + px * gt[1] + py * gt[2];
    ys[k] = gt[3] + px * gt[4] + py * gt[5];
  }
  if (!ct->Transform(3, xs, ys)) return std::nullopt;
  const double side = std::max(std::hypot(xs[1] - xs[0], ys[1] - ys[0]), std::hypot(xs[2] - xs[0], ys[2] - ys[0]));
  if (!std::isfinite(side) || !(side > 0)) return std::nullopt;
  return side;
}

Grid window_grid(const Grid& grid, const PixelWindow& window) {
  Grid g = grid;
  g.width = window.width;
  g.height = window.height;
  const auto& gt = grid.geotransform;
  g.geotransform[0] = gt[0] + window.x * gt[1] + window.y * gt[2];
  g.geotransform[3] = gt[3] + window.x * gt[4] + window.y * gt[5];
  return g;
}

CrsCode crs_code(const std::string& crs) {
  OGRSpatialReference srs;
  if (!parse_srs(crs, srs)) throw InputError("the CRS '" + crs.substr(0, 60) + "' cannot be read");
  CrsCode c;
  c.wkt2 = wkt_of(srs);
  srs.AutoIdentifyEPSG();
  const char* name = srs.GetAuthorityName(nullptr);
  const char* code = srs.GetAuthorityCode(nullptr);
  if (name != nullptr && code != nullptr && std::string(name) == "EPSG") c.epsg = std::atoi(code);
  return c;
}

std::vector<std::array<double, 2>> lonlat_outline(const Grid& grid) {
  if (!grid.georeferenced) throw InputError("the grid has no georeferencing, so it has no place on the Earth");
  OGRSpatialReference src, wgs84;
  if (!parse_srs(grid.crs_wkt, src)) throw InputError("the grid's CRS cannot be read");
  wgs84.importFromEPSG(4326);
  wgs84.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
  std::unique_ptr<OGRCoordinateTransformation> ct(OGRCreateCoordinateTransformation(&src, &wgs84));
  if (!ct) throw InputError("the grid's CRS cannot be transformed into WGS84");
  // corners in pixel coordinates, counter-clockwise on the map (north up): top-left,
  // bottom-left, bottom-right, top-right; 8 points per edge
  const std::array<std::array<double, 2>, 5> corners = {
      {{0, 0}, {0, double(grid.height)}, {double(grid.width), double(grid.height)}, {double(grid.width), 0}, {0, 0}}};
  const auto& gt = grid.geotransform;
  std::vector<std::array<double, 2>> ring;
  constexpr int kPerEdge = 8;
  for (std::size_t e = 0; e + 1 < corners.size(); ++e) {
    for (int k = 0; k < kPerEdge; ++k) {
      const double f = static_cast<double>(k) / kPerEdge;
      const double px = corners[e][0] + f * (corners[e + 1][0] - corners[e][0]);
      const double py = corners[e][1] + f * (corners[e + 1][1] - corners[e][1]);
      double x = gt[0] + px * gt[1] + py * gt[2], y = gt[3] + px * gt[4] + py * gt[5];
      if (!ct->Transform(1, &x, &y)) throw InputError("the grid's outline cannot be transformed into WGS84");
      ring.push_back({x, y});
    }
  }
  ring.push_back(ring.front());
  return ring;
}

// ---- sinks ----------------------------------------------------------------------------

struct RasterSink::State {
  std::string path;
  std::string temp;
  SinkSpec spec;
  DatasetPtr ds;
  bool committed = false;

  void discard() {
    ds.reset();
    if (!committed) {
      VSIUnlink(temp.c_str());
      VSIUnlink((temp + ".cog").c_str());
      VSIUnlink((temp + ".aux.xml").c_str());
      VSIUnlink((temp + ".msk").c_str());
    }
  }
};

RasterSink::RasterSink(RasterSink&&) noexcept = default;
RasterSink& RasterSink::operator=(RasterSink&&) noexcept = default;
RasterSink::~RasterSink() {
  if (state_) state_->discard();
}

const std::string& RasterSink::path() const { return state_->path; }

RasterSink RasterSink::create(const std::string& path, const SinkSpec& spec) {
  init_gdal();
  if (spec.format != "GTiff" && spec.format != "COG") throw OutputError("output '" + path + "': unknown format '" + spec.format + "'");
  VSIStatBufL st;
  if (stat_path(path, &st, VSI_STAT_EXISTS_FLAG | VSI_STAT_NATURE_FLAG)) {
    if (VSI_ISDIR(st.st_mode)) output_error(path, "is a directory");
    if (is_local(path)) check_output_file(path, {}, "output");  // never a device or FIFO
    if (!spec.overwrite) throw OutputError("output " + quoted(path) + " exists (use --overwrite)");
  }
  check_destination_dir(path);
  RasterSink sink;
  sink.state_ = std::make_unique<State>();
  State& s = *sink.state_;
  s.path = path;
  s.spec = spec;
  s.temp = temp_path_for(path);
  GDALDriver* drv = GetGDALDriverManager()->GetDriverByName("GTiff");
  const GDALDataType type = GDALGetDataTypeByName(spec.data_type.c_str());
  if (type == GDT_Unknown) output_error(path, "unknown data type '" + spec.data_type + "'");
  std::vector<std::string> co = {"TILED=YES", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER", "BLOCKXSIZE=256",
                                 "BLOCKYSIZE=256"};
  if (spec.bands == 3 && spec.rgb && type == GDT_Byte) co.emplace_back("PHOTOMETRIC=RGB");
  if (spec.format == "COG") co = {"TILED=YES", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER"};  // intermediate
  std::vector<const char*> copts;
  for (const auto& c : co) copts.push_back(c.c_str());
  copts.push_back(nullptr);
  ErrorCapture capture;
  s.ds.reset(drv->Create(s.temp.c_str(), spec.grid.width, spec.grid.height, spec.bands, type,
                         const_cast<char**>(copts.data())));
  if (!s.ds) output_error(path, "cannot create (" + capture.message() + ")");
  if (spec.grid.georeferenced) {
    std::array<double, 6> gt = spec.grid.geotransform;
    s.ds->SetGeoTransform(gt.data());
    if (!spec.grid.crs_wkt.empty()) {
      OGRSpatialReference srs;
      if (parse_srs(spec.grid.crs_wkt, srs)) s.ds->SetSpatialRef(&srs);
    }
  }
  for (int b = 1; b <= spec.bands; ++b) {
    GDALRasterBand* band = s.ds->GetRasterBand(b);
    if (spec.nodata) band->SetNoDataValue(*spec.nodata);
    if (static_cast<size_t>(b) <= spec.band_descriptions.size()) {
      band->SetDescription(spec.band_descriptions[static_cast<size_t>(b - 1)].c_str());
    }
    if (spec.bands == 3 && spec.rgb) {
      band->SetColorInterpretation(b == 1 ? GCI_RedBand : b == 2 ? GCI_GreenBand : GCI_BlueBand);
    } else if (spec.bands == 1) {
      band->SetColorInterpretation(GCI_GrayIndex);
    }
  }
  for (const auto& [k, v] : spec.metadata) s.ds->SetMetadataItem(k.c_str(), v.c_str());
  if (spec.mask) {
    CPLSetThreadLocalConfigOption("GDAL_TIFF_INTERNAL_MASK", "YES");
    const CPLErr err = s.ds->CreateMaskBand(GMF_PER_DATASET);
    CPLSetThreadLocalConfigOption("GDAL_TIFF_INTERNAL_MASK", nullptr);
    if (err != CE_None) output_error(path, "cannot create a mask band (" + capture.message() + ")");
  }
  return sink;
}

void RasterSink::write(const torch::Tensor& data, int x, int y) {
  State& s = *state_;
  const torch::Tensor d = data.to(torch::kCPU).to(torch::kFloat64).contiguous();
  const int h = static_cast<int>(d.size(1)), w = static_cast<int>(d.size(2));
  for (int b = 0; b < static_cast<int>(d.size(0)); ++b) {
    ErrorCapture capture;
    const torch::Tensor plane = d[b].contiguous();
    if (s.ds->GetRasterBand(b + 1)->RasterIO(GF_Write, x, y, w, h, const_cast<double*>(plane.data_ptr<double>()), w,
                                             h, GDT_Float64, 0, 0) != CE_None) {
      output_error(s.path, "cannot write (" + capture.message() + ")");
    }
  }
}

void RasterSink::write_mask(const torch::Tensor& mask, int x, int y) {
  State& s = *state_;
  const torch::Tensor m = (mask.to(torch::kCPU) != 0).to(torch::kUInt8).mul(255).contiguous();
  const int h = static_cast<int>(m.size(0)), w = static_cast<int>(m.size(1));
  ErrorCapture capture;
  if (s.ds->GetRasterBand(1)->GetMaskBand()->RasterIO(GF_Write, x, y, w, h, m.data_ptr<std::uint8_t>(), w, h,
                                                      GDT_Byte, 0, 0) != CE_None) {
    output_error(s.path, "cannot write the mask (" + capture.message() + ")");
  }
}

void RasterSink::commit() {
  State& s = *state_;
  ErrorCapture capture;
  s.ds->FlushCache(true);
  s.ds.reset();
  if (capture.failed()) output_error(s.path, "cannot write (" + capture.message() + ")");
  std::string final_temp = s.temp;
  if (s.spec.format == "COG") {
    // COGs cannot be written window by window: convert the tiled GTiff, with overviews.
    DatasetPtr src(GDALDataset::Open(s.temp.c_str(), GDAL_OF_RASTER | GDAL_OF_READONLY));
    if (!src) output_error(s.path, "cannot reopen the temporary file (" + capture.message() + ")");
    const char* co[] = {"COMPRESS=DEFLATE", "BLOCKSIZE=256", "OVERVIEWS=AUTO", "BIGTIFF=IF_SAFER", "RESAMPLING=AVERAGE", nullptr};
    GDALDriver* cog = GetGDALDriverManager()->GetDriverByName("COG");
    final_temp = s.temp + ".cog";
    DatasetPtr out(cog->CreateCopy(final_temp.c_str(), src.get(), FALSE, const_cast<char**>(co), nullptr, nullptr));
    if (!out || capture.failed()) output_error(s.path, "cannot write a COG (" + capture.message() + ")");
    out.reset();
    src.reset();
    if (capture.failed()) output_error(s.path, "cannot write a COG (" + capture.message() + ")");
    VSIUnlink(s.temp.c_str());
  }
  if (VSIRename(final_temp.c_str(), s.path.c_str()) != 0) {
    output_error(s.path, "cannot rename the temporary file '" + final_temp + "' into place");
  }
  s.committed = true;
  VSIUnlink((s.path + ".aux.xml").c_str());
}

}  // namespace copgen
