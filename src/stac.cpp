#include "copgen/stac.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <mutex>
#include <set>

#include <spdlog/spdlog.h>

#include "copgen/error.hpp"
#include "copgen/outputs.hpp"
#include "copgen/raster_io.hpp"
#include "copgen/raster_scene.hpp"
#include "text.hpp"

namespace copgen {

namespace fs = std::filesystem;
using nlohmann::json;

namespace {

bool is_url(const std::string& s) { return detail::starts_with_ci(s, "http://") || detail::starts_with_ci(s, "https://"); }

// "collection.json#ITEM" -> {"collection.json", "ITEM"}; the fragment only after the last '/'.
std::pair<std::string, std::string> split_fragment(const std::string& reference) {
  const auto hash = reference.rfind('#');
  const auto slash = reference.rfind('/');
  if (hash == std::string::npos || (slash != std::string::npos && hash < slash)) return {reference, ""};
  return {reference.substr(0, hash), reference.substr(hash + 1)};
}

// Where GDAL reads a reference: a URL through /vsicurl/.
std::string location_of(const std::string& base) { return is_url(base) ? "/vsicurl/" + base : base; }

// Parsed JSON documents by location, so that the items of one collection are read once.
json read_json(const std::string& location, const std::string& what, const std::string& shown) {
  static std::mutex mu;
  static std::map<std::string, json> cache;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (const auto it = cache.find(location); it != cache.end()) return it->second;
  }
  const std::string text = read_text(location, what);
  json doc = json::parse(text, nullptr, false);
  if (doc.is_discarded()) throw InputError(what + " '" + shown + "': not JSON (a STAC item or ItemCollection was expected)");
  std::lock_guard<std::mutex> lock(mu);
  if (cache.size() >= 16) cache.clear();
  cache[location] = doc;
  return doc;
}

std::string ids_of(const json& features) {
  std::string ids;
  int n = 0;
  for (const json& f : features) {
    if (n++ == 8) return ids + ", ...";
    ids += (ids.empty() ? "" : ", ") + f.value("id", std::string("?"));
  }
  return ids;
}

bool is_item(const json& j) { return j.is_object() && j.value("type", "") == "Feature" && j.contains("assets"); }

// The usual asset keys of a band role, in order of preference.
const std::vector<std::string>& usual_keys(const std::string& role) {
  static const std::map<std::string, std::vector<std::string>> keys = {
      {"red", {"red", "B04", "B4"}},       {"green", {"green", "B03", "B3"}}, {"blue", {"blue", "B02", "B2"}},
      {"vv", {"vv"}},                      {"vh", {"vh"}},
      {"elevation", {"elevation", "data", "dem"}},
  };
  return keys.at(role);
}

// The eo common names of an asset's bands (STAC 1.0 eo:bands, STAC 1.1 bands).
std::vector<std::string> common_names(const json& asset) {
  std::vector<std::string> names;
  for (const char* field : {"eo:bands", "bands"}) {
    if (!asset.contains(field) || !asset[field].is_array()) continue;
    for (const json& b : asset[field]) {
      const std::string n = b.value("common_name", b.value("eo:common_name", std::string()));
      if (!n.empty()) names.push_back(detail::lower(n));
    }
  }
  return names;
}

std::string asset_keys(const json& assets) {
  std::string keys;
  for (const auto& [k, v] : assets.items()) keys += (keys.empty() ? "" : ", ") + k;
  return keys.empty() ? "none" : keys;
}

// The key of the asset for `role`: override, usual key, then common name; "" if none.
std::string find_asset(const json& assets, const std::string& role, const std::map<std::string, std::string>& overrides) {
  if (const auto it = overrides.find(role); it != overrides.end()) return it->second;
  for (const std::string& want : usual_keys(role)) {
    for (const auto& [k, v] : assets.items()) {
      if (detail::lower(k) == detail::lower(want)) return k;
    }
  }
  for (const auto& [k, v] : assets.items()) {
    const auto names = common_names(v);
    if (names.size() == 1 && names[0] == role) return k;
  }
  return "";
}

std::string utc_now() {
  const std::time_t t = std::chrono::system_clock::to_time_t(std::chrono::system_clock::now());
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

std::array<double, 4> bbox_of(const json& item) {
  if (item.contains("bbox") && item["bbox"].is_array() && item["bbox"].size() >= 4) {
    const json& b = item["bbox"];
    const bool three_d = b.size() == 6;
    return {b[0].get<double>(), b[1].get<double>(), b[three_d ? 3 : 2].get<double>(), b[three_d ? 4 : 3].get<double>()};
  }
  return {0, 0, 0, 0};
}

double overlap(const std::array<double, 4>& a, const std::array<double, 4>& b) {
  const double w = std::min(a[2], b[2]) - std::max(a[0], b[0]);
  const double h = std::min(a[3], b[3]) - std::max(a[1], b[1]);
  return w > 0 && h > 0 ? w * h : 0.0;
}

// A tuple key from an item id: safe as a folder name.
std::string safe_key(const std::string& id) {
  std::string k = id;
  for (char& c : k) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.')) c = '_';
  }
  if (k.empty() || k == "." || k == "..") k = "item_" + k;
  return k;
}

}  // namespace

