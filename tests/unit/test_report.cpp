// The pages and charts copgen writes for people, as text: eval's report.html and bench's
// SVG chart escape every string they are given and hold one element per row. (The browser
// opens them in tests/e2e/test_report.cpp.)
#include "catch_torch.hpp"

#include "copgen/bench.hpp"
#include "copgen/evaluation.hpp"

using copgen::Modality;

namespace {

size_t count_of(const std::string& text, const std::string& what) {
  size_t n = 0;
  for (size_t at = text.find(what); at != std::string::npos; at = text.find(what, at + what.size())) ++n;
  return n;
}

copgen::EvalResult hostile_result() {
  copgen::EvalResult r;
  r.provenance = {{"copgen_version", "0.1.0"},
                  {"models", {{"dir", "/m/<script>alert(1)</script>"}, {"sha256", "abc"}}},
                  {"seed", 7},
                  {"sampler", {{"solver", "dpm-solver-fast"}, {"steps", 2}}},
                  {"k", 3},
                  {"test_set", {{"root", "/data/a&b \"q\" 'r'"}, {"tuples", 1}}}};
  r.precision = "backbone fp32, autoencoder fp32";
  copgen::EvalRow row;
  row.condition = copgen::EvalCondition{{Modality::S2L2A}};
  for (Modality m : row.condition.generated()) row.scores[m] = copgen::SetScores{12.5, 0.5, 0.25, 0.3333, 4, 4};
  row.examples.push_back({{Modality::DEM, "report/S2L2A-0-DEM.png"},
                          {Modality::S1RTC, "report/S2L2A-0-S1RTC.png"},
                          {Modality::S2L1C, "report/S2L2A-0-S2L1C.png"}});
  r.rows.push_back(row);
  copgen::EvalExample ex;
  ex.key = "<img src=x onerror=alert(1)>";
  for (Modality m : copgen::kAllModalities) ex.real[m] = "report/real-0-" + copgen::modality_name(m) + ".png";
  r.examples.push_back(ex);
  return r;
}

}  // namespace

TEST_CASE("eval report: every string is escaped - keys, paths and provenance are text", "[report][eval]") {
  const std::string html = copgen::eval_report_html(hostile_result());
  CHECK(html.rfind("<!DOCTYPE html>\n", 0) == 0);
  CHECK(html.find("<script") == std::string::npos);
  CHECK(html.find("<img src=x") == std::string::npos);
  CHECK(html.find("&lt;script&gt;alert(1)&lt;/script&gt;") != std::string::npos);
  CHECK(html.find("&lt;img src=x onerror=alert(1)&gt;") != std::string::npos);
  CHECK(html.find("/data/a&amp;b &quot;q&quot; &#39;r&#39;") != std::string::npos);
  // one given + three generated and real pictures per example tuple
  CHECK(count_of(html, "<img class=\"tile\"") == 1 + 2 * 3);
  CHECK(html.find("src=\"report/real-0-S2L2A.png\"") != std::string::npos);
  CHECK(html.find("src=\"report/S2L2A-0-DEM.png\"") != std::string::npos);
  // the row, the paper's row and the difference, whatever --compare-paper said
  CHECK(count_of(html, "<tr class=\"measured\">") == 1);
  CHECK(count_of(html, "<tr class=\"paper\">") == 1);
  CHECK(count_of(html, "<tr class=\"difference\">") == 1);
  // row S2L2A, FID DEM: measured 12.5, paper 36.70
  CHECK(html.find("<td class=\"num metric\">12.50</td>") != std::string::npos);
  CHECK(html.find("<td class=\"num metric\">-24.20</td>") != std::string::npos);
}

TEST_CASE("eval report: table1_html has one tbody row per table line", "[report][eval]") {
  copgen::EvalResult r = hostile_result();
  copgen::EvalRow extra;
  extra.condition = copgen::EvalCondition{{Modality::DEM, Modality::S1RTC}};
  for (Modality m : extra.condition.generated()) extra.scores[m] = copgen::SetScores{1, 1, 1, 1, 4, 4};
  r.rows.push_back(extra);
  const std::string with = copgen::table1_html(r, true), without = copgen::table1_html(r, false);
  CHECK(count_of(with, "<tr class=") == 4);  // S2L2A: measured, paper, difference; DEM+S1RTC: measured
  CHECK(count_of(without, "<tr class=") == 2);
  CHECK(count_of(with, "<td class=\"na") == 4 + 4 + 4 + 2 * 4);  // NA where given: S2L2A x3 lines, DEM+S1RTC
  CHECK(with.find("<td>DEM+S1RTC</td>") != std::string::npos);
}

TEST_CASE("bench chart: one bar per measured row, none for skipped ones, labels escaped", "[report][bench]") {
  copgen::BenchReport r;
  r.copgen_version = "0.1.0";
  r.torch_version = "1.13";
  r.models_source = "tiny <random> & \"small\"";
  r.peak_tflops = 2.0;
  auto row = [](const std::string& precision, int b, double calls, double mfu) {
    copgen::BenchRow x;
    x.device = "cpu";
    x.precision = precision;
    x.batch_size = b;
    x.calls_per_s = calls;
    x.seconds_per_call = 1.0 / calls;
    x.mfu = mfu;
    return x;
  };
  r.rows.push_back(row("fp32", 1, 10.0, 0.01));
  r.rows.push_back(row("fp32", 4, 4.0, 0.02));
  copgen::BenchRow skipped = row("bf16", 1, 1.0, -1);
  skipped.skipped = "bf16 needs a GPU";
  r.rows.push_back(skipped);
  std::string svg = copgen::bench_svg(r);
  CHECK(svg.rfind("<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<svg xmlns=\"http://www.w3.org/2000/svg\"", 0) == 0);
  CHECK(count_of(svg, "<rect class=\"bar copgen\"") == 2 * 2);  // calls/s and MFU panels
  CHECK(count_of(svg, "<rect class=\"bar reference\"") == 0);
  CHECK(count_of(svg, "<g class=\"panel\"") == 2);
  CHECK(svg.find("data-value=\"10\"") != std::string::npos);
  CHECK(svg.find("data-value=\"2\"") != std::string::npos);  // MFU of the second row, percent
  CHECK(svg.find("tiny &lt;random&gt; &amp; &quot;small&quot;") != std::string::npos);
  CHECK(svg.find("<random>") == std::string::npos);
  CHECK(svg.find("bf16") == std::string::npos);

  // the reference beside: calls/s from its time per call; no peak, no MFU panel
  r.peak_tflops = 0;
  for (auto& x : r.rows) {
    x.mfu = -1;
    copgen::ReferenceFigures f;
    f.seconds_per_call = 0.5;
    x.reference = f;
  }
  svg = copgen::bench_svg(r);
  CHECK(count_of(svg, "<g class=\"panel\"") == 1);
  CHECK(count_of(svg, "<rect class=\"bar copgen\"") == 2);
  CHECK(count_of(svg, "<rect class=\"bar reference\"") == 2);
  CHECK(count_of(svg, "data-value=\"2\"") == 2);  // 1 / 0.5 s
}
