// STAC in and out through the real binary, with COGs and items served by a local HTTP
// server on the loopback (tests/python/range_server.py): an item URL, relative hrefs, a
// missing asset, a failing server, a window, an ItemCollection in batch mode, and the
// STAC items copgen writes checked against the item and projection extension rules.
#include "catch_torch.hpp"

#include <algorithm>
#include <array>
#include <filesystem>
#include <fstream>
#include <memory>

#include <gdal_priv.h>
#include <nlohmann/json.hpp>
#include <ogr_spatialref.h>

#include "support.hpp"

using namespace copgen::test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

constexpr double kX0 = 500000.0, kY0 = 5000000.0;

// A single-band COG of 256 x 256 blocks: UInt16 DNs or Float32 linear power.
void write_cog(const std::string& path, int size, const std::string& type, int seed, double x0, double y0) {
  const std::string tmp = path + ".src.tif";
  SyntheticRaster spec;
  spec.width = spec.height = size;
  spec.bands = 1;
  spec.data_type = type;
  spec.seed = seed;
  spec.geotransform = {x0, 10.0, 0.0, y0, 0.0, -10.0};
  write_synthetic(tmp, spec);
  GDALAllRegister();
  GDALDataset* src = static_cast<GDALDataset*>(GDALOpen(tmp.c_str(), GA_ReadOnly));
  REQUIRE(src != nullptr);
  const char* options[] = {"BLOCKSIZE=256", "COMPRESS=NONE", "OVERVIEWS=NONE", nullptr};
  GDALDataset* cog = GetGDALDriverManager()->GetDriverByName("COG")->CreateCopy(path.c_str(), src, FALSE,
                                                                                const_cast<char**>(options), nullptr,
                                                                                nullptr);
  REQUIRE(cog != nullptr);
  GDALClose(cog);
  GDALClose(src);
  fs::remove(tmp);
}

json asset(const std::string& href, const std::string& common_name) {
  json a = {{"href", href}, {"type", "image/tiff; application=geotiff; profile=cloud-optimized"}, {"roles", {"data"}}};
  if (!common_name.empty()) a["eo:bands"] = {{{"name", common_name}, {"common_name", common_name}}};
  return a;
}

// A STAC item of `collection` over the 10 m square of `size` pixels at (x0, y0) (UTM 33N).
json item(const std::string& id, const std::string& collection, const json& assets, double x0, double y0, int size,
          const std::string& grid_code) {
  // the footprint in WGS84, near 15 E 45 N
  OGRSpatialReference utm, wgs;
  utm.importFromEPSG(32633);
  wgs.importFromEPSG(4326);
  utm.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
  wgs.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
  std::unique_ptr<OGRCoordinateTransformation> ct(OGRCreateCoordinateTransformation(&utm, &wgs));
  std::array<double, 4> xs = {x0, x0 + 10.0 * size, x0 + 10.0 * size, x0};
  std::array<double, 4> ys = {y0, y0, y0 - 10.0 * size, y0 - 10.0 * size};
  ct->Transform(4, xs.data(), ys.data());
  json ring = json::array();
  for (int i = 0; i <= 4; ++i) ring.push_back({xs[i % 4], ys[i % 4]});
  const auto [xmin, xmax] = std::minmax_element(xs.begin(), xs.end());
  const auto [ymin, ymax] = std::minmax_element(ys.begin(), ys.end());
  return {{"type", "Feature"},
          {"stac_version", "1.0.0"},
          {"id", id},
          {"collection", collection},
          {"geometry", {{"type", "Polygon"}, {"coordinates", {ring}}}},
          {"bbox", {*xmin, *ymin, *xmax, *ymax}},
          {"properties", {{"datetime", "2024-06-01T10:00:00Z"}, {"grid:code", grid_code}}},
          {"links", json::array()},
          {"assets", assets}};
}

void write_json(const std::string& path, const json& j) { std::ofstream(path) << j.dump(2); }

json read_json_file(const std::string& path) { return json::parse(read_file_bytes(path)); }

std::array<double, 6> geotransform_of(const std::string& path) {
  GDALAllRegister();
  GDALDataset* ds = static_cast<GDALDataset*>(GDALOpen(path.c_str(), GA_ReadOnly));
  REQUIRE(ds != nullptr);
  std::array<double, 6> gt{};
  ds->GetGeoTransform(gt.data());
  GDALClose(ds);
  return gt;
}