std::string StacItem::id() const { return json.value("id", std::string()); }

bool is_stac_reference(const std::string& path) {
  const std::string base = split_fragment(path).first;
  if (detail::ends_with_ci(base, ".json")) return true;
  if (!is_url(base)) return false;
  for (const char* ext : {".tif", ".tiff", ".jp2", ".png", ".vrt", ".webp", ".jpg"}) {
    if (detail::ends_with_ci(base, ext)) return false;
  }
  return true;
}

StacItem read_stac_item(const std::string& reference, const std::string& what) {
  const auto [base, want] = split_fragment(reference);
  StacItem item;
  item.reference = reference;
  item.location = location_of(base);
  const json doc = read_json(item.location, what, base);
  if (is_item(doc)) {
    if (!want.empty() && doc.value("id", "") != want) {
      throw InputError(what + " '" + reference + "': the item's id is '" + doc.value("id", "") + "', not '" + want + "'");
    }
    item.json = doc;
    return item;
  }
  if (doc.is_object() && doc.value("type", "") == "FeatureCollection" && doc.contains("features") &&
      doc["features"].is_array()) {
    const json& features = doc["features"];
    if (want.empty() && features.size() == 1 && is_item(features[0])) {
      item.json = features[0];
      return item;
    }
    for (const json& f : features) {
      if (is_item(f) && f.value("id", "") == want) {
        item.json = f;
        return item;
      }
    }
    throw InputError(what + " '" + reference + "': an ItemCollection of " + std::to_string(features.size()) +
                     " item(s)" + (want.empty() ? "; name one with #ITEM-ID" : " without an item '" + want + "'") +
                     " (ids: " + ids_of(features) + ")");
  }
  throw InputError(what + " '" + reference + "': not a STAC item (a JSON object with \"type\": \"Feature\" and "
                   "\"assets\") nor an ItemCollection");
}

std::string gdal_path_of_href(const std::string& href, const std::string& location) {
  if (is_url(href)) return "/vsicurl/" + href;
  if (detail::starts_with_ci(href, "s3://")) return "/vsis3/" + href.substr(5);
  if (detail::starts_with_ci(href, "file://")) return href.substr(7);
  if (!href.empty() && href[0] == '/') return href;  // absolute, /vsi... included
  // relative: against the folder of the item
  const std::string dir = location.substr(0, location.rfind('/') + 1);
  if (detail::starts_with_ci(dir, "/vsicurl/")) {
    std::vector<std::string> parts;
    std::string rest = href;
    std::string base = dir;
    while (true) {
      if (rest.rfind("./", 0) == 0) {
        rest = rest.substr(2);
      } else if (rest.rfind("../", 0) == 0) {
        const auto cut = base.rfind('/', base.size() - 2);
        if (cut != std::string::npos && cut + 1 > std::string("/vsicurl/https://").size()) base = base.substr(0, cut + 1);
        rest = rest.substr(3);
      } else {
        break;
      }
    }
    return base + rest;
  }
  return (fs::path(dir.empty() ? "." : dir) / href).lexically_normal().string();
}

std::vector<std::string> band_roles(Modality m) {
  switch (m) {
    case Modality::DEM: return {"elevation"};
    case Modality::S1RTC: return {"vv", "vh"};
    default: return {"red", "green", "blue"};
  }
}

std::pair<std::string, std::string> parse_asset_override(const std::string& spec) {
  const auto eq = spec.find('=');
  const std::string role = detail::lower(spec.substr(0, eq));
  const std::set<std::string> roles = {"red", "green", "blue", "vv", "vh", "elevation"};
  if (eq == std::string::npos || eq + 1 == spec.size() || !roles.count(role)) {
    throw UsageError("--asset '" + spec + "': expected ROLE=KEY with ROLE one of red, green, blue, vv, vh, elevation");
  }
  return {role, spec.substr(eq + 1)};
}

