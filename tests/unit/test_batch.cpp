// The batch runner's pieces: tuple discovery in both folder layouts and in list files,
// shards, seeds and exit codes; and run_batch in-process on the tiny models (resuming
// writes the same bytes, shards cover every tuple once).
#include "catch_torch.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "copgen/batch.hpp"
#include "copgen/cancel.hpp"
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

// Synthetic 256 x 256 thumbnails in a Major TOM tree: Core-<MOD>/<row>/<cell>/P_<MOD>_<cell>/thumbnail.png.
std::string thumbnail(const std::string& root, const std::string& mod, const std::string& cell, int seed) {
  const std::string row = cell.substr(0, cell.find('_'));
  const std::string dir = root + "/Core-" + mod + "/" + row + "/" + cell + "/P_" + mod + "_" + cell;
  fs::create_directories(dir);
  test::SyntheticRaster spec;
  spec.format = "PNG";
  spec.georeferenced = false;
  spec.seed = seed;
  test::write_synthetic(dir + "/thumbnail.png", spec);
  return dir + "/thumbnail.png";
}

// Every regular file under `root` (relative path -> bytes), the report excluded.
std::map<std::string, std::string> tree(const std::string& root) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    const std::string rel = fs::relative(e.path(), root).generic_string();
    if (rel.rfind("copgen-report", 0) == 0) continue;
    out[rel] = test::read_file_bytes(e.path().string());
  }
  return out;
}

Models& tiny() { return test::tiny_models(); }

BatchOptions options(const std::string& in, const std::string& out, int batch) {
  BatchOptions o;
  o.input_dir = in;
  o.output.path = out;
  o.from = {Modality::S2L1C};
  o.to = {Modality::S2L2A};
  o.sampling.sampler.steps = 2;
  o.sampling.seed = 3;
  o.sampling.batch_size = batch;
  return o;
}

}  // namespace

