#include "catch_torch.hpp"

#include <cmath>
#include <limits>
#include <string>

#include <cpl_conv.h>
#include <gdal.h>
#include <ogr_srs_api.h>

#include "copgen/npy.hpp"
#include "copgen/render.hpp"
#include "copgen/scene.hpp"
#include "support.hpp"

using namespace copgen;

// Fixtures and numpy renderings written at build time by tests/python/render_reference.py.
namespace {

torch::Tensor fixture(const std::string& name) { return read_npy(std::string(COPGEN_TEST_RENDER) + "/" + name); }
torch::Tensor fixture_u8(const std::string& name) { return fixture(name).to(torch::kUInt8); }

// Largest absolute difference between two uint8 images, and how many pixels differ.
int max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kInt32) - b.to(torch::kInt32)).abs().max().item<int>();
}
int64_t count_diff(const torch::Tensor& a, const torch::Tensor& b) { return a.ne(b).sum().item<int64_t>(); }

constexpr float kNodata = -32768.0f;

// S2 thumbnail value of one DN, for the hand-made expectations.
int s2_pixel(double dn, double offset = 0.0) {
  return render_s2(torch::full({3, 1, 1}, dn, torch::kFloat64), offset)[0][0][0].item<uint8_t>();
}

// The continuous inverse: the DN at which the rendering reaches grey level p.
double s2_level_dn(double p) { return 10000.0 * std::pow(p / 255.0 / 1.3, 1.0 / 0.6); }

}  // namespace

// ---- Sentinel-2 ------------------------------------------------------------------------

TEST_CASE("render_s2: every uint16 DN equals numpy's rendering", "[render]") {
  const auto dn = fixture("s2_dn.npy");
  const auto expected = fixture_u8("s2_l1c.npy");
  const auto got = render_s2(dn);
  CHECK(got.scalar_type() == torch::kUInt8);
  CHECK(got.sizes() == torch::IntArrayRef({3, 256, 256}));
  CHECK(count_diff(got, expected) == 0);
  // integer inputs give the same
  CHECK(torch::equal(render_s2(dn.to(torch::kInt32)), expected));
  // the fixture covers the whole range, saturation and black included
  CHECK(expected.eq(255).sum().item<int64_t>() > 0);
  CHECK(expected.eq(0).sum().item<int64_t>() > 0);
}

TEST_CASE("render_s2: L2A offset is subtracted first and DNs below it are black", "[render]") {
  const auto dn = fixture("s2_l2a_dn.npy");
  const auto expected = fixture_u8("s2_l2a.npy");
  CHECK(count_diff(render_s2(dn, 1000.0), expected) == 0);
  CHECK_FALSE(torch::equal(render_s2(dn), expected));
  CHECK(s2_pixel(999.0, 1000.0) == 0);
  CHECK(s2_pixel(1100.0, 1000.0) == s2_pixel(100.0));
}

TEST_CASE("render_s2: hand-computed values", "[render]") {
  CHECK(s2_pixel(0.0) == 0);
  CHECK(s2_pixel(1.0) == 1);      // 1.3 * 1e-4^0.6 * 255 = 1.3197
  CHECK(s2_pixel(100.0) == 20);   // 1.3 * 0.01^0.6 * 255 = 20.916
  CHECK(s2_pixel(1000.0) == 83);  // 1.3 * 0.1^0.6 * 255 = 83.27
  CHECK(s2_pixel(6457.0) == 254);  // 1.3 (DN / 1e4)^0.6 reaches 1 at DN 6457.95
  CHECK(s2_pixel(6458.0) == 255);
  CHECK(s2_pixel(10000.0) == 255);  // 1.3 clipped to 1
  CHECK(s2_pixel(65535.0) == 255);
  CHECK(s2_pixel(-5.0) == 0);  // negative counts as 0
  CHECK(s2_pixel(std::numeric_limits<double>::quiet_NaN()) == 0);
  CHECK_THROWS_AS(render_s2(torch::zeros({4, 2, 2})), std::invalid_argument);
}

