// Sentinel-2 SAFE products with the real binary, on products the tests write
// (tests/safe_product.hpp): an L2A .SAFE folder renders byte for byte as its B04, B03, B02
// given by hand with --s2-offset on, and its .zip the same; translate and a batch list take
// them and record the offset their metadata says; a product of the wrong level is an input
// error naming it, with nothing written.
#include "catch_torch.hpp"

#include <filesystem>
#include <fstream>

#include <gdal_priv.h>

#include "safe_product.hpp"
#include "support.hpp"

using namespace copgen::test;
namespace fs = std::filesystem;

namespace {

const std::string kFast = " --steps 2 --seed 3 --batch-size 16 ";


std::string metadata_item(const std::string& path, const char* key) {
  Ds d(path);
  REQUIRE(d.ds != nullptr);
  const char* v = d.ds->GetMetadataItem(key);
  return v ? v : "";
}

}  // namespace

TEST_CASE("safe: an L2A product renders as its bands given by hand with the offset", "[e2e][safe]") {
  TempDir tmp;
  const std::string safe = write_safe(tmp.file("products"));
  const std::string zip = tmp.file("products/S2B_MSIL2A_20240419T095549_N0510_R122_T33TUF_20240419T123456.zip");
  zip_safe(safe, zip);
  for (const char* b : {"B04", "B03", "B02"}) write_s2_band(tmp.file(std::string(b) + ".tif"), safe_band_seed(b));
  const std::string bands = tmp.file("B04.tif") + "," + tmp.file("B03.tif") + "," + tmp.file("B02.tif");

  const std::string log = render_s2l2a(safe, tmp.file("safe.tif"), "");
  CHECK_THAT(log, Catch::Contains("S2L2A: '" + safe + "' is the L2A SAFE product "
                                  "S2B_MSIL2A_20240419T095549_N0510_R122_T33TUF_20240419T123456, granule "
                                  "L2A_T33TUF_A037123_20240419T100052"));
  CHECK_THAT(log, Catch::Contains("S2L2A input '" + safe + "': DN offset 1000 (MTD_MSIL2A.xml BOA_ADD_OFFSET -1000)"));
  render_s2l2a(zip, tmp.file("zip.tif"), "");
  render_s2l2a(bands, tmp.file("hand.tif"), " --s2-offset on");
  render_s2l2a(bands, tmp.file("none.tif"), " --s2-offset off");

  const auto s = pixels_of(tmp.file("safe.tif"));
  CHECK(s == pixels_of(tmp.file("hand.tif")));
  CHECK(s == pixels_of(tmp.file("zip.tif")));
  CHECK(s != pixels_of(tmp.file("none.tif")));
  CHECK(metadata_item(tmp.file("safe.tif"), "COPGEN_S2_OFFSET") == "S2L2A:1000 (MTD_MSIL2A.xml BOA_ADD_OFFSET -1000)");
  CHECK(metadata_item(tmp.file("zip.tif"), "COPGEN_S2_OFFSET") == "S2L2A:1000 (MTD_MSIL2A.xml BOA_ADD_OFFSET -1000)");
  // the tile's grid: the JPEG 2000 files' own
  Ds out(tmp.file("safe.tif"));
  double gt[6];
  REQUIRE(out.ds->GetGeoTransform(gt) == CE_None);
  CHECK(gt[0] == 500000.0);
  CHECK(gt[3] == 5000000.0);
  CHECK(gt[1] == 10.0);
  CHECK(out.ds->GetRasterXSize() == 64);
}

TEST_CASE("safe: translate and a batch list take SAFE products and record their offset", "[e2e][safe]") {
  TempDir tmp;
  SafeSpec l1c;
  l1c.l2a = false;
  const std::string safe = write_safe(tmp.file("products"), l1c);
  const std::string zip = tmp.file("l1c.zip");
  zip_safe(safe, zip);

  auto r = run_copgen("translate --from S2L1C -i " + quote(zip) + " --to S2L2A -o " + quote(tmp.file("o.tif")) + kFast);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("DN offset 1000 (MTD_MSIL1C.xml RADIO_ADD_OFFSET -1000)"));
  CHECK(metadata_item(tmp.file("o.tif"), "COPGEN_S2_OFFSET") == "S2L1C:1000 (MTD_MSIL1C.xml RADIO_ADD_OFFSET -1000)");

  std::ofstream(tmp.file("list.txt")) << "S2L1C=products/" << fs::path(safe).filename().string() << "\n"
                                      << "S2L1C=l1c.zip\n";
  r = run_copgen("translate --inputs-from " + quote(tmp.file("list.txt")) + " --from S2L1C --to S2L2A --output-dir " +
                 quote(tmp.file("batch")) + kFast);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK((list_dir(tmp.file("batch/S2L2A")) ==
         std::vector<std::string>{"S2B_MSIL1C_20240419T095549_N0510_R122_T33TUF_20240419T123456.tif", "l1c.tif"}));
  CHECK(metadata_item(tmp.file("batch/S2L2A/l1c.tif"), "COPGEN_S2_OFFSET") ==
        "S2L1C:1000 (MTD_MSIL1C.xml RADIO_ADD_OFFSET -1000)");
}

