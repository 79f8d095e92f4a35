// copgen bench as a library on the tiny models, and the CPU-only fallbacks of the CUDA
// pieces. Figures are checked for consistency with each other, never against a time.
#include "catch_torch.hpp"

#include <filesystem>

#include "copgen/bench.hpp"
#include "copgen/cuda.hpp"
#include "copgen/error.hpp"
#include "copgen/models.hpp"

using namespace copgen;
namespace fs = std::filesystem;

namespace {

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

TEST_CASE("cuda: the CPU paths of the CUDA pieces", "[cuda]") {
  const torch::Tensor t = torch::arange(6, torch::kFloat32);
  CHECK(to_device(t, torch::Device(torch::kCPU)).is_same(t));
  CHECK(to_host(t).is_same(t));
  CHECK(device_peak_bytes(torch::Device(torch::kCPU)) == -1);
  synchronize(torch::Device(torch::kCPU));  // nothing to wait for

  GraphCache graphs{torch::Device(torch::kCPU)};
  int calls = 0;
  const torch::Tensor out = graphs.run(
      [&](const torch::Tensor& a, const torch::Tensor& b) {
        ++calls;
        return a + b;
      },
      t, t);
  CHECK_FALSE(out.defined());  // no graph on the CPU: the caller runs the function eagerly
  CHECK(calls == 0);
  CHECK(graphs.captured() == 0);

  ModelOptions mo;
  mo.device = "cpu";
  mo.cuda_graphs = true;
  Models m = Models::load(COPGEN_TEST_MODELS, mo);
  CHECK_FALSE(m.cuda_graphs());
#ifndef COPGEN_WITH_CUDA
  CHECK_FALSE(built_with_cuda());
#else
  CHECK(built_with_cuda());
#endif
}
