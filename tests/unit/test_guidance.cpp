// Classifier-free guidance through sample_tuples on the tiny models: scale 0 is exactly the
// unguided path (bit for bit, one backbone call per solver step, no extra draws); a
// non-zero scale changes the generated latents and makes two backbone calls per step.
#include "catch_torch.hpp"

#include <ATen/CPUGeneratorImpl.h>

#include "copgen/conditioning.hpp"
#include "copgen/models.hpp"
#include "copgen/sampler.hpp"
#include "copgen/tuples.hpp"

using namespace copgen;

namespace {

constexpr int kSteps = 4;
constexpr std::uint64_t kSeed = 21;

Models tiny() {
  ModelOptions o;
  o.device = "cpu";
  return Models::load(COPGEN_TEST_MODELS, o);
}

torch::Tensor pixels(std::int64_t b) {
  return torch::remainder(torch::arange(b * 3 * 256 * 256, torch::kInt64) * 7, 251)
      .view({b, 3, 256, 256})
      .to(torch::kUInt8);
}

std::vector<TupleInputs> tuples_of(const torch::Tensor& px) {
  std::vector<TupleInputs> t(static_cast<size_t>(px.size(0)));
  for (size_t k = 0; k < t.size(); ++k) {
    t[k].label = "tile " + std::to_string(k);
    t[k].given[Modality::S2L1C].pixels = px[static_cast<std::int64_t>(k)];
  }
  return t;
}

// The generated S2L2A latents [B, C, h, w] assembled by hand from the documented pieces.
torch::Tensor by_hand(Models& m, const Roles& roles, const torch::Tensor& px, double scale) {
  at::Generator gen = at::detail::createCPUGenerator(kSeed);
  const torch::Tensor moments = encode_images(m, px);
  const Draws d = draw_noise(gen, roles, {true}, px.size(0), {4, 32, 32}, scale != 0.0);
  const torch::Tensor given = latent_from_moments(moments, d.posterior_eps[0], m.scale_factor());
  const NoiseFn fn = joint_noise_fn(m, roles, {given}, d.unused_noise, Guidance{scale}, d.guidance_noise);
  SamplerOptions so;
  so.steps = kSteps;
  return sample(fn, m.schedule(), d.x_T, so)[0];
}

}  // namespace

TEST_CASE("guidance: scale 0 is the unguided path bit for bit with one call per step", "[guidance]") {
  Models m = tiny();
  const Roles roles = Roles::make({Modality::S2L1C}, {Modality::S2L2A});
  const torch::Tensor px = pixels(2);
  SamplingOptions s;
  s.sampler.steps = kSteps;
  s.guidance.scale = 0.0;
  at::Generator gen = at::detail::createCPUGenerator(kSeed);
  const std::int64_t before = m.backbone_calls();
  const auto out = sample_tuples(m, roles, tuples_of(px), s, gen);
  CHECK(m.backbone_calls() - before == kSteps);

  const torch::Tensor want = by_hand(m, roles, px, 0.0);
  REQUIRE(out.size() == 2);
  for (std::int64_t k = 0; k < 2; ++k) {
    CHECK(torch::equal(out[static_cast<size_t>(k)].latents.at(Modality::S2L2A), want[k]));
  }
  // No guidance noise was drawn: the generator stands where the unguided draws leave it.
  at::Generator ref = at::detail::createCPUGenerator(kSeed);
  (void)draw_noise(ref, roles, {true}, 2, {4, 32, 32}, false);
  CHECK(torch::equal(torch::randn({8}, gen, torch::kFloat32), torch::randn({8}, ref, torch::kFloat32)));
}

TEST_CASE("guidance: a non-zero scale changes the output and doubles the backbone calls", "[guidance]") {
  Models m = tiny();
  const Roles roles = Roles::make({Modality::S2L1C}, {Modality::S2L2A});
  const torch::Tensor px = pixels(2);
  SamplingOptions plain, guided;
  plain.sampler.steps = guided.sampler.steps = kSteps;
  guided.guidance.scale = 0.5;

  at::Generator g1 = at::detail::createCPUGenerator(kSeed);
  const auto a = sample_tuples(m, roles, tuples_of(px), plain, g1);
  at::Generator g2 = at::detail::createCPUGenerator(kSeed);
  const std::int64_t before = m.backbone_calls();
  int steps_seen = 0;
  const auto b = sample_tuples(m, roles, tuples_of(px), guided, g2, [&](int, int) { ++steps_seen; });
  CHECK(m.backbone_calls() - before == 2 * kSteps);
  CHECK(steps_seen == kSteps);

  for (size_t k = 0; k < 2; ++k) {
    const torch::Tensor da = a[k].latents.at(Modality::S2L2A), db = b[k].latents.at(Modality::S2L2A);
    CHECK(torch::isfinite(db).all().item<bool>());
    CHECK((da - db).abs().max().item<double>() > 1e-3);
    // draws (1) and (2) come before the guidance noise: the given latent is the same
    CHECK(torch::equal(a[k].latents.at(Modality::S2L1C), b[k].latents.at(Modality::S2L1C)));
  }
  const torch::Tensor want = by_hand(m, roles, px, 0.5);
  for (std::int64_t k = 0; k < 2; ++k) {
    CHECK(torch::equal(b[static_cast<size_t>(k)].latents.at(Modality::S2L2A), want[k]));
  }
}

TEST_CASE("guidance: without a given modality there is nothing to guide - one call per step", "[guidance]") {
  Models m = tiny();
  const Roles roles = Roles::make({}, {Modality::DEM, Modality::S2L2A});
  SamplingOptions s;
  s.sampler.steps = kSteps;
  s.guidance.scale = 0.5;
  s.decode = false;
  std::vector<TupleInputs> t(1);
  t[0].label = "unconditional";
  at::Generator g1 = at::detail::createCPUGenerator(kSeed);
  const std::int64_t before = m.backbone_calls();
  const auto guided = sample_tuples(m, roles, t, s, g1);
  CHECK(m.backbone_calls() - before == kSteps);
  s.guidance.scale = 0.0;
  at::Generator g2 = at::detail::createCPUGenerator(kSeed);
  const auto plain = sample_tuples(m, roles, t, s, g2);
  CHECK(torch::equal(guided[0].latents.at(Modality::DEM), plain[0].latents.at(Modality::DEM)));
}

TEST_CASE("guidance: the one rule of passes per step and chunks", "[guidance]") {
  CHECK_FALSE(copgen::is_guided(copgen::Guidance{0.0}, true));  // a scale of 0 is exactly no guidance
  CHECK(copgen::is_guided(copgen::Guidance{2.0}, true));
  CHECK_FALSE(copgen::is_guided(copgen::Guidance{2.0}, false));  // nothing given: no unconditional pass
  CHECK(copgen::passes_per_step(copgen::Guidance{0.0}, true) == 1);
  CHECK(copgen::passes_per_step(copgen::Guidance{-1.5}, true) == 2);
  CHECK(copgen::passes_per_step(copgen::Guidance{2.0}, false) == 1);
  CHECK(copgen::chunks_of(5, 2) == 3);
  CHECK(copgen::chunks_of(4, 2) == 2);
  CHECK(copgen::chunks_of(1, 8) == 1);
  CHECK(copgen::chunks_of(0, 8) == 0);
}
