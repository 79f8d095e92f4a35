// The models manifest, `copgen.json`, written by scripts/models/export_models.py beside the
// TorchScript files (schema: models/README.md). Parsing is separate from loading so that
// it can be tested and fuzzed on its own.
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <vector>

namespace copgen {

inline constexpr int kManifestFormatVersion = 1;
inline constexpr const char* kManifestFileName = "copgen.json";

struct ScheduleSpec {
  std::string type = "discrete_vp";
  std::string beta_schedule = "scaled_linear";
  double beta_start = 0.00085;
  double beta_end = 0.012;
  int num_timesteps = 1000;
};

struct BackboneSpec {
  std::string file;        // relative to the models directory
  std::string sha256;      // lower-case hex
  int embed_dim = 0;
  int depth = 0;
  int num_heads = 0;
  int mlp_ratio = 4;
  int patch_size = 2;
  int num_modalities = 4;
  std::int64_t parameters = 0;
  std::string attention;   // "math" or "sdpa"
  std::string source;      // checkpoint file name, or "random (seed N)"
};

struct AutoencoderSpec {
  std::string file;
  std::string sha256;
  int ch = 0;
  std::vector<int> ch_mult;
  int num_res_blocks = 0;
  int z_channels = 4;
  int embed_dim = 4;
  std::int64_t parameters = 0;
  std::string source;
};

struct Manifest {
  int format_version = 0;
  std::vector<std::string> modalities;  // must be DEM, S1RTC, S2L1C, S2L2A
  std::array<int, 3> latent_shape{4, 32, 32};
  int image_size = 256;
  double scale_factor = 0.18215;
  ScheduleSpec schedule;
  BackboneSpec backbone;
  AutoencoderSpec autoencoder;
  std::string sha256;  // of the manifest file itself: "the models hash" in provenance

  // Approximate multiply-add FLOPs (x2) of one backbone call for one sample.
  double backbone_flops_per_call() const;
};

// Parses and validates manifest text. `origin` names the file in messages. Throws
// ModelError on malformed JSON, a missing or mistyped field, an unknown format or
// version, or values that make no sense (modalities other than the four, a latent shape
// that does not divide by the patch size, ...).
Manifest parse_manifest(const std::string& text, const std::string& origin);

// Reads DIR/copgen.json; throws ModelError when the directory or file is missing.
Manifest read_manifest(const std::string& models_dir);

}  // namespace copgen
