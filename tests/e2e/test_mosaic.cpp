// A region across two tiles through the real binary (docs/scenes.md, "A region across two
// tiles"): two S2 band sets (or two items of a saved search) side by side, a --projwin over
// their border, rendered and translated as one mosaic; the overlap as --mosaic-order says;
// the log names each part with what it covers; what cannot be a mosaic is refused.
#include "catch_torch.hpp"

#include <array>
#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include <gdal_priv.h>
#include <nlohmann/json.hpp>
#include <ogr_spatialref.h>

#include "support.hpp"

using namespace copgen::test;
using nlohmann::json;

namespace {

// A 300 x 200 S2 scene of UInt16 DNs (B04, B03, B02) at 10 m from (x0, y0) in `epsg`.
std::string s2_scene(const TempDir& tmp, const std::string& name, double x0, double y0, int seed,
                     const std::string& epsg = "EPSG:32633") {
  SyntheticRaster s;
  s.width = 300;
  s.height = 200;
  s.bands = 3;
  s.data_type = "UInt16";
  s.epsg = epsg;
  s.seed = seed;
  s.geotransform = {x0, 10.0, 0.0, y0, 0.0, -10.0};
  write_synthetic(tmp.file(name), s);
  return tmp.file(name);
}

// The same scene as three single-band files, for a STAC item's assets.
void s2_band_files(const TempDir& tmp, const std::string& stem, double x0, double y0, int seed) {
  for (int b = 0; b < 3; ++b) {
    SyntheticRaster s;
    s.width = 300;
    s.height = 200;
    s.bands = 1;
    s.data_type = "UInt16";
    s.seed = seed + b;
    s.geotransform = {x0, 10.0, 0.0, y0, 0.0, -10.0};
    write_synthetic(tmp.file(stem + "_" + std::string(b == 0 ? "B04" : b == 1 ? "B03" : "B02") + ".tif"), s);
  }
}

json s2_item(const std::string& id, const std::string& stem, const std::string& datetime) {
  json assets;
  for (const std::string b : {"B04", "B03", "B02"}) {
    assets[b] = {{"href", stem + "_" + b + ".tif"}, {"type", "image/tiff; application=geotiff"}, {"roles", {"data"}}};
  }
  return {{"type", "Feature"},
          {"stac_version", "1.0.0"},
          {"id", id},
          {"collection", "sentinel-2-l2a"},
          {"geometry", nullptr},
          {"properties", {{"datetime", datetime}}},
          {"links", json::array()},
          {"assets", assets}};
}

struct Rendered {
  int width = 0, height = 0;
  std::array<double, 6> gt{};
  std::vector<std::vector<std::uint8_t>> rgb;  // 3 bands
  std::vector<std::uint8_t> mask;
  std::string mosaic;  // COPGEN_MOSAIC
};

Rendered read_rendered(const std::string& path) {
  Rendered r;
  Ds o(path);
  REQUIRE(o.ds != nullptr);
  r.width = o.ds->GetRasterXSize();
  r.height = o.ds->GetRasterYSize();
  o.ds->GetGeoTransform(r.gt.data());
  for (int b = 1; b <= 3; ++b) r.rgb.push_back(band(o.ds, b));
  r.mask.resize(static_cast<size_t>(r.width) * r.height);
  REQUIRE(o.ds->GetRasterBand(1)->GetMaskBand()->RasterIO(GF_Read, 0, 0, r.width, r.height, r.mask.data(), r.width,
                                                          r.height, GDT_Byte, 0, 0) == CE_None);
  if (const char* m = o.ds->GetMetadataItem("COPGEN_MOSAIC")) r.mosaic = m;
  return r;
}

// Whether columns [c0, c1) of a and b hold the same pixels and masks.
bool same_columns(const Rendered& a, const Rendered& b, int c0, int c1) {
  for (int y = 0; y < a.height; ++y) {
    for (int x = c0; x < c1; ++x) {
      const size_t i = static_cast<size_t>(y) * a.width + x;
      if (a.mask[i] != b.mask[i]) return false;
      for (int k = 0; k < 3; ++k) {
        if (a.rgb[k][i] != b.rgb[k][i]) return false;
      }
    }
  }
  return true;
}

std::size_t valid_count(const Rendered& r) {
  std::size_t n = 0;
  for (std::uint8_t m : r.mask) n += m != 0;
  return n;
}

// A 500000..503000 and B 502000..505000 (x, UTM 33N), both 5000000..4998000 (y); the region
// 501000..504000: A alone in its columns 0-99, both in 100-199, B alone in 200-299.
const std::string kRegion = " --projwin 501000 5000000 504000 4998000";

}  // namespace