TEST_CASE("s2_dn_from_pixels: every grey level renders back to itself", "[render]") {
  for (const double offset : {0.0, 1000.0}) {
    const auto levels = torch::arange(0, 256, torch::kInt32).to(torch::kUInt8).reshape({1, 16, 16}).expand({3, 16, 16});
    torch::Tensor saturated;
    const auto dn = s2_dn_from_pixels(levels, offset, &saturated);
    CHECK(dn.scalar_type() == torch::kInt32);
    CHECK(dn.sizes() == torch::IntArrayRef({3, 16, 16}));
    const auto back = render_s2(dn, offset);
    CHECK(torch::equal(back, levels));
    // the saturated mask is exactly where 255 was
    CHECK(torch::equal(saturated, levels[0].eq(255).to(torch::kUInt8)));
    // 255 maps to the smallest saturating DN
    CHECK(dn[0][15][15].item<int>() == 6458 + static_cast<int>(offset));
    CHECK(dn[0][0][0].item<int>() == static_cast<int>(offset));
  }
}

TEST_CASE("s2_dn_from_pixels: DN to pixel to DN stays within half a quantisation step", "[render]") {
  const auto dn = fixture("s2_dn.npy").to(torch::kInt32);
  const auto pixels = render_s2(dn);
  torch::Tensor saturated;
  const auto back = s2_dn_from_pixels(pixels, 0.0, &saturated);
  // the saturated mask marks the pixels with any band at 255
  CHECK(torch::equal(saturated, pixels.eq(255).any(0).to(torch::kUInt8)));
  // back renders to the same grey level as the original DN
  CHECK(torch::equal(render_s2(back), pixels));
  // within half the width of the grey level's DN interval (plus rounding to a whole DN)
  const auto p = pixels.to(torch::kFloat64);
  const auto step = 10000.0 * (torch::pow((p + 1.0) / 255.0 / 1.3, 1.0 / 0.6) - torch::pow(p / 255.0 / 1.3, 1.0 / 0.6));
  const auto err = (back - dn).abs().to(torch::kFloat64);
  const auto below = pixels.lt(255);
  CHECK(err.le(step / 2.0 + 1.0).logical_or(below.logical_not()).all().item<bool>());
  // saturated pixels come back at the saturation threshold, never above the original
  CHECK(back.le(dn).logical_or(below).all().item<bool>());
  CHECK(s2_level_dn(255.0) == Approx(6457.946).margin(1e-3));
}

// ---- Sentinel-1 RTC --------------------------------------------------------------------

TEST_CASE("render_s1: equals numpy's float32 rendering pixel for pixel", "[render]") {
  const auto vv = fixture("s1_vv.npy");
  const auto vh = fixture("s1_vh.npy");
  const auto expected = fixture_u8("s1.npy");
  const auto got = render_s1(vv, vh);
  CHECK(got.scalar_type() == torch::kUInt8);
  CHECK(got.sizes() == torch::IntArrayRef({3, 96, 120}));
  CHECK(count_diff(got, expected) == 0);
  // nodata pixels are black in their band; the fixture has negatives replaced, too
  CHECK(got[0].masked_select(vv.eq(kNodata)).eq(0).all().item<bool>());
  CHECK(got[2].masked_select(vh.eq(kNodata)).eq(0).all().item<bool>());
  CHECK(vv.lt(0).logical_and(vv.ne(kNodata)).any().item<bool>());
  // numpy's own float32 log10 may differ from the rounded one by an ulp on some machines
  const auto native = fixture_u8("s1_numpy_log10.npy");
  CHECK(max_abs_diff(got, native) <= 1);
  CHECK(count_diff(got, native) <= got.numel() / 100);
}

