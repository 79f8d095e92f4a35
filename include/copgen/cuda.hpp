// The CUDA-only pieces behind an interface that builds everywhere: CUDA graph replay of
// the backbone call, pinned host memory for transfers, device memory statistics and
// synchronisation.
//
// src/cuda.cpp holds the real code only when CMake found a LibTorch with CUDA (it then
// defines COPGEN_WITH_CUDA); against a CPU-only LibTorch, such as Debian's, each function
// does the CPU-only thing (no graphs, plain copies, no device statistics), so the same
// sources build against both.
//
//   copgen::GraphCache graphs(device);   // at most 4 shapes, least recently used freed
//   auto out = graphs.run(fn, z, t);     // undefined: no graph for this call, run fn eagerly
//   auto host = copgen::to_host(out);    // through pinned memory when out is on a GPU
#pragma once

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include <torch/torch.h>

namespace copgen {

// True when this copgen was built against a LibTorch with CUDA (COPGEN_WITH_CUDA).
bool built_with_cuda();

// One visible CUDA device, as `copgen info` reports it.
struct GpuDescription {
  int index = 0;
  std::string name;
  int cc_major = 0;
  int cc_minor = 0;
  std::int64_t memory_bytes = 0;  // total device memory
};

// The CUDA side of this process. Versions are CUDA's numbers (runtime and driver
// 1000 * major + 10 * minor; cuDNN as cudnnGetVersion gives it), 0 where there is none:
// no driver, no cuDNN, or a build without CUDA (then every field is 0 or empty). Never
// throws; safe on a machine without a GPU or a driver.
struct CudaDescription {
  bool compiled = false;        // built_with_cuda()
  int runtime_version = 0;      // the CUDA runtime copgen runs with
  int driver_version = 0;       // the newest CUDA the installed driver supports; 0: no driver
  long cudnn_version = 0;       // the cuDNN loaded (LibTorch >= 2.11), else the one LibTorch was built with
  std::vector<GpuDescription> gpus;  // every visible device
};
CudaDescription describe_cuda();

// `t` on `device`. From the CPU to a CUDA device the data are copied (synchronously) into
// a reused pinned staging buffer, then asynchronously to the device on the current
// stream; later work on that stream sees them, and the caller may change `t` as soon as
// this returns. Returns `t` itself when it is already on `device`.
torch::Tensor to_device(const torch::Tensor& t, const torch::Device& device);

// `t` on the CPU; from a CUDA device through a reused pinned staging buffer, returned as
// an owned (pageable) copy. Blocks until the data are there. Returns `t` itself when it is
// already on the CPU.
torch::Tensor to_host(const torch::Tensor& t);

// Waits until the work queued on a CUDA device is done; does nothing for the CPU.
void synchronize(const torch::Device& device);

// Peak bytes allocated to tensors through the CUDA caching allocator on `device` since the
// last reset_device_peak_bytes(); -1 for the CPU or a build without CUDA.
std::int64_t device_peak_bytes(const torch::Device& device);
void reset_device_peak_bytes(const torch::Device& device);

// What decides the precision a device computes natively: its kind and, for a CUDA
// device, its compute capability (major.minor; 0.0 for the CPU).
struct DeviceCaps {
  bool cuda = false;
  int cc_major = 0;
  int cc_minor = 0;
};
// The capabilities of `device`; for a CUDA device of a build without CUDA, cuda = true
// and 0.0 (unknown).
DeviceCaps device_caps(const torch::Device& device);

// Peak bytes reserved from the device by the CUDA caching allocator on `device` (tensors,
// the allocator's cached free blocks and the CUDA graphs' private pools) since the last
// reset_device_peak_bytes(); -1 for the CPU or a build without CUDA. This, not the
// allocated peak, is what the process takes from the GPU.
std::int64_t device_peak_reserved_bytes(const torch::Device& device);

// Hands the caching allocator's unused cached blocks on `device` back to the driver (after
// a CUDA graph's pool is freed); does nothing for the CPU.
void release_cached_device_memory(const torch::Device& device);

// TF32 for float32 matrix products and convolutions on CUDA (cuBLAS and cuDNN), process
// wide. Off keeps float32 results exact to float32; on is faster on Ampere and later.
// Has no effect on the CPU.
void set_tf32(bool enabled);
bool tf32_enabled();

// Reusable host staging buffers (pinned on CUDA builds), at most `max_buffers`, one per
// shape and dtype, the least recently used freed when another is needed. A transfer
// copies the caller's data into a buffer (synchronously), starts the asynchronous copy to
// the device, and records a fence; the next acquire of that buffer waits on the fence
// first, so no copy ever reads data being overwritten and pinned memory does not grow
// with the number of batches.
//
// Thread-safe (one mutex); the buffer acquire() returns must be used by the caller alone
// until its fence is set.
class HostStagingPool {
 public:
  // Returns a new (uninitialised) CPU tensor of the shape and dtype.
  using Allocator = std::function<torch::Tensor(c10::IntArrayRef sizes, torch::ScalarType dtype)>;
  explicit HostStagingPool(Allocator allocate, std::size_t max_buffers = 4);

