// copgen/stac.hpp without the binary: what an href may name, which band each role reads,
// --asset validation, and how an ItemCollection becomes tuples (unique ids, footprints
// matched through the index exactly as by comparing every pair).
#include "catch_torch.hpp"

#include <filesystem>
#include <fstream>
#include <random>

#include <nlohmann/json.hpp>

#include "copgen/error.hpp"
#include "copgen/stac.hpp"
#include "support.hpp"

using namespace copgen;
using copgen::test::error_message_of;
using copgen::test::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

json band(const std::string& common_name) { return {{"name", common_name}, {"common_name", common_name}}; }

StacItem item_of(const json& assets, const std::string& location = "/data/item.json") {
  StacItem it;
  it.json = {{"type", "Feature"}, {"id", "i1"}, {"properties", json::object()}, {"assets", assets}};
  it.location = location;
  it.reference = location;
  return it;
}

// An item of `collection` over the lon/lat box b.
json feature(const std::string& id, const std::string& collection, const std::array<double, 4>& b) {
  return {{"type", "Feature"},
          {"id", id},
          {"collection", collection},
          {"bbox", {b[0], b[1], b[2], b[3]}},
          {"properties", json::object()},
          {"assets", {{"data", {{"href", id + ".tif"}}}}}};
}

// (each collection its own name: documents are cached by path for a process's life)
std::string write_collection(const TempDir& tmp, const std::string& name, const json& features) {
  const std::string path = tmp.file(name + ".json");
  std::ofstream(path) << json{{"type", "FeatureCollection"}, {"features", features}}.dump();
  return path;
}

}  // namespace

TEST_CASE("stac: hrefs of a remote item name network locations only", "[stac]") {
  const std::string remote = "/vsicurl/http://127.0.0.1:9/c/s2/item.json?token=x";
  CHECK(gdal_path_of_href("B04.tif", remote) == "/vsicurl/http://127.0.0.1:9/c/s2/B04.tif");
  CHECK(gdal_path_of_href("./B04.tif", remote) == "/vsicurl/http://127.0.0.1:9/c/s2/B04.tif");
  CHECK(gdal_path_of_href("../../x/B04.tif", remote) == "/vsicurl/http://127.0.0.1:9/x/B04.tif");
  CHECK(gdal_path_of_href("/tmp/B04.tif", remote) == "/vsicurl/http://127.0.0.1:9/tmp/B04.tif");  // the server's
  CHECK(gdal_path_of_href("https://h/B04%20a.tif", remote) == "/vsicurl/https://h/B04%20a.tif");
  CHECK(gdal_path_of_href("s3://bucket/B04.tif", remote) == "/vsis3/bucket/B04.tif");
  CHECK(gdal_path_of_href("gs://bucket/B04.tif", remote) == "/vsigs/bucket/B04.tif");
  CHECK(gdal_path_of_href("az://container/B04.tif", remote) == "/vsiaz/container/B04.tif");
  CHECK(error_message_of([&] { gdal_path_of_href("file:///etc/hostname", remote); }) ==
        "3: href 'file:///etc/hostname': a file on this machine, named by an item read over the network");
  for (const std::string special : {"/vsistdin/", "/vsimem/x.tif", "/vsizip//tmp/x.zip/a.tif", "vrt:///tmp/a.tif"}) {
    INFO(special);
    CHECK(error_message_of([&] { gdal_path_of_href(special, remote); }) ==
          "3: href '" + special +
              "': names one of GDAL's special files, which an item may not (give a URL or a file path)");
    CHECK_THROWS_AS(gdal_path_of_href(special, "/data/item.json"), InputError);  // local items neither
  }
  CHECK(error_message_of([&] { gdal_path_of_href("ftp://h/a.tif", remote); }) ==
        "3: href 'ftp://h/a.tif': the scheme 'ftp' is not one copgen reads (http, https, s3, gs, az, file)");
}