TEST_CASE("render_s1: hand-computed false colour", "[render]") {
  // VV dB 0, 10, 20, nodata; VH 10, 20, (-3 -> 10, the smallest non-negative), 30 dB.
  const auto vv = torch::tensor({1.0f, 10.0f, 100.0f, kNodata}).reshape({1, 4});
  const auto vh = torch::tensor({10.0f, 100.0f, -3.0f, 1000.0f}).reshape({1, 4});
  const auto rgb = render_s1(vv, vh);
  // s_vv = 0, 127.5, 255, 0 (nodata); s_vh = 0, 127.5, 0, 255; G = 255 (sum) / max(sum)
  CHECK(torch::equal(rgb[0][0], torch::tensor({0, 127, 255, 0}).to(torch::kUInt8)));
  CHECK(torch::equal(rgb[1][0], torch::tensor({0, 255, 255, 255}).to(torch::kUInt8)));
  CHECK(torch::equal(rgb[2][0], torch::tensor({0, 127, 0, 255}).to(torch::kUInt8)));
  // NaN counts as nodata, a zero (-inf dB) renders 0 and leaves the others' stretch alone
  const auto vv2 = torch::tensor({1.0f, 10.0f, 100.0f, kNodata, std::nanf(""), 0.0f}).reshape({1, 6});
  const auto vh2 = torch::tensor({10.0f, 100.0f, -3.0f, 1000.0f, 0.0f, std::nanf("")}).reshape({1, 6});
  const auto rgb2 = render_s1(vv2, vh2);
  CHECK(torch::equal(rgb2.slice(2, 0, 4), rgb));
  CHECK(rgb2.slice(2, 4, 6).eq(0).all().item<bool>());
}

TEST_CASE("render_s1: all nodata renders black without NaN", "[render]") {
  const auto nodata = torch::full({8, 9}, kNodata);
  const auto rgb = render_s1(nodata, nodata);
  CHECK(rgb.sizes() == torch::IntArrayRef({3, 8, 9}));
  CHECK(rgb.eq(0).all().item<bool>());
  // a constant band has no range: it renders black and the other band still shows
  const auto constant = torch::full({1, 3}, 0.5f);
  const auto vh = torch::tensor({1.0f, 10.0f, 100.0f}).reshape({1, 3});
  const auto rgb2 = render_s1(constant, vh);
  CHECK(rgb2[0].eq(0).all().item<bool>());
  CHECK(torch::equal(rgb2[2][0], torch::tensor({0, 127, 255}).to(torch::kUInt8)));
  CHECK(torch::equal(rgb2[1][0], torch::tensor({0, 127, 255}).to(torch::kUInt8)));
  CHECK_THROWS_AS(render_s1(torch::zeros({2, 2}), torch::zeros({2, 3})), std::invalid_argument);
}

// ---- DEM hillshade ---------------------------------------------------------------------

TEST_CASE("hillshade: matches the numpy hillshade of a synthetic DEM", "[render]") {
  const auto dem = fixture("dem.npy");
  const auto shade = hillshade(dem);
  CHECK(shade.scalar_type() == torch::kFloat64);
  CHECK((shade - fixture("dem_hillshade.npy").to(torch::kFloat64)).abs().max().item<double>() < 1e-6);
  CHECK(shade.min().item<double>() == 0.0);  // stretched by its own range
  CHECK(shade.max().item<double>() == 1.0);
  const auto grey = render_dem(dem);
  const auto expected = fixture_u8("dem_render.npy");
  CHECK(grey.sizes() == torch::IntArrayRef({3, 90, 110}));
  CHECK(max_abs_diff(grey, expected) <= 1);
  CHECK(count_diff(grey, expected) <= 10);
  CHECK(torch::equal(grey[0], grey[1]));
  CHECK(torch::equal(grey[0], grey[2]));
  // the flat area (rows 20..44, columns 30..69) is one grey inside its 1-pixel border
  const auto flat = grey[0].slice(0, 21, 44).slice(1, 31, 69);
  CHECK(flat.eq(flat[0][0]).all().item<bool>());
  // float64 elevations give the same picture
  CHECK(max_abs_diff(render_dem(dem.to(torch::kFloat64)), expected) <= 1);
}

TEST_CASE("hillshade: the stretch is taken over the valid pixels only", "[render]") {
  const auto holed = fixture("dem_holed.npy");
  const auto valid = fixture("dem_valid.npy").to(torch::kBool);
  const auto expected = fixture_u8("dem_holed_render.npy");
  const auto grey = render_dem(holed, valid);
  CHECK(max_abs_diff(grey, expected) <= 1);
  CHECK(count_diff(grey, expected) <= 10);
  // without the mask the hole's cliffs would set the stretch
  CHECK(max_abs_diff(render_dem(holed), expected) > 10);
}

