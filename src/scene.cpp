#include "copgen/scene.hpp"

#include <algorithm>
#include <cstdint>
#include <limits>
#include <cctype>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <regex>

#include <spdlog/spdlog.h>

#include "copgen/cancel.hpp"
#include "copgen/error.hpp"
#include "copgen/inputs.hpp"
#include "copgen/render.hpp"
#include "copgen/safe.hpp"
#include "copgen/stac.hpp"

namespace copgen {

namespace fs = std::filesystem;

std::string input_kind_name(InputKind k) {
  return k == InputKind::Auto ? "auto" : k == InputKind::Thumbnail ? "thumbnail" : "physical";
}

InputKind parse_input_kind(const std::string& s) {
  if (s == "auto") return InputKind::Auto;
  if (s == "thumbnail") return InputKind::Thumbnail;
  if (s == "physical") return InputKind::Physical;
  throw UsageError("--input-kind: unknown kind '" + s + "' (expected auto, thumbnail or physical)");
}

std::string tiling_name(Tiling t) { return t == Tiling::Fused ? "fused" : "independent"; }

Tiling parse_tiling(const std::string& s) {
  if (s == "fused") return Tiling::Fused;
  if (s == "independent") return Tiling::Independent;
  throw UsageError("--tiling: unknown tiling '" + s + "' (expected fused or independent)");
}

OutputKind parse_output_kind(const std::string& s) {
  if (s == "thumbnail") return OutputKind::Thumbnail;
  if (s == "physical") return OutputKind::Physical;
  throw UsageError("--output-kind: unknown kind '" + s + "' (expected thumbnail or physical)");
}

std::string s2_offset_name(S2Offset m) {
  return m == S2Offset::Auto ? "auto" : m == S2Offset::On ? "on" : "off";
}

S2Offset parse_s2_offset(const std::string& s) {
  if (s == "auto") return S2Offset::Auto;
  if (s == "on") return S2Offset::On;
  if (s == "off") return S2Offset::Off;
  throw UsageError("--s2-offset: unknown mode '" + s + "' (expected auto, on or off)");
}

bool parse_union_extent(const std::string& s) {
  if (s == "intersection") return false;
  if (s == "union") return true;
  throw UsageError("--extent: expected intersection or union, got '" + s + "'");
}

std::string mosaic_order_name(MosaicOrder m) { return m == MosaicOrder::Listed ? "listed" : "recent"; }

MosaicOrder parse_mosaic_order(const std::string& s) {
  if (s == "listed") return MosaicOrder::Listed;
  if (s == "recent") return MosaicOrder::Recent;
  throw UsageError("--mosaic-order: unknown order '" + s + "' (expected listed or recent)");
}

void parse_summary(const std::string& s, SceneOptions& o) {
  size_t start = 0;
  while (start <= s.size()) {
    size_t c = s.find(',', start);
    if (c == std::string::npos) c = s.size();
    const std::string item = s.substr(start, c - start);
    if (item == "mean") {
      o.summary_mean = true;
    } else if (item == "std") {
      o.summary_std = true;
    } else {
      throw UsageError("--summary: unknown statistic '" + item + "' (expected mean, std or mean,std)");
    }
    start = c + 1;
  }
}

bool needs_scene_path(const SceneOptions& o) {
  return o.output_kind == OutputKind::Physical || o.summary_mean || o.summary_std || o.projwin || o.srcwin;
}

void validate(const SceneOptions& o) {
  if (o.overlap < 0 || o.overlap % 8 != 0 || o.overlap >= 256) {
    throw UsageError("--overlap: must be a multiple of 8 from 0 to 248 pixels, got " + std::to_string(o.overlap));
  }
  if (o.target_resolution && (!(*o.target_resolution > 0) || !std::isfinite(*o.target_resolution))) {
    throw UsageError(fmt::format("--target-res: must be a positive number of metres, got {:g}", *o.target_resolution));
  }
  check_target_crs(o.target_crs);
  if (o.projwin && o.srcwin) throw UsageError("--projwin and --srcwin cannot be used together; give one window");
  if (!o.projwin_srs.empty() && !o.projwin) throw UsageError("--projwin-srs needs --projwin");
  if (o.projwin) {
    const auto& p = *o.projwin;
    if (!std::all_of(p.begin(), p.end(), [](double v) { return std::isfinite(v); }) || !(p[0] < p[2]) ||
        !(p[1] > p[3])) {
      throw UsageError(fmt::format("--projwin {:g} {:g} {:g} {:g}: expected ULX ULY LRX LRY with ULX < LRX and "
                                   "ULY > LRY (upper left, then lower right)",
                                   p[0], p[1], p[2], p[3]));
    }
  }
  if (o.srcwin && (o.srcwin->width < 1 || o.srcwin->height < 1)) {
    throw UsageError(fmt::format("--srcwin {} {} {} {}: XSIZE and YSIZE must be at least 1", o.srcwin->x, o.srcwin->y,
                                 o.srcwin->width, o.srcwin->height));
  }
  if (o.srcwin && (std::int64_t{o.srcwin->x} + o.srcwin->width > std::numeric_limits<int>::max() ||
                   std::int64_t{o.srcwin->y} + o.srcwin->height > std::numeric_limits<int>::max())) {
    throw UsageError(fmt::format("--srcwin {} {} {} {}: the window ends past pixel {}, beyond any scene",
                                 o.srcwin->x, o.srcwin->y, o.srcwin->width, o.srcwin->height,
                                 std::numeric_limits<int>::max()));
  }
}

void validate(const SceneOptions& o, const std::vector<Modality>& generated, int samples) {
  validate(o);
  // a flag that cannot apply is refused rather than ignored
  const bool s2 = std::any_of(generated.begin(), generated.end(),
                              [](Modality m) { return m == Modality::S2L1C || m == Modality::S2L2A; });
  if (o.output_kind == OutputKind::Physical && !s2) {
    throw UsageError("--output-kind physical: writes Sentinel-2 digital numbers, and this run generates " +
                     join_modalities(generated) + "; generate S2L1C or S2L2A, or drop the flag");
  }
  if ((o.summary_mean || o.summary_std) && samples < 2) {
    throw UsageError("--summary: a per-pixel mean or std needs several samples of each input; add --samples N "
                     "with N > 1 (a batch run writes one sample per tuple)");
  }
}

namespace {

std::string upper(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return static_cast<char>(std::toupper(c)); });
  return s;
}

std::vector<std::string> split_commas(const std::string& s) {
  std::vector<std::string> out;
  size_t start = 0;
  while (true) {
    const size_t c = s.find(',', start);
    out.push_back(s.substr(start, c == std::string::npos ? std::string::npos : c - start));
    if (c == std::string::npos) break;
    start = c + 1;
  }
  return out;
}

