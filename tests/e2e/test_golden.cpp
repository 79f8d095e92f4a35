// Golden outputs: the SHA-256 of what copgen writes for four fixed runs (the demo, a batch
// over a small tree, a fused 600 x 500 scene, an eval table), so that a refactoring that
// is meant to change nothing is seen to change nothing. The digests hold per LibTorch
// version (another version rounds differently); a version without recorded digests
// prints them and skips. They were recorded on 2-core x86-64 machines.
//
// fp32 results differ in their last bits between the CPU kernels a library picks for the
// processor it runs on, and 50 solver steps carry such a difference into some pixels:
// OpenBLAS picks SkylakeX kernels on an AVX-512 Xeon and Prescott ones on a CPU it does
// not know, and the demo's digest differs between the two. The runs therefore pin the
// kernels (kPinnedKernels): OpenBLAS's Prescott, ATen's AVX2 dispatch, MKL's AVX2 path
// (the pip LibTorch's BLAS), so that the digests hold on any x86-64 machine with AVX2.
//
// What is hashed: each output's pixels, mask and georeferencing; for the demo and the
// scene also their metadata, but for COPGEN_MODELS_SHA256 (the TorchScript files embed the
// path of the script that exported them, so the models' digest differs between checkouts
// while their weights do not); for the batch not its metadata, which the batch layout may
// extend; for eval, table1.csv and every generated image in its cache.
#include "catch_torch.hpp"

#include <filesystem>
#include <map>
#include <sstream>

#include <gdal_priv.h>

#include "copgen/sha256.hpp"
#include "support.hpp"

using namespace copgen::test;
namespace fs = std::filesystem;

