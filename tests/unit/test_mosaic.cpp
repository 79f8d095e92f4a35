// Mosaics of several inputs of one modality (docs/scenes.md, "A region across two tiles"):
// the order parts are stacked in (--mosaic-order listed|recent), what each covers of the
// region, and what the log and the outputs' metadata say of them.
#include "catch_torch.hpp"

#include <string>
#include <vector>

#include "copgen/error.hpp"
#include "copgen/scene.hpp"

using namespace copgen;

namespace {

ModalityInput part(const std::string& label, const std::string& datetime, double offset = 0.0) {
  ModalityInput in;
  in.modality = Modality::S2L2A;
  in.label = label;
  in.kind = InputKind::Physical;
  in.files = {label + "/B04.tif", label + "/B03.tif", label + "/B02.tif"};
  in.bands = {1, 1, 1};
  in.datetime = datetime;
  in.dn_offset = offset;
  in.offset_source = offset > 0 ? "s2:processing_baseline 05.10 >= 04.00" : "none";
  return in;
}

}  // namespace

TEST_CASE("mosaic order: listed keeps the order given, recent puts the most recent on top", "[mosaic]") {
  const std::vector<ModalityInput> parts = {part("a", "2023-06-01T10:00:00"), part("b", "2024-06-01T10:00:00"),
                                            part("c", "2023-06-01T10:00:00"), part("d", "2024-01-01T00:00:00")};
  CHECK(mosaic_order_of(parts, MosaicOrder::Listed) == std::vector<std::size_t>{0, 1, 2, 3});
  // equal dates (a, c) stay as listed
  CHECK(mosaic_order_of(parts, MosaicOrder::Recent) == std::vector<std::size_t>{1, 3, 0, 2});
}

TEST_CASE("mosaic order: recent is refused for a part without a date, naming it", "[mosaic]") {
  const std::vector<ModalityInput> parts = {part("a", "2023-06-01T10:00:00"), part("undated.tif", "")};
  CHECK(mosaic_order_of(parts, MosaicOrder::Listed) == std::vector<std::size_t>{0, 1});
  CHECK_THROWS_MATCHES(mosaic_order_of(parts, MosaicOrder::Recent), UsageError,
                       Catch::Message("--mosaic-order recent: S2L2A input 'undated.tif' carries no date (a STAC "
                                      "item's datetime, or _YYYYMMDDTHHMMSS_ in a product's name); give the inputs "
                                      "top first with --mosaic-order listed"));
}

TEST_CASE("mosaic order: parse and name", "[mosaic]") {
  CHECK(parse_mosaic_order("listed") == MosaicOrder::Listed);
  CHECK(parse_mosaic_order("recent") == MosaicOrder::Recent);
  CHECK(mosaic_order_name(MosaicOrder::Recent) == "recent");
  CHECK_THROWS_MATCHES(parse_mosaic_order("newest"), UsageError,
                       Catch::Message("--mosaic-order: unknown order 'newest' (expected listed or recent)"));
}

TEST_CASE("mosaic input: parts top first, their files, the largest offset; thumbnails and bands do not mix",
          "[mosaic]") {
  const ModalityInput m = mosaic_input({part("a", "2023-06-01T10:00:00"), part("b", "2024-06-01T10:00:00", 1000.0)},
                                       MosaicOrder::Recent);
  REQUIRE(m.parts.size() == 2);
  CHECK(m.parts[0].label == "b");
  CHECK(m.parts[1].label == "a");
  CHECK(m.label == "b + a");
  CHECK(m.modality == Modality::S2L2A);
  CHECK(m.kind == InputKind::Physical);
  CHECK(m.files == std::vector<std::string>{"b/B04.tif", "b/B03.tif", "b/B02.tif", "a/B04.tif", "a/B03.tif",
                                            "a/B02.tif"});
  CHECK(m.dn_offset == 1000.0);
  CHECK(m.datetime == "2024-06-01T10:00:00");
  CHECK(mosaic_record({m}, MosaicOrder::Recent) == "S2L2A: 'b' over 'a' (--mosaic-order recent)");
  // each part says its own offset
  CHECK(s2_offset_record({m}) == "S2L2A:1000 (s2:processing_baseline 05.10 >= 04.00); S2L2A:0 (nothing said; "
                                 "assumed none)");
  // one input is no mosaic
  const ModalityInput one = mosaic_input({part("a", "")}, MosaicOrder::Recent);
  CHECK(one.parts.empty());
  CHECK(one.label == "a");
  CHECK(mosaic_record({one}, MosaicOrder::Listed).empty());

  ModalityInput thumb = part("t.png", "");
  thumb.kind = InputKind::Thumbnail;
  CHECK_THROWS_MATCHES(mosaic_input({part("a", ""), thumb}, MosaicOrder::Listed), InputError,
                       Catch::Message("S2L2A inputs 'a' and 't.png': a mosaic cannot mix a rendered thumbnail with "
                                      "physical bands; give every part as physical bands or every part as a "
                                      "thumbnail"));
}

TEST_CASE("mosaic coverage: what each part covers and where it is on top", "[mosaic]") {
  // a 2 x 4 window: the top part covers the left three columns, the second the right three,
  // the third nothing
  const torch::Tensor top = torch::tensor({1, 1, 1, 0, 1, 1, 1, 0}, torch::kBool).reshape({2, 4});
  const torch::Tensor second = torch::tensor({0, 1, 1, 1, 0, 1, 1, 1}, torch::kBool).reshape({2, 4});
  const torch::Tensor none = torch::zeros({2, 4}, torch::kBool);
  MosaicCoverage c;
  const torch::Tensor any = c.add({top, second, none});
  CHECK(torch::equal(any, torch::ones({2, 4}, torch::kBool)));
  // a second window where only the second part is valid
  c.add({torch::zeros({1, 4}, torch::kBool), torch::ones({1, 4}, torch::kBool), torch::zeros({1, 4}, torch::kBool)});
  CHECK(c.pixels == 12);
  CHECK(c.covered == std::vector<std::int64_t>{6, 10, 0});
  CHECK(c.shown == std::vector<std::int64_t>{6, 6, 0});
  CHECK_THROWS_AS(c.add({top, second}), std::invalid_argument);

  const ModalityInput m =
      mosaic_input({part("s2.json#A", ""), part("s2.json#B", ""), part("s2.json#C", "")}, MosaicOrder::Listed);
  CHECK(describe_coverage(m, c) ==
        "S2L2A: 2 of 3 items cover the region: 's2.json#A' (50.0% of the region; on top in 50.0%), 's2.json#B' "
        "(83.3% of the region; on top in 50.0%), 's2.json#C' (0.0% of the region; on top in 0.0%)");
}
