// Raster I/O on GDAL: whole 8-bit images, probes and text reads. The library includes GDAL in
// two translation units, this one and raster_scene.cpp (windowed access); what they share is
// in gdal_support.hpp.
//
// Conventions:
//  * GDAL datasets are owned by DatasetPtr (unique_ptr with a GDALClose deleter).
//  * CPLError messages are routed into spdlog by a process-wide handler (init_gdal), and
//    each operation runs under an ErrorCapture that records whether GDAL reported a
//    failure and its message, so the message can be put into the copgen::Error thrown.
//  * Writes go to a temporary name in the destination directory and are renamed into
//    place only once GDAL has closed the file without error.
#include "copgen/raster_io.hpp"

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <gdal_priv.h>
#include <ogr_spatialref.h>
#include <spdlog/spdlog.h>

#include "copgen/error.hpp"
#include "copgen/files.hpp"
#include "copgen/remote.hpp"
#include "gdal_support.hpp"

namespace copgen {
namespace {

using namespace gdal_detail;

// "N band(s) of T" for uniform types, else a per-band list.
std::string describe_band_types(GDALDataset& ds) {
  const int n = ds.GetRasterCount();
  std::vector<std::string> types;
  bool uniform = true;
  for (int b = 1; b <= n; ++b) {
    types.emplace_back(GDALGetDataTypeName(ds.GetRasterBand(b)->GetRasterDataType()));
    if (types.back() != types.front()) uniform = false;
  }
  std::ostringstream s;
  s << n << (n == 1 ? " band" : " bands");
  if (uniform) {
    s << " of " << (types.empty() ? "?" : types.front());
  } else {
    s << " (";
    for (int b = 0; b < n; ++b) s << (b > 0 ? ", " : "") << "band " << (b + 1) << ": " << types[b];
    s << ")";
  }
  return s.str();
}

GeoInfo read_geo(GDALDataset& ds, const std::string& path) {
  GeoInfo geo;
  {
    // Drivers without georeferencing (e.g. PNG without a world file) report CE_Failure
    // and leave the default transform; treat both that and an explicit default as none.
    std::array<double, 6> gt{0, 1, 0, 0, 0, 1};
    const std::array<double, 6> identity{0, 1, 0, 0, 0, 1};
    if (ds.GetGeoTransform(gt.data()) == CE_None && gt != identity) {
      bool finite = true;
      for (double v : gt) finite = finite && std::isfinite(v);
      if (finite) {
        geo.has_geotransform = true;
        geo.geotransform = gt;
      }
    }
  }
  if (!geo.has_geotransform && ds.GetGCPCount() > 0) {
    spdlog::warn(
        "'{}' is georeferenced by {} ground control points, which copgen does not "
        "carry to its outputs",
        path, ds.GetGCPCount());
  }

  const OGRSpatialReference* srs = ds.GetSpatialRef();
  if (srs != nullptr && !srs->IsEmpty()) {
    char* wkt = nullptr;
    const char* const options[] = {"FORMAT=WKT2", nullptr};
    if (srs->exportToWkt(&wkt, options) == OGRERR_NONE && wkt != nullptr && *wkt != '\0') {
      geo.crs_wkt = wkt;
    }
    CPLFree(wkt);
    if (geo.crs_wkt.empty()) {
      const char* ref = ds.GetProjectionRef();
      if (ref != nullptr) geo.crs_wkt = ref;
    }
  }

  if (ds.GetRasterCount() > 0) {
    int has_nodata = FALSE;
    const double nodata = ds.GetRasterBand(1)->GetNoDataValue(&has_nodata);
    if (has_nodata) geo.nodata = nodata;
  }
  return geo;
}

// The http(s) URL of a "/vsicurl/http(s)://..." path; "" for any other path.
std::string vsicurl_http_url(const std::string& path) {
  if (path.rfind("/vsicurl/", 0) != 0) return "";
  const std::string url = path.substr(9);
  return is_http_url(url) ? url : "";
}

// The file a raster path reads: the path itself, or the one in a "vrt://" connection string
// ("vrt:///vsicurl/http://h/x.tif?bands=2"; GDAL ends that path at the first '?').
std::string file_of(const std::string& path) {
  if (path.rfind("vrt://", 0) != 0) return path;
  const std::string inner = path.substr(6);
  return inner.substr(0, inner.find('?'));
}

}  // namespace

// Opens `path` read-only as a raster with at least one band; InputError otherwise. A raster
// over HTTP is probed first (probe_remote_raster), so that GDAL never opens a URL whose server
// sends an endless body, HTML or an error status.
DatasetPtr gdal_detail::open_dataset(const std::string& path, const std::string& what) {
  init_gdal();
  const std::string file = file_of(path);  // what the checks before GDAL opens `path` look at
  const std::string url = vsicurl_http_url(file);
  if (!url.empty()) probe_remote_raster(url, what);
  VSIStatBufL st;
  if (!stat_path(file, &st, VSI_STAT_EXISTS_FLAG | VSI_STAT_NATURE_FLAG | VSI_STAT_SIZE_FLAG)) {
    input_error(what, path, "file not found");
  }
  if (VSI_ISREG(st.st_mode) && st.st_size == 0) input_error(what, path, "file is empty (0 bytes)");
  if (is_local(file)) {
    // reading a FIFO or a device would block or never end
    const std::string special = special_file_kind(file);
    if (!special.empty()) input_error(what, path, "is " + special + ", not a regular file");
  }

  ErrorCapture capture;
  DatasetPtr ds(GDALDataset::FromHandle(
      GDALOpenEx(path.c_str(), GDAL_OF_RASTER | GDAL_OF_READONLY | GDAL_OF_VERBOSE_ERROR, nullptr,
                 nullptr, nullptr)));
  if (!ds) {
    // Some rasters are directories (e.g. an Arc/Info grid), so only a failed open says
    // a directory or an unreadable file is the problem.
    if (VSI_ISDIR(st.st_mode)) input_error(what, path, "is a directory, not a raster GDAL can read");
    if (is_local(file) && ::access(file.c_str(), R_OK) != 0) {
      input_error(what, path, std::string("cannot be read (") + std::strerror(errno) + ")");
    }
    input_error(what, path, "not a raster GDAL can read (" + capture.message() + ")");
  }
  if (ds->GetRasterCount() == 0) {
    std::string detail = "not a raster GDAL can read (it has no raster bands";
    char** subdatasets = ds->GetMetadata("SUBDATASETS");
    const char* first = CSLFetchNameValue(subdatasets, "SUBDATASET_1_NAME");
    if (first != nullptr)
      detail += std::string("; open one of its subdatasets, e.g. '") + first + "'";
    input_error(what, path, detail + ")");
  }
  if (ds->GetRasterXSize() <= 0 || ds->GetRasterYSize() <= 0) {
    input_error(what, path,
                "raster has no pixels (" + std::to_string(ds->GetRasterXSize()) + "x" +
                    std::to_string(ds->GetRasterYSize()) + ")");
  }
  return ds;
}

namespace {

std::atomic<unsigned long> g_temp_counter{0};

}  // namespace

std::string gdal_detail::temp_path_for(const std::string& path) {
  const std::string dir = parent_dir(path);
  const std::string name = "." + file_name(path) + ".tmp-" + std::to_string(::getpid()) + "-" +
                           std::to_string(g_temp_counter.fetch_add(1));
  if (dir.empty()) return name;
  std::string joined = CPLFormFilename(dir.c_str(), name.c_str(), nullptr);
  return joined;
}

void gdal_detail::check_destination_dir(const std::string& path) {
  // Virtual file systems have no (or implicit) directories: /vsimem/ creates them on the
  // fly, object stores have prefixes. GDAL reports problems there when writing.
  if (!is_local(path)) return;
  std::string dir = parent_dir(path);
  if (dir.empty()) dir = ".";
  VSIStatBufL st;
  if (!stat_path(dir, &st, VSI_STAT_EXISTS_FLAG | VSI_STAT_NATURE_FLAG)) {
    output_error(path, "directory '" + dir + "' does not exist");
  }
  if (!VSI_ISDIR(st.st_mode)) output_error(path, "'" + dir + "' is not a directory");
  if (::access(dir.c_str(), W_OK | X_OK) != 0) {
    output_error(path, "directory '" + dir + "' is not writable (" + std::strerror(errno) + ")");
  }
}

namespace {

void validate_image(const std::string& path, const ImageU8& image, const WriteOptions& options) {
  if (image.bands <= 0 || image.width <= 0 || image.height <= 0) {
    output_error(path, "invalid image: " + std::to_string(image.bands) + " bands of " +
                           std::to_string(image.width) + "x" + std::to_string(image.height) +
                           " pixels");
  }
  const std::size_t expected = static_cast<std::size_t>(image.bands) *
                               static_cast<std::size_t>(image.height) *
                               static_cast<std::size_t>(image.width);
  if (image.pixels.size() != expected) {
    output_error(path, "invalid image: " + std::to_string(image.pixels.size()) +
                           " pixel values for " + std::to_string(image.bands) + " bands of " +
                           std::to_string(image.width) + "x" + std::to_string(image.height) +
                           " (expected " + std::to_string(expected) + ")");
  }
  if (!options.mask.empty() && options.mask.size() != static_cast<std::size_t>(image.height) *
                                                        static_cast<std::size_t>(image.width)) {
    output_error(path, "invalid mask: " + std::to_string(options.mask.size()) + " values for " +
                           std::to_string(image.width) + "x" + std::to_string(image.height) + " pixels");
  }
  if (!options.band_descriptions.empty() &&
      options.band_descriptions.size() != static_cast<std::size_t>(image.bands)) {
    output_error(path, std::to_string(options.band_descriptions.size()) +
                           " band descriptions for " + std::to_string(image.bands) + " bands");
  }
  for (const auto& [key, value] : options.metadata) {
    if (key.empty() || key.find_first_of("= \t\r\n") != std::string::npos) {
      output_error(path, "invalid metadata key '" + key + "'");
    }
  }
}

// An in-memory dataset viewing `image.pixels` (no copy), with everything to be written.
DatasetPtr make_mem_dataset(const std::string& path, const ImageU8& image,
                            const WriteOptions& options, ErrorCapture& capture) {
  GDALDriver* mem = GetGDALDriverManager()->GetDriverByName("MEM");
  if (mem == nullptr) output_error(path, "GDAL's MEM driver is not available");
  DatasetPtr ds(mem->Create("", image.width, image.height, 0, GDT_Byte, nullptr));
  if (!ds) output_error(path, "cannot create an in-memory dataset (" + capture.message() + ")");

  const std::size_t band_size =
      static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height);
  for (int b = 0; b < image.bands; ++b) {
    // MEM only reads through this pointer when copying out; the const_cast is safe.
    auto* data = const_cast<std::uint8_t*>(image.pixels.data() + band_size * b);
    char pointer[64] = {};
    CPLPrintPointer(pointer, data, sizeof(pointer) - 1);
    const std::string data_option = std::string("DATAPOINTER=") + pointer;
    const char* const band_options[] = {data_option.c_str(), "PIXELOFFSET=1", nullptr};
    if (ds->AddBand(GDT_Byte, const_cast<char**>(band_options)) != CE_None) {
      output_error(path,
                   "cannot set up band " + std::to_string(b + 1) + " (" + capture.message() + ")");
    }
  }

