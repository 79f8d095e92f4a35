// The GPU path's decisions, tested on the CPU: the CUDA graph cache's fallback and LRU
// bound (through an injected capture), the staging pool's reuse (through an injected
// allocator), the --precision auto rule, the autoencoder's own precision and TF32, and
// the CPU paths of the CUDA pieces (copies, statistics, graphs: no-ops on the CPU).
#include "catch_torch.hpp"

#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <memory>
#include <sstream>
#include <stdexcept>
#include <string>

#include "copgen/cuda.hpp"
#include "copgen/error.hpp"
#include "copgen/lru_cache.hpp"
#include "copgen/models.hpp"

using namespace copgen;

namespace {

// Routes spdlog's default logger into a string for the lifetime of the object.
class CapturedLog {
 public:
  CapturedLog() : previous_(spdlog::default_logger()) {
    auto sink = std::make_shared<spdlog::sinks::ostream_sink_mt>(out_);
    auto logger = std::make_shared<spdlog::logger>("test", sink);
    logger->set_level(spdlog::level::debug);
    spdlog::set_default_logger(logger);
  }
  ~CapturedLog() { spdlog::set_default_logger(previous_); }
  int count(const std::string& needle) const {
    const std::string s = out_.str();
    int n = 0;
    for (size_t at = s.find(needle); at != std::string::npos; at = s.find(needle, at + 1)) ++n;
    return n;
  }

 private:
  std::shared_ptr<spdlog::logger> previous_;
  std::ostringstream out_;
};

// A "graph" that replays by calling the function (as a real graph replays its kernels),
// counting the live objects so that a test sees evicted ones freed.
struct FakeCall final : CapturedCall {
  FakeCall(GraphCache::Fn f, int& live) : fn(std::move(f)), live(live) { ++live; }
  ~FakeCall() override { --live; }
  torch::Tensor replay(const torch::Tensor& a, const torch::Tensor& b) override {
    ++replays;
    return fn(a, b);
  }
  GraphCache::Fn fn;
  int& live;
  int replays = 0;
};

torch::Tensor affine(const torch::Tensor& a, const torch::Tensor& b) { return a * 2 + b.sum(); }

}  // namespace

TEST_CASE("lru: the least recently used entry is evicted and destroyed", "[gpu-path]") {
  auto held = std::make_shared<int>(0);
  LruCache<int, std::shared_ptr<int>> c(2);
  CHECK(c.insert(1, held) == 0);
  CHECK(c.insert(2, held) == 0);
  CHECK(held.use_count() == 3);
  REQUIRE(c.find(1) != nullptr);  // 1 is now the most recently used: 2 goes next
  CHECK(c.oldest() == 2);
  CHECK(c.insert(3, held) == 1);
  CHECK(c.size() == 2);
  CHECK(c.contains(1));
  CHECK_FALSE(c.contains(2));
  CHECK(held.use_count() == 3);  // the evicted value was destroyed
  CHECK(c.peek(1) != nullptr);
  CHECK(c.oldest() == 1);  // peek does not mark
  CHECK(c.insert(3, held) == 0);  // replacing a key evicts nothing
  CHECK(c.erase(1));
  CHECK_FALSE(c.erase(1));
  CHECK(c.size() == 1);
  c.clear();
  CHECK(held.use_count() == 1);
  CHECK_THROWS_AS((LruCache<int, int>(0)), std::invalid_argument);
}

TEST_CASE("graph cache: a capture that fails falls back to eager with one warning", "[gpu-path]") {
  CapturedLog log;
  int attempts = 0;
  GraphCache graphs(torch::Device(torch::kCPU), 4,
                    [&](const GraphCache::Fn&, const torch::Tensor&, const torch::Tensor&) -> std::unique_ptr<CapturedCall> {
                      ++attempts;
                      throw std::runtime_error("operation not permitted when stream is capturing");
                    });
  torch::manual_seed(1);
  const torch::Tensor a = torch::randn({2, 3}), b = torch::randn({2});
  for (int i = 0; i < 3; ++i) {
    // What Models::predict_noise does: the graph's result, else the eager call.
    torch::Tensor out = graphs.run(affine, a, b);
    CHECK_FALSE(out.defined());
    if (!out.defined()) out = affine(a, b);
    CHECK(torch::equal(out, affine(a, b)));
  }
  CHECK(attempts == 1);  // the shape is marked eager: no second capture
  CHECK(graphs.failed() == 1);
  CHECK(graphs.captured() == 0);
  CHECK(graphs.held() == 0);
  CHECK(log.count("capture of the backbone call") == 1);
  CHECK(log.count("stream is capturing") == 1);
  CHECK(log.count("[warning]") == 1);
}

