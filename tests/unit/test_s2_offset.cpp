// The Sentinel-2 +1000 offset (processing baseline >= 04.00) read from what an input says,
// in each catalog's words (shared/reference/catalogs.md): STAC items of the Planetary
// Computer, Earth Search and the Copernicus Data Space (stac_s2_offset), the band files'
// GDAL offset, scale and metadata (resolve_input), and --s2-offset on/off over them.
#include "catch_torch.hpp"

#include <fstream>

#include <nlohmann/json.hpp>

#include "copgen/error.hpp"
#include "copgen/scene.hpp"
#include "copgen/stac.hpp"
#include "s2_bands.hpp"
#include "support.hpp"

using namespace copgen;
using copgen::test::S2BandFile;
using copgen::test::TempDir;
using copgen::test::write_s2_band;
using nlohmann::json;

namespace {

StacItem item_with(const json& properties, const json& assets) {
  StacItem it;
  it.json = {{"type", "Feature"}, {"id", "i1"}, {"properties", properties}, {"assets", assets}};
  it.location = it.reference = "/data/item.json";
  return it;
}

const std::vector<std::string> kKeys = {"red", "green", "blue"};

// Earth Search's assets: raster:bands with scale 0.0001 and offset -0.1, whatever it removed.
json earth_search_assets() {
  const json rb = {{{"nodata", 0}, {"data_type", "uint16"}, {"scale", 0.0001}, {"offset", -0.1}}};
  return {{"red", {{"href", "r.tif"}, {"raster:bands", rb}}},
          {"green", {{"href", "g.tif"}, {"raster:bands", rb}}},
          {"blue", {{"href", "b.tif"}, {"raster:bands", rb}}}};
}

// Three band files B04, B03, B02 in tmp, band 1 (B04) as `b04` says.
std::string band_list(const TempDir& tmp, const S2BandFile& b04) {
  write_s2_band(tmp.file("B04.tif"), b04);
  write_s2_band(tmp.file("B03.tif"), 1);
  write_s2_band(tmp.file("B02.tif"), 2);
  return tmp.file("B04.tif") + "," + tmp.file("B03.tif") + "," + tmp.file("B02.tif");
}

}  // namespace

TEST_CASE("s2 offset: a processing baseline from 04.00 on means 1000", "[s2offset]") {
  CHECK(s2_offset_of_baseline("05.10") == 1000.0);
  CHECK(s2_offset_of_baseline("04.00") == 1000.0);
  CHECK(s2_offset_of_baseline("5.1") == 1000.0);
  CHECK(s2_offset_of_baseline("03.01") == 0.0);
  CHECK_FALSE(s2_offset_of_baseline("").has_value());
  CHECK_FALSE(s2_offset_of_baseline("N0510").has_value());
}

TEST_CASE("s2 offset: the Planetary Computer's s2:processing_baseline", "[s2offset]") {
  const json assets = {{"B04", {{"href", "B04.tif"}}}};
  auto e = stac_s2_offset(item_with({{"s2:processing_baseline", "05.10"}}, assets), {"B04"});
  REQUIRE(e);
  CHECK(e->dn == 1000.0);
  CHECK(e->source == "s2:processing_baseline 05.10 >= 04.00");
  e = stac_s2_offset(item_with({{"s2:processing_baseline", "03.01"}}, assets), {"B04"});
  REQUIRE(e);
  CHECK(e->dn == 0.0);
  CHECK(e->source == "s2:processing_baseline 03.01 < 04.00");
}

TEST_CASE("s2 offset: Earth Search's earthsearch:boa_offset_applied", "[s2offset]") {
  // true: Earth Search removed it, although its raster:bands still say -0.1
  auto e = stac_s2_offset(item_with({{"s2:processing_baseline", "05.00"}, {"earthsearch:boa_offset_applied", true}},
                                    earth_search_assets()),
                          kKeys);
  REQUIRE(e);
  CHECK(e->dn == 0.0);
  CHECK(e->source == "earthsearch:boa_offset_applied true (Earth Search removed it)");
  e = stac_s2_offset(item_with({{"s2:processing_baseline", "05.00"}, {"earthsearch:boa_offset_applied", false}},
                               earth_search_assets()),
                     kKeys);
  REQUIRE(e);
  CHECK(e->dn == 1000.0);
  CHECK(e->source == "earthsearch:boa_offset_applied false, s2:processing_baseline 05.00 >= 04.00");
  e = stac_s2_offset(item_with({{"s2:processing_baseline", "03.01"}, {"earthsearch:boa_offset_applied", false}},
                               earth_search_assets()),
                     kKeys);
  REQUIRE(e);
  CHECK(e->dn == 0.0);
  // absent: the baseline alone (here without raster fields)
  e = stac_s2_offset(item_with({{"s2:processing_baseline", "05.00"}}, {{"red", {{"href", "r.tif"}}}}), kKeys);
  REQUIRE(e);
  CHECK(e->dn == 1000.0);
  CHECK(e->source == "s2:processing_baseline 05.00 >= 04.00");
}

