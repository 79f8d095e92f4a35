// The scene path (scene.hpp) through the library on the tiny models: translate_scene of a
// tile equals the tile path, and fused tiling leaves smaller seams than independent tiling.
#include "catch_torch.hpp"

#include <cmath>
#include <cstdint>
#include <string>
#include <vector>

#include <gdal_priv.h>

#include "copgen/models.hpp"
#include "copgen/pipeline.hpp"
#include "copgen/scene.hpp"
#include "support.hpp"

using namespace copgen::test;

TEST_CASE("scene: fused sampling of a one-window scene equals plain sampling", "[scene]") {
  TempDir tmp;
  write_synthetic(tmp.file("t.tif"), SyntheticRaster{});
  copgen::ModelOptions mo;
  mo.device = "cpu";
  copgen::Models models = copgen::Models::load(COPGEN_TEST_MODELS, mo);
  copgen::TranslateOptions o;
  o.inputs = {{copgen::Modality::S2L1C, tmp.file("t.tif")}};
  o.to = {copgen::Modality::S2L2A};
  o.sampling.sampler.steps = 3;
  o.sampling.seed = 9;
  o.output.path = tmp.file("plain.tif");
  copgen::translate(o, models);
  o.output.path = tmp.file("fused.tif");
  copgen::translate_scene(o, models);  // the scene path, though the input is a tile
  Ds a(tmp.file("plain.tif")), b(tmp.file("fused.tif"));
  for (int k = 1; k <= 3; ++k) CHECK(band(a.ds, k) == band(b.ds, k));
}

TEST_CASE("scene: fused tiling has smaller seams than independent tiling", "[scene]") {
  TempDir tmp;
  SyntheticRaster spec;
  spec.width = 448;
  spec.height = 256;
  write_synthetic(tmp.file("s.tif"), spec);
  copgen::ModelOptions mo;
  mo.device = "cpu";
  copgen::Models models = copgen::Models::load(COPGEN_TEST_MODELS, mo);
  // Two windows side by side (x = 0 and x = 192 px, 64 px overlap). The seam statistic is
  // the mean absolute difference between horizontally adjacent pixels across the columns
  // where the windows meet, relative to the same statistic inside the windows.
  auto seam = [&](copgen::Tiling tiling, const std::string& name) {
    copgen::TranslateOptions o;
    o.inputs = {{copgen::Modality::S2L1C, tmp.file("s.tif")}};
    o.to = {copgen::Modality::S2L2A};
    o.sampling.sampler.steps = 4;
    o.sampling.seed = 5;
    o.sampling.batch_size = 2;
    o.scene.tiling = tiling;
    o.output.path = tmp.file(name);
    copgen::translate(o, models);
    Ds d(tmp.file(name));
    double across = 0, inside = 0;
    int na = 0, ni = 0;
    for (int b = 1; b <= 3; ++b) {
      const auto v = band(d.ds, b);
      for (int y = 0; y < 256; ++y) {
        for (int x = 1; x < 448; ++x) {
          const double diff = std::abs(double(v[y * 448 + x]) - double(v[y * 448 + x - 1]));
          if (x >= 192 && x < 256) across += diff, ++na;
          else inside += diff, ++ni;
        }
      }
    }
    return (across / na) / (inside / ni);
  };
  const double fused = seam(copgen::Tiling::Fused, "fused.tif");
  const double independent = seam(copgen::Tiling::Independent, "independent.tif");
  INFO("fused " << fused << " independent " << independent);
  CHECK(fused < independent);
}