// The physical band names of a modality, in rendering order.
std::vector<std::vector<std::string>> band_names(Modality m) {
  switch (m) {
    case Modality::S2L1C:
    case Modality::S2L2A: return {{"B04", "B4", "RED"}, {"B03", "B3", "GREEN"}, {"B02", "B2", "BLUE"}};
    case Modality::S1RTC: return {{"VV"}, {"VH"}};
    case Modality::DEM: return {{"DEM", "ELEVATION", "HEIGHT"}};
  }
  return {};
}

// Finds a file for each band in a product folder (case-insensitive stem match): the file
// named after the band ("B04.tif", "vv.tif"), else the one file whose name ends in
// "_<band>" (ASF RTC products: "S1A_IW_..._RTC30_G_gpuned_ABCD_VV.tif").
std::optional<std::string> find_band_file(const std::string& dir, const std::vector<std::string>& names) {
  std::error_code ec;
  std::vector<std::string> suffixed;
  for (const auto& e : fs::directory_iterator(dir, ec)) {
    if (!e.is_regular_file()) continue;
    const std::string stem = upper(e.path().stem().string());
    const std::string ext = upper(e.path().extension().string());
    if (ext != ".TIF" && ext != ".TIFF" && ext != ".JP2" && ext != ".VRT") continue;
    for (const auto& n : names) {
      if (stem == n) return e.path().string();
      if (stem.size() > n.size() + 1 && stem.compare(stem.size() - n.size() - 1, n.size() + 1, "_" + n) == 0) {
        suffixed.push_back(e.path().string());
      }
    }
  }
  if (suffixed.size() == 1) return suffixed[0];
  return std::nullopt;
}

// The scale of an ASF RTC product's S1 values, from its name: the letters after "_G_" say
// gamma0 or sigma0 (g, s), then power, dB or amplitude (p, d, a); power when the name
// says nothing.
S1Scale s1_scale_of_name(const std::string& name) {
  const std::string u = upper(name);
  const auto at = u.find("_G_");
  if (at == std::string::npos || at + 4 >= u.size() || (u[at + 3] != 'G' && u[at + 3] != 'S')) return S1Scale::Power;
  if (u[at + 4] == 'D') return S1Scale::Decibel;
  if (u[at + 4] == 'A') return S1Scale::Amplitude;
  return S1Scale::Power;
}

// S1 values in `scale` as linear power, where the rendering starts.
torch::Tensor s1_linear_power(const torch::Tensor& v, S1Scale scale) {
  if (scale == S1Scale::Decibel) return torch::pow(10.0, v.to(torch::kFloat64) / 10.0).to(v.scalar_type());
  if (scale == S1Scale::Amplitude) return v * v;
  return v;
}

bool is_byte_rgb(const RasterInfo& info) { return info.bands == 3 && info.data_type == "Byte"; }

// The band files of a product folder for every band name list, or nullopt when one is missing.
std::optional<std::vector<std::string>> band_files(const std::string& dir,
                                                   const std::vector<std::vector<std::string>>& names) {
  std::vector<std::string> files;
  for (const auto& n : names) {
    auto f = find_band_file(dir, n);
    if (!f) return std::nullopt;
    files.push_back(*f);
  }
  return files;
}

// Resolves a Major TOM product folder: its physical band files, else its thumbnail.
void resolve_product_folder(ModalityInput& in, Modality modality, const std::string& path, InputKind requested,
                            const std::string& what, const std::vector<std::vector<std::string>>& names) {
  const auto files = band_files(path, names);
  if (files && requested != InputKind::Thumbnail) {
    in.kind = InputKind::Physical;
    in.files = *files;
    in.bands.assign(files->size(), 1);
    if (modality == Modality::S1RTC) {
      in.s1_scale = s1_scale_of_name(fs::path(files->front()).filename().string());
      if (in.s1_scale != S1Scale::Power) {
        spdlog::info("S1RTC input '{}': values in {} (by the product's name), rendered from their linear power", path,
                     in.s1_scale == S1Scale::Decibel ? "dB" : "amplitude");
      }
    }
  } else if (const std::string thumbnail = find_product_thumbnail(path);
             !thumbnail.empty() && requested != InputKind::Physical) {
    in.kind = InputKind::Thumbnail;
    in.files = {thumbnail};
  } else {
    std::string want;
    for (const auto& n : names) want += (want.empty() ? "" : ", ") + n.front() + ".tif";
    throw InputError(what + " '" + path + "': a folder without the " + modality_name(modality) +
                     " bands (" + want + ")" + (requested == InputKind::Physical ? "" : " or a thumbnail.png"));
  }
}

// Resolves a comma-separated list of single-band files, one per band in rendering order.
void resolve_band_list(ModalityInput& in, Modality modality, const std::string& path, const std::string& what,
                       const std::vector<std::vector<std::string>>& names) {
  in.kind = InputKind::Physical;
  in.files = split_commas(path);
  if (in.files.size() != names.size()) {
    throw InputError(what + " '" + path + "': " + std::to_string(in.files.size()) + " files given, " +
                     modality_name(modality) + " needs " + std::to_string(names.size()) + " (one per band)");
  }
  for (const auto& f : in.files) {
    const RasterInfo info = probe_raster(f, what);
    if (info.bands != 1) {
      throw InputError(what + " '" + f + "': expected a single-band file, found " + std::to_string(info.bands) +
                       " bands");
    }
  }
  in.bands.assign(in.files.size(), 1);
}

// The bands of a multi-band file to read, in rendering order: named bands first, else the file's band order.
std::vector<int> physical_bands(const RasterInfo& info, Modality modality, const std::string& path,
                                const std::string& what, const std::vector<std::vector<std::string>>& names) {
  std::vector<int> bands;
  for (const auto& n : names) {
    for (int b = 1; b <= info.bands; ++b) {
      const std::string d = upper(info.band_descriptions[static_cast<size_t>(b - 1)]);
      if (std::find(n.begin(), n.end(), d) != n.end()) {
        bands.push_back(b);
        break;
      }
    }
  }
  if (bands.size() != names.size()) {
    if (info.bands != static_cast<int>(names.size())) {
      std::string want;
      for (const auto& n : names) want += (want.empty() ? "" : ", ") + n.front();
      throw InputError(what + " '" + path + "': expected " +
                       (modality == Modality::DEM ? "a single elevation band"
                                                  : std::to_string(names.size()) + " bands (" + want +
                                                        ") named or in that order") +
                       " or a 3-band Byte thumbnail, found " + std::to_string(info.bands) + " band(s) of " +
                       info.data_type);
    }
    bands.clear();
    for (int b = 1; b <= info.bands; ++b) bands.push_back(b);
  }
  return bands;
}

