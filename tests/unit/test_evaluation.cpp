// The pieces of copgen eval that need no generation: rows, the paper's table, test-set
// layouts, reading and cropping test inputs, and the three table formats.
#include "catch_torch.hpp"

#include <filesystem>
#include <fstream>

#include "copgen/error.hpp"
#include "copgen/evaluation.hpp"
#include "copgen/npy.hpp"
#include "copgen/raster_io.hpp"
#include "support.hpp"

using namespace copgen;
namespace fs = std::filesystem;

namespace {

Models tiny_models() {
  ModelOptions o;
  o.device = "cpu";
  return Models::load(COPGEN_TEST_MODELS, o);
}

void write_png(const std::string& path, int w, int h, int seed) {
  fs::create_directories(fs::path(path).parent_path());
  test::SyntheticRaster spec;
  spec.width = w;
  spec.height = h;
  spec.format = "PNG";
  spec.georeferenced = false;
  spec.seed = seed;
  test::write_synthetic(path, spec);
}

}  // namespace

TEST_CASE("evaluation: Table 1 rows and --conditions", "[eval]") {
  std::vector<std::string> labels;
  for (const auto& c : table1_conditions()) labels.push_back(c.label());
  CHECK((labels == std::vector<std::string>{"uncond.", "DEM", "S1RTC", "S2L1C", "S2L2A"}));
  CHECK(table1_conditions()[0].generated().size() == 4);
  CHECK((table1_conditions()[3].generated() == std::vector<Modality>{Modality::DEM, Modality::S1RTC, Modality::S2L2A}));

  const auto rows = parse_conditions("S1RTC+dem, S2L1C", "--conditions");
  REQUIRE(rows.size() == 2);
  CHECK(rows[0].label() == "DEM+S1RTC");  // modality order, whatever the order given
  CHECK(rows[1].label() == "S2L1C");
  CHECK((rows[0].generated() == std::vector<Modality>{Modality::S2L1C, Modality::S2L2A}));
  CHECK_THROWS_AS(parse_conditions("DEM+XYZ", "--conditions"), UsageError);
  CHECK_THROWS_AS(parse_conditions("DEM+DEM", "--conditions"), UsageError);
  CHECK_THROWS_AS(parse_conditions("DEM,,S1RTC", "--conditions"), UsageError);
  CHECK_THROWS_AS(parse_conditions("DEM,DEM", "--conditions"), UsageError);
  CHECK_THROWS_AS(parse_conditions("DEM+S1RTC+S2L1C+S2L2A", "--conditions"), UsageError);
}

TEST_CASE("evaluation: the paper's values are Table 1's and F is their harmonic mean", "[eval]") {
  const auto uncond = paper_values(EvalCondition{});
  REQUIRE(uncond);
  CHECK(uncond->fid.at(Modality::DEM) == 90.36);
  CHECK(uncond->precision.at(Modality::S1RTC) == 49.81);
  CHECK(uncond->recall.at(Modality::S2L2A) == 27.29);
  const auto l1c = paper_values(EvalCondition{{Modality::S2L1C}});
  REQUIRE(l1c);
  CHECK(l1c->f.count(Modality::S2L1C) == 0);  // NA: given
  CHECK(l1c->fid.at(Modality::S2L2A) == 7.71);
  CHECK_FALSE(paper_values(EvalCondition{{Modality::DEM, Modality::S1RTC}}));
  int cells = 0;
  for (const auto& c : table1_conditions()) {
    const auto v = paper_values(c);
    REQUIRE(v);
    CHECK(v->f.size() == c.generated().size());
    for (const auto& [m, f] : v->f) {
      const double p = v->precision.at(m), r = v->recall.at(m);
      INFO(c.label() << " " << modality_name(m));
      CHECK(f == Approx(2 * p * r / (p + r)).margin(0.011));  // the paper rounds to 0.01
      ++cells;
    }
  }
  CHECK(cells == 16);
}

