#include "copgen/features.hpp"

#include <algorithm>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "copgen/error.hpp"
#include "copgen/models.hpp"
#include "copgen/npy.hpp"
#include "copgen/pixels.hpp"
#include "copgen/raster_io.hpp"
#include "copgen/sha256.hpp"
#include "text.hpp"

namespace copgen {

namespace fs = std::filesystem;
using detail::ends_with_ci;
using detail::lower;
using detail::shape_str;
using nlohmann::json;

namespace {

struct ManifestReader {
  const std::string& origin;

  [[noreturn]] void fail(const std::string& what) const {
    throw ModelError("extractors manifest '" + origin + "': " + what);
  }
  const json& field(const json& obj, const std::string& key, const std::string& where) const {
    if (!obj.is_object()) fail("'" + where + "' is not an object");
    const auto it = obj.find(key);
    if (it == obj.end()) fail("missing field '" + (where.empty() ? key : where + "." + key) + "'");
    return *it;
  }
  std::string str(const json& obj, const std::string& key, const std::string& where) const {
    const json& v = field(obj, key, where);
    if (!v.is_string()) fail("field '" + where + "." + key + "' must be a string");
    return v.get<std::string>();
  }
  std::int64_t integer(const json& obj, const std::string& key, const std::string& where, std::int64_t min) const {
    const json& v = field(obj, key, where);
    if (!v.is_number_integer() || v.get<std::int64_t>() < min || v.get<std::int64_t>() > (std::int64_t{1} << 40)) {
      fail("field '" + where + "." + key + "' must be an integer of at least " + std::to_string(min));
    }
    return v.get<std::int64_t>();
  }
  ExtractorSpec spec(const json& root, const std::string& key) const {
    const json& e = field(root, key, "");
    ExtractorSpec s;
    s.file = str(e, "file", key);
    if (s.file.empty() || s.file.find('/') != std::string::npos || s.file.find('\\') != std::string::npos) {
      fail("field '" + key + ".file' must be a plain file name, got '" + s.file + "'");
    }
    s.sha256 = str(e, "sha256", key);
    if (s.sha256.size() != 64 || s.sha256.find_first_not_of("0123456789abcdef") != std::string::npos) {
      fail("field '" + key + ".sha256' must be 64 lower-case hex digits");
    }
    s.name = str(e, "name", key);
    s.feature = str(e, "feature", key);
    s.feature_dim = static_cast<int>(integer(e, "feature_dim", key, 1));
    s.input_size = static_cast<int>(integer(e, "input_size", key, 1));
    s.width_divisor = static_cast<int>(integer(e, "width_divisor", key, 1));
    s.parameters = integer(e, "parameters", key, 0);
    s.source = str(e, "source", key);
    return s;
  }
};

std::int64_t int_attr(const torch::jit::Module& m, const std::string& name, const std::string& path) {
  if (!m.hasattr(name) || !m.attr(name).isInt()) {
    throw ModelError("extractor file '" + path + "' has no int attribute '" + name +
                     "' (see models/README.md, \"Metric feature extractors\")");
  }
  return m.attr(name).toInt();
}

std::string str_attr(const torch::jit::Module& m, const std::string& name, const std::string& path) {
  if (!m.hasattr(name) || !m.attr(name).isString()) {
    throw ModelError("extractor file '" + path + "' has no str attribute '" + name +
                     "' (see models/README.md, \"Metric feature extractors\")");
  }
  return m.attr(name).toStringRef();
}

std::shared_ptr<FeatureExtractor> load_extractor(const std::string& dir, const ExtractorSpec& spec,
                                                 const std::string& role, const torch::Device& device,
                                                 bool verify) {
  const std::string path = (fs::path(dir) / spec.file).string();
  std::error_code ec;
  if (!fs::is_regular_file(path, ec)) {
    throw ModelError(role + " extractor file '" + path + "' named by the extractors manifest is missing");
  }
  if (verify) {
    const std::string got = sha256_file(path);
    if (got != spec.sha256) {
      throw ModelError(role + " extractor file '" + path + "': checksum mismatch (manifest says " + spec.sha256 +
                       ", file is " + got + "); the file was changed or corrupted, re-export the extractors");
    }
  }
  std::shared_ptr<torch::jit::Module> module;
  try {
    module = std::make_shared<torch::jit::Module>(torch::jit::load(path, torch::kCPU));
  } catch (const c10::Error& e) {
    throw ModelError(role + " extractor file '" + path + "' is not a loadable TorchScript module (" +
                     std::string(e.what_without_backtrace()).substr(0, 300) + ")");
  }
  for (const char* method : {"forward", "preprocess", "resize"}) {
    if (!module->find_method(method)) {
      throw ModelError(role + " extractor file '" + path + "' has no method '" + method +
                       "' (see models/README.md, \"Metric feature extractors\")");
    }
  }
  const auto check = [&](const std::string& attr, std::int64_t got, std::int64_t want) {
    if (got != want) {
      throw ModelError(role + " extractor file '" + path + "': " + attr + " is " + std::to_string(got) +
                       " but the extractors manifest says " + std::to_string(want));
    }
  };
  check("feature_dim", int_attr(*module, "feature_dim", path), spec.feature_dim);
  check("input_size", int_attr(*module, "input_size", path), spec.input_size);
  const std::string name = str_attr(*module, "name", path);
  if (name != spec.name) {
    throw ModelError(role + " extractor file '" + path + "' is '" + name + "' but the extractors manifest says '" +
                     spec.name + "'");
  }
  module->eval();
  module->to(device);
  return std::make_shared<FeatureExtractor>(module, spec, device);
}

void check_images(const torch::Tensor& images, const std::string& what) {
  if (!images.defined() || images.dim() != 4 || images.size(1) != 3 || images.scalar_type() != torch::kUInt8) {
    throw InputError(what + ": expected uint8 images [N, 3, H, W], got " +
                     (images.defined() ? shape_str(images) + " " + std::string(c10::toString(images.scalar_type()))
                                       : std::string("nothing")));
  }
}

bool is_side_file(const std::string& name) {
  const std::string n = lower(name);
  for (const char* s : {".npy", ".aux.xml", ".ovr", ".msk", ".json", ".txt", ".csv", ".md"}) {
    if (ends_with_ci(n, s)) return true;
  }
  return n.empty() || n[0] == '.';
}

}  // namespace

ExtractorsManifest parse_extractors_manifest(const std::string& text, const std::string& origin) {
  const ManifestReader r{origin};
  json root;
  try {
    root = json::parse(text);
  } catch (const json::exception& e) {
    r.fail(std::string("not valid JSON (") + e.what() + ")");
  }
  if (!root.is_object()) r.fail("not a JSON object");
  if (r.str(root, "format", "") != "copgen-extractors") {
    r.fail("field 'format' must be \"copgen-extractors\"");
  }
  ExtractorsManifest m;
  m.format_version = static_cast<int>(r.integer(root, "format_version", "", 1));
  if (m.format_version != kExtractorsFormatVersion) {
    r.fail("format_version " + std::to_string(m.format_version) + " is not supported (this copgen reads " +
           std::to_string(kExtractorsFormatVersion) + "); re-export with this copgen's scripts/models/export_models.py");
  }
  m.inception = r.spec(root, "inception");
  m.vgg16 = r.spec(root, "vgg16");
  m.sha256 = sha256_hex(text.data(), text.size());
  return m;
}

ExtractorsManifest read_extractors_manifest(const std::string& dir) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) {
    throw ModelError("extractors directory '" + dir + "' does not exist (give --extractors DIR, or export them "
                     "with scripts/models/export_models.py --extractors-out DIR)");
  }
  const std::string path = (fs::path(dir) / kExtractorsManifestFileName).string();
  std::ifstream f(path, std::ios::binary);
  if (!f) {
    throw ModelError("extractors directory '" + dir + "' has no " + kExtractorsManifestFileName +
                     " (export the extractors with scripts/models/export_models.py --inception PTH --vgg PTH "
                     "--extractors-out DIR; see models/README.md)");
  }
  std::ostringstream ss;
  ss << f.rdbuf();
  return parse_extractors_manifest(ss.str(), path);
}