TEST_CASE("graph cache: graphs are replayed per shape and bounded by an LRU", "[gpu-path]") {
  CapturedLog log;
  int live = 0, attempts = 0;
  std::vector<FakeCall*> made;
  GraphCache graphs(torch::Device(torch::kCPU), 2,
                    [&](const GraphCache::Fn& fn, const torch::Tensor&, const torch::Tensor&) {
                      ++attempts;
                      auto call = std::make_unique<FakeCall>(fn, live);
                      made.push_back(call.get());
                      return std::unique_ptr<CapturedCall>(std::move(call));
                    });
  auto in = [](std::int64_t batch) { return torch::arange(batch * 3, torch::kFloat32).reshape({batch, 3}); };
  const torch::Tensor b = torch::ones({4});
  CHECK(torch::equal(graphs.run(affine, in(1), b), affine(in(1), b)));
  CHECK(torch::equal(graphs.run(affine, in(1), b), affine(in(1), b)));  // replayed, not captured again
  CHECK(attempts == 1);
  CHECK(made[0]->replays == 2);
  CHECK(torch::equal(graphs.run(affine, in(2), b), affine(in(2), b)));
  CHECK(graphs.run(affine, in(1), b).defined());  // batch 1 is now the most recently used
  CHECK(live == 2);
  CHECK(torch::equal(graphs.run(affine, in(3), b), affine(in(3), b)));  // evicts batch 2
  CHECK(live == 2);
  CHECK(graphs.held() == 2);
  CHECK(graphs.evicted() == 1);
  CHECK(attempts == 3);
  CHECK(graphs.run(affine, in(1), b).defined());  // still held
  CHECK(attempts == 3);
  CHECK(graphs.run(affine, in(2), b).defined());  // captured again
  CHECK(attempts == 4);
  CHECK(graphs.captured() == 4);
  CHECK(graphs.failed() == 0);
  CHECK(log.count("[warning]") == 0);
}

TEST_CASE("graph cache: without a capture nothing is graphed", "[gpu-path]") {
  GraphCache graphs(torch::Device(torch::kCPU));
  const torch::Tensor a = torch::ones({2});
  CHECK_FALSE(graphs.run(affine, a, a).defined());
  CHECK(graphs.captured() == 0);
  CHECK(graphs.failed() == 0);
  CHECK_THROWS_AS(GraphCache(torch::Device(torch::kCPU), 0), std::invalid_argument);
#ifndef COPGEN_WITH_CUDA
  CHECK_THROWS_WITH(capture_cuda_graph(affine, a, a), Catch::Contains("CUDA"));
#endif
}

TEST_CASE("staging pool: buffers are reused per shape and bounded in number", "[gpu-path]") {
  int allocated = 0;
  HostStagingPool pool(
      [&](c10::IntArrayRef sizes, torch::ScalarType dtype) {
        ++allocated;
        return torch::empty(sizes, torch::TensorOptions().dtype(dtype));
      },
      2);
  torch::Tensor first = pool.acquire({4, 8}, torch::kFloat32);
  const void* data = first.data_ptr();
  pool.release(first);
  torch::Tensor again = pool.acquire({4, 8}, torch::kFloat32);
  CHECK(again.data_ptr() == data);  // the same buffer
  pool.release(again);

  // Many batches of the same two shapes: two buffers, allocated once.
  for (int batch = 0; batch < 50; ++batch) {
    for (torch::ScalarType dtype : {torch::kFloat32, torch::kBFloat16}) {
      torch::Tensor t = pool.acquire({4, 8}, dtype);
      t.fill_(batch);
      pool.release(t);
    }
  }
  CHECK(allocated == 2);
  CHECK(pool.allocations() == 2);
  CHECK(pool.buffers() == 2);

  // A third shape evicts the least recently used; the count stays at the bound.
  pool.release(pool.acquire({16}, torch::kFloat32));
  CHECK(pool.buffers() == 2);
  CHECK(allocated == 3);
}

