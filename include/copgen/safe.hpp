// Sentinel-2 SAFE products as inputs, as the Copernicus Data Space delivers them: a
// "S2B_MSIL2A_....SAFE" folder, or a .zip holding one. What resolve_input (scene.hpp)
// reads of one: the 10 m B04, B03 and B02 JPEG 2000 files of its granule (their own grid:
// the tile's CRS and geotransform), and the Sentinel-2 offset its metadata file says.
//
//   if (copgen::is_safe_product(path)) {
//     const copgen::SafeProduct p = copgen::read_safe_product(path, copgen::Modality::S2L2A, "S2L2A input");
//     // p.bands: ".../GRANULE/L2A_T32TMT_.../IMG_DATA/R10m/T32TMT_20240419T095549_B04_10m.jp2", B03, B02
//     // p.offset: {1000, "MTD_MSIL2A.xml BOA_ADD_OFFSET -1000"}
//   }
//
// The layout read (ESA's product format):
//   <name>.SAFE/MTD_MSIL2A.xml                                   (L1C: MTD_MSIL1C.xml)
//   <name>.SAFE/GRANULE/<granule>/IMG_DATA/R10m/<tile>_<time>_B04_10m.jp2   (L2A)
//   <name>.SAFE/GRANULE/<granule>/IMG_DATA/<tile>_<time>_B04.jp2            (L1C)
// A .zip is read in place through GDAL's /vsizip/ (nothing is extracted).
#pragma once

#include <optional>
#include <string>
#include <vector>

#include "copgen/modality.hpp"
#include "copgen/stac.hpp"

namespace copgen {

struct SafeProduct {
  std::string path;           // as given
  std::string root;           // where GDAL reads the .SAFE folder: the folder, or "/vsizip/<zip>/<name>.SAFE"
  std::string name;           // the product's name ("S2B_MSIL2A_..._T32TMT_20240419T123456")
  std::string level;          // "L1C" or "L2A"
  std::string metadata_file;  // "MTD_MSIL1C.xml" or "MTD_MSIL2A.xml"
  std::string granule;        // the granule folder's name
  std::vector<std::string> bands;  // the B04, B03 and B02 files (GDAL paths), in rendering order
  // The offset the metadata file says (safe_metadata_offset); unset when it says nothing.
  std::optional<S2OffsetEvidence> offset;
  // The value the metadata file names NODATA (safe_nodata): outside the swath.
  double nodata = 0.0;
};

// True when `path` is a SAFE product by its look, without reading it: a folder whose
// name ends in ".SAFE" or that holds MTD_MSIL1C.xml / MTD_MSIL2A.xml, or a file whose
// name ends in ".zip" (read_safe_product says when a .zip holds no product).
bool is_safe_product(const std::string& path);

// Reads the SAFE product at `path` (is_safe_product) for `modality`: its metadata file,
// its one granule and the granule's 10 m B04, B03 and B02 files. Throws InputError naming
// `what` and the path: a .zip without a product, a product of the other level (an MSIL1C
// given as S2L2A) or for a modality that is not Sentinel-2, no metadata file, no granule
// or more than one, missing band files (named), an unreadable metadata file.
SafeProduct read_safe_product(const std::string& path, Modality modality, const std::string& what);

// The Sentinel-2 offset the metadata file `xml` (named `file`, e.g. "MTD_MSIL2A.xml")
// says of the bands B04, B03 and B02: their BOA_ADD_OFFSET (L2A) or RADIO_ADD_OFFSET (L1C)
// ("-1000": 1000 DNs), else its PROCESSING_BASELINE (04.00 and later: 1000, else 0); unset
// when it says neither. Source strings: "MTD_MSIL2A.xml BOA_ADD_OFFSET -1000",
// "MTD_MSIL2A.xml PROCESSING_BASELINE 05.10 >= 04.00". Throws InputError naming `file`
// when the three bands' offsets differ.
std::optional<S2OffsetEvidence> safe_metadata_offset(const std::string& xml, const std::string& file);

// The digital number the metadata file `xml` names NODATA among its Special_Values
// (SPECIAL_VALUE_TEXT NODATA, SPECIAL_VALUE_INDEX n); 0, the format's, when it names none.
// The band files do not carry it, so resolve_input passes it on (ModalityInput::nodata).
double safe_nodata(const std::string& xml);

}  // namespace copgen