FeatureExtractor::FeatureExtractor(std::shared_ptr<torch::jit::Module> module, ExtractorSpec spec,
                                   torch::Device device)
    : module_(std::move(module)), spec_(std::move(spec)), device_(device) {}

torch::Tensor FeatureExtractor::features(const torch::Tensor& images, int batch) {
  check_images(images, spec_.name);
  c10::InferenceMode guard;
  std::vector<torch::Tensor> parts;
  const int64_t n = images.size(0);
  const int64_t step = std::max(1, batch);
  for (int64_t i = 0; i < n; i += step) {
    const int64_t b = std::min(step, n - i);
    const torch::Tensor x = images.narrow(0, i, b).to(device_);
    torch::Tensor f = module_->forward({x}).toTensor().to(torch::kCPU, torch::kFloat32);
    if (f.dim() != 2 || f.size(0) != b || f.size(1) != spec_.feature_dim) {
      throw ModelError("extractor '" + spec_.name + "' returned " + shape_str(f) + " for " + std::to_string(b) +
                       " image(s), expected [" + std::to_string(b) + ", " + std::to_string(spec_.feature_dim) + "]");
    }
    parts.push_back(f);
  }
  torch::Tensor out = n == 0 ? torch::empty({0, spec_.feature_dim}) : torch::cat(parts, 0);
  if (!torch::isfinite(out).all().item<bool>()) {
    throw RuntimeError("extractor '" + spec_.name + "' produced NaN or infinite features");
  }
  return out;
}

torch::Tensor FeatureExtractor::preprocess(const torch::Tensor& images) {
  check_images(images, spec_.name);
  c10::InferenceMode guard;
  return module_->run_method("preprocess", images.to(device_)).toTensor().to(torch::kCPU);
}