// Resolves a single raster file: a 3-band thumbnail, or the physical bands it holds.
void resolve_single_file(ModalityInput& in, Modality modality, const std::string& path, InputKind requested,
                         const std::string& what, const std::vector<std::vector<std::string>>& names) {
  const RasterInfo info = probe_raster(path, what);
  in.files = {path};
  const bool thumb = requested == InputKind::Thumbnail || (requested == InputKind::Auto && is_byte_rgb(info));
  if (thumb) {
    if (info.bands != 3) {
      throw InputError(what + " '" + path + "': a thumbnail needs 3 bands, found " + std::to_string(info.bands) +
                       " band(s) of " + info.data_type);
    }
    in.kind = InputKind::Thumbnail;
  } else {
    in.kind = InputKind::Physical;
    std::vector<int> bands = physical_bands(info, modality, path, what, names);
    in.bands = bands;
    in.files.assign(bands.size(), path);
  }
}

// Describes for the log what a resolved input is read as.
std::string describe_source(const ModalityInput& in) {
  std::string from;
  if (in.kind == InputKind::Thumbnail) {
    from = "a rendered thumbnail";
  } else if (std::all_of(in.files.begin(), in.files.end(), [&](const std::string& f) { return f == in.files[0]; })) {
    from = "physical bands (" + std::string(in.bands.size() == 1 ? "band " : "bands ");
    for (size_t i = 0; i < in.bands.size(); ++i) from += (i ? ", " : "") + std::to_string(in.bands[i]);
    from += " of one file)";
  } else {
    from = "physical bands (" + std::to_string(in.files.size()) + " files)";
  }
  return from;
}

}  // namespace

namespace {

// The offset a band's GDAL description says: its offset and scale (value = DN * scale +
// offset), else BOA_ADD_OFFSET / RADIO_ADD_OFFSET (-1000: 1000 DNs) or PROCESSING_BASELINE,
// of the band, then of the file.
std::optional<S2OffsetEvidence> gdal_s2_offset(const RasterInfo& info, int band) {
  const auto i = static_cast<std::size_t>(band - 1);
  const std::string of = " of '" + fs::path(info.path).filename().string() + "'";
  if (i < info.band_offsets.size() && info.band_offsets[i]) {
    const double offset = *info.band_offsets[i], scale = info.band_scales[i].value_or(1.0);
    if ((offset != 0 || scale != 1) && scale != 0 && std::isfinite(offset / scale)) {
      return S2OffsetEvidence{std::round(-offset / scale) + 0.0,
                              fmt::format("band offset {:g}, scale {:g}{}", offset, scale, of)};
    }
  }
  static const std::map<std::string, std::string> kNone;
  for (const auto* items : {i < info.band_metadata.size() ? &info.band_metadata[i] : &kNone, &info.metadata}) {
    for (const char* key : {"BOA_ADD_OFFSET", "RADIO_ADD_OFFSET"}) {
      const auto it = items->find(key);
      if (it == items->end()) continue;
      char* end = nullptr;
      const double v = std::strtod(it->second.c_str(), &end);
      if (end != it->second.c_str() && std::isfinite(v)) {
        return S2OffsetEvidence{-v + 0.0, std::string(key) + " " + it->second + of};
      }
    }
    const auto it = items->find("PROCESSING_BASELINE");
    if (it == items->end()) continue;
    if (const auto dn = s2_offset_of_baseline(it->second)) {
      return S2OffsetEvidence{*dn, "PROCESSING_BASELINE " + it->second + (*dn > 0 ? " >= 04.00" : " < 04.00") + of};
    }
  }
  return std::nullopt;
}

// The offset the band files of `in` say (gdal_s2_offset, the first band that says), else
// the baseline in a SAFE product name among their paths ("..._MSIL2A_20240419T095549_N0510_...").
std::optional<S2OffsetEvidence> file_s2_offset(const ModalityInput& in, const std::string& what) {
  std::map<std::string, RasterInfo> probed;
  for (std::size_t i = 0; i < in.files.size(); ++i) {
    auto it = probed.find(in.files[i]);
    if (it == probed.end()) it = probed.emplace(in.files[i], probe_raster(in.files[i], what)).first;
    if (auto e = gdal_s2_offset(it->second, in.bands[i])) return e;
  }
  static const std::regex kSafeName(R"(MSIL(1C|2A)_\d{8}T\d{6}_N(\d{2})(\d{2})_)");
  for (const std::string& f : in.files) {
    std::smatch m;
    if (!std::regex_search(f, m, kSafeName)) continue;
    const std::string baseline = m[2].str() + "." + m[3].str();
    const double dn = *s2_offset_of_baseline(baseline);
    return S2OffsetEvidence{dn, "product name N" + m[2].str() + m[3].str() + (dn > 0 ? " >= 04.00" : " < 04.00")};
  }
  return std::nullopt;
}

// Settles the DN offset of an S2 input of physical bands: forced by `mode`, else what
// `said` (a STAC item's words) or the band files say, else none; logs it.
void settle_s2_offset(ModalityInput& in, S2Offset mode, std::optional<S2OffsetEvidence> said,
                      const std::string& what) {
  if (mode != S2Offset::Auto) {
    in.dn_offset = mode == S2Offset::On ? 1000.0 : 0.0;
    in.offset_source = "--s2-offset " + s2_offset_name(mode);
  } else {
    if (!said) said = file_s2_offset(in, what);
    in.dn_offset = said ? said->dn : 0.0;
    in.offset_source = said ? said->source : "none";
  }
  if (in.offset_source == "none") {
    spdlog::info("{} '{}': no offset information; assuming none (--s2-offset on to subtract 1000)", what, in.label);
  } else {
    spdlog::info("{} '{}': DN offset {:g} ({})", what, in.label, in.dn_offset, in.offset_source);
  }
}

// "YYYY-MM-DDTHH:MM:SS" of an RFC 3339 date-time (as written; its zone is not applied), or empty.
std::string normal_datetime(const std::string& v) {
  static const std::regex kDate(R"(^(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2}))");
  std::smatch m;
  return std::regex_search(v, m, kDate) ? m[1].str() + "T" + m[2].str() : std::string();
}

// When a STAC item was acquired: its datetime, else its start_datetime; empty when neither.
std::string item_datetime(const StacItem& item) {
  const auto props = item.json.find("properties");
  if (props == item.json.end() || !props->is_object()) return "";
  for (const char* key : {"datetime", "start_datetime"}) {
    const auto it = props->find(key);
    if (it != props->end() && it->is_string()) {
      if (std::string d = normal_datetime(it->get<std::string>()); !d.empty()) return d;
    }
  }
  return "";
}

// The acquisition time in a product's name ("S2B_MSIL2A_20240419T095549_N0510_...",
// Major TOM's "..._20200416T102021_..."): the first _YYYYMMDDTHHMMSS_; empty when none.
std::string name_datetime(const std::string& path) {
  static const std::regex kStamp(R"((?:^|[_/\\])(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})(?=[_./\\]|$))");
  std::smatch m;
  if (!std::regex_search(path, m, kStamp)) return "";
  return m[1].str() + "-" + m[2].str() + "-" + m[3].str() + "T" + m[4].str() + ":" + m[5].str() + ":" + m[6].str();
}

}  // namespace

