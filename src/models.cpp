#include "copgen/models.hpp"

#include <cstdlib>
#include <filesystem>
#include <fstream>

#include <spdlog/spdlog.h>
#include <torch/csrc/jit/runtime/graph_executor.h>

#include "copgen/error.hpp"
#include "copgen/runtime.hpp"
#include "copgen/sha256.hpp"
#include "copgen/version.hpp"

namespace copgen {

namespace fs = std::filesystem;

std::string precision_name(Precision p) {
  switch (p) {
    case Precision::Auto: return "auto";
    case Precision::Fp32: return "fp32";
    case Precision::Bf16: return "bf16";
    case Precision::Fp16: return "fp16";
  }
  return "?";
}

std::string precision_name(torch::ScalarType t) {
  if (t == torch::kFloat32) return "fp32";
  if (t == torch::kBFloat16) return "bf16";
  if (t == torch::kFloat16) return "fp16";
  return "?";
}

Precision parse_precision(const std::string& s, const std::string& flag) {
  for (Precision p : {Precision::Auto, Precision::Fp32, Precision::Bf16, Precision::Fp16}) {
    if (s == precision_name(p)) return p;
  }
  throw UsageError(flag + ": unknown precision '" + s + "' (expected auto, fp32, bf16 or fp16)");
}

torch::Device resolve_device(const std::string& spec) {
  if (spec == "auto") {
    return torch::cuda::is_available() ? torch::Device(torch::kCUDA, 0) : torch::Device(torch::kCPU);
  }
  if (spec == "cpu") return torch::Device(torch::kCPU);
  if (spec == "cuda" || spec.rfind("cuda:", 0) == 0) {
    int index = 0;
    if (spec.size() > 5) {
      const std::string n = spec.substr(5);
      if (n.empty() || n.find_first_not_of("0123456789") != std::string::npos || n.size() > 4) {
        throw UsageError("--device: malformed device '" + spec + "' (expected auto, cpu, cuda or cuda:N)");
      }
      index = std::stoi(n);
    }
    if (!torch::cuda::is_available()) {
      throw UsageError("--device " + spec +
                       ": no CUDA device is available (this copgen is built against a " +
                       "LibTorch without CUDA, or no GPU is visible); use --device cpu");
    }
    const auto count = static_cast<int>(torch::cuda::device_count());
    if (index >= count) {
      throw UsageError("--device " + spec + ": only " + std::to_string(count) +
                       " CUDA device(s) visible");
    }
    return torch::Device(torch::kCUDA, static_cast<c10::DeviceIndex>(index));
  }
  throw UsageError("--device: malformed device '" + spec + "' (expected auto, cpu, cuda or cuda:N)");
}

bool cpu_has_native_bf16() {
  std::ifstream f("/proc/cpuinfo");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("flags", 0) == 0) {
      return line.find(" avx512_bf16") != std::string::npos || line.find(" amx_bf16") != std::string::npos;
    }
  }
  return false;
}

Precision auto_precision(const DeviceCaps& caps) {
  if (!caps.cuda) return Precision::Fp32;
  return caps.cc_major >= 8 ? Precision::Bf16 : Precision::Fp16;
}

torch::ScalarType resolve_precision(Precision p, const torch::Device& device, const std::string& flag) {
  if (p == Precision::Auto) p = auto_precision(device_caps(device));
  if (p == Precision::Fp32) return torch::kFloat32;
  if (device.is_cpu()) {
    if (p == Precision::Bf16) {
      // oneDNN runs bf16 matrix products on AMX / AVX512-BF16 (several times fp32's rate);
      // elsewhere it emulates them, slower than fp32.
      if (!cpu_has_native_bf16()) {
        spdlog::warn("{} bf16: this CPU has no native bf16 (AMX or AVX512-BF16); fp32 is likely faster", flag);
      }
      return torch::kBFloat16;
    }
    throw UsageError(flag + " " + precision_name(p) +
                     ": half precision is only offered on CUDA devices; use fp32 or bf16 on the CPU");
  }
  if (p == Precision::Fp16) return torch::kFloat16;
  const DeviceCaps caps = device_caps(device);
  if (caps.cc_major > 0 && caps.cc_major < 8) {
    spdlog::warn("{} bf16: this GPU (compute capability {}.{}) emulates bf16; fp16 is faster", flag, caps.cc_major,
                 caps.cc_minor);
  }
  return torch::kBFloat16;
}

torch::ScalarType resolve_ae_precision(Precision p, const torch::Device& device) {
  if (p == Precision::Auto) return torch::kFloat32;
  return resolve_precision(p, device, "--ae-precision");
}

ModelsDirChoice choose_models_dir(const std::string& flag) {
  if (!flag.empty()) return {flag, "--models"};
  if (const char* env = std::getenv("COPGEN_MODELS"); env != nullptr && *env != '\0') return {env, "COPGEN_MODELS"};
  return {kDefaultModelsDir, "installed default"};
}

