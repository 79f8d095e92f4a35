// Sentinel-2 SAFE products (safe.hpp) on products the tests write (tests/safe_product.hpp):
// what is taken for one (folders, .zip files), the band files read from its one granule
// (L2A: IMG_DATA/R10m/*_B04_10m.jp2, L1C: IMG_DATA/*_B04.jp2), the offset its metadata
// file says, and the input errors of products copgen cannot take.
#include "catch_torch.hpp"

#include <filesystem>
#include <fstream>

#include "copgen/error.hpp"
#include "copgen/raster_io.hpp"
#include "copgen/safe.hpp"
#include "copgen/scene.hpp"
#include "safe_product.hpp"
#include "support.hpp"

using namespace copgen;
using copgen::test::error_message_of;
using copgen::test::safe_metadata_xml;
using copgen::test::SafeSpec;
using copgen::test::TempDir;
using copgen::test::write_safe;
using copgen::test::zip_safe;
namespace fs = std::filesystem;

namespace {

bool ends_with(const std::string& s, const std::string& suffix) {
  return s.size() >= suffix.size() && s.compare(s.size() - suffix.size(), suffix.size(), suffix) == 0;
}

const std::string kGranuleL2A = "GRANULE/L2A_T33TUF_A037123_20240419T100052/IMG_DATA/R10m/";

}  // namespace

TEST_CASE("safe: what is a SAFE product by its look", "[safe]") {
  TempDir tmp;
  const std::string safe = write_safe(tmp.path);
  CHECK(is_safe_product(safe));
  CHECK(is_safe_product(safe + "/"));
  fs::create_directories(tmp.file("renamed"));
  std::ofstream(tmp.file("renamed/MTD_MSIL1C.xml")) << "<x/>";
  CHECK(is_safe_product(tmp.file("renamed")));  // a product folder under another name
  std::ofstream(tmp.file("p.zip")) << "not a zip";
  CHECK(is_safe_product(tmp.file("p.zip")));   // read_safe_product says what it is not
  fs::create_directories(tmp.file("plain"));
  CHECK_FALSE(is_safe_product(tmp.file("plain")));
  CHECK_FALSE(is_safe_product(tmp.file("missing.zip")));
  CHECK_FALSE(is_safe_product(safe + "/MTD_MSIL2A.xml"));
  CHECK_FALSE(is_safe_product("a.tif,b.tif,c.tif"));
}

TEST_CASE("safe: an L2A folder's 10 m B04, B03, B02 and its offset", "[safe]") {
  TempDir tmp;
  const std::string safe = write_safe(tmp.path);
  const SafeProduct p = read_safe_product(safe, Modality::S2L2A, "S2L2A input");
  CHECK(p.root == safe);
  CHECK(p.level == "L2A");
  CHECK(p.name == "S2B_MSIL2A_20240419T095549_N0510_R122_T33TUF_20240419T123456");
  CHECK(p.metadata_file == "MTD_MSIL2A.xml");
  CHECK(p.granule == "L2A_T33TUF_A037123_20240419T100052");
  REQUIRE(p.bands.size() == 3);
  CHECK(p.bands[0] == safe + "/" + kGranuleL2A + "T33TUF_20240419T095549_B04_10m.jp2");
  CHECK(p.bands[1] == safe + "/" + kGranuleL2A + "T33TUF_20240419T095549_B03_10m.jp2");
  CHECK(p.bands[2] == safe + "/" + kGranuleL2A + "T33TUF_20240419T095549_B02_10m.jp2");
  REQUIRE(p.offset);
  CHECK(p.offset->dn == 1000);
  CHECK(p.offset->source == "MTD_MSIL2A.xml BOA_ADD_OFFSET -1000");
  // the tile's grid is the JPEG 2000 file's own
  const RasterInfo info = probe_raster(p.bands[0], "S2L2A input");
  CHECK(info.driver == "JP2OpenJPEG");
  CHECK(info.width == 64);
  CHECK(info.data_type == "UInt16");
  CHECK(info.geo.geotransform == std::array<double, 6>{500000.0, 10.0, 0.0, 5000000.0, 0.0, -10.0});
  CHECK_THAT(info.geo.crs_wkt, Catch::Contains("UTM zone 33N"));
}