// The STAC item and projection extension rules copgen's items must follow, and agreement
// with the GeoTIFFs they describe.
void check_written_item(const std::string& path, const std::string& id, const std::vector<std::string>& assets) {
  INFO(path);
  REQUIRE(fs::exists(path));
  const json j = read_json_file(path);
  CHECK(j["type"] == "Feature");
  CHECK(j["stac_version"] == "1.0.0");
  CHECK(j["id"] == id);
  CHECK(j["links"].is_array());
  REQUIRE(j["properties"].is_object());
  CHECK(j["properties"]["datetime"].is_string());
  const auto exts = j["stac_extensions"].dump();
  CHECK(exts.find("projection/v1.1.0") != std::string::npos);
  CHECK(j["properties"]["proj:epsg"] == 32633);
  // the bbox holds the geometry
  const json& bbox = j["bbox"];
  REQUIRE(bbox.size() == 4);
  REQUIRE(j["geometry"]["type"] == "Polygon");
  for (const json& p : j["geometry"]["coordinates"][0]) {
    CHECK(p[0].get<double>() >= bbox[0].get<double>());
    CHECK(p[1].get<double>() >= bbox[1].get<double>());
    CHECK(p[0].get<double>() <= bbox[2].get<double>());
    CHECK(p[1].get<double>() <= bbox[3].get<double>());
  }
  CHECK(j["properties"]["copgen:seed"].is_number_unsigned());
  CHECK(j["properties"]["copgen:solver"] == "dpm-solver-fast");
  REQUIRE(j["assets"].size() == assets.size());
  for (const std::string& key : assets) {
    INFO(key);
    REQUIRE(j["assets"].contains(key));
    const json& a = j["assets"][key];
    CHECK(a["roles"] == json({"data"}));
    CHECK(a["eo:bands"].size() == 3);
    const std::string file = (fs::path(path).parent_path() / a["href"].get<std::string>()).string();
    REQUIRE(fs::exists(file));  // href relative to the item
    // proj:transform and proj:shape are the GeoTIFF's
    const auto gt = geotransform_of(file);
    const json& t = j["properties"]["proj:transform"];
    CHECK(t == json({gt[1], gt[2], gt[0], gt[4], gt[5], gt[3]}));
  }
}

// Three S2L2A band COGs (1024 x 1024, 16 blocks each) and items of them in `www`.
void make_s2_item(const std::string& www, const std::string& http) {
  fs::create_directories(www + "/s2");
  int seed = 3;
  for (const std::string b : {"B04", "B03", "B02"}) write_cog(www + "/s2/" + b + ".tif", 1024, "UInt16", seed++, kX0, kY0);
  // relative hrefs, keys by band name with eo:bands common names
  const json rel = {{"B04", asset("./B04.tif", "red")}, {"B03", asset("./B03.tif", "green")},
                    {"B02", asset("B02.tif", "blue")}, {"thumbnail", asset("./thumb.png", "")}};
  write_json(www + "/s2/item.json", item("S2B_33TWN_20240601", "sentinel-2-l2a", rel, kX0, kY0, 1024, "MGRS-33TWN"));
  // absolute hrefs, keys by common name
  const json abs = {{"red", asset(http + "/s2/B04.tif", "")}, {"green", asset(http + "/s2/B03.tif", "")},
                    {"blue", asset(http + "/s2/B02.tif", "")}};
  write_json(www + "/s2/item-abs.json", item("S2B_abs", "sentinel-2-l2a", abs, kX0, kY0, 1024, "MGRS-33TWN"));
  // an item without a blue band
  json missing = rel;
  missing.erase("B02");
  write_json(www + "/s2/item-noblue.json", item("S2B_noblue", "sentinel-2-l2a", missing, kX0, kY0, 1024, "X"));
}

const std::string kRun = " translate --device cpu --steps 1 --seed 4 --to DEM ";

}  // namespace

