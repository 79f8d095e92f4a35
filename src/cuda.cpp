// CUDA graphs, pinned transfers and device statistics. Everything that needs CUDA
// headers sits under COPGEN_WITH_CUDA, which CMake defines only when the LibTorch found
// has CUDA; the CPU-only build compiles the fallbacks.
#include "copgen/cuda.hpp"

#include <mutex>
#include <set>
#include <sstream>
#include <vector>

#include <spdlog/spdlog.h>
#include <torch/cuda.h>

#include "copgen/lru_cache.hpp"

#ifdef COPGEN_WITH_CUDA
#include <ATen/Context.h>
#include <ATen/cuda/CUDAContext.h>
#include <ATen/cuda/CUDAGraph.h>
#include <ATen/detail/CUDAHooksInterface.h>
#include <c10/core/Event.h>
#include <torch/version.h>
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 9)
#include <ATen/core/CachingHostAllocator.h>
#define COPGEN_HOST_ALLOCATOR_POOLS 1  // the pinned host allocator also routes captures to the graph's pool
#endif
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#endif

namespace copgen {

bool built_with_cuda() {
#ifdef COPGEN_WITH_CUDA
  return true;
#else
  return false;
#endif
}

CudaDescription describe_cuda() {
  CudaDescription d;
#ifdef COPGEN_WITH_CUDA
  d.compiled = true;
  int v = 0;
  if (cudaRuntimeGetVersion(&v) == cudaSuccess) d.runtime_version = v;
  v = 0;
  if (cudaDriverGetVersion(&v) == cudaSuccess) d.driver_version = v;  // 0 when no driver is installed
  (void)cudaGetLastError();
  try {
    const at::CUDAHooksInterface& hooks = at::detail::getCUDAHooks();
    if (hooks.compiledWithCuDNN()) {
#if TORCH_VERSION_MAJOR > 2 || (TORCH_VERSION_MAJOR == 2 && TORCH_VERSION_MINOR >= 11)
      d.cudnn_version = hooks.versionRuntimeCuDNN();
#else
      d.cudnn_version = hooks.versionCuDNN();
#endif
    }
  } catch (const std::exception&) {
    d.cudnn_version = 0;
  }
  try {
    const int n = d.driver_version > 0 ? static_cast<int>(torch::cuda::device_count()) : 0;
    for (int i = 0; i < n; ++i) {
      const cudaDeviceProp* prop = at::cuda::getDeviceProperties(static_cast<c10::DeviceIndex>(i));
      d.gpus.push_back({i, prop->name, prop->major, prop->minor, static_cast<std::int64_t>(prop->totalGlobalMem)});
    }
  } catch (const std::exception&) {
    // a driver that fails to start: the devices are left out, the versions stay
  }
#endif
  return d;
}

#ifdef COPGEN_WITH_CUDA
namespace {

// Pinned staging buffers: one pool for host -> device, one for device -> host.
torch::Tensor allocate_pinned(c10::IntArrayRef sizes, torch::ScalarType dtype) {
  return torch::empty(sizes, torch::TensorOptions().dtype(dtype).pinned_memory(true));
}
HostStagingPool& upload_pool() {
  static HostStagingPool pool(allocate_pinned, 8);
  return pool;
}
HostStagingPool& download_pool() {
  static HostStagingPool pool(allocate_pinned, 8);
  return pool;
}

}  // namespace
#endif

torch::Tensor to_device(const torch::Tensor& t, const torch::Device& device) {
  if (t.device() == device) return t;
#ifdef COPGEN_WITH_CUDA
  if (device.is_cuda() && t.device().is_cpu()) {
    const auto index = device.has_index() ? device.index() : c10::cuda::current_device();
    const torch::Device target(torch::kCUDA, index);
    HostStagingPool& pool = upload_pool();
    torch::Tensor staged = pool.acquire(t.sizes(), t.scalar_type());
    staged.copy_(t);  // host to host, synchronous: the caller may change t afterwards
    torch::Tensor out = torch::empty(t.sizes(), t.options().device(target));
    out.copy_(staged, /*non_blocking=*/true);
    // The staging buffer is reused only once this copy is done.
    auto done = std::make_shared<c10::Event>(c10::DeviceType::CUDA);
    done->record(c10::cuda::getCurrentCUDAStream(index).unwrap());
    pool.release(staged, [done] { done->synchronize(); });
    return out;
  }
#endif
  return t.to(device);
}

torch::Tensor to_host(const torch::Tensor& t) {
  if (t.device().is_cpu()) return t;
#ifdef COPGEN_WITH_CUDA
  if (t.device().is_cuda()) {
    HostStagingPool& pool = download_pool();
    torch::Tensor staged = pool.acquire(t.sizes(), t.scalar_type());
    staged.copy_(t);                     // blocking
    torch::Tensor owned = staged.clone();  // the caller's own (pageable) copy
    pool.release(staged, {});
    return owned;
  }
#endif
  return t.to(torch::kCPU);
}

void synchronize(const torch::Device& device) {
  if (device.is_cuda()) torch::cuda::synchronize(device.has_index() ? device.index() : -1);
}

#ifdef COPGEN_WITH_CUDA
namespace {
c10::DeviceIndex index_of(const torch::Device& device) {
  return device.has_index() ? device.index() : c10::cuda::current_device();
}
}  // namespace
#endif

std::int64_t device_peak_bytes(const torch::Device& device) {
#ifdef COPGEN_WITH_CUDA
  if (device.is_cuda()) {
    // Indexed by stat type; 0 is the aggregate over both pools in every LibTorch version.
    return c10::cuda::CUDACachingAllocator::getDeviceStats(index_of(device)).allocated_bytes[0].peak;
  }
#endif
  (void)device;
  return -1;
}

std::int64_t device_peak_reserved_bytes(const torch::Device& device) {
#ifdef COPGEN_WITH_CUDA
  if (device.is_cuda()) {
    return c10::cuda::CUDACachingAllocator::getDeviceStats(index_of(device)).reserved_bytes[0].peak;
  }
#endif
  (void)device;
  return -1;
}

void reset_device_peak_bytes(const torch::Device& device) {
#ifdef COPGEN_WITH_CUDA
  if (device.is_cuda()) c10::cuda::CUDACachingAllocator::resetPeakStats(index_of(device));
#endif
  (void)device;
}

void release_cached_device_memory(const torch::Device& device) {
#ifdef COPGEN_WITH_CUDA
  if (device.is_cuda()) {
    c10::cuda::CUDAGuard guard(device);
    c10::cuda::CUDACachingAllocator::emptyCache();
  }
#endif
  (void)device;
}

DeviceCaps device_caps(const torch::Device& device) {
  DeviceCaps caps;
  if (!device.is_cuda()) return caps;
  caps.cuda = true;
#ifdef COPGEN_WITH_CUDA
  const cudaDeviceProp* prop = at::cuda::getDeviceProperties(index_of(device));
  caps.cc_major = prop->major;
  caps.cc_minor = prop->minor;
#endif
  return caps;
}

namespace {
bool g_tf32 = false;
}  // namespace

void set_tf32(bool enabled) {
  g_tf32 = enabled;
#ifdef COPGEN_WITH_CUDA
  at::globalContext().setAllowTF32CuBLAS(enabled);
  at::globalContext().setAllowTF32CuDNN(enabled);
#endif
}

bool tf32_enabled() { return g_tf32; }

// ---- HostStagingPool ----

struct HostStagingPool::Impl {
  struct Slot {
    torch::Tensor buffer;
    std::function<void()> fence;  // waits for the last asynchronous use; empty: none
    bool in_use = false;
  };
  Impl(Allocator a, std::size_t max) : allocate(std::move(a)), slots(max) {}
  Allocator allocate;
  mutable std::mutex mutex;
  LruCache<std::string, Slot> slots;
  std::int64_t allocations = 0;
};

namespace {
std::string staging_key(c10::IntArrayRef sizes, torch::ScalarType dtype) {
  std::ostringstream s;
  s << sizes << ' ' << dtype;
  return s.str();
}
}  // namespace

HostStagingPool::HostStagingPool(Allocator allocate, std::size_t max_buffers)
    : impl_(std::make_shared<Impl>(std::move(allocate), max_buffers)) {}

torch::Tensor HostStagingPool::acquire(c10::IntArrayRef sizes, torch::ScalarType dtype) {
  const std::string key = staging_key(sizes, dtype);
  std::function<void()> fence;
  torch::Tensor buffer;
  {
    std::lock_guard<std::mutex> lock(impl_->mutex);
    if (Impl::Slot* slot = impl_->slots.find(key)) {
      if (!slot->in_use) {
        slot->in_use = true;
        fence = std::move(slot->fence);
        slot->fence = nullptr;
        buffer = slot->buffer;
      }
    }
  }
  if (buffer.defined()) {
    if (fence) fence();
    return buffer;
  }
  // A new buffer: none kept for this key, or the kept one is in use by another thread
  // (then this one is transient: release() of it keeps nothing).
  torch::Tensor fresh = impl_->allocate(sizes, dtype);
  std::lock_guard<std::mutex> lock(impl_->mutex);
  ++impl_->allocations;
  if (!impl_->slots.contains(key)) {
    if (impl_->slots.size() >= impl_->slots.capacity()) {
      // Wait for the oldest buffer's last copy before freeing it; skip one still in use.
      const std::string oldest_key = impl_->slots.oldest();
      Impl::Slot* oldest = impl_->slots.peek(oldest_key);
      if (oldest != nullptr && !oldest->in_use) {
        if (oldest->fence) oldest->fence();
        impl_->slots.erase(oldest_key);
      } else {
        return fresh;  // the pool is busy: a transient buffer
      }
    }
    impl_->slots.insert(key, Impl::Slot{fresh, nullptr, true});
  }
  return fresh;
}

void HostStagingPool::release(const torch::Tensor& buffer, std::function<void()> wait) {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  Impl::Slot* slot = impl_->slots.peek(staging_key(buffer.sizes(), buffer.scalar_type()));
  if (slot == nullptr || !slot->buffer.is_same(buffer)) {
    if (wait) wait();  // a transient buffer: freed by the caller once the copy is done
    return;
  }
  slot->fence = std::move(wait);
  slot->in_use = false;
}

std::size_t HostStagingPool::buffers() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->slots.size();
}