TEST_CASE("safe: an L1C folder and a .zip", "[safe]") {
  TempDir tmp;
  SafeSpec l1c;
  l1c.l2a = false;
  const std::string safe = write_safe(tmp.path, l1c);
  const SafeProduct p = read_safe_product(safe, Modality::S2L1C, "S2L1C input");
  CHECK(p.level == "L1C");
  CHECK(p.metadata_file == "MTD_MSIL1C.xml");
  REQUIRE(p.bands.size() == 3);
  CHECK(p.bands[0] ==
        safe + "/GRANULE/L1C_T33TUF_A037123_20240419T100052/IMG_DATA/T33TUF_20240419T095549_B04.jp2");
  CHECK(ends_with(p.bands[2], "/IMG_DATA/T33TUF_20240419T095549_B02.jp2"));
  REQUIRE(p.offset);
  CHECK(p.offset->dn == 1000);
  CHECK(p.offset->source == "MTD_MSIL1C.xml RADIO_ADD_OFFSET -1000");

  const std::string zip = tmp.file("product.zip");
  zip_safe(safe, zip);
  const SafeProduct z = read_safe_product(zip, Modality::S2L1C, "S2L1C input");
  const std::string root = "/vsizip/" + zip + "/" + fs::path(safe).filename().string();
  CHECK(z.root == root);
  CHECK(z.name == p.name);
  CHECK(z.bands[0] == root + "/GRANULE/L1C_T33TUF_A037123_20240419T100052/IMG_DATA/T33TUF_20240419T095549_B04.jp2");
  CHECK(z.offset->source == "MTD_MSIL1C.xml RADIO_ADD_OFFSET -1000");
  CHECK(probe_raster(z.bands[0], "S2L1C input").width == 64);
}

TEST_CASE("safe: the offset of the metadata file, by list, else by baseline", "[safe]") {
  SafeSpec s;
  s.offset.reset();
  const std::vector<std::string> g = {"L2A_T33TUF_A037123_20240419T100052"};
  auto e = safe_metadata_offset(safe_metadata_xml(s, g), "MTD_MSIL2A.xml");
  REQUIRE(e);
  CHECK(e->dn == 1000);
  CHECK(e->source == "MTD_MSIL2A.xml PROCESSING_BASELINE 05.10 >= 04.00");
  s.baseline = "02.14";  // a 2019 product: no offset
  e = safe_metadata_offset(safe_metadata_xml(s, g), "MTD_MSIL2A.xml");
  REQUIRE(e);
  CHECK(e->dn == 0);
  CHECK(e->source == "MTD_MSIL2A.xml PROCESSING_BASELINE 02.14 < 04.00");
  s.l2a = false;
  s.baseline = "03.01";
  e = safe_metadata_offset(safe_metadata_xml(s, g), "MTD_MSIL1C.xml");
  REQUIRE(e);
  CHECK(e->dn == 0);
  CHECK(e->source == "MTD_MSIL1C.xml PROCESSING_BASELINE 03.01 < 04.00");
  CHECK_FALSE(safe_metadata_offset("<n1:Level-2A_User_Product/>", "MTD_MSIL2A.xml"));

  // the offsets of B04, B03, B02 (band_id 3, 2, 1) are the ones read
  const std::string odd =
      "<BOA_ADD_OFFSET_VALUES_LIST><BOA_ADD_OFFSET band_id=\"0\">-5</BOA_ADD_OFFSET>"
      "<BOA_ADD_OFFSET band_id=\"1\">-1000</BOA_ADD_OFFSET><BOA_ADD_OFFSET band_id=\"2\">-1000</BOA_ADD_OFFSET>"
      "<BOA_ADD_OFFSET band_id=\"3\">-1000</BOA_ADD_OFFSET></BOA_ADD_OFFSET_VALUES_LIST>";
  e = safe_metadata_offset(odd, "MTD_MSIL2A.xml");
  REQUIRE(e);
  CHECK(e->dn == 1000);
  const std::string differ =
      "<BOA_ADD_OFFSET band_id=\"1\">-1000</BOA_ADD_OFFSET><BOA_ADD_OFFSET band_id=\"2\">-1000</BOA_ADD_OFFSET>"
      "<BOA_ADD_OFFSET band_id=\"3\">-900</BOA_ADD_OFFSET>";
  CHECK(error_message_of([&] { safe_metadata_offset(differ, "MTD_MSIL2A.xml"); }) ==
        "3: 'MTD_MSIL2A.xml': BOA_ADD_OFFSET differs between B04, B03 and B02 (-900, -1000, -1000); copgen "
        "subtracts one offset from the three");
}

