// The batch runner's pieces: seeds, exit codes and option conflicts; and run_batch
// in-process on the tiny models (resuming writes the same bytes, shards cover every tuple
// once). Tuple discovery and the shard split are in test_discovery.cpp.
#include "catch_torch.hpp"

#include <filesystem>
#include <fstream>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

#include "copgen/batch.hpp"
#include "copgen/cancel.hpp"
#include "copgen/error.hpp"
#include "support.hpp"

using namespace copgen;
namespace fs = std::filesystem;

namespace {

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
  o.index = false;  // these tests compare the GeoTIFFs; the contact sheet is test_preview.cpp's
  return o;
}

}  // namespace

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
  // validate touches no file: the folders are compared when the run is planned
  BatchOptions inside = o;
  inside.output.path = "/in/";
  CHECK(message(inside).empty());
  CHECK_THROWS_WITH(plan_batch(inside, "/models"), "--output-dir '/in/' is the --input-dir; give another directory");
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
