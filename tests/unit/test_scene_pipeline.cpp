// The phases of the scene path (scene_pipeline.hpp), one by one, on the tiny models and
// synthetic GeoTIFFs.
#include "catch_torch.hpp"

#include <ATen/CPUGeneratorImpl.h>
#include <filesystem>

#include "copgen/error.hpp"
#include "copgen/models.hpp"
#include "copgen/outputs.hpp"
#include "copgen/pixels.hpp"
#include "copgen/raster_scene.hpp"
#include "copgen/scene_pipeline.hpp"
#include "support.hpp"

using namespace copgen;
namespace fs = std::filesystem;

namespace {

Models& tiny() { return test::tiny_models(); }

// A 600 x 500 S2L1C scene (and a 300 x 250 DEM at 20 m over the same area when asked).
TranslateOptions scene_options(const test::TempDir& tmp, bool with_dem = false) {
  test::SyntheticRaster spec;
  spec.width = 600;
  spec.height = 500;
  spec.seed = 4;
  test::write_synthetic(tmp.file("l1c.tif"), spec);
  TranslateOptions o;
  o.inputs = {{Modality::S2L1C, tmp.file("l1c.tif")}};
  if (with_dem) {
    test::SyntheticRaster dem;
    dem.width = 300;
    dem.height = 250;
    dem.bands = 1;
    dem.data_type = "Float32";
    dem.geotransform = {500000.0, 20.0, 0.0, 5000000.0, 0.0, -20.0};
    test::write_synthetic(tmp.file("dem.tif"), dem);
    o.inputs.push_back({Modality::DEM, tmp.file("dem.tif")});
  }
  o.to = {Modality::S2L2A};
  o.output.path = tmp.file("out/");
  o.sampling.seed = 3;
  o.sampling.sampler.steps = 2;
  o.sampling.batch_size = 8;
  return o;
}

}  // namespace

TEST_CASE("scene phases: prepare plans the grid, canvas, outputs and metadata before any work", "[scene]") {
  test::TempDir tmp;
  TranslateOptions o = scene_options(tmp, true);
  const ScenePlan p = prepare_scene(o, tiny());
  CHECK(p.grid.width == 600);
  CHECK(p.grid.height == 500);
  CHECK(p.grid.geotransform == std::array<double, 6>{500000.0, 10.0, 0.0, 5000000.0, 0.0, -10.0});
  // given in modality order: DEM (input 1) before S2L1C (input 0)
  CHECK(p.order == std::vector<std::size_t>{1, 0});
  CHECK(p.roles.given == std::vector<Modality>{Modality::DEM, Modality::S2L1C});
  CHECK(p.roles.generated == std::vector<Modality>{Modality::S2L2A});
  // 600 x 500 pixels -> 75 x 63 latent pixels (500 padded to 504); windows of 32 with 8 of
  // overlap (64 px), 3 across and 3 down
  CHECK(p.canvas.lat_w == 75);
  CHECK(p.canvas.lat_h == 63);
  CHECK(p.canvas.layout.windows.size() == 3 * 3);
  CHECK(p.canvas.cores.size() == p.canvas.layout.windows.size());
  REQUIRE(p.outputs.images.size() == 1);
  CHECK(p.outputs.images[0] == std::vector<std::string>{tmp.file("out/S2L2A.tif")});
  CHECK_FALSE(fs::exists(tmp.file("out")));  // planned, not made: a dry run leaves no trace
  REQUIRE(p.outputs.gate.files().size() == 1);
  CHECK(p.outputs.gate.files()[0].kind == FileKind::Image);
  CHECK(p.seed == 3);
  CHECK(p.metadata.at("COPGEN_TILING") == "fused");
  CHECK(p.metadata.at("COPGEN_GIVEN") == "DEM,S2L1C");
  CHECK(p.metadata.at("COPGEN_INPUT_KINDS") == "S2L1C:thumbnail,DEM:physical");

  // what only tiles take is refused by the route, before the models load and any work
  o.output.save_latents_dir = tmp.file("latents");
  CHECK_THROWS_WITH(route_translate(o, 256), "--save-latents is offered for 256 x 256 tiles only, not for scenes");
  o.output.save_latents_dir.clear();
  CHECK(route_translate(o, 256).scene);
  o.inputs.push_back({Modality::S1RTC, tmp.file("s1.npy")});
  CHECK_THROWS_WITH(route_translate(o, 256), Catch::Contains("accepted for single tiles of the model's size only"));
}

