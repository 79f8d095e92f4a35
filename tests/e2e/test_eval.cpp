// End-to-end: copgen metrics and copgen eval with the tiny models and tiny extractors
// on synthetic image sets, including eval's resume from its cache.
#include "catch_torch.hpp"

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "copgen/npy.hpp"
#include "support.hpp"

using namespace copgen::test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string kExtractors = std::string(" --extractors ") + quote(COPGEN_TEST_EXTRACTORS) + " ";

void write_images(const std::string& dir, int first_seed, int count, const std::string& format = "PNG") {
  fs::create_directories(dir);
  SyntheticRaster spec;
  spec.format = format;
  spec.georeferenced = false;
  spec.width = spec.height = 96;
  for (int i = 0; i < count; ++i) {
    spec.seed = first_seed + i;
    write_synthetic(dir + "/img" + std::to_string(i) + (format == "PNG" ? ".png" : ".tif"), spec);
  }
}

json read_json(const std::string& path) { return json::parse(read_file_bytes(path)); }

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> out;
  std::stringstream ss(text);
  std::string line;
  while (std::getline(ss, line)) out.push_back(line);
  return out;
}

size_t count_prefix(const std::vector<std::string>& lines, const std::string& prefix) {
  return static_cast<size_t>(
      std::count_if(lines.begin(), lines.end(), [&](const std::string& l) { return l.rfind(prefix, 0) == 0; }));
}

// 10 aligned tuples, one folder per modality: DEM as autoencoder moments (.npy), the
// others as images; two S2L2A images are larger than 256 (centre-cropped). Tuples 5..9
// are in a sub-folder "b/", so their keys ("b/t05") hold a '/' as Major TOM keys do.
std::string make_test_set(const TempDir& dir) {
  const std::string root = dir.file("test-set");
  torch::manual_seed(8);
  for (int i = 0; i < 10; ++i) {
    const std::string key = (i >= 5 ? "b/t0" : "t0") + std::to_string(i);
    fs::create_directories(root + "/DEM/b");
    copgen::write_npy(root + "/DEM/" + key + ".npy", torch::randn({8, 32, 32}) * 0.5);
    SyntheticRaster spec;
    spec.georeferenced = false;
    spec.seed = 100 + i;
    for (const std::string mod : {"S1RTC", "S2L1C", "S2L2A"}) {
      fs::create_directories(root + "/" + mod + "/b");
      spec.seed += 1000;
      spec.format = mod == "S1RTC" ? "GTiff" : "PNG";
      spec.width = spec.height = 256;
      if (mod == "S2L2A" && i < 2) {
        spec.width = 300;
        spec.height = 280;
      }
      write_synthetic(root + "/" + mod + "/" + key + (spec.format == "PNG" ? ".png" : ".tif"), spec);
    }
  }
  return root;
}

}  // namespace

TEST_CASE("cli metrics: two folders give a table and JSON - saved features give the same scores", "[cli][metrics]") {
  TempDir dir;
  write_images(dir.file("real"), 1, 6);
  write_images(dir.file("fake"), 40, 6, "GTiff");
  const CommandResult r = run_copgen("metrics --real " + quote(dir.file("real")) + " --fake " + quote(dir.file("fake")) +
                                     kExtractors + "--device cpu --json " + quote(dir.file("m.json")) +
                                     " --save-features " + quote(dir.file("feat")));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("FID") != std::string::npos);
  CHECK(r.output.find("precision") != std::string::npos);
  CHECK(r.output.find("F-score") != std::string::npos);
  const json j = read_json(dir.file("m.json"));
  CHECK(j["real"]["count"] == 6);
  CHECK(j["fake"]["count"] == 6);
  CHECK(j["k"] == 3);
  CHECK(j["fid"].get<double>() > 0.0);
  for (const char* key : {"precision", "recall", "f_score"}) {
    CHECK(j[key].get<double>() >= 0.0);
    CHECK(j[key].get<double>() <= 1.0);
  }
  const double p = j["precision"], rec = j["recall"];
  CHECK(j["f_score"].get<double>() == Approx(2 * p * rec / std::max(1e-5, p + rec)));
  CHECK(j["extractors"]["sha256"].get<std::string>().size() == 64);
  for (const char* f : {"real/inception.npy", "real/vgg16.npy", "fake/inception.npy", "fake/vgg16.npy"}) {
    CHECK(file_exists(dir.file("feat/") + f));
  }
  CHECK(copgen::read_npy(dir.file("feat/real/inception.npy")).sizes() == torch::IntArrayRef({6, 128}));

  const CommandResult again = run_copgen("metrics --features " + quote(dir.file("feat")) + " --json " +
                                         quote(dir.file("m2.json")));
  INFO(again.output);
  REQUIRE(again.exit_code == 0);
  const json j2 = read_json(dir.file("m2.json"));
  for (const char* key : {"fid", "precision", "recall", "f_score"}) CHECK(j2[key] == j[key]);
  CHECK(j2["extractors"].is_null());

  // a set against itself: FID 0, every point inside
  const CommandResult self = run_copgen("metrics --real " + quote(dir.file("real")) + " --fake " +
                                        quote(dir.file("real")) + kExtractors + "--json " + quote(dir.file("s.json")));
  REQUIRE(self.exit_code == 0);
  const json js = read_json(dir.file("s.json"));
  CHECK(js["fid"].get<double>() == Approx(0.0).margin(1e-6));
  CHECK(js["precision"] == 1.0);
  CHECK(js["recall"] == 1.0);
}