TEST_CASE("stac: translate from an item URL reads only the window's blocks, and writes a STAC item", "[stac]") {
  TempDir tmp;
  LocalServer server(tmp.file("www"), tmp.file("server"));
  make_s2_item(tmp.file("www"), server.http());
  long whole = 0;
  for (const std::string b : {"B04", "B03", "B02"}) whole += static_cast<long>(fs::file_size(tmp.file("www/s2/" + b + ".tif")));

  fs::create_directories(tmp.file("out"));
  const std::string out = tmp.file("out/dem.tif");
  const auto r = run_command(models_env() + kRemoteEnv + bin() + kRun + "--input S2L2A=" +
                             quote(server.http() + "/s2/item.json") + " --srcwin 256 512 256 256 -o " + quote(out) +
                             " --stac-out " + quote(tmp.file("out/dem.json")));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("is the STAC item S2B_33TWN_20240601"));
  const auto gt = geotransform_of(out);
  CHECK(gt[0] == kX0 + 256 * 10.0);
  CHECK(gt[3] == kY0 - 512 * 10.0);
  const auto [requests, bytes] = server.served();
  WARN("a 256 x 256 window of three 1024 x 1024 band COGs from an item URL: " << requests << " requests, " << bytes
                                                                              << " of " << whole << " bytes");
  CHECK(bytes < whole / 4);  // one 256 x 256 block of 16 per band, the headers and the item
  check_written_item(tmp.file("out/dem.json"), "dem", {"dem"});
  const json written = read_json_file(tmp.file("out/dem.json"));
  CHECK(written["properties"]["copgen:sources"] == json({"S2B_33TWN_20240601"}));
  CHECK(written["properties"]["datetime"] == "2024-06-01T10:00:00Z");  // the source's
  CHECK(written["properties"]["copgen:generated"] == "DEM");
  CHECK(written["properties"]["proj:shape"] == json({256, 256}));
}

TEST_CASE("stac: absolute hrefs, a local item, --asset and missing assets", "[stac]") {
  TempDir tmp;
  LocalServer server(tmp.file("www"), tmp.file("server"));
  make_s2_item(tmp.file("www"), server.http());
  const std::string win = " --srcwin 0 0 256 256 -o ";
  SECTION("absolute hrefs") {
    const auto r = run_command(models_env() + kRemoteEnv + bin() + kRun + "--input S2L2A=" +
                               quote(server.http() + "/s2/item-abs.json") + win + quote(tmp.file("a.tif")));
    INFO(r.output);
    CHECK(r.exit_code == 0);
  }
  SECTION("a local item with relative hrefs to local files") {
    const auto r = run_copgen(kRun + "--input S2L2A=" + quote(tmp.file("www/s2/item.json")) + win +
                              quote(tmp.file("l.tif")));
    INFO(r.output);
    CHECK(r.exit_code == 0);
  }
  SECTION("a missing asset names the keys the item has") {
    expect_copgen_failure(kRun + "--input S2L2A=" + quote(tmp.file("www/s2/item-noblue.json")) + win +
                              quote(tmp.file("m.tif")),
                          3, {"no asset for blue", "assets: B03, B04, thumbnail", "--asset blue=KEY"}, tmp.path);
  }
  SECTION("--asset names one, and a wrong one is a usage error") {
    const auto r = run_copgen(kRun + "--input S2L2A=" + quote(tmp.file("www/s2/item-noblue.json")) +
                              " --asset blue=B03" + win + quote(tmp.file("o.tif")));
    INFO(r.output);
    CHECK(r.exit_code == 0);
    expect_copgen_failure(kRun + "--input S2L2A=" + quote(tmp.file("www/s2/item.json")) + " --asset blue=B09" + win +
                              quote(tmp.file("w.tif")),
                          2, {"--asset blue=B09", "has no asset 'B09'"}, tmp.path);
    expect_copgen_failure(kRun + "--input S2L2A=" + quote(tmp.file("www/s2/item.json")) + " --asset nir=B08" + win +
                              quote(tmp.file("w.tif")),
                          2, {"--asset 'nir=B08'", "ROLE=KEY"}, tmp.path);
  }
  CHECK_FALSE(fs::exists(tmp.file("m.tif")));
  CHECK_FALSE(fs::exists(tmp.file("w.tif")));
}

