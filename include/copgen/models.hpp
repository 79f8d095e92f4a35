// The two TorchScript networks behind a models directory, loaded through its manifest.
//
//   copgen::ModelOptions o;  o.device = "auto";
//   copgen::Models models = copgen::Models::load("models/cop-gen-beta", o);
//   auto eps = models.predict_noise(z, t);     // [B, 4, 4, 32, 32], [B, 4] -> like z
//   auto mom = models.encode_moments(x);       // [B, 3, 256, 256] in [-1, 1] -> [B, 8, 32, 32]
//   auto img = models.decode(latent);          // [B, 4, 32, 32] (scaled) -> [B, 3, 256, 256]
//
// Loading checks the manifest's format version, each file's SHA-256, that each module
// has the interface models/README.md documents, and that the dimensions the modules carry
// agree with the manifest; every failure is a ModelError naming the file.
// Memory: the files are hashed in 1 MiB chunks and loaded from their paths (no copy of
// the file bytes is kept); the weights are cast and moved in place, and the superseded
// copies handed back to the system (release_freed_host_memory, runtime.hpp). On the CPU
// TorchScript runs with its simple executor (no profiling run, whose first call holds
// every intermediate tensor to the end: +0.9 GB for the full-size backbone, more with
// freed memory kept; outputs are the same bytes); on CUDA the profiling executor stays,
// for its fusions.
// All tensors returned are float32 on the models' device.
#pragma once

#include <map>
#include <memory>
#include <string>

#include <torch/script.h>
#include <torch/torch.h>

#include "copgen/cuda.hpp"
#include "copgen/manifest.hpp"
#include "copgen/schedule.hpp"

namespace copgen {

enum class Precision { Auto, Fp32, Bf16, Fp16 };
std::string precision_name(Precision p);          // "auto", "fp32", "bf16", "fp16"
std::string precision_name(torch::ScalarType t);  // "fp32", "bf16", "fp16"
// Throws UsageError naming `flag` (--precision, --ae-precision).
Precision parse_precision(const std::string& s, const std::string& flag = "--precision");

// "auto" (CUDA if available, else CPU), "cpu", "cuda" or "cuda:N". Throws UsageError
// naming --device when the spec is malformed, the build has no CUDA, or no such GPU.
torch::Device resolve_device(const std::string& spec);
// What --precision auto means, as a pure rule: fp32 on the CPU; on CUDA bf16 where the
// GPU computes it natively (compute capability 8.0 and later: Ampere, Hopper, ...), fp16
// on older GPUs (and on an unknown one, 0.0), so that an emulated bf16 is never chosen.
Precision auto_precision(const DeviceCaps& caps);
// The backbone's dtype for --precision p on `device` (auto: auto_precision). bf16 on the
// CPU is offered (the reference runs the CPU in bf16; with AMX or AVX512-BF16 its matrix
// products are several times faster) and warns where the CPU lacks native bf16; bf16 on a
// GPU before compute capability 8.0 warns too. Throws UsageError naming `flag` for fp16
// on the CPU.
torch::ScalarType resolve_precision(Precision p, const torch::Device& device, const std::string& flag = "--precision");
// The autoencoder's dtype for --ae-precision p: auto is fp32 everywhere (bf16 moves
// decoded pixels by several grey levels, see docs/performance.md); explicit values follow
// resolve_precision's rules.
torch::ScalarType resolve_ae_precision(Precision p, const torch::Device& device);
// True when /proc/cpuinfo lists avx512_bf16 or amx_bf16.
bool cpu_has_native_bf16();

struct ModelOptions {
  std::string device = "auto";        // --device
  Precision precision = Precision::Auto;  // --precision: the backbone's
  Precision ae_precision = Precision::Auto;  // --ae-precision: the autoencoder's (auto: fp32)
  bool tf32 = false;                  // --tf32: TF32 float32 matmuls/convolutions on CUDA (process wide)
  bool verify_checksums = true;       // compare each file's SHA-256 with the manifest
  bool cuda_graphs = true;            // --cuda-graphs: replay the backbone call as a CUDA graph (CUDA only)
  bool keep_freed_host_memory = true;  // after loading, keep freed host memory for reuse (runtime.hpp)
};

// The models directory a command uses, and where that choice came from: `flag` (the
// command's --models) when given, else $COPGEN_MODELS, else the installed one.
struct ModelsDirChoice {
  std::string dir;
  std::string origin;  // "--models", "COPGEN_MODELS" or "installed default"
};
ModelsDirChoice choose_models_dir(const std::string& flag = "");
// The directory used when --models is not given: $COPGEN_MODELS, else the installed one.
std::string default_models_dir();

class Models {
 public:
  static Models load(const std::string& models_dir, const ModelOptions& options);

