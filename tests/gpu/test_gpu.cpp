// GPU tests (ctest label gpu). Where no CUDA device is visible each test prints the skip
// marker that tests/CMakeLists.txt gives ctest (SKIP_REGULAR_EXPRESSION) and returns, so
// CPU-only machines report these tests as skipped, never failed.
#include "catch_torch.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include <cstdlib>
#include <iostream>
#include <string>

#include "copgen/bench.hpp"
#include "copgen/cuda.hpp"
#include "copgen/models.hpp"
#include "copgen/tuples.hpp"

using namespace copgen;

#define COPGEN_REQUIRE_GPU()                                                  \
  do {                                                                        \
    if (!torch::cuda::is_available()) {                                       \
      std::cout << "COPGEN_GPU_SKIP: no CUDA device visible" << std::endl;    \
      WARN("COPGEN_GPU_SKIP: no CUDA device visible");                        \
      return;                                                                 \
    }                                                                         \
  } while (0)

namespace {

// The tiny test models: $COPGEN_TEST_MODELS (scripts/gpu/gpu_check.sh --run exports them on the
// GPU machine, where the build's path does not exist), else the build's.
std::string test_models() {
  const char* env = std::getenv("COPGEN_TEST_MODELS");
  return env != nullptr && *env != '\0' ? env : COPGEN_TEST_MODELS;
}

Models tiny(Precision p, bool graphs) {
  ModelOptions o;
  o.device = "cuda";
  o.precision = p;
  o.cuda_graphs = graphs;
  return Models::load(test_models(), o);
}

struct Inputs {
  torch::Tensor z, t;
};

Inputs inputs(std::int64_t b, std::uint64_t seed) {
  torch::manual_seed(seed);
  return {torch::randn({b, 4, 4, 32, 32}), torch::rand({b, 4}) * 1000.0};
}

double rel_err(const torch::Tensor& a, const torch::Tensor& ref) {
  return ((a.cpu() - ref.cpu()).abs().max() / ref.cpu().abs().max()).item<double>();
}

}  // namespace

TEST_CASE("gpu: bf16 and fp16 give finite outputs close to fp32 on the tiny model", "[gpu]") {
  COPGEN_REQUIRE_GPU();
  const Inputs in = inputs(2, 3);
  Models f32 = tiny(Precision::Fp32, false);
  const torch::Tensor ref = f32.predict_noise(in.z, in.t);
  for (Precision p : {Precision::Bf16, Precision::Fp16}) {
    Models m = tiny(p, false);
    const torch::Tensor eps = m.predict_noise(in.z, in.t);
    INFO(precision_name(p));
    CHECK(eps.scalar_type() == torch::kFloat32);
    CHECK(torch::isfinite(eps).all().item<bool>());
    CHECK(rel_err(eps, ref) < (p == Precision::Bf16 ? 0.05 : 0.01));
    // the autoencoder too, and a whole short translation
    const torch::Tensor x = torch::rand({2, 3, 256, 256}) * 2 - 1;
    CHECK(rel_err(m.encode_moments(x), f32.encode_moments(x)) < 0.05);
    const Roles roles = Roles::make({Modality::S2L1C}, {Modality::S2L2A});
    std::vector<TupleInputs> t(1);
    t[0].label = "tile";
    t[0].given[Modality::S2L1C].pixels = synthetic_tiles(1, 256)[0];
    SamplingOptions s;
    s.sampler.steps = 4;
    at::Generator gen = at::detail::createCPUGenerator(9);
    const auto out = sample_tuples(m, roles, t, s, gen);
    CHECK(torch::isfinite(out[0].latents.at(Modality::S2L2A)).all().item<bool>());
  }
}

TEST_CASE("gpu: CUDA graph replay gives the eager results", "[gpu]") {
  COPGEN_REQUIRE_GPU();
  Models eager = tiny(Precision::Fp32, false);
  Models graphed = tiny(Precision::Fp32, true);
  REQUIRE(graphed.cuda_graphs() == built_with_cuda());
  const Inputs a = inputs(2, 1), b = inputs(2, 2), c = inputs(3, 4);
  const torch::Tensor ga = graphed.predict_noise(a.z, a.t);  // captures shape [2, ...]
  const torch::Tensor gb = graphed.predict_noise(b.z, b.t);  // replays with new inputs
  const torch::Tensor gc = graphed.predict_noise(c.z, c.t);  // captures shape [3, ...]
  CHECK(rel_err(ga, eager.predict_noise(a.z, a.t)) < 1e-5);  // ga was not overwritten by gb
  CHECK(rel_err(gb, eager.predict_noise(b.z, b.t)) < 1e-5);
  CHECK(rel_err(gc, eager.predict_noise(c.z, c.t)) < 1e-5);
  CHECK(graphed.cuda_graphs_captured() == (built_with_cuda() ? 2 : 0));
  CHECK(graphed.backbone_calls() == 3);
}