  const GeoInfo& geo = image.geo;
  if (geo.has_geotransform) {
    std::array<double, 6> gt = geo.geotransform;
    if (ds->SetGeoTransform(gt.data()) != CE_None) {
      output_error(path, "invalid geotransform (" + capture.message() + ")");
    }
  }
  if (!geo.crs_wkt.empty()) {
    OGRSpatialReference srs;
    // SetFromUserInput accepts WKT1/WKT2, PROJJSON and "EPSG:n".
    if (srs.SetFromUserInput(geo.crs_wkt.c_str()) != OGRERR_NONE) {
      const std::string excerpt =
          geo.crs_wkt.size() > 60 ? geo.crs_wkt.substr(0, 57) + "..." : geo.crs_wkt;
      output_error(path, "invalid CRS '" + excerpt + "' (" +
                             capture.message("not a CRS definition GDAL knows") + ")");
    }
    srs.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
    if (ds->SetSpatialRef(&srs) != CE_None) {
      output_error(path, "cannot set the CRS (" + capture.message() + ")");
    }
  }

  for (int b = 1; b <= image.bands; ++b) {
    GDALRasterBand* band = ds->GetRasterBand(b);
    if (geo.nodata) band->SetNoDataValue(*geo.nodata);
    if (!options.band_descriptions.empty()) {
      band->SetDescription(options.band_descriptions[static_cast<std::size_t>(b - 1)].c_str());
    }
    if (image.bands == 3) {
      static const GDALColorInterp rgb[3] = {GCI_RedBand, GCI_GreenBand, GCI_BlueBand};
      band->SetColorInterpretation(rgb[b - 1]);
    } else if (image.bands == 1) {
      band->SetColorInterpretation(GCI_GrayIndex);
    }
  }
  for (const auto& [key, value] : options.metadata) {
    ds->SetMetadataItem(key.c_str(), value.c_str());
  }
  if (!options.mask.empty()) {
    if (ds->CreateMaskBand(GMF_PER_DATASET) != CE_None ||
        ds->GetRasterBand(1)->GetMaskBand()->RasterIO(GF_Write, 0, 0, image.width, image.height,
                                                      const_cast<std::uint8_t*>(options.mask.data()), image.width,
                                                      image.height, GDT_Byte, 0, 0) != CE_None) {
      output_error(path, "cannot set up the validity mask (" + capture.message() + ")");
    }
  }
  return ds;
}

std::vector<std::string> creation_options(const std::string& format, int bands) {
  std::vector<std::string> opts;
  if (EQUAL(format.c_str(), "GTiff")) {
    opts = {"TILED=YES", "COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER"};
    if (bands == 3) opts.emplace_back("PHOTOMETRIC=RGB");
  } else if (EQUAL(format.c_str(), "COG")) {
    opts = {"COMPRESS=DEFLATE", "BIGTIFF=IF_SAFER"};
  }
  return opts;
}

// Removes the temporary file and any side-car files GDAL wrote next to it.
void remove_temp_files(const std::string& temp, const std::vector<std::string>& extra) {
  VSIStatBufL st;
  for (const std::string& f : extra) {
    if (f != temp && stat_path(f, &st, VSI_STAT_EXISTS_FLAG)) VSIUnlink(f.c_str());
  }
  if (stat_path(temp, &st, VSI_STAT_EXISTS_FLAG)) VSIUnlink(temp.c_str());
  const std::string aux = temp + ".aux.xml";
  if (stat_path(aux, &st, VSI_STAT_EXISTS_FLAG)) VSIUnlink(aux.c_str());
}

// Throws unless each of the `bands` bands of `ds` is of type Byte.
void check_byte_bands(GDALDataset& ds, int bands, const std::string& path, const std::string& what) {
  for (int b = 1; b <= bands; ++b) {
    if (ds.GetRasterBand(b)->GetRasterDataType() != GDT_Byte) {
      input_error(what, path, "expected bands of type Byte, found " + describe_band_types(ds));
    }
  }
}

// Allocates `image.pixels` for its bands of `band_size` pixels; throws if that is too large.
void allocate_pixels(ImageU8& image, std::size_t band_size, const std::string& path, const std::string& what) {
  const int bands = image.bands;
  // Checked before allocating: a small (sparse or forged) file can claim any size.
  const auto bytes = static_cast<std::uint64_t>(band_size) * static_cast<std::uint64_t>(bands);
  if (bytes > kMaxImageBytes) {
    input_error(what, path,
                "image too large (" + std::to_string(bands) + " band(s) of " +
                    std::to_string(image.width) + " x " + std::to_string(image.height) + " = " +
                    std::to_string(bytes) + " bytes; copgen reads at most " +
                    std::to_string(kMaxImageBytes >> 30) +
                    " GiB per image: crop or tile it, e.g. with gdal_translate -srcwin)");
  }
  try {
    image.pixels.resize(band_size * static_cast<std::size_t>(bands));
  } catch (const std::bad_alloc&) {
    input_error(what, path,
                "image too large to hold in memory (" + std::to_string(bands) + " bands of " +
                    std::to_string(image.width) + "x" + std::to_string(image.height) + ")");
  }
}

// Reads band 1's validity mask into `image.valid` when GDAL says some pixel may be invalid.
void read_validity_mask(GDALDataset& ds, ImageU8& image, std::size_t band_size, ErrorCapture& capture,
                        const std::string& path, const std::string& what) {
  // Validity as GDAL reports it for band 1 (its nodata value, an alpha band or a mask band),
  // the rule scenes follow too; kept only when some pixel is invalid.
  GDALRasterBand* first_band = ds.GetRasterBand(1);
  if ((first_band->GetMaskFlags() & GMF_ALL_VALID) == 0) {
    std::vector<std::uint8_t> mask(band_size);
    capture.reset();
    if (first_band->GetMaskBand()->RasterIO(GF_Read, 0, 0, image.width, image.height, mask.data(), image.width,
                                            image.height, GDT_Byte, 0, 0) != CE_None ||
        capture.failed()) {
      input_error(what, path, "cannot read its validity mask (" + capture.message() + ")");
    }
    if (std::any_of(mask.begin(), mask.end(), [](std::uint8_t v) { return v == 0; })) image.valid = std::move(mask);
  }
}

// Throws if every pixel of every band equals that band's nodata value.
void check_not_all_nodata(GDALDataset& ds, const ImageU8& image, std::size_t band_size, const std::string& path,
                          const std::string& what) {
  const int bands = image.bands;
  // An image whose every pixel is nodata holds nothing to translate or compare.
  bool all_nodata = true;
  std::vector<int> values;  // each band's nodata value
  for (int b = 1; b <= bands && all_nodata; ++b) {
    int has_nodata = FALSE;
    const double nodata = ds.GetRasterBand(b)->GetNoDataValue(&has_nodata);
    if (!has_nodata || !(nodata >= 0 && nodata <= 255) || nodata != std::floor(nodata)) {
      all_nodata = false;
      break;
    }
    const auto value = static_cast<std::uint8_t>(nodata);
    const auto first = image.pixels.begin() + static_cast<std::ptrdiff_t>(band_size * (b - 1));
    all_nodata = std::all_of(first, first + static_cast<std::ptrdiff_t>(band_size),
                             [value](std::uint8_t p) { return p == value; });
    values.push_back(value);
  }
  if (all_nodata) {
    std::string listed;
    const bool same = std::all_of(values.begin(), values.end(), [&](int v) { return v == values.front(); });
    if (same) {
      listed = "nodata value " + std::to_string(values.front());
    } else {
      listed = "nodata values";
      for (size_t i = 0; i < values.size(); ++i) listed += (i ? ", " : " ") + std::to_string(values[i]);
    }
    input_error(what, path, "every pixel is nodata (" + listed + "); there is nothing to read");
  }
}

// The GDAL driver for `options.format`; throws if there is none or it cannot write files.
GDALDriver* find_output_driver(const std::string& path, const WriteOptions& options) {
  GDALDriver* driver = GetGDALDriverManager()->GetDriverByName(options.format.c_str());
  if (driver == nullptr) output_error(path, "unknown GDAL format '" + options.format + "'");
  if (driver->GetMetadataItem(GDAL_DCAP_CREATECOPY) == nullptr &&
      driver->GetMetadataItem(GDAL_DCAP_CREATE) == nullptr) {
    output_error(path, "GDAL format '" + options.format + "' cannot write files");
  }
  return driver;
}

// Checks what already exists at `path`: never a directory or a special file, and replaced only with --overwrite.
void check_existing_output(const std::string& path, const WriteOptions& options) {
  VSIStatBufL st;
  if (stat_path(path, &st, VSI_STAT_EXISTS_FLAG | VSI_STAT_NATURE_FLAG)) {
    if (VSI_ISDIR(st.st_mode)) output_error(path, "is a directory");
    if (is_local(path)) check_output_file(path, {}, "output");  // never a device or FIFO
    if (!options.overwrite)
      throw OutputError("output " + quoted(path) + " exists (use --overwrite)");
  }
}

// Writes `image` to `temp` with `driver` (copied from an in-memory dataset) and closes it;
// adds the files GDAL made to `written_files`.
void write_temp_file(GDALDriver& driver, const std::string& path, const std::string& temp, const ImageU8& image,
                     const WriteOptions& options, ErrorCapture& capture, std::vector<std::string>& written_files) {
  DatasetPtr mem = make_mem_dataset(path, image, options, capture);

  const std::vector<std::string> opts = creation_options(options.format, image.bands);
  std::vector<const char*> copts;
  for (const auto& o : opts) copts.push_back(o.c_str());
  copts.push_back(nullptr);

  capture.reset();
  // a mask goes inside the GeoTIFF, not into a .msk side-car
  CPLSetThreadLocalConfigOption("GDAL_TIFF_INTERNAL_MASK", "YES");
  DatasetPtr out(driver.CreateCopy(temp.c_str(), mem.get(), FALSE,
                                   const_cast<char**>(copts.data()), nullptr, nullptr));
  CPLSetThreadLocalConfigOption("GDAL_TIFF_INTERNAL_MASK", nullptr);
  if (!out) output_error(path, "cannot write (" + capture.message() + ")");
  {
    CslPtr files(out->GetFileList());
    for (char** f = files.get(); f != nullptr && *f != nullptr; ++f)
      written_files.emplace_back(*f);
  }
  out->FlushCache(true);
  out.reset();  // GDALClose: writes the remaining tiles and the directory
  mem.reset();
  if (capture.failed() || CPLGetLastErrorType() == CE_Failure ||
      CPLGetLastErrorType() == CE_Fatal) {
    output_error(path, "cannot write (" + capture.message() + ")");
  }
}

// Renames the temporary file and its side-car files onto `path`, first removing a stale side-car of `path`.
void move_into_place(const std::string& path, const std::string& temp, std::vector<std::string>& written_files) {
  VSIStatBufL st;
  // Side-car files (e.g. PNG's .aux.xml with the CRS) follow the main file's name.
  std::vector<std::pair<std::string, std::string>> renames;
  const std::string aux = temp + ".aux.xml";
  if (stat_path(aux, &st, VSI_STAT_EXISTS_FLAG) &&
      std::find(written_files.begin(), written_files.end(), aux) == written_files.end()) {
    written_files.push_back(aux);
  }
  for (const std::string& f : written_files) {
    if (f != temp && f.rfind(temp, 0) == 0 && stat_path(f, &st, VSI_STAT_EXISTS_FLAG)) {
      renames.emplace_back(f, path + f.substr(temp.size()));
    }
  }
  // A side-car left by an earlier write to `path` would describe the old contents.
  const std::string old_aux = path + ".aux.xml";
  bool new_aux = false;
  for (const auto& r : renames) new_aux = new_aux || r.second == old_aux;
  if (!new_aux && stat_path(old_aux, &st, VSI_STAT_EXISTS_FLAG)) {
    spdlog::debug("removing stale '{}'", old_aux);
    VSIUnlink(old_aux.c_str());
  }
  for (const auto& [from, to] : renames) {
    if (VSIRename(from.c_str(), to.c_str()) != 0) {
      output_error(path,
                   "cannot rename '" + from + "' to '" + to + "' (" + std::strerror(errno) + ")");
    }
  }
  if (VSIRename(temp.c_str(), path.c_str()) != 0) {
    output_error(path, "cannot rename temporary file '" + temp + "' into place (" +
                           std::strerror(errno) + ")");
  }
}


}  // namespace

