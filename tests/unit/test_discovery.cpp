// Tuple discovery (discovery.hpp): both folder layouts, list files, output paths, and
// shards (the key hash and the split). Pure functions over files named only by their
// paths: the fixtures are empty files.
#include "catch_torch.hpp"

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "copgen/discovery.hpp"
#include "copgen/error.hpp"
#include "support.hpp"

using namespace copgen;
namespace fs = std::filesystem;

namespace {

void touch(const std::string& path) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << "x";
}

std::vector<std::string> keys_of(const Discovered& d) {
  std::vector<std::string> k;
  for (const auto& t : d.tuples) k.push_back(t.key);
  return k;
}

}  // namespace

TEST_CASE("discovery: a Major TOM tree gives one tuple per grid cell with every --from modality", "[discovery]") {
  test::TempDir tmp;
  const std::string r = tmp.path;
  touch(r + "/Core-S2L1C/433U/433U_1043R/S2A_X/thumbnail.png");
  touch(r + "/Core-S2L1C/433U/433U_1044R/S2A_Y/thumbnail.png");
  touch(r + "/Core-S2L1C/12D/12D_7L/S2A_Z/B04.tif");
  touch(r + "/Core-S2L1C/metadata.parquet");
  touch(r + "/core-s1_rtc/433U/433U_1043R/S1A_X/vv.tif");
  touch(r + "/core-s1_rtc/12D/12D_7L/S1A_Z1/vv.tif");
  touch(r + "/core-s1_rtc/12D/12D_7L/S1A_Z2/vv.tif");
  touch(r + "/core-s1_rtc/99U/99U_1R/S1A_W/vv.tif");
  touch(r + "/Core-DEM/433U/433U_1043R/DEM_X/DEM.tif");

  const Discovered d = discover_tuples(r, {Modality::S2L1C, Modality::S1RTC});
  CHECK(d.layout == TupleLayout::MajorTom);
  CHECK((keys_of(d) == std::vector<std::string>{"12D/12D_7L", "433U/433U_1043R"}));
  CHECK((d.incomplete == std::vector<std::string>{"433U/433U_1044R", "99U/99U_1R"}));
  REQUIRE(d.tuples.size() == 2);
  const TupleSource& t = d.tuples[1];
  CHECK(t.inputs.at(Modality::S2L1C) == r + "/Core-S2L1C/433U/433U_1043R/S2A_X");
  CHECK(t.inputs.at(Modality::S1RTC) == r + "/core-s1_rtc/433U/433U_1043R/S1A_X");
  CHECK(t.inputs.size() == 2);
  // outputs mirror the tree under the product folder of the first --from modality
  CHECK(tuple_output_path("/out", t, Modality::S2L2A) == "/out/Core-S2L2A/433U/433U_1043R/S2A_X/S2L2A.tif");
  // two products of one cell: the first by name, with a warning
  CHECK(d.tuples[0].inputs.at(Modality::S1RTC) == r + "/core-s1_rtc/12D/12D_7L/S1A_Z1");
  REQUIRE(d.warnings.size() == 1);
  CHECK(d.warnings[0].find("S1A_Z1") != std::string::npos);

  // --from order decides whose product folder names the outputs
  const Discovered e = discover_tuples(r, {Modality::S1RTC, Modality::S2L1C});
  CHECK(tuple_output_path("/out", e.tuples[1], Modality::DEM) == "/out/Core-DEM/433U/433U_1043R/S1A_X/DEM.tif");
}

TEST_CASE("discovery: one folder per modality matches files by relative name without extension", "[discovery]") {
  test::TempDir tmp;
  const std::string r = tmp.path;
  touch(r + "/S2L1C/a.png");
  touch(r + "/S2L1C/a.png.aux.xml");
  touch(r + "/S2L1C/.a.png.tmp-1-0");
  touch(r + "/S2L1C/sub/b.tif");
  touch(r + "/S2L1C/c.npy");
  touch(r + "/s1_rtc/a.tif");
  touch(r + "/s1_rtc/sub/b.TIF");
  touch(r + "/s1_rtc/c.npy");
  touch(r + "/s1_rtc/d.tif");
  touch(r + "/out/S2L2A/a.tif");  // an output tree inside the input tree is not an input

  const Discovered d = discover_tuples(r, {Modality::S2L1C, Modality::S1RTC});
  CHECK(d.layout == TupleLayout::PerModality);
  CHECK((keys_of(d) == std::vector<std::string>{"a", "c", "sub/b"}));
  CHECK((d.incomplete == std::vector<std::string>{"d"}));
  CHECK(d.tuples[0].inputs.at(Modality::S2L1C) == r + "/S2L1C/a.png");
  CHECK(d.tuples[2].inputs.at(Modality::S1RTC) == r + "/s1_rtc/sub/b.TIF");
  CHECK(tuple_output_path("/o", d.tuples[2], Modality::S2L2A) == "/o/S2L2A/sub/b.tif");
  CHECK(d.warnings.empty());
}

