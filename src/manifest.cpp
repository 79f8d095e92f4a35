#include "copgen/manifest.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "copgen/error.hpp"
#include "copgen/modality.hpp"
#include "copgen/sha256.hpp"

namespace copgen {

namespace {

using nlohmann::json;

struct Reader {
  const std::string& origin;

  [[noreturn]] void fail(const std::string& what) const {
    throw ModelError("models manifest '" + origin + "': " + what);
  }

  const json& field(const json& obj, const char* key, const std::string& where) const {
    if (!obj.is_object()) fail("'" + where + "' is not an object");
    auto it = obj.find(key);
    if (it == obj.end()) fail("missing field '" + where + (where.empty() ? "" : ".") + key + "'");
    return *it;
  }

  std::string str(const json& obj, const char* key, const std::string& where = "") const {
    const json& v = field(obj, key, where);
    if (!v.is_string()) fail("field '" + where + (where.empty() ? "" : ".") + key + "' must be a string");
    return v.get<std::string>();
  }

  std::int64_t integer(const json& obj, const char* key, const std::string& where = "",
                       std::int64_t min = 0) const {
    const json& v = field(obj, key, where);
    if (!v.is_number_integer()) {
      fail("field '" + where + (where.empty() ? "" : ".") + key + "' must be an integer");
    }
    const auto x = v.get<std::int64_t>();
    if (x < min) {
      fail("field '" + where + (where.empty() ? "" : ".") + key + "' must be at least " +
           std::to_string(min) + ", got " + std::to_string(x));
    }
    return x;
  }

  int small_int(const json& obj, const char* key, const std::string& where, int min,
                int max = 1 << 20) const {
    const std::int64_t x = integer(obj, key, where, min);
    if (x > max) {
      fail("field '" + where + (where.empty() ? "" : ".") + key + "' is too large (" +
           std::to_string(x) + ")");
    }
    return static_cast<int>(x);
  }

  double number(const json& obj, const char* key, const std::string& where = "") const {
    const json& v = field(obj, key, where);
    if (!v.is_number()) fail("field '" + where + (where.empty() ? "" : ".") + key + "' must be a number");
    return v.get<double>();
  }

  std::string sha(const json& obj, const std::string& where) const {
    std::string s = str(obj, "sha256", where);
    if (s.size() != 64 || s.find_first_not_of("0123456789abcdef") != std::string::npos) {
      fail("field '" + where + ".sha256' is not a lower-case hex SHA-256 digest");
    }
    return s;
  }

