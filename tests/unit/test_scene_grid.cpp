// The grid rules for inputs with no projected CRS (docs/scenes.md, "Inputs in degrees"):
// copgen chooses the UTM zone of the inputs' centre (UPS beyond 84 N / 80 S) at 10 m,
// covering the inputs, and says so in Grid::chosen.
#include "catch_torch.hpp"

#include <algorithm>
#include <array>
#include <cmath>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include <ogr_spatialref.h>

#include "copgen/error.hpp"
#include "copgen/raster_scene.hpp"
#include "copgen/scene.hpp"
#include "support.hpp"

using namespace copgen;
using namespace copgen::test;

namespace {

// A Copernicus GLO-30-like tile: 1 x 1 degree of 3600 x 3600 pixels of 1 arc-second, in
// EPSG:4326, whose upper-left corner is (lon, lat).
Grid glo30_tile(double lon, double lat) {
  Grid g;
  g.width = g.height = 3600;
  g.georeferenced = true;
  g.geotransform = {lon, 1.0 / 3600, 0.0, lat, 0.0, -1.0 / 3600};
  g.crs_wkt = "EPSG:4326";
  return g;
}

Grid choose(const std::vector<Grid>& inputs, GridOptions o = {}) {
  if (!o.target_resolution) o.target_resolution = 10.0;  // as scene_grid asks by default
  std::vector<std::string> labels;
  for (size_t i = 0; i < inputs.size(); ++i) labels.push_back("in" + std::to_string(i) + ".tif");
  return choose_grid(inputs, labels, o);
}

// Checks that `g` covers the outline of `tile` (its corners and edge midpoints,
// transformed into g's CRS independently of the library), by less than one pixel more
// than their bounding box on each side.
void check_covers(const Grid& g, const Grid& tile) {
  OGRSpatialReference src, dst;
  src.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
  dst.SetAxisMappingStrategy(OAMS_TRADITIONAL_GIS_ORDER);
  REQUIRE(src.SetFromUserInput(tile.crs_wkt.c_str()) == OGRERR_NONE);
  REQUIRE(dst.SetFromUserInput(g.crs_wkt.c_str()) == OGRERR_NONE);
  std::unique_ptr<OGRCoordinateTransformation> ct(OGRCreateCoordinateTransformation(&src, &dst));
  REQUIRE(ct);
  const auto& t = tile.geotransform;
  std::vector<double> xs, ys;
  for (double fx : {0.0, 0.5, 1.0}) {
    for (double fy : {0.0, 0.5, 1.0}) {
      xs.push_back(t[0] + fx * tile.width * t[1]);
      ys.push_back(t[3] + fy * tile.height * t[5]);
    }
  }
  REQUIRE(ct->Transform(static_cast<int>(xs.size()), xs.data(), ys.data()));
  const auto& gt = g.geotransform;
  const double gx0 = gt[0], gx1 = gt[0] + g.width * gt[1], gy1 = gt[3], gy0 = gt[3] + g.height * gt[5];
  const auto [xmin, xmax] = std::minmax_element(xs.begin(), xs.end());
  const auto [ymin, ymax] = std::minmax_element(ys.begin(), ys.end());
  INFO("grid x " << gx0 << ".." << gx1 << ", y " << gy0 << ".." << gy1 << "; tile x " << *xmin << ".." << *xmax
                 << ", y " << *ymin << ".." << *ymax);
  CHECK(gx0 <= *xmin);
  CHECK(gx1 >= *xmax);
  CHECK(gy0 <= *ymin);
  CHECK(gy1 >= *ymax);
  // by less than a pixel, plus how far the edges between the sampled points bulge (well
  // under 5 m over a degree)
  const double slack = gt[1] + 5.0;
  CHECK(*xmin - gx0 < slack);
  CHECK(gx1 - *xmax < slack);
  CHECK(*ymin - gy0 < slack);
  CHECK(gy1 - *ymax < slack);
}

void check_10m_grid(const Grid& g) {
  const auto& gt = g.geotransform;
  CHECK(gt[1] == 10.0);
  CHECK(gt[5] == -10.0);
  CHECK(gt[2] == 0.0);
  CHECK(gt[4] == 0.0);
  CHECK(std::fmod(gt[0], 10.0) == 0.0);  // aligned to whole 10 m pixels of the CRS
  CHECK(std::fmod(gt[3], 10.0) == 0.0);
}

}  // namespace

