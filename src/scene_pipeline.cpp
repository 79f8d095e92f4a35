// The scene path of translate, phase by phase (scene_pipeline.hpp).
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
#include "copgen/pictures.hpp"
#include "copgen/pixels.hpp"
#include "copgen/previews.hpp"
#include "copgen/provenance.hpp"
#include "copgen/raster_scene.hpp"
#include "copgen/render.hpp"
#include "copgen/scene.hpp"
#include "copgen/scene_pipeline.hpp"
#include "copgen/tiling.hpp"
#include "copgen/tuples.hpp"
#include "copgen/outputs.hpp"
#include "text.hpp"

namespace copgen {

namespace fs = std::filesystem;

namespace {

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
      px.push_back(read_reflected(rendered, static_cast<int>(wins[i].x * cv.factor), static_cast<int>(wins[i].y * cv.factor),
                                  cv.window)
                       .first);
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

// Scenes are sampled on one whole latent canvas (that is what makes fused tiling seamless),
// so its memory is bounded by the canvas, not the scene. Refuses, before any work, a scene
// whose canvas buffers would not fit in this machine's memory: the given latents and
// moments, the noise of the unused modalities, the solver's state and history, the fused
// prediction and its weights, about kCanvasBuffers latent-sized buffers per modality.
double canvas_bytes(const Grid& grid, const Models& models) {
  constexpr double kCanvasBuffers = 6.0;
  const double f = models.downsampling();
  const double lat = std::ceil(grid.width / f) * std::ceil(grid.height / f);
  return lat * static_cast<double>(models.latent_channels()) * sizeof(float) * kCanvasBuffers * kNumModalities;
}

void check_canvas_fits(const Grid& grid, const Models& models, const std::string& label) {
  const double need = canvas_bytes(grid, models);
  const double have = static_cast<double>(sysconf(_SC_PHYS_PAGES)) * static_cast<double>(sysconf(_SC_PAGE_SIZE));
  if (have > 0 && need > have) {
    const auto gb = [](double bytes) { return std::to_string(std::llround(bytes / 1e9)); };
    throw InputError("the scene of " + label + " is too large: " + std::to_string(grid.width) + " x " +
                     std::to_string(grid.height) + " pixels need about " + gb(need) +
                     " GB of memory for the latent canvas, and this machine has " + gb(have) +
                     " GB; split it into parts, e.g. with gdal_translate -srcwin");
  }
}

// A canvas conditioning (device_conditioning of [1, C, lat_h, lat_w] canvases) cut into
// windows [N, C, size, size].
Conditioning windows_of(const Conditioning& canvas, const Layout& layout) {
  Conditioning w;
  for (const auto& g : canvas.given) w.given.push_back(extract_windows(g[0], layout));
  for (const auto& u : canvas.unused) w.unused.push_back(extract_windows(u[0], layout));
  for (const auto& h : canvas.guidance_noise) w.guidance_noise.push_back(extract_windows(h[0], layout));
  return w;
}

// Windows i .. i + b - 1 of a windowed conditioning.
Conditioning narrow(const Conditioning& windows, int64_t i, int64_t b) {
  Conditioning w;
  for (const auto& g : windows.given) w.given.push_back(g.narrow(0, i, b));
  for (const auto& u : windows.unused) w.unused.push_back(u.narrow(0, i, b));
  for (const auto& h : windows.guidance_noise) w.guidance_noise.push_back(h.narrow(0, i, b));
  return w;
}

// Noise prediction over the whole latent canvas: x [G, 1, C, H, W]; every window goes
// through the joint noise function (in batches) and the overlapping predictions are
// averaged with normalised feathering weights (MultiDiffusion, Bar-Tal et al. 2023,
// arXiv 2302.08113).
NoiseFn fused_noise_fn(Models& models, const Roles& roles, const Canvas& cv, const torch::Tensor& weights,
                       Conditioning windows, const Guidance& guidance, int batch) {
  return [&models, &roles, &cv, &weights, windows = std::move(windows), guidance, batch](const torch::Tensor& x,
                                                                                        double t) {
    const torch::Tensor xw = extract_windows(x.squeeze(1), cv.layout);  // [N, G, C, 32, 32]
    const int64_t n = xw.size(0);
    std::vector<torch::Tensor> parts;
    for (int64_t i = 0; i < n; i += batch) {
      throw_if_stop_requested();  // one call over a large canvas is many windows
      const int64_t b = std::min<int64_t>(batch, n - i);
      const torch::Tensor xb = xw.narrow(0, i, b).transpose(0, 1).contiguous();  // [G, b, C, 32, 32]
      parts.push_back(narrow(windows, i, b).noise_fn(models, roles, guidance)(xb, t).transpose(0, 1));
    }
    return fuse_windows(torch::cat(parts, 0), weights, cv.layout).unsqueeze(1);
  };
}

// The provenance items of a scene's outputs: run_metadata's and the scene settings'.
std::map<std::string, std::string> scene_metadata(const TranslateOptions& o, const Models& models, const ScenePlan& p) {
  std::vector<Modality> given_mods;
  for (const ModalityInput& in : p.inputs) given_mods.push_back(in.modality);
  auto meta = run_metadata(o.sampling, o.samples, models, p.seed, "translate", sorted_modalities(given_mods), p.roles);
  meta["COPGEN_TILING"] = tiling_name(o.scene.tiling);
  meta["COPGEN_OVERLAP"] = std::to_string(o.scene.overlap);
  std::string kinds;
  for (const auto& in : p.inputs) {
    kinds += (kinds.empty() ? "" : ",") + modality_name(in.modality) + ":" + input_kind_name(in.kind);
  }
  meta["COPGEN_INPUT_KINDS"] = kinds;
  // the largest DN offset subtracted from an S2 input, or 1000 where forced on (physical
  // outputs use it); COPGEN_S2_OFFSET says per input what was read, where anything said
  double offset = o.scene.s2_offset == S2Offset::On ? 1000.0 : 0.0;
  for (const ModalityInput& in : p.inputs) offset = std::max(offset, in.dn_offset);
  meta["COPGEN_L2A_OFFSET_ASSUMED"] = std::to_string(static_cast<int>(offset));
  if (const std::string r = s2_offset_record(p.inputs); !r.empty()) meta["COPGEN_S2_OFFSET"] = r;
  meta["COPGEN_FILL_NODATA"] = o.scene.fill_nodata ? "yes" : "no";
  if (!p.grid.chosen.empty()) meta["COPGEN_GRID_CRS_CHOSEN"] = p.grid.chosen;
  if (const std::string r = mosaic_record(p.inputs, o.scene.mosaic_order); !r.empty()) meta["COPGEN_MOSAIC"] = r;
  return meta;
}

bool physical_output(const SceneOptions& s, Modality m) { return physical_dn_offset(s, m).has_value(); }

// The sink of sample k's output of generated modality g.
RasterSink create_sink(const ScenePlan& plan, const TranslateOptions& o, std::size_t g, int k) {
  const Modality m = plan.roles.generated[g];
  SinkSpec spec;
  spec.grid = plan.grid;
  spec.format = o.output.format;
  spec.overwrite = o.output.overwrite;
  spec.metadata = plan.metadata;
  spec.metadata["COPGEN_MODALITY"] = modality_name(m);
  spec.metadata["COPGEN_SAMPLE"] = std::to_string(k);
  spec.mask = !o.scene.fill_nodata;  // nodata is marked by the mask band alone (docs/scenes.md)
  if (physical_output(o.scene, m)) {
    spec.bands = 4;
    spec.data_type = "UInt16";
    spec.rgb = false;
    spec.band_descriptions = {"B04", "B03", "B02", "saturated (1: the thumbnail was clipped at 255)"};
    spec.metadata["COPGEN_OUTPUT_KIND"] = "physical (digital numbers)";
  } else {
    spec.band_descriptions = band_descriptions(m);
    spec.metadata["COPGEN_OUTPUT_KIND"] = "thumbnail";
  }
  return RasterSink::create(plan.outputs.images[static_cast<std::size_t>(k)][g], spec);
}

// Writes the core of window i (decoded pixels px [3, 256, 256]) into sink, clipped to the
// scene, as physical digital numbers where asked, 0 and masked where a rendering is nodata.
void write_core(RasterSink& sink, const torch::Tensor& px, const ScenePlan& plan, const SceneOptions& scene,
                const std::vector<RasterSource>& rendered, Modality m, std::size_t i) {
  const Core& kc = plan.canvas.cores[i];
  const Window& w = plan.canvas.layout.windows[i];
  const int f = plan.canvas.factor;
  const int x0p = static_cast<int>(kc.x0 * f), y0p = static_cast<int>(kc.y0 * f);
  const int x1p = std::min(static_cast<int>(kc.x1 * f), plan.grid.width);
  const int y1p = std::min(static_cast<int>(kc.y1 * f), plan.grid.height);
  if (x1p <= x0p || y1p <= y0p) return;
  const torch::Tensor tile = px.narrow(1, y0p - w.y * f, y1p - y0p).narrow(2, x0p - w.x * f, x1p - x0p);
  torch::Tensor valid = torch::ones({y1p - y0p, x1p - x0p}, torch::kBool);
  if (!scene.fill_nodata) {
    for (const RasterSource& r : rendered) valid.logical_and_(r.read_valid({1}, x0p, y0p, x1p - x0p, y1p - y0p));
  }
  torch::Tensor data = tile;
  if (const std::optional<double> offset = physical_dn_offset(scene, m)) {
    torch::Tensor saturated;
    const torch::Tensor dn = s2_dn_from_pixels(tile, *offset, &saturated);
    data = torch::cat({dn, saturated.unsqueeze(0).to(dn.scalar_type())}, 0);
  }
  sink.write(torch::where(valid.unsqueeze(0), data, torch::zeros_like(data)), x0p, y0p);
  if (!scene.fill_nodata) sink.write_mask(valid, x0p, y0p);
}

// The per-pixel `name` ("mean" or "std") over the samples of generated modality g, to the
// plan's path p.
std::string write_summary(const ScenePlan& plan, const TranslateOptions& o, std::size_t g, const std::string& name,
                          const std::string& p) {
  std::vector<RasterSource> samples;
  for (int k = 0; k < o.samples; ++k) {
    samples.push_back(RasterSource::open(plan.outputs.images[static_cast<std::size_t>(k)][g], "sample"));
  }
  const int bands = samples[0].info().bands;
  std::vector<int> band_list;
  for (int b = 1; b <= bands; ++b) band_list.push_back(b);
  SinkSpec spec;
  spec.grid = plan.grid;
  spec.bands = bands;
  spec.data_type = "Float32";
  spec.rgb = false;
  spec.format = o.output.format;
  spec.overwrite = o.output.overwrite;
  spec.metadata = plan.metadata;
  spec.metadata["COPGEN_SUMMARY"] = name + " over " + std::to_string(o.samples) + " samples";
  spec.metadata["COPGEN_MODALITY"] = modality_name(plan.roles.generated[g]);
  RasterSink sink = RasterSink::create(p, spec);
  constexpr int kRows = 256, kCols = 1024;  // read and written a block at a time
  for (int y = 0; y < plan.grid.height; y += kRows) {
    for (int x = 0; x < plan.grid.width; x += kCols) {
      const int w = std::min(kCols, plan.grid.width - x), h = std::min(kRows, plan.grid.height - y);
      torch::Tensor sum = torch::zeros({bands, h, w}, torch::kFloat64), sq = torch::zeros_like(sum);
      for (const auto& s : samples) {
        const auto v = s.read(band_list, x, y, w, h).to(torch::kFloat64);
        sum += v;
        sq += v * v;
      }
      const auto mean = sum / o.samples;
      sink.write(name == "mean" ? mean : (sq / o.samples - mean * mean).clamp_min(0).sqrt(), x, y);
    }
  }
  sink.commit();
  spdlog::info("wrote {} ({} over {} samples)", p, name, o.samples);
  return p;
}

}  // namespace

Canvas make_canvas(const Grid& grid, int overlap_px, const Models& models) {
  Canvas c;
  c.width = grid.width;
  c.height = grid.height;
  c.factor = models.downsampling();
  c.window = models.image_size();
  const int f = c.factor;
  const auto pad = [&](int v) { return static_cast<int64_t>(std::max(c.window, (v + f - 1) / f * f)); };
  c.lat_h = pad(grid.height) / f;
  c.lat_w = pad(grid.width) / f;
  c.layout = make_layout(c.lat_h, c.lat_w, c.window / f, overlap_px / f);
  c.cores = window_cores(c.layout);
  return c;
}

ScenePlan prepare_scene(const TranslateOptions& o, const Models& models) {
  ScenePlan p;
  const std::vector<Modality> generated = generated_of(o);
  std::vector<Modality> given_mods;
  std::vector<std::vector<ModalityInput>> groups;  // per modality, as first given; several: a mosaic
  for (const GivenInput& g : o.inputs) {
    ModalityInput in = resolve_input(g.modality, g.path, o.scene.input_kind, o.scene.assets, o.scene.s2_offset);
    const auto it = std::find(given_mods.begin(), given_mods.end(), g.modality);
    if (it == given_mods.end()) {
      given_mods.push_back(g.modality);
      groups.push_back({std::move(in)});
    } else {
      groups[static_cast<std::size_t>(it - given_mods.begin())].push_back(std::move(in));
    }
  }
  for (auto& parts : groups) p.inputs.push_back(mosaic_input(std::move(parts), o.scene.mosaic_order));
  p.grid = scene_grid(p.inputs, o.scene);
  p.roles = Roles::make(given_mods, generated);
  check_canvas_fits(p.grid, models, p.inputs[0].label);
  std::vector<std::string> input_paths;
  for (const ModalityInput& in : p.inputs) {
    if (in.parts.empty()) input_paths.push_back(in.label);
    for (const ModalityInput& part : in.parts) input_paths.push_back(part.label);
    input_paths.insert(input_paths.end(), in.files.begin(), in.files.end());
  }
  std::vector<std::string> summaries;
  if (o.samples > 1 && o.scene.summary_mean) summaries.push_back("mean");
  if (o.samples > 1 && o.scene.summary_std) summaries.push_back("std");
  input_paths.push_back(models.directory());  // the models are read too
  p.outputs = plan_outputs(o.output, o.samples, generated, {}, input_paths, summaries);
  spdlog::info("scene {} x {} ({}), {} tiling, overlap {} px", p.grid.width, p.grid.height,
               p.grid.georeferenced ? fmt::format("{:g} m", p.grid.resolution()) : "no georeferencing",
               tiling_name(o.scene.tiling), o.scene.overlap);
  p.seed = o.sampling.seed.value_or(random_seed());
  if (!o.sampling.seed) spdlog::info("seed: {} (random; pass --seed {} to reproduce)", p.seed, p.seed);

  p.order.resize(p.inputs.size());
  for (std::size_t i = 0; i < p.inputs.size(); ++i) p.order[i] = i;
  std::sort(p.order.begin(), p.order.end(), [&](std::size_t a, std::size_t b) {
    return modality_index(p.inputs[a].modality) < modality_index(p.inputs[b].modality);
  });
  p.canvas = make_canvas(p.grid, o.scene.overlap, models);
  p.metadata = scene_metadata(o, models, p);
  return p;
}

std::vector<RasterSource> render_inputs(const ScenePlan& plan, const SceneOptions& scene, const std::string& work_dir) {
  std::vector<RasterSource> rendered;
  const std::int64_t pixels = static_cast<std::int64_t>(plan.grid.width) * plan.grid.height;
  for (const ModalityInput& in : plan.inputs) {
    const std::string p = (fs::path(work_dir) / (modality_name(in.modality) + ".tif")).string();
    const std::int64_t valid = render_to_file(in, plan.grid, p, scene);
    if (valid == 0 && !scene.fill_nodata) {
      throw InputError(modality_name(in.modality) + " input '" + in.label +
                       "': every pixel of the target grid is nodata, NaN or outside the input; "
                       "there is nothing to translate (--fill-nodata generates everywhere)");
    }
    if (valid < pixels) {
      spdlog::info("{} input '{}': {} of {} pixels are nodata, NaN or outside the input; they are {} in the outputs",
                   modality_name(in.modality), in.label, pixels - valid, pixels,
                   scene.fill_nodata ? "generated (--fill-nodata)" : "nodata");
    }
    rendered.push_back(RasterSource::open(p, modality_name(in.modality) + " rendering"));
  }
  return rendered;
}

std::vector<torch::Tensor> encode_inputs(Models& models, const ScenePlan& plan,
                                         const std::vector<RasterSource>& rendered, int batch) {
  std::vector<torch::Tensor> moments;
  for (std::size_t i : plan.order) moments.push_back(encode_scene(models, rendered[i], plan.canvas, batch));
  return moments;
}

torch::Tensor sample_canvas(Models& models, const ScenePlan& plan, const std::vector<torch::Tensor>& moments,
                            const TranslateOptions& o, at::Generator& gen, int k, const CanvasCallback& on_call) {
  const Canvas& cv = plan.canvas;
  const Roles& roles = plan.roles;
  const torch::Device device = models.device();
  const Guidance& guidance = o.sampling.guidance;
  const bool any_given = !roles.given.empty();
  const int batch = o.sampling.batch_size;
  const std::vector<bool> needs_eps(roles.given.size(), o.sampling.cond_latent == CondLatent::Sample);
  const Draws d = draw_noise(gen, roles, needs_eps, 1, {models.latent_channels(), cv.lat_h, cv.lat_w},
                             is_guided(guidance, any_given));
  std::vector<torch::Tensor> given_latents;
  for (std::size_t i = 0; i < moments.size(); ++i) {
    given_latents.push_back(latent_from_moments(moments[i].unsqueeze(0), d.posterior_eps[i], models.scale_factor()));
  }
  const Conditioning windows = windows_of(device_conditioning(given_latents, d, device), cv.layout);
  const torch::Tensor weights = normalised_weights(cv.layout);
  const int64_t n_windows = static_cast<int64_t>(cv.layout.windows.size());

  torch::Tensor x0;  // [G, C, H, W]
  SamplerOptions so = o.sampling.sampler;
  if (o.scene.tiling == Tiling::Fused) {
    const RunCost step = scene_step_cost(n_windows, batch, guidance, any_given, true);
    so.on_call = [&](int, int) { on_call(step); };
    const NoiseFn fn = fused_noise_fn(models, roles, cv, weights, windows, guidance, batch);
    x0 = sample(fn, models.schedule(), to_device(d.x_T, device), so).squeeze(1);
  } else {
    // each window alone, from its part of the same noise canvases; then feathered
    const torch::Tensor xw = extract_windows(d.x_T.squeeze(1), cv.layout);  // [N, G, C, size, size]
    std::vector<torch::Tensor> outs;
    for (int64_t i = 0; i < n_windows; i += batch) {
      const int64_t b = std::min<int64_t>(batch, n_windows - i);
      const RunCost step = scene_step_cost(b, batch, guidance, any_given, false);
      so.on_call = [&](int, int) { on_call(step); };
      const NoiseFn fn = narrow(windows, i, b).noise_fn(models, roles, guidance);
      outs.push_back(sample(fn, models.schedule(), to_device(xw.narrow(0, i, b).transpose(0, 1).contiguous(), device), so)
                         .transpose(0, 1));
    }
    x0 = fuse_windows(torch::cat(outs, 0), weights, cv.layout);
  }
  require_finite(x0, "the scene of " + plan.inputs[0].label + " (sample " + std::to_string(k) + ")");
  return x0;
}

std::vector<std::string> write_sample(Models& models, const ScenePlan& plan, const TranslateOptions& o,
                                      const std::vector<RasterSource>& rendered, const torch::Tensor& x0, int k) {
  const Layout& layout = plan.canvas.layout;
  std::vector<RasterSink> sinks;
  for (std::size_t g = 0; g < plan.roles.generated.size(); ++g) sinks.push_back(create_sink(plan, o, g, k));
  const std::size_t batch = static_cast<std::size_t>(o.sampling.batch_size);
  for (std::size_t first = 0; first < layout.windows.size(); first += batch) {
    throw_if_stop_requested();
    const std::size_t n = std::min(layout.windows.size() - first, batch);
    std::vector<torch::Tensor> lat;
    for (std::size_t i = first; i < first + n; ++i) {
      const Window& w = layout.windows[i];
      lat.push_back(x0.narrow(2, w.y, layout.size).narrow(3, w.x, layout.size));
    }
    const torch::Tensor latb = torch::stack(lat, 1);  // [G, n, C, 32, 32]
    for (std::size_t g = 0; g < plan.roles.generated.size(); ++g) {
      if (sinks[g].path().empty()) continue;
      const torch::Tensor px = model_to_pixels(models.decode(latb[static_cast<int64_t>(g)])).to(torch::kCPU);
      for (std::size_t i = first; i < first + n; ++i) {
        write_core(sinks[g], px[static_cast<int64_t>(i - first)], plan, o.scene, rendered, plan.roles.generated[g], i);
      }
    }
  }
  std::vector<std::string> written;
  for (std::size_t g = 0; g < sinks.size(); ++g) {
    sinks[g].commit();
    written.push_back(sinks[g].path());
    spdlog::info("wrote {} ({})", sinks[g].path(), modality_name(plan.roles.generated[g]));
  }
  return written;
}

std::vector<std::string> write_summaries(const ScenePlan& plan, const TranslateOptions& o) {
  std::vector<std::string> written;
  if (o.samples < 2) return written;
  for (std::size_t g = 0; g < plan.roles.generated.size(); ++g) {
    const std::vector<std::string>& paths = plan.outputs.summaries[g];
    std::size_t next = 0;
    if (o.scene.summary_mean) written.push_back(write_summary(plan, o, g, "mean", paths.at(next++)));
    if (o.scene.summary_std) written.push_back(write_summary(plan, o, g, "std", paths.at(next++)));
  }
  return written;
}

SceneCost scene_cost(const ScenePlan& plan, const TranslateOptions& o, const Models& models) {
  SceneCost c;
  c.windows = static_cast<int>(plan.canvas.layout.windows.size());
  c.run = scene_cost(o.samples, c.windows, o.sampling.batch_size, o.sampling.sampler.steps, o.sampling.guidance,
                     !plan.roles.given.empty(), o.scene.tiling == Tiling::Fused);
  c.canvas_bytes = canvas_bytes(plan.grid, models);
  return c;
}

namespace {

// The --preview of a scene (pictures.hpp's layout): the renderings of the given modalities
// (as the model saw them, with their own nodata) and each sample's outputs read back (with
// their mask; physical S2 outputs through the S2 rendering), all downsampled by one factor
// so that the picture is at most kPreviewMaxWidth wide.
void write_scene_preview(const ScenePlan& plan, const TranslateOptions& o, const std::vector<RasterSource>& rendered) {
  const std::size_t panels = plan.order.size() + plan.roles.generated.size();
  const int f = preview_factor(plan.grid.width, static_cast<int>(panels));
  std::vector<Panel> given;
  for (std::size_t i : plan.order) {
    given.push_back({modality_name(plan.inputs[i].modality) + " given", read_picture(rendered[i], f, std::nullopt)});
  }
  std::vector<std::vector<Panel>> rows;
  for (int k = 0; k < o.samples; ++k) {
    std::vector<Panel> row = given;
    for (std::size_t g = 0; g < plan.roles.generated.size(); ++g) {
      const Modality m = plan.roles.generated[g];
      const RasterSource out = RasterSource::open(plan.outputs.images[static_cast<std::size_t>(k)][g], "output");
      row.push_back({modality_name(m) + " generated", read_picture(out, f, physical_dn_offset(o.scene, m))});
    }
    rows.push_back(std::move(row));
  }
  write_png(plan.outputs.preview, compose_preview(rows));
  spdlog::info("wrote {} (preview, {} x downsampled)", plan.outputs.preview, f);
}

// The cost, logged before the first network call.
void log_cost(const ScenePlan& plan, const SceneCost& c, const TranslateOptions& o) {
  spdlog::info("scene plan: {} x {} pixels, {} window(s), {} ({} tiling), latent canvas about {:.1f} MB",
               plan.grid.width, plan.grid.height, c.windows, describe(c.run), tiling_name(o.scene.tiling),
               c.canvas_bytes / 1e6);
}

}  // namespace

RunResult translate_scene(const TranslateOptions& o, Models& models, const ProgressFn& progress) {
  const auto started = std::chrono::steady_clock::now();
  ScenePlan plan = prepare_scene(o, models);
  const SceneCost cost = scene_cost(plan, o, models);
  log_cost(plan, cost, o);
  plan.outputs.gate.make_dirs();
  RunResult result;
  result.seed = plan.seed;
  const int batch = o.sampling.batch_size;
  const std::int64_t passes_before = models.backbone_calls();
  std::chrono::steady_clock::time_point sampling_started;
  const CanvasCallback on_call = [&](const RunCost& step) {
    result.cost += step;
    if (result.cost.solver_steps == 1) {
      const double first = std::chrono::duration<double>(std::chrono::steady_clock::now() - sampling_started).count();
      spdlog::info("first solver step: {:.2f} s; the {} step(s) take about {:.0f} s", first, cost.run.solver_steps,
                   first * static_cast<double>(cost.run.solver_steps));
    }
    if (progress) progress(result.cost.solver_steps, cost.run.solver_steps);
    throw_if_stop_requested();
  };
  try {
    // renderings of the inputs go to a scratch folder beside the first output
    const WorkDir work(fs::path(plan.outputs.images[0][0]).parent_path().string());
    const std::vector<RasterSource> rendered = render_inputs(plan, o.scene, work.path());
    const std::vector<torch::Tensor> moments = encode_inputs(models, plan, rendered, batch);
    at::Generator gen = at::detail::createCPUGenerator(plan.seed);
    for (int k = 0; k < o.samples; ++k) {
      throw_if_stop_requested();
      sampling_started = std::chrono::steady_clock::now();
      const torch::Tensor x0 = sample_canvas(models, plan, moments, o, gen, k, on_call);
      ++result.cost.samples;
      for (const std::string& f : write_sample(models, plan, o, rendered, x0, k)) result.outputs.push_back(f);
    }
    if (!plan.outputs.preview.empty()) write_scene_preview(plan, o, rendered);
  } catch (...) {
    rethrow_with_out_of_memory_message({"windows of " + plan.inputs[0].label}, batch, models.device().str());
  }
  for (const std::string& f : write_summaries(plan, o)) result.outputs.push_back(f);
  result.cost.backbone_passes = models.backbone_calls() - passes_before;  // counted by the models themselves
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  write_run_stac_item(o, plan.outputs, result);
  return result;
}

}  // namespace copgen