ModalityInput resolve_input(Modality modality, const std::string& path, InputKind requested,
                            const std::map<std::string, std::string>& assets, S2Offset offset) {
  const std::string what = modality_name(modality) + " input";
  ModalityInput in;
  in.modality = modality;
  in.label = path;
  const auto names = band_names(modality);
  std::error_code ec;
  std::optional<S2OffsetEvidence> said;  // what a STAC item says of the S2 offset

  if (is_stac_reference(path)) {
    if (requested == InputKind::Thumbnail) {
      throw UsageError("--input-kind thumbnail: " + what + " '" + path + "' is a STAC item, whose assets are "
                       "physical bands");
    }
    const StacItem item = read_stac_item(path, what);
    in.kind = InputKind::Physical;
    std::vector<std::string> keys;
    for (const StacBand& b : stac_band_files(item, modality, assets, what)) {
      in.files.push_back(b.path);
      in.bands.push_back(b.band);
      keys.push_back(b.asset);
    }
    // the item's words alone: its band files are not probed again (a COG over HTTP)
    if (offset == S2Offset::Auto) said = stac_s2_offset(item, keys).value_or(S2OffsetEvidence{0.0, "none"});
    spdlog::info("{}: '{}' is the STAC item {}", modality_name(modality), path, item.id());
    in.datetime = item_datetime(item);
  } else if (is_safe_product(path)) {  // a Sentinel-2 SAFE folder or .zip (safe.hpp)
    if (requested == InputKind::Thumbnail) {
      throw UsageError("--input-kind thumbnail: " + what + " '" + path + "' is a SAFE product, whose bands are "
                       "physical");
    }
    const SafeProduct safe = read_safe_product(path, modality, what);
    in.kind = InputKind::Physical;
    in.files = safe.bands;
    in.bands.assign(in.files.size(), 1);
    in.nodata = safe.nodata;
    if (offset == S2Offset::Auto) said = safe.offset;  // unset: the band files and the name, as for other files
    spdlog::info("{}: '{}' is the {} SAFE product {}, granule {}", modality_name(modality), path, safe.level,
                 safe.name, safe.granule);
  } else if (fs::is_directory(path, ec)) {
    resolve_product_folder(in, modality, path, requested, what, names);
  } else if (path.find(',') != std::string::npos && !fs::exists(path, ec)) {
    resolve_band_list(in, modality, path, what, names);
  } else {
    resolve_single_file(in, modality, path, requested, what, names);
  }
  if (in.kind == InputKind::Thumbnail) in.bands = {1, 2, 3};
  if (in.datetime.empty()) in.datetime = name_datetime(path);
  const std::string from = describe_source(in);
  spdlog::info("{}: '{}' read as {}", modality_name(modality), path, from);
  if (in.kind == InputKind::Physical && (modality == Modality::S2L1C || modality == Modality::S2L2A)) {
    settle_s2_offset(in, offset, said, what);
  }
  return in;
}

std::string s2_offset_record(const std::vector<ModalityInput>& inputs) {
  std::string out;
  bool said = false;
  std::vector<ModalityInput> flat;  // a mosaic's parts each say their own offset
  for (const ModalityInput& in : inputs) {
    if (in.parts.empty()) flat.push_back(in);
    flat.insert(flat.end(), in.parts.begin(), in.parts.end());
  }
  for (const ModalityInput& in : flat) {
    if (in.offset_source.empty()) continue;
    said = said || in.offset_source != "none";
    out += (out.empty() ? "" : "; ") + fmt::format("{}:{:g} ({})", modality_name(in.modality), in.dn_offset,
                                                   in.offset_source == "none" ? "nothing said; assumed none"
                                                                              : in.offset_source);
  }
  return said ? out : "";
}

bool has_band_files(const std::string& dir, Modality modality) {
  return band_files(dir, band_names(modality)).has_value();
}

std::vector<std::size_t> mosaic_order_of(const std::vector<ModalityInput>& parts, MosaicOrder order) {
  std::vector<std::size_t> idx(parts.size());
  for (std::size_t i = 0; i < idx.size(); ++i) idx[i] = i;
  if (order == MosaicOrder::Listed) return idx;
  for (const ModalityInput& p : parts) {
    if (p.datetime.empty()) {
      throw UsageError("--mosaic-order recent: " + modality_name(p.modality) + " input '" + p.label +
                       "' carries no date (a STAC item's datetime, or _YYYYMMDDTHHMMSS_ in a product's name); "
                       "give the inputs top first with --mosaic-order listed");
    }
  }
  std::stable_sort(idx.begin(), idx.end(),
                   [&](std::size_t a, std::size_t b) { return parts[a].datetime > parts[b].datetime; });
  return idx;
}

ModalityInput mosaic_input(std::vector<ModalityInput> parts, MosaicOrder order) {
  if (parts.empty()) throw std::invalid_argument("mosaic_input: no parts");
  if (parts.size() == 1) return parts[0];
  const std::string name = modality_name(parts[0].modality);
  for (const ModalityInput& p : parts) {
    if (p.modality != parts[0].modality || !p.parts.empty()) {
      throw std::invalid_argument("mosaic_input: parts of one modality, none a mosaic, expected");
    }
    if (p.kind != parts[0].kind) {
      throw InputError(name + " inputs '" + parts[0].label + "' and '" + p.label +
                       "': a mosaic cannot mix a rendered thumbnail with physical bands; give every part as "
                       "physical bands or every part as a thumbnail");
    }
  }
  ModalityInput m;
  m.modality = parts[0].modality;
  m.kind = parts[0].kind;
  std::string listing;
  for (std::size_t i : mosaic_order_of(parts, order)) m.parts.push_back(std::move(parts[i]));
  for (const ModalityInput& p : m.parts) {
    m.label += (m.label.empty() ? "" : " + ") + p.label;
    m.files.insert(m.files.end(), p.files.begin(), p.files.end());
    m.bands.insert(m.bands.end(), p.bands.begin(), p.bands.end());
    m.dn_offset = std::max(m.dn_offset, p.dn_offset);
    listing += (listing.empty() ? "'" : ", '") + p.label + "'" + (p.datetime.empty() ? "" : " (" + p.datetime + ")");
  }
  m.datetime = m.parts[0].datetime;
  spdlog::info("{}: a mosaic of {} inputs, top first ({}): {}", name, m.parts.size(),
               order == MosaicOrder::Listed ? "--mosaic-order listed: as given" : "--mosaic-order recent: the most recent first",
               listing);
  return m;
}