std::int64_t HostStagingPool::allocations() const {
  std::lock_guard<std::mutex> lock(impl_->mutex);
  return impl_->allocations;
}

// ---- GraphCache ----

namespace {

std::string shape_key(const torch::Tensor& a, const torch::Tensor& b) {
  std::ostringstream s;
  s << a.sizes() << ' ' << a.scalar_type() << ' ' << b.sizes() << ' ' << b.scalar_type();
  return s.str();
}

}  // namespace

struct GraphCache::Impl {
  Impl(const torch::Device& d, int max, Capture c) : device(d), capture(std::move(c)), graphs(max) {}
  torch::Device device;
  Capture capture;  // empty: no graphs
  LruCache<std::string, std::unique_ptr<CapturedCall>> graphs;
  std::set<std::string> eager;  // shapes whose capture failed
  int captured = 0;
  int failed = 0;
  int evicted = 0;
};

GraphCache::GraphCache(const torch::Device& device, int max_graphs, Capture capture) {
  if (max_graphs < 1) throw std::invalid_argument("GraphCache: max_graphs must be at least 1");
  if (!capture && device.is_cuda() && built_with_cuda()) capture = capture_cuda_graph;
  impl_ = std::make_unique<Impl>(device, max_graphs, std::move(capture));
}

GraphCache::~GraphCache() = default;

