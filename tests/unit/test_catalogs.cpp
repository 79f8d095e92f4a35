// Items of the public catalogs as they publish them (tests/fixtures/stac): the assets
// copgen picks from each, a translation from each with its hrefs pointed at synthetic
// rasters, and the href rules of the real ones (Planetary Computer's SAS tokens, the
// Copernicus Data Space's S3 settings), all on this machine.
#include "catch_torch.hpp"

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <optional>
#include <thread>

#include <nlohmann/json.hpp>

#include "copgen/error.hpp"
#include "copgen/pipeline.hpp"
#include "copgen/remote.hpp"
#include "copgen/stac.hpp"
#include "support.hpp"

using namespace copgen;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

std::string fixture(const std::string& name) {
  return std::string(COPGEN_SOURCE_DIR) + "/tests/fixtures/stac/" + name;
}

json read_json(const std::string& path) {
  std::ifstream in(path);
  REQUIRE(in);
  return json::parse(in);
}

// An environment variable set (or unset, with nullopt) for a scope, restored after.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const std::optional<std::string>& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    if (value) {
      setenv(name, value->c_str(), 1);
    } else {
      unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      setenv(name_, old_->c_str(), 1);
    } else {
      unsetenv(name_);
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

struct Published {
  std::string file;
  Modality modality;
  std::vector<std::string> picked;  // the asset of each band role, in band order
};

const std::vector<Published>& published() {
  static const std::vector<Published> items = {
      {"pc-sentinel-2-l2a.json", Modality::S2L2A, {"B04", "B03", "B02"}},
      {"pc-sentinel-1-rtc.json", Modality::S1RTC, {"vv", "vh"}},
      {"pc-cop-dem-glo-30.json", Modality::DEM, {"data"}},
      {"pc-cop-dem-glo-90.json", Modality::DEM, {"data"}},
      {"es-sentinel-2-l2a.json", Modality::S2L2A, {"red", "green", "blue"}},
      {"es-sentinel-2-l1c.json", Modality::S2L1C, {"red", "green", "blue"}},
      // the native 10 m assets, never B04_20m / B04_60m (resampled) or TCI_10m
      {"cdse-sentinel-2-l2a.json", Modality::S2L2A, {"B04_10m", "B03_10m", "B02_10m"}},
      {"cdse-sentinel-2-l1c.json", Modality::S2L1C, {"B04", "B03", "B02"}},
  };
  return items;
}

// The item with every asset's href pointed at "<dir>/<key>.tif", and synthetic rasters
// for the assets `picked` names (physical values of the modality); returns its path.
std::string localised(const Published& p, const test::TempDir& tmp) {
  json item = read_json(fixture(p.file));
  for (auto& [key, asset] : item["assets"].items()) {
    asset["href"] = tmp.file(key + ".tif");
    asset.erase("alternate");
  }
  for (std::size_t i = 0; i < p.picked.size(); ++i) {
    test::SyntheticRaster spec;
    spec.width = 300;
    spec.height = 280;
    spec.bands = 1;
    spec.data_type = p.modality == Modality::S2L1C || p.modality == Modality::S2L2A ? "UInt16" : "Float32";
    spec.seed = static_cast<int>(5 + i);
    test::write_synthetic(tmp.file(p.picked[i] + ".tif"), spec);
  }
  const std::string path = tmp.file("item.json");
  std::ofstream(path) << item.dump(1);
  return path;
}

}  // namespace

TEST_CASE("catalogs: each published item gives the native band assets, and translates", "[stac][catalogs]") {
  for (const Published& p : published()) {
    INFO(p.file);
    test::TempDir tmp;
    const std::string path = localised(p, tmp);
    const StacItem item = read_stac_item(path, "input");
    std::vector<std::string> keys;
    for (const StacBand& b : stac_band_files(item, p.modality, {}, "input")) {
      keys.push_back(b.asset);
      CHECK(b.path == tmp.file(b.asset + ".tif"));
      CHECK(b.band == 1);
    }
    CHECK(keys == p.picked);

    TranslateOptions o;
    o.inputs = {{p.modality, path}};
    o.to = {p.modality == Modality::S2L2A ? Modality::S2L1C : Modality::S2L2A};
    o.output.path = tmp.file("out.tif");
    o.sampling.seed = 1;
    o.sampling.sampler.steps = 1;
    o.sampling.batch_size = 4;
    const RunResult r = translate(o, test::tiny_models());
    CHECK(r.outputs == std::vector<std::string>{tmp.file("out.tif")});
    CHECK(fs::file_size(tmp.file("out.tif")) > 0);
  }
}