TEST_CASE("safe: products copgen cannot take are input errors naming what is wrong", "[safe]") {
  TempDir tmp;
  SafeSpec l1c;
  l1c.l2a = false;
  const std::string l1c_safe = write_safe(tmp.file("a"), l1c);
  // the message of the InputError (exit code 3) read_safe_product throws
  const auto message = [](const std::string& path, Modality m) {
    const std::string said = error_message_of([&] { read_safe_product(path, m, modality_name(m) + " input"); });
    CHECK(said.rfind("3: ", 0) == 0);
    return said.substr(3);
  };
  CHECK(message(l1c_safe, Modality::S2L2A) ==
        "S2L2A input '" + l1c_safe + "': a Sentinel-2 Level-1C product (MTD_MSIL1C.xml); S2L2A takes MSIL2A "
        "products (give this one as S2L1C)");
  CHECK(message(l1c_safe, Modality::DEM) ==
        "DEM input '" + l1c_safe + "': a Sentinel-2 Level-1C product (MTD_MSIL1C.xml); DEM is not a Sentinel-2 "
        "modality (SAFE products are S2L1C or S2L2A inputs)");
  CHECK_THROWS_AS(read_safe_product(l1c_safe, Modality::S2L2A, "S2L2A input"), InputError);

  SafeSpec two;
  two.granules = 2;
  const std::string two_safe = write_safe(tmp.file("b"), two);
  CHECK(message(two_safe, Modality::S2L2A) ==
        "S2L2A input '" + two_safe + "': a SAFE product of 2 granules (L2A_T33TUF_A037123_20240419T100052, "
        "L2A_T33TUF_A037124_20240419T100052); copgen reads products of one tile: give one granule's B04, B03 and "
        "B02 files as a band list");

  SafeSpec partial;
  partial.bands = {"B04", "B08"};
  const std::string partial_safe = write_safe(tmp.file("c"), partial);
  CHECK(message(partial_safe, Modality::S2L2A) ==
        "S2L2A input '" + partial_safe + "': a SAFE product without its 10 m *_B03_10m.jp2, *_B02_10m.jp2 in " +
            kGranuleL2A);

  fs::create_directories(tmp.file("d/X.SAFE/GRANULE"));
  CHECK(message(tmp.file("d/X.SAFE"), Modality::S2L2A) ==
        "S2L2A input '" + tmp.file("d/X.SAFE") + "': a SAFE product without its metadata file (MTD_MSIL1C.xml "
        "or MTD_MSIL2A.xml); only Sentinel-2 Level-1C and Level-2A products are inputs");

  const std::string no_granule = write_safe(tmp.file("e"));
  fs::remove_all(no_granule + "/GRANULE");
  CHECK(message(no_granule, Modality::S2L2A) ==
        "S2L2A input '" + no_granule + "': a SAFE product without a granule (no folder under GRANULE/)");

  std::ofstream(tmp.file("junk.zip")) << "not a zip";
  CHECK(message(tmp.file("junk.zip"), Modality::S2L2A) ==
        "S2L2A input '" + tmp.file("junk.zip") + "': not a .zip GDAL can read (or an empty one)");
  const std::string other = tmp.file("other.zip");
  {
    VSILFILE* f = VSIFOpenL(("/vsizip/" + other + "/readme.txt").c_str(), "wb");
    REQUIRE(f != nullptr);
    VSIFWriteL("hi", 1, 2, f);
    VSIFCloseL(f);
  }
  CHECK(message(other, Modality::S2L2A) ==
        "S2L2A input '" + other + "': a .zip without a Sentinel-2 SAFE product (no <name>.SAFE folder with "
        "MTD_MSIL1C.xml or MTD_MSIL2A.xml at its root)");

  // resolve_input takes the same errors, and refuses a thumbnail of a product
  CHECK(error_message_of([&] { resolve_input(Modality::S2L2A, l1c_safe, InputKind::Auto); }) ==
        "3: " + message(l1c_safe, Modality::S2L2A));
  CHECK_THROWS_AS(resolve_input(Modality::S2L1C, l1c_safe, InputKind::Thumbnail), UsageError);
}

