#include "copgen/stac.hpp"

#include <algorithm>
#include <array>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <chrono>
#include <ctime>
#include <filesystem>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <unordered_map>
#include <utility>

#include <spdlog/spdlog.h>

#include "copgen/cancel.hpp"
#include "copgen/error.hpp"
#include "copgen/files.hpp"
#include "copgen/raster_io.hpp"
#include "copgen/raster_scene.hpp"
#include "copgen/remote.hpp"
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

// nlohmann's DOM parser, stopped by SIGINT/SIGTERM: a large search result takes seconds to
// parse. (Its callback parser would do, but ends each object with a scan of its parent:
// quadratic in an ItemCollection's features.)
class StoppableParser : public nlohmann::detail::json_sax_dom_parser<json> {
 public:
  explicit StoppableParser(json& doc) : json_sax_dom_parser(doc, false) {}
  bool start_object(std::size_t n) {
    if (++objects_ % 4096 == 0) throw_if_stop_requested();
    return json_sax_dom_parser::start_object(n);
  }

 private:
  std::size_t objects_ = 0;
};

bool is_item(const json& j) { return j.is_object() && j.value("type", "") == "Feature" && j.contains("assets"); }

// A JSON document as read, shared: an ItemCollection of 200,000 items is read, parsed and
// kept once, and each of its items found by id without a scan.
struct Document {
  json doc;
  std::unordered_map<std::string, const json*> items;  // the items of a FeatureCollection by id (the first of an id)
};

// Parsed JSON documents by location, so that the items of one collection are read once.
std::shared_ptr<const Document> read_json(const std::string& location, const std::string& what,
                                          const std::string& shown) {
  static std::mutex mu;
  static std::map<std::string, std::shared_ptr<const Document>> cache;
  {
    std::lock_guard<std::mutex> lock(mu);
    if (const auto it = cache.find(location); it != cache.end()) return it->second;
  }
  const std::string text = read_text(location, what);
  auto d = std::make_shared<Document>();
  StoppableParser parser(d->doc);
  if (!json::sax_parse(text, &parser) || d->doc.is_discarded()) {
    throw InputError(what + " '" + shown + "': not JSON (a STAC item or ItemCollection was expected)");
  }
  if (d->doc.is_object() && d->doc.contains("features") && d->doc["features"].is_array()) {
    for (const json& f : d->doc["features"]) {
      if (is_item(f)) d->items.emplace(f.value("id", ""), &f);
    }
  }
  std::lock_guard<std::mutex> lock(mu);
  if (cache.size() >= 16) cache.clear();
  cache[location] = d;
  return d;
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

// The keys of `assets` for messages: at most 8, then how many there are in all.
std::string asset_keys(const json& assets) {
  std::string keys;
  std::size_t n = 0;
  for (const auto& [k, v] : assets.items()) {
    if (n++ < 8) keys += (keys.empty() ? "" : ", ") + k;
  }
  if (n > 8) keys += ", ... (" + std::to_string(n) + " assets)";
  return keys.empty() ? "none" : keys;
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
  const std::shared_ptr<const Document> document = read_json(item.location, what, base);
  const json& doc = document->doc;
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
    if (const auto it = document->items.find(want); !want.empty() && it != document->items.end()) {
      item.json = *it->second;
      return item;
    }
    throw InputError(what + " '" + reference + "': an ItemCollection of " + std::to_string(features.size()) +
                     " item(s)" + (want.empty() ? "; name one with #ITEM-ID" : " without an item '" + want + "'") +
                     " (ids: " + ids_of(features) + ")");
  }
  throw InputError(what + " '" + reference + "': not a STAC item (a JSON object with \"type\": \"Feature\" and "
                   "\"assets\") nor an ItemCollection");
}