torch::Tensor MosaicCoverage::add(const std::vector<torch::Tensor>& valid) {
  if (valid.empty()) throw std::invalid_argument("MosaicCoverage::add: no parts");
  if (covered.empty()) {
    covered.assign(valid.size(), 0);
    shown.assign(valid.size(), 0);
  }
  if (covered.size() != valid.size()) throw std::invalid_argument("MosaicCoverage::add: another number of parts");
  torch::Tensor any = torch::zeros(valid[0].sizes(), torch::kBool);
  for (std::size_t j = 0; j < valid.size(); ++j) {
    const torch::Tensor v = valid[j].to(torch::kBool);
    covered[j] += v.sum().item<std::int64_t>();
    shown[j] += v.logical_and(any.logical_not()).sum().item<std::int64_t>();
    any = any.logical_or(v);
  }
  pixels += valid[0].numel();
  return any;
}

std::string describe_coverage(const ModalityInput& in, const MosaicCoverage& c) {
  const auto pct = [&](std::int64_t n) { return c.pixels > 0 ? 100.0 * static_cast<double>(n) / c.pixels : 0.0; };
  std::size_t covering = 0;
  for (std::int64_t n : c.covered) covering += n > 0 ? 1 : 0;
  std::string s = fmt::format("{}: {} of {} items cover the region:", modality_name(in.modality), covering,
                              in.parts.size());
  for (std::size_t j = 0; j < in.parts.size() && j < c.covered.size(); ++j) {
    s += fmt::format("{} '{}' ({:.1f}% of the region; on top in {:.1f}%)", j ? "," : "", in.parts[j].label,
                     pct(c.covered[j]), pct(c.shown[j]));
  }
  return s;
}

std::string mosaic_record(const std::vector<ModalityInput>& inputs, MosaicOrder order) {
  std::string out;
  for (const ModalityInput& in : inputs) {
    if (in.parts.empty()) continue;
    std::string parts;
    for (const ModalityInput& p : in.parts) parts += (parts.empty() ? "'" : " over '") + p.label + "'";
    out += (out.empty() ? "" : "; ") + modality_name(in.modality) + ": " + parts + " (--mosaic-order " +
           mosaic_order_name(order) + ")";
  }
  return out;
}

namespace {

// The part of `grid` that --projwin or --srcwin selects. A window past the grid's edge
// keeps its size (nodata there), as gdal_translate's does; one with no pixel inside is a
// usage error.
Grid region_of_interest(const Grid& grid, const SceneOptions& o) {
  const PixelWindow w = o.srcwin ? *o.srcwin : projwin_pixels(grid, *o.projwin, o.projwin_srs);
  const std::string flag = o.srcwin ? "--srcwin" : "--projwin";
  const std::string pixels = fmt::format("pixels {} {} {} {}", w.x, w.y, w.width, w.height);
  if (w.width < 1 || w.height < 1) throw UsageError(flag + ": the window is less than one pixel (" + pixels + ")");
  const bool inside = w.x >= 0 && w.y >= 0 && w.x + w.width <= grid.width && w.y + w.height <= grid.height;
  const bool overlaps = w.x < grid.width && w.y < grid.height && w.x + w.width > 0 && w.y + w.height > 0;
  if (!overlaps) {
    throw UsageError(fmt::format("{}: the window ({}) lies outside the grid of the inputs ({} x {} pixels)", flag,
                                 pixels, grid.width, grid.height));
  }
  if (!inside) {
    spdlog::warn("{}: the window ({}) extends past the grid of the inputs ({} x {} pixels); it is nodata there", flag,
                 pixels, grid.width, grid.height);
  }
  spdlog::info("region of interest ({}): {}", flag, pixels);
  return window_grid(grid, w);
}

// The grid of an input: its first file's; for a mosaic, the union of its parts' in its top
// part's CRS and pixels (choose_grid with the top part as the reference), or --target-crs.
Grid input_grid(const ModalityInput& in, const SceneOptions& o) {
  const std::string what = modality_name(in.modality) + " input";
  if (in.parts.empty()) return RasterSource::open(in.files[0], what).grid();
  std::vector<Grid> grids;
  std::vector<std::string> labels;
  for (const ModalityInput& p : in.parts) {
    grids.push_back(RasterSource::open(p.files[0], what).grid());
    labels.push_back(p.label);
    if (!grids.back().georeferenced) {
      throw InputError(what + " '" + p.label + "': no georeferencing; the parts of a mosaic are placed by theirs");
    }
  }
  GridOptions go;
  go.reference = 0;
  go.target_crs = o.target_crs;
  go.union_extent = true;
  return choose_grid(grids, labels, go);
}

}  // namespace

Grid scene_grid(const std::vector<ModalityInput>& inputs, const SceneOptions& o) {
  std::vector<Grid> grids;
  std::vector<std::string> labels;
  int reference = -1;
  for (size_t i = 0; i < inputs.size(); ++i) {
    grids.push_back(input_grid(inputs[i], o));
    labels.push_back(inputs[i].parts.empty() ? inputs[i].files[0] : inputs[i].parts[0].files[0]);
    if (o.grid_from && *o.grid_from == inputs[i].modality) reference = static_cast<int>(i);
  }
  if (o.grid_from && reference < 0) {
    throw UsageError("--grid-from " + modality_name(*o.grid_from) + ": that modality is not among the inputs");
  }
  if (reference < 0) {
    // the first 10 m input (the DEM is coarser), else the first
    for (size_t i = 0; i < grids.size() && reference < 0; ++i) {
      const double r = grids[i].resolution();
      if (grids[i].georeferenced && r > 9.0 && r < 11.0) reference = static_cast<int>(i);
    }
    if (reference < 0) reference = 0;
  }
  GridOptions go;
  go.reference = reference;
  go.target_crs = o.target_crs;
  // --grid-from alone: that input's grid exactly; otherwise 10 m pixels unless --target-res
  go.target_resolution = o.grid_from ? o.target_resolution : o.target_resolution.value_or(10.0);
  go.union_extent = o.union_extent;
  Grid g = choose_grid(grids, labels, go);
  for (const Grid& m : grids) {  // a mosaic of inputs in degrees: the zone chosen for it
    if (g.chosen.empty() && !m.chosen.empty() && same_crs(m.crs_wkt, g.crs_wkt)) g.chosen = m.chosen;
  }
  if (o.projwin || o.srcwin) g = region_of_interest(g, o);
  const double rx = std::abs(g.geotransform[1]), ry = std::abs(g.geotransform[5]);
  if (g.georeferenced && (std::abs(rx / 10.0 - 1.0) > 0.01 || std::abs(ry / 10.0 - 1.0) > 0.01)) {
    spdlog::warn("the grid's pixels are {:.6g} x {:.6g} m: the model was trained on 10 m pixels, so what it makes at "
                 "this resolution is outside what it learned (--target-res 10 resamples to 10 m)",
                 rx, ry);
  }
  if (!g.chosen.empty()) {
    spdlog::info("grid CRS chosen by copgen: {}; --target-crs sets another (a projected CRS in metres)", g.chosen);
  }
  spdlog::info("target grid: {} x {} pixels of {:.6g} m ({})", g.width, g.height, rx,
               o.grid_from ? "the grid of the --grid-from input" : "from " + labels[static_cast<size_t>(reference)]);
  return g;
}

