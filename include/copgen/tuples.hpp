// Sampling a batch of tuples in memory: the step every front end shares (translate of a
// tile with N samples, the batch runner's batches of tiles, eval's test set). Given
// images are encoded, latents drawn, the solver run once for the whole batch, and the
// generated latents decoded; nothing is read from or written to disk here.
//
//   TupleInputs t;  t.label = "433U_1043R";
//   t.given[Modality::S2L1C].pixels = thumbnail;          // uint8 [3, 256, 256]
//   auto out = sample_tuples(models, roles, {t}, settings, gen);
//   out[0].images.at(Modality::S2L2A);                     // uint8 [3, 256, 256]
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <ATen/core/Generator.h>
#include <torch/torch.h>

#include "copgen/conditioning.hpp"
#include "copgen/modality.hpp"
#include "copgen/sampler.hpp"

namespace copgen {

class Models;

enum class CondLatent {
  Sample,  // z = s * (mean + std * eps), as the reference does (default)
  Mean,    // z = s * mean, the posterior mean
};
std::string cond_latent_name(CondLatent c);
CondLatent parse_cond_latent(const std::string& s);  // throws UsageError naming --cond-latent

// One given modality of one tuple: exactly one of pixels, moments and latent is defined
// (CPU tensors). inputs.hpp reads them from files (GivenFile).
struct GivenData {
  at::Tensor pixels;   // uint8 [3, H, W] thumbnail, encoded by the autoencoder
  at::Tensor moments;  // float [2C, h, w] posterior moments (mean, logvar)
  at::Tensor latent;   // float [C, h, w] scaled latent, used as is
};

struct TupleInputs {
  std::string label;                    // names the tuple in messages (a path, a cell id)
  std::map<Modality, GivenData> given;  // must hold exactly roles.given
};

// How every command samples: translate, generate, batch, eval and bench compose this one
// struct into their options. The device and the precisions belong to the loaded models
// (ModelOptions); a run's outputs (OutputOptions) and its inputs are the command's own.
struct SamplingOptions {
  SamplerOptions sampler;                       // --solver, --steps, --time-grid (on_call is ignored)
  Guidance guidance;                            // --guidance-scale (0: none, as in the paper)
  CondLatent cond_latent = CondLatent::Sample;  // --cond-latent
  std::optional<std::uint64_t> seed;            // --seed; unset: a random seed, logged and recorded
  int batch_size = 1;                           // --batch-size: samples per network call
  bool decode = true;                           // false: latents only (sample_tuples; no flag)
};
// Steps, solver order, guidance and batch size, each error naming its flag; throws UsageError.
void validate(const SamplingOptions& options);

struct TupleOutputs {
  std::map<Modality, torch::Tensor> images;   // generated: uint8 [3, H, W] (CPU)
  std::map<Modality, torch::Tensor> latents;  // given and generated: float [C, h, w] (CPU)
};

// Samples all tuples together as one batch (B = tuples.size()) with draws from `gen` in
// the documented order. `on_call(done, total)` is called after every solver step.
// Throws RuntimeError naming the tuples when the network output is not finite, and when
// the device (or host) runs out of memory, with a batch size that may fit (see
// out_of_memory_message).
std::vector<TupleOutputs> sample_tuples(Models& models, const Roles& roles, const std::vector<TupleInputs>& tuples,
                                        const SamplingOptions& settings, at::Generator& gen,
                                        const CallCallback& on_call = {});

// True when `message` (of a c10::Error) reports a failed allocation: CUDA's "out of
// memory" or the CPU allocator's "can't allocate memory".
bool is_out_of_memory(const std::string& message);
// The message of the RuntimeError for running out of memory on `device` while sampling
// the tuples `labels` (repeats listed once, at most five named) as one batch of `batch`:
// it suggests --batch-size batch/2, or other remedies when the batch is already 1.
std::string out_of_memory_message(const std::vector<std::string>& labels, std::int64_t batch,
                                  const std::string& device);

// Throws RuntimeError ("the network produced NaN or infinite values for <what>; ...")
// unless every value of x is finite.
void require_finite(const torch::Tensor& x, const std::string& what);

// Call inside a catch block: rethrows the exception being handled, as a RuntimeError with
// out_of_memory_message(labels, batch, device) when it reports a failed allocation (a
// c10::Error or op error saying so, std::bad_alloc). copgen's own errors pass unchanged.
[[noreturn]] void rethrow_with_out_of_memory_message(const std::vector<std::string>& labels, std::int64_t batch,
                                                     const std::string& device);

// Posterior moments [N, 2C, h, w] (CPU float) of uint8 images [N, 3, H, W], encoded in
// chunks of at most `batch` images.
torch::Tensor encode_images(Models& models, const torch::Tensor& pixels, int batch = 8);

}  // namespace copgen
