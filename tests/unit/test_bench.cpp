// copgen bench as a library on the tiny models, and the reference Python pipeline it
// compares against (scripts/research/reference_pipeline.py): its latents are copgen's for
// the same seed. Figures are checked for consistency with each other, never against a time.
#include "catch_torch.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <filesystem>

#include <nlohmann/json.hpp>

#include "copgen/bench.hpp"
#include "copgen/conditioning.hpp"
#include "copgen/error.hpp"
#include "copgen/models.hpp"
#include "copgen/npy.hpp"
#include "copgen/runtime.hpp"
#include "copgen/tuples.hpp"
#include "support.hpp"

using namespace copgen;
using copgen::test::quote;
using copgen::test::read_file_bytes;
using copgen::test::run_command;
using copgen::test::TempDir;
using nlohmann::json;
namespace fs = std::filesystem;

namespace {

std::string script() { return std::string(COPGEN_SOURCE_DIR) + "/scripts/research/reference_pipeline.py"; }

BenchOptions tiny_options() {
  BenchOptions o;
  o.models_dir = COPGEN_TEST_MODELS;
  o.devices = {"cpu"};
  o.batch_sizes = {1, 2};
  o.warmup = 1;
  o.repeat = 2;
  o.sampling.sampler.steps = 2;
  return o;
}

}  // namespace

TEST_CASE("bench: synthetic tiles follow the documented pattern", "[bench]") {
  const torch::Tensor t = synthetic_tiles(5, 256);
  REQUIRE(t.sizes() == torch::IntArrayRef({5, 3, 256, 256}));
  CHECK(t.scalar_type() == torch::kUInt8);
  // (x (1 + c) + y (2 + k mod 3) + 37 k + 85 c) mod 256
  CHECK(t[0][0][0][0].item<int>() == 0);
  CHECK(t[1][2][5][7].item<int>() == (7 * 3 + 5 * 3 + 37 + 170) % 256);
  CHECK(t[4][0][255][255].item<int>() == (255 + 255 * 3 + 148) % 256);
  CHECK(t[2][1][10][3].item<int>() == (3 * 2 + 10 * 4 + 74 + 85) % 256);
}

TEST_CASE("bench: options are checked naming the flag", "[bench]") {
  auto bad = [](const std::function<void(BenchOptions&)>& edit) {
    BenchOptions o = tiny_options();
    edit(o);
    try {
      validate(o);
    } catch (const UsageError& e) {
      return std::string(e.what());
    }
    return std::string();
  };
  CHECK_THAT(bad([](BenchOptions& o) { o.batch_sizes = {1, 0}; }), Catch::Contains("--batch-sizes"));
  CHECK_THAT(bad([](BenchOptions& o) { o.batch_sizes.clear(); }), Catch::Contains("--batch-sizes"));
  CHECK_THAT(bad([](BenchOptions& o) { o.repeat = 0; }), Catch::Contains("--repeat"));
  CHECK_THAT(bad([](BenchOptions& o) { o.warmup = -1; }), Catch::Contains("--warmup"));
  CHECK_THAT(bad([](BenchOptions& o) { o.sampling.sampler.steps = 0; }), Catch::Contains("--steps"));
  CHECK_THAT(bad([](BenchOptions& o) { o.devices.clear(); }), Catch::Contains("--devices"));
  CHECK_THAT(bad([](BenchOptions& o) { o.peak_tflops = -1; }), Catch::Contains("--peak-tflops"));
  CHECK(bad([](BenchOptions&) {}).empty());
}

TEST_CASE("bench: figures on the tiny models are consistent and unrunnable pairs are skipped", "[bench]") {
  BenchOptions o = tiny_options();
  o.precisions = {Precision::Auto, Precision::Fp16};
  o.peak_tflops = 2.0;
  std::vector<std::string> lines;
  const BenchReport r = run_bench(o, [&](const std::string& l) { lines.push_back(l); });
  REQUIRE(r.rows.size() == 4);
  const Manifest mf = read_manifest(COPGEN_TEST_MODELS);
  CHECK(r.flops_per_call == Approx(mf.backbone_flops_per_call()));
  CHECK(r.models_sha256 == mf.sha256);
  for (size_t i = 0; i < 2; ++i) {
    const BenchRow& row = r.rows[i];
    INFO("row " << i);
    CHECK(row.skipped.empty());
    CHECK(row.device == "cpu");
    CHECK(row.precision == "fp32");
    CHECK(row.batch_size == o.batch_sizes[i]);
    CHECK(row.threads == torch::get_num_threads());
    CHECK_FALSE(row.cuda_graphs);
    CHECK(row.timed_calls == 2);
    CHECK(row.seconds_per_call > 0);
    CHECK(row.cpu_seconds_per_call > 0);
    CHECK(row.e2e_cpu_seconds > 0);
    CHECK(row.calls_per_s * row.seconds_per_call == Approx(1.0));
    CHECK(row.sample_calls_per_s == Approx(row.calls_per_s * row.batch_size));
    CHECK(row.tflops == Approx(mf.backbone_flops_per_call() * row.sample_calls_per_s / 1e12));
    CHECK(row.mfu == Approx(row.tflops / 2.0));
    CHECK(row.e2e_steps == 2);
    CHECK(row.tuples_per_s == Approx(row.batch_size / row.e2e_seconds));
    CHECK(row.peak_host_rss_bytes > 0);
    CHECK(row.peak_device_bytes == -1);
    CHECK_FALSE(row.reference.has_value());
  }
  for (size_t i = 2; i < 4; ++i) {
    CHECK(r.rows[i].precision == "fp16");
    CHECK_THAT(r.rows[i].skipped, Catch::Contains("--precision fp16"));
  }
  // each measured row announced and then described, and one skipped pair
  REQUIRE(lines.size() == 5);
  CHECK(lines[0] == "measuring cpu fp32 batch 1 ...");
  CHECK(lines[2] == "measuring cpu fp32 batch 2 ...");
  CHECK_THAT(lines[4], Catch::StartsWith("skipped cpu fp16"));

  const nlohmann::json j = bench_to_json(r);
  REQUIRE(j["rows"].size() == 4);
  CHECK(j["rows"][1]["batch_size"] == 2);
  CHECK(j["rows"][1]["network"]["timed_calls"] == 2);
  CHECK(j["rows"][1]["end_to_end"]["steps"] == 2);
  CHECK(j["rows"][1]["peak_device_bytes"].is_null());
  CHECK(j["rows"][3].contains("skipped"));
  CHECK(j["models"]["sha256"] == mf.sha256);
  const std::string table = format_bench_table(r);
  CHECK_THAT(table, Catch::Contains("calls/s") && Catch::Contains("skipped: --precision fp16") &&
                        Catch::Contains("GFLOP per call per sample"));
}

