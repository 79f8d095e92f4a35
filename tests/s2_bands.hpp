// Sentinel-2 band files for the offset tests (tests/unit/test_s2_offset.cpp,
// tests/e2e/test_s2_offset.cpp): single-band UInt16 GeoTIFFs of 64 x 64 digital numbers in
// EPSG:32633 at 10 m, written with GDAL directly (not the library), with the offset,
// scale and metadata items a test gives them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <gdal.h>

#include "catch_torch.hpp"
#include "support.hpp"

namespace copgen::test {

struct S2BandFile {
  int seed = 0;                                  // pattern: DN = 1000 + (37 x + 91 y + 401 seed) % 3000
  std::optional<double> offset;                  // GDAL band offset (value = DN * scale + offset)
  std::optional<double> scale;                   // GDAL band scale
  std::map<std::string, std::string> band_items;  // band metadata items (BOA_ADD_OFFSET=-1000)
  std::map<std::string, std::string> file_items;  // dataset metadata items (PROCESSING_BASELINE=05.10)
};

inline void write_s2_band(const std::string& path, const S2BandFile& f) {
  GDALAllRegister();
  const int n = 64;
  GDALDatasetH ds = GDALCreate(GDALGetDriverByName("GTiff"), path.c_str(), n, n, 1, GDT_UInt16, nullptr);
  REQUIRE(ds != nullptr);
  double gt[6] = {500000.0, 10.0, 0.0, 5000000.0, 0.0, -10.0};
  GDALSetGeoTransform(ds, gt);
  set_epsg(ds, 32633);
  GDALRasterBandH band = GDALGetRasterBand(ds, 1);
  if (f.offset) GDALSetRasterOffset(band, *f.offset);
  if (f.scale) GDALSetRasterScale(band, *f.scale);
  for (const auto& [k, v] : f.band_items) GDALSetMetadataItem(band, k.c_str(), v.c_str(), nullptr);
  for (const auto& [k, v] : f.file_items) GDALSetMetadataItem(ds, k.c_str(), v.c_str(), nullptr);
  std::vector<std::uint16_t> dn(static_cast<std::size_t>(n * n));
  for (int y = 0; y < n; ++y) {
    for (int x = 0; x < n; ++x) {
      const int v = 1000 + (37 * x + 91 * y + 401 * f.seed) % 3000;
      dn[static_cast<std::size_t>(y * n + x)] = static_cast<std::uint16_t>(v);
    }
  }
  REQUIRE(GDALRasterIO(band, GF_Write, 0, 0, n, n, dn.data(), n, n, GDT_UInt16, 0, 0) == CE_None);
  GDALClose(ds);
}

// A plain band file of pattern `seed` (no offset, scale or metadata items).
inline void write_s2_band(const std::string& path, int seed) {
  S2BandFile f;
  f.seed = seed;
  write_s2_band(path, f);
}

// Every pixel of the three bands of a rendering, band after band.
inline std::vector<std::uint8_t> pixels_of(const std::string& path) {
  Ds d(path);
  REQUIRE(d.ds != nullptr);
  std::vector<std::uint8_t> all;
  for (int b = 1; b <= 3; ++b) {
    const auto px = band(d.ds, b);
    all.insert(all.end(), px.begin(), px.end());
  }
  return all;
}

// `copgen render --modality S2L2A -i INPUT -o OUT FLAGS`, which must succeed; its log.
inline std::string render_s2l2a(const std::string& input, const std::string& out, const std::string& flags) {
  const auto r = run_copgen("render --modality S2L2A -i " + quote(input) + " -o " + quote(out) + flags);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  return r.output;
}

}  // namespace copgen::test
