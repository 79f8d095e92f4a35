// The metric feature extractors: loading the tiny ones, parity with the export script's
// eager Python modules, the TF1-compatible resize and the normalisation against
// hand-computed pixels, and feature sets of folders.
#include "catch_torch.hpp"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "copgen/error.hpp"
#include "copgen/features.hpp"
#include "copgen/npy.hpp"
#include "support.hpp"

using namespace copgen;
namespace fs = std::filesystem;

namespace {

std::string parity(const std::string& name) { return std::string(COPGEN_TEST_EXTRACTOR_PARITY) + "/" + name; }

Extractors tiny() {
  ExtractorOptions o;
  o.device = "cpu";
  return Extractors::load(COPGEN_TEST_EXTRACTORS, o);
}

std::string load_error(const std::string& dir) {
  try {
    ExtractorOptions o;
    o.device = "cpu";
    Extractors::load(dir, o);
  } catch (const ModelError& e) {
    return e.what();
  }
  return "";
}

torch::Tensor u8(const std::vector<std::vector<float>>& rows) {
  torch::Tensor t = torch::empty({1, 1, static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())});
  for (size_t y = 0; y < rows.size(); ++y)
    for (size_t x = 0; x < rows[0].size(); ++x) t[0][0][static_cast<int64_t>(y)][static_cast<int64_t>(x)] = rows[y][x];
  return t.to(torch::kUInt8);
}

torch::Tensor grid(const std::vector<std::vector<float>>& rows) {
  torch::Tensor t = torch::empty({1, 1, static_cast<int64_t>(rows.size()), static_cast<int64_t>(rows[0].size())});
  for (size_t y = 0; y < rows.size(); ++y)
    for (size_t x = 0; x < rows[0].size(); ++x) t[0][0][static_cast<int64_t>(y)][static_cast<int64_t>(x)] = rows[y][x];
  return t;
}

}  // namespace

TEST_CASE("features: the tiny extractors load with their manifest", "[features]") {
  Extractors ex = tiny();
  CHECK(ex.manifest().format_version == 1);
  CHECK(ex.manifest().sha256.size() == 64);
  CHECK(ex.inception().spec().name == "inception-v3-fid");
  CHECK(ex.inception().spec().feature == "pool3");
  CHECK(ex.inception().feature_dim() == 128);  // 2048 / 16
  CHECK(ex.inception().spec().input_size == 299);
  CHECK(ex.vgg16().spec().name == "vgg16-fc2-relu");
  CHECK(ex.vgg16().spec().feature == "fc2_relu");
  CHECK(ex.vgg16().feature_dim() == 256);  // 4096 / 16
  CHECK(ex.vgg16().spec().input_size == 224);
  CHECK(ex.vgg16().spec().width_divisor == 16);
  CHECK(ex.vgg16().spec().source == "random (seed 7)");
}

TEST_CASE("features: C++ features equal the export script's Python features", "[features][parity]") {
  Extractors ex = tiny();
  for (const std::string tag : {"a", "b"}) {
    INFO("fixture " << tag);
    const torch::Tensor images = read_npy(parity("extractor_images_" + tag + ".npy")).to(torch::kUInt8);
    const torch::Tensor want_i = read_npy(parity("inception_features_" + tag + ".npy"));
    const torch::Tensor want_v = read_npy(parity("vgg16_features_" + tag + ".npy"));
    const torch::Tensor got_i = ex.inception().features(images, 2);  // chunked on purpose
    const torch::Tensor got_v = ex.vgg16().features(images);
    REQUIRE(got_i.sizes() == want_i.sizes());
    REQUIRE(got_v.sizes() == want_v.sizes());
    CHECK(want_i.abs().mean().item<double>() > 0.1);  // not degenerate
    CHECK(want_v.abs().mean().item<double>() > 0.1);
    CHECK((got_i - want_i).abs().max().item<double>() < 1e-4 * (1 + want_i.abs().max().item<double>()));
    CHECK((got_v - want_v).abs().max().item<double>() < 1e-4 * (1 + want_v.abs().max().item<double>()));
    // different images, different features
    CHECK((got_i[0] - got_i[1]).abs().max().item<double>() > 1e-3);
  }
}

