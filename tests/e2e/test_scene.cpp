// Scenes through the real binary: any size, alignment across CRSs, nodata, COG, fusion.
#include "catch_torch.hpp"

#include <cmath>
#include <filesystem>

#include <gdal_priv.h>
#include <ogr_spatialref.h>

#include "copgen/models.hpp"
#include "copgen/pipeline.hpp"
#include "copgen/raster_scene.hpp"
#include "support.hpp"

using namespace copgen::test;

namespace {

struct Ds {
  explicit Ds(const std::string& p) {
    GDALAllRegister();
    ds = static_cast<GDALDataset*>(GDALOpen(p.c_str(), GA_ReadOnly));
  }
  ~Ds() {
    if (ds) GDALClose(ds);
  }
  GDALDataset* ds = nullptr;
};

std::vector<uint8_t> band(GDALDataset* ds, int b) {
  std::vector<uint8_t> v(static_cast<size_t>(ds->GetRasterXSize()) * ds->GetRasterYSize());
  REQUIRE(ds->GetRasterBand(b)->RasterIO(GF_Read, 0, 0, ds->GetRasterXSize(), ds->GetRasterYSize(), v.data(),
                                         ds->GetRasterXSize(), ds->GetRasterYSize(), GDT_Byte, 0, 0) == CE_None);
  return v;
}

const std::string kFast = " --steps 2 --seed 3 --batch-size 16 ";

}  // namespace

TEST_CASE("scene: a 1000 x 700 scene comes back at its size and georeferencing", "[scene]") {
  TempDir tmp;
  SyntheticRaster spec;
  spec.width = 1000;
  spec.height = 700;
  write_synthetic(tmp.file("s.tif"), spec);
  const auto r = run_copgen("translate --from S2L1C --to S2L2A,DEM -i " + quote(tmp.file("s.tif")) + " -o " +
                            quote(tmp.file("out/")) + kFast);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  for (const char* name : {"out/S2L2A.tif", "out/DEM.tif"}) {
    Ds o(tmp.file(name)), i(tmp.file("s.tif"));
    REQUIRE(o.ds != nullptr);
    CHECK(o.ds->GetRasterXSize() == 1000);
    CHECK(o.ds->GetRasterYSize() == 700);
    std::array<double, 6> a{}, b{};
    o.ds->GetGeoTransform(a.data());
    i.ds->GetGeoTransform(b.data());
    CHECK(a == b);
    CHECK(o.ds->GetSpatialRef()->IsSame(i.ds->GetSpatialRef()));
    CHECK(std::string(o.ds->GetMetadataItem("COPGEN_TILING")) == "fused");
  }
  // no work files left beside the outputs
  CHECK((list_dir(tmp.file("out")) == std::vector<std::string>{"DEM.tif", "S2L2A.tif"}));
}

TEST_CASE("scene: fused sampling of a one-window scene equals plain sampling", "[scene]") {
  TempDir tmp;
  write_synthetic(tmp.file("t.tif"), SyntheticRaster{});
  copgen::ModelOptions mo;
  mo.device = "cpu";
  copgen::Models models = copgen::Models::load(COPGEN_TEST_MODELS, mo);
  copgen::TranslateOptions o;
  o.inputs = {{copgen::Modality::S2L1C, tmp.file("t.tif")}};
  o.to = {copgen::Modality::S2L2A};
  o.sampler.steps = 3;
  o.seed = 9;
  o.output = tmp.file("plain.tif");
  copgen::translate(o, models);
  o.output = tmp.file("fused.tif");
  copgen::translate_scene(o, models);  // the scene path, though the input is a tile
  Ds a(tmp.file("plain.tif")), b(tmp.file("fused.tif"));
  for (int k = 1; k <= 3; ++k) CHECK(band(a.ds, k) == band(b.ds, k));
}

TEST_CASE("scene: fused tiling has smaller seams than independent tiling", "[scene]") {
  TempDir tmp;
  SyntheticRaster spec;
  spec.width = 448;
  spec.height = 256;
  write_synthetic(tmp.file("s.tif"), spec);
  copgen::ModelOptions mo;
  mo.device = "cpu";
  copgen::Models models = copgen::Models::load(COPGEN_TEST_MODELS, mo);
  // Two windows side by side (x = 0 and x = 192 px, 64 px overlap). The seam statistic is
  // the mean absolute difference between horizontally adjacent pixels across the columns
  // where the windows meet, relative to the same statistic inside the windows.
  auto seam = [&](copgen::Tiling tiling, const std::string& name) {
    copgen::TranslateOptions o;
    o.inputs = {{copgen::Modality::S2L1C, tmp.file("s.tif")}};
    o.to = {copgen::Modality::S2L2A};
    o.sampler.steps = 4;
    o.seed = 5;
    o.batch_size = 2;
    o.scene.tiling = tiling;
    o.output = tmp.file(name);
    copgen::translate(o, models);
    Ds d(tmp.file(name));
    double across = 0, inside = 0;
    int na = 0, ni = 0;
    for (int b = 1; b <= 3; ++b) {
      const auto v = band(d.ds, b);
      for (int y = 0; y < 256; ++y) {
        for (int x = 1; x < 448; ++x) {
          const double diff = std::abs(double(v[y * 448 + x]) - double(v[y * 448 + x - 1]));
          if (x >= 192 && x < 256) across += diff, ++na;
          else inside += diff, ++ni;
        }
      }
    }
    return (across / na) / (inside / ni);
  };
  const double fused = seam(copgen::Tiling::Fused, "fused.tif");
  const double independent = seam(copgen::Tiling::Independent, "independent.tif");
  INFO("fused " << fused << " independent " << independent);
  CHECK(fused < independent);
}