TEST_CASE("scene grid: a GLO-30 tile alone at 46 N 7 E is gridded in UTM zone 32N at 10 m", "[grid]") {
  const Grid tile = glo30_tile(7.0, 47.0);  // 46..47 N, 7..8 E: centre 7.5 E, 46.5 N
  const Grid g = choose({tile});
  CHECK(same_crs(g.crs_wkt, "EPSG:32632"));
  check_10m_grid(g);
  check_covers(g, tile);
  CHECK(g.chosen ==
        "EPSG:32632 (UTM zone 32N, the centre of the inputs at 7.5000 E, 46.5000 N; no input has a projected CRS)");
  // the figures of docs/scenes.md
  CHECK(g.width == 7885);
  CHECK(g.height == 11258);
  SECTION("--target-res sets the pixel size") {
    GridOptions o;
    o.target_resolution = 30.0;
    const Grid g30 = choose({tile}, o);
    CHECK(same_crs(g30.crs_wkt, "EPSG:32632"));
    CHECK(g30.geotransform[1] == 30.0);
    check_covers(g30, tile);
  }
}

TEST_CASE("scene grid: near the poles the grid is UPS, not UTM", "[grid]") {
  SECTION("a tile at 89 S: UPS South") {
    const Grid tile = glo30_tile(7.0, -88.0);  // 89..88 S
    const Grid g = choose({tile});
    CHECK(same_crs(g.crs_wkt, "EPSG:32761"));
    check_10m_grid(g);
    check_covers(g, tile);
    CHECK(g.chosen.rfind("EPSG:32761 (UPS South, beyond 80 S, the centre of the inputs at 7.5000 E, -88.5000 N", 0) ==
          0);
  }
  SECTION("a tile at 85 N: UPS North") {
    const Grid tile = glo30_tile(7.0, 86.0);  // 85..86 N
    const Grid g = choose({tile});
    CHECK(same_crs(g.crs_wkt, "EPSG:32661"));
    check_10m_grid(g);
    check_covers(g, tile);
  }
  SECTION("a tile at 83 N: still UTM") {
    const Grid g = choose({glo30_tile(7.0, 84.0)});  // 83..84 N, centre 83.5 N
    CHECK(same_crs(g.crs_wkt, "EPSG:32632"));
  }
  SECTION("a tile at 79 S: still UTM") {
    const Grid g = choose({glo30_tile(7.0, -79.0)});  // 80..79 S, centre 79.5 S
    CHECK(same_crs(g.crs_wkt, "EPSG:32732"));
  }
}

TEST_CASE("scene grid: the zone is that of the inputs' centre", "[grid]") {
  SECTION("a tile across 12 E (zones 32 and 33) takes the zone of its centre, 12.3 E") {
    const Grid tile = glo30_tile(11.8, 47.0);
    const Grid g = choose({tile});
    CHECK(same_crs(g.crs_wkt, "EPSG:32633"));
    check_covers(g, tile);
  }
  SECTION("two geographic inputs: the centre of their intersection (or union)") {
    const Grid a = glo30_tile(11.0, 47.0);  // 11..12 E, alone in zone 32
    Grid b = glo30_tile(11.9, 47.0);        // 11.9..13.9 E, alone in zone 33
    b.width = 7200;
    CHECK(same_crs(choose({a, b}).crs_wkt, "EPSG:32632"));  // intersection 11.9..12 E: 11.95 E
    CHECK(same_crs(choose({b, a}).crs_wkt, "EPSG:32632"));  // whichever comes first
    GridOptions u;
    u.union_extent = true;  // 11..13.9 E: 12.45 E
    CHECK(same_crs(choose({a, b}, u).crs_wkt, "EPSG:32633"));
  }
  SECTION("south of the equator: zone 7.5 E is 32S") {
    const Grid g = choose({glo30_tile(7.0, -10.0)});
    CHECK(same_crs(g.crs_wkt, "EPSG:32732"));
  }
}

TEST_CASE("scene grid: a geographic reference gives way to a projected input", "[grid]") {
  Grid utm;  // 30 m, in UTM 32N, over the tile at 46.5 N 7.5 E
  utm.width = utm.height = 100;
  utm.georeferenced = true;
  utm.geotransform = {380000.0, 30.0, 0.0, 5150000.0, 0.0, -30.0};
  utm.crs_wkt = "EPSG:32632";
  const Grid g = choose({glo30_tile(7.0, 47.0), utm});
  CHECK(same_crs(g.crs_wkt, "EPSG:32632"));
  CHECK(g.chosen == "EPSG:32632 (the CRS of 'in1.tif'; the reference input 'in0.tif' has a geographic CRS)");
  // aligned to that input's corners, over the intersection: its own extent at 10 m
  CHECK(g.geotransform == std::array<double, 6>{380000.0, 10.0, 0.0, 5150000.0, 0.0, -10.0});
  CHECK(g.width == 300);
  CHECK(g.height == 300);
}

TEST_CASE("scene grid: projected inputs choose nothing", "[grid]") {
  Grid utm;
  utm.width = utm.height = 100;
  utm.georeferenced = true;
  utm.geotransform = {500000.0, 10.0, 0.0, 5000000.0, 0.0, -10.0};
  utm.crs_wkt = "EPSG:32633";
  const Grid g = choose({utm});
  CHECK(g.chosen.empty());
  CHECK(g.geotransform == utm.geotransform);
  CHECK(g.width == 100);
}

