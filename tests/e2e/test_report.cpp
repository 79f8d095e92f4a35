// The pictures copgen writes for people to look at: eval's report.html (Table 1 beside the
// paper, example grids, provenance) and bench's SVG chart; checked as files, and opened in
// headless Chromium (browser.hpp) where every image must load and the tables have their rows.
#include "catch_torch.hpp"

#include <algorithm>
#include <filesystem>
#include <regex>

#include <nlohmann/json.hpp>

#include "browser.hpp"
#include "copgen/npy.hpp"
#include "copgen/raster_io.hpp"
#include "support.hpp"

using namespace copgen::test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

const std::string kExtractors = std::string(" --extractors ") + quote(COPGEN_TEST_EXTRACTORS) + " ";
const std::string kOddKey = "t2 & <x> \"q\"";  // escaped in the page, never markup

// 5 aligned tuples, one folder per modality: DEM as autoencoder moments (.npy), S1RTC as
// GeoTIFF, S2L1C and S2L2A as PNG; tuple t0's S2L2A is 300 x 280 (centre-cropped). The
// third key by sort order holds & < > and quotes.
std::string make_test_set(const TempDir& dir) {
  const std::string root = dir.file("test-set");
  torch::manual_seed(4);
  const std::vector<std::string> keys = {"t0", "t1", kOddKey, "t3", "t4"};
  for (size_t i = 0; i < keys.size(); ++i) {
    fs::create_directories(root + "/DEM");
    copgen::write_npy(root + "/DEM/" + keys[i] + ".npy", torch::randn({8, 32, 32}) * 0.5);
    SyntheticRaster spec;
    spec.georeferenced = false;
    spec.seed = 300 + static_cast<int>(i);
    for (const std::string mod : {"S1RTC", "S2L1C", "S2L2A"}) {
      fs::create_directories(root + "/" + mod);
      spec.seed += 1000;
      spec.format = mod == "S1RTC" ? "GTiff" : "PNG";
      spec.width = spec.height = 256;
      if (mod == "S2L2A" && i == 0) {
        spec.width = 300;
        spec.height = 280;
      }
      write_synthetic(root + "/" + mod + "/" + keys[i] + (spec.format == "PNG" ? ".png" : ".tif"), spec);
    }
  }
  return root;
}

std::string eval_args(const std::string& test_set, const std::string& out) {
  return "eval --test-set " + quote(test_set) + " -o " + quote(out) + kExtractors +
         "--device cpu --steps 1 --seed 9 --batch-size 4 --report-examples 3 --conditions DEM+S1RTC";
}

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

// Given + 2 x generated images per example: uncond. 0 + 8, one given 1 + 6 (x4), DEM+S1RTC 2 + 4.
constexpr size_t kImagesPerExample = 8 + 4 * 7 + 6;
const std::vector<std::string> kRowDirs = {"uncond", "DEM", "S1RTC", "S2L1C", "S2L2A", "DEM+S1RTC"};

}  // namespace