TEST_CASE("mosaic: copgen render of two band sets across their border, listed and recent", "[mosaic]") {
  TempDir tmp;
  const std::string a = s2_scene(tmp, "A_20230601T100000.tif", 500000, 5000000, 1);
  const std::string b = s2_scene(tmp, "B_20240601T100000.tif", 502000, 5000000, 2);
  const std::string render = "render --modality S2L2A" + kRegion;
  for (const auto& [name, args] : std::vector<std::pair<std::string, std::string>>{
           {"a.tif", " -i " + quote(a)},
           {"b.tif", " -i " + quote(b)},
           {"listed.tif", " -i " + quote(a) + " -i " + quote(b)},
           {"recent.tif", " -i " + quote(a) + " -i " + quote(b) + " --mosaic-order recent"}}) {
    const auto r = run_copgen(render + args + " -o " + quote(tmp.file(name)));
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    if (name == "listed.tif") {
      CHECK_THAT(r.output, Catch::Contains("S2L2A: a mosaic of 2 inputs, top first (--mosaic-order listed: as "
                                           "given): '" + a + "' (2023-06-01T10:00:00), '" + b +
                                           "' (2024-06-01T10:00:00)"));
      CHECK_THAT(r.output, Catch::Contains("S2L2A: 2 of 2 items cover the region: '" + a +
                                           "' (66.7% of the region; on top in 66.7%), '" + b +
                                           "' (66.7% of the region; on top in 33.3%)"));
    }
    if (name == "recent.tif") {
      CHECK_THAT(r.output, Catch::Contains("S2L2A: 2 of 2 items cover the region: '" + b +
                                           "' (66.7% of the region; on top in 66.7%), '" + a +
                                           "' (66.7% of the region; on top in 33.3%)"));
    }
  }
  const Rendered ra = read_rendered(tmp.file("a.tif")), rb = read_rendered(tmp.file("b.tif"));
  const Rendered listed = read_rendered(tmp.file("listed.tif")), recent = read_rendered(tmp.file("recent.tif"));
  REQUIRE(listed.width == 300);
  REQUIRE(listed.height == 200);
  CHECK(listed.gt == ra.gt);
  CHECK(listed.gt == rb.gt);
  CHECK(listed.gt[0] == 501000.0);
  // alone, each leaves a third of the region nodata; the mosaic none
  CHECK(valid_count(ra) == 200u * 200u);
  CHECK(valid_count(rb) == 200u * 200u);
  CHECK(valid_count(listed) == 300u * 200u);
  CHECK(valid_count(recent) == 300u * 200u);
  // each side is what its tile alone renders, exactly; the overlap follows the order
  CHECK(same_columns(listed, ra, 0, 200));
  CHECK(same_columns(listed, rb, 200, 300));
  CHECK(same_columns(recent, ra, 0, 100));
  CHECK(same_columns(recent, rb, 100, 300));
  CHECK_FALSE(same_columns(ra, rb, 100, 200));  // so the two orders differ there
  CHECK(listed.mosaic == "S2L2A: '" + a + "' over '" + b + "' (--mosaic-order listed)");
  CHECK(recent.mosaic == "S2L2A: '" + b + "' over '" + a + "' (--mosaic-order recent)");
}