TEST_CASE("scene grid: a geographic --target-crs is refused, naming the zone to pass", "[grid]") {
  GridOptions o;
  o.target_crs = "EPSG:4326";
  SECTION("at 46 N 7 E: UTM zone 32N") {
    try {
      choose({glo30_tile(7.0, 47.0)}, o);
      FAIL("expected a UsageError");
    } catch (const UsageError& e) {
      const std::string m = e.what();
      INFO(m);
      CHECK(m.find("--target-crs 'EPSG:4326': a geographic CRS (degrees)") != std::string::npos);
      CHECK(m.find("--target-crs EPSG:32632 (UTM zone 32N, where the inputs' centre lies)") != std::string::npos);
      CHECK(m.find("leave --target-crs out") != std::string::npos);
    }
  }
  SECTION("near the poles: UPS") {
    CHECK_THROWS_WITH(choose({glo30_tile(7.0, 86.0)}, o), Catch::Contains("--target-crs EPSG:32661 (UPS North"));
    CHECK_THROWS_WITH(choose({glo30_tile(7.0, -88.0)}, o), Catch::Contains("--target-crs EPSG:32761 (UPS South"));
  }
}

TEST_CASE("scene grid: a geographic DEM's pixel size in metres", "[grid]") {
  const Grid tile = glo30_tile(7.0, 47.0);
  // 1 arc-second of latitude is 30.9 m; of longitude at 46.5 N, 21.3 m: the larger side
  const auto side = geographic_pixel_size(tile, "EPSG:32632");
  REQUIRE(side);
  CHECK(*side == Approx(30.87).margin(0.05));
  Grid utm = tile;
  utm.crs_wkt = "EPSG:32632";
  CHECK_FALSE(geographic_pixel_size(utm, "EPSG:32632"));
}

TEST_CASE("scene grid: scene_grid chooses the zone for a GLO-30-like file alone", "[grid]") {
  TempDir tmp;
  SyntheticRaster spec;  // 72 x 72 pixels of 1 arc-second at 46.02 N 7 E
  spec.width = spec.height = 72;
  spec.bands = 1;
  spec.data_type = "Float32";
  spec.epsg = "EPSG:4326";
  spec.geotransform = {7.0, 1.0 / 3600, 0.0, 46.02, 0.0, -1.0 / 3600};
  write_synthetic(tmp.file("dem.tif"), spec);
  const ModalityInput in = resolve_input(Modality::DEM, tmp.file("dem.tif"), InputKind::Physical);
  const Grid g = scene_grid({in}, SceneOptions{});
  CHECK(same_crs(g.crs_wkt, "EPSG:32632"));
  check_10m_grid(g);
  Grid tile;
  tile.width = tile.height = 72;
  tile.georeferenced = true;
  tile.geotransform = spec.geotransform;
  tile.crs_wkt = "EPSG:4326";
  check_covers(g, tile);
  CHECK(g.chosen.rfind("EPSG:32632 (UTM zone 32N", 0) == 0);
}

TEST_CASE("scene grid: a warped source without nodata is invalid outside itself, for 1, 2 and 3 bands",
          "[grid][warp]") {
  // A warp adds an alpha band to sources without nodata; GDAL takes it as the mask of a
  // 4-band dataset's first three bands only, so a 1-band DEM or a 2-band S1 pair read as
  // valid everywhere until read_valid read the alpha band itself.
  for (int bands : {1, 2, 3}) {
    TempDir tmp;
    SyntheticRaster spec;  // 50 x 40 pixels of 10 m in UTM 33N, no nodata
    spec.width = 50;
    spec.height = 40;
    spec.bands = bands;
    spec.data_type = "Float32";
    write_synthetic(tmp.file("src.tif"), spec);
    const RasterSource src = RasterSource::open(tmp.file("src.tif"), "input");
    Grid target;  // 100 x 40 pixels of 10 m: the source's own and 50 columns east of it
    target.width = 100;
    target.height = 40;
    target.georeferenced = true;
    target.geotransform = spec.geotransform;
    target.crs_wkt = src.grid().crs_wkt;
    const RasterSource warped = src.warped(target, "nearest");
    std::vector<int> all;
    for (int b = 1; b <= bands; ++b) all.push_back(b);
    const torch::Tensor valid = warped.read_valid(all, 0, 0, 100, 40);
    INFO(bands << " band(s)");
    CHECK(valid.narrow(1, 0, 50).all().item<bool>());
    CHECK(valid.narrow(1, 50, 50).logical_not().all().item<bool>());
    CHECK(valid.sum().item<std::int64_t>() == 50 * 40);
    // the source's own values are read unchanged
    CHECK(torch::equal(warped.read(all, 0, 0, 50, 40), src.read(all, 0, 0, 50, 40)));
  }
}
