// STAC items for the e2e tests that read them (test_gate.cpp, test_remote.cpp): Sentinel-2 L2A
// over a small square near 15 E 45 N, with the assets a test gives.
#pragma once

#include <string>

#include <nlohmann/json.hpp>

namespace copgen::test {

// A data asset of one band at `href` whose eo:bands common name is `role` (red, green, blue).
inline nlohmann::json band_asset(const std::string& href, const std::string& band, const std::string& role) {
  return {{"href", href}, {"roles", {"data"}}, {"eo:bands", {{{"name", band}, {"common_name", role}}}}};
}

inline nlohmann::json s2_item(const std::string& id, const nlohmann::json& assets) {
  return {{"type", "Feature"},
          {"stac_version", "1.0.0"},
          {"id", id},
          {"collection", "sentinel-2-l2a"},
          {"geometry", {{"type", "Polygon"}, {"coordinates", {{{15.0, 45.0}, {15.04, 45.0}, {15.04, 44.97},
                                                              {15.0, 44.97}, {15.0, 45.0}}}}}},
          {"bbox", {15.0, 44.97, 15.04, 45.0}},
          {"properties", {{"datetime", "2024-06-01T10:00:00Z"}}},
          {"links", nlohmann::json::array()},
          {"assets", assets}};
}

}  // namespace copgen::test