int GraphCache::captured() const { return impl_->captured; }
int GraphCache::failed() const { return impl_->failed; }
int GraphCache::evicted() const { return impl_->evicted; }
int GraphCache::held() const { return static_cast<int>(impl_->graphs.size()); }

torch::Tensor GraphCache::run(const Fn& fn, const torch::Tensor& a, const torch::Tensor& b) {
  Impl& m = *impl_;
  if (!m.capture) return {};
  const std::string key = shape_key(a, b);
  if (m.eager.count(key) != 0) return {};
  if (std::unique_ptr<CapturedCall>* call = m.graphs.find(key)) return (*call)->replay(a, b);
  if (m.graphs.size() >= m.graphs.capacity()) {
    // Free the least recently used graph and its pool before capturing another.
    m.graphs.erase(m.graphs.oldest());
    ++m.evicted;
    release_cached_device_memory(m.device);
  }
  std::unique_ptr<CapturedCall> call;
  try {
    call = m.capture(fn, a, b);
  } catch (const std::exception& e) {
    m.eager.insert(key);
    ++m.failed;
    spdlog::warn("CUDA graph capture of the backbone call for {} failed, running that shape eagerly: {}", key,
                 std::string(e.what()).substr(0, 300));
    return {};
  }
  ++m.captured;
  spdlog::debug("captured a CUDA graph of the backbone call for {}", key);
  torch::Tensor out = call->replay(a, b);
  m.graphs.insert(key, std::move(call));
  return out;
}

