// End-to-end: what an adversarial user found (docs/errors.md, "Outputs never replace what
// is not an output" and the rows after it). Outputs never replace an input, a device or a
// FIFO; every long command stops at the first signal; a flag that cannot apply is
// refused and one that applies is honoured on every path; nodata follows one rule; bad
// values are refused before any work; output locations are checked first; leftovers of
// killed runs are removed; messages share one style.
#include "catch_torch.hpp"

#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <optional>

#include <gdal_priv.h>

#include "copgen/npy.hpp"
#include "support.hpp"

using namespace copgen::test;
namespace fs = std::filesystem;

namespace {

const std::string kQuick = " --steps 2 --seed 3 ";
const std::string kExtractors = std::string(" --extractors ") + quote(COPGEN_TEST_EXTRACTORS) + " ";

std::string tile(const TempDir& dir, const std::string& name, SyntheticRaster spec = {}) {
  const std::string p = dir.file(name);
  write_synthetic(p, spec);
  return p;
}

// A GDAL dataset opened read-only, closed on scope exit.
struct Opened {
  GDALDataset* ds = nullptr;
  explicit Opened(const std::string& path) {
    GDALAllRegister();
    ds = static_cast<GDALDataset*>(GDALOpen(path.c_str(), GA_ReadOnly));
    REQUIRE(ds != nullptr);
  }
  ~Opened() { GDALClose(ds); }
  std::string meta(const std::string& key) const {
    const char* v = ds->GetMetadataItem(key.c_str());
    return v != nullptr ? v : "";
  }
  bool has_nodata(int band) const {
    int has = 0;
    ds->GetRasterBand(band)->GetNoDataValue(&has);
    return has != 0;
  }
};

// Starts `command` (a full shell command) in the background, waits until its log holds
// `ready` (60 s at most), sends SIGINT, and returns the exit status and log. The command
// would run for far longer than the test without the signal.
CommandResult interrupt(const std::string& command, const std::string& ready, const TempDir& scratch) {
  const std::string log = scratch.file("log.txt");
  const std::string script = command + " > " + quote(log) + " 2>&1 & pid=$!; i=0; while ! grep -q " + quote(ready) +
                             " " + quote(log) + " && [ $i -lt 600 ]; do sleep 0.1; i=$((i+1)); done; sleep 1; " +
                             "t0=$(date +%s.%N); kill -INT $pid; wait $pid; code=$?; t1=$(date +%s.%N); " +
                             "echo \"exit=$code\"; awk \"BEGIN { print \\\"stopped after \\\" $t1 - $t0 \\\" s\\\" }\"; " +
                             "cat " + quote(log) + "; rm -f " + quote(log);
  return run_command(script);
}

// The Sentinel-2 bands of a scene as one UInt16 GeoTIFF (B04, B03, B02), sparse: tiles
// never written read as 0, so a huge scene costs nothing on disk.
void write_sparse_s2(const std::string& path, int size) {
  GDALAllRegister();
  GDALDriver* gtiff = GetGDALDriverManager()->GetDriverByName("GTiff");
  const char* options[] = {"TILED=YES", "SPARSE_OK=TRUE", nullptr};
  GDALDataset* ds = gtiff->Create(path.c_str(), size, size, 3, GDT_UInt16, const_cast<char**>(options));
  REQUIRE(ds != nullptr);
  double gt[6] = {500000.0, 10.0, 0.0, 5000000.0, 0.0, -10.0};
  ds->SetGeoTransform(gt);
  OGRSpatialReference srs;
  srs.SetFromUserInput("EPSG:32633");
  ds->SetSpatialRef(&srs);
  for (int b = 1; b <= 3; ++b) ds->GetRasterBand(b)->SetDescription(b == 1 ? "B04" : b == 2 ? "B03" : "B02");
  GDALClose(ds);
}

}  // namespace

// ---- 1. outputs never replace what is not an output ------------------------------------

