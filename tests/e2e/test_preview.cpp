// End-to-end: pictures of runs (issue 23, item 2). --preview of translate (tiles and
// scenes) and generate: the PNG read back with GDAL, panel by panel against the given
// rendering and the generated GeoTIFF (exact bytes, downsampled by pictures.hpp's rule),
// nodata drawn as the checkerboard; a bad --preview refused by the output gate before any
// work. The batch contact sheet: one entry per tuple, failures escaped, pages, links that
// resolve, --no-index.
#include "catch_torch.hpp"

#include <filesystem>
#include <fstream>
#include <regex>
#include <set>

#include <gdal_priv.h>

#include "copgen/pictures.hpp"
#include "support.hpp"

using namespace copgen::test;
namespace fs = std::filesystem;

namespace {

const std::string kQuick = " --steps 2 --seed 3 ";

// An 8-bit raster read whole with GDAL: its bands, size and band 1's validity.
struct Picture {
  int width = 0, height = 0, bands = 0;
  std::vector<std::vector<std::uint8_t>> band;  // [b][y * width + x]
  std::vector<std::uint8_t> valid;              // band 1's mask, 255 valid
  std::uint8_t at(int b, int x, int y) const { return band[static_cast<size_t>(b)][static_cast<size_t>(y) * width + x]; }
};

Picture read_picture(const std::string& path) {
  Ds d(path);
  REQUIRE(d.ds != nullptr);
  Picture p;
  p.width = d.ds->GetRasterXSize();
  p.height = d.ds->GetRasterYSize();
  p.bands = d.ds->GetRasterCount();
  for (int b = 1; b <= p.bands; ++b) p.band.push_back(band(d.ds, b));
  p.valid.resize(static_cast<size_t>(p.width) * p.height);
  REQUIRE(d.ds->GetRasterBand(1)->GetMaskBand()->RasterIO(GF_Read, 0, 0, p.width, p.height, p.valid.data(), p.width,
                                                           p.height, GDT_Byte, 0, 0) == CE_None);
  return p;
}

// The test's own block mean (pictures.hpp's rule, written again): band b at (ox, oy), or -1
// for a block without a valid pixel.
int block_mean(const Picture& p, int b, int ox, int oy, int f) {
  long sum = 0, n = 0;
  for (int y = oy * f; y < std::min(p.height, oy * f + f); ++y) {
    for (int x = ox * f; x < std::min(p.width, ox * f + f); ++x) {
      if (p.valid[static_cast<size_t>(y) * p.width + x] == 0) continue;
      sum += p.at(b, x, y);
      ++n;
    }
  }
  return n == 0 ? -1 : static_cast<int>((sum + n / 2) / n);
}

// Counts the pixels of the panel at (x0, y0) of `preview` that differ from `source`
// downsampled by f (nodata blocks: the checkerboard).
long panel_mismatches(const Picture& preview, int x0, int y0, const Picture& source, int f) {
  const int w = (source.width + f - 1) / f, h = (source.height + f - 1) / f;
  long bad = 0;
  for (int y = 0; y < h; ++y) {
    for (int x = 0; x < w; ++x) {
      for (int b = 0; b < 3; ++b) {
        const int want = block_mean(source, b, x, y, f);
        const int expect = want >= 0 ? want : copgen::nodata_colour(x, y)[static_cast<size_t>(b)];
        if (preview.at(b, x0 + x, y0 + y) != expect) ++bad;
      }
    }
  }
  return bad;
}

// A 256 x 256 tile whose top-left 40 x 24 pixels are nodata (value 0 in every band).
void write_tile_with_nodata(const std::string& path) {
  write_synthetic(path, SyntheticRaster{});
  GDALAllRegister();
  auto* ds = static_cast<GDALDataset*>(GDALOpen(path.c_str(), GA_Update));
  REQUIRE(ds != nullptr);
  std::vector<std::uint8_t> zeros(40 * 24, 0);
  for (int b = 1; b <= 3; ++b) {
    GDALRasterBand* band = ds->GetRasterBand(b);
    REQUIRE(band->RasterIO(GF_Write, 0, 0, 40, 24, zeros.data(), 40, 24, GDT_Byte, 0, 0) == CE_None);
    band->SetNoDataValue(0);
  }
  GDALClose(ds);
}

// Every href="..." and src="..." of a page, %XX decoded and HTML entities of & undone.
std::vector<std::string> links_of(const std::string& html) {
  std::vector<std::string> out;
  const std::regex attr("(?:href|src)=\"([^\"]*)\"");
  for (auto it = std::sregex_iterator(html.begin(), html.end(), attr); it != std::sregex_iterator(); ++it) {
    std::string v = (*it)[1].str(), decoded;
    for (std::size_t i = 0; i < v.size(); ++i) {
      if (v[i] == '%' && i + 2 < v.size()) {
        decoded += static_cast<char>(std::stoi(v.substr(i + 1, 2), nullptr, 16));
        i += 2;
      } else {
        decoded += v[i];
      }
    }
    out.push_back(decoded);
  }
  return out;
}

int count_of(const std::string& text, const std::string& what) {
  int n = 0;
  for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("preview: a tile translate's halves are the given and the generated rasters, nodata checkered", "[preview]") {
  TempDir tmp;
  write_tile_with_nodata(tmp.file("in.tif"));
  const auto r = run_copgen("translate --from S2L1C --to S2L2A" + kQuick + "-i " + quote(tmp.file("in.tif")) + " -o " +
                            quote(tmp.file("out.tif")) + " --preview " + quote(tmp.file("p.png")));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK(list_dir(tmp.path) == std::vector<std::string>{"in.tif", "out.tif", "p.png"});  // no side-car
  const Picture png = read_picture(tmp.file("p.png"));
  CHECK(png.bands == 3);
  CHECK(png.width == 2 * 256 + copgen::kPanelGap);
  CHECK(png.height == copgen::kLabelHeight + 256);
  const Picture given = read_picture(tmp.file("in.tif")), out = read_picture(tmp.file("out.tif"));
  CHECK(given.valid[0] == 0);  // the fixture's nodata
  CHECK(out.valid[0] == 0);    // carried to the output's mask
  CHECK(panel_mismatches(png, 0, copgen::kLabelHeight, given, 1) == 0);
  CHECK(panel_mismatches(png, 256 + copgen::kPanelGap, copgen::kLabelHeight, out, 1) == 0);
  // nodata: the checkerboard (both colours), never image content
  CHECK(png.at(0, 0, copgen::kLabelHeight) == copgen::kNodataA[0]);
  CHECK(png.at(1, 8, copgen::kLabelHeight) == copgen::kNodataB[1]);
  CHECK(png.at(2, 256 + copgen::kPanelGap + 9, copgen::kLabelHeight + 9) == copgen::kNodataA[2]);
  // the gap and the label strip are background, with some label text in it
  CHECK(png.at(0, 256, copgen::kLabelHeight + 100) == copgen::kBackground);
  int dark = 0;
  for (int y = 0; y < copgen::kLabelHeight; ++y) {
    for (int x = 0; x < 256; ++x) dark += png.at(0, x, y) == 0 ? 1 : 0;
  }
  CHECK(dark > 20);
}

TEST_CASE("preview: --samples 2 gives one row per sample; generate's preview holds its outputs", "[preview]") {
  TempDir tmp;
  write_synthetic(tmp.file("in.tif"), SyntheticRaster{});
  auto r = run_copgen("translate --from S2L1C --to S2L2A,DEM --samples 2" + kQuick + "-i " + quote(tmp.file("in.tif")) +
                      " -o " + quote(tmp.file("out/")) + " --preview " + quote(tmp.file("p.png")));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  Picture png = read_picture(tmp.file("p.png"));
  const int step = 256 + copgen::kPanelGap;
  CHECK(png.width == 3 * 256 + 2 * copgen::kPanelGap);
  CHECK(png.height == copgen::kLabelHeight + 2 * 256 + copgen::kPanelGap);
  const Picture given = read_picture(tmp.file("in.tif"));
  for (int k = 0; k < 2; ++k) {
    const int y0 = copgen::kLabelHeight + k * step;
    CHECK(panel_mismatches(png, 0, y0, given, 1) == 0);
    // columns: the given S2L1C, then the generated ones in modality order (DEM, S2L2A)
    CHECK(panel_mismatches(png, step, y0, read_picture(tmp.file("out/DEM_s" + std::to_string(k) + ".tif")), 1) == 0);
    CHECK(panel_mismatches(png, 2 * step, y0, read_picture(tmp.file("out/S2L2A_s" + std::to_string(k) + ".tif")), 1) ==
          0);
  }

  r = run_copgen("generate --to S1RTC -n 1" + kQuick + "-o " + quote(tmp.file("g.tif")) + " --preview " +
                 quote(tmp.file("g.png")));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  png = read_picture(tmp.file("g.png"));
  CHECK(png.width == 256);
  CHECK(panel_mismatches(png, 0, copgen::kLabelHeight, read_picture(tmp.file("g.tif")), 1) == 0);
}

TEST_CASE("preview: a scene wider than 2048 pixels is downsampled to fit, block means of rendering and output",
          "[preview]") {
  TempDir tmp;
  SyntheticRaster spec;
  spec.width = 2100;
  spec.height = 256;
  spec.seed = 9;
  write_synthetic(tmp.file("scene.tif"), spec);
  const auto r = run_copgen("translate --from S2L1C --to S2L2A" + kQuick + "--batch-size 8 -i " +
                            quote(tmp.file("scene.tif")) + " -o " + quote(tmp.file("out.tif")) + " --preview " +
                            quote(tmp.file("p.png")));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  // two panels: 2 * ceil(2100 / f) + gap <= 2048 first holds for f = 3
  const int f = 3;
  CHECK(copgen::preview_factor(2100, 2) == f);
  const Picture png = read_picture(tmp.file("p.png"));
  CHECK(png.width == 2 * 700 + copgen::kPanelGap);
  CHECK(png.width <= copgen::kPreviewMaxWidth);
  CHECK(png.height == copgen::kLabelHeight + (256 + f - 1) / f);
  // the scene is a thumbnail on its own grid: its rendering is its pixels
  CHECK(panel_mismatches(png, 0, copgen::kLabelHeight, read_picture(tmp.file("scene.tif")), f) == 0);
  CHECK(panel_mismatches(png, 700 + copgen::kPanelGap, copgen::kLabelHeight, read_picture(tmp.file("out.tif")), f) ==
        0);
}

TEST_CASE("preview: a bad --preview is refused by the output gate before any work", "[preview]") {
  TempDir tmp;
  write_synthetic(tmp.file("in.tif"), SyntheticRaster{});
  SyntheticRaster png_spec;
  png_spec.format = "PNG";
  png_spec.georeferenced = false;
  write_synthetic(tmp.file("in.png"), png_spec);
  const std::string base = "translate --from S2L1C --to S2L2A" + kQuick + "-o " + quote(tmp.file("o.tif")) + " ";
  SECTION("its folder is missing") {
    expect_copgen_failure(base + "-i " + quote(tmp.file("in.tif")) + " --preview " + quote(tmp.file("no/p.png")), 5,
                          {"--preview", "does not exist"}, tmp.path);
  }
  SECTION("it is the input") {
    expect_copgen_failure(base + "-i " + quote(tmp.file("in.png")) + " --preview " + quote(tmp.file("in.png")) +
                              " --overwrite",
                          5, {"--preview", "the same file as the input"}, tmp.path);
  }
  SECTION("it exists, without --overwrite") {
    std::ofstream(tmp.file("p.png")) << "an earlier picture";
    expect_copgen_failure(base + "-i " + quote(tmp.file("in.tif")) + " --preview " + quote(tmp.file("p.png")), 5,
                          {"--preview", "exists (use --overwrite to replace it)"}, tmp.path);
    CHECK(read_file_bytes(tmp.file("p.png")) == "an earlier picture");
  }
  SECTION("it is not a .png") {
    expect_copgen_failure(base + "-i " + quote(tmp.file("in.tif")) + " --preview " + quote(tmp.file("p.tif")), 2,
                          {"--preview", "name it with .png"}, tmp.path);
  }
  SECTION("it is the folder of another output") {
    expect_copgen_failure(base + "-i " + quote(tmp.file("in.tif")) + " --save-latents " + quote(tmp.file("l.png")) +
                              " --preview " + quote(tmp.file("l.png")),
                          2, {"--preview", "give each output its own path"}, tmp.path);
  }
  SECTION("in batch mode") {
    expect_copgen_failure("translate --inputs-from " + quote(tmp.file("list.txt")) + " --from S2L1C --output-dir " +
                              quote(tmp.file("out")) + " --preview " + quote(tmp.file("p.png")),
                          2, {"--preview", "index.html"}, tmp.path);
  }
  CHECK(!file_exists(tmp.file("o.tif")));
}

TEST_CASE("preview: a batch writes index.html - every tuple, failures escaped, pages, links that resolve",
          "[preview][batch]") {
  TempDir tmp;
  SyntheticRaster spec;
  spec.format = "PNG";
  spec.georeferenced = false;
  fs::create_directories(tmp.file("in/S2L1C"));
  const std::vector<std::string> names = {"a", "b c", "d#1", "e", "f"};
  for (std::size_t i = 0; i < names.size(); ++i) {
    spec.seed = 40 + static_cast<int>(i);
    write_synthetic(tmp.file("in/S2L1C/" + names[i] + ".png"), spec);
  }
  // a tuple whose input is no image, its name full of markup
  std::ofstream(tmp.file("in/S2L1C/x<b>&amp.png")) << "\x89PNG\r\n\x1a\n not a PNG";
  const std::string out = tmp.file("out");
  const std::string cmd = "translate --input-dir " + quote(tmp.file("in")) + " --from S2L1C --to S2L2A" + kQuick +
                          "--output-dir " + quote(out) + " --index-page-size 2";
  auto r = run_copgen(cmd);
  INFO(r.output);
  REQUIRE(r.exit_code == 3);  // the failed tuple
  // 6 tuples, 2 a page: three pages
  REQUIRE(list_dir(out) ==
          std::vector<std::string>{".index", "S2L2A", "copgen-report.json", "index-2.html", "index-3.html", "index.html"});
  std::string all;
  int entries = 0;
  for (const std::string page : {"index.html", "index-2.html", "index-3.html"}) {
    const std::string html = read_file_bytes(out + "/" + page);
    INFO(page << "\n" << html);
    CHECK(count_of(html, "<tr class=\"entry") == 2);
    entries += count_of(html, "<tr class=\"entry");
    CHECK(html.find("<script") == std::string::npos);
    CHECK(html.find("http://") == std::string::npos);
    CHECK(html.find("https://") == std::string::npos);
    for (const std::string& link : links_of(html)) {
      INFO(link);
      CHECK(fs::exists(fs::path(out) / link));
    }
    all += html;
  }
  CHECK(entries == 6);
  // the failed tuple: marked, its key and error escaped
  CHECK(count_of(all, "<tr class=\"entry failed\">") == 1);
  CHECK(all.find("x&lt;b&gt;&amp;amp") != std::string::npos);
  CHECK(all.find("x<b>") == std::string::npos);
  CHECK(count_of(all, "<div class=\"error\">") == 1);
  // every done tuple shows its input and its output; the links are to the GeoTIFFs
  CHECK(count_of(all, ".png\" alt=") == 5 * 2);
  CHECK(all.find("href=\"S2L2A/b%20c.tif\"") != std::string::npos);
  CHECK(all.find("href=\"S2L2A/d%231.tif\"") != std::string::npos);
  // pages link one another
  CHECK(all.find("href=\"index-3.html\"") != std::string::npos);

  // a rerun (every tuple complete but the failed one) writes the same pages
  const std::string first = read_file_bytes(out + "/index.html");
  r = run_copgen(cmd);
  CHECK(r.exit_code == 3);
  CHECK(read_file_bytes(out + "/index.html") == first);

  // --no-index: no page, no picture
  r = run_copgen("translate --input-dir " + quote(tmp.file("in")) + " --from S2L1C --to S2L2A" + kQuick +
                 "--output-dir " + quote(tmp.file("out2")) + " --no-index");
  CHECK(r.exit_code == 3);
  CHECK(list_dir(tmp.file("out2")) == std::vector<std::string>{"S2L2A", "copgen-report.json"});
}