TEST_CASE("stac: hrefs of a local item are files - percent-decoded", "[stac]") {
  CHECK(gdal_path_of_href("B04%20a.tif", "/data/s2/item.json") == "/data/s2/B04 a.tif");
  CHECK(gdal_path_of_href("../dem/x.tif", "/data/s2/item.json") == "/data/dem/x.tif");
  CHECK(gdal_path_of_href("/abs/B%2304.tif", "/data/item.json") == "/abs/B#04.tif");
  CHECK(gdal_path_of_href("file:///abs/a%20b.tif", "/data/item.json") == "/abs/a b.tif");
  CHECK(gdal_path_of_href("B04.tif", "item.json") == "B04.tif");
  CHECK(gdal_path_of_href("http://h/a.tif", "/data/item.json") == "/vsicurl/http://h/a.tif");
}

TEST_CASE("stac: --asset on a multi-band asset reads the band its eo:bands name", "[stac]") {
  const json assets = {{"visual", {{"href", "TCI.tif"}, {"roles", {"visual"}},
                                   {"eo:bands", {band("red"), band("green"), band("blue")}}}},
                       {"B04", {{"href", "B04.tif"}, {"eo:bands", {band("red")}}}},
                       {"B03", {{"href", "B03.tif"}, {"eo:bands", {band("green")}}}},
                       {"B02", {{"href", "B02.tif"}, {"eo:bands", {band("blue")}}}}};
  const std::map<std::string, std::string> visual = {{"red", "visual"}, {"green", "visual"}, {"blue", "visual"}};
  const auto bands = stac_band_files(item_of(assets), Modality::S2L2A, visual, "S2L2A input");
  REQUIRE(bands.size() == 3);
  for (int i = 0; i < 3; ++i) {
    CHECK(bands[static_cast<std::size_t>(i)].path == "/data/TCI.tif");
    CHECK(bands[static_cast<std::size_t>(i)].band == i + 1);
  }
  // without --asset: the single-band assets, never the true-colour image
  const auto plain = stac_band_files(item_of(assets), Modality::S2L2A, {}, "S2L2A input");
  CHECK(plain[0].path == "/data/B04.tif");
  CHECK(plain[2].path == "/data/B02.tif");
  CHECK(plain[2].band == 1);
  // a multi-band asset without the role
  json rg = assets;
  rg["rg"] = {{"href", "rg.tif"}, {"eo:bands", {band("red"), band("green")}}};
  CHECK(error_message_of([&] { stac_band_files(item_of(rg), Modality::S2L2A, {{"blue", "rg"}}, "S2L2A input"); }) ==
        "3: S2L2A input '/data/item.json' (item i1): --asset blue=rg names an asset of 2 bands (eo:bands: red, "
        "green), none of them blue");
  CHECK(error_message_of([&] { stac_band_files(item_of(rg), Modality::S2L2A, {{"blue", "nope"}}, "S2L2A input"); }) ==
        "2: --asset blue=nope: S2L2A input '/data/item.json' (item i1) has no asset 'nope' (assets: B02, B03, B04, "
        "rg, visual)");
}

TEST_CASE("stac: a key and its eo:bands disagreeing - two assets of one role", "[stac]") {
  // the asset keyed "red" is the nir band by its eo:bands; "b4" says red
  const json assets = {{"red", {{"href", "nir.tif"}, {"eo:bands", {band("nir")}}}},
                       {"b4", {{"href", "b4.tif"}, {"eo:bands", {band("red")}}}},
                       {"green", {{"href", "g.tif"}}},
                       {"x", {{"href", "x.tif"}, {"eo:bands", {band("blue")}}}},
                       {"y", {{"href", "y.tif"}, {"eo:bands", {band("blue")}}}}};
  const auto bands = stac_band_files(item_of(assets), Modality::S2L1C, {}, "S2L1C input");
  CHECK(bands[0].asset == "b4");     // eo:bands win over a disagreeing key
  CHECK(bands[1].asset == "green");  // a key without eo:bands
  CHECK(bands[2].asset == "x");      // the first of two (logged)
  // multi-band, no visual: a DEM asset of one band among several named
  const json s1 = {{"data", {{"href", "s1.tif"}, {"eo:bands", {band("vh"), band("vv")}}}}};
  const auto vv = stac_band_files(item_of(s1), Modality::S1RTC, {}, "S1RTC input");
  CHECK(vv[0].band == 2);
  CHECK(vv[1].band == 1);
}