TEST_CASE("safety: --overwrite never replaces a FIFO - a device node - or an input", "[safety][outputs]") {
  TempDir tmp;
  const std::string in = tile(tmp, "in.tif");
  const std::string before = read_file_bytes(in);
  const std::string translate = "translate --from S2L1C --to S2L2A -i " + quote(in) + kQuick + " --overwrite -o ";

  SECTION("a FIFO") {
    REQUIRE(::mkfifo(tmp.file("fifo.tif").c_str(), 0644) == 0);
    expect_copgen_failure(translate + quote(tmp.file("fifo.tif")), 5, {"fifo.tif", "a FIFO", "not a regular file"},
                          tmp.path);
    CHECK(fs::is_fifo(tmp.file("fifo.tif")));
  }
  SECTION("a character device node") {
    if (::mknod(tmp.file("null.tif").c_str(), S_IFCHR | 0666, makedev(1, 3)) != 0) {
      WARN("mknod is not permitted here; the device case is not tested");
    } else {
      expect_copgen_failure(translate + quote(tmp.file("null.tif")), 5, {"null.tif", "a character device"}, tmp.path);
      CHECK(fs::is_character_file(tmp.file("null.tif")));
    }
  }
  SECTION("the input itself: by name - through a symlink - through ..") {
    fs::create_directory(tmp.file("sub"));
    fs::create_symlink(in, tmp.file("link.tif"));
    for (const std::string& out : {in, tmp.file("link.tif"), tmp.file("sub/../in.tif")}) {
      INFO(out);
      expect_copgen_failure(translate + quote(out), 5, {"same file as the input", "in.tif"}, tmp.path);
      CHECK(read_file_bytes(in) == before);
    }
  }
  SECTION("render onto its input") {
    expect_copgen_failure("render --modality S2L1C -i " + quote(in) + " -o " + quote(in) + " --overwrite", 5,
                          {"same file as the input"}, tmp.path);
    CHECK(read_file_bytes(in) == before);
  }
  SECTION("batch: --report onto an input or a FIFO") {
    fs::create_directories(tmp.file("tree/S2L1C"));
    fs::rename(in, tmp.file("tree/S2L1C/a.tif"));
    const std::string batch = "translate --input-dir " + quote(tmp.file("tree")) + " --from S2L1C --to S2L2A" +
                              kQuick + " --output-dir " + quote(tmp.file("out")) + " --report ";
    expect_copgen_failure(batch + quote(tmp.file("tree/S2L1C/a.tif")), 5, {"--report", "same file as the input"},
                          tmp.path);
    CHECK(read_file_bytes(tmp.file("tree/S2L1C/a.tif")) == before);
    REQUIRE(::mkfifo(tmp.file("r.json").c_str(), 0644) == 0);
    expect_copgen_failure(batch + quote(tmp.file("r.json")), 5, {"--report", "a FIFO"}, tmp.path);
  }
}

TEST_CASE("safety: a batch --output-dir inside the input tree is never read back as input", "[safety][batch]") {
  TempDir tmp;
  fs::create_directories(tmp.file("tree/S2L1C"));
  tile(tmp, "tree/S2L1C/a.tif");
  tile(tmp, "tree/S2L1C/b.tif", SyntheticRaster{256, 256, 3, "Byte", "GTiff", "EPSG:32633", true,
                                                {500000.0, 10.0, 0.0, 5000000.0, 0.0, -10.0}, 2});
  const std::string out = tmp.file("tree/S2L1C/out");
  const std::string cmd = "translate --input-dir " + quote(tmp.file("tree")) + " --from S2L1C --to S2L2A" + kQuick +
                          " --output-dir " + quote(out);
  for (int run = 0; run < 2; ++run) {
    const auto r = run_copgen(cmd);
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.output, Catch::Contains("2 tuple(s) found"));
  }
  CHECK(fs::exists(out + "/S2L2A/a.tif"));
  CHECK(fs::exists(out + "/S2L2A/b.tif"));
  CHECK_FALSE(fs::exists(out + "/S2L2A/out"));  // no out/S2L2A/out/S2L2A/... nesting
}

// ---- 2. every long command stops at the first signal --------------------------------------

