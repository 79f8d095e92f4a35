// The scene path of translate: any size, physical bands, alignment, fused tiling.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <filesystem>

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "copgen/cancel.hpp"
#include "copgen/conditioning.hpp"
#include "copgen/error.hpp"
#include "copgen/models.hpp"
#include "copgen/pipeline.hpp"
#include "copgen/pixels.hpp"
#include "copgen/raster_scene.hpp"
#include "copgen/render.hpp"
#include "copgen/scene.hpp"
#include "copgen/tiling.hpp"
#include "copgen/tuples.hpp"
#include "pipeline_detail.hpp"

namespace copgen {

namespace fs = std::filesystem;
using namespace detail;

namespace {

constexpr int kWindow = 256;  // model input side in pixels

// Index of `i` reflected into [0, n) (numpy's "reflect": ... 2 1 | 0 1 2 ... n-1 | n-2 ...).
int64_t reflect_index(int64_t i, int64_t n) {
  if (n == 1) return 0;
  const int64_t period = 2 * (n - 1);
  i %= period;
  if (i < 0) i += period;
  return i < n ? i : period - i;
}

// A window of a rendered scene [3, size, size] uint8 with reflection past the scene's
// edges, and its validity [size, size].
std::pair<torch::Tensor, torch::Tensor> read_reflected(const RasterSource& src, int x, int y, int size) {
  const int w = src.info().width, h = src.info().height;
  std::vector<int64_t> xs(static_cast<size_t>(size)), ys(static_cast<size_t>(size));
  int64_t x0 = w, x1 = -1, y0 = h, y1 = -1;
  for (int i = 0; i < size; ++i) {
    xs[static_cast<size_t>(i)] = reflect_index(x + i, w);
    ys[static_cast<size_t>(i)] = reflect_index(y + i, h);
    x0 = std::min(x0, xs[static_cast<size_t>(i)]), x1 = std::max(x1, xs[static_cast<size_t>(i)]);
    y0 = std::min(y0, ys[static_cast<size_t>(i)]), y1 = std::max(y1, ys[static_cast<size_t>(i)]);
  }
  const int rw = static_cast<int>(x1 - x0 + 1), rh = static_cast<int>(y1 - y0 + 1);
  const torch::Tensor region = src.read({1, 2, 3}, static_cast<int>(x0), static_cast<int>(y0), rw, rh);
  const torch::Tensor valid = src.read_valid({1}, static_cast<int>(x0), static_cast<int>(y0), rw, rh);
  const auto ix = torch::tensor(xs) - x0, iy = torch::tensor(ys) - y0;
  const torch::Tensor px = region.index_select(1, iy).index_select(2, ix);
  const torch::Tensor pv = valid.index_select(0, iy).index_select(1, ix);
  return {torch::nan_to_num(px, 0.0).round().clamp(0, 255).to(torch::kUInt8), pv};
}

struct Canvas {
  int width = 0, height = 0;     // the scene
  int64_t lat_h = 0, lat_w = 0;  // the latent canvas (padded scene / 8)
  Layout layout;                 // latent windows
  std::vector<Core> cores;
};

Canvas make_canvas(const Grid& grid, int overlap_px) {
  Canvas c;
  c.width = grid.width;
  c.height = grid.height;
  const auto pad8 = [](int v) { return static_cast<int64_t>(std::max(kWindow, (v + 7) / 8 * 8)); };
  c.lat_h = pad8(grid.height) / 8;
  c.lat_w = pad8(grid.width) / 8;
  c.layout = make_layout(c.lat_h, c.lat_w, kWindow / 8, overlap_px / 8);
  c.cores = window_cores(c.layout);
  return c;
}

// Posterior moments of a rendered scene on the latent canvas [2C, lat_h, lat_w]: each
// window encoded, its core written.
torch::Tensor encode_scene(Models& models, const RasterSource& rendered, const Canvas& cv, int batch) {
  const int64_t c2 = 2 * models.latent_channels();
  torch::Tensor moments = torch::zeros({c2, cv.lat_h, cv.lat_w});
  const auto& wins = cv.layout.windows;
  for (size_t first = 0; first < wins.size(); first += static_cast<size_t>(batch)) {
    throw_if_stop_requested();
    const size_t n = std::min(wins.size() - first, static_cast<size_t>(batch));
    std::vector<torch::Tensor> px;
    for (size_t i = first; i < first + n; ++i) {
      px.push_back(read_reflected(rendered, static_cast<int>(wins[i].x * 8), static_cast<int>(wins[i].y * 8), kWindow).first);
    }
    const torch::Tensor enc = encode_images(models, torch::stack(px, 0), batch);
    for (size_t i = first; i < first + n; ++i) {
      const Core& k = cv.cores[i];
      const Window& w = wins[i];
      moments.narrow(1, k.y0, k.y1 - k.y0).narrow(2, k.x0, k.x1 - k.x0)
          .copy_(enc[static_cast<int64_t>(i - first)].narrow(1, k.y0 - w.y, k.y1 - k.y0).narrow(2, k.x0 - w.x, k.x1 - k.x0));
    }
  }
  return moments;
}

// Noise prediction over the whole latent canvas: x [G, 1, C, H, W]; every window goes
// through the network (in batches) and the overlapping predictions are averaged with
// normalised feathering weights (MultiDiffusion, Bar-Tal et al. 2023, arXiv 2302.08113).
NoiseFn fused_noise_fn(Models& models, const Roles& roles, const Canvas& cv, const torch::Tensor& weights,
                       const std::vector<torch::Tensor>& given, const std::vector<torch::Tensor>& unused,
                       const Guidance& guidance, const std::vector<torch::Tensor>& guidance_noise, int batch) {
  const double n_t = models.schedule().num_timesteps();
  return [&, n_t, batch](const torch::Tensor& x, double t) {
    const torch::Tensor xw = extract_windows(x.squeeze(1), cv.layout);  // [N, G, C, 32, 32]
    std::vector<torch::Tensor> gw, uw, hw;
    for (const auto& g : given) gw.push_back(extract_windows(g[0], cv.layout));
    for (const auto& u : unused) uw.push_back(extract_windows(u[0], cv.layout));
    for (const auto& g : guidance_noise) hw.push_back(extract_windows(g[0], cv.layout));
    const int64_t n = xw.size(0);
    std::vector<torch::Tensor> parts;
    for (int64_t i = 0; i < n; i += batch) {
      throw_if_stop_requested();  // one call over a large canvas is many windows
      const int64_t b = std::min<int64_t>(batch, n - i);
      const torch::Tensor xb = xw.narrow(0, i, b).transpose(0, 1).contiguous();  // [G, b, C, 32, 32]
      std::vector<torch::Tensor> gb, ub, hb;
      for (const auto& g : gw) gb.push_back(g.narrow(0, i, b));
      for (const auto& u : uw) ub.push_back(u.narrow(0, i, b));
      for (const auto& h : hw) hb.push_back(h.narrow(0, i, b));
      torch::Tensor eps = predict_generated(models, roles, xb, t * n_t, gb, 0.0, ub);
      if (guidance.scale != 0.0 && !roles.given.empty()) {
        const torch::Tensor un = predict_generated(models, roles, xb, t * n_t, hb, n_t, ub);
        eps = (1.0 + guidance.scale) * eps - guidance.scale * un;
      }
      parts.push_back(eps.transpose(0, 1));  // [b, G, C, 32, 32]
    }
    return fuse_windows(torch::cat(parts, 0), weights, cv.layout).unsqueeze(1);
  };
}

struct OutputSinks {
  std::vector<RasterSink> sinks;  // per generated modality
};

// Scenes are sampled on one whole latent canvas (that is what makes fused tiling seamless),
// so its memory is bounded by the canvas, not the scene. Refuses, before any work, a scene
// whose canvas buffers would not fit in this machine's memory: the given latents and
// moments, the noise of the unused modalities, the solver's state and history, the fused
// prediction and its weights, about kCanvasBuffers latent-sized buffers per modality.
void check_canvas_fits(const Grid& grid, int64_t channels, const std::string& label) {
  constexpr double kCanvasBuffers = 6.0;
  const double lat = std::ceil(grid.width / 8.0) * std::ceil(grid.height / 8.0);
  const double need = lat * static_cast<double>(channels) * sizeof(float) * kCanvasBuffers * kNumModalities;
  const double have = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
  if (have > 0 && need > have) {
    const auto gb = [](double bytes) { return std::to_string(std::llround(bytes / 1e9)); };
    throw InputError("the scene of " + label + " is too large: " + std::to_string(grid.width) + " x " +
                     std::to_string(grid.height) + " pixels need about " + gb(need) +
                     " GB of memory for the latent canvas, and this machine has " + gb(have) +
                     " GB; split it into parts, e.g. with gdal_translate -srcwin");
  }
}

}  // namespace

RunResult translate_scene(const TranslateOptions& o, Models& models, const ProgressFn& progress) {
  const auto started = std::chrono::steady_clock::now();
  validate(o);
  validate(o.scene);
  const std::vector<Modality> generated = generated_of(o);

  // inputs: resolved, aligned, checked before any output is touched
  std::vector<ModalityInput> inputs;
  std::vector<Modality> given_mods;
  for (const GivenInput& g : o.inputs) {
    if (has_suffix_ci(g.path, ".npy")) {
      throw InputError(modality_name(g.modality) + " input '" + g.path +
                       "': .npy latents are accepted for single 256 x 256 tiles only, not with scene inputs");
    }
    inputs.push_back(resolve_input(g.modality, g.path, o.scene.input_kind));
    given_mods.push_back(g.modality);
  }
  const Grid grid = scene_grid(inputs, o.scene);
  const Roles roles = Roles::make(given_mods, generated);
  check_canvas_fits(grid, models.latent_channels(), inputs[0].label);
  if (!o.save_latents_dir.empty()) {
    throw UsageError("--save-latents is offered for 256 x 256 tiles only, not for scenes");
  }
  std::vector<std::string> input_paths;
  for (const ModalityInput& in : inputs) {
    input_paths.push_back(in.label);
    input_paths.insert(input_paths.end(), in.files.begin(), in.files.end());
  }
  const OutputPlan plan = plan_outputs(o, generated, {}, input_paths);
  spdlog::info("scene {} x {} ({}), {} tiling, overlap {} px", grid.width, grid.height,
               grid.georeferenced ? fmt::format("{:g} m", grid.resolution()) : "no georeferencing",
               tiling_name(o.scene.tiling), o.scene.overlap);

  RunResult result;
  result.seed = o.seed.value_or(random_seed());
  if (!o.seed) spdlog::info("seed: {} (random; pass --seed {} to reproduce)", result.seed, result.seed);

  // renderings of the inputs go to a scratch folder beside the first output
  const WorkDir work(fs::path(plan.images[0][0]).parent_path().string());
  std::vector<RasterSource> rendered;
  const std::int64_t pixels = static_cast<std::int64_t>(grid.width) * grid.height;
  for (const ModalityInput& in : inputs) {
    const std::string p = (fs::path(work.path()) / (modality_name(in.modality) + ".tif")).string();
    const std::int64_t valid = render_to_file(in, grid, p, o.scene);
    if (valid == 0 && !o.scene.fill_nodata) {
      throw InputError(modality_name(in.modality) + " input '" + in.label +
                       "': every pixel of the target grid is nodata, NaN or outside the input; "
                       "there is nothing to translate (--fill-nodata generates everywhere)");
    }
    if (valid < pixels) {
      spdlog::info("{} input '{}': {} of {} pixels are nodata, NaN or outside the input; they are {} in the outputs",
                   modality_name(in.modality), in.label, pixels - valid, pixels,
                   o.scene.fill_nodata ? "generated (--fill-nodata)" : "nodata");
    }
    rendered.push_back(RasterSource::open(p, modality_name(in.modality) + " rendering"));
  }
  // given inputs in modality order (roles.given)
  std::vector<size_t> order(inputs.size());
  for (size_t i = 0; i < inputs.size(); ++i) order[i] = i;
  std::sort(order.begin(), order.end(), [&](size_t a, size_t b) {
    return modality_index(inputs[a].modality) < modality_index(inputs[b].modality);
  });

  const Canvas cv = make_canvas(grid, o.scene.overlap);
  const torch::Tensor weights = normalised_weights(cv.layout);
  const int64_t c = models.latent_channels();
  const double sf = models.scale_factor();
  const torch::Device device = models.device();
  const int batch = o.batch_size;
  std::vector<torch::Tensor> moments;
  for (size_t i : order) moments.push_back(encode_scene(models, rendered[i], cv, batch));

  at::Generator gen = at::detail::createCPUGenerator(result.seed);
  auto meta = run_metadata(o, models, result.seed, "translate", sorted_modalities(given_mods), roles);
  meta["COPGEN_TILING"] = tiling_name(o.scene.tiling);
  meta["COPGEN_OVERLAP"] = std::to_string(o.scene.overlap);
  std::string kinds;
  for (const auto& in : inputs) kinds += (kinds.empty() ? "" : ",") + modality_name(in.modality) + ":" + input_kind_name(in.kind);
  meta["COPGEN_INPUT_KINDS"] = kinds;
  meta["COPGEN_L2A_OFFSET_ASSUMED"] = std::to_string(static_cast<int>(o.scene.s2l2a_offset));
  meta["COPGEN_FILL_NODATA"] = o.scene.fill_nodata ? "yes" : "no";

  const bool guided = o.guidance.scale != 0.0 && !roles.given.empty();
  const int n_windows = static_cast<int>(cv.layout.windows.size());
  const int chunks = o.scene.tiling == Tiling::Fused ? 1 : (n_windows + batch - 1) / batch;
  const int calls_total = o.samples * chunks * o.sampler.steps;
  const int calls_per_step = guided ? 2 : 1;
  std::vector<bool> needs_eps(roles.given.size(), o.cond_latent == CondLatent::Sample);

  for (int k = 0; k < o.samples; ++k) {
    throw_if_stop_requested();
    const Draws d = draw_noise(gen, roles, needs_eps, 1, {c, cv.lat_h, cv.lat_w}, guided);
    std::vector<torch::Tensor> given, unused, gnoise;
    for (size_t i = 0; i < moments.size(); ++i) {
      given.push_back(latent_from_moments(moments[i].unsqueeze(0), d.posterior_eps[i], sf).to(device));
    }
    for (const auto& u : d.unused_noise) unused.push_back(u.to(device));
    for (const auto& g : d.guidance_noise) gnoise.push_back(g.to(device));

    int done_before = k * chunks * o.sampler.steps;
    torch::Tensor x0;  // [G, C, H, W]
    if (o.scene.tiling == Tiling::Fused) {
      SamplerOptions so = o.sampler;
      so.on_call = [&](int done, int) {
        result.network_calls += n_windows * calls_per_step;
        if (progress) progress(done_before + done, calls_total);
        throw_if_stop_requested();
      };
      const NoiseFn fn = fused_noise_fn(models, roles, cv, weights, given, unused, o.guidance, gnoise, batch);
      x0 = sample(fn, models.schedule(), d.x_T.to(device), so).squeeze(1);
    } else {
      // each window alone, from its part of the same noise canvases; then feathered
      const torch::Tensor xw = extract_windows(d.x_T.squeeze(1), cv.layout);  // [N, G, C, 32, 32]
      std::vector<torch::Tensor> outs;
      for (int64_t i = 0; i < n_windows; i += batch) {
        const int64_t b = std::min<int64_t>(batch, n_windows - i);
        std::vector<torch::Tensor> gb, ub, hb;
        for (const auto& g : given) gb.push_back(extract_windows(g[0], cv.layout).narrow(0, i, b));
        for (const auto& u : unused) ub.push_back(extract_windows(u[0], cv.layout).narrow(0, i, b));
        for (const auto& h : gnoise) hb.push_back(extract_windows(h[0], cv.layout).narrow(0, i, b));
        const NoiseFn fn = joint_noise_fn(models, roles, gb, ub, o.guidance, hb);
        SamplerOptions so = o.sampler;
        so.on_call = [&](int done, int) {
          result.network_calls += static_cast<int>(b) * calls_per_step;
          if (progress) progress(done_before + done, calls_total);
          throw_if_stop_requested();
        };
        outs.push_back(sample(fn, models.schedule(), xw.narrow(0, i, b).transpose(0, 1).contiguous().to(device), so)
                           .transpose(0, 1));
        done_before += o.sampler.steps;
      }
      x0 = fuse_windows(torch::cat(outs, 0), weights, cv.layout);
    }
    if (!torch::isfinite(x0).all().item<bool>()) {
      throw RuntimeError("the network produced NaN or infinite values for the scene of " + inputs[0].label +
                         " (sample " + std::to_string(k) + "); check the models or try --precision fp32");
    }

    // decode window by window, each window writing its core, masked by the inputs' nodata
    std::vector<RasterSink> sinks;
    for (size_t g = 0; g < roles.generated.size(); ++g) {
      const Modality m = roles.generated[g];
      SinkSpec spec;
      spec.grid = grid;
      spec.format = o.format;
      spec.overwrite = o.overwrite;
      spec.metadata = meta;
      spec.metadata["COPGEN_MODALITY"] = modality_name(m);
      spec.metadata["COPGEN_SAMPLE"] = std::to_string(k);
      spec.mask = !o.scene.fill_nodata;  // nodata is marked by the mask band alone (docs/scenes.md)
      const bool physical = o.scene.output_kind == OutputKind::Physical &&
                            (m == Modality::S2L1C || m == Modality::S2L2A);
      if (physical) {
        spec.bands = 4;
        spec.data_type = "UInt16";
        spec.rgb = false;
        spec.band_descriptions = {"B04", "B03", "B02", "saturated (1: the thumbnail was clipped at 255)"};
        spec.metadata["COPGEN_OUTPUT_KIND"] = "physical (digital numbers)";
      } else {
        spec.band_descriptions = band_descriptions(m);
        spec.metadata["COPGEN_OUTPUT_KIND"] = "thumbnail";
      }
      sinks.push_back(RasterSink::create(plan.images[static_cast<size_t>(k)][g], spec));
    }
    for (size_t first = 0; first < cv.layout.windows.size(); first += static_cast<size_t>(batch)) {
      throw_if_stop_requested();
      const size_t n = std::min(cv.layout.windows.size() - first, static_cast<size_t>(batch));
      std::vector<torch::Tensor> lat;
      for (size_t i = first; i < first + n; ++i) {
        const Window& w = cv.layout.windows[i];
        lat.push_back(x0.narrow(2, w.y, cv.layout.size).narrow(3, w.x, cv.layout.size));
      }
      const torch::Tensor latb = torch::stack(lat, 1);  // [G, n, C, 32, 32]
      for (size_t g = 0; g < roles.generated.size(); ++g) {
        const Modality m = roles.generated[g];
        const torch::Tensor px = model_to_pixels(models.decode(latb[static_cast<int64_t>(g)])).to(torch::kCPU);
        for (size_t i = first; i < first + n; ++i) {
          const Core& kc = cv.cores[i];
          const Window& w = cv.layout.windows[i];
          // the core in pixels, clipped to the scene
          const int x0p = static_cast<int>(kc.x0 * 8), y0p = static_cast<int>(kc.y0 * 8);
          const int x1p = std::min(static_cast<int>(kc.x1 * 8), grid.width);
          const int y1p = std::min(static_cast<int>(kc.y1 * 8), grid.height);
          if (x1p <= x0p || y1p <= y0p) continue;
          torch::Tensor tile = px[static_cast<int64_t>(i - first)]
                                   .narrow(1, y0p - w.y * 8, y1p - y0p)
                                   .narrow(2, x0p - w.x * 8, x1p - x0p);
          torch::Tensor valid = torch::ones({y1p - y0p, x1p - x0p}, torch::kBool);
          if (!o.scene.fill_nodata) {
            for (const RasterSource& r : rendered) valid.logical_and_(r.read_valid({1}, x0p, y0p, x1p - x0p, y1p - y0p));
          }
          torch::Tensor data;
          if (sinks[g].path().empty()) continue;
          if (o.scene.output_kind == OutputKind::Physical && (m == Modality::S2L1C || m == Modality::S2L2A)) {
            torch::Tensor saturated;
            const double offset = m == Modality::S2L2A ? o.scene.s2l2a_offset : 0.0;
            const torch::Tensor dn = s2_dn_from_pixels(tile, offset, &saturated);
            data = torch::cat({dn, saturated.unsqueeze(0).to(dn.scalar_type())}, 0);
          } else {
            data = tile;
          }
          data = torch::where(valid.unsqueeze(0), data, torch::zeros_like(data));
          sinks[g].write(data, x0p, y0p);
          if (!o.scene.fill_nodata) sinks[g].write_mask(valid, x0p, y0p);
        }
      }
    }
    for (size_t g = 0; g < sinks.size(); ++g) {
      sinks[g].commit();
      result.outputs.push_back(sinks[g].path());
      spdlog::info("wrote {} ({})", sinks[g].path(), modality_name(roles.generated[g]));
    }
  }

  // per-pixel mean and standard deviation over the samples, read back window by window
  if (o.samples > 1 && (o.scene.summary_mean || o.scene.summary_std)) {
    for (size_t g = 0; g < roles.generated.size(); ++g) {
      std::vector<RasterSource> samples;
      for (int k = 0; k < o.samples; ++k) {
        samples.push_back(RasterSource::open(plan.images[static_cast<size_t>(k)][g], "sample"));
      }
      const int bands = samples[0].info().bands;
      std::vector<int> band_list;
      for (int b = 1; b <= bands; ++b) band_list.push_back(b);
      const fs::path base = fs::path(output_path(o.output, roles.generated, roles.generated[g], 0, 1));
      std::vector<std::pair<std::string, bool>> kinds_out;
      if (o.scene.summary_mean) kinds_out.emplace_back("mean", true);
      if (o.scene.summary_std) kinds_out.emplace_back("std", false);
      for (const auto& [name, is_mean] : kinds_out) {
        const std::string p = (base.parent_path() / (base.stem().string() + "_" + name + base.extension().string())).string();
        SinkSpec spec;
        spec.grid = grid;
        spec.bands = bands;
        spec.data_type = "Float32";
        spec.rgb = false;
        spec.format = o.format;
        spec.overwrite = o.overwrite;
        spec.metadata = meta;
        spec.metadata["COPGEN_SUMMARY"] = name + " over " + std::to_string(o.samples) + " samples";
        spec.metadata["COPGEN_MODALITY"] = modality_name(roles.generated[g]);
        RasterSink sink = RasterSink::create(p, spec);
        for (int y = 0; y < grid.height; y += kWindow) {
          for (int x = 0; x < grid.width; x += 4 * kWindow) {
            const int w = std::min(4 * kWindow, grid.width - x), h = std::min(kWindow, grid.height - y);
            torch::Tensor sum = torch::zeros({bands, h, w}, torch::kFloat64), sq = torch::zeros_like(sum);
            for (const auto& s : samples) {
              const auto v = s.read(band_list, x, y, w, h).to(torch::kFloat64);
              sum += v;
              sq += v * v;
            }
            const auto mean = sum / o.samples;
            sink.write(is_mean ? mean : (sq / o.samples - mean * mean).clamp_min(0).sqrt(), x, y);
          }
        }
        sink.commit();
        result.outputs.push_back(p);
        spdlog::info("wrote {} ({} over {} samples)", p, name, o.samples);
      }
    }
  }
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  return result;
}

}  // namespace copgen