TEST_CASE("safe: resolve_input reads a product's bands and offset", "[safe]") {
  TempDir tmp;
  const std::string safe = write_safe(tmp.path);
  const ModalityInput in = resolve_input(Modality::S2L2A, safe, InputKind::Auto);
  CHECK(in.kind == InputKind::Physical);
  REQUIRE(in.files.size() == 3);
  CHECK(ends_with(in.files[0], "_B04_10m.jp2"));
  CHECK((in.bands == std::vector<int>{1, 1, 1}));
  CHECK(in.dn_offset == 1000);
  CHECK(in.offset_source == "MTD_MSIL2A.xml BOA_ADD_OFFSET -1000");
  const ModalityInput off = resolve_input(Modality::S2L2A, safe, InputKind::Auto, {}, S2Offset::Off);
  CHECK(off.dn_offset == 0);
  CHECK(off.offset_source == "--s2-offset off");

  // neither the metadata file nor the product's name ("_Nxxyy_") says: assumed none
  SafeSpec quiet;
  quiet.offset.reset();
  quiet.baseline = "xx.yy";
  const std::string q = write_safe(tmp.file("q"), quiet);
  const ModalityInput named = resolve_input(Modality::S2L2A, q, InputKind::Auto);
  CHECK(named.dn_offset == 0);
  CHECK(named.offset_source == "none");
}

TEST_CASE("safe: the value the metadata file names NODATA", "[safe]") {
  SafeSpec spec;
  CHECK(safe_nodata(safe_metadata_xml(spec, {"G"})) == 0.0);
  const std::string xml = "<n1:Level-2A_User_Product><Special_Values>\n  <SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT>\n"
                          "  <SPECIAL_VALUE_INDEX>7</SPECIAL_VALUE_INDEX>\n</Special_Values><Special_Values>"
                          "<SPECIAL_VALUE_TEXT>SATURATED</SPECIAL_VALUE_TEXT><SPECIAL_VALUE_INDEX>65535"
                          "</SPECIAL_VALUE_INDEX></Special_Values></n1:Level-2A_User_Product>";
  CHECK(safe_nodata(xml) == 7.0);
  CHECK(safe_nodata("<Special_Values><SPECIAL_VALUE_TEXT>SATURATED</SPECIAL_VALUE_TEXT><SPECIAL_VALUE_INDEX>65535"
                    "</SPECIAL_VALUE_INDEX></Special_Values>") == 0.0);  // none named: the format's 0
  TempDir tmp;
  const ModalityInput in = resolve_input(Modality::S2L2A, write_safe(tmp.path, spec), InputKind::Physical);
  REQUIRE(in.nodata.has_value());
  CHECK(*in.nodata == 0.0);
}