TEST_CASE("discovery: a Major TOM tree gives one tuple per grid cell with every --from modality", "[batch]") {
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

TEST_CASE("discovery: one folder per modality matches files by relative name without extension", "[batch]") {
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

TEST_CASE("discovery: a tree without either layout or without a --from folder is an input error", "[batch]") {
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

TEST_CASE("discovery: a list file names tuples by key - Major TOM path or file stem", "[batch]") {
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

TEST_CASE("shards: parse - a stable key hash - every key in exactly one shard", "[batch]") {
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

TEST_CASE("batch: seeds - exit codes - option conflicts", "[batch]") {
  CHECK(batch_seed(1, "a") == batch_seed(1, "a"));
  CHECK(batch_seed(1, "a") != batch_seed(2, "a"));
  CHECK(batch_seed(1, "a") != batch_seed(1, "b"));
  CHECK(batch_seed(~0ULL, "x") < (1ULL << 53));

  BatchResult r;
  CHECK(r.exit_code() == 0);
  r.failures.push_back({"a", "bad", ErrorKind::Input});
  CHECK(r.exit_code() == 3);
  r.failures.push_back({"b", "disk", ErrorKind::Output});
  CHECK(r.exit_code() == 5);

  BatchOptions o = options("/in", "/out", 4);
  CHECK_NOTHROW(validate(o));
  auto message = [](BatchOptions b) {
    try {
      validate(b);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  BatchOptions both = o;
  both.inputs_from = "list.txt";
  CHECK(message(both).find("--inputs-from") != std::string::npos);
  BatchOptions none = o;
  none.input_dir.clear();
  CHECK(message(none).find("--input-dir") != std::string::npos);
  BatchOptions same = o;
  same.to = {Modality::S2L1C};
  CHECK(message(same).find("--to S2L1C is also given with --from") != std::string::npos);
  BatchOptions latents = o;
  latents.output.save_latents_dir = "/latents";
  CHECK(message(latents).find("--save-latents") != std::string::npos);
  BatchOptions inside = o;
  inside.output.path = "/in/";
  CHECK(message(inside).find("--output-dir") != std::string::npos);
  BatchOptions batch0 = o;
  batch0.sampling.batch_size = 0;
  CHECK(message(batch0).find("--batch-size") != std::string::npos);
  CHECK(default_report_path(o) == "/out/copgen-report.json");
  o.shard = {1, 4};
  CHECK(default_report_path(o) == "/out/copgen-report.shard-1-of-4.json");
}

TEST_CASE("batch: a resumed run writes the same bytes as an uninterrupted one", "[batch]") {
  reset_stop();
  test::TempDir tmp;
  const std::string in = tmp.file("in");
  const std::vector<std::string> cells = {"1U_1R", "1U_2R", "1U_3R", "2U_1R", "2U_2R", "3D_9L", "3D_8L"};
  for (size_t i = 0; i < cells.size(); ++i) thumbnail(in, "S2L1C", cells[i], static_cast<int>(i) + 1);

  const BatchResult full = run_batch(options(in, tmp.file("a"), 3), tiny());
  CHECK(full.written == 7);
  CHECK(full.batches == 3);
  CHECK(full.failed == 0);
  const auto expected = tree(tmp.file("a"));
  REQUIRE(expected.size() == 7);
  CHECK(expected.count("Core-S2L2A/1U/1U_1R/P_S2L1C_1U_1R/S2L2A.tif") == 1);
  for (const auto& [rel, bytes] : expected) CHECK(bytes.size() > 1000);

  // a resumed run: some outputs gone (one of batch 0, all of batch 2), a stale temporary
  const std::string b = tmp.file("b");
  fs::copy(tmp.file("a"), b, fs::copy_options::recursive);
  fs::remove(b + "/copgen-report.json");
  // the batch order is the key order: 1U/1U_1R, 1U/1U_2R, 1U/1U_3R | 2U/2U_1R, 2U/2U_2R, 3D/3D_8L | 3D/3D_9L
  fs::remove(b + "/Core-S2L2A/1U/1U_2R/P_S2L1C_1U_2R/S2L2A.tif");
  fs::remove(b + "/Core-S2L2A/3D/3D_9L/P_S2L1C_3D_9L/S2L2A.tif");
  const std::string stale = b + "/Core-S2L2A/3D/3D_9L/P_S2L1C_3D_9L/.S2L2A.tif.tmp-999999-3";
  std::ofstream(stale) << "partial";
  const BatchResult resumed = run_batch(options(in, b, 3), tiny());
  CHECK(resumed.skipped == 5);
  CHECK(resumed.written == 2);
  CHECK(resumed.batches == 2);  // batch 0 again (whole, for its composition) and batch 2
  CHECK_FALSE(fs::exists(stale));
  CHECK(tree(b) == expected);

  // another batch size gives other samples (the composition matters)...
  const BatchResult other = run_batch(options(in, tmp.file("c"), 2), tiny());
  CHECK(other.written == 7);
  CHECK(tree(tmp.file("c")) != expected);

  // ...and the report says what happened
  const auto report = nlohmann::json::parse(test::read_file_bytes(b + "/copgen-report.json"));
  CHECK(report["counts"]["written"] == 2);
  CHECK(report["counts"]["skipped_complete"] == 5);
  CHECK(report["status"] == "completed");
  CHECK(report["settings"]["batch_size"] == 3);
  const double share = report["timings"]["network_busy_share"];
  CHECK(share > 0.0);
  CHECK(share <= 1.0);
}

TEST_CASE("batch: shards 0/3 1/3 2/3 cover every tuple once and match the unsharded run at batch size 1", "[batch]") {
  reset_stop();
  test::TempDir tmp;
  const std::string in = tmp.file("in");
  for (int i = 0; i < 7; ++i) {
    const std::string cell = std::to_string(10 + i) + "U_" + std::to_string(i) + "R";
    thumbnail(in, "S2L1C", cell, 20 + i);
  }
  const BatchResult all = run_batch(options(in, tmp.file("all"), 1), tiny());
  REQUIRE(all.written == 7);
  const auto expected = tree(tmp.file("all"));

  std::map<std::string, std::string> merged;
  int total = 0;
  for (int k = 0; k < 3; ++k) {
    BatchOptions o = options(in, tmp.file("s" + std::to_string(k)), 1);
    o.shard = {k, 3};
    const BatchResult r = run_batch(o, tiny());
    CHECK(r.found == 7);
    CHECK(r.in_shard == r.written);
    total += r.written;
    for (const auto& [rel, bytes] : tree(o.output.path)) {
      CHECK(merged.count(rel) == 0);
      merged[rel] = bytes;
    }
    CHECK(fs::exists(o.output.path + "/copgen-report.shard-" + std::to_string(k) + "-of-3.json"));
  }
  CHECK(total == 7);
  CHECK(merged == expected);  // with batch size 1 a tuple's result depends on (seed, key) only
}