namespace {

constexpr int kCell = 1068;  // Major TOM cell side at 10 m: the unit of rendering statistics

// Whether `target` is a whole-pixel window of `source`'s grid (same CRS, pixel size and
// north-up axes, origin on a pixel corner); the window's offset goes to (dx, dy).
bool pixel_window_of(const Grid& source, const Grid& target, int& dx, int& dy) {
  const auto &s = source.geotransform, &t = target.geotransform;
  dx = dy = 0;
  if (!target.georeferenced || (source.width == target.width && source.height == target.height && s == t)) {
    return true;  // nothing to align with, or the grid is the input's
  }
  if (!source.georeferenced || s[1] != t[1] || s[5] != t[5] || s[2] != 0 || s[4] != 0 || t[2] != 0 || t[4] != 0) {
    return false;
  }
  const double fx = (t[0] - s[0]) / s[1], fy = (t[3] - s[3]) / s[5];
  if (std::abs(fx - std::round(fx)) > 1e-9 || std::abs(fy - std::round(fy)) > 1e-9) return false;
  if (!same_crs(source.crs_wkt, target.crs_wkt)) return false;
  dx = static_cast<int>(std::lround(fx));
  dy = static_cast<int>(std::lround(fy));
  return true;
}

// Reads bands of an input on the target grid: each file read on its own pixels when the
// grid is a whole-pixel window of it (only the window is read), warped otherwise.
struct BandReader {
  std::vector<RasterSource> sources;
  std::vector<int> bands;
  std::vector<std::pair<int, int>> offsets;  // of the grid in each source's pixels