TEST_CASE("safety: SIGINT stops render - scenes - metrics - eval and bench with exit 130 and no files",
          "[safety][signals]") {
  TempDir tmp;
  SECTION("render of a large physical scene") {
    write_sparse_s2(tmp.file("scene.tif"), 12000);
    const auto r = interrupt(models_env() + bin() + " render --modality S2L1C -i " + quote(tmp.file("scene.tif")) +
                                 " -o " + quote(tmp.file("r.tif")),
                             "read as physical bands", tmp);
    INFO(r.output);
    CHECK_THAT(r.output, Catch::Contains("exit=130"));
    CHECK(file_names_under(tmp.path) == std::vector<std::string>{"scene.tif"});
  }
  SECTION("translate of a scene (rendering, encoding, sampling)") {
    write_sparse_s2(tmp.file("scene.tif"), 2000);
    fs::create_directory(tmp.file("out"));
    const auto r = interrupt(models_env() + bin() + " translate --from S2L1C --to S2L2A -i " +
                                 quote(tmp.file("scene.tif")) + " -o " + quote(tmp.file("out/o.tif")) +
                                 " --steps 1000 --seed 1",
                             "tiling, overlap", tmp);
    INFO(r.output);
    CHECK_THAT(r.output, Catch::Contains("exit=130"));
    CHECK_THAT(r.output, Catch::Contains("interrupted"));
    CHECK(file_names_under(tmp.path) == (std::vector<std::string>{"out", "scene.tif"}));
  }
  SECTION("metrics feature extraction") {
    SyntheticRaster spec;
    spec.format = "PNG";
    spec.georeferenced = false;
    spec.width = spec.height = 96;
    fs::create_directories(tmp.file("real"));
    fs::create_directories(tmp.file("fake"));
    write_synthetic(tmp.file("one.png"), spec);
    for (int i = 0; i < 4000; ++i) {  // one image under many names: a long extraction
      fs::create_symlink(tmp.file("one.png"), tmp.file("real/" + std::to_string(i) + ".png"));
      fs::create_symlink(tmp.file("one.png"), tmp.file("fake/" + std::to_string(i) + ".png"));
    }
    const auto r = interrupt(models_env() + bin() + " metrics --real " + quote(tmp.file("real")) + " --fake " +
                                 quote(tmp.file("fake")) + kExtractors + " --device cpu -v --json " +
                                 quote(tmp.file("m.json")),
                             "loaded extractors", tmp);
    INFO(r.output);
    CHECK_THAT(r.output, Catch::Contains("exit=130"));
    CHECK_FALSE(fs::exists(tmp.file("m.json")));
  }
  SECTION("eval") {
    for (const std::string mod : {"DEM", "S1RTC", "S2L1C", "S2L2A"}) {
      fs::create_directories(tmp.file("set/" + mod));
      for (int i = 0; i < 4; ++i) {
        SyntheticRaster spec;
        spec.seed = 10 * i + static_cast<int>(mod.size());
        write_synthetic(tmp.file("set/" + mod + "/t" + std::to_string(i) + ".tif"), spec);
      }
    }
    const auto r = interrupt(models_env() + bin() + " eval --test-set " + quote(tmp.file("set")) + " -o " +
                                 quote(tmp.file("results")) + kExtractors + " --device cpu --steps 1000 --seed 5",
                             "eval:", tmp);
    INFO(r.output);
    CHECK_THAT(r.output, Catch::Contains("exit=130"));
    CHECK_FALSE(fs::exists(tmp.file("results/table1.md")));
  }
  SECTION("bench") {
    const auto r = interrupt(models_env() + bin() + " bench --devices cpu --precisions fp32 --batch-sizes 1 " +
                                 "--repeat 1000000 --no-end-to-end --json " + quote(tmp.file("b.json")),
                             "measuring cpu", tmp);
    INFO(r.output);
    CHECK_THAT(r.output, Catch::Contains("exit=130"));
    CHECK(file_names_under(tmp.path).empty());
  }
}

// ---- 3. flags that apply are honoured on every path; those that cannot are refused --------