std::string default_models_dir() { return choose_models_dir().dir; }

namespace {

std::shared_ptr<torch::jit::Module> load_module(const std::string& path, const std::string& role,
                                                const std::string& expected_sha, bool verify) {
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    throw ModelError(role + " file '" + path + "' named by the manifest is missing");
  }
  if (verify) {
    const std::string got = sha256_file(path);
    if (got != expected_sha) {
      throw ModelError(role + " file '" + path + "': checksum mismatch (manifest says " +
                       expected_sha + ", file is " + got +
                       "); the file was changed or corrupted, re-export the models");
    }
  }
  try {
    return std::make_shared<torch::jit::Module>(torch::jit::load(path, torch::kCPU));
  } catch (const c10::Error& e) {
    throw ModelError(role + " file '" + path + "' is not a loadable TorchScript module (" +
                     std::string(e.what_without_backtrace()).substr(0, 300) + ")");
  }
}

void require_method(const torch::jit::Module& m, const std::string& name, size_t num_args,
                    const std::string& role, const std::string& path) {
  auto method = m.find_method(name);
  if (!method) {
    throw ModelError(role + " file '" + path + "' has no method '" + name +
                     "' (see models/README.md for the interface)");
  }
  const size_t got = method->function().getSchema().arguments().size();  // includes self
  if (got != num_args + 1) {
    throw ModelError(role + " file '" + path + "': method '" + name + "' takes " +
                     std::to_string(got - 1) + " argument(s), expected " +
                     std::to_string(num_args));
  }
}

std::int64_t int_attr(const torch::jit::Module& m, const std::string& name, const std::string& role,
                      const std::string& path) {
  if (!m.hasattr(name)) {
    throw ModelError(role + " file '" + path + "' has no attribute '" + name +
                     "' (see models/README.md for the interface)");
  }
  const c10::IValue v = m.attr(name);
  if (!v.isInt()) throw ModelError(role + " file '" + path + "': attribute '" + name + "' is not an int");
  return v.toInt();
}

void expect_dim(std::int64_t got, std::int64_t want, const std::string& name, const std::string& role,
                const std::string& path) {
  if (got != want) {
    throw ModelError(role + " file '" + path + "': " + name + " is " + std::to_string(got) +
                     " but the manifest says " + std::to_string(want));
  }
}

}  // namespace

Models Models::load(const std::string& models_dir, const ModelOptions& options) {
  Models m;
  m.dir_ = models_dir;
  m.manifest_ = read_manifest(models_dir);
  m.device_ = resolve_device(options.device);
  m.dtype_ = resolve_precision(options.precision, m.device_);
  m.ae_dtype_ = resolve_ae_precision(options.ae_precision, m.device_);
  m.tf32_ = options.tf32;
  set_tf32(options.tf32);
  const Manifest& mf = m.manifest_;

  const std::string bb_path = (fs::path(models_dir) / mf.backbone.file).string();
  const std::string ae_path = (fs::path(models_dir) / mf.autoencoder.file).string();
  m.backbone_ = load_module(bb_path, "backbone", mf.backbone.sha256, options.verify_checksums);
  m.autoencoder_ = load_module(ae_path, "autoencoder", mf.autoencoder.sha256, options.verify_checksums);

  require_method(*m.backbone_, "forward", 2, "backbone", bb_path);
  expect_dim(int_attr(*m.backbone_, "embed_dim", "backbone", bb_path), mf.backbone.embed_dim, "embed_dim", "backbone", bb_path);
  expect_dim(int_attr(*m.backbone_, "depth", "backbone", bb_path), mf.backbone.depth, "depth", "backbone", bb_path);
  expect_dim(int_attr(*m.backbone_, "num_heads", "backbone", bb_path), mf.backbone.num_heads, "num_heads", "backbone", bb_path);
  expect_dim(int_attr(*m.backbone_, "num_modalities", "backbone", bb_path), mf.backbone.num_modalities, "num_modalities", "backbone", bb_path);
  expect_dim(int_attr(*m.backbone_, "latent_channels", "backbone", bb_path), mf.latent_shape[0], "latent_channels", "backbone", bb_path);
  expect_dim(int_attr(*m.backbone_, "latent_size", "backbone", bb_path), mf.latent_shape[1], "latent_size", "backbone", bb_path);
  expect_dim(int_attr(*m.backbone_, "patch_size", "backbone", bb_path), mf.backbone.patch_size, "patch_size", "backbone", bb_path);

  require_method(*m.autoencoder_, "encode_moments", 1, "autoencoder", ae_path);
  require_method(*m.autoencoder_, "decode", 1, "autoencoder", ae_path);
  expect_dim(int_attr(*m.autoencoder_, "z_channels", "autoencoder", ae_path), mf.autoencoder.z_channels, "z_channels", "autoencoder", ae_path);
  expect_dim(int_attr(*m.autoencoder_, "ch", "autoencoder", ae_path), mf.autoencoder.ch, "ch", "autoencoder", ae_path);
  expect_dim(int_attr(*m.autoencoder_, "downsample_factor", "autoencoder", ae_path),
             mf.image_size / mf.latent_shape[1], "downsample_factor", "autoencoder", ae_path);
  if (!m.autoencoder_->hasattr("scale_factor") || !m.autoencoder_->attr("scale_factor").isDouble() ||
      std::abs(m.autoencoder_->attr("scale_factor").toDouble() - mf.scale_factor) > 1e-9) {
    throw ModelError("autoencoder file '" + ae_path +
                     "': attribute 'scale_factor' is missing or differs from the manifest's");
  }

  // Cast and move in place: each parameter's data is replaced, the old copy freed.
  m.backbone_->eval();
  m.backbone_->to(m.device_, m.dtype_);
  m.autoencoder_->eval();
  m.autoencoder_->to(m.device_, m.ae_dtype_);
  // The first call of a method under TorchScript's profiling executor (its profiling run)
  // keeps every intermediate tensor to the end of the call; on the CPU, where it fuses
  // nothing, the simple executor runs the same operators without it (process wide; read
  // when a method first runs). CUDA keeps the profiling executor and its fusions.
  const bool profiling = !m.device_.is_cpu();
  torch::jit::getExecutorMode() = profiling;
  torch::jit::getProfilingMode() = profiling;
  // fp32 weights after a cast, CPU weights after a move: back to the system.
  release_freed_host_memory();
  if (options.cuda_graphs && m.device_.is_cuda() && built_with_cuda()) {
    m.graphs_ = std::make_shared<GraphCache>(m.device_);
  }
  if (options.keep_freed_host_memory) keep_freed_host_memory();
  spdlog::debug("loaded models from '{}' on {}: backbone in {}{}, autoencoder in {}, TF32 {} (backbone {} M "
                "parameters, {})",
                models_dir, m.device_.str(), precision_name(m.dtype_), m.graphs_ ? " with CUDA graphs" : "",
                precision_name(m.ae_dtype_), m.tf32_ ? "on" : "off", mf.backbone.parameters / 1000000,
                mf.backbone.source);
  return m;
}

