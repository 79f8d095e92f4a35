#include "copgen/tuples.hpp"

#include <algorithm>
#include <new>

#include "copgen/cuda.hpp"
#include "copgen/error.hpp"
#include "copgen/models.hpp"
#include "copgen/pixels.hpp"

namespace copgen {

std::string cond_latent_name(CondLatent c) { return c == CondLatent::Sample ? "sample" : "mean"; }

CondLatent parse_cond_latent(const std::string& s) {
  if (s == "sample") return CondLatent::Sample;
  if (s == "mean") return CondLatent::Mean;
  throw UsageError("--cond-latent: unknown value '" + s + "' (expected sample or mean)");
}

torch::Tensor encode_images(Models& models, const torch::Tensor& pixels, int batch) {
  std::vector<torch::Tensor> parts;
  for (int64_t i = 0; i < pixels.size(0); i += batch) {
    const int64_t n = std::min<int64_t>(batch, pixels.size(0) - i);
    parts.push_back(to_host(models.encode_moments(pixels_to_model(pixels.narrow(0, i, n)))));
  }
  return torch::cat(parts, 0);
}

bool is_out_of_memory(const std::string& message) {
  return message.find("out of memory") != std::string::npos ||
         message.find("can't allocate memory") != std::string::npos;
}

std::string out_of_memory_message(const std::vector<std::string>& labels, std::int64_t batch,
                                  const std::string& device) {
  std::vector<std::string> unique;
  for (const std::string& l : labels) {
    if (std::find(unique.begin(), unique.end(), l) == unique.end()) unique.push_back(l);
  }
  std::string named;
  const size_t shown = std::min<size_t>(unique.size(), 5);
  for (size_t i = 0; i < shown; ++i) named += (i ? ", " : "") + unique[i];
  if (unique.size() > shown) named += " and " + std::to_string(unique.size() - shown) + " more";
  std::string msg = "out of memory on " + device + " while sampling a batch of " + std::to_string(batch) +
                    (batch == 1 ? " sample" : " samples") + (named.empty() ? "" : " (" + named + ")");
  if (batch > 1) return msg + "; try --batch-size " + std::to_string(batch / 2);
  return msg + "; the batch size is already 1: free memory, or use another --device (or --precision fp16/bf16 on a GPU)";
}

namespace {

// The posterior moments [gi][k] of every given modality gi of every tuple k (undefined
// for a given latent): the images of the batch encoded in one go, modality by modality.
// needs_eps[gi]: some tuple's latent of gi must be sampled from its moments.
std::vector<std::vector<torch::Tensor>> batch_moments(Models& models, const Roles& roles,
                                                      const std::vector<TupleInputs>& tuples,
                                                      const SamplingOptions& settings, std::vector<bool>& needs_eps) {
  std::vector<std::vector<torch::Tensor>> moments(roles.given.size(), std::vector<torch::Tensor>(tuples.size()));
  needs_eps.assign(roles.given.size(), false);
  for (size_t gi = 0; gi < roles.given.size(); ++gi) {
    const Modality m = roles.given[gi];
    std::vector<torch::Tensor> images;
    std::vector<size_t> owners;
    for (size_t k = 0; k < tuples.size(); ++k) {
      auto it = tuples[k].given.find(m);
      if (it == tuples[k].given.end()) {
        throw std::invalid_argument("sample_tuples: tuple '" + tuples[k].label + "' lacks given " + modality_name(m));
      }
      const GivenData& d = it->second;
      if (d.pixels.defined()) {
        images.push_back(d.pixels);
        owners.push_back(k);
      } else if (d.moments.defined()) {
        moments[gi][k] = d.moments.to(torch::kFloat32);
      }
      if (!d.latent.defined() && settings.cond_latent == CondLatent::Sample) needs_eps[gi] = true;
    }
    if (!images.empty()) {
      const torch::Tensor enc = encode_images(models, torch::stack(images, 0));
      for (size_t j = 0; j < owners.size(); ++j) moments[gi][owners[j]] = enc[static_cast<int64_t>(j)];
    }
  }
  return moments;
}

std::vector<TupleOutputs> sample_batch(Models& models, const Roles& roles, const std::vector<TupleInputs>& tuples,
                                       const SamplingOptions& settings, at::Generator& gen,
                                       const CallCallback& on_call) {
  const auto b = static_cast<int64_t>(tuples.size());
  if (b == 0) return {};
  const int64_t c = models.latent_channels(), h = models.latent_size();
  const double sf = models.scale_factor();
  const torch::Device device = models.device();

  std::vector<bool> needs_eps;
  const std::vector<std::vector<torch::Tensor>> moments = batch_moments(models, roles, tuples, settings, needs_eps);

  const bool guided = is_guided(settings.guidance, !roles.given.empty());
  const Draws draws = draw_noise(gen, roles, needs_eps, b, {c, h, h}, guided);

  std::vector<torch::Tensor> given_latents;  // host [B, C, h, w] per given modality
  for (size_t gi = 0; gi < roles.given.size(); ++gi) {
    std::vector<torch::Tensor> zs;
    for (size_t k = 0; k < tuples.size(); ++k) {
      const GivenData& d = tuples[k].given.at(roles.given[gi]);
      if (d.latent.defined()) {
        zs.push_back(d.latent.to(torch::kFloat32));
      } else {
        const torch::Tensor eps = draws.posterior_eps[gi].defined() && settings.cond_latent == CondLatent::Sample
                                      ? draws.posterior_eps[gi][static_cast<int64_t>(k)]
                                      : torch::Tensor();
        zs.push_back(latent_from_moments(moments[gi][k], eps, sf));
      }
    }
    given_latents.push_back(torch::stack(zs, 0));
  }
  const Conditioning cond = device_conditioning(given_latents, draws, device);
  const NoiseFn fn = cond.noise_fn(models, roles, settings.guidance);
  SamplerOptions so = settings.sampler;
  so.on_call = on_call;
  const torch::Tensor x_0 = sample(fn, models.schedule(), to_device(draws.x_T, device), so);
  std::string labels;
  for (const auto& t : tuples) labels += (labels.empty() ? "" : ", ") + t.label;
  require_finite(x_0, labels);

  std::vector<TupleOutputs> out(tuples.size());
  for (size_t gi = 0; gi < roles.generated.size(); ++gi) {
    const Modality m = roles.generated[gi];
    const torch::Tensor lat = to_host(x_0[static_cast<int64_t>(gi)]);
    torch::Tensor pixels;
    if (settings.decode) pixels = to_host(model_to_pixels(models.decode(x_0[static_cast<int64_t>(gi)])));
    for (size_t k = 0; k < tuples.size(); ++k) {
      out[k].latents[m] = lat[static_cast<int64_t>(k)];
      if (settings.decode) out[k].images[m] = pixels[static_cast<int64_t>(k)];
    }
  }
  for (size_t gi = 0; gi < roles.given.size(); ++gi) {
    const torch::Tensor lat = given_latents[gi];
    for (size_t k = 0; k < tuples.size(); ++k) out[k].latents[roles.given[gi]] = lat[static_cast<int64_t>(k)];
  }
  return out;
}

std::vector<std::string> labels_of(const std::vector<TupleInputs>& tuples) {
  std::vector<std::string> labels;
  for (const auto& t : tuples) labels.push_back(t.label);
  return labels;
}

}  // namespace

void validate(const SamplingOptions& o) {
  validate(o.sampler);
  validate(o.guidance);
  if (o.batch_size < 1) throw UsageError("--batch-size: must be at least 1, got " + std::to_string(o.batch_size));
}

std::vector<TupleOutputs> sample_tuples(Models& models, const Roles& roles, const std::vector<TupleInputs>& tuples,
                                        const SamplingOptions& settings, at::Generator& gen,
                                        const CallCallback& on_call) {
  try {
    return sample_batch(models, roles, tuples, settings, gen, on_call);
  } catch (...) {
    rethrow_with_out_of_memory_message(labels_of(tuples), static_cast<std::int64_t>(tuples.size()),
                                       models.device().str());
  }
}

void require_finite(const torch::Tensor& x, const std::string& what) {
  if (!torch::isfinite(x).all().item<bool>()) {
    throw RuntimeError("the network produced NaN or infinite values for " + what +
                       "; check the models or try --precision fp32");
  }
}

void rethrow_with_out_of_memory_message(const std::vector<std::string>& labels, std::int64_t batch,
                                        const std::string& device) {
  try {
    throw;
  } catch (const Error&) {
    throw;  // copgen's own (Interrupted, NaN output, ...)
  } catch (const c10::Error& e) {
    if (!is_out_of_memory(e.what_without_backtrace())) throw;
  } catch (const std::bad_alloc&) {
  } catch (const std::exception& e) {
    // The TorchScript interpreter rethrows the errors of its ops as std::runtime_error
    // with a traceback, so the message decides.
    if (!is_out_of_memory(e.what())) throw;
  }
  throw RuntimeError(out_of_memory_message(labels, batch, device));
}

}  // namespace copgen