TEST_CASE("mosaic: two items of a saved search, the most recent on top", "[mosaic][stac]") {
  TempDir tmp;
  s2_band_files(tmp, "a", 500000, 5000000, 1);
  s2_band_files(tmp, "b", 502000, 5000000, 11);
  const json search = {{"type", "FeatureCollection"},
                       {"features", {s2_item("S2A_T33_OLD", "a", "2023-06-01T10:00:00.024Z"),
                                     s2_item("S2B_T33_NEW", "b", "2024-06-01T10:00:00Z")}}};
  std::ofstream(tmp.file("s2.json")) << search.dump(2);
  const std::string one = quote(tmp.file("s2.json") + "#S2A_T33_OLD"), two = quote(tmp.file("s2.json") + "#S2B_T33_NEW");
  const std::string render = "render --modality S2L2A" + kRegion;
  REQUIRE(run_copgen(render + " -i " + one + " -o " + quote(tmp.file("a.tif"))).exit_code == 0);
  REQUIRE(run_copgen(render + " -i " + two + " -o " + quote(tmp.file("b.tif"))).exit_code == 0);
  const auto r = run_copgen(render + " -i " + one + " -i " + two + " --mosaic-order recent -o " +
                            quote(tmp.file("m.tif")));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("top first (--mosaic-order recent: the most recent first): '" +
                                       tmp.file("s2.json") + "#S2B_T33_NEW' (2024-06-01T10:00:00), '" +
                                       tmp.file("s2.json") + "#S2A_T33_OLD' (2023-06-01T10:00:00)"));
  CHECK_THAT(r.output, Catch::Contains("S2L2A: 2 of 2 items cover the region: '" + tmp.file("s2.json") +
                                       "#S2B_T33_NEW' (66.7% of the region; on top in 66.7%)"));
  const Rendered m = read_rendered(tmp.file("m.tif"));
  CHECK(valid_count(m) == 300u * 200u);
  CHECK(same_columns(m, read_rendered(tmp.file("a.tif")), 0, 100));
  CHECK(same_columns(m, read_rendered(tmp.file("b.tif")), 100, 300));
}

TEST_CASE("mosaic: tiles in two UTM zones are warped onto the top one's grid", "[mosaic]") {
  TempDir tmp;
  // A in zone 32 just west of 12 E, B in zone 33 just east of it, overlapping by about 1.5 km
  const std::string a = s2_scene(tmp, "a32.tif", 730000, 5099000, 1, "EPSG:32632");
  const std::string b = s2_scene(tmp, "b33.tif", 266500, 5099000, 2, "EPSG:32633");
  const std::string region = " --projwin 731000 5098800 734000 5097200";
  const std::string render = "render --modality S2L2A" + region;
  REQUIRE(run_copgen(render + " -i " + quote(a) + " -o " + quote(tmp.file("a.tif"))).exit_code == 0);
  const auto r = run_copgen(render + " -i " + quote(a) + " -i " + quote(b) + " -o " + quote(tmp.file("m.tif")));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("S2L2A: 2 of 2 items cover the region: '" + a +
                                       "' (66.7% of the region; on top in 66.7%), '" + b + "' ("));
  const Rendered m = read_rendered(tmp.file("m.tif")), ra = read_rendered(tmp.file("a.tif"));
  REQUIRE(m.width == 300);
  REQUIRE(m.height == 160);
  Ds o(tmp.file("m.tif"));
  OGRSpatialReference utm32;
  utm32.importFromEPSG(32632);
  CHECK(o.ds->GetSpatialRef()->IsSame(&utm32));
  CHECK(valid_count(m) == 300u * 160u);  // B fills the zone-33 side
  CHECK(valid_count(ra) == 200u * 160u);
  CHECK(same_columns(m, ra, 0, 200));  // A on its own pixels
}

TEST_CASE("mosaic: translate from two tiles across their border", "[mosaic]") {
  TempDir tmp;
  const std::string a = s2_scene(tmp, "a.tif", 500000, 5000000, 1);
  const std::string b = s2_scene(tmp, "b.tif", 502000, 5000000, 2);
  const std::string c = s2_scene(tmp, "far.tif", 520000, 5000000, 3);  // 15 km east: not in the region
  const std::string common = "translate --to S2L1C --steps 2 --seed 1" + kRegion;
  const auto alone = run_copgen(common + " --input S2L2A=" + quote(a) + " -o " + quote(tmp.file("alone.tif")));
  INFO(alone.output);
  REQUIRE(alone.exit_code == 0);
  const auto r = run_copgen(common + " --input S2L2A=" + quote(a) + " --input S2L2A=" + quote(b) +
                            " --input S2L2A=" + quote(c) + " -o " + quote(tmp.file("m.tif")));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("S2L2A: 2 of 3 items cover the region: '" + a +
                                       "' (66.7% of the region; on top in 66.7%), '" + b +
                                       "' (66.7% of the region; on top in 33.3%), '" + c +
                                       "' (0.0% of the region; on top in 0.0%)"));
  CHECK_THAT(r.output, Catch::Contains("S2L2A input '" + c + "' covers none of the region"));
  const Rendered ra = read_rendered(tmp.file("alone.tif")), m = read_rendered(tmp.file("m.tif"));
  CHECK(valid_count(ra) == 200u * 200u);  // the tile alone: B's third is nodata
  CHECK(valid_count(m) == 300u * 200u);   // the mosaic: nodata nowhere
  CHECK(m.gt == ra.gt);
  CHECK(m.mosaic == "S2L2A: '" + a + "' over '" + b + "' over '" + c + "' (--mosaic-order listed)");
}

