#include "copgen/cancel.hpp"

#include <atomic>

#include "copgen/error.hpp"

namespace copgen {

namespace {
std::atomic<bool> g_stop{false};
static_assert(std::atomic<bool>::is_always_lock_free, "signal handler needs a lock-free flag");
}  // namespace

void request_stop() noexcept { g_stop.store(true, std::memory_order_relaxed); }
bool stop_requested() noexcept { return g_stop.load(std::memory_order_relaxed); }
void reset_stop() noexcept { g_stop.store(false, std::memory_order_relaxed); }
void throw_if_stop_requested() {
  if (stop_requested()) throw Interrupted();
}

}  // namespace copgen