TEST_CASE("evaluation: a Major TOM tree gives tuples of thumbnails by grid cell", "[eval]") {
  test::TempDir dir;
  const std::string root = dir.file("majortom");
  const std::vector<std::string> cores = {"Core-DEM", "Core-S1RTC", "Core-S2L1C", "Core-S2L2A"};
  for (const std::string cell : {"433U_1043R", "433U_1044R"}) {
    for (size_t i = 0; i < cores.size(); ++i) {
      write_png(root + "/" + cores[i] + "/433U/" + cell + "/P" + std::to_string(i) + "/thumbnail.png", 64, 64, 1);
    }
  }
  // a cell without S1RTC: skipped
  for (const std::string core : {"Core-DEM", "Core-S2L1C", "Core-S2L2A"}) {
    write_png(root + "/" + core + "/434U/434U_1043R/X/thumbnail.png", 64, 64, 2);
  }
  const TestSet s = discover_test_set(root);
  CHECK(s.layout == TupleLayout::MajorTom);
  REQUIRE(s.tuples.size() == 2);
  CHECK(s.incomplete == 1);
  CHECK(s.tuples[0].key == "433U/433U_1043R");
  CHECK(s.tuples[1].key == "433U/433U_1044R");
  CHECK(s.tuples[0].files.at(Modality::S1RTC) == root + "/Core-S1RTC/433U/433U_1043R/P1/thumbnail.png");
  CHECK(discover_test_set(root, 1).tuples.size() == 1);

  // a product folder without a thumbnail is named
  fs::remove(root + "/Core-S2L2A/433U/433U_1044R/P3/thumbnail.png");
  std::ofstream(root + "/Core-S2L2A/433U/433U_1044R/P3/B04.tif") << "";
  try {
    discover_test_set(root);
    FAIL("expected an InputError");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find("433U_1044R/P3") != std::string::npos);
  }
  CHECK_THROWS_AS(discover_test_set(dir.file("none")), InputError);
}

TEST_CASE("evaluation: one folder per modality matches files by name", "[eval]") {
  test::TempDir dir;
  const std::string root = dir.file("set");
  for (const std::string mod : {"DEM", "s1_rtc", "S2L1C", "S2L2A"}) {
    for (const std::string key : {"b", "a"}) write_png(root + "/" + mod + "/" + key + ".png", 32, 32, 3);
  }
  fs::create_directories(root + "/S2L2A");
  copgen::write_npy(root + "/DEM/c.npy", torch::zeros({8, 32, 32}));
  const TestSet s = discover_test_set(root);
  CHECK(s.layout == TupleLayout::PerModality);
  REQUIRE(s.tuples.size() == 2);
  CHECK(s.tuples[0].key == "a");
  CHECK(s.incomplete == 1);  // "c" is only in DEM
}