namespace {

// The environment of every golden run: the CPU kernels pinned (see the top of the file).
const std::string kPinnedKernels = "OPENBLAS_CORETYPE=Prescott ATEN_CPU_CAPABILITY=avx2 MKL_CBWR=AVX2 ";

// A copgen command with the test models and the pinned kernels.
CommandResult run_pinned(const std::string& args) {
  return run_command(kPinnedKernels + models_env() + bin() + " " + args);
}

struct GoldenDigests {
  const char* demo;
  const char* batch;
  const char* scene;
  const char* eval;
};

// LibTorch major.minor -> digests. Update only for a change meant to alter outputs, and
// say so in the commit. (The demo and scene digests were first whole-file digests, taken
// on the code before the redesign; the files were byte-identical after it in the same
// checkout, and these digests of the same files leave out the path-dependent models SHA.)
const std::map<std::string, GoldenDigests> kGolden = {
    {"1.13",
     {"f367b5b629fadbdf79cebbf197342f13375488be9a99c01f1b9ebdca66658ea4",
      "11fbf0b58d984c0116441f04d347b2b7950ec7a5b8e4d7763b94f04b48d788cb",
      "a31fa8213539a425ed64697dc4eec968e0b44847404d38e2754cf6283277c126",
      "7818990f6bb24b35b0b0788433d48e9094a7ee61285f0056d165e01137fb8d17"}},
};

std::string torch_version() {
  return std::to_string(TORCH_VERSION_MAJOR) + "." + std::to_string(TORCH_VERSION_MINOR);
}

// The recorded digests of this LibTorch; nullptr (and a skip marker in the log) if none.
const GoldenDigests* recorded() {
  const auto it = kGolden.find(torch_version());
  if (it != kGolden.end()) return &it->second;
  std::printf("COPGEN_GOLDEN_SKIP: no golden digests for LibTorch %s\n", torch_version().c_str());
  return nullptr;
}

void check_digest(const char* name, const std::string& got, const GoldenDigests* golden, const char* want) {
  // printed so that a new LibTorch's digests can be recorded from one run
  std::printf("golden %s %s: %s\n", torch_version().c_str(), name, got.c_str());
  if (golden == nullptr) return;
  INFO(name);
  CHECK(got == want);
}

std::string sha256_of(const std::string& bytes) { return copgen::sha256_hex(bytes.data(), bytes.size()); }

// Pixels of every band and of the mask, size, geotransform and CRS of a raster.
std::string raster_content(const std::string& path) {
  GDALAllRegister();
  GDALDataset* ds = static_cast<GDALDataset*>(GDALOpen(path.c_str(), GA_ReadOnly));
  REQUIRE(ds != nullptr);
  const int w = ds->GetRasterXSize(), h = ds->GetRasterYSize();
  std::ostringstream s;
  s << w << "x" << h << "x" << ds->GetRasterCount() << "\n";
  std::array<double, 6> gt{};
  if (ds->GetGeoTransform(gt.data()) == CE_None) {
    for (double v : gt) s << v << " ";
  }
  s << "\n" << (ds->GetSpatialRef() != nullptr ? ds->GetProjectionRef() : "") << "\n";
  std::vector<uint8_t> pixels(static_cast<size_t>(w) * h);
  for (int b = 1; b <= ds->GetRasterCount(); ++b) {
    GDALRasterBand* band = ds->GetRasterBand(b);
    REQUIRE(band->GetRasterDataType() == GDT_Byte);
    for (GDALRasterBand* layer : {band, band->GetMaskBand()}) {
      REQUIRE(layer->RasterIO(GF_Read, 0, 0, w, h, pixels.data(), w, h, GDT_Byte, 0, 0) == CE_None);
      s.write(reinterpret_cast<const char*>(pixels.data()), static_cast<std::streamsize>(pixels.size()));
    }
  }
  GDALClose(ds);
  return s.str();
}

// raster_content and the default-domain metadata items, COPGEN_MODELS_SHA256 left out.
std::string output_content(const std::string& path) {
  std::string s = raster_content(path);
  GDALDataset* ds = static_cast<GDALDataset*>(GDALOpen(path.c_str(), GA_ReadOnly));
  REQUIRE(ds != nullptr);
  for (char** item = ds->GetMetadata(); item != nullptr && *item != nullptr; ++item) {
    const std::string line = *item;
    if (line.rfind("COPGEN_MODELS_SHA256=", 0) != 0) s += line + "\n";
  }
  GDALClose(ds);
  return s;
}

// One digest over "relative path: digest" lines of the files under root that `keep` takes.
template <class Keep, class Digest>
std::string tree_digest(const std::string& root, Keep keep, Digest digest) {
  std::map<std::string, std::string> lines;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    const std::string rel = fs::relative(e.path(), root).generic_string();
    if (keep(rel)) lines[rel] = digest(e.path().string());
  }
  std::string all;
  for (const auto& [rel, d] : lines) all += rel + ": " + d + "\n";
  INFO(all);
  CHECK(!lines.empty());
  return sha256_of(all);
}

// Exported by tests/CMakeLists.txt beside the tiny test models.
std::string demo_models() { return (fs::path(COPGEN_TEST_MODELS).parent_path() / "demo").string(); }

void require_ok(const CommandResult& r) {
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
}

}  // namespace

TEST_CASE("golden: the demo translate writes the recorded output", "[golden]") {
  const GoldenDigests* golden = recorded();
  TempDir tmp;
  const std::string out = tmp.file("s2l2a_demo.tif");
  // the command of scripts/demo.sh, on the models it exports (tiny, seed 42)
  require_ok(run_command(kPinnedKernels + bin() + " translate --from S2L1C --to S2L2A -i " +
                         quote(std::string(COPGEN_SOURCE_DIR) + "/demo/s2l1c_demo.tif") + " -o " + quote(out) +
                         " --models " + quote(demo_models()) + " --seed 42 --overwrite"));
  check_digest("demo", sha256_of(output_content(out)), golden, golden ? golden->demo : "");
}