TEST_CASE("safe: a product of the wrong level is an input error naming it, nothing written", "[e2e][safe]") {
  TempDir tmp;
  SafeSpec l1c;
  l1c.l2a = false;
  const std::string safe = write_safe(tmp.file("products"), l1c);
  const std::string why = "S2L2A input '" + safe + "': a Sentinel-2 Level-1C product (MTD_MSIL1C.xml); S2L2A takes "
                          "MSIL2A products (give this one as S2L1C)";
  expect_copgen_failure("render --modality S2L2A -i " + quote(safe) + " -o " + quote(tmp.file("x.tif")), 3, {why},
                        tmp.path);
  expect_copgen_failure("translate --from S2L2A -i " + quote(safe) + " --to DEM -o " + quote(tmp.file("x.tif")) + kFast,
                        3, {why}, tmp.path);
  SafeSpec two;
  two.granules = 2;
  const std::string two_safe = write_safe(tmp.file("two"), two);
  expect_copgen_failure("render --modality S2L2A -i " + quote(two_safe) + " -o " + quote(tmp.file("x.tif")), 3,
                        {"a SAFE product of 2 granules"}, tmp.path);
}

TEST_CASE("safe: outside the swath (the product's NODATA, 0) is nodata in the rendering", "[e2e][safe]") {
  // A tile the orbit covers in part: its first 16 columns are 0 in every band, which the
  // metadata file names NODATA and the JPEG 2000 files do not mark.
  TempDir tmp;
  const std::string safe = write_safe(tmp.file("products"));
  for (const auto& f : fs::recursive_directory_iterator(safe + "/GRANULE")) {
    const std::string name = f.path().filename().string();
    if (name.find("_10m.jp2") == std::string::npos) continue;
    const std::string tif = tmp.file("cut.tif");
    for (const char* b : {"B04", "B03", "B02", "B08"}) {
      if (name.find(std::string("_") + b + "_") != std::string::npos) write_s2_band(tif, safe_band_seed(b));
    }
    {
      GDALDatasetH d = GDALOpen(tif.c_str(), GA_Update);
      REQUIRE(d != nullptr);
      std::vector<std::uint16_t> zeros(16 * 64, 0);
      CHECK(GDALRasterIO(GDALGetRasterBand(d, 1), GF_Write, 0, 0, 16, 64, zeros.data(), 16, 64, GDT_UInt16, 0, 0) ==
            CE_None);
      GDALClose(d);
    }
    fs::remove(f.path());
    write_jp2_copy(tif, f.path().string());
  }
  for (const char* b : {"B04", "B03", "B02"}) write_s2_band(tmp.file(std::string(b) + ".tif"), safe_band_seed(b));
  render_s2l2a(safe, tmp.file("safe.tif"), "");
  render_s2l2a(tmp.file("B04.tif") + "," + tmp.file("B03.tif") + "," + tmp.file("B02.tif"), tmp.file("hand.tif"),
         " --s2-offset on");
  Ds out(tmp.file("safe.tif")), hand(tmp.file("hand.tif"));
  REQUIRE(out.ds != nullptr);
  std::vector<std::uint8_t> mask(64 * 64);
  REQUIRE(out.ds->GetRasterBand(1)->GetMaskBand()->RasterIO(GF_Read, 0, 0, 64, 64, mask.data(), 64, 64, GDT_Byte, 0,
                                                            0) == CE_None);
  int invalid = 0, wrong = 0;
  for (int b = 1; b <= 3; ++b) {
    const auto s = band(out.ds, b), h = band(hand.ds, b);
    for (int y = 0; y < 64; ++y) {
      for (int x = 0; x < 64; ++x) {
        const std::size_t i = static_cast<std::size_t>(y * 64 + x);
        if (b == 1) invalid += mask[i] == 0;
        if (b == 1 && (mask[i] == 0) != (x < 16)) ++wrong;
        if (x >= 16 && s[i] != h[i]) ++wrong;
      }
    }
  }
  CHECK(invalid == 16 * 64);
  CHECK(wrong == 0);
}