TEST_CASE("evaluation: test inputs are centre-cropped to 256 or read as moments", "[eval]") {
  Models models = tiny_models();
  test::TempDir dir;
  write_png(dir.file("big.png"), 301, 270, 4);
  const GivenData big = read_test_input(dir.file("big.png"), Modality::S2L1C, models);
  REQUIRE(big.pixels.defined());
  CHECK(big.pixels.sizes() == torch::IntArrayRef({3, 256, 256}));
  const ImageU8 raw = read_image_u8(dir.file("big.png"), "test");
  // centre crop: x0 = (301 - 256) / 2 = 22, y0 = (270 - 256) / 2 = 7
  for (const auto& [b, y, x] : std::vector<std::array<int, 3>>{{0, 0, 0}, {1, 100, 37}, {2, 255, 255}}) {
    const auto want = raw.pixels[static_cast<size_t>((b * 270 + y + 7) * 301 + x + 22)];
    CHECK(big.pixels[b][y][x].item<int>() == want);
  }
  write_png(dir.file("exact.png"), 256, 256, 5);
  const GivenData exact = read_test_input(dir.file("exact.png"), Modality::DEM, models);
  CHECK(exact.pixels.sizes() == torch::IntArrayRef({3, 256, 256}));

  write_png(dir.file("small.png"), 200, 300, 6);
  try {
    read_test_input(dir.file("small.png"), Modality::S1RTC, models);
    FAIL("expected an InputError");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find("small.png") != std::string::npos);
    CHECK(std::string(e.what()).find("at least 256 x 256") != std::string::npos);
  }

  write_npy(dir.file("m.npy"), torch::ones({8, 32, 32}));
  const GivenData m = read_test_input(dir.file("m.npy"), Modality::DEM, models);
  CHECK_FALSE(m.pixels.defined());
  CHECK(m.moments.sizes() == torch::IntArrayRef({8, 32, 32}));
  write_npy(dir.file("z.npy"), torch::ones({4, 32, 32}));
  CHECK(read_test_input(dir.file("z.npy"), Modality::DEM, models).latent.defined());
  write_npy(dir.file("bad.npy"), torch::ones({8, 16, 16}));
  CHECK_THROWS_AS(read_test_input(dir.file("bad.npy"), Modality::DEM, models), InputError);
}

TEST_CASE("evaluation: tables in Table 1's layout - NA - paper rows - differences", "[eval]") {
  EvalResult r;
  EvalRow row;
  row.condition = EvalCondition{{Modality::S2L1C}};
  for (Modality m : {Modality::DEM, Modality::S1RTC, Modality::S2L2A}) {
    SetScores s;
    s.fid = 10.0 + modality_index(m);
    s.precision = 0.5;
    s.recall = 0.25;
    s.f_score = 1.0 / 3.0;
    s.real_count = s.fake_count = 20;
    row.scores[m] = s;
  }
  r.rows.push_back(row);
  r.provenance = nlohmann::json{{"k", 3}};

  const std::string md = table1_markdown(r, true);
  CHECK(md.find("| COP-GEN-Beta (copgen) | S2L1C | 33.33 | 33.33 | NA | 33.33 | 50.00 | 50.00 | NA | 50.00 | "
                "25.00 | 25.00 | NA | 25.00 | 10.00 | 11.00 | NA | 13.00 |") != std::string::npos);
  CHECK(md.find("| COP-GEN-Beta (paper) | S2L1C | 51.89 | 32.57 | NA | 83.51 | 64.25 |") != std::string::npos);
  // 33.33 - 51.89 = -18.56; 33.33 - 32.57 = +0.76; FID 10 - 40.90 = -30.90
  CHECK(md.find("| copgen - paper | S2L1C | -18.56 | +0.76 | NA | -50.18 |") != std::string::npos);
  CHECK(md.find("| -30.90 | -9.94 | NA | +5.29 |") != std::string::npos);
  CHECK(table1_markdown(r, false).find("(paper)") == std::string::npos);

  const std::string csv = table1_csv(r, true);
  CHECK(csv.find("COP-GEN-Beta (copgen),S2L1C,33.3333,33.3333,NA,33.3333,50.0000,") != std::string::npos);

  const nlohmann::json j = table1_json(r, true);
  CHECK(j["rows"][0]["given"] == nlohmann::json::array({"S2L1C"}));
  CHECK(j["rows"][0]["measured"]["S2L2A"]["fid"] == 13.0);
  CHECK(j["rows"][0]["measured"]["S2L2A"]["precision"] == 50.0);
  CHECK(j["rows"][0]["measured"].count("S2L1C") == 0);
  CHECK(j["rows"][0]["paper"]["DEM"]["recall"] == 43.52);
  CHECK(j["rows"][0]["difference"]["S1RTC"]["fid"].get<double>() == Approx(11.0 - 20.94));
  CHECK(j["units"]["precision"] == "percent");
}