torch::Tensor FeatureExtractor::resize(const torch::Tensor& x, int height, int width) {
  if (!x.defined() || x.dim() != 4 || height < 1 || width < 1) {
    throw InputError(spec_.name + " resize: expected [N, C, H, W] and a positive size");
  }
  c10::InferenceMode guard;
  return module_->run_method("resize", x.to(device_), height, width).toTensor().to(torch::kCPU);
}

Extractors Extractors::load(const std::string& dir, const ExtractorOptions& options) {
  Extractors e;
  e.dir_ = dir;
  e.manifest_ = read_extractors_manifest(dir);
  const torch::Device device = resolve_device(options.device);
  e.inception_ = load_extractor(dir, e.manifest_.inception, "inception", device, options.verify_checksums);
  e.vgg16_ = load_extractor(dir, e.manifest_.vgg16, "vgg16", device, options.verify_checksums);
  spdlog::debug("loaded extractors from '{}' on {} ({} {}-d from {}, {} {}-d from {})", dir, device.str(),
                e.manifest_.inception.name, e.manifest_.inception.feature_dim, e.manifest_.inception.source,
                e.manifest_.vgg16.name, e.manifest_.vgg16.feature_dim, e.manifest_.vgg16.source);
  return e;
}

ImageFeatures extract_features(Extractors& extractors, const torch::Tensor& images, int batch) {
  ImageFeatures f;
  f.inception = extractors.inception().features(images, batch);
  f.vgg16 = extractors.vgg16().features(images, batch);
  return f;
}

ImageFeatures extract_features(Extractors& extractors, const std::vector<std::string>& files,
                               const std::string& what, int batch, const FeatureProgress& progress) {
  std::vector<torch::Tensor> inc, vgg;
  const auto total = static_cast<int64_t>(files.size());
  const size_t step = static_cast<size_t>(std::max(1, batch));
  std::vector<torch::Tensor> chunk;
  int64_t done = 0;
  const auto flush = [&] {
    if (chunk.empty()) return;
    const ImageFeatures f = extract_features(extractors, torch::stack(chunk, 0), batch);
    inc.push_back(f.inception);
    vgg.push_back(f.vgg16);
    done += static_cast<int64_t>(chunk.size());
    chunk.clear();
    if (progress) progress(done, total);
  };
  for (const std::string& file : files) {
    const ImageU8 img = read_image_u8(file, what + " image");
    if (img.bands != 3) {
      throw InputError(what + " image '" + file + "': expected 3 bands of Byte (an 8-bit RGB image), found " +
                       std::to_string(img.bands) + " band(s)");
    }
    torch::Tensor t = image_to_tensor(img);
    if (!chunk.empty() && (chunk.front().size(1) != t.size(1) || chunk.front().size(2) != t.size(2))) flush();
    chunk.push_back(std::move(t));
    if (chunk.size() >= step) flush();
  }
  flush();
  ImageFeatures out;
  out.inception = inc.empty() ? torch::empty({0, extractors.inception().feature_dim()}) : torch::cat(inc, 0);
  out.vgg16 = vgg.empty() ? torch::empty({0, extractors.vgg16().feature_dim()}) : torch::cat(vgg, 0);
  return out;
}

std::vector<std::string> list_image_files(const std::string& dir, const std::string& flag) {
  std::error_code ec;
  if (!fs::is_directory(dir, ec)) throw InputError(flag + " '" + dir + "': not a directory");
  std::vector<std::string> files;
  fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && name[0] == '.') {
      if (it->is_directory(ec)) it.disable_recursion_pending();
      continue;
    }
    if (it->is_regular_file(ec) && !is_side_file(name)) files.push_back(it->path().string());
  }
  if (ec) throw InputError(flag + " '" + dir + "': cannot list it (" + ec.message() + ")");
  if (files.empty()) throw InputError(flag + " '" + dir + "': holds no image file");
  std::sort(files.begin(), files.end());
  return files;
}

void save_features(const ImageFeatures& features, const std::string& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (!fs::is_directory(dir, ec)) throw OutputError("features directory '" + dir + "' cannot be created");
  write_npy((fs::path(dir) / "inception.npy").string(), features.inception);
  write_npy((fs::path(dir) / "vgg16.npy").string(), features.vgg16);
}

ImageFeatures load_features(const std::string& dir) {
  ImageFeatures f;
  const auto load = [&](const std::string& name) {
    const std::string path = (fs::path(dir) / name).string();
    if (!fs::is_regular_file(path)) throw InputError("features file '" + path + "' not found");
    torch::Tensor t = read_npy(path);
    if (t.dim() != 2) throw InputError("features file '" + path + "': expected [N, D], found " + shape_str(t));
    return t;
  };
  f.inception = load("inception.npy");
  f.vgg16 = load("vgg16.npy");
  if (f.inception.size(0) != f.vgg16.size(0)) {
    throw InputError("features in '" + dir + "': inception.npy has " + std::to_string(f.inception.size(0)) +
                     " rows, vgg16.npy " + std::to_string(f.vgg16.size(0)));
  }
  return f;
}

}  // namespace copgen
