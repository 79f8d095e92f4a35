// Pictures (pictures.hpp), the contact sheet's HTML (contact_sheet.hpp) and HTML escaping
// (html.hpp): the rules with exact expectations.
#include "catch_torch.hpp"

#include "copgen/contact_sheet.hpp"
#include "copgen/html.hpp"
#include "copgen/pictures.hpp"

using namespace copgen;

namespace {

ImageU8 image(int w, int h, int bands, std::vector<std::uint8_t> pixels, std::vector<std::uint8_t> valid = {}) {
  ImageU8 i;
  i.width = w;
  i.height = h;
  i.bands = bands;
  i.pixels = std::move(pixels);
  i.valid = std::move(valid);
  return i;
}

int count_of(const std::string& text, const std::string& what) {
  int n = 0;
  for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
  return n;
}

}  // namespace

TEST_CASE("pictures: block means over valid pixels, rounded half up; empty blocks are nodata", "[preview]") {
  // 3 x 2, one band, factor 2: blocks {0,1,3,4} {2,5} 
  const ImageU8 in = image(3, 2, 1, {10, 11, 200, 13, 15, 201}, {255, 255, 0, 255, 0, 0});
  const ImageU8 out = downsample(in, 2);
  CHECK(out.width == 2);
  CHECK(out.height == 1);
  CHECK(out.pixels[0] == 11);  // (10 + 11 + 13 + 1) / 3 = 11.33 -> 11
  CHECK(out.valid == std::vector<std::uint8_t>{255, 0});
  // rounding half up: (1 + 2) / 2 = 1.5 -> 2
  CHECK(downsample(image(2, 1, 1, {1, 2}), 2).pixels == std::vector<std::uint8_t>{2});
  CHECK(downsample(image(2, 1, 1, {1, 2}), 2).valid.empty());
  CHECK(downsample(in, 1).pixels == in.pixels);
  CHECK_THROWS_AS(downsample(in, 0), std::invalid_argument);
}

TEST_CASE("pictures: the factor keeps the whole preview within 2048 pixels", "[preview]") {
  CHECK(preview_factor(256, 4) == 1);
  CHECK(preview_factor(1022, 2) == 1);  // 2 * 1022 + 4 = 2048
  CHECK(preview_factor(1023, 2) == 2);
  CHECK(preview_factor(2100, 2) == 3);
  CHECK(preview_factor(10000, 4) == 20);  // 4 * 500 + 12 = 2012
  CHECK(thumbnail_factor(256, 256, 128) == 2);
  CHECK(thumbnail_factor(300, 100, 128) == 3);
  CHECK(thumbnail_factor(100, 50, 128) == 1);
}

TEST_CASE("pictures: nodata is a fixed checkerboard; compose lays panels out as documented", "[preview]") {
  CHECK(nodata_colour(0, 0) == kNodataA);
  CHECK(nodata_colour(kNodataCell, 0) == kNodataB);
  CHECK(nodata_colour(kNodataCell, kNodataCell) == kNodataA);
  const ImageU8 a = image(2, 2, 3, std::vector<std::uint8_t>(12, 7), {255, 0, 255, 255});
  const ImageU8 b = image(2, 2, 1, {1, 2, 3, 4});
  const ImageU8 out = compose_preview({{{"A", a}, {"B", b}}, {{"A", a}, {"B", ImageU8{}}}});
  CHECK(out.width == 2 * 2 + kPanelGap);
  CHECK(out.height == kLabelHeight + 2 * 2 + kPanelGap);
  const std::size_t n = static_cast<std::size_t>(out.width) * out.height;
  const auto px = [&](int band, int x, int y) { return out.pixels[band * n + static_cast<std::size_t>(y) * out.width + x]; };
  CHECK(px(0, 0, kLabelHeight) == 7);
  CHECK(px(0, 1, kLabelHeight) == kNodataA[0]);  // a's nodata pixel (1, 0)
  CHECK(px(1, 1, kLabelHeight) == kNodataA[1]);
  CHECK(px(2, 2 + kPanelGap + 1, kLabelHeight + 1) == 4);  // grey b in every band
  CHECK(px(0, 2, kLabelHeight) == kBackground);            // the gap
  CHECK(px(0, 2 + kPanelGap, kLabelHeight + 2 + kPanelGap) == kNodataA[0]);  // no pixels: all nodata
  CHECK_THROWS_AS(compose_preview({{{"A", a}, {"B", image(3, 2, 1, std::vector<std::uint8_t>(6))}}}),
                  std::invalid_argument);
  CHECK_THROWS_AS(compose_preview({{{"A", a}}, {{"A", a}, {"B", b}}}), std::invalid_argument);
}

TEST_CASE("html: text and hrefs are escaped", "[preview]") {
  CHECK(html_escape("a<b>&\"c'") == "a&lt;b&gt;&amp;&quot;c&#39;");
  CHECK(html_escape("é") == "é");
  CHECK(url_escape("S2L2A/a b#1?%.tif") == "S2L2A/a%20b%231%3F%25.tif");
  CHECK(url_escape("\xc3\xa9") == "%C3%A9");
}

TEST_CASE("contact sheet: pages split at the page size and link one another", "[preview]") {
  CHECK(contact_sheet_page_names("index", 0, 100) == std::vector<std::string>{"index.html"});
  CHECK(contact_sheet_page_names("index", 5, 2) ==
        std::vector<std::string>{"index.html", "index-2.html", "index-3.html"});
  std::vector<SheetEntry> entries;
  for (int i = 0; i < 5; ++i) {
    SheetEntry e;
    e.key = "k" + std::to_string(i);
    e.state = "done";
    e.pictures = {{"S2L1C (given)", ".index/k/S2L1C-given.png", "in dir/k.tif", ""}, {"S2L2A", "", "", "not written"}};
    entries.push_back(e);
  }
  entries[3].state = "failed";
  entries[3].error = "input '<x>' & co";
  const auto names = contact_sheet_page_names("index", entries.size(), 2);
  const std::string p1 = contact_sheet_page("run <1>", entries, 1, 2, names);
  CHECK(count_of(p1, "<tr class=\"entry") == 2);
  CHECK(p1.find("k2") != std::string::npos);
  CHECK(p1.find("k1<") == std::string::npos);
  CHECK(p1.find("<title>run &lt;1&gt;</title>") != std::string::npos);
  CHECK(p1.find("input &#39;&lt;x&gt;&#39; &amp; co") != std::string::npos);
  CHECK(p1.find("<tr class=\"entry failed\">") != std::string::npos);
  CHECK(p1.find("href=\"in%20dir/k.tif\"") != std::string::npos);
  CHECK(p1.find("<a href=\"index.html\">1</a>") != std::string::npos);
  CHECK(p1.find("<strong>2</strong>") != std::string::npos);
  CHECK(p1.find("not written") != std::string::npos);
  CHECK(p1.find("<script") == std::string::npos);
  const std::string p3 = contact_sheet_page("run", entries, 2, 2, names);
  CHECK(count_of(p3, "<tr class=\"entry") == 1);
}