std::map<std::string, std::int64_t> Models::weight_bytes(bool autoencoder) const {
  const torch::jit::Module& module = autoencoder ? *autoencoder_ : *backbone_;
  std::map<std::string, std::int64_t> bytes;
  auto add = [&](const torch::Tensor& t) {
    if (!t.defined() || !t.is_floating_point()) return;
    bytes[precision_name(t.scalar_type()) + " " + t.device().str()] += t.numel() * static_cast<std::int64_t>(t.element_size());
  };
  for (const torch::Tensor& p : module.parameters(/*recurse=*/true)) add(p);
  for (const torch::Tensor& b : module.buffers(/*recurse=*/true)) add(b);
  return bytes;
}

std::map<std::string, std::string> Models::settings_metadata() const {
  return {{"COPGEN_PRECISION", precision_name(dtype_)},
          {"COPGEN_AE_PRECISION", precision_name(ae_dtype_)},
          {"COPGEN_TF32", tf32_ ? "on" : "off"}};
}

NoiseSchedule Models::schedule() const {
  return NoiseSchedule::scaled_linear(manifest_.schedule.beta_start, manifest_.schedule.beta_end,
                                      manifest_.schedule.num_timesteps);
}

torch::Tensor Models::predict_noise(const torch::Tensor& z, const torch::Tensor& t) {
  c10::InferenceMode guard;
  ++backbone_calls_;
  const torch::Tensor z_in = to_device(z, device_).to(dtype_);
  const torch::Tensor t_in = to_device(t, device_).to(torch::kFloat32);
  if (graphs_) {
    const torch::Tensor out = graphs_->run(
        [this](const torch::Tensor& a, const torch::Tensor& b) { return backbone_->forward({a, b}).toTensor(); },
        z_in, t_in);
    if (out.defined()) return out.to(torch::kFloat32);
  }
  return backbone_->forward({z_in, t_in}).toTensor().to(torch::kFloat32);
}

torch::Tensor Models::encode_moments(const torch::Tensor& x) {
  c10::InferenceMode guard;
  auto out = autoencoder_->get_method("encode_moments")({to_device(x, device_).to(ae_dtype_)});
  return out.toTensor().to(torch::kFloat32);
}

torch::Tensor Models::decode(const torch::Tensor& z) {
  c10::InferenceMode guard;
  auto out = autoencoder_->get_method("decode")({to_device(z, device_).to(ae_dtype_)});
  return out.toTensor().to(torch::kFloat32);
}

}  // namespace copgen