// ---- public API ---------------------------------------------------------------------

void init_gdal() {
  static std::once_flag once;
  std::call_once(once, [] {
    GDALAllRegister();
    CPLSetErrorHandler(&global_error_handler);
    // GDAL's own reads over HTTP (a raster's byte ranges) end when a server stops sending,
    // unless the user chose otherwise (a config option or the environment).
    const char* const http_defaults[][2] = {{"GDAL_HTTP_CONNECTTIMEOUT", "30"},
                                            {"GDAL_HTTP_LOW_SPEED_TIME", "60"},
                                            {"GDAL_HTTP_LOW_SPEED_LIMIT", "1"}};
    for (const auto& [key, value] : http_defaults) {
      if (CPLGetConfigOption(key, nullptr) == nullptr) CPLSetConfigOption(key, value);
    }
  });
}

GdalDescription describe_gdal() {
  init_gdal();
  GdalDescription d;
  d.version = GDALVersionInfo("RELEASE_NAME");
  d.cog = GDALGetDriverByName("COG") != nullptr;
  for (const char* name : {"JP2OpenJPEG", "JP2KAK", "JP2ECW", "JP2MrSID", "JPEG2000"}) {
    if (GDALGetDriverByName(name) != nullptr) d.jpeg2000_drivers.emplace_back(name);
  }
  // /vsicurl/ is registered only when GDAL was built with curl
  char** prefixes = VSIGetFileSystemsPrefixes();
  for (char** p = prefixes; p != nullptr && *p != nullptr; ++p) {
    if (std::strcmp(*p, "/vsicurl/") == 0) d.http = true;
  }
  CSLDestroy(prefixes);
  return d;
}