namespace {

// "%20" -> " " in a local path taken from an href (a URI reference).
std::string percent_decoded(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
        std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out += static_cast<char>(std::stoi(s.substr(i + 1, 2), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

// "scheme" of "scheme://...", lower case; "" when the href has none.
std::string scheme_of(const std::string& href) {
  const auto colon = href.find("://");
  if (colon == std::string::npos || colon == 0) return "";
  const std::string scheme = detail::lower(href.substr(0, colon));
  const bool word = std::all_of(scheme.begin(), scheme.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '+' || c == '-' || c == '.';
  });
  return word ? scheme : "";
}

// A relative (or server-absolute "/x") href against the URL `base` of the item, as a
// browser resolves it: "../b/x.tif" against "http://h/a/s/item.json" -> "http://h/a/b/x.tif".
std::string resolve_url(const std::string& base, const std::string& href) {
  const auto root_end = base.find('/', base.find("://") + 3);  // end of scheme://host[:port]
  const std::string root = root_end == std::string::npos ? base : base.substr(0, root_end);
  if (href.rfind("//", 0) == 0) return base.substr(0, base.find("://") + 1) + href;
  if (!href.empty() && href[0] == '/') return root + href;
  std::string dir = base.substr(0, base.find_first_of("?#"));
  dir = dir.substr(0, dir.rfind('/') + 1);
  if (dir.size() < root.size() + 1) dir = root + "/";
  std::string rest = href;
  for (;;) {
    if (rest.rfind("./", 0) == 0) {
      rest = rest.substr(2);
    } else if (rest.rfind("../", 0) == 0) {
      const auto cut = dir.rfind('/', dir.size() - 2);
      if (cut != std::string::npos && cut >= root.size()) dir = dir.substr(0, cut + 1);
      rest = rest.substr(3);
    } else {
      return dir + rest;
    }
  }
}

}  // namespace

namespace {

// The Copernicus Data Space's s3://eodata/ objects are read through its own S3 endpoint
// with the user's S3 keys: GDAL's AWS_S3_ENDPOINT, AWS_ACCESS_KEY_ID,
// AWS_SECRET_ACCESS_KEY and AWS_VIRTUAL_HOSTING=FALSE (path-style). InputError naming
// what is missing; other buckets are GDAL's business (it also reads ~/.aws).
void check_eodata_settings(const std::string& href) {
  if (!detail::starts_with_ci(href, "s3://eodata/")) return;
  const auto set = [](const char* name) {
    const char* v = std::getenv(name);
    return v != nullptr && *v != '\0';
  };
  std::vector<std::string> missing;
  if (!set("AWS_S3_ENDPOINT")) missing.push_back("AWS_S3_ENDPOINT=eodata.dataspace.copernicus.eu");
  if (!set("AWS_ACCESS_KEY_ID")) missing.push_back("AWS_ACCESS_KEY_ID");
  if (!set("AWS_SECRET_ACCESS_KEY")) missing.push_back("AWS_SECRET_ACCESS_KEY");
  if (!set("AWS_VIRTUAL_HOSTING")) missing.push_back("AWS_VIRTUAL_HOSTING=FALSE");
  if (missing.empty()) return;
  throw InputError("href '" + href + "': an object of the Copernicus Data Space's S3 (eodata), read with its "
                   "endpoint and your S3 keys (made at https://eodata-s3keysmanager.dataspace.copernicus.eu); "
                   "set " + detail::join(missing, ", ") + " (docs/stac.md)");
}

}  // namespace

std::string gdal_path_of_href(const std::string& href, const std::string& location) {
  const auto refuse = [&](const std::string& why) -> std::string {
    throw InputError("href '" + href + "': " + why);
  };
  if (href.empty()) refuse("empty");
  if (detail::starts_with_ci(href, "/vsi") || detail::starts_with_ci(href, "vrt:")) {
    refuse("names one of GDAL's special files, which an item may not (give a URL or a file path)");
  }
  const bool remote_item = detail::starts_with_ci(location, "/vsicurl/");
  const std::string scheme = scheme_of(href);
  if (scheme == "http" || scheme == "https") return "/vsicurl/" + href;
  if (scheme == "s3") {
    check_eodata_settings(href);
    return "/vsis3/" + href.substr(5);
  }
  if (scheme == "gs") return "/vsigs/" + href.substr(5);
  if (scheme == "az") return "/vsiaz/" + href.substr(5);
  if (scheme == "file") {
    if (remote_item) refuse("a file on this machine, named by an item read over the network");
    return percent_decoded(href.substr(7));
  }
  if (!scheme.empty()) refuse("the scheme '" + scheme + "' is not one copgen reads (http, https, s3, gs, az, file)");
  if (remote_item) return "/vsicurl/" + resolve_url(location.substr(9), href);
  const std::string path = percent_decoded(href);
  if (!path.empty() && path[0] == '/') return path;
  const std::string dir = location.substr(0, location.rfind('/') + 1);  // relative: against the item's folder
  return (fs::path(dir.empty() ? "." : dir) / path).lexically_normal().string();
}

namespace {

// The band roles a modality reads, in band order: red, green, blue (S2); vv, vh (S1);
// elevation (DEM).
std::vector<std::string> band_roles(Modality m) {
  switch (m) {
    case Modality::DEM: return {"elevation"};
    case Modality::S1RTC: return {"vv", "vh"};
    default: return {"red", "green", "blue"};
  }
}

// Parses --asset ROLE=KEY (role: red, green, blue, vv, vh, elevation); throws UsageError.
std::pair<std::string, std::string> parse_asset_override(const std::string& spec) {
  const auto eq = spec.find('=');
  const std::string role = detail::lower(spec.substr(0, eq));
  const std::set<std::string> roles = {"red", "green", "blue", "vv", "vh", "elevation"};
  if (eq == std::string::npos || eq + 1 == spec.size() || !roles.count(role)) {
    throw UsageError("--asset '" + spec + "': expected ROLE=KEY with ROLE one of red, green, blue, vv, vh, elevation");
  }
  return {role, spec.substr(eq + 1)};
}

}  // namespace

void add_asset_override(std::map<std::string, std::string>& overrides, const std::string& spec) {
  const auto [role, key] = parse_asset_override(spec);
  if (const auto it = overrides.find(role); it != overrides.end()) {
    throw UsageError("--asset '" + spec + "': the role " + role + " is already given (--asset " + role + "=" +
                     it->second + ")");
  }
  overrides[role] = key;
}

void check_asset_overrides(const std::map<std::string, std::string>& overrides, const std::vector<Modality>& given) {
  for (const auto& [role, key] : overrides) {
    std::string roles;
    bool used = false;
    for (Modality m : given) {
      const std::vector<std::string> mine = band_roles(m);
      used = used || std::find(mine.begin(), mine.end(), role) != mine.end();
      roles += (roles.empty() ? "" : "; ") + modality_name(m) + ": " + detail::join(mine, ", ");
    }
    if (!used) {
      throw UsageError("--asset " + role + "=" + key + ": no given modality reads a " + role + " band (" + roles + ")");
    }
  }
}

namespace {

// An asset meant for looking at, not for its values: a true-colour image or an overview.
bool is_visual(const std::string& key, const json& asset) {
  const std::string k = detail::lower(key);
  if (k.find("visual") != std::string::npos || k.find("tci") != std::string::npos) return true;
  if (asset.contains("roles") && asset["roles"].is_array()) {
    for (const json& r : asset["roles"]) {
      if (r.is_string() && (r == "visual" || r == "overview" || r == "thumbnail")) return true;
    }
  }
  return false;
}

// The 1-based band of `role` in an asset by its eo:bands; 1 for a single-band asset; 0 when
// a multi-band asset lists no band of that common name.
int band_of_role(const json& asset, const std::string& role) {
  const std::vector<std::string> names = common_names(asset);
  if (names.size() <= 1) return 1;
  const auto it = std::find(names.begin(), names.end(), role);
  return it == names.end() ? 0 : static_cast<int>(it - names.begin()) + 1;
}

struct Pick {
  std::string key;
  int band = 1;
};

// The ground sample distance an asset declares, in metres: its "gsd", a "gsd:10m" role,
// or a "_10m" key suffix (the Copernicus Data Space's B04_10m); 0 when it says none.
double asset_gsd(const std::string& key, const json& asset) {
  if (asset.contains("gsd") && asset["gsd"].is_number()) return asset["gsd"].get<double>();
  const auto metres = [](const std::string& s, std::size_t at) {
    std::size_t end = at;
    while (end < s.size() && std::isdigit(static_cast<unsigned char>(s[end]))) ++end;
    return end > at && end + 1 == s.size() && (s[end] == 'm' || s[end] == 'M') ? std::stod(s.substr(at, end - at))
                                                                                 : 0.0;
  };
  if (asset.contains("roles") && asset["roles"].is_array()) {
    for (const json& r : asset["roles"]) {
      if (r.is_string() && detail::starts_with_ci(r.get<std::string>(), "gsd:")) return metres(r.get<std::string>(), 4);
    }
  }
  const auto underscore = key.rfind('_');
  return underscore == std::string::npos ? 0.0 : metres(key, underscore + 1);
}

// An asset resampled from the product's own pixels (the Data Space's sampling:downsampled role).
bool is_resampled(const json& asset) {
  if (!asset.contains("roles") || !asset["roles"].is_array()) return false;
  for (const json& r : asset["roles"]) {
    if (r.is_string() && (r == "sampling:downsampled" || r == "sampling:upsampled")) return true;
  }
  return false;
}

// The native asset among candidates: never a resampled one while an original is there,
// then the finest declared resolution (B04_10m before B04_20m and B04_60m); ties keep
// the first by key.
std::string native_asset(const json& assets, const std::vector<std::string>& keys) {
  std::string best;
  for (const std::string& k : keys) {
    if (best.empty()) {
      best = k;
      continue;
    }
    const auto rank = [&](const std::string& key) {
      const double gsd = asset_gsd(key, assets[key]);
      return std::make_pair(is_resampled(assets[key]), gsd > 0 ? gsd : 1e300);
    };
    if (rank(k) < rank(best)) best = k;
  }
  return best;
}

// The keys of `assets` that are `want` itself or `want` with a resolution suffix
// ("B04", "B04_10m"), never a visual one.
std::vector<std::string> keys_named(const json& assets, const std::string& want) {
  std::vector<std::string> keys;
  for (const auto& [k, v] : assets.items()) {
    const std::string lk = detail::lower(k), lw = detail::lower(want);
    const bool suffixed = lk.size() > lw.size() + 1 && lk.compare(0, lw.size() + 1, lw + "_") == 0 &&
                          asset_gsd(k, json::object()) > 0;
    if ((lk == lw || suffixed) && !is_visual(k, v)) keys.push_back(k);
  }
  return keys;
}

// The asset --asset names for `role` and the band in it.
Pick pick_override(const json& assets, const std::string& role, const std::string& key, const std::string& label) {
  if (!assets.contains(key)) {
    throw UsageError("--asset " + role + "=" + key + ": " + label + " has no asset '" + key + "' (assets: " +
                     asset_keys(assets) + ")");
  }
  const std::vector<std::string> names = common_names(assets[key]);
  const int band = band_of_role(assets[key], role);
  if (band == 0) {
    throw InputError(label + ": --asset " + role + "=" + key + " names an asset of " + std::to_string(names.size()) +
                     " bands (eo:bands: " + detail::join(names, ", ") + "), none of them " + role);
  }
  if (names.size() == 1 && names[0] != role) {
    spdlog::warn("{}: asset '{}' is the {} band by its eo:bands; read as {} as --asset says", label, key, names[0], role);
  }
  return {key, band};
}

// The asset of `role` without --asset: its usual key (unless its eo:bands name another
// band while an asset of that band exists), else the single-band asset whose eo:bands
// name it, else a multi-band asset that lists it (never a visual one). Warns when two
// assets claim the role; key "" when none does.
Pick pick_asset(const json& assets, const std::string& role, const std::string& label) {
  std::string by_key;
  for (const std::string& want : usual_keys(role)) {
    if (by_key.empty()) by_key = native_asset(assets, keys_named(assets, want));
  }
  std::vector<std::string> single, multi;
  for (const auto& [k, v] : assets.items()) {
    const std::vector<std::string> names = common_names(v);
    if (names.size() == 1 && names[0] == role && !is_visual(k, v)) single.push_back(k);
    if (names.size() > 1 && band_of_role(v, role) > 0 && !is_visual(k, v)) multi.push_back(k);
  }
  if (const std::string native = native_asset(assets, single); !native.empty()) {
    single.erase(std::find(single.begin(), single.end(), native));
    single.insert(single.begin(), native);  // the native one first
  }
  if (!by_key.empty()) {
    const std::vector<std::string> names = common_names(assets[by_key]);
    const bool disagrees = names.size() == 1 && names[0] != role;
    const int band = band_of_role(assets[by_key], role);
    if (!disagrees) return {by_key, band > 0 ? band : 1};
    if (single.empty()) {
      spdlog::warn("{}: asset '{}' is the {} band by its eo:bands; read as {} by its key", label, by_key, names[0], role);
      return {by_key, 1};
    }
    spdlog::warn("{}: asset '{}' is the {} band by its eo:bands; reading '{}' as {}", label, by_key, names[0],
                 single[0], role);
    return {single[0], 1};
  }
  if (!single.empty()) {
    if (single.size() > 1) {
      spdlog::warn("{}: assets {} all name {} in their eo:bands; reading '{}' (choose with --asset {}=KEY)", label,
                   detail::join(single, ", "), role, single[0], role);
    }
    return {single[0], 1};
  }
  if (!multi.empty()) return {multi[0], band_of_role(assets[multi[0]], role)};
  return {"", 0};
}

}  // namespace

std::vector<StacBand> stac_band_files(const StacItem& item, Modality m,
                                      const std::map<std::string, std::string>& overrides, const std::string& what) {
  const json& assets = item.json.at("assets");
  const std::string label = what + " '" + item.reference + "' (item " + item.id() + ")";
  std::vector<StacBand> bands;
  for (const std::string& role : band_roles(m)) {
    const auto over = overrides.find(role);
    const Pick pick = over != overrides.end() ? pick_override(assets, role, over->second, label)
                                              : pick_asset(assets, role, label);
    if (pick.key.empty()) {
      throw InputError(label + ": no asset for " + role + " (assets: " + asset_keys(assets) +
                       "); name one with --asset " + role + "=KEY");
    }
    const json& a = assets[pick.key];
    if (!a.contains("href") || !a["href"].is_string()) throw InputError(label + ": asset '" + pick.key + "' has no href");
    try {
      std::string path = gdal_path_of_href(a["href"].get<std::string>(), item.location);
      if (detail::starts_with_ci(path, "/vsicurl/") && needs_blob_token(path.substr(9))) {
        path = "/vsicurl/" + sign_blob_url(path.substr(9), item.json.value("collection", std::string()),
                                           "blob URL");
      }
      bands.push_back({path, pick.band, pick.key});
    } catch (const InputError& e) {
      throw InputError(label + ": asset '" + pick.key + "': " + e.what());
    }
  }
  return bands;
}

std::optional<double> s2_offset_of_baseline(const std::string& baseline) {
  // "05.10", "5.1", "04.00": major.minor; anything else is no baseline
  const auto dot = baseline.find('.');
  if (dot == std::string::npos || dot == 0 || dot + 1 >= baseline.size()) return std::nullopt;
  for (std::size_t i = 0; i < baseline.size(); ++i) {
    if (i != dot && !std::isdigit(static_cast<unsigned char>(baseline[i]))) return std::nullopt;
  }
  return std::stoi(baseline.substr(0, dot)) >= 4 ? 1000.0 : 0.0;
}

namespace {

// A property's text ("05.10"; a number is printed with two decimals), empty when absent.
std::string property_text(const json& properties, const char* name) {
  if (!properties.contains(name)) return "";
  const json& v = properties[name];
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number()) return fmt::format("{:05.2f}", v.get<double>());
  return "";
}

// The offset the baseline properties imply ("s2:processing_baseline", then
// "processing:version"), with `prefix` before the words.
std::optional<S2OffsetEvidence> baseline_offset(const json& properties, const std::string& prefix) {
  for (const char* name : {"s2:processing_baseline", "processing:version"}) {
    const std::string b = property_text(properties, name);
    if (const auto dn = s2_offset_of_baseline(b)) {
      return S2OffsetEvidence{*dn, prefix + name + " " + b + (*dn > 0 ? " >= 04.00" : " < 04.00")};
    }
  }
  return std::nullopt;
}

// The DN offset of one description of a band's values: "raster:offset"/"raster:scale" (an
// asset) or "offset"/"scale" (an entry of raster:bands); nullopt without an offset.
std::optional<double> dn_offset_of(const json& o, const char* offset_key, const char* scale_key) {
  if (!o.is_object() || !o.contains(offset_key) || !o[offset_key].is_number()) return std::nullopt;
  const double offset = o[offset_key].get<double>();
  const double scale = o.contains(scale_key) && o[scale_key].is_number() ? o[scale_key].get<double>() : 1.0;
  if (scale == 0 || !std::isfinite(offset / scale)) return std::nullopt;
  return std::round(-offset / scale) + 0.0;  // + 0.0: no "-0"
}

// The offset an asset's raster fields give: on the asset (the Data Space's), else on its
// first band (raster:bands, or STAC 1.1 bands with raster: fields).
std::optional<S2OffsetEvidence> asset_offset(const std::string& key, const json& asset) {
  const auto words = [&](const json& o, const char* off, const char* sc, const std::string& where) {
    return fmt::format("{} {:g}, {} {:g} (asset {}{})", off, o[off].get<double>(), sc,
                       o.contains(sc) && o[sc].is_number() ? o[sc].get<double>() : 1.0, key, where);
  };
  if (const auto dn = dn_offset_of(asset, "raster:offset", "raster:scale")) {
    return S2OffsetEvidence{*dn, words(asset, "raster:offset", "raster:scale", "")};
  }
  for (const char* field : {"raster:bands", "bands"}) {
    if (!asset.contains(field) || !asset[field].is_array() || asset[field].empty()) continue;
    const json& b = asset[field][0];
    if (const auto dn = dn_offset_of(b, "raster:offset", "raster:scale")) {
      return S2OffsetEvidence{*dn, words(b, "raster:offset", "raster:scale", std::string(", ") + field)};
    }
    if (const auto dn = dn_offset_of(b, "offset", "scale")) {
      return S2OffsetEvidence{*dn, words(b, "offset", "scale", std::string(", ") + field)};
    }
  }
  return std::nullopt;
}

}  // namespace

std::optional<S2OffsetEvidence> stac_s2_offset(const StacItem& item, const std::vector<std::string>& keys) {
  static const json kNone = json::object();
  const json& properties = item.json.contains("properties") && item.json["properties"].is_object()
                               ? item.json["properties"] : kNone;
  // Earth Search's word is its own: its raster:bands say -0.1 whether or not it removed the offset
  if (properties.contains("earthsearch:boa_offset_applied") &&
      properties["earthsearch:boa_offset_applied"].is_boolean()) {
    if (properties["earthsearch:boa_offset_applied"].get<bool>()) {
      return S2OffsetEvidence{0.0, "earthsearch:boa_offset_applied true (Earth Search removed it)"};
    }
    if (auto b = baseline_offset(properties, "earthsearch:boa_offset_applied false, ")) return b;
  }
  const json& assets = item.json.at("assets");
  for (const std::string& key : keys) {
    if (!assets.contains(key)) continue;
    if (auto a = asset_offset(key, assets[key])) return a;
  }
  return baseline_offset(properties, "");
}

namespace {

// The modality of an item of a search result: its "copgen:modality" property, else its
// collection ("sentinel-2-l1c" -> S2L1C, "sentinel-2-l2a" -> S2L2A, "sentinel-1-rtc" or
// "-grd" -> S1RTC, "cop-dem-glo-30" or any "dem" -> DEM); nullopt when neither says.
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

// The bboxes of one modality's items in cells of one degree: the items whose footprint may
// overlap a bbox, without comparing it with every item.
class FootprintIndex {
 public:
  explicit FootprintIndex(const std::vector<const json*>& items) {
    for (std::size_t i = 0; i < items.size(); ++i) {
      throw_if_stop_requested();
      const auto b = bbox_of(*items[i]);
      if (!(b[2] > b[0] && b[3] > b[1])) continue;  // no footprint: overlaps nothing
      const auto [x0, y0, x1, y1] = cells(b);
      if ((x1 - x0 + 1) * (y1 - y0 + 1) > kMaxCells) {
        wide_.push_back(i);
        continue;
      }
      for (long x = x0; x <= x1; ++x) {
        for (long y = y0; y <= y1; ++y) cells_[key(x, y)].push_back(i);
      }
    }
  }
  // The indices (ascending, each once) of the items whose bbox may overlap `b`.
  std::vector<std::size_t> candidates(const std::array<double, 4>& b) const {
    std::vector<std::size_t> out = wide_;
    if (b[2] > b[0] && b[3] > b[1]) {
      const auto [x0, y0, x1, y1] = cells(b);
      if ((x1 - x0 + 1) * (y1 - y0 + 1) > kMaxCells) {  // a query wider than the index: every item
        for (const auto& [k, items] : cells_) out.insert(out.end(), items.begin(), items.end());
      } else {
        for (long x = x0; x <= x1; ++x) {
          for (long y = y0; y <= y1; ++y) {
            if (const auto it = cells_.find(key(x, y)); it != cells_.end()) {
              out.insert(out.end(), it->second.begin(), it->second.end());
            }
          }
        }
      }
    }
    std::sort(out.begin(), out.end());
    out.erase(std::unique(out.begin(), out.end()), out.end());
    return out;
  }