TEST_CASE("golden: a batch over a small Major TOM tree gives the recorded pixels", "[golden]") {
  const GoldenDigests* golden = recorded();
  TempDir tmp;
  // three locations with S2L1C and S1RTC thumbnails, one with S2L1C only
  for (int i = 0; i < 4; ++i) {
    const std::string cell = std::to_string(600 + i % 2) + "D_" + std::to_string(70 + i) + "L";
    for (const std::string mod : {"S2L1C", "S1RTC"}) {
      if (mod == "S1RTC" && i == 3) continue;
      const std::string dir = tmp.file("tree/Core-" + mod + "/" + cell.substr(0, 4) + "/" + cell + "/P" + mod + "_" + cell);
      fs::create_directories(dir);
      SyntheticRaster spec;
      spec.format = "PNG";
      spec.georeferenced = false;
      spec.seed = 300 + 10 * i + (mod == "S1RTC" ? 1 : 0);
      write_synthetic(dir + "/thumbnail.png", spec);
    }
  }
  require_ok(run_pinned("translate --input-dir " + quote(tmp.file("tree")) + " --output-dir " + quote(tmp.file("out")) +
                        " --from S2L1C,S1RTC --to S2L2A,DEM --steps 3 --seed 11 --batch-size 2"));
  const std::string digest =
      tree_digest(tmp.file("out"), [](const std::string& rel) { return rel.size() > 4 && rel.substr(rel.size() - 4) == ".tif"; },
                  [](const std::string& path) { return sha256_of(raster_content(path)); });
  check_digest("batch", digest, golden, golden ? golden->batch : "");
}

TEST_CASE("golden: a fused 600 x 500 scene writes the recorded outputs", "[golden]") {
  const GoldenDigests* golden = recorded();
  TempDir tmp;
  SyntheticRaster spec;
  spec.width = 600;
  spec.height = 500;
  spec.seed = 21;
  write_synthetic(tmp.file("scene.tif"), spec);
  require_ok(run_pinned("translate --from S2L1C --to S2L2A,DEM -i " + quote(tmp.file("scene.tif")) + " -o " +
                        quote(tmp.file("out/")) + " --tiling fused --steps 2 --seed 3 --batch-size 8"));
  const std::string digest = tree_digest(tmp.file("out"), [](const std::string&) { return true; },
                                         [](const std::string& path) { return sha256_of(output_content(path)); });
  check_digest("scene", digest, golden, golden ? golden->scene : "");
}

TEST_CASE("golden: an eval table on tiny models holds the recorded values", "[golden]") {
  const GoldenDigests* golden = recorded();
  TempDir tmp;
  // six aligned tuples, one folder per modality, every modality a thumbnail
  for (int i = 0; i < 6; ++i) {
    for (const std::string mod : {"DEM", "S1RTC", "S2L1C", "S2L2A"}) {
      fs::create_directories(tmp.file("set/" + mod));
      SyntheticRaster spec;
      spec.format = "PNG";
      spec.georeferenced = false;
      spec.seed = 500 + 10 * i + static_cast<int>(mod.size()) + (mod.back() == 'A' ? 5 : 0);
      write_synthetic(tmp.file("set/" + mod + "/t" + std::to_string(i) + ".png"), spec);
    }
  }
  const std::string out = tmp.file("eval");
  require_ok(run_pinned("eval --test-set " + quote(tmp.file("set")) + " -o " + quote(out) + " --extractors " +
                        quote(COPGEN_TEST_EXTRACTORS) +
                        " --device cpu --steps 2 --seed 5 --batch-size 4 --conditions DEM+S1RTC,S1RTC+S2L1C"));
  const std::string digest = tree_digest(
      out,
      [](const std::string& rel) {
        return rel == "table1.csv" || (rel.rfind("cache/generated/", 0) == 0 && rel.substr(rel.size() - 4) == ".png");
      },
      [](const std::string& path) { return copgen::sha256_file(path); });
  check_digest("eval", digest, golden, golden ? golden->eval : "");
}