TEST_CASE("bench: a run where no pair can run is a usage error", "[bench]") {
  BenchOptions o = tiny_options();
  o.precisions = {Precision::Fp16};
  CHECK_THROWS_WITH(run_bench(o), Catch::Contains("--devices/--precisions"));
}

TEST_CASE("bench: the reference script is found or named", "[bench]") {
  const std::string found = find_reference_script("");
  CHECK(fs::path(found).filename() == "reference_pipeline.py");
  CHECK(fs::is_regular_file(found));
  CHECK_THROWS_WITH(find_reference_script("/nonexistent/ref.py"),
                    Catch::Contains("--reference-script") && Catch::Contains("/nonexistent/ref.py"));
}

TEST_CASE("bench: peak RSS is reported and can be reset", "[bench]") {
  REQUIRE(peak_host_rss_bytes() > 0);
  if (!reset_peak_host_rss()) {
    WARN("/proc/self/clear_refs is not writable here; the reset is not checked");
    return;
  }
  const std::int64_t base = peak_host_rss_bytes();  // the current resident size
  {
    const torch::Tensor big = torch::ones({64 * 1024 * 1024 / 4}, torch::kFloat32);  // 64 MiB, touched
    CHECK(peak_host_rss_bytes() >= base + 60 * 1024 * 1024);
  }
  const std::int64_t high = peak_host_rss_bytes();
  REQUIRE(reset_peak_host_rss());
#if defined(__SANITIZE_ADDRESS__)
  // AddressSanitizer keeps freed memory in its quarantine: it stays resident
  WARN("built with AddressSanitizer: the fall of the peak after a free is not checked");
#else
  CHECK(peak_host_rss_bytes() < high);  // the 64 MiB went back to the system
#endif
}

TEST_CASE("reference pipeline: the same seed gives copgen's latents within 1e-4", "[bench][python][parity]") {
  using namespace copgen;
  TempDir tmp;
  const int b = 2, steps = 6;
  const std::uint64_t seed = 5;
  const torch::Tensor tiles = synthetic_tiles(b, 256);
  write_npy(tmp.file("tiles.npy"), tiles);
  const auto r = run_command(quote(COPGEN_PYTHON) + " " + quote(script()) + " --models " + quote(COPGEN_TEST_MODELS) +
                             " --batch-sizes 2 --steps 6 --seed 5 --warmup 0 --repeat 1 --threads 1 --tiles " +
                             quote(tmp.file("tiles.npy")) + " --save-latents " + quote(tmp.file("ref")) +
                             " --json " + quote(tmp.file("ref.json")));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  const json j = json::parse(read_file_bytes(tmp.file("ref.json")));
  CHECK(j["results"][0]["e2e_network_calls"] == steps);

  configure_threads(1);
  ModelOptions mo;
  mo.device = "cpu";
  Models m = Models::load(COPGEN_TEST_MODELS, mo);
  const Roles roles = Roles::make({Modality::S2L1C}, {Modality::S2L2A});
  std::vector<TupleInputs> tuples(b);
  for (int k = 0; k < b; ++k) tuples[static_cast<size_t>(k)].given[Modality::S2L1C].pixels = tiles[k];
  SamplingOptions s;
  s.sampler.steps = steps;
  at::Generator gen = at::detail::createCPUGenerator(seed);
  const auto out = sample_tuples(m, roles, tuples, s, gen);

  const torch::Tensor ref_given = read_npy(tmp.file("ref/S2L1C.npy"));
  const torch::Tensor ref_gen = read_npy(tmp.file("ref/S2L2A.npy"));
  const torch::Tensor ref_px = read_npy(tmp.file("ref/S2L2A_pixels.npy"));
  for (int k = 0; k < b; ++k) {
    const auto& o = out[static_cast<size_t>(k)];
    CHECK((o.latents.at(Modality::S2L1C) - ref_given[k]).abs().max().item<double>() < 1e-4);
    CHECK((o.latents.at(Modality::S2L2A) - ref_gen[k]).abs().max().item<double>() < 1e-4);
    CHECK((o.images.at(Modality::S2L2A).to(torch::kFloat32) - ref_px[k]).abs().max().item<double>() <= 1.0);
  }
  // and the generated latents are not trivially equal to anything seed-independent
  CHECK((out[0].latents.at(Modality::S2L2A) - out[1].latents.at(Modality::S2L2A)).abs().max().item<double>() > 1e-3);
}