TEST_CASE("stac: a failing server is retried, then a clear error", "[stac]") {
  TempDir tmp;
  {
    LocalServer once(tmp.file("www"), tmp.file("server1"), 1);  // each file's first GET fails (503)
    make_s2_item(tmp.file("www"), once.http());
    const auto r = run_command(models_env() + kRemoteEnv + bin() + kRun + "--input S2L2A=" +
                               quote(once.http() + "/s2/item.json") + " --srcwin 0 0 256 256 -o " +
                               quote(tmp.file("retried.tif")));
    INFO(r.output);
    CHECK(r.exit_code == 0);  // copgen's reader (the item) and GDAL (the bands) retried
  }
  LocalServer down(tmp.file("www"), tmp.file("server2"), 1000);  // every GET fails
  const auto r = run_command(models_env() + kRemoteEnv + bin() + kRun + "--input S2L2A=" +
                             quote(down.http() + "/s2/item.json") + " -o " + quote(tmp.file("failed.tif")));
  INFO(r.output);
  CHECK(r.exit_code == 3);
  CHECK_THAT(r.output, Catch::Contains("S2L2A input '" + down.http() +
                                       "/s2/item.json': the server answered HTTP 503 (Service Unavailable) (3 tries)"));
  CHECK_FALSE(fs::exists(tmp.file("failed.tif")));
}

TEST_CASE("stac: an ItemCollection in batch mode, one tuple per location, one STAC item per tuple", "[stac][batch]") {
  TempDir tmp;
  LocalServer server(tmp.file("www"), tmp.file("server"));
  const std::string www = tmp.file("www");
  fs::create_directories(www + "/c");
  json features = json::array();
  // two locations 5 km apart; S2L2A and S1RTC at each, matched by footprint (no grid:code
  // on the S1 items), plus a DEM item that --from does not ask for
  for (int loc = 0; loc < 2; ++loc) {
    const double x0 = kX0 + loc * 5000.0;
    const std::string s = "loc" + std::to_string(loc);
    int seed = 10 * loc;
    for (const std::string b : {"B04", "B03", "B02"}) write_cog(www + "/c/" + s + "_" + b + ".tif", 256, "UInt16", ++seed, x0, kY0);
    for (const std::string b : {"vv", "vh"}) write_cog(www + "/c/" + s + "_" + b + ".tif", 256, "Float32", ++seed, x0, kY0);
    features.push_back(item("S2_" + s, "sentinel-2-l2a",
                            {{"B04", asset("c/" + s + "_B04.tif", "red")}, {"B03", asset("c/" + s + "_B03.tif", "green")},
                             {"B02", asset("c/" + s + "_B02.tif", "blue")}},
                            x0, kY0, 256, ""));
    json s1 = item("S1_" + s, "sentinel-1-rtc", {{"vv", asset("c/" + s + "_vv.tif", "")}, {"vh", asset("c/" + s + "_vh.tif", "")}},
                   x0, kY0, 256, "");
    features.push_back(s1);
  }
  features.push_back(item("DEM_0", "cop-dem-glo-30", {{"data", asset("c/nothing.tif", "")}}, kX0, kY0, 256, ""));
  for (json& f : features) f["properties"].erase("grid:code");
  write_json(www + "/search.json", {{"type", "FeatureCollection"}, {"features", features}});

  const std::string out = tmp.file("out");
  const std::string args = " translate --device cpu --steps 1 --seed 4 --from S2L2A,S1RTC --to DEM --inputs-from " +
                           quote(server.http() + "/search.json") + " --output-dir " + quote(out) +
                           " --stac-out item.json";
  const auto d = run_command(models_env() + kRemoteEnv + bin() + args + " --dry-run");
  INFO(d.output);
  REQUIRE(d.exit_code == 0);
  CHECK_THAT(d.output, Catch::Contains("2 found") && Catch::Contains("tuple: S2_loc0") && Catch::Contains("tuple: S2_loc1"));
  const auto r = run_command(models_env() + kRemoteEnv + bin() + args);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  for (int loc = 0; loc < 2; ++loc) {
    const std::string key = "S2_loc" + std::to_string(loc);
    REQUIRE(fs::exists(out + "/" + key + "/DEM.tif"));
    const auto gt = geotransform_of(out + "/" + key + "/DEM.tif");
    CHECK(gt[0] == kX0 + loc * 5000.0);
    check_written_item(out + "/" + key + "/item.json", key, {"DEM"});
    const json j = read_json_file(out + "/" + key + "/item.json");
    // the tuple's inputs in modality order: S1RTC, then S2L2A
    CHECK(j["properties"]["copgen:sources"] == json({"S1_loc" + std::to_string(loc), "S2_loc" + std::to_string(loc)}));
  }
}
