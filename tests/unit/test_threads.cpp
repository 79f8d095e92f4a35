// --threads: configure_threads sets torch's intra-op thread count, and ATen's parallel
// loops then run on at most that many threads.
#include "catch_torch.hpp"

#include <ATen/Parallel.h>

#include <mutex>
#include <set>
#include <thread>

#include "copgen/runtime.hpp"

using namespace copgen;

namespace {

// The thread numbers ATen's parallel_for hands out over a loop split into single items.
std::set<int> parallel_thread_numbers() {
  std::set<int> ids;
  std::mutex mu;
  at::parallel_for(0, 256, 1, [&](std::int64_t, std::int64_t) {
    volatile double sink = 0;
    for (int i = 0; i < 20000; ++i) sink = sink + i;  // long enough for the pool to fan out
    std::lock_guard<std::mutex> lock(mu);
    ids.insert(at::get_thread_num());
  });
  return ids;
}

struct RestoreThreads {
  int n = torch::get_num_threads();
  ~RestoreThreads() { torch::set_num_threads(n); }
};

}  // namespace

TEST_CASE("threads: configure_threads sets and reports torch's thread count", "[threads]") {
  RestoreThreads restore;
  CHECK(configure_threads(1) == 1);
  CHECK(torch::get_num_threads() == 1);
  CHECK(configure_threads(2) == 2);
  CHECK(torch::get_num_threads() == 2);
  const int every = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  CHECK(configure_threads(0) == every);
  CHECK(torch::get_num_threads() == every);
}

TEST_CASE("threads: parallel loops run on no more threads than configured", "[threads]") {
  RestoreThreads restore;
  configure_threads(1);
  CHECK(parallel_thread_numbers() == std::set<int>{0});
  configure_threads(2);
  const std::set<int> two = parallel_thread_numbers();
  CHECK(two.size() <= 2);
  CHECK(*two.rbegin() <= 1);
}