 private:
  static constexpr long kSpan = 100000;    // cell keys: x * kSpan + y, both offset to be positive
  static constexpr long kMaxCells = 1024;  // an item wider than this is a candidate of every query
  static long cell(double v) { return static_cast<long>(std::floor(std::clamp(v, -1e4, 1e4))) + 20000; }
  static std::array<long, 4> cells(const std::array<double, 4>& b) {
    return {cell(b[0]), cell(b[1]), cell(b[2]), cell(b[3])};
  }
  static long key(long x, long y) { return x * kSpan + y; }
  std::unordered_map<long, std::vector<std::size_t>> cells_;
  std::vector<std::size_t> wide_;
};

// The items of `features` by modality (those of `from`), each id once: an item repeated
// verbatim (a search result paged twice) is kept once, two different items of one id are an
// InputError (its id names the tuple, its outputs and the "#ID" reference). Logs how many
// features were left out, and why.
std::map<Modality, std::vector<const json*>> items_by_modality(const json& features, const std::vector<Modality>& from,
                                                              const std::string& label) {
  std::map<Modality, std::vector<const json*>> by_mod;
  std::unordered_map<std::string, const json*> by_id;
  std::size_t not_items = 0, no_modality = 0, other = 0, repeated = 0;
  std::set<std::string> unknown_collections;
  for (const json& f : features) {
    throw_if_stop_requested();
    if (!is_item(f)) {
      ++not_items;
      continue;
    }
    const std::string id = f.value("id", "");
    if (const auto [it, fresh] = by_id.emplace(id, &f); !fresh) {
      if (*it->second != f) {
        throw InputError(label + ": two different items have the id '" + id + "'; an id names a tuple, its outputs " +
                         "(OUT/<id>/) and its reference (#ID), so ids must be unique");
      }
      ++repeated;
      continue;
    }
    const auto m = modality_of_item(f);
    if (!m) {
      ++no_modality;
      if (unknown_collections.size() < 4) unknown_collections.insert(f.value("collection", std::string("none")));
    } else if (std::find(from.begin(), from.end(), *m) == from.end()) {
      ++other;
    } else {
      by_mod[*m].push_back(&f);
    }
  }
  if (not_items > 0) {
    spdlog::warn("{}: {} feature(s) left out: not STAC items (\"type\": \"Feature\" with \"assets\")", label, not_items);
  }
  if (no_modality > 0) {
    spdlog::warn("{}: {} item(s) left out: they name no modality (no copgen:modality property, and a collection copgen "
                 "does not know: {})",
                 label, no_modality, detail::join({unknown_collections.begin(), unknown_collections.end()}, ", "));
  }
  if (repeated > 0) spdlog::warn("{}: {} item(s) appear twice, identical; each is read once", label, repeated);
  if (other > 0) spdlog::info("{}: {} item(s) of modalities not in --from left out", label, other);
  return by_mod;
}

// The item of `candidates` (by_mod of a modality) that `first` is matched with: the same
// grid:code, else the largest bbox overlap; the first in id order on a tie; nullptr if none.
const json* match(const json& first, const std::vector<const json*>& items, bool coded,
                  const std::unordered_map<std::string, std::vector<std::size_t>>& by_code, const FootprintIndex& index) {
  if (coded) {
    const auto it = by_code.find(first["properties"]["grid:code"].dump());
    return it == by_code.end() ? nullptr : items[it->second.front()];
  }
  const json* best = nullptr;
  double best_overlap = 0.0;
  const auto box = bbox_of(first);
  for (std::size_t i : index.candidates(box)) {
    const double o = overlap(bbox_of(*items[i]), box);
    if (o > best_overlap) best = items[i], best_overlap = o;
  }
  return best;
}

}  // namespace

Discovered read_item_collection(const std::string& reference, const std::vector<Modality>& from) {
  const std::string what = "--inputs-from";
  const std::string label = what + " '" + reference + "'";
  const std::shared_ptr<const Document> document = read_json(location_of(reference), what, reference);
  const json& doc = document->doc;
  if (!doc.is_object() || doc.value("type", "") != "FeatureCollection" || !doc.contains("features") ||
      !doc["features"].is_array()) {
    throw InputError(label + ": not a STAC ItemCollection (\"type\": \"FeatureCollection\")");
  }
  std::map<Modality, std::vector<const json*>> by_mod = items_by_modality(doc["features"], from, label);
  bool coded = true;
  for (auto& [m, items] : by_mod) {
    std::vector<std::pair<std::string, const json*>> keyed;  // ids read once, not per comparison
    for (const json* f : items) keyed.emplace_back(f->value("id", ""), f);
    std::sort(keyed.begin(), keyed.end());
    for (std::size_t i = 0; i < keyed.size(); ++i) items[i] = keyed[i].second;
    for (const json* f : items) coded = coded && f->contains("properties") && (*f)["properties"].contains("grid:code");
  }
  // per other modality: its items by grid:code (in id order), or a footprint index
  std::map<Modality, std::unordered_map<std::string, std::vector<std::size_t>>> by_code;
  std::map<Modality, FootprintIndex> indices;
  for (std::size_t i = 1; i < from.size(); ++i) {
    const std::vector<const json*>& items = by_mod[from[i]];
    if (coded) {
      for (std::size_t k = 0; k < items.size(); ++k) by_code[from[i]][(*items[k])["properties"]["grid:code"].dump()].push_back(k);
    }
    indices.emplace(from[i], FootprintIndex(coded ? std::vector<const json*>{} : items));
  }
  Discovered d;
  d.layout = TupleLayout::List;
  std::map<std::string, std::string> id_of_key;
  for (const json* first : by_mod[from[0]]) {
    throw_if_stop_requested();
    TupleSource t;
    const std::string id = first->value("id", "");
    t.key = safe_key(id);
    if (const auto [it, fresh] = id_of_key.emplace(t.key, id); !fresh) {
      throw InputError(label + ": the items '" + it->second + "' and '" + id + "' would both write to OUT/" + t.key +
                       "/ (ids are made safe as folder names); rename one");
    }
    t.output_pattern = t.key + "/{modality}.tif";
    t.inputs[from[0]] = reference + "#" + id;
    for (std::size_t i = 1; i < from.size(); ++i) {
      const json* best = match(*first, by_mod[from[i]], coded, by_code[from[i]], indices.at(from[i]));
      if (best != nullptr) t.inputs[from[i]] = reference + "#" + best->value("id", "");
    }
    if (t.inputs.size() == from.size()) {
      d.tuples.push_back(std::move(t));
    } else {
      d.incomplete.push_back(t.key);
    }
  }
  std::sort(d.tuples.begin(), d.tuples.end(), [](const TupleSource& a, const TupleSource& b) { return a.key < b.key; });
  spdlog::info("{}: {} item(s) of {}, matched by {}", label, by_mod[from[0]].size(), modality_name(from[0]),
               coded ? "grid:code" : "footprint");
  return d;
}

namespace {

// What an item out says of its sources: their ids (STAC items) or paths, a derived_from
// link to each item (a URL as it is, a file relative to the item written, with "#ID" for
// an item of a collection), and the first source item's datetime.
struct Sources {
  json ids = json::array();
  json links = json::array();
  std::string datetime;
};

Sources sources_of(const std::vector<std::string>& sources, const fs::path& item_dir) {
  Sources out;
  for (const std::string& s : sources) {
    if (!is_stac_reference(s)) {
      out.ids.push_back(s);
      continue;
    }
    const StacItem src = read_stac_item(s, "source");
    out.ids.push_back(src.id());
    const auto [base, id] = split_fragment(s);
    std::string href = is_url(base) ? base : fs::absolute(base).lexically_relative(item_dir).generic_string();
    if (href.empty()) href = base;
    if (!id.empty()) href += "#" + id;
    out.links.push_back({{"rel", "derived_from"}, {"href", href}, {"type", "application/json"}});
    if (out.datetime.empty() && src.json.contains("properties")) {
      out.datetime = src.json["properties"].value("datetime", std::string());
    }
  }
  return out;
}

// The STAC item write_stac_item writes (stac.hpp).
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
  const fs::path item_dir = fs::absolute(fs::path(item_path)).parent_path();
  const Sources src = sources_of(sources, item_dir);
  const std::string& datetime = src.datetime;
  const json& source_ids = src.ids;
  const json& links = src.links;
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

}  // namespace

void write_stac_item(const std::string& item_path, const std::string& id, const std::vector<std::string>& outputs,
                     const std::vector<std::string>& sources) {
  const json item = stac_item_of_outputs(id, outputs, item_path, sources);
  write_text_atomically(item_path, item.dump(2) + "\n", "--stac-out");
  spdlog::info("wrote {} (STAC item {})", item_path, id);
}

}  // namespace copgen
