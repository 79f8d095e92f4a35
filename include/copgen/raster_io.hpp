// Raster I/O: whole 8-bit images, raster probes and text files. With raster_scene.hpp
// (windowed access) it is the GDAL module, the only one that talks to GDAL: GDAL handles
// are RAII-owned inside src/raster_io.cpp and src/raster_scene.cpp (src/gdal_support.hpp),
// CPLError messages are routed into the log (spdlog), and every failure becomes a
// copgen::Error that names the file and what was wrong.
//
//   auto img = copgen::read_image_u8("l1c.tif", "S2L1C input");  // 3 x H x W Byte
//   copgen::WriteOptions w; w.metadata["COPGEN_SEED"] = "42";
//   copgen::write_image_u8("l2a.tif", img, w);  // temporary name, then rename
//
// Any GDAL path works: plain files, /vsimem/, /vsizip/, /vsicurl/. A raster at a
// "/vsicurl/http(s)://..." path (alone or inside a "vrt://" connection string) is first probed
// with one bounded range request (copgen/remote.hpp), and init_gdal gives GDAL's own HTTP reads
// a connect timeout and a stall limit unless the user set them.
#pragma once

#include <array>
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

namespace copgen {

// Georeferencing carried from an input to the outputs.
struct GeoInfo {
  bool has_geotransform = false;                       // false: none to write
  std::array<double, 6> geotransform{0, 1, 0, 0, 0, 1};  // GDAL order
  std::string crs_wkt;                                 // empty: no CRS
  std::optional<double> nodata;                        // nodata of the first band, if set
};

// What a raster holds, read without its pixels.
struct RasterInfo {
  std::string path;
  std::string driver;                          // GDAL short name, e.g. "GTiff", "PNG"
  int width = 0;
  int height = 0;
  int bands = 0;
  std::string data_type;                       // GDAL name of band 1's type, e.g. "Byte"
  std::vector<std::string> band_descriptions;  // one per band ("" when unset)
  GeoInfo geo;
  std::map<std::string, std::string> metadata;  // default-domain metadata items
  // Per band (one entry each): GDAL's offset and scale of its values (value = DN * scale +
  // offset), unset when the file gives none, and its default-domain metadata items
  // (e.g. BOA_ADD_OFFSET of a Sentinel-2 band).
  std::vector<std::optional<double>> band_offsets;
  std::vector<std::optional<double>> band_scales;
  std::vector<std::map<std::string, std::string>> band_metadata;
};

// An 8-bit image, band-sequential: pixels[(b * height + y) * width + x].
struct ImageU8 {
  int width = 0;
  int height = 0;
  int bands = 0;
  std::vector<std::uint8_t> pixels;
  GeoInfo geo;
  // Validity per pixel (height x width, 0 = nodata) as GDAL reports it for band 1 (its
  // nodata value, an alpha band or a mask band); empty when every pixel is valid.
  std::vector<std::uint8_t> valid;
};

// The whole of a text file of at most remote_text_limit() bytes (512 MiB, COPGEN_MAX_JSON_MB).
// A "/vsicurl/http(s)://..." path is read with fetch_text (copgen/remote.hpp: bounded,
// interruptible, every HTTP status reported as itself; messages name the URL without
// /vsicurl/); any other path through GDAL's virtual file systems (a local path, /vsis3/, ...).
// Throws InputError naming `what` and the path, with the reason (an HTTP status, a missing
// file, a file over the limit); Interrupted when a stop is requested during an HTTP read.
std::string read_text(const std::string& path, const std::string& what);

// Reads the header of `path`. Throws InputError "<what> '<path>': ..." when the file
// is missing, unreadable or not a raster GDAL knows. `what` describes the role, e.g.
// "S2L1C input".
RasterInfo probe_raster(const std::string& path, const std::string& what);

// The largest image read_image_u8 reads (bands x width x height bytes): 4 GiB.
inline constexpr std::uint64_t kMaxImageBytes = std::uint64_t{4} << 30;

// Reads every band of `path` as 8-bit. Throws InputError naming `what` and the path
// when the file is missing, empty, unreadable or corrupt, its bands are not of type
// Byte, it is larger than kMaxImageBytes (checked before allocating), or every pixel of
// every band equals that band's nodata value.
ImageU8 read_image_u8(const std::string& path, const std::string& what);

// How write_image_u8 writes.
struct WriteOptions {
  std::string format = "GTiff";                // GDAL driver; GTiff is tiled + DEFLATE
  std::map<std::string, std::string> metadata;  // default-domain metadata items
  std::vector<std::string> band_descriptions;  // optional, one per band
  bool overwrite = true;                       // false: an existing `path` is an OutputError
  std::vector<std::uint8_t> mask;              // optional per-dataset mask (height x width, 0 = nodata)
};

// Writes `image` (3 bands get RGB colour interpretation) with its georeferencing, if
// any, under a temporary name in the same directory, then renames it to `path`. On any
// failure the temporary file is removed and OutputError names `path` and the cause;
// `path` itself is never left half-written.
void write_image_u8(const std::string& path, const ImageU8& image, const WriteOptions& options);

// True when `path` names an existing file (any GDAL virtual file system).
bool path_exists(const std::string& path);

// An entry of a folder listed by list_folder.
struct FolderEntry {
  std::string name;  // the entry's name in the folder
  bool folder = false;
};

// The entries of the folder `path` (any GDAL virtual file system: a local folder, the
// root of "/vsizip/x.zip" or a folder inside it), sorted by name, without "." and "..";
// empty when `path` is not a folder GDAL can list.
std::vector<FolderEntry> list_folder(const std::string& path);

// The GDAL copgen runs with, for `copgen info` and the reports' environment.
struct GdalDescription {
  std::string version;                         // GDALVersionInfo("RELEASE_NAME"), e.g. "3.6.2"
  bool cog = false;                            // the COG driver (--format COG, scene outputs)
  std::vector<std::string> jpeg2000_drivers;   // those present of JP2OpenJPEG, JP2KAK, JP2ECW, JP2MrSID, JPEG2000
  bool http = false;                           // /vsicurl/ (GDAL built with curl): remote rasters, STAC assets
};
GdalDescription describe_gdal();

// Registers GDAL drivers and routes CPLError into the log, and sets GDAL_HTTP_CONNECTTIMEOUT=30,
// GDAL_HTTP_LOW_SPEED_TIME=60 and GDAL_HTTP_LOW_SPEED_LIMIT=1 where neither a config option nor
// the environment sets them. Idempotent and thread-safe; every function above calls it.
void init_gdal();

}  // namespace copgen