std::vector<std::string> stac_band_files(const StacItem& item, Modality m,
                                         const std::map<std::string, std::string>& overrides,
                                         const std::string& what) {
  const json& assets = item.json.at("assets");
  std::vector<std::string> files;
  for (const std::string& role : band_roles(m)) {
    const std::string key = find_asset(assets, role, overrides);
    const std::string label = what + " '" + item.reference + "' (item " + item.id() + ")";
    if (key.empty()) {
      throw InputError(label + ": no asset for " + role + " (assets: " + asset_keys(assets) +
                       "); name one with --asset " + role + "=KEY");
    }
    if (!assets.contains(key)) {
      throw UsageError("--asset " + role + "=" + key + ": " + label + " has no asset '" + key + "' (assets: " +
                       asset_keys(assets) + ")");
    }
    const json& a = assets[key];
    if (!a.contains("href") || !a["href"].is_string()) throw InputError(label + ": asset '" + key + "' has no href");
    files.push_back(gdal_path_of_href(a["href"].get<std::string>(), item.location));
  }
  return files;
}

std::optional<Modality> modality_of_item(const json& item) {
  if (item.contains("properties") && item["properties"].contains("copgen:modality")) {
    return parse_modality(item["properties"]["copgen:modality"].get<std::string>(), "copgen:modality");
  }
  const std::string c = detail::lower(item.value("collection", std::string()));
  const bool s2 = c.find("sentinel-2") != std::string::npos || c.rfind("s2", 0) == 0;
  const bool s1 = c.find("sentinel-1") != std::string::npos || c.rfind("s1", 0) == 0;
  if (s2 && c.find("l1c") != std::string::npos) return Modality::S2L1C;
  if (s2 && c.find("l2a") != std::string::npos) return Modality::S2L2A;
  if (s1 && (c.find("rtc") != std::string::npos || c.find("grd") != std::string::npos)) return Modality::S1RTC;
  if (c.find("dem") != std::string::npos) return Modality::DEM;
  return std::nullopt;
}

Discovered read_item_collection(const std::string& reference, const std::vector<Modality>& from) {
  const std::string what = "--inputs-from";
  const json doc = read_json(location_of(reference), what, reference);
  if (!doc.is_object() || doc.value("type", "") != "FeatureCollection" || !doc.contains("features")) {
    throw InputError(what + " '" + reference + "': not a STAC ItemCollection (\"type\": \"FeatureCollection\")");
  }
  std::map<Modality, std::vector<const json*>> by_mod;
  bool all_coded = true;
  for (const json& f : doc["features"]) {
    if (!is_item(f)) continue;
    const auto m = modality_of_item(f);
    if (!m || std::find(from.begin(), from.end(), *m) == from.end()) continue;
    by_mod[*m].push_back(&f);
    all_coded = all_coded && f.contains("properties") && f["properties"].contains("grid:code");
  }
  for (auto& [m, items] : by_mod) {
    std::sort(items.begin(), items.end(), [](const json* a, const json* b) { return a->value("id", "") < b->value("id", ""); });
  }
  Discovered d;
  d.layout = TupleLayout::List;
  const auto code_of = [](const json* f) { return (*f)["properties"]["grid:code"].dump(); };
  for (const json* first : by_mod[from[0]]) {
    TupleSource t;
    t.key = safe_key(first->value("id", ""));
    t.output_pattern = t.key + "/{modality}.tif";
    t.inputs[from[0]] = reference + "#" + first->value("id", "");
    for (std::size_t i = 1; i < from.size(); ++i) {
      const json* best = nullptr;
      double best_overlap = 0.0;
      for (const json* f : by_mod[from[i]]) {
        const double o = all_coded ? (code_of(f) == code_of(first) ? 1.0 : 0.0) : overlap(bbox_of(*f), bbox_of(*first));
        if (o > best_overlap) best = f, best_overlap = o;
      }
      if (best != nullptr) t.inputs[from[i]] = reference + "#" + best->value("id", "");
    }
    if (t.inputs.size() == from.size()) {
      d.tuples.push_back(std::move(t));
    } else {
      d.incomplete.push_back(t.key);
    }
  }
  std::sort(d.tuples.begin(), d.tuples.end(), [](const TupleSource& a, const TupleSource& b) { return a.key < b.key; });
  spdlog::info("{} '{}': {} item(s) of {}, matched by {}", what, reference, by_mod[from[0]].size(),
               modality_name(from[0]), all_coded ? "grid:code" : "footprint");
  return d;
}