bool path_exists(const std::string& path) {
  init_gdal();
  VSIStatBufL st;
  return stat_path(path, &st, VSI_STAT_EXISTS_FLAG);
}

std::vector<FolderEntry> list_folder(const std::string& path) {
  init_gdal();
  std::vector<FolderEntry> out;
  char** names = VSIReadDir(path.c_str());
  for (char** n = names; n != nullptr && *n != nullptr; ++n) {
    const std::string name = *n;
    if (name.empty() || name == "." || name == "..") continue;
    VSIStatBufL st;
    const bool folder = stat_path(path + "/" + name, &st, VSI_STAT_EXISTS_FLAG | VSI_STAT_NATURE_FLAG) &&
                        VSI_ISDIR(st.st_mode);
    out.push_back({name, folder});
  }
  CSLDestroy(names);
  std::sort(out.begin(), out.end(), [](const FolderEntry& a, const FolderEntry& b) { return a.name < b.name; });
  return out;
}

namespace {

// GDAL's NAME=VALUE list as a map.
std::map<std::string, std::string> metadata_items(char** items) {
  std::map<std::string, std::string> out;
  for (char** item = items; item != nullptr && *item != nullptr; ++item) {
    const std::string line = *item;
    const auto eq = line.find('=');
    if (eq != std::string::npos) out[line.substr(0, eq)] = line.substr(eq + 1);
  }
  return out;
}

}  // namespace