TEST_CASE("safety: --output-kind - --input-kind and --summary apply to 256 x 256 tiles too", "[safety][flags]") {
  TempDir tmp;
  const std::string in = tile(tmp, "in.tif");
  const std::string base = "translate --from S2L1C --to S2L2A -i " + quote(in) + kQuick;

  SECTION("--output-kind physical writes uint16 digital numbers") {
    const auto r = run_copgen(base + " --output-kind physical -o " + quote(tmp.file("o.tif")));
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    Opened o(tmp.file("o.tif"));
    CHECK(o.ds->GetRasterCount() == 4);
    CHECK(o.ds->GetRasterBand(1)->GetRasterDataType() == GDT_UInt16);
    CHECK(o.meta("COPGEN_OUTPUT_KIND") == "physical (digital numbers)");
  }
  SECTION("--input-kind physical reads the tile's bands as digital numbers") {
    const auto r = run_copgen(base + " --input-kind physical -o " + quote(tmp.file("o.tif")));
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK(Opened(tmp.file("o.tif")).meta("COPGEN_INPUT_KINDS") == "S2L1C:physical");
  }
  SECTION("--summary mean with --samples 2 writes the mean") {
    const auto r = run_copgen(base + " --samples 2 --summary mean -o " + quote(tmp.file("o.tif")));
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK(file_names_under(tmp.path) == (std::vector<std::string>{"in.tif", "o_mean.tif", "o_s0.tif", "o_s1.tif"}));
    CHECK(Opened(tmp.file("o_mean.tif")).meta("COPGEN_SUMMARY") == "mean over 2 samples");
  }
  SECTION("batch mode: --output-kind physical") {
    fs::create_directories(tmp.file("tree/S2L1C"));
    fs::copy(in, tmp.file("tree/S2L1C/a.tif"));
    const auto r = run_copgen("translate --input-dir " + quote(tmp.file("tree")) + " --from S2L1C --to S2L2A" +
                              kQuick + " --output-kind physical --output-dir " + quote(tmp.file("out")));
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK(Opened(tmp.file("out/S2L2A/a.tif")).ds->GetRasterBand(1)->GetRasterDataType() == GDT_UInt16);
  }
  SECTION("flags that cannot apply are usage errors") {
    expect_copgen_failure("translate --from S2L1C --to DEM -i " + quote(in) + kQuick + " --output-kind physical -o " +
                              quote(tmp.file("o.tif")),
                          2, {"--output-kind physical", "DEM"}, tmp.path);
    expect_copgen_failure(base + " --summary mean -o " + quote(tmp.file("o.tif")), 2, {"--summary", "--samples"},
                          tmp.path);
    expect_copgen_failure("translate --input-dir " + quote(tmp.path) + " --from S2L1C --to S2L2A --summary std" +
                              kQuick + " --output-dir " + quote(tmp.file("out")),
                          2, {"--summary"}, tmp.path);
  }
}

// ---- 4. nodata: one rule for tiles and scenes --------------------------------------------

