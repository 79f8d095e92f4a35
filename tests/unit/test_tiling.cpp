#include "catch_torch.hpp"

#include "copgen/tiling.hpp"

using namespace copgen;

TEST_CASE("tiling: window starts cover the axis with the requested overlap", "[tiling]") {
  CHECK(window_starts(32, 32, 8) == std::vector<std::int64_t>{0});
  CHECK(window_starts(20, 32, 8) == std::vector<std::int64_t>{0});
  CHECK(window_starts(56, 32, 8) == std::vector<std::int64_t>({0, 24}));
  const auto s = window_starts(125, 32, 8);
  REQUIRE(s.size() == 5);
  CHECK(s.front() == 0);
  CHECK(s.back() == 125 - 32);
  for (size_t i = 1; i < s.size(); ++i) CHECK(s[i - 1] + 32 - s[i] >= 8);
}

TEST_CASE("tiling: normalised weights sum to one everywhere and a lone window weighs exactly one", "[tiling]") {
  const Layout l = make_layout(87, 125, 32, 8);
  const torch::Tensor w = normalised_weights(l);
  const torch::Tensor total = fuse_windows(torch::ones({static_cast<int64_t>(l.windows.size()), 32, 32}), w, l);
  CHECK(torch::allclose(total, torch::ones({87, 125}), 1e-6, 1e-6));
  const Layout one = make_layout(32, 32, 32, 8);
  CHECK(torch::equal(normalised_weights(one), torch::ones({1, 32, 32})));
  // fusing the windows of a canvas gives the canvas back
  const torch::Tensor canvas = torch::randn({2, 87, 125});
  CHECK(torch::allclose(fuse_windows(extract_windows(canvas, l), w, l), canvas, 1e-5, 1e-5));
}

TEST_CASE("tiling: window cores tile the canvas exactly once", "[tiling]") {
  const Layout l = make_layout(70, 101, 32, 8);
  torch::Tensor count = torch::zeros({70, 101}, torch::kInt32);
  const auto cores = window_cores(l);
  REQUIRE(cores.size() == l.windows.size());
  for (size_t i = 0; i < cores.size(); ++i) {
    const Core& c = cores[i];
    CHECK(c.y0 >= l.windows[i].y);
    CHECK(c.y1 <= l.windows[i].y + 32);
    CHECK(c.x0 >= l.windows[i].x);
    CHECK(c.x1 <= l.windows[i].x + 32);
    count.narrow(0, c.y0, c.y1 - c.y0).narrow(1, c.x0, c.x1 - c.x0).add_(1);
  }
  CHECK(torch::equal(count, torch::ones({70, 101}, torch::kInt32)));
}