RasterInfo probe_raster(const std::string& path, const std::string& what) {
  DatasetPtr ds = open_dataset(path, what);
  RasterInfo info;
  info.path = path;
  if (GDALDriver* driver = ds->GetDriver(); driver != nullptr) {
    info.driver = driver->GetDescription();
  }
  info.width = ds->GetRasterXSize();
  info.height = ds->GetRasterYSize();
  info.bands = ds->GetRasterCount();
  info.data_type = GDALGetDataTypeName(ds->GetRasterBand(1)->GetRasterDataType());
  for (int b = 1; b <= info.bands; ++b) {
    GDALRasterBand* band = ds->GetRasterBand(b);
    const char* d = band->GetDescription();
    info.band_descriptions.emplace_back(d != nullptr ? d : "");
    int has_offset = FALSE, has_scale = FALSE;
    const double offset = band->GetOffset(&has_offset), scale = band->GetScale(&has_scale);
    info.band_offsets.push_back(has_offset ? std::optional<double>(offset) : std::nullopt);
    info.band_scales.push_back(has_scale ? std::optional<double>(scale) : std::nullopt);
    info.band_metadata.push_back(metadata_items(band->GetMetadata()));
  }
  info.geo = read_geo(*ds, path);
  info.metadata = metadata_items(ds->GetMetadata());
  return info;
}

