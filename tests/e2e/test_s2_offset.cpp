// The Sentinel-2 +1000 offset with the real binary: a baseline-05.10 STAC item renders
// exactly as its bands given by hand with --s2-offset on, and not as with --s2-offset off;
// a translate records per input what was assumed (COPGEN_S2_OFFSET) and logs it.
#include "catch_torch.hpp"

#include <cstdio>
#include <cstdlib>
#include <fstream>

#include <gdal_priv.h>
#include <nlohmann/json.hpp>

#include "s2_bands.hpp"
#include "stac_item.hpp"
#include "support.hpp"

using namespace copgen::test;

namespace {

const std::string kFast = " --steps 2 --seed 3 --batch-size 16 ";

// B04, B03, B02 band files in tmp and a Planetary Computer-like item (baseline 05.10) of them.
std::string write_item(const TempDir& tmp) {
  write_s2_band(tmp.file("B04.tif"), 0);
  write_s2_band(tmp.file("B03.tif"), 1);
  write_s2_band(tmp.file("B02.tif"), 2);
  nlohmann::json item = s2_item("S2B_MSIL2A_20240419T095549_N0510_R122_T33TUF",
                                {{"B04", {{"href", "B04.tif"}}}, {"B03", {{"href", "B03.tif"}}},
                                 {"B02", {{"href", "B02.tif"}}}});
  item["properties"]["s2:processing_baseline"] = "05.10";
  std::ofstream(tmp.file("item.json")) << item.dump();
  return tmp.file("item.json");
}


}  // namespace

TEST_CASE("s2 offset: a baseline-05.10 item renders as its bands with --s2-offset on", "[e2e][s2offset]") {
  TempDir tmp;
  const std::string item = write_item(tmp);
  const std::string bands = tmp.file("B04.tif") + "," + tmp.file("B03.tif") + "," + tmp.file("B02.tif");
  const std::string log = render_s2l2a(item, tmp.file("a.tif"), "");
  CHECK_THAT(log, Catch::Contains("S2L2A input '" + item +
                                  "': DN offset 1000 (s2:processing_baseline 05.10 >= 04.00)"));
  render_s2l2a(bands, tmp.file("b.tif"), " --s2-offset on");
  const std::string plain = render_s2l2a(bands, tmp.file("c.tif"), "");
  CHECK_THAT(plain, Catch::Contains("no offset information; assuming none (--s2-offset on to subtract 1000)"));
  render_s2l2a(bands, tmp.file("d.tif"), " --s2-offset off");
  render_s2l2a(item, tmp.file("e.tif"), " --l2a-offset");  // the deprecated alias of on

  const auto a = pixels_of(tmp.file("a.tif")), b = pixels_of(tmp.file("b.tif"));
  const auto c = pixels_of(tmp.file("c.tif")), d = pixels_of(tmp.file("d.tif"));
  CHECK(a == b);
  CHECK(a == pixels_of(tmp.file("e.tif")));
  CHECK(c == d);  // nothing said: as --s2-offset off
  REQUIRE(a.size() == d.size());
  double diff = 0;
  for (std::size_t i = 0; i < a.size(); ++i) diff += std::abs(int{a[i]} - int{d[i]});
  diff /= static_cast<double>(a.size());
  std::printf("s2 offset: mean absolute difference, offset 1000 vs none: %.2f grey levels\n", diff);
  CHECK(diff > 10);

  Ds meta(tmp.file("a.tif"));
  CHECK(std::string(meta.ds->GetMetadataItem("COPGEN_S2_OFFSET")) ==
        "S2L2A:1000 (s2:processing_baseline 05.10 >= 04.00)");
  Ds none(tmp.file("c.tif"));
  CHECK(none.ds->GetMetadataItem("COPGEN_S2_OFFSET") == nullptr);  // as before: nothing said
}

TEST_CASE("s2 offset: translate records what it assumed of each input", "[e2e][s2offset]") {
  TempDir tmp;
  const std::string item = write_item(tmp);
  auto r = run_copgen("translate --input S2L2A=" + quote(item) + " --to S2L1C -o " + quote(tmp.file("o.tif")) + kFast);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("DN offset 1000 (s2:processing_baseline 05.10 >= 04.00)"));
  Ds o(tmp.file("o.tif"));
  CHECK(std::string(o.ds->GetMetadataItem("COPGEN_S2_OFFSET")) == "S2L2A:1000 (s2:processing_baseline 05.10 >= 04.00)");
  CHECK(std::string(o.ds->GetMetadataItem("COPGEN_L2A_OFFSET_ASSUMED")) == "1000");

  expect_copgen_failure("render --modality S2L2A -i " + quote(item) + " -o " + quote(tmp.file("x.tif")) +
                            " --s2-offset maybe",
                        2, {"--s2-offset: unknown mode 'maybe' (expected auto, on or off)"}, tmp.path);
  expect_copgen_failure("render --modality S2L2A -i " + quote(item) + " -o " + quote(tmp.file("x.tif")) +
                            " --s2-offset off --l2a-offset",
                        2, {"--l2a-offset is also given with --s2-offset off"}, tmp.path);
}
