#include "copgen/safe.hpp"

#include <array>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <map>
#include <regex>

#include <fmt/format.h>

#include "copgen/error.hpp"
#include "copgen/raster_io.hpp"
#include "text.hpp"

namespace copgen {

namespace fs = std::filesystem;
using detail::ends_with_ci;
using detail::lower;

namespace {

constexpr std::array<const char*, 2> kMetadataFiles = {"MTD_MSIL1C.xml", "MTD_MSIL2A.xml"};

// The name of a path without a trailing '/'.
std::string name_of(const std::string& path) {
  std::string p = path;
  while (p.size() > 1 && p.back() == '/') p.pop_back();
  return fs::path(p).filename().string();
}

// The metadata file among `entries` (either level's, any case), "" when none.
std::string metadata_in(const std::vector<FolderEntry>& entries) {
  for (const FolderEntry& e : entries) {
    for (const char* m : kMetadataFiles) {
      if (!e.folder && lower(e.name) == lower(m)) return e.name;
    }
  }
  return "";
}

[[noreturn]] void refuse(const std::string& what, const std::string& path, const std::string& why) {
  throw InputError(what + " '" + path + "': " + why);
}

// Where GDAL reads the .SAFE folder of `path`: the folder itself, or the one .SAFE folder
// at the root of a .zip (or the zip's root when it holds the product's files directly).
std::string product_root(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) return path;
  if (!fs::is_regular_file(path, ec)) refuse(what, path, "file not found");
  const std::string zip = "/vsizip/" + path;
  const std::vector<FolderEntry> top = list_folder(zip);
  if (top.empty()) refuse(what, path, "not a .zip GDAL can read (or an empty one)");
  if (!metadata_in(top).empty()) return zip;
  std::vector<std::string> safes;
  for (const FolderEntry& e : top) {
    if (e.folder && ends_with_ci(e.name, ".SAFE")) safes.push_back(e.name);
  }
  if (safes.size() > 1) {
    refuse(what, path, "a .zip of " + std::to_string(safes.size()) + " SAFE products (" + detail::join(safes, ", ") +
                           "); give one product per input");
  }
  if (safes.empty()) {
    refuse(what, path, "a .zip without a Sentinel-2 SAFE product (no <name>.SAFE folder with MTD_MSIL1C.xml or "
                       "MTD_MSIL2A.xml at its root)");
  }
  return zip + "/" + safes.front();
}

// The band file of `band` ("B04") among `entries`: the file whose name ends in
// "_B04_10m.jp2" (L2A) or "_B04.jp2" (L1C), any case; "" when there is none.
std::string band_file_in(const std::vector<FolderEntry>& entries, const std::string& band, bool l2a) {
  const std::string suffix = "_" + band + (l2a ? "_10m.jp2" : ".jp2");
  for (const FolderEntry& e : entries) {
    if (!e.folder && ends_with_ci(e.name, suffix)) return e.name;
  }
  return "";
}

// The one granule folder of the product at `root`.
std::string granule_of(const std::string& root, const std::string& path, const std::string& what) {
  std::vector<std::string> granules;
  for (const FolderEntry& e : list_folder(root + "/GRANULE")) {
    if (e.folder) granules.push_back(e.name);
  }
  if (granules.empty()) refuse(what, path, "a SAFE product without a granule (no folder under GRANULE/)");
  if (granules.size() > 1) {
    refuse(what, path, "a SAFE product of " + std::to_string(granules.size()) + " granules (" +
                           detail::join(granules, ", ") + "); copgen reads products of one tile: give one "
                           "granule's B04, B03 and B02 files as a band list");
  }
  return granules.front();
}

// The text of each element `name` (any namespace prefix) in `xml`, with its attributes.
struct XmlElement {
  std::string attributes;
  std::string text;
};
std::vector<XmlElement> elements(const std::string& xml, const std::string& name) {
  const std::regex re("<(?:[A-Za-z0-9_.-]+:)?" + name + "(\\s[^>]*)?>([^<]*)<");
  std::vector<XmlElement> out;
  for (std::sregex_iterator it(xml.begin(), xml.end(), re), end; it != end; ++it) {
    out.push_back({(*it)[1].str(), (*it)[2].str()});
  }
  return out;
}

std::string trimmed(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// The value of attribute `name` in an element's attribute text, "" when absent.
std::string attribute(const std::string& attributes, const std::string& name) {
  const std::regex re("\\b" + name + "\\s*=\\s*\"([^\"]*)\"");
  std::smatch m;
  return std::regex_search(attributes, m, re) ? m[1].str() : "";
}

// The band_id of B04, B03 and B02 in the metadata file: its Spectral_Information list
// (physicalBand "B4" -> bandId), else the format's numbering (B01 = 0, ..., B04 = 3).
std::array<std::string, 3> rgb_band_ids(const std::string& xml) {
  std::array<std::string, 3> ids = {"3", "2", "1"};
  const std::array<const char*, 3> physical = {"B4", "B3", "B2"};
  const std::regex re("<Spectral_Information\\s[^>]*>");
  for (std::sregex_iterator it(xml.begin(), xml.end(), re), end; it != end; ++it) {
    const std::string tag = it->str();
    const std::string band = attribute(tag, "physicalBand"), id = attribute(tag, "bandId");
    for (std::size_t i = 0; i < physical.size(); ++i) {
      if (band == physical[i] && !id.empty()) ids[i] = id;
    }
  }
  return ids;
}

}  // namespace

double safe_nodata(const std::string& xml) {
  const std::regex re("<Special_Values>\\s*<SPECIAL_VALUE_TEXT>\\s*NODATA\\s*</SPECIAL_VALUE_TEXT>\\s*"
                      "<SPECIAL_VALUE_INDEX>\\s*([0-9]+)\\s*</SPECIAL_VALUE_INDEX>");
  std::smatch m;
  return std::regex_search(xml, m, re) ? std::stod(m[1].str()) : 0.0;
}

bool is_safe_product(const std::string& path) {
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    if (ends_with_ci(name_of(path), ".SAFE")) return true;
    for (const char* m : kMetadataFiles) {
      if (fs::is_regular_file(fs::path(path) / m, ec)) return true;
    }
    return false;
  }
  return ends_with_ci(path, ".zip") && fs::is_regular_file(path, ec);
}