#ifdef COPGEN_WITH_CUDA
namespace {

// A captured CUDA graph and the static tensors it reads and writes. Members are destroyed
// in reverse order: the tensors (out lives in the graph's private pool) before the graph,
// whose reset() then releases the pool.
class CudaGraphCall final : public CapturedCall {
 public:
  std::unique_ptr<at::cuda::CUDAGraph> graph;
  torch::Tensor a, b;  // static inputs the graph reads
  torch::Tensor out;   // static output the graph writes

  torch::Tensor replay(const torch::Tensor& in_a, const torch::Tensor& in_b) override {
    a.copy_(in_a);
    b.copy_(in_b);
    graph->replay();
    return out.clone();  // the next replay overwrites out
  }
};

// Ends a capture that fn aborted or that capture_end refused, so that the caching
// allocators stop routing this stream's allocations to the graph's pool and the pool is
// released; the graph object is destroyed only after this. capture_end throws before
// handing the pool back when cudaStreamEndCapture reports an invalidated capture (an op
// that synchronised), and the graph's reset() releases the pool only after a successful
// capture_end, so both are done here for a capture that never ended. Errors of the aborted
// capture are expected and dropped (the caller reports fn's).
void end_failed_capture(at::cuda::CUDAGraph& graph, c10::DeviceIndex device, c10::MempoolId_t pool) {
  try {
    graph.capture_end();
  } catch (...) {
  }
  bool ended = true;  // capture_end got as far as marking the capture ended
  try {
    (void)graph.pool();
  } catch (...) {
    ended = false;
  }
  if (!ended) {
    // Either call is refused (and ignored) where capture_end already made it.
    try {
      c10::cuda::CUDACachingAllocator::endAllocateToPool(device, pool);
    } catch (...) {
    }
#ifdef COPGEN_HOST_ALLOCATOR_POOLS
    try {
      at::getHostAllocator(at::kCUDA)->end_allocate_to_pool(pool);
    } catch (...) {
    }
    try {
      at::getHostAllocator(at::kCUDA)->release_pool(pool);
    } catch (...) {
    }
#endif
    try {
      c10::cuda::CUDACachingAllocator::releasePool(device, pool);
    } catch (...) {
    }
  }
  (void)cudaGetLastError();  // the aborted capture's error is not sticky; clear it
}

}  // namespace

std::unique_ptr<CapturedCall> capture_cuda_graph(const GraphCache::Fn& fn, const torch::Tensor& a,
                                                 const torch::Tensor& b) {
  if (!a.is_cuda() || !b.is_cuda()) throw std::runtime_error("CUDA graph capture needs CUDA inputs");
  const c10::DeviceIndex device = a.device().index();
  c10::cuda::CUDAGuard device_guard(a.device());
  auto call = std::make_unique<CudaGraphCall>();
  call->a = a.clone();
  call->b = b.clone();
  // Everything queued so far (the clones) must be done before the side stream starts.
  c10::cuda::device_synchronize();
  c10::cuda::CUDAStream side = c10::cuda::getStreamFromPool(false, device);
  {
    c10::cuda::CUDAStreamGuard stream_guard(side);
    // Warm-up: cuBLAS/cuDNN handles, TorchScript's profiling and fusion passes.
    for (int i = 0; i < 3; ++i) (void)fn(call->a, call->b);
    side.synchronize();
    // The graph outlives the capture on every path: it is destroyed only after
    // capture_end ran (by unique_ptr, when this scope or the call object ends).
    // Our own pool handle, so that a failed capture can hand the pool back (see
    // end_failed_capture).
    const c10::MempoolId_t pool = at::cuda::graph_pool_handle();
    auto graph = std::make_unique<at::cuda::CUDAGraph>();
    graph->capture_begin(pool);
    try {
      call->out = fn(call->a, call->b);
    } catch (...) {
      end_failed_capture(*graph, device, pool);
      throw;
    }
    try {
      graph->capture_end();  // throws when the capture was invalidated (an op that synchronised)
    } catch (...) {
      end_failed_capture(*graph, device, pool);
      call->out = torch::Tensor();  // frees its block in the graph's pool
      throw;
    }
    call->graph = std::move(graph);
  }
  c10::cuda::device_synchronize();
  return call;
}
#else
std::unique_ptr<CapturedCall> capture_cuda_graph(const GraphCache::Fn&, const torch::Tensor&, const torch::Tensor&) {
  throw std::runtime_error("CUDA graph capture needs a copgen built with CUDA");
}
#endif

}  // namespace copgen