TEST_CASE("hillshade: hand-computed 3x3 ramp with one-sided edges", "[render]") {
  // z = column^2: np.gradient along x is 1 (one-sided at the left edge), 2 (central),
  // 3 (one-sided at the right edge); along y 0. The light (az 315, alt 45) comes from
  // (-1/2, 1/2, sqrt(2)/2), so intensity = (g / 2 + sqrt(2) / 2) / sqrt(1 + g^2).
  const auto z = torch::tensor({0.0, 1.0, 4.0}).repeat({3, 1});
  auto intensity = [](double g) { return (g / 2.0 + std::sqrt(2.0) / 2.0) / std::sqrt(1.0 + g * g); };
  const double i1 = intensity(1.0), i2 = intensity(2.0), i3 = intensity(3.0);  // 0.8536 0.7634 0.6980
  const double mid = (i2 - i3) / (i1 - i3);                                     // 0.4209
  const auto shade = hillshade(z);
  for (int r = 0; r < 3; ++r) {
    CHECK(shade[r][0].item<double>() == Approx(1.0).margin(1e-12));
    CHECK(shade[r][1].item<double>() == Approx(mid).margin(1e-12));
    CHECK(shade[r][2].item<double>() == Approx(0.0).margin(1e-12));
  }
  CHECK(mid == Approx(0.42089).margin(1e-5));
  const auto grey = render_dem(z);
  CHECK(torch::equal(grey[0][1], torch::tensor({255, 107, 0}).to(torch::kUInt8)));  // 0.4209 * 255 = 107.3
}

TEST_CASE("hillshade: planes are uniform and lit from the north-west", "[render]") {
  const auto rows = torch::arange(0, 5, torch::kFloat64).reshape({5, 1}).expand({5, 6});
  const auto cols = torch::arange(0, 6, torch::kFloat64).reshape({1, 6}).expand({5, 6});
  // rising to the south-east at 45 degrees: it faces the light, intensity 1 everywhere
  // (no stretch: a plane's range is below 1e-6)
  const auto facing = hillshade((rows + cols) / std::sqrt(2.0));
  CHECK((facing - 1.0).abs().max().item<double>() < 1e-12);
  // rising to the north-west: it faces away, intensity 0
  CHECK(hillshade(-(rows + cols) / std::sqrt(2.0)).abs().max().item<double>() < 1e-12);
  // rising to the south (row down the image = south): faces north, (1/2 + sqrt(2)/2) / sqrt(2)
  const auto north = render_dem(rows.contiguous());
  CHECK(north.eq(217).all().item<bool>());  // 0.85355 * 255 = 217.66
  const auto south = render_dem((-rows).contiguous());
  CHECK(south.eq(37).all().item<bool>());  // 0.14645 * 255 = 37.34
  // z = row + column: normal (-1, 1, 1) / sqrt(3), intensity (1 + sqrt(2) / 2) / sqrt(3)
  CHECK(render_dem((rows + cols).contiguous()).eq(251).all().item<bool>());  // 251.33
}

TEST_CASE("render_dem: constant elevation is not stretched", "[render]") {
  // flat: intensity sin(45 degrees) = 0.7071, kept as matplotlib keeps it -> 180
  const auto grey = render_dem(torch::full({7, 5}, 812.0f));
  CHECK(grey.sizes() == torch::IntArrayRef({3, 7, 5}));
  CHECK(grey.eq(180).all().item<bool>());
  CHECK(hillshade(torch::full({2, 2}, 3, torch::kInt16)).sub(std::sqrt(0.5)).abs().max().item<double>() < 1e-15);
  CHECK_THROWS_AS(hillshade(torch::zeros({1, 5})), std::invalid_argument);
  CHECK_THROWS_AS(hillshade(torch::zeros({4, 4}), torch::ones({3, 4}, torch::kBool)), std::invalid_argument);
}