  BandReader(const ModalityInput& in, const Grid& grid, const std::string& resampling) {
    for (size_t i = 0; i < in.files.size(); ++i) {
      RasterSource s = RasterSource::open(in.files[i], modality_name(in.modality) + " input");
      if (in.nodata) s = s.with_nodata(*in.nodata);
      int dx = 0, dy = 0;
      const bool own = pixel_window_of(s.grid(), grid, dx, dy);
      sources.push_back(own ? s : s.warped(grid, resampling));
      offsets.emplace_back(own ? dx : 0, own ? dy : 0);
      bands.push_back(in.bands.size() > i ? in.bands[i] : 1);
    }
  }
  // bands of file i (1-based) over the grid's window: float32 [n, h, w]
  torch::Tensor read_file(size_t i, const std::vector<int>& which, int x, int y, int w, int h) const {
    return sources[i].read(which, x + offsets[i].first, y + offsets[i].second, w, h);
  }
  // [n, h, w] float32 and validity [h, w]
  std::pair<torch::Tensor, torch::Tensor> read(const std::vector<size_t>& which, int x, int y, int w, int h) const {
    std::vector<torch::Tensor> parts;
    torch::Tensor valid = torch::ones({h, w}, torch::kBool);
    for (size_t i : which) {
      const int sx = x + offsets[i].first, sy = y + offsets[i].second;
      parts.push_back(sources[i].read({bands[i]}, sx, sy, w, h)[0]);
      valid.logical_and_(sources[i].read_valid({bands[i]}, sx, sy, w, h));
      valid.logical_and_(torch::isfinite(parts.back()));
    }
    return {torch::stack(parts, 0), valid};
  }
};

// Bilinear resampling of `img` [C, h, w] (pixel-centred, edges clamped) at the points
// (u, v) in its pixel coordinates: u, v [H, W] -> [C, H, W].
torch::Tensor bilinear_at(const torch::Tensor& img, const torch::Tensor& u, const torch::Tensor& v) {
  const int64_t h = img.size(1), w = img.size(2);
  const auto uc = u.clamp(0, static_cast<double>(w - 1)), vc = v.clamp(0, static_cast<double>(h - 1));
  const auto u0 = uc.floor().to(torch::kLong).clamp(0, w - 1), v0 = vc.floor().to(torch::kLong).clamp(0, h - 1);
  const auto u1 = (u0 + 1).clamp_max(w - 1), v1 = (v0 + 1).clamp_max(h - 1);
  const auto fu = (uc - u0.to(uc.scalar_type())).to(torch::kFloat64);
  const auto fv = (vc - v0.to(vc.scalar_type())).to(torch::kFloat64);
  const auto flat = img.reshape({img.size(0), h * w}).to(torch::kFloat64);
  auto at = [&](const torch::Tensor& vv, const torch::Tensor& uu) {
    return flat.index_select(1, (vv * w + uu).reshape({-1})).reshape({img.size(0), u.size(0), u.size(1)});
  };
  return at(v0, u0) * (1 - fu) * (1 - fv) + at(v0, u1) * fu * (1 - fv) + at(v1, u0) * (1 - fu) * fv +
         at(v1, u1) * fu * fv;
}

// The grid a DEM of grid `sg` is warped onto for the cell (x, y, w, h) of `grid` when it
// is in another CRS or rotated: about the DEM's pixel size (30 m when unknown; a
// geographic DEM's pixels, in degrees, measured in metres where the cell lies), anchored
// at the cell's corner.
Grid dem_cell_grid(const Grid& sg, const Grid& grid, int x, int y, int w, int h) {
  const auto& g = grid.geotransform;
  const double res = grid.resolution();
  double native = same_crs(sg.crs_wkt, grid.crs_wkt) ? sg.resolution() : 0.0;
  if (!(native > 0)) native = geographic_pixel_size(sg, grid.crs_wkt).value_or(30.0);
  Grid dg;
  dg.georeferenced = true;
  dg.crs_wkt = grid.crs_wkt;
  dg.width = std::max(2, static_cast<int>(std::ceil(w * res / native)));
  dg.height = std::max(2, static_cast<int>(std::ceil(h * res / native)));
  dg.geotransform = {g[0] + x * res, native, 0, g[3] - y * res, 0, -native};
  return dg;
}

// A mosaic's elevation over one cell: every part warped onto the cell's grid of the top
// part's pixel size (dem_cell_grid), the top valid part's elevation at each pixel.
std::pair<torch::Tensor, torch::Tensor> read_dem_mosaic_cell(const ModalityInput& in, const Grid& grid, int x, int y,
                                                             int w, int h, std::array<double, 6>& gt,
                                                             MosaicCoverage* coverage) {
  const Grid dg = dem_cell_grid(RasterSource::open(in.parts[0].files[0], "DEM input").grid(), grid, x, y, w, h);
  std::vector<torch::Tensor> elevs, valids;
  for (const ModalityInput& p : in.parts) {
    const RasterSource src = RasterSource::open(p.files[0], "DEM input");
    const RasterSource warped = src.warped(dg, "bilinear");
    const int band = p.bands.empty() ? 1 : p.bands[0];
    elevs.push_back(warped.read({band}, 0, 0, dg.width, dg.height)[0]);
    // read_valid: outside the part is invalid (a warp's alpha band where no nodata is set)
    valids.push_back(
        warped.read_valid({band}, 0, 0, dg.width, dg.height).logical_and(torch::isfinite(elevs.back())));
  }
  MosaicCoverage local;
  const torch::Tensor valid = (coverage ? *coverage : local).add(valids);
  torch::Tensor elev = torch::zeros_like(elevs[0]);
  for (std::size_t j = elevs.size(); j-- > 0;) elev = torch::where(valids[j], elevs[j], elev);  // the top one last
  gt = dg.geotransform;
  return {elev, valid};
}

// The DEM's elevation and validity over one cell at its native resolution, as a Major TOM
// DEM product holds it: the cell's extent and nothing beyond, so that the hillshade's
// gradient is one-sided at the cell's edges. In the grid's CRS, a north-up DEM is read on
// its own pixels (the cell widened to whole pixels, no resampling); otherwise it is warped
// onto a grid of about its pixel size anchored at the cell's corner. `gt` gets the
// geotransform of the result.
std::pair<torch::Tensor, torch::Tensor> read_dem_cell(const ModalityInput& in, const Grid& grid, int x, int y,
                                                      int w, int h, std::array<double, 6>& gt,
                                                      MosaicCoverage* coverage) {
  if (!in.parts.empty()) return read_dem_mosaic_cell(in, grid, x, y, w, h, gt, coverage);
  const RasterSource src = RasterSource::open(in.files[0], "DEM input");
  const Grid sg = src.grid();
  const int band = in.bands.empty() ? 1 : in.bands[0];
  const auto& g = grid.geotransform;
  const double res = grid.resolution();
  const double x0 = g[0] + x * res, x1 = x0 + w * res, y0 = g[3] - y * res, y1 = y0 - h * res;  // cell edges
  const auto& s = sg.geotransform;
  const bool own_pixels = sg.georeferenced && same_crs(sg.crs_wkt, grid.crs_wkt) && s[2] == 0 && s[4] == 0 && s[1] > 0 &&
                          s[5] < 0;
  torch::Tensor elev, valid;
  if (own_pixels) {
    constexpr double kSnap = 1e-6;  // pixel fractions below this are rounding, not area
    const int c0 = static_cast<int>(std::floor((x0 - s[0]) / s[1] + kSnap));
    const int r0 = static_cast<int>(std::floor((s[3] - y0) / -s[5] + kSnap));
    const int c1 = std::max(c0 + 2, static_cast<int>(std::ceil((x1 - s[0]) / s[1] - kSnap)));
    const int r1 = std::max(r0 + 2, static_cast<int>(std::ceil((s[3] - y1) / -s[5] - kSnap)));
    elev = src.read({band}, c0, r0, c1 - c0, r1 - r0)[0];
    valid = src.read_valid({band}, c0, r0, c1 - c0, r1 - r0);
    gt = {s[0] + c0 * s[1], s[1], 0, s[3] + r0 * s[5], 0, s[5]};
  } else {
    const Grid dg = dem_cell_grid(sg, grid, x, y, w, h);
    const RasterSource warped = src.warped(dg, "bilinear");
    elev = warped.read({band}, 0, 0, dg.width, dg.height)[0];
    valid = warped.read_valid({band}, 0, 0, dg.width, dg.height);
    gt = dg.geotransform;
  }
  valid = valid.logical_and(torch::isfinite(elev));
  return {torch::where(valid, elev, torch::zeros_like(elev)), valid};
}

// The DEM thumbnail of one cell: the hillshade of the cell's DEM at its native resolution
// (read_dem_cell), then bilinear to the grid's pixels, as Major TOM resizes its DEM
// thumbnails. A pixel is valid where its four DEM pixels are.
std::pair<torch::Tensor, torch::Tensor> render_dem_cell(const ModalityInput& in, const Grid& grid, int x, int y,
                                                        int w, int h, MosaicCoverage* coverage = nullptr) {
  if (!grid.georeferenced) {
    // no georeferencing: the DEM is already on the target pixel grid
    auto [elev, valid] = BandReader(in, grid, "bilinear").read({0}, x, y, w, h);
    return {render_dem(elev[0].to(torch::kFloat64), valid), valid};
  }
  std::array<double, 6> dgt{};
  const auto [elev, dvalid] = read_dem_cell(in, grid, x, y, w, h, dgt, coverage);
  const torch::Tensor thumb = render_dem(elev, dvalid);  // uint8 [3, dh, dw]
  // the grid's pixel centres in DEM pixel coordinates (pixel-centred bilinear)
  const auto& g = grid.geotransform;
  const double res = grid.resolution();
  const auto opts = torch::TensorOptions().dtype(torch::kFloat64);
  const auto cols = (g[0] + (torch::arange(w, opts) + x + 0.5) * res - dgt[0]) / dgt[1] - 0.5;
  const auto rows = (g[3] - (torch::arange(h, opts) + y + 0.5) * res - dgt[3]) / dgt[5] - 0.5;
  const auto uu = cols.unsqueeze(0).expand({h, w});
  const auto vv = rows.unsqueeze(1).expand({h, w});
  const torch::Tensor grey = bilinear_at(thumb.narrow(0, 0, 1), uu, vv);
  const torch::Tensor out = torch::floor(grey + 0.5).clamp(0, 255).to(torch::kUInt8).expand({3, h, w}).contiguous();
  const torch::Tensor v = bilinear_at(dvalid.unsqueeze(0).to(torch::kFloat64), uu, vv)[0] > 0.999;
  return {out, v};
}

// One part of a mosaic over a window, in the domain parts are combined in: thumbnail
// pixels, S1 linear power, S2 DNs less the part's own offset (float64); and its validity.
std::pair<torch::Tensor, torch::Tensor> read_part(const ModalityInput& part, const BandReader& reader, int x, int y,
                                                  int w, int h) {
  if (part.kind == InputKind::Thumbnail) {
    const torch::Tensor v = reader.read({0, 0, 0}, x, y, w, h).second;  // validity of band 1
    const torch::Tensor rgb = reader.read_file(0, {1, 2, 3}, x, y, w, h);
    return {rgb, v.logical_and(torch::isfinite(rgb).all(0))};
  }
  if (part.modality == Modality::S1RTC) {
    auto [data, v] = reader.read({0, 1}, x, y, w, h);
    return {s1_linear_power(data, part.s1_scale), v};
  }
  auto [data, v] = reader.read({0, 1, 2}, x, y, w, h);
  return {data.to(torch::kFloat64) - part.dn_offset, v};
}

// render_to_file's loop for a mosaic: per cell, the parts combined top first, rendered once.
std::int64_t render_mosaic_cells(const ModalityInput& in, const Grid& grid, RasterSink& sink, int bw, int bh) {
  std::vector<BandReader> readers;
  if (in.modality != Modality::DEM || in.kind == InputKind::Thumbnail) {
    for (const ModalityInput& p : in.parts) readers.emplace_back(p, grid, "bilinear");
  }
  MosaicCoverage coverage;
  std::int64_t valid_pixels = 0;
  for (int y = 0; y < grid.height; y += bh) {
    for (int x = 0; x < grid.width; x += bw) {
      throw_if_stop_requested();
      const int w = std::min(bw, grid.width - x), h = std::min(bh, grid.height - y);
      torch::Tensor rgb, valid;
      if (readers.empty()) {
        std::tie(rgb, valid) = render_dem_cell(in, grid, x, y, w, h, &coverage);
      } else {
        std::vector<torch::Tensor> data, valids;
        for (std::size_t j = 0; j < readers.size(); ++j) {
          auto [d, v] = read_part(in.parts[j], readers[j], x, y, w, h);
          data.push_back(d);
          valids.push_back(v);
        }
        valid = coverage.add(valids);
        torch::Tensor top = torch::zeros_like(data[0]);
        for (std::size_t j = data.size(); j-- > 0;) top = torch::where(valids[j].unsqueeze(0), data[j], top);
        if (in.kind == InputKind::Thumbnail) {
          rgb = torch::nan_to_num(top, 0.0).round().clamp(0, 255).to(torch::kUInt8);
        } else if (in.modality == Modality::S1RTC) {
          const torch::Tensor nod = torch::full_like(top[0], -32768.0f);
          rgb = render_s1(torch::where(valid, top[0], nod), torch::where(valid, top[1], nod), -32768.0);
        } else {
          rgb = render_s2(top, 0.0);  // each part's offset is already subtracted
        }
      }
      rgb = torch::where(valid.unsqueeze(0), rgb, torch::zeros_like(rgb));
      valid_pixels += valid.sum().item<std::int64_t>();
      sink.write(rgb, x, y);
      sink.write_mask(valid, x, y);
    }
  }
  sink.commit();
  spdlog::info("{}", describe_coverage(in, coverage));
  for (std::size_t j = 0; j < in.parts.size(); ++j) {
    if (coverage.covered[j] == 0) {
      spdlog::warn("{} input '{}' covers none of the region (outside it, or nodata everywhere in it); it adds "
                   "nothing to the mosaic",
                   modality_name(in.modality), in.parts[j].label);
    }
  }
  return valid_pixels;
}

}  // namespace

