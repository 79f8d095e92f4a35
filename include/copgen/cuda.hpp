// The CUDA-only pieces behind an interface that builds everywhere: CUDA graph replay of
// the backbone call, pinned host memory for transfers, device memory statistics and
// synchronisation.
//
// src/cuda.cpp holds the real code only when CMake found a LibTorch with CUDA (it then
// defines COPGEN_WITH_CUDA); against a CPU-only LibTorch, such as Debian's, each function
// does the CPU-only thing (no graphs, plain copies, no device statistics), so the same
// sources build against both.
//
//   copgen::GraphCache graphs(device);
//   auto out = graphs.run(fn, z, t);     // undefined: no graph for this call, run fn eagerly
//   auto host = copgen::to_host(out);    // through pinned memory when out is on a GPU
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

#include <torch/torch.h>

namespace copgen {

// True when this copgen was built against a LibTorch with CUDA (COPGEN_WITH_CUDA).
bool built_with_cuda();

// `t` on `device`. From the CPU to a CUDA device the data go through pinned
// (page-locked) host memory and an asynchronous copy on the current stream; later work on
// that stream sees them. Returns `t` itself when it is already on `device`.
torch::Tensor to_device(const torch::Tensor& t, const torch::Device& device);

// `t` on the CPU; from a CUDA device through pinned host memory. Blocks until the data
// are there. Returns `t` itself when it is already on the CPU.
torch::Tensor to_host(const torch::Tensor& t);

// Waits until the work queued on a CUDA device is done; does nothing for the CPU.
void synchronize(const torch::Device& device);

// Peak bytes held by tensors through the CUDA caching allocator on `device` since the
// last reset_device_peak_bytes(); -1 for the CPU or a build without CUDA.
std::int64_t device_peak_bytes(const torch::Device& device);
void reset_device_peak_bytes(const torch::Device& device);

// CUDA graphs of one function of two tensors (the backbone call), one graph per input
// shape and dtype. The first call of a shape warms the function up on a side stream (lazy
// initialisation and TorchScript's profiling runs must not happen inside a capture),
// captures one call into a graph reading from static input buffers, and replays it;
// every later call copies its inputs into those buffers and replays. A capture that fails
// is logged once and that shape runs eagerly from then on.
//
// Not thread-safe: one GraphCache serves one thread (a Models object).
class GraphCache {
 public:
  using Fn = std::function<torch::Tensor(const torch::Tensor&, const torch::Tensor&)>;

  // max_graphs bounds the shapes captured (each holds its own memory pool); calls of
  // further shapes run eagerly.
  explicit GraphCache(const torch::Device& device, int max_graphs = 8);
  ~GraphCache();
  GraphCache(const GraphCache&) = delete;
  GraphCache& operator=(const GraphCache&) = delete;

  // fn(a, b) through this shape's graph: a fresh tensor the caller owns (never the
  // graph's static output, which the next replay overwrites). Returns an undefined tensor
  // when no graph serves the call: not a CUDA build or device, a failed capture, or too
  // many shapes. a and b must already be on the device, in the dtype fn expects; fn must
  // not synchronise with the host (no .item(), no host copies).
  torch::Tensor run(const Fn& fn, const torch::Tensor& a, const torch::Tensor& b);

  int captured() const;  // graphs captured so far
  int failed() const;    // shapes whose capture failed

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace copgen
