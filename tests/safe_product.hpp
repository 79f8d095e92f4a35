// Sentinel-2 SAFE products for the SAFE tests (tests/unit/test_safe.cpp,
// tests/e2e/test_safe.cpp), written by the tests themselves: ESA's folder layout and the
// structure of its MTD_MSIL1C.xml / MTD_MSIL2A.xml (cut to what a reader looks at and a
// little around it), with small lossless JPEG 2000 band files (JP2OpenJPEG, REVERSIBLE=YES)
// of s2_bands.hpp's digital numbers and grid: 64 x 64 pixels, EPSG:32633, 10 m.
#pragma once

#include <filesystem>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>

#include "catch_torch.hpp"
#include "s2_bands.hpp"
#include "support.hpp"

namespace copgen::test {

struct SafeSpec {
  bool l2a = true;
  std::string baseline = "05.10";   // PROCESSING_BASELINE
  std::optional<int> offset = -1000;  // BOA_ADD_OFFSET / RADIO_ADD_OFFSET of every band; unset: no list
  int granules = 1;
  std::vector<std::string> bands = {"B02", "B03", "B04", "B08"};  // the 10 m band files written
};

inline std::string safe_name(const SafeSpec& s) {
  return std::string("S2B_MSIL") + (s.l2a ? "2A" : "1C") + "_20240419T095549_N" + s.baseline.substr(0, 2) +
         s.baseline.substr(3, 2) + "_R122_T33TUF_20240419T123456";
}

// The product's metadata file, as ESA writes it (namespaces, Product_Info with the
// baseline and the granule's IMAGE_FILE list, Product_Image_Characteristics with the
// quantification, the offsets and the spectral list).
inline std::string safe_metadata_xml(const SafeSpec& s, const std::vector<std::string>& granules) {
  const std::string level = s.l2a ? "2A" : "1C";
  const std::string root = s.l2a ? "Level-2A_User_Product" : "Level-1C_User_Product";
  std::string x = "<?xml version=\"1.0\" encoding=\"UTF-8\" standalone=\"no\"?>\n<n1:" + root +
                  " xmlns:n1=\"https://psd-14.sentinel2.eo.esa.int/PSD/User_Product_Level-" + level +
                  ".xsd\" xmlns:xsi=\"http://www.w3.org/2001/XMLSchema-instance\">\n"
                  "  <n1:General_Info>\n    <Product_Info>\n"
                  "      <PRODUCT_START_TIME>2024-04-19T09:55:49.024Z</PRODUCT_START_TIME>\n"
                  "      <PRODUCT_URI>" + safe_name(s) + ".SAFE</PRODUCT_URI>\n"
                  "      <PROCESSING_LEVEL>Level-" + level + "</PROCESSING_LEVEL>\n"
                  "      <PRODUCT_TYPE>S2MSI" + level + "</PRODUCT_TYPE>\n"
                  "      <PROCESSING_BASELINE>" + s.baseline + "</PROCESSING_BASELINE>\n"
                  "      <PRODUCT_DOI>https://doi.org/10.5270/S2_-znk9xsj</PRODUCT_DOI>\n"
                  "      <Datatake datatakeIdentifier=\"GS2B_20240419T095549_037123_N05.10\">\n"
                  "        <SPACECRAFT_NAME>Sentinel-2B</SPACECRAFT_NAME>\n      </Datatake>\n"
                  "      <Product_Organisation>\n        <Granule_List>\n";
  for (const std::string& g : granules) {
    x += "          <Granule granuleIdentifier=\"S2B_OPER_MSI_L" + level + "_TL_2BPS_" + g +
         "\" imageFormat=\"JPEG2000\">\n";
    for (const std::string& b : s.bands) {
      x += "            <IMAGE_FILE>GRANULE/" + g + (s.l2a ? "/IMG_DATA/R10m/" : "/IMG_DATA/") +
           "T33TUF_20240419T095549_" + b + (s.l2a ? "_10m" : "") + "</IMAGE_FILE>\n";
    }
    x += "          </Granule>\n";
  }
  x += "        </Granule_List>\n      </Product_Organisation>\n    </Product_Info>\n"
       "    <Product_Image_Characteristics>\n"
       "      <Special_Values>\n        <SPECIAL_VALUE_TEXT>NODATA</SPECIAL_VALUE_TEXT>\n"
       "        <SPECIAL_VALUE_INDEX>0</SPECIAL_VALUE_INDEX>\n      </Special_Values>\n";
  const char* physical[] = {"B1", "B2", "B3", "B4", "B5", "B6", "B7", "B8", "B8A", "B9", "B10", "B11", "B12"};
  if (s.l2a) {
    x += "      <QUANTIFICATION_VALUES_LIST>\n"
         "        <BOA_QUANTIFICATION_VALUE unit=\"none\">10000</BOA_QUANTIFICATION_VALUE>\n"
         "        <AOT_QUANTIFICATION_VALUE unit=\"none\">1000.0</AOT_QUANTIFICATION_VALUE>\n"
         "        <WVP_QUANTIFICATION_VALUE unit=\"cm\">1000.0</WVP_QUANTIFICATION_VALUE>\n"
         "      </QUANTIFICATION_VALUES_LIST>\n";
  } else {
    x += "      <QUANTIFICATION_VALUE unit=\"none\">10000</QUANTIFICATION_VALUE>\n";
  }
  if (s.offset) {
    const std::string list = s.l2a ? "BOA_ADD_OFFSET_VALUES_LIST" : "Radiometric_Offset_List";
    const std::string item = s.l2a ? "BOA_ADD_OFFSET" : "RADIO_ADD_OFFSET";
    x += "      <" + list + ">\n";
    for (int i = 0; i < 13; ++i) {
      x += "        <" + item + " band_id=\"" + std::to_string(i) + "\">" + std::to_string(*s.offset) + "</" + item +
           ">\n";
    }
    x += "      </" + list + ">\n";
  }
  x += "      <Spectral_Information_List>\n";
  for (int i = 0; i < 13; ++i) {
    x += "        <Spectral_Information bandId=\"" + std::to_string(i) + "\" physicalBand=\"" + physical[i] +
         "\">\n          <RESOLUTION>10</RESOLUTION>\n        </Spectral_Information>\n";
  }
  x += "      </Spectral_Information_List>\n    </Product_Image_Characteristics>\n  </n1:General_Info>\n</n1:" +
       root + ">\n";
  return x;
}

// A lossless JPEG 2000 copy (JP2OpenJPEG, REVERSIBLE=YES) of the raster `src` at `path`.
inline void write_jp2_copy(const std::string& src_path, const std::string& path) {
  GDALAllRegister();
  GDALDatasetH src = GDALOpen(src_path.c_str(), GA_ReadOnly);
  REQUIRE(src != nullptr);
  GDALDriverH jp2 = GDALGetDriverByName("JP2OpenJPEG");
  REQUIRE(jp2 != nullptr);  // Debian's libgdal32 (libopenjp2-7)
  char** options = nullptr;
  options = CSLSetNameValue(options, "REVERSIBLE", "YES");
  options = CSLSetNameValue(options, "QUALITY", "100");
  GDALDatasetH dst = GDALCreateCopy(jp2, path.c_str(), src, FALSE, options, nullptr, nullptr);
  CSLDestroy(options);
  REQUIRE(dst != nullptr);
  GDALClose(dst);
  GDALClose(src);
}

// A lossless JPEG 2000 band file of write_s2_band's digital numbers (pattern `seed`) and grid.
inline void write_jp2_band(const std::string& path, int seed) {
  const std::string tif = "/vsimem/safe-band-" + std::to_string(seed) + ".tif";
  write_s2_band(tif, seed);
  write_jp2_copy(tif, path);
  VSIUnlink(tif.c_str());
}

// The pattern of a band in the e2e comparisons: B04 0, B03 1, B02 2, others 3.
inline int safe_band_seed(const std::string& band) {
  return band == "B04" ? 0 : band == "B03" ? 1 : band == "B02" ? 2 : 3;
}

// Writes a SAFE product folder under `dir`; returns its path ("<dir>/<name>.SAFE").
inline std::string write_safe(const std::string& dir, const SafeSpec& s = {}) {
  namespace fs = std::filesystem;
  const std::string root = dir + "/" + safe_name(s) + ".SAFE";
  std::vector<std::string> granules;
  for (int g = 0; g < s.granules; ++g) {
    granules.push_back(std::string("L") + (s.l2a ? "2A" : "1C") + "_T33TUF_A03712" + std::to_string(3 + g) +
                       "_20240419T100052");
  }
  for (const char* d : {"AUX_DATA", "DATASTRIP/DS_2BPS_20240419T123456_S20240419T100052/QI_DATA", "HTML", "rep_info"}) {
    fs::create_directories(root + "/" + d);
  }
  std::ofstream(root + "/manifest.safe") << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<xfdu:XFDU/>\n";
  std::ofstream(root + (s.l2a ? "/MTD_MSIL2A.xml" : "/MTD_MSIL1C.xml")) << safe_metadata_xml(s, granules);
  for (const std::string& g : granules) {
    const std::string img = root + "/GRANULE/" + g + "/IMG_DATA";
    fs::create_directories(root + "/GRANULE/" + g + "/QI_DATA");
    std::ofstream(root + "/GRANULE/" + g + "/MTD_TL.xml") << "<?xml version=\"1.0\"?>\n";
    if (s.l2a) {
      fs::create_directories(img + "/R10m");
      fs::create_directories(img + "/R20m");
      for (const std::string& b : s.bands) {
        write_jp2_band(img + "/R10m/T33TUF_20240419T095549_" + b + "_10m.jp2", safe_band_seed(b));
      }
      // a 20 m band of another pattern, never read
      write_jp2_band(img + "/R20m/T33TUF_20240419T095549_B04_20m.jp2", 7);
    } else {
      fs::create_directories(img);
      for (const std::string& b : s.bands) {
        write_jp2_band(img + "/T33TUF_20240419T095549_" + b + ".jp2", safe_band_seed(b));
      }
    }
  }
  return root;
}

// Zips the SAFE folder `safe` (its folder at the zip's root, as the Data Space delivers
// it) into `zip`, with GDAL's /vsizip/ writer.
inline void zip_safe(const std::string& safe, const std::string& zip) {
  namespace fs = std::filesystem;
  const fs::path base = fs::path(safe).parent_path();
  for (const auto& e : fs::recursive_directory_iterator(safe)) {
    if (!e.is_regular_file()) continue;
    const std::string rel = fs::relative(e.path(), base).generic_string();
    const std::string bytes = read_file_bytes(e.path().string());
    VSILFILE* f = VSIFOpenL(("/vsizip/" + zip + "/" + rel).c_str(), "wb");
    REQUIRE(f != nullptr);
    REQUIRE(VSIFWriteL(bytes.data(), 1, bytes.size(), f) == bytes.size());
    VSIFCloseL(f);
  }
}

}  // namespace copgen::test