TEST_CASE("scene: inputs in different UTM zones and resolutions are aligned onto one grid", "[scene]") {
  // an S2 thumbnail in UTM 33N at 10 m, and the same area as a DEM in UTM 34N at 30 m
  TempDir tmp;
  SyntheticRaster s2;
  s2.width = 300;
  s2.height = 280;
  s2.geotransform = {700000.0, 10.0, 0.0, 5000000.0, 0.0, -10.0};
  write_synthetic(tmp.file("s2.tif"), s2);
  // the S2 scene's corners in zone 34
  OGRSpatialReference z33, z34;
  z33.importFromEPSG(32633);
  z34.importFromEPSG(32634);
  z33.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
  z34.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
  std::unique_ptr<OGRCoordinateTransformation> ct(OGRCreateCoordinateTransformation(&z33, &z34));
  double x = 700000.0 - 500.0, y = 5000000.0 + 500.0;
  ct->Transform(1, &x, &y);
  SyntheticRaster dem;
  dem.bands = 1;
  dem.data_type = "Float32";
  dem.epsg = "EPSG:32634";
  dem.width = 150;
  dem.height = 150;
  dem.geotransform = {x - 200.0, 30.0, 0.0, y + 200.0, 0.0, -30.0};
  write_synthetic(tmp.file("dem.tif"), dem);

  const auto r = run_copgen("translate --from DEM,S2L1C -i " + quote(tmp.file("dem.tif")) + " -i " +
                            quote(tmp.file("s2.tif")) + " --to S2L2A -o " + quote(tmp.file("o.tif")) + kFast);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  Ds o(tmp.file("o.tif"));
  std::array<double, 6> gt{};
  o.ds->GetGeoTransform(gt.data());
  // the 10 m S2 input defines the grid: its CRS, resolution and pixel corners
  CHECK(gt[1] == 10.0);
  CHECK(gt[5] == -10.0);
  CHECK(std::fmod(gt[0] - 700000.0, 10.0) == Approx(0.0).margin(1e-6));
  CHECK(o.ds->GetSpatialRef()->IsSame(&z33));
  // the intersection lies inside the S2 scene, so the output is no larger
  CHECK(o.ds->GetRasterXSize() <= 300);
  CHECK(o.ds->GetRasterYSize() <= 280);
  CHECK(o.ds->GetRasterXSize() > 200);
  // a known pixel: the output's top-left corner lies on the S2 grid at a whole pixel
  const double col = (gt[0] - 700000.0) / 10.0, row = (5000000.0 - gt[3]) / 10.0;
  CHECK(col == std::round(col));
  CHECK(row == std::round(row));
  CHECK_THAT(r.output, Catch::Contains("physical bands"));  // the Float32 DEM was detected as elevation
}

TEST_CASE("scene: inputs that do not overlap are an input error", "[scene][errors]") {
  TempDir tmp;
  SyntheticRaster a, b;
  a.width = b.width = 300;
  b.geotransform = {900000.0, 10.0, 0.0, 5000000.0, 0.0, -10.0};
  write_synthetic(tmp.file("a.tif"), a);
  write_synthetic(tmp.file("b.tif"), b);
  const auto r = run_copgen("translate --from S1RTC,S2L1C -i " + quote(tmp.file("a.tif")) + " -i " +
                            quote(tmp.file("b.tif")) + " --to DEM -o " + quote(tmp.file("o.tif")) + kFast);
  CHECK(r.exit_code == 3);
  CHECK_THAT(r.output, Catch::Contains("do not overlap") && Catch::Contains("a.tif"));
  CHECK_FALSE(file_exists(tmp.file("o.tif")));
}