  const Manifest& manifest() const { return manifest_; }
  const std::string& directory() const { return dir_; }
  NoiseSchedule schedule() const;
  torch::Device device() const { return device_; }
  torch::ScalarType dtype() const { return dtype_; }        // the backbone's
  torch::ScalarType ae_dtype() const { return ae_dtype_; }  // the autoencoder's
  // The model settings that change numerics, for the outputs' metadata: COPGEN_PRECISION
  // (the backbone's) and COPGEN_AE_PRECISION (fp32, bf16, fp16), COPGEN_TF32 (on, off).
  std::map<std::string, std::string> settings_metadata() const;
  // Latent shape [C, H, W] and image side, from the manifest.
  int latent_channels() const { return manifest_.latent_shape[0]; }
  int latent_size() const { return manifest_.latent_shape[1]; }
  int image_size() const { return manifest_.image_size; }
  // Image pixels per latent pixel along a side (8 for COP-GEN-Beta's autoencoder).
  int downsampling() const { return manifest_.image_size / manifest_.latent_shape[1]; }
  double scale_factor() const { return manifest_.scale_factor; }

  // Predicted noise of every modality. z: [B, 4, C, h, w], t: [B, 4] labels in [0, N].
  // On CUDA with cuda_graphs, each shape is captured once and replayed (see cuda.hpp).
  torch::Tensor predict_noise(const torch::Tensor& z, const torch::Tensor& t);
  // predict_noise calls made through this object (each one backbone call of a batch).
  std::int64_t backbone_calls() const { return backbone_calls_; }
  // Whether backbone calls go through CUDA graphs, and how many shapes were captured.
  bool cuda_graphs() const { return graphs_ != nullptr; }
  int cuda_graphs_captured() const { return graphs_ ? graphs_->captured() : 0; }
  const GraphCache* graph_cache() const { return graphs_.get(); }
  // Autoencoder moments (mean, logvar) of images in model range [-1, 1].
  torch::Tensor encode_moments(const torch::Tensor& x);
  // Images in model range (unclamped) from scaled latents.
  torch::Tensor decode(const torch::Tensor& z);

  // Bytes of the floating-point parameters and buffers the backbone (or the autoencoder)
  // holds, per dtype and device ("fp32 cpu", "bf16 cuda:0", ...): after loading, exactly one entry,
  // the module's precision on the models' device - the weights are resident once, in one
  // precision (docs/performance.md, "Memory").
  std::map<std::string, std::int64_t> weight_bytes(bool autoencoder) const;

 private:
  Manifest manifest_;
  std::string dir_;
  torch::Device device_{torch::kCPU};
  torch::ScalarType dtype_ = torch::kFloat32;
  torch::ScalarType ae_dtype_ = torch::kFloat32;
  bool tf32_ = false;
  std::shared_ptr<torch::jit::Module> backbone_;
  std::shared_ptr<torch::jit::Module> autoencoder_;
  std::shared_ptr<GraphCache> graphs_;  // null: eager calls
  std::int64_t backbone_calls_ = 0;
};

}  // namespace copgen