TEST_CASE("discovery: a tree without either layout or without a --from folder is an input error", "[discovery]") {
  test::TempDir tmp;
  touch(tmp.file("misc/a.tif"));
  CHECK_THROWS_AS(discover_tuples(tmp.path, {Modality::S2L1C}), InputError);
  CHECK_THROWS_AS(discover_tuples(tmp.file("nope"), {Modality::S2L1C}), InputError);
  touch(tmp.file("S2L1C/a.tif"));
  try {
    discover_tuples(tmp.path, {Modality::S2L1C, Modality::DEM});
    FAIL("expected an InputError");
  } catch (const InputError& e) {
    CHECK(std::string(e.what()).find("DEM") != std::string::npos);
  }
}

TEST_CASE("discovery: a list file names tuples by key - Major TOM path or file stem", "[discovery]") {
  test::TempDir tmp;
  const std::string list = tmp.file("tuples.txt");
  std::ofstream(list) << "# tuples\n"
                      << "\n"
                      << "S2L1C=l1c/x.png S1RTC=/abs/s1/x.tif DEM=ignored.tif\n"
                      << "S2L1C=/d/Core-S2L1C/433U/433U_1043R/PRODUCT\ts1_rtc=/d/s1 with space.tif\r\n"
                      << "key=grp/y  s2_l1c=l1c/y.png  S1RTC=s1/y.tif\n"
                      << "S2L1C=only.png\n";
  const Discovered d = read_tuple_list(list, {Modality::S2L1C, Modality::S1RTC});
  CHECK(d.layout == TupleLayout::List);
  CHECK((keys_of(d) == std::vector<std::string>{"433U/433U_1043R", "grp/y", "x"}));
  CHECK((d.incomplete == std::vector<std::string>{"only"}));
  const TupleSource& x = d.tuples[2];
  CHECK(x.inputs.at(Modality::S2L1C) == tmp.path + "/l1c/x.png");
  CHECK(x.inputs.at(Modality::S1RTC) == "/abs/s1/x.tif");
  CHECK(x.inputs.size() == 2);
  CHECK(tuple_output_path("/o", x, Modality::S2L2A) == "/o/S2L2A/x.tif");
  CHECK(d.tuples[0].inputs.at(Modality::S1RTC) == "/d/s1 with space.tif");
  CHECK(tuple_output_path("/o", d.tuples[0], Modality::S2L2A) == "/o/Core-S2L2A/433U/433U_1043R/PRODUCT/S2L2A.tif");
  CHECK(tuple_output_path("/o", d.tuples[1], Modality::DEM) == "/o/DEM/grp/y.tif");

  auto error_of = [&](const std::string& text) {
    std::ofstream(list) << text;
    try {
      read_tuple_list(list, {Modality::S2L1C});
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK(error_of("S2L1C=a/x.png\nS2L1C=b/x.tif\n").find("line 2") != std::string::npos);
  CHECK(error_of("S2L1C\n").find("line 1") != std::string::npos);
  CHECK(error_of("S9=a.tif\n").find("unknown modality") != std::string::npos);
  CHECK(error_of("key=../up S2L1C=a.tif\n").find("key") != std::string::npos);
  CHECK_THROWS_AS(read_tuple_list(tmp.file("missing.txt"), {Modality::S2L1C}), InputError);
}

TEST_CASE("shards: parse - a stable key hash - every key in exactly one shard", "[discovery]") {
  const Shard s = parse_shard("2/5");
  CHECK(s.index == 2);
  CHECK(s.count == 5);
  CHECK(shard_name(s) == "2/5");
  for (const char* bad : {"5/5", "1/0", "-1/2", "1", "/2", "1/", "a/b", "1/2/3", " 1/2"}) {
    INFO(bad);
    CHECK_THROWS_AS(parse_shard(bad), UsageError);
  }
  // FNV-1a 64 reference values
  CHECK(tuple_key_hash("") == 0xcbf29ce484222325ULL);
  CHECK(tuple_key_hash("a") == 0xaf63dc4c8601ec8cULL);
  CHECK(tuple_key_hash("foobar") == 0x85944171f73967e8ULL);
  std::vector<int> per_shard(3, 0);
  for (int i = 0; i < 300; ++i) {
    const std::string key = std::to_string(i) + "U/" + std::to_string(i) + "U_" + std::to_string(7 * i) + "R";
    int hits = 0;
    for (int k = 0; k < 3; ++k) {
      if (in_shard(key, Shard{k, 3})) {
        ++hits;
        ++per_shard[static_cast<size_t>(k)];
      }
    }
    CHECK(hits == 1);
  }
  for (int n : per_shard) CHECK(n > 60);  // roughly even
}