TEST_CASE("hillshade: pixels outside valid end the data as the array's edge does", "[render]") {
  // a rectangle of valid pixels inside invalid ones (holding a wall of 9999 m that must not
  // be seen) shades exactly as that rectangle alone
  const auto dem = fixture("dem.npy");
  auto framed = torch::full({dem.size(0) + 7, dem.size(1) + 9}, 9999.0f);
  framed.slice(0, 3, 3 + dem.size(0)).slice(1, 5, 5 + dem.size(1)).copy_(dem);
  auto valid = torch::zeros(framed.sizes(), torch::kBool);
  valid.slice(0, 3, 3 + dem.size(0)).slice(1, 5, 5 + dem.size(1)).fill_(true);
  const auto inner = hillshade(framed, valid).slice(0, 3, 3 + dem.size(0)).slice(1, 5, 5 + dem.size(1));
  CHECK(torch::equal(inner, hillshade(dem)));
  // a pixel with no valid neighbour along an axis has no slope along it
  auto lone = torch::zeros({3, 3}, torch::kBool);
  lone[1][1] = true;
  lone[1][2] = true;
  const auto z = torch::tensor({0.0, 0.0, 0.0, 500.0, 0.0, 2.0, 0.0, 700.0, 0.0}).reshape({3, 3});
  // row 1: (0 -> 2) one-sided along x on both pixels; along y neither has a valid neighbour
  const auto shade = hillshade(z, lone);
  CHECK(shade[1][1].item<double>() == shade[1][2].item<double>());
}

// ---- DEM scenes: the thumbnail of each Major TOM cell from its own DEM ----------------

namespace {

// Writes a float32 DEM [h, w] as a GeoTIFF in EPSG:32633 with the top-left corner
// (x0, y0), `pixel` metres and nodata -9999; GDAL directly, not the library.
void write_dem(const std::string& path, const torch::Tensor& dem, double x0, double y0, double pixel) {
  GDALAllRegister();
  GDALDriverH driver = GDALGetDriverByName("GTiff");
  const int h = static_cast<int>(dem.size(0)), w = static_cast<int>(dem.size(1));
  GDALDatasetH ds = GDALCreate(driver, path.c_str(), w, h, 1, GDT_Float32, nullptr);
  REQUIRE(ds != nullptr);
  double gt[6] = {x0, pixel, 0, y0, 0, -pixel};
  GDALSetGeoTransform(ds, gt);
  copgen::test::set_epsg(ds, 32633);
  GDALRasterBandH band = GDALGetRasterBand(ds, 1);
  GDALSetRasterNoDataValue(band, -9999.0);
  torch::Tensor data = dem.to(torch::kFloat32).contiguous();
  REQUIRE(GDALRasterIO(band, GF_Write, 0, 0, w, h, data.data_ptr<float>(), w, h, GDT_Float32, 0, 0) == CE_None);
  GDALClose(ds);
}

struct Rendered {
  torch::Tensor grey;   // band 1, uint8 [H, W]
  torch::Tensor valid;  // the mask, bool [H, W]
};

// The DEM at `dem_path` rendered onto a 10 m grid of width x height pixels whose top-left
// corner is (x0, y0), through the scene path (render_to_file), read back with GDAL.
Rendered render_dem_scene(const std::string& dem_path, double x0, double y0, int width, int height,
                          const std::string& out) {
  const ModalityInput in = resolve_input(Modality::DEM, dem_path, InputKind::Physical);
  Grid grid;
  grid.width = width;
  grid.height = height;
  grid.georeferenced = true;
  grid.geotransform = {x0, 10.0, 0, y0, 0, -10.0};
  grid.crs_wkt = "EPSG:32633";  // written otherwise than the DEM's WKT: the same CRS
  render_to_file(in, grid, out, SceneOptions{}, "GTiff", true);
  GDALDatasetH ds = GDALOpen(out.c_str(), GA_ReadOnly);
  REQUIRE(ds != nullptr);
  Rendered r{torch::empty({height, width}, torch::kUInt8), torch::empty({height, width}, torch::kUInt8)};
  GDALRasterBandH band = GDALGetRasterBand(ds, 1);
  REQUIRE(GDALRasterIO(band, GF_Read, 0, 0, width, height, r.grey.data_ptr<uint8_t>(), width, height, GDT_Byte, 0,
                       0) == CE_None);
  REQUIRE(GDALRasterIO(GDALGetMaskBand(band), GF_Read, 0, 0, width, height, r.valid.data_ptr<uint8_t>(), width,
                       height, GDT_Byte, 0, 0) == CE_None);
  GDALClose(ds);
  r.valid = r.valid.ne(0);
  return r;
}

// Checks `got` within one grey level of `expected` where `valid`, and reports how many
// pixels are exact.
void check_within_one_level(const torch::Tensor& got, const torch::Tensor& expected, const torch::Tensor& valid,
                            const std::string& what) {
  const auto diff = (got.to(torch::kInt32) - expected.to(torch::kInt32)).abs().masked_select(valid);
  const double exact = diff.eq(0).to(torch::kFloat64).mean().item<double>();
  INFO(what << ": " << diff.numel() << " valid pixels, " << 100.0 * exact << "% exact, max difference "
            << diff.max().item<int>());
  WARN(what << ": " << 100.0 * exact << "% of " << diff.numel() << " pixels exact");
  CHECK(diff.max().item<int>() <= 1);
  CHECK(exact > 0.9);
}

constexpr double kX0 = 500000.0, kY0 = 5000000.0;  // corner of the DEMs, on the 10 m grid

}  // namespace