TEST_CASE("staging pool: a buffer is reused only after its fence", "[gpu-path]") {
  HostStagingPool pool([](c10::IntArrayRef sizes, torch::ScalarType dtype) {
    return torch::empty(sizes, torch::TensorOptions().dtype(dtype));
  });
  int waited = 0;
  torch::Tensor t = pool.acquire({3}, torch::kFloat32);
  pool.release(t, [&] { ++waited; });  // an asynchronous copy reads t until the fence
  CHECK(waited == 0);
  torch::Tensor u = pool.acquire({3}, torch::kFloat32);
  CHECK(waited == 1);  // waited on before the buffer is handed out again
  CHECK(u.data_ptr() == t.data_ptr());
  // While u is in use, the same shape gets another (transient) buffer, never u.
  torch::Tensor v = pool.acquire({3}, torch::kFloat32);
  CHECK(v.data_ptr() != u.data_ptr());
  pool.release(v, [&] { ++waited; });  // not kept: waited on at once
  CHECK(waited == 2);
  CHECK(pool.buffers() == 1);
  pool.release(u);
  CHECK(pool.acquire({3}, torch::kFloat32).data_ptr() == t.data_ptr());
}

TEST_CASE("precision: auto is bf16 only where the GPU computes it natively", "[gpu-path]") {
  CHECK(auto_precision(DeviceCaps{false, 0, 0}) == Precision::Fp32);  // the CPU
  CHECK(auto_precision(DeviceCaps{true, 9, 0}) == Precision::Bf16);   // H100, H200
  CHECK(auto_precision(DeviceCaps{true, 8, 0}) == Precision::Bf16);   // A100
  CHECK(auto_precision(DeviceCaps{true, 8, 6}) == Precision::Bf16);   // A10, RTX 30x0
  CHECK(auto_precision(DeviceCaps{true, 12, 0}) == Precision::Bf16);  // Blackwell
  CHECK(auto_precision(DeviceCaps{true, 7, 5}) == Precision::Fp16);   // T4 (bf16 emulated)
  CHECK(auto_precision(DeviceCaps{true, 7, 0}) == Precision::Fp16);   // V100
  CHECK(auto_precision(DeviceCaps{true, 6, 1}) == Precision::Fp16);   // P40
  CHECK(auto_precision(DeviceCaps{true, 0, 0}) == Precision::Fp16);   // unknown
  CHECK(device_caps(torch::Device(torch::kCPU)).cuda == false);
  CHECK(precision_name(torch::kBFloat16) == "bf16");
}

TEST_CASE("precision: the autoencoder has its own setting and TF32 is recorded", "[gpu-path]") {
  const torch::Device cpu(torch::kCPU);
  CHECK(resolve_ae_precision(Precision::Auto, cpu) == torch::kFloat32);
  CHECK(resolve_ae_precision(Precision::Bf16, cpu) == torch::kBFloat16);
  CHECK_THROWS_WITH(resolve_ae_precision(Precision::Fp16, cpu), Catch::Contains("--ae-precision fp16"));
  CHECK_THROWS_WITH(parse_precision("fp8", "--ae-precision"), Catch::Contains("--ae-precision"));

  ModelOptions o;
  o.device = "cpu";
  {
    Models m = Models::load(COPGEN_TEST_MODELS, o);
    CHECK(m.dtype() == torch::kFloat32);
    CHECK(m.ae_dtype() == torch::kFloat32);
    const auto meta = m.settings_metadata();
    CHECK(meta.at("COPGEN_AE_PRECISION") == "fp32");
    CHECK(meta.at("COPGEN_TF32") == "off");
    CHECK_FALSE(tf32_enabled());
  }
  o.precision = Precision::Bf16;  // the backbone in bf16: the autoencoder stays fp32
  {
    Models m = Models::load(COPGEN_TEST_MODELS, o);
    CHECK(m.dtype() == torch::kBFloat16);
    CHECK(m.ae_dtype() == torch::kFloat32);
    const torch::Tensor z = torch::zeros({1, 4, 32, 32});
    CHECK(m.decode(z).scalar_type() == torch::kFloat32);
  }
  o.precision = Precision::Fp32;
  o.ae_precision = Precision::Bf16;
  o.tf32 = true;
  {
    Models m = Models::load(COPGEN_TEST_MODELS, o);
    CHECK(m.dtype() == torch::kFloat32);
    CHECK(m.ae_dtype() == torch::kBFloat16);
    CHECK(m.settings_metadata().at("COPGEN_AE_PRECISION") == "bf16");
    CHECK(m.settings_metadata().at("COPGEN_TF32") == "on");
    CHECK(tf32_enabled());
  }
  set_tf32(false);
  CHECK_FALSE(tf32_enabled());
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