  // A buffer of this shape and dtype: the one kept for it (after waiting on its fence),
  // else a new one from the allocator.
  torch::Tensor acquire(c10::IntArrayRef sizes, torch::ScalarType dtype);
  // Gives `buffer` (from acquire) back. `wait`, when given, returns once the last
  // asynchronous use of the buffer is done (a CUDA event's synchronize); the next acquire
  // of the buffer calls it first. A buffer the pool does not keep is waited on at once.
  void release(const torch::Tensor& buffer, std::function<void()> wait = {});

  std::size_t buffers() const;         // buffers held now
  std::int64_t allocations() const;    // buffers allocated so far

 private:
  struct Impl;
  std::shared_ptr<Impl> impl_;
};

// One call of a function captured for replay (a CUDA graph and its static buffers).
// Destroying it frees what the capture holds.
class CapturedCall {
 public:
  virtual ~CapturedCall() = default;
  // The function's output for new inputs of the captured shape and dtype: a fresh tensor
  // the caller owns.
  virtual torch::Tensor replay(const torch::Tensor& a, const torch::Tensor& b) = 0;
};

// CUDA graphs of one function of two tensors (the backbone call), one graph per input
// shape and dtype, the `max_graphs` most recently used kept (an evicted graph and its
// memory pool are freed). The first call of a shape captures it (see capture_cuda_graph)
// and every later call replays. A capture that fails (an op that synchronises, out of
// memory during the capture) leaves the allocator consistent, is logged as one warning,
// and that shape runs eagerly from then on (run returns an undefined tensor for it).
//
// Not thread-safe: one GraphCache serves one thread (a Models object).
class GraphCache {
 public:
  using Fn = std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>;
  // Captures one call of fn on inputs like a and b; throws when the capture fails.
  using Capture = std::function<std::unique_ptr<CapturedCall>(const Fn& fn, const torch::Tensor& a,
                                                              const torch::Tensor& b)>;
  static constexpr int kDefaultMaxGraphs = 4;

  // The default capture is capture_cuda_graph for CUDA devices of a CUDA build, and none
  // elsewhere (run always returns an undefined tensor). Tests pass their own.
  explicit GraphCache(const torch::Device& device, int max_graphs = kDefaultMaxGraphs, Capture capture = {});
  ~GraphCache();
  GraphCache(const GraphCache&) = delete;
  GraphCache& operator=(const GraphCache&) = delete;

  // fn(a, b) through this shape's graph: a fresh tensor the caller owns. Returns an
  // undefined tensor when no graph serves the call (no capture for this device, or this
  // shape's capture failed): the caller then runs fn eagerly. With the CUDA capture, a
  // and b must be on the device, in the dtype fn expects, and fn must not synchronise
  // with the host.
  torch::Tensor run(const Fn& fn, const torch::Tensor& a, const torch::Tensor& b);

  int captured() const;  // captures that succeeded so far
  int failed() const;    // shapes whose capture failed
  int evicted() const;   // graphs freed to make room for another shape
  int held() const;      // graphs held now (<= max_graphs)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// The CUDA capture of GraphCache: warms fn up on a side stream (lazy initialisation and
// TorchScript's profiling runs must not happen inside a capture), captures one call into
// a graph reading from static copies of a and b, and always ends the capture (even when
// fn throws), so that the graph's memory pool is released and the caching allocator stays
// consistent before the error propagates. Throws std::runtime_error where there is no
// CUDA.
std::unique_ptr<CapturedCall> capture_cuda_graph(const GraphCache::Fn& fn, const torch::Tensor& a,
                                                 const torch::Tensor& b);

}  // namespace copgen