std::int64_t render_to_file(const ModalityInput& in, const Grid& grid, const std::string& path,
                            const SceneOptions& o, const std::string& format,
                            bool overwrite) {
  SinkSpec spec;
  spec.grid = grid;
  spec.bands = 3;
  spec.data_type = "Byte";
  spec.format = format;
  spec.mask = true;
  spec.overwrite = overwrite;
  spec.metadata["COPGEN_RENDERED_FROM"] = in.label;
  spec.metadata["COPGEN_MODALITY"] = modality_name(in.modality);
  spec.metadata["COPGEN_INPUT_KIND"] = input_kind_name(in.kind);
  if (in.modality == Modality::S2L2A) spec.metadata["COPGEN_L2A_OFFSET"] = std::to_string(in.dn_offset);
  if (const std::string r = s2_offset_record({in}); !r.empty()) spec.metadata["COPGEN_S2_OFFSET"] = r;
  if (!grid.chosen.empty()) spec.metadata["COPGEN_GRID_CRS_CHOSEN"] = grid.chosen;
  if (const std::string r = mosaic_record({in}, o.mosaic_order); !r.empty()) spec.metadata["COPGEN_MOSAIC"] = r;
  RasterSink sink = RasterSink::create(path, spec);
  // statistics per scene, or per Major TOM cell for larger scenes
  const int bw = grid.width <= kCell && grid.height <= kCell ? grid.width : kCell;
  const int bh = grid.width <= kCell && grid.height <= kCell ? grid.height : kCell;
  if (!in.parts.empty()) return render_mosaic_cells(in, grid, sink, bw, bh);
  std::optional<BandReader> reader;
  std::int64_t valid_pixels = 0;
  if (!(in.kind == InputKind::Physical && in.modality == Modality::DEM)) {
    reader.emplace(in, grid, "bilinear");
  }
  for (int y = 0; y < grid.height; y += bh) {
    for (int x = 0; x < grid.width; x += bw) {
      throw_if_stop_requested();  // the sink's temporary file goes with it
      const int w = std::min(bw, grid.width - x), h = std::min(bh, grid.height - y);
      torch::Tensor rgb, valid;
      if (in.kind == InputKind::Thumbnail) {
        auto [data, v] = reader->read({0, 0, 0}, x, y, w, h);  // validity of band 1
        rgb = reader->read_file(0, {1, 2, 3}, x, y, w, h);
        valid = v.logical_and(torch::isfinite(rgb).all(0));
        rgb = torch::nan_to_num(rgb, 0.0).round().clamp(0, 255).to(torch::kUInt8);
      } else if (in.modality == Modality::S1RTC) {
        auto [data, v] = reader->read({0, 1}, x, y, w, h);
        const torch::Tensor nod = torch::full_like(data[0], -32768.0f);
        const torch::Tensor power = s1_linear_power(data, in.s1_scale);
        rgb = render_s1(torch::where(v, power[0], nod), torch::where(v, power[1], nod), -32768.0);
        valid = v;
      } else if (in.modality == Modality::DEM) {
        std::tie(rgb, valid) = render_dem_cell(in, grid, x, y, w, h);
      } else {
        auto [data, v] = reader->read({0, 1, 2}, x, y, w, h);
        rgb = render_s2(torch::where(v.unsqueeze(0), data, torch::zeros_like(data)).to(torch::kFloat64),
                        in.dn_offset);
        valid = v;
      }
      rgb = torch::where(valid.unsqueeze(0), rgb, torch::zeros_like(rgb));
      valid_pixels += valid.sum().item<std::int64_t>();
      sink.write(rgb, x, y);
      sink.write_mask(valid, x, y);
    }
  }
  sink.commit();
  return valid_pixels;
}

}  // namespace copgen