TEST_CASE("stac: errors list at most eight asset keys", "[stac]") {
  json assets = json::object();
  for (int i = 0; i < 100000; ++i) assets["k" + std::to_string(100000 + i)] = {{"href", "x.tif"}};
  const std::string m = error_message_of([&] { stac_band_files(item_of(assets), Modality::DEM, {}, "DEM input"); });
  CHECK(m == "3: DEM input '/data/item.json' (item i1): no asset for elevation (assets: k100000, k100001, k100002, "
             "k100003, k100004, k100005, k100006, k100007, ... (100000 assets)); name one with --asset elevation=KEY");
}

TEST_CASE("stac: --asset roles given twice or read by no modality are usage errors", "[stac]") {
  std::map<std::string, std::string> o;
  add_asset_override(o, "red=B04_10m");
  CHECK(error_message_of([&] { add_asset_override(o, "RED=B04_20m"); }) ==
        "2: --asset 'RED=B04_20m': the role red is already given (--asset red=B04_10m)");
  CHECK_NOTHROW(check_asset_overrides(o, {Modality::S2L2A}));
  add_asset_override(o, "vv=VV");
  CHECK(error_message_of([&] { check_asset_overrides(o, {Modality::S2L2A, Modality::DEM}); }) ==
        "2: --asset vv=VV: no given modality reads a vv band (S2L2A: red, green, blue; DEM: elevation)");
  CHECK_NOTHROW(check_asset_overrides(o, {Modality::S2L2A, Modality::S1RTC}));
  CHECK_THROWS_AS(add_asset_override(o, "nir=B08"), UsageError);
}

TEST_CASE("stac: an ItemCollection needs unique ids - repeats are read once", "[stac]") {
  TempDir tmp;
  const json a = feature("a", "sentinel-2-l2a", {10, 45, 11, 46});
  const json b = feature("b", "sentinel-2-l2a", {11, 45, 12, 46});
  const json no_mod = feature("c", "landsat-c2-l2", {10, 45, 11, 46});
  const json not_item = {{"type", "Feature"}, {"id", "d"}};
  const std::string repeats = write_collection(tmp, "repeats", {a, b, a, no_mod, not_item});
  const Discovered d = read_item_collection(repeats, {Modality::S2L2A});
  REQUIRE(d.tuples.size() == 2);
  CHECK(d.tuples[0].key == "a");
  CHECK(d.tuples[1].key == "b");
  json a2 = a;
  a2["bbox"] = {20, 45, 21, 46};
  const std::string dup = write_collection(tmp, "dup", {a, b, a2});
  CHECK_THAT(error_message_of([&] { read_item_collection(dup, {Modality::S2L2A}); }),
             Catch::Equals("3: --inputs-from '" + dup +
                           "': two different items have the id 'a'; an id names a tuple, its outputs (OUT/<id>/) and "
                           "its reference (#ID), so ids must be unique"));
  const std::string clash = write_collection(tmp, "clash", {feature("x y", "sentinel-2-l2a", {10, 45, 11, 46}),
                                                   feature("x_y", "sentinel-2-l2a", {10, 45, 11, 46}),
                                                   feature("z", "sentinel-2-l2a", {10, 45, 11, 46})});
  CHECK_THAT(error_message_of([&] { read_item_collection(clash, {Modality::S2L2A}); }),
             Catch::Contains("the items 'x y' and 'x_y' would both write to OUT/x_y/"));
}