std::string read_text(const std::string& path, const std::string& what) {
  const std::string url = vsicurl_http_url(path);
  if (!url.empty()) return fetch_text(url, what);
  init_gdal();
  const std::uint64_t limit = remote_text_limit();
  ErrorCapture capture;
  GByte* data = nullptr;
  vsi_l_offset size = 0;
  if (!VSIIngestFile(nullptr, path.c_str(), &data, &size, static_cast<GIntBig>(limit))) {
    std::string why = capture.message();
    const std::string shown = path.rfind("/vsicurl/", 0) == 0 ? path.substr(9) : path;
    // VSIIngestFile's words for a file over its maximum size
    if (why.find("too large to be opened") != std::string::npos) {
      input_error(what, shown, "holds " + remote_text_limit_exceeded());
    }
    // over HTTP the status is in the warning of the last attempt ("HTTP error code: 503 -
    // URL. Retrying ..."), the failure only says that bytes are missing
    const std::string& http = capture.last_warning();
    if (http.find("HTTP error code") != std::string::npos) {
      why = http.substr(0, http.find(". Retrying")) + "; " + why;
    } else if (path.rfind("/vsicurl/", 0) == 0) {
      why += "; CPL_CURL_VERBOSE=YES shows the server's answers, GDAL_HTTP_MAX_RETRY=3 retries failed requests";
    }
    input_error(what, shown, "cannot be read (" + why + ")");
  }
  std::string text(reinterpret_cast<const char*>(data), static_cast<std::size_t>(size));
  VSIFree(data);
  return text;
}