TEST_CASE("safety: nodata is masked the same way in tiles and scenes and never declared", "[safety][nodata]") {
  TempDir tmp;
  // a thumbnail with NoData=0 whose left 64 columns are nodata
  const auto write_holed = [&](const std::string& path, int width) {
    write_synthetic(path, SyntheticRaster{width, 256, 3, "Byte", "GTiff", "EPSG:32633", true,
                                          {500000.0, 10.0, 0.0, 5000000.0, 0.0, -10.0}, 4});
    GDALAllRegister();
    GDALDataset* ds = static_cast<GDALDataset*>(GDALOpen(path.c_str(), GA_Update));
    REQUIRE(ds != nullptr);
    std::vector<std::uint8_t> zeros(64 * 256, 0);
    for (int b = 1; b <= 3; ++b) {
      ds->GetRasterBand(b)->SetNoDataValue(0);
      REQUIRE(ds->GetRasterBand(b)->RasterIO(GF_Write, 0, 0, 64, 256, zeros.data(), 64, 256, GDT_Byte, 0, 0) ==
              CE_None);
    }
    GDALClose(ds);
  };
  // the output's mask: every pixel of the left 64 columns invalid, every other valid
  const auto check_mask = [](const std::string& path, int width) {
    Opened o(path);
    CHECK_FALSE(o.has_nodata(1));  // generated pixels take every value, 0 included
    CHECK(o.ds->GetRasterBand(1)->GetMaskFlags() == GMF_PER_DATASET);
    std::vector<std::uint8_t> mask(static_cast<size_t>(width) * 256), px(mask.size());
    REQUIRE(o.ds->GetRasterBand(1)->GetMaskBand()->RasterIO(GF_Read, 0, 0, width, 256, mask.data(), width, 256,
                                                            GDT_Byte, 0, 0) == CE_None);
    REQUIRE(o.ds->GetRasterBand(1)->RasterIO(GF_Read, 0, 0, width, 256, px.data(), width, 256, GDT_Byte, 0, 0) ==
            CE_None);
    int wrong = 0;
    for (int y = 0; y < 256; ++y) {
      for (int x = 0; x < width; ++x) {
        const size_t i = static_cast<size_t>(y) * width + x;
        const bool expect_valid = x >= 64;
        if ((mask[i] != 0) != expect_valid || (!expect_valid && px[i] != 0)) ++wrong;
      }
    }
    CHECK(wrong == 0);
  };
  // translates the holed image of `width` into o.tif; the log
  const auto translate_holed = [&](int width) {
    write_holed(tmp.file("in.tif"), width);
    const auto r = run_copgen("translate --from S2L1C --to S2L2A -i " + quote(tmp.file("in.tif")) + kQuick + " -o " +
                              quote(tmp.file("o.tif")));
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    return r.output;
  };
  SECTION("a 256 x 256 tile") {
    CHECK_THAT(translate_holed(256), Catch::Contains("16384 of 65536 pixels are nodata"));
    check_mask(tmp.file("o.tif"), 256);
  }
  SECTION("the same image at 300 x 256 (a scene)") {
    translate_holed(300);
    check_mask(tmp.file("o.tif"), 300);
  }
  SECTION("--fill-nodata: no mask - nothing declared") {
    write_holed(tmp.file("in.tif"), 256);
    const auto r = run_copgen("translate --from S2L1C --to S2L2A -i " + quote(tmp.file("in.tif")) + kQuick +
                              " --fill-nodata -o " + quote(tmp.file("o.tif")));
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    Opened o(tmp.file("o.tif"));
    CHECK_FALSE(o.has_nodata(1));
    CHECK(o.ds->GetRasterBand(1)->GetMaskFlags() == GMF_ALL_VALID);
  }
  SECTION("a scene without nodata: nothing declared on thumbnails or physical outputs") {
    tile(tmp, "in.tif", SyntheticRaster{300, 256});
    const auto r = run_copgen("translate --from S2L1C --to S2L2A -i " + quote(tmp.file("in.tif")) + kQuick + " -o " +
                              quote(tmp.file("t.tif")));
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK_FALSE(Opened(tmp.file("t.tif")).has_nodata(1));
    const auto p = run_copgen("translate --from S2L1C --to S2L2A -i " + quote(tmp.file("in.tif")) + kQuick +
                              " --output-kind physical -o " + quote(tmp.file("p.tif")));
    INFO(p.output);
    REQUIRE(p.exit_code == 0);
    Opened o(tmp.file("p.tif"));
    for (int b = 1; b <= 4; ++b) CHECK_FALSE(o.has_nodata(b));  // band 4 is the 0/1 saturation flag
  }
}

// ---- 5. bad values are refused before any work -------------------------------------------

TEST_CASE("safety: non-finite or absurd values and malformed seeds are refused up front", "[safety][values]") {
  TempDir tmp;
  const std::string in = tile(tmp, "in.tif");
  const std::string base = "translate --from S2L1C --to S2L2A -i " + quote(in) + " --steps 2 -o " +
                           quote(tmp.file("o.tif"));
  for (const std::string g : {"nan", "inf", "-inf", "1e9"}) {
    expect_copgen_failure(base + " --seed 1 --guidance-scale " + g, 2, {"--guidance-scale", "finite"}, tmp.path);
  }
  copgen::write_npy(tmp.file("huge.npy"), torch::full({4, 32, 32}, 1e30));
  expect_copgen_failure("translate --from S2L1C --to S2L2A -i " + quote(tmp.file("huge.npy")) + kQuick + " -o " +
                            quote(tmp.file("o.tif")),
                        3, {"huge.npy", "1e+30"}, tmp.path);
  for (const std::string seed : {"-1", "1e23", "18446744073709551616", "3.5", "0x10", ""}) {
    expect_copgen_failure(base + " --seed '" + seed + "'", 2, {"--seed", "whole number"}, tmp.path);
  }
  SECTION("the largest seed is taken as it is") {
    const auto r = run_copgen(base + " --seed 18446744073709551615");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK(Opened(tmp.file("o.tif")).meta("COPGEN_SEED") == "18446744073709551615");
  }
  SECTION("the precision is recorded: fp32 - and bf16 on the CPU") {
    for (const std::string p : {"fp32", "bf16"}) {
      const auto r = run_copgen(base + " --seed 1 --overwrite --precision " + p);
      INFO(r.output);
      REQUIRE(r.exit_code == 0);
      CHECK(Opened(tmp.file("o.tif")).meta("COPGEN_PRECISION") == p);
    }
    expect_copgen_failure(base + " --seed 1 --overwrite --precision fp16 --device cpu", 2, {"--precision fp16"},
                          tmp.path);
  }
}