TEST_CASE("gpu: pinned transfers round trip and device memory is counted", "[gpu]") {
  COPGEN_REQUIRE_GPU();
  const torch::Device dev(torch::kCUDA, 0);
  const torch::Tensor host = torch::randn({1000, 257});
  const torch::Tensor on_dev = to_device(host, dev);
  CHECK(on_dev.device() == dev);
  const torch::Tensor back = to_host(on_dev * 2);
  CHECK(back.device().is_cpu());
  CHECK_FALSE(back.is_pinned());  // an owned copy, not the reused staging buffer
  CHECK(torch::equal(back, host * 2));
  // The caller may change its tensor as soon as to_device returns; the staging buffer is
  // reused for the next transfer of the same shape only after the copy is done.
  torch::Tensor scratch = host.clone();
  const torch::Tensor first = to_device(scratch, dev);
  scratch.fill_(7);
  const torch::Tensor second = to_device(scratch, dev);
  CHECK(torch::equal(first.cpu(), host));
  CHECK(torch::equal(second.cpu(), torch::full_like(host, 7)));
  if (built_with_cuda()) {
    reset_device_peak_bytes(dev);
    {
      const torch::Tensor big = torch::empty({64 * 1024 * 1024 / 4}, torch::TensorOptions().device(dev));
      synchronize(dev);
    }
    CHECK(device_peak_bytes(dev) >= 64 * 1024 * 1024);
    CHECK(device_peak_reserved_bytes(dev) >= device_peak_bytes(dev));
  }
}

TEST_CASE("gpu: a capture that synchronises falls back to eager and sampling goes on", "[gpu]") {
  COPGEN_REQUIRE_GPU();
  if (!built_with_cuda()) return;
  const torch::Device dev(torch::kCUDA, 0);
  GraphCache graphs(dev);
  const torch::Tensor a = torch::randn({4, 8}, torch::TensorOptions().device(dev));
  const torch::Tensor b = torch::randn({8}, torch::TensorOptions().device(dev));
  // .item() synchronises with the host: forbidden inside a capture.
  auto syncing = [](const torch::Tensor& x, const torch::Tensor& y) { return x * y.sum().item<float>(); };
  CHECK_FALSE(graphs.run(syncing, a, b).defined());
  CHECK(graphs.failed() == 1);
  CHECK_FALSE(graphs.run(syncing, a, b).defined());  // no second attempt
  CHECK(graphs.failed() == 1);
  // The allocator and the stream are usable: eager work, and a capture of another shape.
  const torch::Tensor eager = syncing(a, b);
  CHECK(torch::isfinite(eager).all().item<bool>());
  auto plain = [](const torch::Tensor& x, const torch::Tensor& y) { return x * 2 + y; };
  const torch::Tensor a2 = torch::randn({2, 8}, torch::TensorOptions().device(dev));
  const torch::Tensor g = graphs.run(plain, a2, b);
  REQUIRE(g.defined());
  CHECK(torch::allclose(g, plain(a2, b)));
  CHECK(graphs.captured() == 1);
}

TEST_CASE("gpu: graph pools are bounded and counted in the reserved peak", "[gpu]") {
  COPGEN_REQUIRE_GPU();
  if (!built_with_cuda()) return;
  const torch::Device dev(torch::kCUDA, 0);
  auto fn = [](const torch::Tensor& x, const torch::Tensor& y) { return torch::matmul(x, x.transpose(0, 1)) + y.sum(); };
  const torch::Tensor b = torch::randn({8}, torch::TensorOptions().device(dev));
  GraphCache graphs(dev, 2);
  reset_device_peak_bytes(dev);
  std::int64_t reserved_after_two = 0;
  for (int round = 0; round < 3; ++round) {
    for (std::int64_t n : {512, 1024, 1536}) {
      const torch::Tensor a = torch::randn({n, 256}, torch::TensorOptions().device(dev));
      const torch::Tensor out = graphs.run(fn, a, b);
      REQUIRE(out.defined());
      CHECK(torch::allclose(out, fn(a, b), 1e-4, 1e-4));
    }
    if (round == 0) reserved_after_two = device_peak_reserved_bytes(dev);
  }
  CHECK(graphs.held() == 2);
  CHECK(graphs.evicted() >= 7);
  // Evicted pools are freed: cycling through the shapes does not raise the peak much.
  CHECK(device_peak_reserved_bytes(dev) <= reserved_after_two * 2);
}

TEST_CASE("gpu: bench measures CUDA rows", "[gpu]") {
  COPGEN_REQUIRE_GPU();
  BenchOptions o;
  o.models_dir = test_models();
  o.devices = {"cuda"};
  o.precisions = {Precision::Fp32, Precision::Bf16};
  o.batch_sizes = {2};
  o.repeat = 2;
  o.sampling.sampler.steps = 3;
  const BenchReport r = run_bench(o);
  REQUIRE(r.rows.size() == 2);
  for (const BenchRow& row : r.rows) {
    CHECK(row.skipped.empty());
    CHECK(row.device.rfind("cuda", 0) == 0);
    CHECK(row.calls_per_s > 0);
    CHECK(row.tuples_per_s > 0);
    if (built_with_cuda()) {
      CHECK(row.peak_device_bytes > 0);
      CHECK(row.peak_device_bytes >= row.peak_device_allocated_bytes);
      CHECK(row.cuda_graphs);
    }
  }
}