TEST_CASE("eval report: report.html beside the tables - paper rows, examples as scored, escaped, stable",
          "[report][eval]") {
  TempDir dir;
  const std::string test_set = make_test_set(dir);
  const std::string out = dir.file("out");
  const CommandResult r = run_copgen(eval_args(test_set, out));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("wrote " + out + "/report.html") != std::string::npos);
  const std::string html = read_file_bytes(out + "/report.html");

  // Table 1: 6 measured rows, the paper's row and the difference after each of the five it has
  CHECK(count_of(html, "<table id=\"table1\">") == 1);
  CHECK(count_of(html, "<tr class=\"measured\">") == 6);
  CHECK(count_of(html, "<tr class=\"paper\">") == 5);
  CHECK(count_of(html, "<tr class=\"difference\">") == 5);
  // the paper's uncond. row as published (F, P, R in percent, then FID)
  CHECK(html.find("<tr class=\"paper\"><th scope=\"row\">COP-GEN-Beta (paper)</th><td>uncond.</td>"
                  "<td class=\"num metric\">42.25</td><td class=\"num\">24.22</td><td class=\"num\">36.71</td>"
                  "<td class=\"num\">39.54</td><td class=\"num metric\">73.25</td>") != std::string::npos);
  // the differences are copgen - paper, as in table1.json
  const json j = json::parse(read_file_bytes(out + "/table1.json"));
  CHECK(j["rows"][0].count("paper") == 0);  // no --compare-paper: the tables are as before
  const double fid = j["rows"][1]["measured"]["S2L2A"]["fid"];
  char expected[64];
  std::snprintf(expected, sizeof expected, "%+.2f", fid - 25.32);  // row DEM, FID S2L2A
  CHECK(html.find(std::string("<td class=\"num\">") + expected + "</td></tr>") != std::string::npos);

  // the provenance
  CHECK(html.find("<dt>seed</dt><dd>9</dd>") != std::string::npos);
  CHECK(html.find("1 steps of dpm-solver-fast") != std::string::npos);
  CHECK(html.find("<dt>precision</dt><dd>backbone fp32, autoencoder fp32</dd>") != std::string::npos);
  CHECK(html.find(j["provenance"]["models"]["sha256"].get<std::string>()) != std::string::npos);

  // self-contained and static: no script, nothing from the network
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("http://") == std::string::npos);
  CHECK(html.find("https://") == std::string::npos);
  CHECK(html.find("@media print") != std::string::npos);

  // the odd key is text, never markup
  CHECK(html.find("t2 &amp; &lt;x&gt; &quot;q&quot;") != std::string::npos);
  CHECK(html.find("<x>") == std::string::npos);

  // the examples: 3 tuples per row, each picture a PNG under report/
  CHECK(count_of(html, "<img class=\"tile\"") == 3 * kImagesPerExample);
  std::regex src_re("src=\"([^\"]*)\"");
  size_t checked = 0;
  for (auto it = std::sregex_iterator(html.begin(), html.end(), src_re); it != std::sregex_iterator(); ++it) {
    const std::string src = (*it)[1];
    INFO(src);
    CHECK(src.rfind("report/", 0) == 0);
    CHECK(file_exists(out + "/" + std::regex_replace(src, std::regex("%2B"), "+")));
    ++checked;
  }
  CHECK(checked == 3 * kImagesPerExample);
  size_t files = 0;
  for (const auto& e : fs::directory_iterator(out + "/report")) files += e.path().extension() == ".png";
  CHECK(files == 3 * 4 + 3 * (4 + 3 * 4 + 2));  // real per modality, generated per row

  // a generated picture is the cached sample; a real one the image as scored (the centre crop)
  CHECK(read_file_bytes(out + "/report/S2L1C-2-S2L2A.png") ==
        read_file_bytes(out + "/cache/generated/S2L1C/S2L2A/" + kOddKey + "_s0.png"));
  const copgen::ImageU8 real = copgen::read_image_u8(out + "/report/real-0-S2L2A.png", "real");
  const copgen::ImageU8 source = copgen::read_image_u8(test_set + "/S2L2A/t0.png", "source");
  REQUIRE(real.width == 256);
  REQUIRE(real.height == 256);
  REQUIRE(real.bands == 3);
  const int x0 = (300 - 256) / 2, y0 = (280 - 256) / 2;
  size_t differing = 0;
  for (int b = 0; b < 3; ++b) {
    for (int y = 0; y < 256; ++y) {
      for (int x = 0; x < 256; ++x) {
        const auto a = real.pixels[static_cast<size_t>((b * 256 + y) * 256 + x)];
        const auto s = source.pixels[static_cast<size_t>((b * 280 + y0 + y) * 300 + x0 + x)];
        differing += a != s;
      }
    }
  }
  CHECK(differing == 0);
  // the DEM was given as moments: its real picture is the autoencoder's decoding, an image all the same
  CHECK(copgen::read_image_u8(out + "/report/real-1-DEM.png", "dem").width == 256);

  // a rerun from the cache writes the same page, byte for byte
  const CommandResult again = run_copgen(eval_args(test_set, out));
  INFO(again.output);
  REQUIRE(again.exit_code == 0);
  CHECK(again.output.find("0 chunk(s) generated") != std::string::npos);
  CHECK(read_file_bytes(out + "/report.html") == html);

  // --report-examples 0: the table and the provenance, no pictures
  const std::string out0 = dir.file("out0");
  const CommandResult none = run_copgen("eval --test-set " + quote(test_set) + " -o " + quote(out0) + kExtractors +
                                        "--device cpu --steps 1 --seed 9 --batch-size 4 --report-examples 0");
  INFO(none.output);
  REQUIRE(none.exit_code == 0);
  const std::string html0 = read_file_bytes(out0 + "/report.html");
  CHECK(count_of(html0, "<img") == 0);
  CHECK(count_of(html0, "<tr class=\"measured\">") == 5);
  CHECK(!fs::exists(out0 + "/report"));
  CHECK(run_copgen("eval --test-set " + quote(test_set) + " -o " + quote(dir.file("o")) + kExtractors +
                   "--report-examples -1")
            .exit_code == 2);
}

TEST_CASE("browser: eval report.html opens offline - every picture loads, Table 1 has its rows", "[browser][report][eval]") {
  TempDir dir;
  const std::string test_set = make_test_set(dir);
  const std::string out = dir.file("out");
  const CommandResult r = run_copgen(eval_args(test_set, out) + " --compare-paper");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const PageCheck p = open_in_browser(out + "/report.html", "eval_report",
                                      {{"table1_rows", "#table1 tbody tr"},
                                       {"measured", "#table1 tbody tr.measured"},
                                       {"paper", "#table1 tbody tr.paper"},
                                       {"example_rows", "table.examples tbody tr"},
                                       {"grids", "section.row"},
                                       {"provenance", "#provenance dt"}});
  if (p.skipped) return;
  check_static_page(p.page, 3 * kImagesPerExample);
  CHECK(p.page["title"] == "copgen eval: COP-GEN-Beta Table 1");
  CHECK(p.page["counts"]["table1_rows"] == 16);
  CHECK(p.page["counts"]["measured"] == 6);
  CHECK(p.page["counts"]["paper"] == 5);
  CHECK(p.page["counts"]["grids"] == 6);
  CHECK(p.page["counts"]["example_rows"] == 6 * 3);
  CHECK(p.page["counts"]["provenance"] == 18);
  for (const auto& img : p.page["images"]) CHECK(img["naturalWidth"] == 256);
}

