// Inputs in degrees through the real binary (docs/scenes.md, "Inputs in degrees"): with no
// projected CRS among the inputs copgen grids them in the UTM zone of their centre, logs
// it and records it as COPGEN_GRID_CRS_CHOSEN.
#include "catch_torch.hpp"

#include <array>
#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include <gdal_priv.h>
#include <ogr_spatialref.h>

#include "support.hpp"

using namespace copgen::test;

namespace {

// A GLO-30-like DEM in EPSG:4326: 72 x 72 pixels of 1 arc-second from 46.02 N, 7 E.
std::string dem4326(const TempDir& tmp) {
  SyntheticRaster dem;
  dem.width = dem.height = 72;
  dem.bands = 1;
  dem.data_type = "Float32";
  dem.epsg = "EPSG:4326";
  dem.geotransform = {7.0, 1.0 / 3600, 0.0, 46.02, 0.0, -1.0 / 3600};
  write_synthetic(tmp.file("dem4326.tif"), dem);
  return tmp.file("dem4326.tif");
}

// Checks that `path` is on a 10 m grid in EPSG:32632 that copgen chose and recorded.
void check_chosen_utm32(const std::string& path) {
  Ds o(path);
  REQUIRE(o.ds != nullptr);
  OGRSpatialReference utm32;
  utm32.importFromEPSG(32632);
  REQUIRE(o.ds->GetSpatialRef() != nullptr);
  CHECK(o.ds->GetSpatialRef()->IsSame(&utm32));
  std::array<double, 6> gt{};
  o.ds->GetGeoTransform(gt.data());
  CHECK(gt[1] == 10.0);
  CHECK(gt[5] == -10.0);
  const char* chosen = o.ds->GetMetadataItem("COPGEN_GRID_CRS_CHOSEN");
  REQUIRE(chosen != nullptr);
  CHECK(std::string(chosen).rfind("EPSG:32632 (UTM zone 32N, the centre of the inputs at 7.0100 E, 46.0100 N; no "
                                  "input has a projected CRS)",
                                  0) == 0);
}

}  // namespace

TEST_CASE("geographic inputs: copgen render of an EPSG:4326 DEM alone grids it in its UTM zone",
          "[scene][geographic]") {
  TempDir tmp;
  const std::string dem = dem4326(tmp);
  const auto r = run_copgen("render --modality DEM -i " + quote(dem) + " -o " + quote(tmp.file("out.tif")));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("grid CRS chosen by copgen: EPSG:32632 (UTM zone 32N") != std::string::npos);
  CHECK(r.output.find("--target-crs sets another") != std::string::npos);
  check_chosen_utm32(tmp.file("out.tif"));
  // a hillshade, not a blank: valid pixels of more than one grey level
  Ds o(tmp.file("out.tif"));
  const auto grey = band(o.ds, 1);
  std::vector<std::uint8_t> mask(grey.size());
  GDALRasterBand* b = o.ds->GetRasterBand(1);
  REQUIRE(b->GetMaskBand()->RasterIO(GF_Read, 0, 0, b->GetXSize(), b->GetYSize(), mask.data(), b->GetXSize(),
                                     b->GetYSize(), GDT_Byte, 0, 0) == CE_None);
  std::set<int> levels;
  size_t valid = 0;
  for (size_t i = 0; i < grey.size(); ++i) {
    if (mask[i] != 0) ++valid, levels.insert(grey[i]);
  }
  CHECK(valid > grey.size() / 2);
  CHECK(levels.size() > 10);
}

TEST_CASE("geographic inputs: translate from an EPSG:4326 DEM alone", "[scene][geographic]") {
  TempDir tmp;
  const std::string dem = dem4326(tmp);
  SECTION("runs and records the chosen CRS") {
    const auto r = run_copgen("translate --from DEM --to S2L2A -i " + quote(dem) + " -o " + quote(tmp.file("o.tif")) +
                              " --steps 2 --seed 1");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    check_chosen_utm32(tmp.file("o.tif"));
  }
  SECTION("--dry-run names the chosen CRS") {
    const auto r = run_copgen("translate --from DEM --to S2L2A -i " + quote(dem) + " -o " + quote(tmp.file("o.tif")) +
                              " --dry-run");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK(r.output.find("10 x 10 m pixels from") != std::string::npos);
    CHECK(r.output.find(", in EPSG:32632 (UTM zone 32N") != std::string::npos);
  }
  SECTION("--target-crs overrides the choice, and records none") {
    const auto r = run_copgen("render --modality DEM -i " + quote(dem) + " --target-crs EPSG:32633 -o " +
                              quote(tmp.file("o33.tif")));
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    Ds o(tmp.file("o33.tif"));
    OGRSpatialReference utm33;
    utm33.importFromEPSG(32633);
    CHECK(o.ds->GetSpatialRef()->IsSame(&utm33));
    CHECK(o.ds->GetMetadataItem("COPGEN_GRID_CRS_CHOSEN") == nullptr);
  }
  SECTION("a geographic --target-crs is a usage error that names the zone to pass") {
    expect_copgen_failure("render --modality DEM -i " + quote(dem) + " --target-crs EPSG:4326 -o " +
                              quote(tmp.file("o.tif")),
                          2, {"--target-crs 'EPSG:4326'", "geographic", "--target-crs EPSG:32632 (UTM zone 32N"},
                          tmp.path);
  }
}

TEST_CASE("geographic inputs: an S2 scene in EPSG:4326 alone", "[scene][geographic]") {
  TempDir tmp;
  SyntheticRaster s2;  // 300 x 300 pixels of 0.0001 degree from 45 N, 10 E
  s2.width = s2.height = 300;
  s2.epsg = "EPSG:4326";
  s2.geotransform = {10.0, 0.0001, 0.0, 45.0, 0.0, -0.0001};
  write_synthetic(tmp.file("s2.tif"), s2);
  const auto r = run_copgen("translate --from S2L1C --to S2L2A -i " + quote(tmp.file("s2.tif")) + " -o " +
                            quote(tmp.file("o.tif")) + " --steps 2 --seed 1");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  Ds o(tmp.file("o.tif"));
  OGRSpatialReference utm32;
  utm32.importFromEPSG(32632);
  CHECK(o.ds->GetSpatialRef()->IsSame(&utm32));
  CHECK(std::string(o.ds->GetMetadataItem("COPGEN_GRID_CRS_CHOSEN")).rfind("EPSG:32632 (UTM zone 32N", 0) == 0);
}