TEST_CASE("cli metrics: bad arguments and inputs fail clearly", "[cli][metrics][errors]") {
  TempDir dir;
  write_images(dir.file("real"), 1, 5);
  write_images(dir.file("few"), 1, 3);
  const std::string real = quote(dir.file("real"));
  CHECK(run_copgen("metrics --real " + real + kExtractors).exit_code == 2);
  CHECK(run_copgen("metrics --features " + quote(dir.file("x")) + " --real " + real).exit_code == 2);
  const CommandResult few = run_copgen("metrics --real " + real + " --fake " + quote(dir.file("few")) + kExtractors);
  CHECK(few.exit_code == 3);
  CHECK(few.output.find("few") != std::string::npos);
  CHECK(run_copgen("metrics --real " + real + " --fake " + quote(dir.file("none")) + kExtractors).exit_code == 3);
  // default extractors: the models directory, which holds none here
  const CommandResult none = run_copgen("metrics --real " + real + " --fake " + real);
  CHECK(none.exit_code == 4);
  CHECK(none.output.find("extractors.json") != std::string::npos);
}

TEST_CASE("cli eval: Table 1 on 10 synthetic tuples - then resumed from the cache", "[cli][eval]") {
  TempDir dir;
  const std::string test_set = make_test_set(dir);
  const std::string out = dir.file("out");
  const std::string args = "eval --test-set " + quote(test_set) + " -o " + quote(out) + kExtractors +
                           "--device cpu --steps 2 --seed 5 --batch-size 4 --compare-paper --conditions DEM+S1RTC";
  const CommandResult r = run_copgen(args);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);

  // ---- the three tables -------------------------------------------------------------------
  const json j = read_json(out + "/table1.json");
  REQUIRE(j["rows"].size() == 6);
  const std::vector<std::string> labels = {"uncond.", "DEM", "S1RTC", "S2L1C", "S2L2A", "DEM+S1RTC"};
  const std::vector<size_t> generated = {4, 3, 3, 3, 3, 2};
  for (size_t i = 0; i < 6; ++i) {
    const json& row = j["rows"][i];
    INFO("row " << labels[i]);
    CHECK(row["condition"] == labels[i]);
    REQUIRE(row["measured"].size() == generated[i]);
    for (const auto& [mod, v] : row["measured"].items()) {
      CHECK(v["real_count"] == 10);
      CHECK(v["fake_count"] == 10);
      CHECK(v["fid"].get<double>() > 0.0);
      for (const char* k : {"precision", "recall", "f_score"}) {
        CHECK(v[k].get<double>() >= 0.0);
        CHECK(v[k].get<double>() <= 100.0);
      }
    }
    if (i < 5) {
      REQUIRE(row["paper"].is_object());
      REQUIRE(row["paper"].size() == generated[i]);
      for (const auto& [mod, v] : row["measured"].items()) {
        CHECK(row["difference"][mod]["fid"].get<double>() ==
              Approx(v["fid"].get<double>() - row["paper"][mod]["fid"].get<double>()));
      }
    } else {
      CHECK(row["paper"].is_null());
    }
  }
  CHECK(j["rows"][1]["measured"].count("DEM") == 0);
  CHECK(j["rows"][0]["paper"]["DEM"]["fid"] == 90.36);
  CHECK(j["rows"][3]["paper"]["S2L2A"]["f_score"] == 83.51);
  const json& p = j["provenance"];
  CHECK(p["seed"] == 5);
  CHECK(p["sampler"]["steps"] == 2);
  CHECK(p["sampler"]["solver"] == "dpm-solver-fast");
  CHECK(p["models"]["sha256"].get<std::string>().size() == 64);
  CHECK(p["extractors"]["sha256"].get<std::string>().size() == 64);
  CHECK(p["test_set"]["tuples"] == 10);
  CHECK(p["test_set"]["layout"] == "per-modality");
  CHECK(p["samples_per_tuple"] == 1);
  // 6 rows x 3 chunks of <= 4 tuples; 10 x (4 + 4 x 3 + 2) images; 4 real + 18 generated sets
  CHECK(j["cache"]["chunks_generated"] == 18);
  CHECK(j["cache"]["chunks_reused"] == 0);
  CHECK(j["cache"]["images_generated"] == 180);
  CHECK(j["cache"]["features_extracted"] == 22);
  CHECK(j["cache"]["features_reused"] == 0);
  CHECK(j["cache"]["network_calls"] == 18 * 2);

  const auto md = lines_of(read_file_bytes(out + "/table1.md"));
  CHECK(count_prefix(md, "| Model | Condition | F DEM | F S1RTC | F S2L1C | F S2L2A | P DEM |") == 1);
  CHECK(count_prefix(md, "| COP-GEN-Beta (copgen) |") == 6);
  CHECK(count_prefix(md, "| COP-GEN-Beta (paper) |") == 5);
  CHECK(count_prefix(md, "| copgen - paper |") == 5);
  CHECK(count_prefix(md, "| COP-GEN-Beta (paper) | uncond. | 42.25 | 24.22 | 36.71 | 39.54 | 73.25 |") == 1);
  CHECK(count_prefix(md, "| COP-GEN-Beta (copgen) | DEM | NA |") == 1);
  CHECK(count_prefix(md, "| COP-GEN-Beta (copgen) | DEM+S1RTC | NA | NA |") == 1);
  const auto csv = lines_of(read_file_bytes(out + "/table1.csv"));
  REQUIRE(csv.size() == 17);
  CHECK(csv[0].rfind("Model,Condition,F DEM,F S1RTC,F S2L1C,F S2L2A,P DEM,", 0) == 0);
  CHECK(csv[0].find("FID S2L2A") != std::string::npos);

  // ---- a rerun takes everything from the cache ----------------------------------------------
  const std::string png = out + "/cache/generated/S2L1C/S2L2A/b/t07_s0.png";
  REQUIRE(file_exists(png));
  const auto mtime = fs::last_write_time(png);
  const std::string png_bytes = read_file_bytes(png);
  const CommandResult again = run_copgen(args);
  INFO(again.output);
  REQUIRE(again.exit_code == 0);
  CHECK(again.output.find("0 chunk(s) generated, 18 reused") != std::string::npos);
  const json j2 = read_json(out + "/table1.json");
  CHECK(j2["cache"]["chunks_generated"] == 0);
  CHECK(j2["cache"]["chunks_reused"] == 18);
  CHECK(j2["cache"]["images_generated"] == 0);
  CHECK(j2["cache"]["features_extracted"] == 0);
  CHECK(j2["cache"]["features_reused"] == 22);
  CHECK(fs::last_write_time(png) == mtime);
  for (size_t i = 0; i < 6; ++i) CHECK(j2["rows"][i]["measured"] == j["rows"][i]["measured"]);

  // ---- an interrupted chunk (no marker, an image missing) is made again, identically --------
  fs::remove(out + "/cache/generated/S2L1C/chunks/0.json");  // keys sort as b/t05..b/t09, t00..t04
  fs::remove(png);
  const CommandResult resumed = run_copgen(args);
  INFO(resumed.output);
  REQUIRE(resumed.exit_code == 0);
  const json j3 = read_json(out + "/table1.json");
  CHECK(j3["cache"]["chunks_generated"] == 1);
  CHECK(j3["cache"]["chunks_reused"] == 17);
  CHECK(j3["cache"]["images_generated"] == 4 * 3);
  CHECK(j3["cache"]["features_extracted"] == 3);  // the row's three generated modalities
  CHECK(read_file_bytes(png) == png_bytes);
  for (size_t i = 0; i < 6; ++i) CHECK(j3["rows"][i]["measured"] == j["rows"][i]["measured"]);

  // ---- other settings need another folder or --overwrite -----------------------------------
  const CommandResult other = run_copgen("eval --test-set " + quote(test_set) + " -o " + quote(out) + kExtractors +
                                         "--device cpu --steps 3 --seed 5 --batch-size 4 --limit 4");
  CHECK(other.exit_code == 2);
  CHECK(other.output.find("other settings") != std::string::npos);
  CHECK(other.output.find("steps 2 -> 3") != std::string::npos);
}

