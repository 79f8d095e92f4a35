// The pictures of runs in a real browser (browser.hpp: headless Chromium through
// tests/browser/page_check.py): a batch's contact sheet (index.html, its pages) and a
// --preview PNG. The files themselves (their pixels, escaping, links) are checked in
// test_preview.cpp; eval's report.html and bench's chart in test_report.cpp.
#include "catch_torch.hpp"

#include <filesystem>
#include <fstream>

#include <nlohmann/json.hpp>

#include "browser.hpp"
#include "copgen/raster_io.hpp"
#include "support.hpp"

using namespace copgen::test;
namespace fs = std::filesystem;

namespace {

const std::string kQuick = " --steps 2 --seed 3 ";

// in/S2L1C/: `good` synthetic tiles (a.png, b.png, ...) and one file that is no image,
// its name full of markup.
std::string make_batch_input(const TempDir& tmp, int good) {
  const std::string in = tmp.file("in");
  fs::create_directories(in + "/S2L1C");
  SyntheticRaster spec;
  spec.format = "PNG";
  spec.georeferenced = false;
  for (int i = 0; i < good; ++i) {
    spec.seed = 60 + i;
    write_synthetic(in + "/S2L1C/" + std::string(1, static_cast<char>('a' + i)) + ".png", spec);
  }
  std::ofstream(in + "/S2L1C/x<b>&amp.png") << "\x89PNG\r\n\x1a\n not a PNG";
  return in;
}

}  // namespace

TEST_CASE("browser: a batch's index.html - one row per tuple, the failed one marked, every picture loads",
          "[browser][batch][preview]") {
  TempDir tmp;
  const std::string in = make_batch_input(tmp, 4);
  const std::string out = tmp.file("out");
  const CommandResult r = run_copgen("translate --input-dir " + quote(in) + " --from S2L1C --to S2L2A" + kQuick +
                                     "--output-dir " + quote(out));
  INFO(r.output);
  REQUIRE(r.exit_code == 3);  // the tuple that is no image
  const PageCheck p = open_in_browser(out + "/index.html", "batch_index",
                                      {{"entries", "tr.entry"}, {"failed", "tr.entry.failed"},
                                       {"errors", "tr.entry.failed .error"}});
  if (p.skipped) return;
  check_static_page(p.page, 4 * 2);  // each done tuple: its input and its output
  CHECK(p.page["counts"]["entries"] == 5);
  CHECK(p.page["counts"]["failed"] == 1);
  CHECK(p.page["counts"]["errors"] == 1);
}

TEST_CASE("browser: a contact sheet's pages each load their own pictures", "[browser][batch][preview]") {
  TempDir tmp;
  const std::string in = make_batch_input(tmp, 3);
  const std::string out = tmp.file("out");
  const CommandResult r = run_copgen("translate --input-dir " + quote(in) + " --from S2L1C --to S2L2A" + kQuick +
                                     "--output-dir " + quote(out) + " --index-page-size 2");
  INFO(r.output);
  REQUIRE(r.exit_code == 3);
  // keys in order: a, b | c, x<b>&amp (failed)
  const std::vector<std::pair<std::string, int>> pages = {{"index.html", 4}, {"index-2.html", 2}};
  for (const auto& [page, images] : pages) {
    INFO(page);
    const PageCheck p = open_in_browser(out + "/" + page, "batch_pages_" + fs::path(page).stem().string(),
                                        {{"entries", "tr.entry"}, {"page_links", "nav.pages a"}});
    if (p.skipped) return;
    check_static_page(p.page, static_cast<std::size_t>(images));
    CHECK(p.page["counts"]["entries"] == 2);
  }
}

TEST_CASE("browser: a --preview PNG opens as an image of its own size", "[browser][preview]") {
  TempDir tmp;
  SyntheticRaster spec;
  write_synthetic(tmp.file("in.tif"), spec);
  const CommandResult r = run_copgen("translate --from S2L1C --to S2L2A,DEM" + kQuick + "-i " + quote(tmp.file("in.tif")) +
                                     " -o " + quote(tmp.file("out/")) + " --preview " + quote(tmp.file("p.png")));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const copgen::ImageU8 png = copgen::read_image_u8(tmp.file("p.png"), "preview");
  const PageCheck p = open_in_browser(tmp.file("p.png"), "preview_page");
  if (p.skipped) return;
  check_static_page(p.page, 1);
  CHECK(p.page["images"][0]["naturalWidth"] == png.width);
  CHECK(p.page["images"][0]["naturalHeight"] == png.height);
}