TEST_CASE("features: the TF1-compatible resize against hand-computed pixels", "[features][resize]") {
  Extractors ex = tiny();
  for (FeatureExtractor* fe : {&ex.inception(), &ex.vgg16()}) {
    // 2 x 2 -> 4 x 4: scale 0.5, sources 0, 0.5, 1, 1.5; the last clamps to the edge pixel
    const torch::Tensor up = fe->resize(u8({{0, 100}, {200, 50}}), 4, 4);
    CHECK(torch::equal(up, grid({{0, 50, 100, 100}, {100, 87.5f, 75, 75}, {200, 125, 50, 50}, {200, 125, 50, 50}})));
    // 3 x 3 -> 2 x 2: scale 1.5, sources 0 and 1.5
    const torch::Tensor down = fe->resize(u8({{0, 10, 20}, {30, 40, 50}, {60, 70, 80}}), 2, 2);
    CHECK(torch::equal(down, grid({{0, 15}, {45, 60}})));
    // 1 x 3 -> 1 x 4: scale 0.75, sources 0, 0.75, 1.5, 2.25 (weights 0, 0.75, 0.5, 0.25);
    // (PyTorch's half-pixel bilinear would give 0, 62.5, 137.5, 200)
    const torch::Tensor row = fe->resize(u8({{0, 100, 200}}), 1, 4);
    CHECK(torch::equal(row, grid({{0, 75, 150, 200}})));
    // same size: the identity
    const torch::Tensor same = fe->resize(u8({{1, 2}, {3, 4}}), 2, 2);
    CHECK(torch::equal(same, grid({{1, 2}, {3, 4}})));
  }
}

TEST_CASE("features: preprocessing resizes to the network size and normalises", "[features][resize]") {
  Extractors ex = tiny();
  // Inception: 299 x 299, (x - 128) / 128
  torch::Tensor img = torch::full({1, 3, 2, 2}, 64, torch::kUInt8);
  img[0][1].fill_(255);
  const torch::Tensor pi = ex.inception().preprocess(img);
  REQUIRE(pi.sizes() == torch::IntArrayRef({1, 3, 299, 299}));
  CHECK(pi[0][0].min().item<float>() == -0.5f);
  CHECK(pi[0][0].max().item<float>() == -0.5f);
  CHECK(pi[0][1][150][7].item<float>() == Approx(127.0 / 128.0));
  // VGG16: 224 x 224, (x / 255 - mean) / std with ImageNet's mean and std
  const torch::Tensor pv = ex.vgg16().preprocess(img);
  REQUIRE(pv.sizes() == torch::IntArrayRef({1, 3, 224, 224}));
  CHECK(pv[0][0][10][200].item<float>() == Approx((64.0 / 255 - 0.485) / 0.229).epsilon(1e-6));
  CHECK(pv[0][1][0][0].item<float>() == Approx((1.0 - 0.456) / 0.224).epsilon(1e-6));
  CHECK(pv[0][2][223][223].item<float>() == Approx((64.0 / 255 - 0.406) / 0.225).epsilon(1e-6));
  // a 2 x 2 image upsampled to 299: output row 150 samples source 150 * 2 / 299 = 1.003,
  // i.e. between rows 1 and 1 -> exactly the bottom row
  torch::Tensor ramp = torch::zeros({1, 3, 2, 2}, torch::kUInt8);
  ramp[0][0][1][0] = 128;
  ramp[0][0][1][1] = 192;
  const torch::Tensor pr = ex.inception().preprocess(ramp);
  CHECK(pr[0][0][150][0].item<float>() == 0.0f);
  CHECK(pr[0][0][150][298].item<float>() == 0.5f);
  CHECK(pr[0][0][0][0].item<float>() == -1.0f);
}

TEST_CASE("features: extractors reject images that are not uint8 RGB", "[features]") {
  Extractors ex = tiny();
  CHECK_THROWS_AS(ex.inception().features(torch::zeros({1, 3, 8, 8})), InputError);
  CHECK_THROWS_AS(ex.vgg16().features(torch::zeros({1, 1, 8, 8}, torch::kUInt8)), InputError);
  CHECK_THROWS_AS(ex.vgg16().features(torch::zeros({3, 8, 8}, torch::kUInt8)), InputError);
}

