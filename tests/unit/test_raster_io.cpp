#include "catch_torch.hpp"

#include <algorithm>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <memory>
#include <string>
#include <vector>

#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal_priv.h>
#include <ogr_spatialref.h>

#include "copgen/error.hpp"
#include "copgen/raster_io.hpp"
#include "support.hpp"

namespace fs = std::filesystem;

namespace {

struct DatasetCloser {
  void operator()(GDALDataset* ds) const { GDALClose(GDALDataset::ToHandle(ds)); }
};
using DatasetPtr = std::unique_ptr<GDALDataset, DatasetCloser>;

DatasetPtr gdal_open(const std::string& path) {
  return DatasetPtr(GDALDataset::Open(path.c_str(), GDAL_OF_RASTER | GDAL_OF_READONLY));
}

std::string wkt_of(const std::string& user_input) {
  OGRSpatialReference srs;
  REQUIRE(srs.SetFromUserInput(user_input.c_str()) == OGRERR_NONE);
  char* wkt = nullptr;
  const char* const options[] = {"FORMAT=WKT2", nullptr};
  REQUIRE(srs.exportToWkt(&wkt, options) == OGRERR_NONE);
  std::string out = wkt;
  CPLFree(wkt);
  return out;
}

bool same_crs(const std::string& a, const std::string& b) {
  OGRSpatialReference sa;
  OGRSpatialReference sb;
  if (sa.SetFromUserInput(a.c_str()) != OGRERR_NONE) return false;
  if (sb.SetFromUserInput(b.c_str()) != OGRERR_NONE) return false;
  return sa.IsSame(&sb) != 0;
}

// A 3-band (by default) test image with a deterministic pattern and georeferencing.
copgen::ImageU8 make_image(int width = 256, int height = 256, int bands = 3) {
  copgen::ImageU8 img;
  img.width = width;
  img.height = height;
  img.bands = bands;
  img.pixels.resize(static_cast<std::size_t>(width) * static_cast<std::size_t>(height) *
                    static_cast<std::size_t>(bands));
  for (std::size_t i = 0; i < img.pixels.size(); ++i)
    img.pixels[i] = static_cast<std::uint8_t>((i * 7 + i / 256 * 13) % 256);
  img.geo.has_geotransform = true;
  img.geo.geotransform = {500000.0, 10.0, 0.0, 5000000.0, 0.0, -10.0};
  img.geo.crs_wkt = wkt_of("EPSG:32633");
  img.geo.nodata = 0.0;
  return img;
}

std::vector<std::string> vsi_list_dir(const std::string& dir) {
  std::vector<std::string> names;
  char** list = VSIReadDir(dir.c_str());
  for (char** p = list; p != nullptr && *p != nullptr; ++p) {
    const std::string n = *p;
    if (n != "." && n != "..") names.push_back(n);
  }
  CSLDestroy(list);
  std::sort(names.begin(), names.end());
  return names;
}

// A fresh /vsimem/ directory whose files are removed at the end of the test.
struct VsiMemDir {
  VsiMemDir() {
    static int counter = 0;
    path = "/vsimem/copgen-raster-test-" + std::to_string(++counter);
  }
  ~VsiMemDir() { VSIRmdirRecursive(path.c_str()); }
  std::string file(const std::string& name) const { return path + "/" + name; }
  std::string path;
};

template <typename Fn>
std::string error_message(Fn&& fn) {
  try {
    fn();
  } catch (const copgen::Error& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("GeoTIFF round trip in /vsimem/ keeps pixels and georeferencing", "[raster]") {
  copgen::init_gdal();
  VsiMemDir dir;
  const std::string path = dir.file("l2a.tif");
  const copgen::ImageU8 img = make_image();

  copgen::WriteOptions options;
  options.metadata["COPGEN_SEED"] = "42";
  options.metadata["COPGEN_MODEL"] = "copgen-tiny";
  options.band_descriptions = {"B04", "B03", "B02"};
  copgen::write_image_u8(path, img, options);
  REQUIRE(copgen::path_exists(path));

  const copgen::ImageU8 back = copgen::read_image_u8(path, "round trip");
  CHECK(back.width == 256);
  CHECK(back.height == 256);
  CHECK(back.bands == 3);
  CHECK(back.pixels == img.pixels);
  CHECK(back.geo.has_geotransform);
  CHECK(back.geo.geotransform == img.geo.geotransform);
  CHECK(same_crs(back.geo.crs_wkt, img.geo.crs_wkt));
  CHECK(same_crs(back.geo.crs_wkt, "EPSG:32633"));
  REQUIRE(back.geo.nodata.has_value());
  CHECK(*back.geo.nodata == 0.0);

  const copgen::RasterInfo info = copgen::probe_raster(path, "round trip");
  CHECK(info.driver == "GTiff");
  CHECK(info.data_type == "Byte");
  CHECK(info.band_descriptions == std::vector<std::string>{"B04", "B03", "B02"});

  // What GDAL itself sees in the file.
  DatasetPtr ds = gdal_open(path);
  REQUIRE(ds);
  const char* seed = ds->GetMetadataItem("COPGEN_SEED");
  REQUIRE(seed != nullptr);
  CHECK(std::string(seed) == "42");
  CHECK(ds->GetRasterBand(1)->GetColorInterpretation() == GCI_RedBand);
  CHECK(ds->GetRasterBand(2)->GetColorInterpretation() == GCI_GreenBand);
  CHECK(ds->GetRasterBand(3)->GetColorInterpretation() == GCI_BlueBand);
  int bx = 0;
  int by = 0;
  ds->GetRasterBand(1)->GetBlockSize(&bx, &by);
  CHECK(bx == 256);
  CHECK(by == 256);
  const char* compression = ds->GetMetadataItem("COMPRESSION", "IMAGE_STRUCTURE");
  REQUIRE(compression != nullptr);
  CHECK(std::string(compression) == "DEFLATE");
  ds.reset();

  // Only the output itself is left in the directory.
  CHECK(vsi_list_dir(dir.path) == std::vector<std::string>{"l2a.tif"});
}

TEST_CASE("GeoTIFF output is tiled rather than written in full-row strips", "[raster]") {
  VsiMemDir dir;
  const std::string path = dir.file("wide.tif");
  copgen::write_image_u8(path, make_image(300, 280), copgen::WriteOptions{});
  DatasetPtr ds = gdal_open(path);
  REQUIRE(ds);
  int bx = 0;
  int by = 0;
  ds->GetRasterBand(1)->GetBlockSize(&bx, &by);
  CHECK(bx == 256);  // a strip would be 300 wide
  CHECK(by == 256);
  CHECK(copgen::read_image_u8(path, "wide").pixels == make_image(300, 280).pixels);
}

TEST_CASE("images without georeferencing and single-band images", "[raster]") {
  copgen::test::TempDir dir;
  SECTION("PNG input without a world file has no geotransform") {
    const std::string path = dir.file("plain.png");
    copgen::test::SyntheticRaster spec;
    spec.format = "PNG";
    spec.georeferenced = false;
    spec.width = 64;
    spec.height = 48;
    copgen::test::write_synthetic(path, spec);
    const copgen::ImageU8 img = copgen::read_image_u8(path, "S2L1C input");
    CHECK(img.width == 64);
    CHECK(img.height == 48);
    CHECK(img.bands == 3);
    CHECK_FALSE(img.geo.has_geotransform);
    CHECK(img.geo.crs_wkt.empty());
    CHECK_FALSE(img.geo.nodata.has_value());
    CHECK(copgen::probe_raster(path, "S2L1C input").driver == "PNG");
  }
  SECTION("an image without georeferencing is written without any") {
    const std::string path = dir.file("nogeo.tif");
    copgen::ImageU8 img = make_image(32, 16, 1);
    img.geo = copgen::GeoInfo{};
    copgen::write_image_u8(path, img, copgen::WriteOptions{});
    const copgen::ImageU8 back = copgen::read_image_u8(path, "x");
    CHECK(back.pixels == img.pixels);
    CHECK_FALSE(back.geo.has_geotransform);
    CHECK(back.geo.crs_wkt.empty());
    CHECK_FALSE(back.geo.nodata.has_value());
    DatasetPtr ds = gdal_open(path);
    REQUIRE(ds);
    CHECK(ds->GetRasterBand(1)->GetColorInterpretation() == GCI_GrayIndex);
    ds.reset();
    CHECK(copgen::test::list_dir(dir.path) == std::vector<std::string>{"nogeo.tif"});
  }
  SECTION("a georeferenced PNG output keeps its side-car under the final name") {
    const std::string path = dir.file("out.png");
    const copgen::ImageU8 img = make_image(40, 30);
    copgen::WriteOptions options;
    options.format = "PNG";
    copgen::write_image_u8(path, img, options);
    const copgen::ImageU8 back = copgen::read_image_u8(path, "png output");
    CHECK(back.pixels == img.pixels);
    CHECK(back.geo.has_geotransform);
    CHECK(back.geo.geotransform == img.geo.geotransform);
    CHECK(same_crs(back.geo.crs_wkt, "EPSG:32633"));
    for (const std::string& name : copgen::test::list_dir(dir.path)) {
      CHECK(name.find(".tmp-") == std::string::npos);
    }
  }
  SECTION("COG output") {
    const std::string path = dir.file("cog.tif");
    copgen::WriteOptions options;
    options.format = "COG";
    const copgen::ImageU8 img = make_image(64, 64);
    copgen::write_image_u8(path, img, options);
    const copgen::ImageU8 back = copgen::read_image_u8(path, "cog");
    CHECK(back.pixels == img.pixels);
    CHECK(back.geo.geotransform == img.geo.geotransform);
    CHECK(copgen::test::list_dir(dir.path) == std::vector<std::string>{"cog.tif"});
  }
}

TEST_CASE("probe_raster reports a synthetic GeoTIFF's header", "[raster]") {
  copgen::test::TempDir dir;
  const std::string path = dir.file("l1c.tif");
  copgen::test::SyntheticRaster spec;
  spec.width = 80;
  spec.height = 60;
  copgen::test::write_synthetic(path, spec);
  const copgen::RasterInfo info = copgen::probe_raster(path, "S2L1C input");
  CHECK(info.path == path);
  CHECK(info.driver == "GTiff");
  CHECK(info.width == 80);
  CHECK(info.height == 60);
  CHECK(info.bands == 3);
  CHECK(info.data_type == "Byte");
  CHECK(info.band_descriptions == std::vector<std::string>{"", "", ""});
  CHECK(info.geo.has_geotransform);
  CHECK(info.geo.geotransform == spec.geotransform);
  CHECK(same_crs(info.geo.crs_wkt, "EPSG:32633"));
}

TEST_CASE("reading bad inputs throws InputError naming the file and the problem", "[raster]") {
  copgen::test::TempDir dir;

  SECTION("bands that are not Byte") {
    const std::string path = dir.file("float.tif");
    copgen::test::SyntheticRaster spec;
    spec.bands = 1;
    spec.data_type = "Float32";
    spec.width = 16;
    spec.height = 16;
    copgen::test::write_synthetic(path, spec);
    try {
      copgen::read_image_u8(path, "S2L1C input");
      FAIL("expected InputError");
    } catch (const copgen::InputError& e) {
      const std::string msg = e.what();
      CHECK_THAT(msg, Catch::Contains("S2L1C input '" + path + "'"));
      CHECK_THAT(msg, Catch::Contains("1 band of Float32"));
      CHECK_THAT(msg, Catch::Contains("Byte"));
    }
  }
  SECTION("missing file") {
    const std::string path = dir.file("missing.tif");
    const std::string msg = error_message([&] { copgen::read_image_u8(path, "S2L1C input"); });
    CHECK_THAT(msg, Catch::Contains(path));
    CHECK_THAT(msg, Catch::Contains("not found"));
    CHECK_THROWS_AS(copgen::probe_raster(path, "x"), copgen::InputError);
    CHECK_THROWS_AS(copgen::probe_raster("/vsimem/copgen-no-such.tif", "x"), copgen::InputError);
    CHECK_FALSE(copgen::path_exists(path));
  }
  SECTION("a text file named .tif") {
    const std::string path = dir.file("x.tif");
    std::ofstream(path) << "this is not a GeoTIFF\n";
    const std::string msg = error_message([&] { copgen::read_image_u8(path, "S2L1C input"); });
    CHECK_THAT(msg, Catch::Contains(path));
    CHECK_THAT(msg, Catch::Contains("not a raster"));
    CHECK_THROWS_AS(copgen::probe_raster(path, "x"), copgen::InputError);
  }
  SECTION("a truncated GeoTIFF") {
    const std::string path = dir.file("truncated.tif");
    copgen::test::write_synthetic(path, copgen::test::SyntheticRaster{});
    const auto size = fs::file_size(path);
    fs::resize_file(path, size / 2);
    try {
      copgen::read_image_u8(path, "S2L1C input");
      FAIL("expected InputError");
    } catch (const copgen::InputError& e) {
      CHECK_THAT(e.what(), Catch::Contains(path));
    }
  }
}

TEST_CASE("write_image_u8 failures are OutputErrors that leave nothing behind", "[raster]") {
  copgen::test::TempDir dir;
  const copgen::ImageU8 img = make_image(32, 32);

  SECTION("nonexistent directory") {
    const std::string missing_dir = dir.file("no-such-dir");
    const std::string path = missing_dir + "/out.tif";
    try {
      copgen::write_image_u8(path, img, copgen::WriteOptions{});
      FAIL("expected OutputError");
    } catch (const copgen::OutputError& e) {
      CHECK_THAT(e.what(), Catch::Contains(path));
      CHECK_THAT(e.what(), Catch::Contains("'" + missing_dir + "'"));
    }
    CHECK_FALSE(copgen::test::file_exists(path));
    CHECK(copgen::test::list_dir(dir.path).empty());
  }
  SECTION("overwrite=false on an existing file") {
    const std::string path = dir.file("existing.tif");
    std::ofstream(path) << "precious";
    copgen::WriteOptions options;
    options.overwrite = false;
    try {
      copgen::write_image_u8(path, img, options);
      FAIL("expected OutputError");
    } catch (const copgen::OutputError& e) {
      CHECK_THAT(e.what(), Catch::Contains("output '" + path + "' exists (use --overwrite)"));
    }
    CHECK(copgen::test::read_file_bytes(path) == "precious");
    CHECK(copgen::test::list_dir(dir.path) == std::vector<std::string>{"existing.tif"});
  }
  SECTION("overwrite=true replaces an existing file") {
    const std::string path = dir.file("existing.tif");
    std::ofstream(path) << "old";
    copgen::write_image_u8(path, img, copgen::WriteOptions{});
    CHECK(copgen::read_image_u8(path, "x").pixels == img.pixels);
    CHECK(copgen::test::list_dir(dir.path) == std::vector<std::string>{"existing.tif"});
  }
  SECTION("pixel buffer of the wrong size") {
    copgen::ImageU8 bad = img;
    bad.pixels.pop_back();
    const std::string path = dir.file("bad.tif");
    CHECK_THROWS_AS(copgen::write_image_u8(path, bad, copgen::WriteOptions{}), copgen::OutputError);
    copgen::ImageU8 empty;
    CHECK_THROWS_AS(copgen::write_image_u8(path, empty, copgen::WriteOptions{}),
                    copgen::OutputError);
    CHECK(copgen::test::list_dir(dir.path).empty());
  }
  SECTION("unknown format and invalid CRS") {
    const std::string path = dir.file("bad.tif");
    copgen::WriteOptions options;
    options.format = "NoSuchDriver";
    const std::string msg = error_message([&] { copgen::write_image_u8(path, img, options); });
    CHECK_THAT(msg, Catch::Contains(path));
    CHECK_THAT(msg, Catch::Contains("NoSuchDriver"));
    copgen::ImageU8 bad_crs = img;
    bad_crs.geo.crs_wkt = "not a crs";
    CHECK_THROWS_AS(copgen::write_image_u8(path, bad_crs, copgen::WriteOptions{}),
                    copgen::OutputError);
    CHECK(copgen::test::list_dir(dir.path).empty());
  }
  SECTION("successful writes leave no temporary file") {
    copgen::write_image_u8(dir.file("a.tif"), img, copgen::WriteOptions{});
    copgen::write_image_u8(dir.file("b.tif"), img, copgen::WriteOptions{});
    copgen::write_image_u8(dir.file("a.tif"), img, copgen::WriteOptions{});
    CHECK(copgen::test::list_dir(dir.path) == std::vector<std::string>{"a.tif", "b.tif"});
  }
}