TEST_CASE("s2 offset: the Copernicus Data Space's raster:offset and raster:scale", "[s2offset]") {
  // STAC 1.1 bands of the asset
  const json b11 = {{{"name", "B04"}, {"eo:common_name", "red"}, {"raster:offset", -0.1}, {"raster:scale", 0.0001}}};
  auto e = stac_s2_offset(item_with({{"processing:version", "05.11"}},
                                    {{"B04_10m", {{"href", "B04_10m.jp2"}, {"bands", b11}}}}),
                          {"B04_10m"});
  REQUIRE(e);
  CHECK(e->dn == 1000.0);
  CHECK(e->source == "raster:offset -0.1, raster:scale 0.0001 (asset B04_10m, bands)");
  // on the asset itself
  e = stac_s2_offset(item_with(json::object(), {{"B04_10m", {{"href", "x.jp2"}, {"raster:offset", -0.1},
                                                             {"raster:scale", 0.0001}}}}),
                     {"B04_10m"});
  REQUIRE(e);
  CHECK(e->dn == 1000.0);
  CHECK(e->source == "raster:offset -0.1, raster:scale 0.0001 (asset B04_10m)");
  // processing:version alone
  e = stac_s2_offset(item_with({{"processing:version", "05.11"}}, {{"B04_10m", {{"href", "x.jp2"}}}}), {"B04_10m"});
  REQUIRE(e);
  CHECK(e->dn == 1000.0);
  CHECK(e->source == "processing:version 05.11 >= 04.00");
}

TEST_CASE("s2 offset: an item that says nothing says nothing", "[s2offset]") {
  CHECK_FALSE(stac_s2_offset(item_with(json::object(), {{"red", {{"href", "r.tif"}}}}), kKeys).has_value());
}

TEST_CASE("s2 offset: the band files' GDAL offset, scale and metadata", "[s2offset]") {
  TempDir tmp;
  S2BandFile scaled;
  scaled.offset = -0.1;
  scaled.scale = 0.0001;
  ModalityInput in = resolve_input(Modality::S2L2A, band_list(tmp, scaled), InputKind::Auto);
  CHECK(in.dn_offset == 1000.0);
  CHECK(in.offset_source == "band offset -0.1, scale 0.0001 of 'B04.tif'");

  TempDir tmp2;
  S2BandFile boa;
  boa.band_items = {{"BOA_ADD_OFFSET", "-1000"}};
  in = resolve_input(Modality::S2L2A, band_list(tmp2, boa), InputKind::Auto);
  CHECK(in.dn_offset == 1000.0);
  CHECK(in.offset_source == "BOA_ADD_OFFSET -1000 of 'B04.tif'");

  TempDir tmp3;
  S2BandFile radio;  // L1C: the same treatment, here in the file's metadata
  radio.file_items = {{"RADIO_ADD_OFFSET", "-1000"}};
  in = resolve_input(Modality::S2L1C, band_list(tmp3, radio), InputKind::Auto);
  CHECK(in.dn_offset == 1000.0);
  CHECK(in.offset_source == "RADIO_ADD_OFFSET -1000 of 'B04.tif'");

  TempDir tmp4;
  S2BandFile old;
  old.file_items = {{"PROCESSING_BASELINE", "03.01"}};
  in = resolve_input(Modality::S2L1C, band_list(tmp4, old), InputKind::Auto);
  CHECK(in.dn_offset == 0.0);
  CHECK(in.offset_source == "PROCESSING_BASELINE 03.01 < 04.00 of 'B04.tif'");
}

TEST_CASE("s2 offset: nothing said is none; on and off force it", "[s2offset]") {
  TempDir tmp;
  const std::string plain = band_list(tmp, {});
  ModalityInput in = resolve_input(Modality::S2L2A, plain, InputKind::Auto);
  CHECK(in.dn_offset == 0.0);
  CHECK(in.offset_source == "none");
  CHECK(s2_offset_record({in}).empty());  // nothing said: outputs as before
  in = resolve_input(Modality::S2L2A, plain, InputKind::Auto, {}, S2Offset::On);
  CHECK(in.dn_offset == 1000.0);
  CHECK(in.offset_source == "--s2-offset on");
  CHECK(s2_offset_record({in}) == "S2L2A:1000 (--s2-offset on)");

  TempDir tmp2;
  S2BandFile scaled;
  scaled.offset = -0.1;
  scaled.scale = 0.0001;
  in = resolve_input(Modality::S2L1C, band_list(tmp2, scaled), InputKind::Auto, {}, S2Offset::Off);
  CHECK(in.dn_offset == 0.0);
  CHECK(in.offset_source == "--s2-offset off");

  // a DEM has no such offset
  in = resolve_input(Modality::DEM, tmp.file("B04.tif"), InputKind::Physical, {}, S2Offset::On);
  CHECK(in.dn_offset == 0.0);
  CHECK(in.offset_source.empty());
  CHECK(parse_s2_offset("auto") == S2Offset::Auto);
  CHECK_THROWS_AS(parse_s2_offset("yes"), UsageError);
}

TEST_CASE("s2 offset: a STAC item's words reach its input", "[s2offset]") {
  TempDir tmp;
  band_list(tmp, {});
  const json assets = {{"B04", {{"href", "B04.tif"}}}, {"B03", {{"href", "B03.tif"}}}, {"B02", {{"href", "B02.tif"}}}};
  const json item = {{"type", "Feature"}, {"stac_version", "1.0.0"}, {"id", "S2B_pc"},
                     {"properties", {{"s2:processing_baseline", "05.10"}}}, {"assets", assets}};
  std::ofstream(tmp.file("item.json")) << item.dump();
  const ModalityInput in = resolve_input(Modality::S2L2A, tmp.file("item.json"), InputKind::Auto);
  CHECK(in.dn_offset == 1000.0);
  CHECK(in.offset_source == "s2:processing_baseline 05.10 >= 04.00");
  CHECK(s2_offset_record({in}) == "S2L2A:1000 (s2:processing_baseline 05.10 >= 04.00)");
}