TEST_CASE("features: a damaged extractors directory is a model error naming the file", "[features][errors]") {
  test::TempDir dir;
  CHECK(load_error(dir.file("none")).find("does not exist") != std::string::npos);
  CHECK(load_error(dir.path).find("extractors.json") != std::string::npos);

  const std::string copy = dir.file("ex");
  fs::copy(COPGEN_TEST_EXTRACTORS, copy, fs::copy_options::recursive);
  {
    std::ofstream f(copy + "/vgg16.pt", std::ios::app | std::ios::binary);
    f << "x";
  }
  const std::string e = load_error(copy);
  CHECK(e.find("vgg16.pt") != std::string::npos);
  CHECK(e.find("checksum") != std::string::npos);

  const std::string copy2 = dir.file("ex2");
  fs::copy(COPGEN_TEST_EXTRACTORS, copy2, fs::copy_options::recursive);
  auto j = nlohmann::json::parse(test::read_file_bytes(copy2 + "/extractors.json"));
  j["inception"]["feature_dim"] = 2048;
  std::ofstream(copy2 + "/extractors.json") << j.dump(2);
  const std::string e2 = load_error(copy2);
  CHECK(e2.find("inception.pt") != std::string::npos);
  CHECK(e2.find("feature_dim is 128") != std::string::npos);

  j["format_version"] = 2;
  std::ofstream(copy2 + "/extractors.json") << j.dump(2);
  CHECK(load_error(copy2).find("format_version 2") != std::string::npos);
  j.erase("vgg16");
  j["format_version"] = 1;
  std::ofstream(copy2 + "/extractors.json") << j.dump(2);
  CHECK(load_error(copy2).find("missing field 'vgg16'") != std::string::npos);
}

TEST_CASE("features: folders of images - listing - chunking by size - saving", "[features]") {
  test::TempDir dir;
  fs::create_directories(dir.file("set/sub"));
  test::SyntheticRaster spec;
  spec.width = spec.height = 64;
  spec.format = "PNG";
  spec.georeferenced = false;
  for (int i = 0; i < 3; ++i) {
    spec.seed = i + 1;
    test::write_synthetic(dir.file("set/img" + std::to_string(i) + ".png"), spec);
  }
  spec.width = 80;  // another size: its own chunk
  spec.format = "GTiff";
  test::write_synthetic(dir.file("set/sub/wide.tif"), spec);
  std::ofstream(dir.file("set/notes.txt")) << "not an image";
  std::ofstream(dir.file("set/.hidden.png")) << "hidden";
  std::ofstream(dir.file("set/img0.png.aux.xml")) << "<PAMDataset/>";

  const std::vector<std::string> files = list_image_files(dir.file("set"), "--real");
  REQUIRE(files.size() == 4);
  CHECK(fs::path(files[0]).filename() == "img0.png");
  CHECK(fs::path(files[3]).filename() == "wide.tif");

  Extractors ex = tiny();
  std::vector<std::pair<int64_t, int64_t>> calls;
  const ImageFeatures f = extract_features(ex, files, "--real", 2, [&](int64_t d, int64_t t) { calls.emplace_back(d, t); });
  CHECK(f.count() == 4);
  CHECK(f.inception.size(1) == 128);
  CHECK(f.vgg16.size(1) == 256);
  CHECK((calls == std::vector<std::pair<int64_t, int64_t>>{{2, 4}, {3, 4}, {4, 4}}));
  // one at a time gives the same features
  const ImageFeatures one = extract_features(ex, std::vector<std::string>{files[1]}, "--real", 1);
  CHECK((one.inception[0] - f.inception[1]).abs().max().item<double>() < 1e-5);

  save_features(f, dir.file("feat"));
  const ImageFeatures back = load_features(dir.file("feat"));
  CHECK(torch::equal(back.inception, f.inception));
  CHECK(torch::equal(back.vgg16, f.vgg16));

  CHECK_THROWS_AS(list_image_files(dir.file("nope"), "--fake"), InputError);
  fs::create_directories(dir.file("empty"));
  CHECK_THROWS_AS(list_image_files(dir.file("empty"), "--fake"), InputError);
  CHECK_THROWS_AS(load_features(dir.file("empty")), InputError);
  // a one-band image is named in the error
  test::SyntheticRaster grey;
  grey.bands = 1;
  test::write_synthetic(dir.file("grey.tif"), grey);
  try {
    extract_features(ex, std::vector<std::string>{dir.file("grey.tif")}, "--fake", 4);
    FAIL("expected an InputError");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find("grey.tif") != std::string::npos);
  }
}