ImageU8 read_image_u8(const std::string& path, const std::string& what) {
  DatasetPtr ds = open_dataset(path, what);
  const int bands = ds->GetRasterCount();
  check_byte_bands(*ds, bands, path, what);

  ImageU8 image;
  image.width = ds->GetRasterXSize();
  image.height = ds->GetRasterYSize();
  image.bands = bands;
  const std::size_t band_size =
      static_cast<std::size_t>(image.width) * static_cast<std::size_t>(image.height);
  allocate_pixels(image, band_size, path, what);

  ErrorCapture capture;
  const CPLErr err =
      ds->RasterIO(GF_Read, 0, 0, image.width, image.height, image.pixels.data(), image.width,
                   image.height, GDT_Byte, bands, nullptr, 1, static_cast<GSpacing>(image.width),
                   static_cast<GSpacing>(band_size), nullptr);
  if (err != CE_None || capture.failed()) {
    input_error(
        what, path,
        "cannot read pixels, the file may be truncated or corrupt (" + capture.message() + ")");
  }
  image.geo = read_geo(*ds, path);

  read_validity_mask(*ds, image, band_size, capture, path, what);
  check_not_all_nodata(*ds, image, band_size, path, what);
  return image;
}

void write_image_u8(const std::string& path, const ImageU8& image, const WriteOptions& options) {
  init_gdal();
  if (path.empty()) throw OutputError("output path is empty");
  validate_image(path, image, options);

  GDALDriver* driver = find_output_driver(path, options);
  check_existing_output(path, options);
  check_destination_dir(path);

  const std::string temp = temp_path_for(path);
  std::vector<std::string> written_files;  // the files GDAL made under the temporary name
  try {
    ErrorCapture capture;
    write_temp_file(*driver, path, temp, image, options, capture, written_files);
    move_into_place(path, temp, written_files);
  } catch (...) {
    remove_temp_files(temp, written_files);
    throw;
  }
  spdlog::debug("wrote '{}' ({} bands of {}x{}, {})", path, image.bands, image.width, image.height,
                options.format);
}

}  // namespace copgen