TEST_CASE("DEM scenes: a DEM that is exactly the area renders as Major TOM's thumbnail", "[render][scene]") {
  test::TempDir tmp;
  const auto dem = fixture("dem_cell_exact.npy");  // 90 x 100 at 30 m
  write_dem(tmp.file("dem.tif"), dem, kX0, kY0, 30.0);
  const Rendered r = render_dem_scene(tmp.file("dem.tif"), kX0, kY0, 300, 270, tmp.file("out.tif"));
  CHECK(r.valid.all().item<bool>());  // the edges are valid: one-sided gradients there
  check_within_one_level(r.grey, fixture_u8("dem_cell_exact_render.npy"), r.valid, "exact");
}

TEST_CASE("DEM scenes: a DEM that extends past the area renders as the area's own DEM", "[render][scene]") {
  test::TempDir tmp;
  const auto dem = fixture("dem_cell_past.npy");  // 130 x 150; the area is rows 20..109, columns 30..129
  write_dem(tmp.file("dem.tif"), dem, kX0 - 30 * 30.0, kY0 + 20 * 30.0, 30.0);
  const Rendered r = render_dem_scene(tmp.file("dem.tif"), kX0, kY0, 300, 270, tmp.file("out.tif"));
  CHECK(r.valid.all().item<bool>());
  check_within_one_level(r.grey, fixture_u8("dem_cell_past_render.npy"), r.valid, "past");
}

TEST_CASE("DEM scenes: nodata ends the DEM as its edge does", "[render][scene]") {
  test::TempDir tmp;
  const auto dem = fixture("dem_cell_nodata.npy");  // a hole, an east strip and one pixel of -9999
  write_dem(tmp.file("dem.tif"), dem, kX0, kY0, 30.0);
  const Rendered r = render_dem_scene(tmp.file("dem.tif"), kX0, kY0, 300, 270, tmp.file("out.tif"));
  const auto expected_valid = fixture("dem_cell_nodata_valid.npy").ne(0);
  CHECK(torch::equal(r.valid, expected_valid));
  check_within_one_level(r.grey, fixture_u8("dem_cell_nodata_render.npy"), r.valid, "nodata");
}

TEST_CASE("DEM scenes: a scene of several cells renders each cell from its own DEM", "[render][scene]") {
  test::TempDir tmp;
  const auto dem = fixture("dem_cells.npy");  // 400 x 500 at 30 m: 1200 x 1500 at 10 m, 2 x 2 cells of 1068
  write_dem(tmp.file("dem.tif"), dem, kX0, kY0, 30.0);
  const Rendered r = render_dem_scene(tmp.file("dem.tif"), kX0, kY0, 1500, 1200, tmp.file("out.tif"));
  CHECK(r.valid.all().item<bool>());
  check_within_one_level(r.grey, fixture_u8("dem_cells_render.npy"), r.valid, "cells");
}