TEST_CASE("bench --svg: well-formed XML, one bar per measured row and series, values as measured",
          "[report][bench][python]") {
  TempDir tmp;
  const std::string svg = tmp.file("bench.svg"), js = tmp.file("bench.json");
  const CommandResult r = run_copgen(
      "bench --devices cpu --repeat 1 --warmup 1 --steps 2 --batch-sizes 1,2 --no-end-to-end --threads 1 "
      "--peak-tflops 0.5 --compare-reference --python " +
      quote(COPGEN_PYTHON) + " --reference-script " +
      quote(std::string(COPGEN_SOURCE_DIR) + "/scripts/research/reference_pipeline.py") + " --json " + quote(js) +
      " --svg " + quote(svg));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(r.output.find("wrote " + svg) != std::string::npos);
  const CommandResult parsed = run_command(quote(COPGEN_PYTHON) + " " +
                                           quote(std::string(COPGEN_SOURCE_DIR) + "/tests/browser/svg_bars.py") +
                                           " " + quote(svg));
  INFO(parsed.output);
  REQUIRE(parsed.exit_code == 0);
  const json bars = json::parse(parsed.output);
  const json figures = json::parse(read_file_bytes(js));
  CHECK(bars["root"] == "{http://www.w3.org/2000/svg}svg");
  REQUIRE(bars["panels"].size() == 2);
  for (const char* metric : {"calls_per_s", "mfu"}) {
    INFO(metric);
    const json& panel = bars["panels"][metric];
    REQUIRE(panel["copgen"].size() == 2);
    REQUIRE(panel["reference"].size() == 2);
    CHECK(panel["copgen_rows"] == json::array({0, 1}));
    CHECK(panel["reference_rows"] == json::array({0, 1}));
  }
  for (size_t i = 0; i < 2; ++i) {
    const json& row = figures["rows"][i];
    const double calls = row["network"]["calls_per_s"];
    CHECK(bars["panels"]["calls_per_s"]["copgen"][i].get<double>() == Approx(calls).epsilon(1e-5));
    CHECK(bars["panels"]["calls_per_s"]["reference"][i].get<double>() ==
          Approx(1.0 / row["reference"]["seconds_per_call"].get<double>()).epsilon(1e-5));
  }
  const auto& texts = bars["texts"];
  CHECK(std::count(texts.begin(), texts.end(), "fp32 B1") == 2);  // under its bars in each panel
  CHECK(std::count(texts.begin(), texts.end(), "fp32 B2") == 2);
  CHECK(std::count(texts.begin(), texts.end(), "Backbone calls per second") == 1);

  // without --peak-tflops and the reference: one panel, copgen's bars only
  const std::string plain = tmp.file("plain.svg");
  const CommandResult r2 = run_copgen("bench --devices cpu --repeat 1 --warmup 0 --batch-sizes 1 --no-end-to-end "
                                      "--threads 1 --svg " + quote(plain));
  INFO(r2.output);
  REQUIRE(r2.exit_code == 0);
  const CommandResult parsed2 = run_command(quote(COPGEN_PYTHON) + " " +
                                            quote(std::string(COPGEN_SOURCE_DIR) + "/tests/browser/svg_bars.py") +
                                            " " + quote(plain));
  REQUIRE(parsed2.exit_code == 0);
  const json bars2 = json::parse(parsed2.output);
  REQUIRE(bars2["panels"].size() == 1);
  CHECK(bars2["panels"]["calls_per_s"]["copgen"].size() == 1);
  CHECK(bars2["panels"]["calls_per_s"]["reference"].empty());
}

TEST_CASE("browser: bench's SVG chart renders with one bar per measured row", "[browser][report][bench]") {
  TempDir tmp;
  const std::string svg = tmp.file("bench.svg");
  const CommandResult r = run_copgen("bench --devices cpu --repeat 1 --warmup 0 --batch-sizes 1,2,3 --no-end-to-end "
                                     "--threads 1 --peak-tflops 0.5 --svg " + quote(svg));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const PageCheck p = open_in_browser(svg, "bench_chart",
                                      {{"bars", "rect.bar"}, {"copgen", "rect.bar.copgen"}, {"panels", "g.panel"}});
  if (p.skipped) return;
  check_static_page(p.page, 0);
  CHECK(p.page["content_type"] == "image/svg+xml");
  CHECK(p.page["counts"]["panels"] == 2);
  CHECK(p.page["counts"]["bars"] == 6);
  CHECK(p.page["counts"]["copgen"] == 6);
}
