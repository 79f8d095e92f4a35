// The metric feature extractors: the FID Inception-v3 (pool3) and VGG16 (fc2_relu)
// TorchScript modules that scripts/models/export_models.py writes beside `extractors.json`
// (models/README.md, "Metric feature extractors"), and feature sets of image folders.
//
//   copgen::Extractors ex = copgen::Extractors::load(dir);   // ExtractorOptions: device "auto"
//   torch::Tensor f = ex.inception().features(images);   // uint8 [N, 3, H, W] -> [N, 2048]
//   copgen::ImageFeatures set =
//       copgen::extract_features(ex, copgen::list_image_files(folder, "--real"), "--real");
//   copgen::save_features(set, "cache/real");            // inception.npy, vgg16.npy
//
// The modules do the TF1-compatible resize and the normalisation themselves, so this
// side only feeds uint8 pixels in batches and checks what comes back. Loading checks the
// manifest, each file's SHA-256 and that each module's attributes agree with it; every
// failure is a ModelError naming the file.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/script.h>
#include <torch/torch.h>

namespace copgen {

inline constexpr const char* kExtractorsManifestFileName = "extractors.json";
inline constexpr int kExtractorsFormatVersion = 1;

// One extractor's entry of extractors.json.
struct ExtractorSpec {
  std::string file;         // relative to the extractors directory
  std::string sha256;       // lower-case hex
  std::string name;         // "inception-v3-fid", "vgg16-fc2-relu"
  std::string feature;      // "pool3", "fc2_relu"
  int feature_dim = 0;      // 2048, 4096 (smaller for --tiny-extractors)
  int input_size = 0;       // 299, 224: the side the module resizes to
  int width_divisor = 1;    // 1 for the real networks
  std::int64_t parameters = 0;
  std::string source;       // checkpoint file name, or "random (seed N)"
};

struct ExtractorsManifest {
  int format_version = 0;
  ExtractorSpec inception;
  ExtractorSpec vgg16;
  std::string sha256;  // of extractors.json itself: "the extractors hash" in provenance
};

// Parses and validates extractors.json text; `origin` names the file in messages.
// Throws ModelError on malformed JSON, missing or mistyped fields, or another format.
ExtractorsManifest parse_extractors_manifest(const std::string& text, const std::string& origin);
// Reads DIR/extractors.json; throws ModelError when it is missing.
ExtractorsManifest read_extractors_manifest(const std::string& dir);

// One TorchScript extractor: forward(uint8 [N, 3, H, W]) -> float32 [N, D].
class FeatureExtractor {
 public:
  FeatureExtractor(std::shared_ptr<torch::jit::Module> module, ExtractorSpec spec, torch::Device device);

  const ExtractorSpec& spec() const { return spec_; }
  int feature_dim() const { return spec_.feature_dim; }
  torch::Device device() const { return device_; }

  // Features of uint8 images [N, 3, H, W] (any size; every image of one call the same
  // size), computed in chunks of at most `batch`: float32 [N, D] on the CPU. Throws
  // InputError for a wrong shape or dtype, RuntimeError when an output is not finite.
  torch::Tensor features(const torch::Tensor& images, int batch = 32);
  // The module's own preprocessing: uint8 [N, 3, H, W] -> float32 [N, 3, S, S] (CPU).
  torch::Tensor preprocess(const torch::Tensor& images);
  // The module's TF1-compatible bilinear resize alone: [N, C, H, W] -> float32 [N, C, h, w].
  torch::Tensor resize(const torch::Tensor& x, int height, int width);

 private:
  std::shared_ptr<torch::jit::Module> module_;
  ExtractorSpec spec_;
  torch::Device device_;
};

struct ExtractorOptions {
  std::string device = "auto";  // as --device: "auto", "cpu", "cuda", "cuda:N"
  bool verify_checksums = true;
};

// The two extractors of one directory.
class Extractors {
 public:
  static Extractors load(const std::string& dir, const ExtractorOptions& options = {});

  const ExtractorsManifest& manifest() const { return manifest_; }
  const std::string& directory() const { return dir_; }
  FeatureExtractor& inception() { return *inception_; }
  FeatureExtractor& vgg16() { return *vgg16_; }

 private:
  ExtractorsManifest manifest_;
  std::string dir_;
  std::shared_ptr<FeatureExtractor> inception_;
  std::shared_ptr<FeatureExtractor> vgg16_;
};

// The features of one image set, one row per image in the same order.
struct ImageFeatures {
  torch::Tensor inception;  // float32 [N, Di]
  torch::Tensor vgg16;      // float32 [N, Dv]
  std::int64_t count() const { return inception.defined() ? inception.size(0) : 0; }
};

// Called after each chunk with (images done, images in total).
using FeatureProgress = std::function<void(std::int64_t, std::int64_t)>;

// Both features of uint8 images [N, 3, H, W].
ImageFeatures extract_features(Extractors& extractors, const torch::Tensor& images, int batch = 32);

// Both features of image files (any GDAL format with 3 Byte bands, any size), read with
// raster_io and fed in chunks of at most `batch` images of equal size. `what` names the
// set in messages ("--real"). Throws InputError naming the file that cannot be used.
ImageFeatures extract_features(Extractors& extractors, const std::vector<std::string>& files,
                               const std::string& what, int batch = 32, const FeatureProgress& progress = {});

// The image files of a folder and its sub-folders, sorted: every regular file except
// hidden ones, .npy arrays and GDAL's or copgen's side files (.aux.xml, .ovr, .msk,
// .json, .txt, .csv, .md). Throws InputError naming `flag` when `dir` is not a
// directory or holds no file.
std::vector<std::string> list_image_files(const std::string& dir, const std::string& flag);

// DIR/inception.npy and DIR/vgg16.npy (float32, via npy.hpp; DIR is created).
void save_features(const ImageFeatures& features, const std::string& dir);
// Reads them back; throws InputError naming the file when one is missing, not 2-D, or
// the two row counts differ.
ImageFeatures load_features(const std::string& dir);

}  // namespace copgen