TEST_CASE("catalogs: the Data Space's s3://eodata hrefs need its S3 settings, and say which are missing",
          "[stac][catalogs]") {
  const std::string href = "s3://eodata/Sentinel-2/MSI/L2A/2024/04/19/X.SAFE/B04_10m.jp2";
  ScopedEnv e1("AWS_S3_ENDPOINT", std::nullopt), e2("AWS_ACCESS_KEY_ID", std::nullopt),
      e3("AWS_SECRET_ACCESS_KEY", std::nullopt), e4("AWS_VIRTUAL_HOSTING", std::nullopt);
  CHECK(test::error_message_of([&] { gdal_path_of_href(href, "item.json"); }) ==
        "3: href '" + href +
            "': an object of the Copernicus Data Space's S3 (eodata), read with its endpoint and your S3 keys (made at "
            "https://eodata-s3keysmanager.dataspace.copernicus.eu); set AWS_S3_ENDPOINT=eodata.dataspace.copernicus.eu, "
            "AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_VIRTUAL_HOSTING=FALSE (docs/stac.md)");
  // the settings only need to be there: nothing is read, and the endpoint is the loopback
  ScopedEnv endpoint("AWS_S3_ENDPOINT", std::string("127.0.0.1:9"));
  ScopedEnv key("AWS_ACCESS_KEY_ID", std::string("key"));
  CHECK_THAT(test::error_message_of([&] { gdal_path_of_href(href, "item.json"); }),
             Catch::EndsWith("set AWS_SECRET_ACCESS_KEY, AWS_VIRTUAL_HOSTING=FALSE (docs/stac.md)"));
  ScopedEnv secret("AWS_SECRET_ACCESS_KEY", std::string("secret"));
  ScopedEnv hosting("AWS_VIRTUAL_HOSTING", std::string("FALSE"));
  CHECK(gdal_path_of_href(href, "item.json") == "/vsis3/eodata/Sentinel-2/MSI/L2A/2024/04/19/X.SAFE/B04_10m.jp2");
  // other buckets are GDAL's business (public buckets, ~/.aws)
  ScopedEnv no_endpoint("AWS_S3_ENDPOINT", std::nullopt);
  CHECK(gdal_path_of_href("s3://sentinel-s2-l1c/tiles/B04.jp2", "item.json") == "/vsis3/sentinel-s2-l1c/tiles/B04.jp2");
}

TEST_CASE("catalogs: Planetary Computer blob hrefs get the collection's SAS token, asked once until it expires",
          "[stac][catalogs][remote]") {
  test::TempDir tmp;
  fs::create_directories(tmp.file("www/token"));
  std::ofstream(tmp.file("www/token/sentinel-2-l2a"))
      << R"({"msft:expiry": "2099-01-01T00:00:00Z", "token": "st=2024&se=2099&sig=abc%3D"})";
  std::ofstream(tmp.file("www/token/sentinel-1-rtc"))
      << R"({"msft:expiry": "2001-01-01T00:00:00Z", "token": "sig=old"})";
  test::LocalServer server(tmp.file("www"), tmp.file("server"));
  // the requests served, once the server has recorded at least `n` (it counts after answering)
  const auto requests = [&](long n) {
    for (int i = 0; i < 200 && server.served().first < n; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    return server.served().first;
  };
  ScopedEnv endpoint("COPGEN_PC_TOKEN_URL", server.http() + "/token/");

  CHECK(needs_blob_token("https://sentinel2l2a01.blob.core.windows.net/a/b.tif"));
  CHECK_FALSE(needs_blob_token("https://sentinel2l2a01.blob.core.windows.net/a/b.tif?sig=x"));  // signed already
  CHECK_FALSE(needs_blob_token("https://example.com/blob.core.windows.net/b.tif"));
  CHECK_FALSE(needs_blob_token("http://sentinel2l2a01.blob.core.windows.net/a/b.tif"));

  const StacItem s2 = read_stac_item(fixture("pc-sentinel-2-l2a.json"), "input");
  for (int i = 0; i < 2; ++i) {
    const auto bands = stac_band_files(s2, Modality::S2L2A, {}, "input");
    REQUIRE(bands.size() == 3);
    CHECK(bands[0].path ==
          "/vsicurl/https://sentinel2l2a01.blob.core.windows.net/sentinel2-l2/33/U/WP/2024/04/19/"
          "S2B_MSIL2A_20240419T095549_N0510_R122_T33UWP_20240419T123018.SAFE/GRANULE/L2A_T33UWP_A037210_20240419T095550/"
          "IMG_DATA/R10m/T33UWP_20240419T095549_B04_10m.tif?st=2024&se=2099&sig=abc%3D");
  }
  CHECK(requests(1) == 1);  // one token for the collection, reused
  // an expired token is asked again at every use
  const StacItem s1 = read_stac_item(fixture("pc-sentinel-1-rtc.json"), "input");
  CHECK_THAT(stac_band_files(s1, Modality::S1RTC, {}, "input")[0].path, Catch::EndsWith("iw-vv.rtc.tiff?sig=old"));
  CHECK_THAT(stac_band_files(s1, Modality::S1RTC, {}, "input")[1].path, Catch::EndsWith("iw-vh.rtc.tiff?sig=old"));
  CHECK(requests(1 + 4) == 1 + 4);
  // an endpoint that has no token for the collection: the error names it and the setting
  const StacItem dem = read_stac_item(fixture("pc-cop-dem-glo-30.json"), "DEM input");
  const std::string e = test::error_message_of([&] { stac_band_files(dem, Modality::DEM, {}, "DEM input"); });
  CHECK_THAT(e, Catch::StartsWith("3: DEM input '" + fixture("pc-cop-dem-glo-30.json") +
                                  "' (item Copernicus_DSM_COG_10_N48_00_E015_00): asset 'data': blob URL: no SAS token: "));
  CHECK_THAT(e, Catch::Contains(server.http() + "/token/cop-dem-glo-30") && Catch::Contains("404") &&
                    Catch::Contains("set COPGEN_PC_TOKEN_URL to another endpoint"));
}