TEST_CASE("scene: nodata in a given input is nodata in the output and COG layout", "[scene]") {
  TempDir tmp;
  // a 300 x 260 thumbnail whose left 50 columns are nodata (0)
  SyntheticRaster spec;
  spec.width = 300;
  spec.height = 260;
  write_synthetic(tmp.file("s.tif"), spec);
  {
    GDALAllRegister();
    GDALDataset* ds = static_cast<GDALDataset*>(GDALOpen(tmp.file("s.tif").c_str(), GA_Update));
    std::vector<uint8_t> zeros(50 * 260, 0);
    for (int b = 1; b <= 3; ++b) {
      ds->GetRasterBand(b)->SetNoDataValue(0);
      REQUIRE(ds->GetRasterBand(b)->RasterIO(GF_Write, 0, 0, 50, 260, zeros.data(), 50, 260, GDT_Byte, 0, 0) == CE_None);
    }
    GDALClose(ds);
  }
  auto r = run_copgen("translate --from S2L1C --to S2L2A -i " + quote(tmp.file("s.tif")) + " -o " +
                      quote(tmp.file("o.tif")) + " --format COG" + kFast);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  Ds o(tmp.file("o.tif"));
  REQUIRE(o.ds != nullptr);
  // COG: tiled with overviews, as GDAL reports it
  CHECK(std::string(o.ds->GetMetadataItem("LAYOUT", "IMAGE_STRUCTURE")) == "COG");
  CHECK(o.ds->GetRasterBand(1)->GetOverviewCount() >= 1);
  std::vector<uint8_t> mask(300 * 260);
  REQUIRE(o.ds->GetRasterBand(1)->GetMaskBand()->RasterIO(GF_Read, 0, 0, 300, 260, mask.data(), 300, 260, GDT_Byte,
                                                          0, 0) == CE_None);
  const auto px = band(o.ds, 1);
  int masked_left = 0, valid_right = 0, zero_left = 0;
  for (int y = 0; y < 260; ++y) {
    for (int x = 0; x < 50; ++x) masked_left += mask[y * 300 + x] == 0, zero_left += px[y * 300 + x] == 0;
    for (int x = 50; x < 300; ++x) valid_right += mask[y * 300 + x] != 0;
  }
  CHECK(masked_left == 50 * 260);
  CHECK(zero_left == 50 * 260);
  CHECK(valid_right == 250 * 260);

  // --fill-nodata generates there instead
  r = run_copgen("translate --from S2L1C --to S2L2A -i " + quote(tmp.file("s.tif")) + " -o " +
                 quote(tmp.file("f.tif")) + " --fill-nodata" + kFast);
  REQUIRE(r.exit_code == 0);
  Ds f(tmp.file("f.tif"));
  CHECK((f.ds->GetRasterBand(1)->GetMaskFlags() & GMF_ALL_VALID) != 0);
}

TEST_CASE("scene: physical bands in a Major TOM product folder are rendered and translated", "[scene]") {
  TempDir tmp;
  namespace fs = std::filesystem;
  fs::create_directories(tmp.file("s2/prod"));
  fs::create_directories(tmp.file("s1/prod"));
  for (const char* b : {"B04", "B03", "B02"}) {
    SyntheticRaster band;
    band.bands = 1;
    band.data_type = "UInt16";
    band.width = 300;
    band.height = 300;
    band.seed = b[2];
    write_synthetic(tmp.file(std::string("s2/prod/") + b + ".tif"), band);
  }
  for (const char* b : {"vv", "vh"}) {
    SyntheticRaster band;
    band.bands = 1;
    band.data_type = "Float32";
    band.width = 300;
    band.height = 300;
    write_synthetic(tmp.file(std::string("s1/prod/") + b + ".tif"), band);
  }
  auto r = run_command(quote(COPGEN_BIN) + " render --modality S2L2A -i " + quote(tmp.file("s2/prod")) + " -o " +
                       quote(tmp.file("thumb.tif")));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  Ds t(tmp.file("thumb.tif"));
  CHECK(t.ds->GetRasterXSize() == 300);
  CHECK(t.ds->GetRasterCount() == 3);
  CHECK(t.ds->GetRasterBand(1)->GetRasterDataType() == GDT_Byte);
  CHECK(std::string(t.ds->GetMetadataItem("COPGEN_INPUT_KIND")) == "physical");

  r = run_copgen("translate --from S1RTC,S2L2A -i " + quote(tmp.file("s1/prod")) + " -i " + quote(tmp.file("s2/prod")) +
                 " --to S2L1C -o " + quote(tmp.file("o.tif")) + " --output-kind physical" + kFast);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("physical bands"));
  Ds o(tmp.file("o.tif"));
  CHECK(o.ds->GetRasterCount() == 4);
  CHECK(o.ds->GetRasterBand(1)->GetRasterDataType() == GDT_UInt16);
  CHECK(std::string(o.ds->GetRasterBand(1)->GetDescription()) == "B04");
  CHECK(std::string(o.ds->GetMetadataItem("COPGEN_INPUT_KINDS")) == "S1RTC:physical,S2L2A:physical");
}