// ---- 6. output locations are checked before the work ------------------------------------

TEST_CASE("safety: --report and --json locations are checked before any work", "[safety][outputs]") {
  TempDir tmp;
  std::ofstream(tmp.file("file")) << "a file, not a folder";
  fs::create_directories(tmp.file("tree/S2L1C"));
  tile(tmp, "tree/S2L1C/a.tif");
  const auto r = expect_copgen_failure("translate --input-dir " + quote(tmp.file("tree")) +
                                           " --from S2L1C --to S2L2A" + kQuick + " --output-dir " +
                                           quote(tmp.file("out")) + " --report " + quote(tmp.file("file/r.json")),
                                       5, {"--report", "file/r.json", "not a directory"}, tmp.path);
  CHECK(r.output.find("progress") == std::string::npos);
  const auto b = expect_copgen_failure("bench --devices cpu --precisions fp32 --batch-sizes 1 --repeat 1 --json " +
                                           quote(tmp.file("file/b.json")),
                                       5, {"--json", "file/b.json"}, tmp.path);
  CHECK(b.output.find("s/call") == std::string::npos);
}

// ---- 7. leftovers and messages -----------------------------------------------------------

TEST_CASE("safety: leftovers of killed runs are removed - special inputs refused - names checked",
          "[safety][leftovers]") {
  TempDir tmp;
  const std::string in = tile(tmp, "in.tif");

  SECTION("a killed run's work folder is removed by the next scene run") {
    const long pid = dead_pid();
    REQUIRE(pid > 0);
    const std::string stale = tmp.file("out/.copgen-work-" + std::to_string(pid) + "-0");
    fs::create_directories(stale);
    std::ofstream(stale + "/S2L1C.tif") << "half a rendering";
    tile(tmp, "scene.tif", SyntheticRaster{300, 260});
    const auto r = run_copgen("translate --from S2L1C --to S2L2A -i " + quote(tmp.file("scene.tif")) + kQuick +
                              " -o " + quote(tmp.file("out/o.tif")));
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK(file_names_under(tmp.file("out")) == std::vector<std::string>{"o.tif"});
  }
  SECTION("a geographic --target-crs says which CRS to pass (an EPSG:4326 input alone is gridded in its UTM zone)") {
    tile(tmp, "geo.tif", SyntheticRaster{300, 300, 3, "Byte", "GTiff", "EPSG:4326", true,
                                         {10.0, 0.0001, 0.0, 45.0, 0.0, -0.0001}, 1});
    expect_copgen_failure("translate --from S2L1C --to S2L2A -i " + quote(tmp.file("geo.tif")) + kQuick +
                              " --target-crs EPSG:4326 -o " + quote(tmp.file("o.tif")),
                          2, {"EPSG:4326", "geographic", "--target-crs EPSG:32632"}, tmp.path);
  }
  SECTION("an unreadable sub-folder of a batch tree is named") {
    fs::create_directories(tmp.file("tree/S2L1C/locked"));
    fs::copy(in, tmp.file("tree/S2L1C/a.tif"));
    const auto prefix = unprivileged_prefix(tmp.path);
    if (!prefix) {
      WARN("running as root without setpriv: permissions cannot be tested");
    } else {
      fs::permissions(tmp.file("tree/S2L1C/locked"), fs::perms::none);
      expect_failure(models_env() + *prefix + bin() + " translate --input-dir " + quote(tmp.file("tree")) +
                         " --from S2L1C --to S2L2A" + kQuick + " --output-dir " + quote(tmp.file("out")),
                     3, {"cannot list", "S2L1C/locked"}, tmp.path);
      fs::permissions(tmp.file("tree/S2L1C/locked"), fs::perms::owner_all);
    }
  }
  SECTION("a FIFO input is refused at once") {
    REQUIRE(::mkfifo(tmp.file("fifo.tif").c_str(), 0644) == 0);
    expect_failure(models_env() + "timeout 60 " + bin() + " translate --from S2L1C --to S2L2A -i " +
                       quote(tmp.file("fifo.tif")) + kQuick + " -o " + quote(tmp.file("o.tif")),
                   3, {"fifo.tif", "a FIFO", "not a regular file"}, tmp.path);
  }
  SECTION("a NUL byte in a list file is named whole") {
    std::ofstream(tmp.file("list.txt"), std::ios::binary) << std::string("S2L1C=a\0b.tif\n", 14);
    expect_copgen_failure("translate --inputs-from " + quote(tmp.file("list.txt")) + " --from S2L1C --to S2L2A" +
                              kQuick + " --output-dir " + quote(tmp.file("out")),
                          2, {"list.txt' line 1", "\\x00", "column 8"}, tmp.path);
  }
  SECTION("an output named .png is refused: copgen writes GeoTIFF") {
    expect_copgen_failure("translate --from S2L1C --to S2L2A -i " + quote(in) + kQuick + " -o " +
                              quote(tmp.file("o.png")),
                          2, {"o.png", "GeoTIFF", ".png"}, tmp.path);
  }
  SECTION("--save-latents leaves no folder behind when the run fails") {
    // 20 blocks of 512 bytes: the probe file fits, the ~200 KB GeoTIFF does not
    const std::string cmd = "sh -c " + quote("ulimit -f 20; trap '' XFSZ; exec " + bin() +
                                             " translate --from S2L1C --to S2L2A -i " + quote(in) + kQuick + " -o " +
                                             quote(tmp.file("o.tif")) + " --save-latents " + quote(tmp.file("lat")));
    expect_failure(models_env() + cmd, 5, {"o.tif", "cannot write"}, tmp.path);
    CHECK_FALSE(fs::exists(tmp.file("lat")));
  }
}