TEST_CASE("scene phases: render and encode give the moments of each input on the latent canvas", "[scene]") {
  test::TempDir tmp;
  const TranslateOptions o = scene_options(tmp, true);
  const ScenePlan p = prepare_scene(o, tiny());
  const WorkDir work(tmp.path);
  const std::vector<RasterSource> rendered = render_inputs(p, o.scene, work.path());
  REQUIRE(rendered.size() == 2);
  for (const RasterSource& r : rendered) {
    CHECK(r.info().width == 600);
    CHECK(r.info().height == 500);
    CHECK(r.info().bands == 3);
  }
  const std::vector<torch::Tensor> moments = encode_inputs(tiny(), p, rendered, o.sampling.batch_size);
  REQUIRE(moments.size() == 2);
  const int64_t c2 = 2 * tiny().latent_channels();
  for (const torch::Tensor& m : moments) {
    CHECK(m.sizes() == torch::IntArrayRef({c2, 63, 75}));
    CHECK(torch::isfinite(m).all().item<bool>());
  }
  // modality order: the DEM's moments first; a 256 x 256 window at the origin encodes to
  // the same moments as the canvas holds there (the first window's core)
  const torch::Tensor pixels = rendered[1].read({1, 2, 3}, 0, 0, 256, 256).round().clamp(0, 255).to(torch::kUInt8);
  const torch::Tensor window = tiny().encode_moments(pixels_to_model(pixels.unsqueeze(0)));
  CHECK(torch::allclose(moments[0].narrow(1, 0, 8).narrow(2, 0, 8), window[0].narrow(1, 0, 8).narrow(2, 0, 8),
                        1e-4, 1e-4));
}

TEST_CASE("scene phases: fused and independent sampling of a one-window canvas agree", "[scene]") {
  test::TempDir tmp;
  test::SyntheticRaster spec;
  spec.width = spec.height = 256;
  test::write_synthetic(tmp.file("tile.tif"), spec);
  TranslateOptions o;
  o.inputs = {{Modality::S2L1C, tmp.file("tile.tif")}};
  o.to = {Modality::DEM, Modality::S2L2A};
  o.output.path = tmp.file("out/");
  o.sampling.seed = 9;
  o.sampling.sampler.steps = 2;
  const ScenePlan p = prepare_scene(o, tiny());
  REQUIRE(p.canvas.layout.windows.size() == 1);
  const WorkDir work(tmp.path);
  const auto rendered = render_inputs(p, o.scene, work.path());
  const auto moments = encode_inputs(tiny(), p, rendered, 1);
  std::vector<int> calls;
  const auto run = [&](Tiling t) {
    o.scene.tiling = t;
    at::Generator gen = at::detail::createCPUGenerator(p.seed);
    return sample_canvas(tiny(), p, moments, o, gen, 0,
                         [&](const RunCost& step) { calls.push_back(static_cast<int>(step.window_evaluations)); });
  };
  const torch::Tensor fused = run(Tiling::Fused);
  const torch::Tensor independent = run(Tiling::Independent);
  CHECK(fused.sizes() == torch::IntArrayRef({2, tiny().latent_channels(), 32, 32}));
  CHECK(torch::allclose(fused, independent, 1e-5, 1e-5));
  CHECK(calls == std::vector<int>{1, 1, 1, 1});  // 2 steps x 1 window, twice
  // guidance doubles the network calls of each step
  calls.clear();
  o.sampling.guidance.scale = 1.5;
  run(Tiling::Fused);
  CHECK(calls == std::vector<int>{2, 2});
}