TEST_CASE("cli eval: bad arguments fail before any work", "[cli][eval][errors]") {
  TempDir dir;
  const std::string base = "eval -o " + quote(dir.file("out")) + kExtractors + "--device cpu ";
  CHECK(run_copgen(base).exit_code == 2);  // no --test-set
  CHECK(run_copgen(base + "--test-set " + quote(dir.file("none"))).exit_code == 3);
  const CommandResult bad_rows = run_copgen(base + "--test-set " + quote(dir.path) + " --conditions DEM+XYZ");
  CHECK(bad_rows.exit_code == 2);
  CHECK(bad_rows.output.find("XYZ") != std::string::npos);
  const CommandResult all4 =
      run_copgen(base + "--test-set " + quote(dir.path) + " --conditions DEM+S1RTC+S2L1C+S2L2A");
  CHECK(all4.exit_code == 2);
  CHECK(run_copgen(base + "--test-set " + quote(dir.path) + " --samples-per-tuple 0").exit_code == 2);
  // too few tuples for precision/recall
  fs::create_directories(dir.file("small"));
  for (const std::string mod : {"DEM", "S1RTC", "S2L1C", "S2L2A"}) {
    fs::create_directories(dir.file("small/" + mod));
    SyntheticRaster spec;
    spec.format = "PNG";
    spec.georeferenced = false;
    for (int i = 0; i < 3; ++i) write_synthetic(dir.file("small/" + mod + "/a" + std::to_string(i) + ".png"), spec);
  }
  const CommandResult small = run_copgen(base + "--test-set " + quote(dir.file("small")));
  CHECK(small.exit_code == 3);
  CHECK(small.output.find("at least 4") != std::string::npos);
}