// ---- 8. help and messages in one style -----------------------------------------------------

TEST_CASE("safety: help and messages share one style", "[safety][messages]") {
  TempDir tmp;
  const auto render_help = run_copgen("render --help");
  CHECK(render_help.exit_code == 0);
  CHECK(render_help.output.find("--models") == std::string::npos);
  CHECK_THAT(run_copgen("translate --help").output, Catch::Contains("--models DIR"));

  const auto bad = run_copgen("translate --bogus");
  CHECK(bad.exit_code == 2);
  CHECK_THAT(bad.output, Catch::StartsWith("[copgen error]"));
  CHECK_THAT(bad.output, Catch::Contains("copgen translate --help"));

  const auto bare = run_command(bin());
  CHECK(bare.exit_code == 2);
  CHECK_THAT(bare.output, Catch::Contains("Usage:"));
  CHECK_THAT(bare.output, Catch::Contains("translate"));
  CHECK(bare.output.find("A subcommand is required") == std::string::npos);

  SECTION("a scene logs its resolution and bands plainly") {
    write_sparse_s2(tmp.file("scene.tif"), 300);
    const auto r = run_copgen("translate --from S2L1C --to S2L2A -i " + quote(tmp.file("scene.tif")) + kQuick +
                              " -o " + quote(tmp.file("o.tif")));
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.output, Catch::Contains("(10 m)"));
    CHECK_THAT(r.output, Catch::Contains("read as physical bands (bands 1, 2, 3 of one file)"));
    CHECK(r.output.find("file(s)") == std::string::npos);
  }
  SECTION("on a terminal the progress line ends before the next log line and shows an ETA") {
    if (run_command("command -v script").exit_code != 0) {
      WARN("no script(1) to run copgen on a terminal");
      return;
    }
    const std::string in = tile(tmp, "in.tif");
    const auto r = run_command("script -qec " +
                               quote(models_env() + bin() + " translate --from S2L1C --to S2L2A -i " + quote(in) +
                                     " --steps 400 --seed 1 -o " + quote(tmp.file("o.tif"))) +
                               " /dev/null");
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    CHECK_THAT(r.output, Catch::Contains("ETA"));
    // the log line after the progress line starts a line of its own (colours included)
    const auto wrote = r.output.find(" wrote ");
    REQUIRE(wrote != std::string::npos);
    const auto line_start = r.output.rfind('\n', wrote);
    REQUIRE(line_start != std::string::npos);
    CHECK(r.output.substr(line_start, wrote - line_start).find("solver steps") == std::string::npos);
    CHECK(r.output.find("solver steps") < line_start);
  }
}