json stac_item_of_outputs(const std::string& id, const std::vector<std::string>& outputs, const std::string& item_path,
                          const std::vector<std::string>& sources) {
  if (outputs.empty()) throw std::invalid_argument("stac_item_of_outputs: no outputs");
  const RasterSource first = RasterSource::open(outputs[0], "output");
  const Grid grid = first.grid();
  const RasterInfo& info = first.info();
  json geometry = nullptr, bbox = nullptr;
  CrsCode crs;
  if (grid.georeferenced && !grid.crs_wkt.empty()) {  // else a null geometry, as STAC allows
    double x0 = 180, y0 = 90, x1 = -180, y1 = -90;
    json coords = json::array();
    for (const auto& p : lonlat_outline(grid)) {
      coords.push_back({p[0], p[1]});
      x0 = std::min(x0, p[0]), y0 = std::min(y0, p[1]), x1 = std::max(x1, p[0]), y1 = std::max(y1, p[1]);
    }
    geometry = {{"type", "Polygon"}, {"coordinates", {coords}}};
    bbox = {x0, y0, x1, y1};
    crs = crs_code(grid.crs_wkt);
  }
  const auto& gt = grid.geotransform;
  const auto meta = [&](const std::string& k) {
    const auto it = info.metadata.find(k);
    return it == info.metadata.end() ? std::string() : it->second;
  };
  std::string datetime;
  json source_ids = json::array();
  json links = json::array();
  for (const std::string& s : sources) {
    if (is_stac_reference(s)) {
      const StacItem src = read_stac_item(s, "source");
      source_ids.push_back(src.id());
      links.push_back({{"rel", "derived_from"}, {"href", split_fragment(s).first}, {"type", "application/json"}});
      if (datetime.empty() && src.json.contains("properties")) {
        datetime = src.json["properties"].value("datetime", std::string());
      }
    } else {
      source_ids.push_back(s);
    }
  }
  const std::string now = utc_now();
  json props = {
      {"datetime", datetime.empty() ? now : datetime},
      {"created", now},
      {"proj:epsg", crs.epsg > 0 ? json(crs.epsg) : json(nullptr)},
      {"proj:shape", {grid.height, grid.width}},
      {"copgen:version", meta("COPGEN_VERSION")},
      {"copgen:models_sha256", meta("COPGEN_MODELS_SHA256")},
      {"copgen:seed", meta("COPGEN_SEED").empty() ? json(nullptr) : json(std::stoull(meta("COPGEN_SEED")))},
      {"copgen:solver", meta("COPGEN_SOLVER")},
      {"copgen:steps", meta("COPGEN_STEPS").empty() ? json(nullptr) : json(std::stoi(meta("COPGEN_STEPS")))},
      {"copgen:given", meta("COPGEN_GIVEN")},
      {"copgen:generated", meta("COPGEN_GENERATED")},
      {"copgen:sources", source_ids},
  };
  if (grid.georeferenced) props["proj:transform"] = {gt[1], gt[2], gt[0], gt[4], gt[5], gt[3]};
  if (crs.epsg == 0 && !crs.wkt2.empty()) props["proj:wkt2"] = crs.wkt2;
  const fs::path item_dir = fs::absolute(fs::path(item_path)).parent_path();
  json jassets = json::object();
  for (const std::string& path : outputs) {
    const RasterInfo ai = probe_raster(path, "output");
    json bands = json::array();
    for (const std::string& d : ai.band_descriptions) bands.push_back({{"name", d}});
    const std::string href = fs::absolute(path).lexically_relative(item_dir).generic_string();
    const auto mod = ai.metadata.find("COPGEN_MODALITY");
    const std::string key = fs::path(path).stem().string();
    jassets[key] = {
        {"href", href.empty() ? path : href},
        {"type", "image/tiff; application=geotiff"},
        {"title", key + " generated by copgen"},
        {"roles", {"data"}},
        {"eo:bands", bands},
        {"copgen:modality", mod == ai.metadata.end() ? json(nullptr) : json(mod->second)},
    };
  }
  json item = {
      {"type", "Feature"},
      {"stac_version", "1.0.0"},
      {"stac_extensions",
       {"https://stac-extensions.github.io/projection/v1.1.0/schema.json",
        "https://stac-extensions.github.io/eo/v1.1.0/schema.json"}},
      {"id", id},
      {"geometry", geometry},
      {"properties", props},
      {"links", links},
      {"assets", jassets},
  };
  if (!bbox.is_null()) item["bbox"] = bbox;
  return item;
}

void write_stac_item(const std::string& item_path, const std::string& id, const std::vector<std::string>& outputs,
                     const std::vector<std::string>& sources) {
  const json item = stac_item_of_outputs(id, outputs, item_path, sources);
  write_text_atomically(item_path, item.dump(2) + "\n", "--stac-out");
  spdlog::info("wrote {} (STAC item {})", item_path, id);
}

}  // namespace copgen