TEST_CASE("stac: footprints matched through the index as by comparing every pair", "[stac]") {
  TempDir tmp;
  std::mt19937 rng(7);
  std::uniform_real_distribution<double> lon(-20, 20), lat(-10, 10), size(0.05, 3);
  json features = json::array();
  std::vector<std::array<double, 4>> s2, s1;
  for (int i = 0; i < 400; ++i) {
    const double x = lon(rng), y = lat(rng), w = size(rng), h = size(rng);
    const bool first = i % 2 == 0;
    const std::array<double, 4> b = {x, y, x + w, y + h};
    (first ? s2 : s1).push_back(b);
    char id[16];
    std::snprintf(id, sizeof id, "%s%03d", first ? "s2-" : "s1-", i / 2);
    features.push_back(feature(id, first ? "sentinel-2-l2a" : "sentinel-1-rtc", b));
  }
  features.push_back(feature("s1-wide", "sentinel-1-rtc", {-170, -80, 170, 80}));  // wider than the index's cells
  s1.push_back({-170, -80, 170, 80});
  const std::string collection = write_collection(tmp, "footprints", features);
  const Discovered d = read_item_collection(collection, {Modality::S2L2A, Modality::S1RTC});
  // by brute force: the S1 item of largest overlap, the first in id order on a tie
  const auto overlap = [](const std::array<double, 4>& a, const std::array<double, 4>& b) {
    const double w = std::min(a[2], b[2]) - std::max(a[0], b[0]), h = std::min(a[3], b[3]) - std::max(a[1], b[1]);
    return w > 0 && h > 0 ? w * h : 0.0;
  };
  std::size_t checked = 0;
  for (const TupleSource& t : d.tuples) {
    const std::size_t i = std::stoul(t.key.substr(3));
    int best = -1;
    double best_o = 0;
    for (std::size_t j = 0; j < s1.size(); ++j) {  // ids s1-000.. then s1-wide: id order
      const double o = overlap(s2[i], s1[j]);
      if (o > best_o) best = static_cast<int>(j), best_o = o;
    }
    REQUIRE(best >= 0);
    char want[16];
    std::snprintf(want, sizeof want, "s1-%03d", best);
    CHECK(t.inputs.at(Modality::S1RTC) ==
          collection + "#" + (best == static_cast<int>(s1.size()) - 1 ? "s1-wide" : want));
    ++checked;
  }
  CHECK(checked == 200);  // the wide item overlaps every S2 item: every tuple is complete
}

TEST_CASE("stac: an item out links each source item relative to itself - with #ID in a collection", "[stac]") {
  TempDir tmp;
  fs::create_directories(tmp.file("run/items"));
  fs::create_directories(tmp.file("src"));
  copgen::test::write_synthetic(tmp.file("run/DEM.tif"), {});
  json item = feature("x", "sentinel-2-l2a", {15, 45, 15.1, 45.1});
  item["properties"]["datetime"] = "2024-06-01T10:00:00Z";
  std::ofstream(tmp.file("src/search.json")) << json{{"type", "FeatureCollection"}, {"features", {item}}}.dump();
  std::ofstream(tmp.file("src/one.json")) << item.dump();
  write_stac_item(tmp.file("run/items/t1.json"), "t1", {tmp.file("run/DEM.tif")},
                  {tmp.file("src/search.json") + "#x", tmp.file("src/one.json"), tmp.file("run/DEM.tif")});
  const json out = json::parse(std::ifstream(tmp.file("run/items/t1.json")));
  const json want = {{{"rel", "derived_from"}, {"href", "../../src/search.json#x"}, {"type", "application/json"}},
                     {{"rel", "derived_from"}, {"href", "../../src/one.json"}, {"type", "application/json"}}};
  CHECK(out["links"] == want);
  CHECK(out["properties"]["copgen:sources"] == json({"x", "x", tmp.file("run/DEM.tif")}));
  CHECK(out["properties"]["datetime"] == "2024-06-01T10:00:00Z");
  CHECK(out["assets"]["DEM"]["href"] == "../DEM.tif");
}