TEST_CASE("scene phases: write_sample writes the plan's outputs with the scene's grid and mask", "[scene]") {
  test::TempDir tmp;
  TranslateOptions o = scene_options(tmp);
  o.samples = 2;
  o.scene.summary_mean = true;
  o.scene.summary_std = true;
  ScenePlan p = prepare_scene(o, tiny());
  REQUIRE(p.outputs.images.size() == 2);
  CHECK(p.outputs.gate.paths(FileKind::Summary) ==
        std::vector<std::string>{tmp.file("out/S2L2A_mean.tif"), tmp.file("out/S2L2A_std.tif")});
  p.outputs.gate.make_dirs();
  const WorkDir work(tmp.path);
  const auto rendered = render_inputs(p, o.scene, work.path());
  const auto moments = encode_inputs(tiny(), p, rendered, o.sampling.batch_size);
  at::Generator gen = at::detail::createCPUGenerator(p.seed);
  for (int k = 0; k < 2; ++k) {
    const torch::Tensor x0 = sample_canvas(tiny(), p, moments, o, gen, k, [](const RunCost&) {});
    const auto written = write_sample(tiny(), p, o, rendered, x0, k);
    CHECK(written == p.outputs.images[static_cast<std::size_t>(k)]);
    const RasterSource out = RasterSource::open(written[0], "output");
    CHECK(out.info().width == 600);
    CHECK(out.info().height == 500);
    CHECK(out.grid().geotransform == p.grid.geotransform);
    CHECK(out.read_valid({1}, 0, 0, 600, 500).all().item<bool>());
  }
  const auto summaries = write_summaries(p, o);
  CHECK(summaries == std::vector<std::string>{tmp.file("out/S2L2A_mean.tif"), tmp.file("out/S2L2A_std.tif")});
  // the mean of two samples lies between them, pixel by pixel
  const auto a = RasterSource::open(p.outputs.images[0][0], "a").read({1, 2, 3}, 0, 0, 600, 500);
  const auto b = RasterSource::open(p.outputs.images[1][0], "b").read({1, 2, 3}, 0, 0, 600, 500);
  const auto mean = RasterSource::open(summaries[0], "mean").read({1, 2, 3}, 0, 0, 600, 500);
  CHECK(torch::allclose(mean, (a + b) / 2, 1e-4, 1e-4));
}

TEST_CASE("scene cost: the dry run's plan, the progress line and the result count the same", "[scene][cost]") {
  // 600 x 500 pixels: 9 windows; batches of 2 windows (5 chunks), guidance (2 passes per
  // step), 2 samples of 2 steps
  struct Expected {
    Tiling tiling;
    RunCost cost;
  };
  // fused: 2 samples x 2 steps; each step 5 chunks x 2 passes, 9 windows x 2 passes.
  // independent: each of the 5 chunks of a sample its own 2-step solver run.
  for (const Expected& e : {Expected{Tiling::Fused, {2, 4, 40, 72}}, Expected{Tiling::Independent, {2, 20, 40, 72}}}) {
    test::TempDir tmp;
    TranslateOptions o = scene_options(tmp);
    o.samples = 2;
    o.sampling.batch_size = 2;
    o.sampling.guidance.scale = 0.5;
    o.scene.tiling = e.tiling;
    INFO(tiling_name(e.tiling));
    const TranslatePlan plan = plan_translate(o, tiny());
    REQUIRE(plan.scene);
    CHECK(plan.windows == 9);
    CHECK(plan.cost == e.cost);
    CHECK(describe(plan).find("cost: " + describe(e.cost) + "\n") != std::string::npos);
    std::vector<std::pair<std::int64_t, std::int64_t>> progress;
    const RunResult r = translate(o, tiny(), [&](std::int64_t done, std::int64_t total) {
      progress.emplace_back(done, total);
    });
    CHECK(r.cost == e.cost);  // its backbone passes counted by the models
    REQUIRE(progress.size() == static_cast<std::size_t>(e.cost.solver_steps));
    for (std::size_t i = 0; i < progress.size(); ++i) {
      CHECK(progress[i] == std::make_pair(static_cast<std::int64_t>(i + 1), e.cost.solver_steps));
    }
  }
}

TEST_CASE("tile cost: the plan, the progress line and the result count the same", "[cost]") {
  test::TempDir tmp;
  test::write_synthetic(tmp.file("tile.tif"), {});
  TranslateOptions o;
  o.inputs = {{Modality::S2L1C, tmp.file("tile.tif")}};
  o.to = {Modality::S2L2A, Modality::DEM};
  o.output.path = tmp.file("out/");
  o.sampling.seed = 1;
  o.sampling.sampler.steps = 3;
  o.sampling.batch_size = 2;
  o.sampling.guidance.scale = 1.0;
  o.samples = 3;
  // chunks of 2 and 1 samples, 3 steps each; 2 passes per step; windows: the chunk's samples
  const RunCost expected{3, 6, 12, 18};
  const TranslatePlan plan = plan_translate(o, tiny());
  REQUIRE_FALSE(plan.scene);
  CHECK(plan.cost == expected);
  std::int64_t last = 0, calls = 0;
  const RunResult r = translate(o, tiny(), [&](std::int64_t done, std::int64_t total) {
    CHECK(total == expected.solver_steps);
    last = done;
    ++calls;
  });
  CHECK(r.cost == expected);
  CHECK(last == expected.solver_steps);
  CHECK(calls == expected.solver_steps);
}