TEST_CASE("mosaic: what cannot be one is refused", "[mosaic]") {
  TempDir tmp;
  SyntheticRaster thumb;  // 256 x 256 Byte thumbnails: the tile path
  write_synthetic(tmp.file("t1.tif"), thumb);
  write_synthetic(tmp.file("t2.tif"), thumb);
  const std::string a = s2_scene(tmp, "a.tif", 500000, 5000000, 1);
  const std::string b = s2_scene(tmp, "b.tif", 502000, 5000000, 2);
  const std::string o = " -o " + quote(tmp.file("o.tif"));
  SECTION("tiles of the tile path") {
    expect_copgen_failure("translate --to DEM --input S2L2A=" + quote(tmp.file("t1.tif")) + " --input S2L2A=" +
                              quote(tmp.file("t2.tif")) + o,
                          2, {"--input: S2L2A is given more than once, a mosaic", "scene path only", "--projwin"},
                          tmp.path);
  }
  SECTION("--mosaic-order recent without dates") {
    expect_copgen_failure("render --modality S2L2A -i " + quote(a) + " -i " + quote(b) + " --mosaic-order recent" +
                              kRegion + o,
                          2, {"--mosaic-order recent: S2L2A input '" + a + "' carries no date"}, tmp.path);
  }
  SECTION("an unknown order") {
    expect_copgen_failure("render --modality S2L2A -i " + quote(a) + " --mosaic-order newest" + o, 2,
                          {"--mosaic-order: unknown order 'newest' (expected listed or recent)"}, tmp.path);
  }
  SECTION("a thumbnail with physical bands") {
    expect_copgen_failure("render --modality S2L2A -i " + quote(a) + " -i " + quote(tmp.file("t1.tif")) + o, 3,
                          {"a mosaic cannot mix a rendered thumbnail with physical bands"}, tmp.path);
  }
}

TEST_CASE("mosaic: two DEM tiles are hillshaded as one", "[mosaic]") {
  TempDir tmp;
  for (const auto& [name, x0] : std::vector<std::pair<std::string, double>>{{"d1.tif", 500000}, {"d2.tif", 502000}}) {
    SyntheticRaster dem;  // 30 m pixels, no nodata: warped with an alpha band
    dem.width = 100;
    dem.height = 70;
    dem.bands = 1;
    dem.data_type = "Float32";
    dem.geotransform = {x0, 30.0, 0.0, 5000000.0, 0.0, -30.0};
    write_synthetic(tmp.file(name), dem);
  }
  const std::string render = "render --modality DEM" + kRegion;
  REQUIRE(run_copgen(render + " -i " + quote(tmp.file("d1.tif")) + " -o " + quote(tmp.file("a.tif"))).exit_code == 0);
  const auto r = run_copgen(render + " -i " + quote(tmp.file("d1.tif")) + " -i " + quote(tmp.file("d2.tif")) +
                            " -o " + quote(tmp.file("m.tif")));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  // coverage in the DEM's own 30 m pixels of the region: 67 of 100 columns each
  CHECK_THAT(r.output, Catch::Contains("DEM: 2 of 2 items cover the region: '" + tmp.file("d1.tif") +
                                       "' (67.0% of the region; on top in 67.0%), '" + tmp.file("d2.tif") +
                                       "' (67.0% of the region; on top in 33.0%)"));
  CHECK(valid_count(read_rendered(tmp.file("a.tif"))) < 200u * 200u);
  CHECK(valid_count(read_rendered(tmp.file("m.tif"))) == 300u * 200u);
}