std::optional<S2OffsetEvidence> safe_metadata_offset(const std::string& xml, const std::string& file) {
  const std::string key = lower(file).find("msil1c") != std::string::npos ? "RADIO_ADD_OFFSET" : "BOA_ADD_OFFSET";
  std::map<std::string, std::string> by_id;
  for (const XmlElement& e : elements(xml, key)) by_id[attribute(e.attributes, "band_id")] = trimmed(e.text);
  if (!by_id.empty()) {
    const std::array<std::string, 3> ids = rgb_band_ids(xml);
    std::array<std::string, 3> values;
    for (std::size_t i = 0; i < ids.size(); ++i) {
      const auto it = by_id.find(ids[i]);
      if (it == by_id.end()) {
        throw InputError("'" + file + "': " + key + " is given for some bands but not for band_id " + ids[i] +
                         " (" + std::array<const char*, 3>{"B04", "B03", "B02"}[i] + ")");
      }
      values[i] = it->second;
    }
    char* end = nullptr;
    const double v = std::strtod(values[0].c_str(), &end);
    if (end == values[0].c_str() || *end != '\0' || !std::isfinite(v)) {
      throw InputError("'" + file + "': " + key + " '" + values[0] + "' is not a number");
    }
    for (const std::string& other : values) {
      if (std::strtod(other.c_str(), nullptr) != v) {
        throw InputError("'" + file + "': " + key + " differs between B04, B03 and B02 (" + values[0] + ", " +
                         values[1] + ", " + values[2] + "); copgen subtracts one offset from the three");
      }
    }
    return S2OffsetEvidence{-v + 0.0, file + " " + key + " " + values[0]};
  }
  for (const XmlElement& e : elements(xml, "PROCESSING_BASELINE")) {
    const std::string baseline = trimmed(e.text);
    if (const auto dn = s2_offset_of_baseline(baseline)) {
      return S2OffsetEvidence{*dn, file + " PROCESSING_BASELINE " + baseline + (*dn > 0 ? " >= 04.00" : " < 04.00")};
    }
  }
  return std::nullopt;
}

SafeProduct read_safe_product(const std::string& path, Modality modality, const std::string& what) {
  SafeProduct p;
  p.path = path;
  p.root = product_root(path, what);
  p.metadata_file = metadata_in(list_folder(p.root));
  if (p.metadata_file.empty()) {
    refuse(what, path, "a SAFE product without its metadata file (MTD_MSIL1C.xml or MTD_MSIL2A.xml); only "
                       "Sentinel-2 Level-1C and Level-2A products are inputs");
  }
  const bool l2a = lower(p.metadata_file) == "mtd_msil2a.xml";
  p.level = l2a ? "L2A" : "L1C";
  p.name = name_of(p.root);
  if (ends_with_ci(p.name, ".zip")) p.name.resize(p.name.size() - 4);
  if (ends_with_ci(p.name, ".SAFE")) p.name.resize(p.name.size() - 5);
  const Modality level = l2a ? Modality::S2L2A : Modality::S2L1C;
  if (modality != level) {
    const bool s2 = modality == Modality::S2L1C || modality == Modality::S2L2A;
    refuse(what, path, "a Sentinel-2 Level-" + p.level.substr(1) + " product (" + p.metadata_file + "); " +
                           modality_name(modality) +
                           (s2 ? " takes MSI" + std::string(l2a ? "L1C" : "L2A") + " products (give this one as " +
                                     modality_name(level) + ")"
                               : " is not a Sentinel-2 modality (SAFE products are S2L1C or S2L2A inputs)"));
  }
  p.granule = granule_of(p.root, path, what);
  const std::string rel = "GRANULE/" + p.granule + (l2a ? "/IMG_DATA/R10m" : "/IMG_DATA");
  const std::vector<FolderEntry> files = list_folder(p.root + "/" + rel);
  std::vector<std::string> missing;
  for (const char* band : {"B04", "B03", "B02"}) {
    const std::string f = band_file_in(files, band, l2a);
    if (f.empty()) missing.push_back(std::string("*_") + band + (l2a ? "_10m.jp2" : ".jp2"));
    p.bands.push_back(p.root + "/" + rel + "/" + f);
  }
  if (!missing.empty()) {
    refuse(what, path, "a SAFE product without its 10 m " + detail::join(missing, ", ") + " in " + rel + "/");
  }
  const std::string xml = read_text(p.root + "/" + p.metadata_file, what);
  p.nodata = safe_nodata(xml);
  try {
    p.offset = safe_metadata_offset(xml, p.metadata_file);
  } catch (const InputError& e) {
    refuse(what, path, e.what());
  }
  return p;
}

}  // namespace copgen