  std::string file(const json& obj, const std::string& where) const {
    std::string f = str(obj, "file", where);
    if (f.empty() || f.find('/') != std::string::npos || f == "." || f == "..") {
      fail("field '" + where + ".file' must be a plain file name inside the models directory");
    }
    return f;
  }
};

}  // namespace

double Manifest::backbone_flops_per_call() const {
  const double d = backbone.embed_dim;
  const double grid = static_cast<double>(latent_shape[1]) / backbone.patch_size;
  const double m = backbone.num_modalities;
  const double tokens = m + m * grid * grid;
  const double blocks = backbone.depth + 1;
  // per block: qkv (3 d^2) + proj (d^2) + mlp (2 * ratio * d^2) per token, and attention
  // logits + weighted sum (2 * tokens * d) per token; out-blocks add the skip linear (2 d^2).
  const double linear = blocks * tokens * (4.0 + 2.0 * backbone.mlp_ratio) * d * d;
  const double attention = blocks * 2.0 * tokens * tokens * d;
  const double skips = (backbone.depth / 2) * tokens * 2.0 * d * d;
  return 2.0 * (linear + attention + skips);
}

namespace {

// Reads the top-level fields: format, format_version, modalities, latent_shape, image_size and scale_factor.
void read_top_level(const Reader& r, const json& j, Manifest& m) {
  if (r.str(j, "format") != "copgen-models") r.fail("field 'format' must be \"copgen-models\"");
  m.format_version = static_cast<int>(r.integer(j, "format_version"));
  if (m.format_version != kManifestFormatVersion) {
    r.fail("unsupported format_version " + std::to_string(m.format_version) +
           " (this copgen reads version " + std::to_string(kManifestFormatVersion) +
           "; re-export the models with this copgen's scripts/models/export_models.py)");
  }
  const json& mods = r.field(j, "modalities", "");
  if (!mods.is_array()) r.fail("field 'modalities' must be an array");
  for (const json& v : mods) {
    if (!v.is_string()) r.fail("field 'modalities' must hold strings");
    m.modalities.push_back(v.get<std::string>());
  }
  std::vector<std::string> expected;
  for (Modality mod : kAllModalities) expected.push_back(modality_name(mod));
  if (m.modalities != expected) {
    r.fail("field 'modalities' must be [\"DEM\", \"S1RTC\", \"S2L1C\", \"S2L2A\"] in that order");
  }
  const json& ls = r.field(j, "latent_shape", "");
  if (!ls.is_array() || ls.size() != 3) r.fail("field 'latent_shape' must be [C, H, W]");
  for (size_t i = 0; i < 3; ++i) {
    if (!ls[i].is_number_integer() || ls[i].get<std::int64_t>() < 1 ||
        ls[i].get<std::int64_t>() > 4096) {
      r.fail("field 'latent_shape' must hold three positive integers");
    }
    m.latent_shape[i] = ls[i].get<int>();
  }
  m.image_size = r.small_int(j, "image_size", "", 1, 1 << 16);
  m.scale_factor = r.number(j, "scale_factor");
  if (!(m.scale_factor > 0.0)) r.fail("field 'scale_factor' must be positive");
}

// Reads and checks the "schedule" object (the noise schedule).
void read_schedule(const Reader& r, const json& j, Manifest& m) {
  const json& sch = r.field(j, "schedule", "");
  m.schedule.type = r.str(sch, "type", "schedule");
  m.schedule.beta_schedule = r.str(sch, "beta_schedule", "schedule");
  if (m.schedule.type != "discrete_vp" || m.schedule.beta_schedule != "scaled_linear") {
    r.fail("unsupported schedule '" + m.schedule.type + "/" + m.schedule.beta_schedule +
           "' (expected discrete_vp/scaled_linear)");
  }
  m.schedule.beta_start = r.number(sch, "beta_start", "schedule");
  m.schedule.beta_end = r.number(sch, "beta_end", "schedule");
  m.schedule.num_timesteps = r.small_int(sch, "num_timesteps", "schedule", 2, 1000000);
  if (!(m.schedule.beta_start > 0 && m.schedule.beta_end < 1 &&
        m.schedule.beta_start <= m.schedule.beta_end)) {
    r.fail("schedule betas must satisfy 0 < beta_start <= beta_end < 1");
  }
}

// Reads and checks the "backbone" object, and that latent_shape suits its patch size.
void read_backbone(const Reader& r, const json& j, Manifest& m) {
  const json& bb = r.field(j, "backbone", "");
  m.backbone.file = r.file(bb, "backbone");
  m.backbone.sha256 = r.sha(bb, "backbone");
  m.backbone.embed_dim = r.small_int(bb, "embed_dim", "backbone", 1, 65536);
  m.backbone.depth = r.small_int(bb, "depth", "backbone", 0, 1000);
  m.backbone.num_heads = r.small_int(bb, "num_heads", "backbone", 1, 4096);
  m.backbone.mlp_ratio = r.small_int(bb, "mlp_ratio", "backbone", 1, 64);
  m.backbone.patch_size = r.small_int(bb, "patch_size", "backbone", 1, 64);
  m.backbone.num_modalities = r.small_int(bb, "num_modalities", "backbone", 1, 64);
  m.backbone.parameters = r.integer(bb, "parameters", "backbone");
  m.backbone.attention = r.str(bb, "attention", "backbone");
  m.backbone.source = r.str(bb, "source", "backbone");
  if (m.backbone.embed_dim % m.backbone.num_heads != 0) {
    r.fail("backbone.embed_dim " + std::to_string(m.backbone.embed_dim) +
           " is not divisible by backbone.num_heads " + std::to_string(m.backbone.num_heads));
  }
  if (m.backbone.depth % 2 != 0) r.fail("backbone.depth must be even");
  if (m.backbone.num_modalities != kNumModalities) {
    r.fail("backbone.num_modalities must be 4, got " + std::to_string(m.backbone.num_modalities));
  }
  if (m.latent_shape[1] % m.backbone.patch_size || m.latent_shape[2] % m.backbone.patch_size) {
    r.fail("latent_shape is not divisible by backbone.patch_size");
  }
}

// Reads and checks the "autoencoder" object, and that it matches latent_shape and image_size.
void read_autoencoder(const Reader& r, const json& j, Manifest& m) {
  const json& ae = r.field(j, "autoencoder", "");
  m.autoencoder.file = r.file(ae, "autoencoder");
  m.autoencoder.sha256 = r.sha(ae, "autoencoder");
  m.autoencoder.ch = r.small_int(ae, "ch", "autoencoder", 1, 65536);
  const json& mult = r.field(ae, "ch_mult", "autoencoder");
  if (!mult.is_array() || mult.empty() || mult.size() > 16) {
    r.fail("field 'autoencoder.ch_mult' must be a non-empty array");
  }
  for (const json& v : mult) {
    if (!v.is_number_integer() || v.get<std::int64_t>() < 1 || v.get<std::int64_t>() > 64) {
      r.fail("field 'autoencoder.ch_mult' must hold positive integers");
    }
    m.autoencoder.ch_mult.push_back(v.get<int>());
  }
  m.autoencoder.num_res_blocks = r.small_int(ae, "num_res_blocks", "autoencoder", 1, 64);
  m.autoencoder.z_channels = r.small_int(ae, "z_channels", "autoencoder", 1, 4096);
  m.autoencoder.embed_dim = r.small_int(ae, "embed_dim", "autoencoder", 1, 4096);
  m.autoencoder.parameters = r.integer(ae, "parameters", "autoencoder");
  m.autoencoder.source = r.str(ae, "source", "autoencoder");
  if (m.autoencoder.embed_dim != m.latent_shape[0]) {
    r.fail("autoencoder.embed_dim " + std::to_string(m.autoencoder.embed_dim) +
           " differs from latent_shape[0] " + std::to_string(m.latent_shape[0]));
  }
  const int factor = 1 << (m.autoencoder.ch_mult.size() - 1);
  if (m.latent_shape[1] * factor != m.image_size || m.latent_shape[2] * factor != m.image_size) {
    r.fail("latent_shape " + std::to_string(m.latent_shape[1]) + "x" +
           std::to_string(m.latent_shape[2]) + " times the autoencoder's downsampling " +
           std::to_string(factor) + " is not image_size " + std::to_string(m.image_size));
  }
}

}  // namespace

Manifest parse_manifest(const std::string& text, const std::string& origin) {
  Reader r{origin};
  json j;
  try {
    j = json::parse(text);
  } catch (const json::exception& e) {
    r.fail(std::string("not valid JSON (") + e.what() + ")");
  }
  if (!j.is_object()) r.fail("not a JSON object");
  Manifest m;
  read_top_level(r, j, m);
  read_schedule(r, j, m);
  read_backbone(r, j, m);
  read_autoencoder(r, j, m);
  m.sha256 = sha256_hex(text.data(), text.size());
  return m;
}

Manifest read_manifest(const std::string& models_dir) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(models_dir, ec)) {
    throw ModelError("models directory '" + models_dir +
                     "' not found (give --models DIR or set COPGEN_MODELS; convert the "
                     "checkpoints with scripts/models/export_models.py, see models/README.md)");
  }
  const std::string path = (fs::path(models_dir) / kManifestFileName).string();
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    throw ModelError("models directory '" + models_dir + "' has no readable " +
                     kManifestFileName + " (is it a directory written by export_models.py?)");
  }
  std::ostringstream ss;
  ss << f.rdbuf();
  return parse_manifest(ss.str(), path);
}

}  // namespace copgen
