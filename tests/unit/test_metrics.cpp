// FID, precision, recall and F on features with known answers: closed-form Fréchet
// distances of Gaussians, an independent float64 implementation (plain loops and a
// Denman-Beavers matrix square root, no eigen-decomposition), hand-built point sets.
#include "catch_torch.hpp"

#include <cmath>
#include <random>
#include <vector>

#include "copgen/error.hpp"
#include "copgen/metrics.hpp"

using namespace copgen;

namespace {

using Matrix = std::vector<std::vector<long double>>;

Matrix identity(size_t n) {
  Matrix m(n, std::vector<long double>(n, 0.0L));
  for (size_t i = 0; i < n; ++i) m[i][i] = 1.0L;
  return m;
}

Matrix multiply(const Matrix& a, const Matrix& b) {
  const size_t n = a.size();
  Matrix c(n, std::vector<long double>(n, 0.0L));
  for (size_t i = 0; i < n; ++i)
    for (size_t k = 0; k < n; ++k)
      for (size_t j = 0; j < n; ++j) c[i][j] += a[i][k] * b[k][j];
  return c;
}

// Gauss-Jordan with partial pivoting.
Matrix inverse(Matrix a) {
  const size_t n = a.size();
  Matrix inv = identity(n);
  for (size_t col = 0; col < n; ++col) {
    size_t pivot = col;
    for (size_t r = col + 1; r < n; ++r) {
      if (std::fabs(a[r][col]) > std::fabs(a[pivot][col])) pivot = r;
    }
    std::swap(a[col], a[pivot]);
    std::swap(inv[col], inv[pivot]);
    const long double p = a[col][col];
    for (size_t j = 0; j < n; ++j) {
      a[col][j] /= p;
      inv[col][j] /= p;
    }
    for (size_t r = 0; r < n; ++r) {
      if (r == col) continue;
      const long double f = a[r][col];
      for (size_t j = 0; j < n; ++j) {
        a[r][j] -= f * a[col][j];
        inv[r][j] -= f * inv[col][j];
      }
    }
  }
  return inv;
}

// tr(A^(1/2)) by the Denman-Beavers iteration (A = S1 S2 has positive eigenvalues).
long double trace_sqrt(const Matrix& a) {
  Matrix y = a, z = identity(a.size());
  for (int it = 0; it < 60; ++it) {
    const Matrix yi = inverse(y), zi = inverse(z);
    for (size_t i = 0; i < a.size(); ++i) {
      for (size_t j = 0; j < a.size(); ++j) {
        y[i][j] = 0.5L * (y[i][j] + zi[i][j]);
        z[i][j] = 0.5L * (z[i][j] + yi[i][j]);
      }
    }
  }
  long double t = 0.0L;
  for (size_t i = 0; i < a.size(); ++i) t += y[i][i];
  return t;
}

struct Moments {
  std::vector<long double> mean;
  Matrix cov;
};

Moments moments_of(const std::vector<std::vector<double>>& x) {
  const size_t n = x.size(), d = x[0].size();
  Moments m{std::vector<long double>(d, 0.0L), Matrix(d, std::vector<long double>(d, 0.0L))};
  for (const auto& row : x)
    for (size_t j = 0; j < d; ++j) m.mean[j] += row[j];
  for (auto& v : m.mean) v /= static_cast<long double>(n);
  for (const auto& row : x)
    for (size_t i = 0; i < d; ++i)
      for (size_t j = 0; j < d; ++j) m.cov[i][j] += (row[i] - m.mean[i]) * (row[j] - m.mean[j]);
  for (auto& r : m.cov)
    for (auto& v : r) v /= static_cast<long double>(n - 1);
  return m;
}

long double reference_frechet(const Moments& a, const Moments& b) {
  long double d = 0.0L;
  for (size_t i = 0; i < a.mean.size(); ++i) {
    d += (a.mean[i] - b.mean[i]) * (a.mean[i] - b.mean[i]) + a.cov[i][i] + b.cov[i][i];
  }
  return d - 2.0L * trace_sqrt(multiply(a.cov, b.cov));
}

torch::Tensor to_tensor(const std::vector<std::vector<double>>& x) {
  torch::Tensor t = torch::empty({static_cast<int64_t>(x.size()), static_cast<int64_t>(x[0].size())}, torch::kFloat64);
  for (size_t i = 0; i < x.size(); ++i)
    for (size_t j = 0; j < x[0].size(); ++j) t[static_cast<int64_t>(i)][static_cast<int64_t>(j)] = x[i][j];
  return t;
}

torch::Tensor matrix_tensor(const Matrix& m) {
  torch::Tensor t = torch::empty({static_cast<int64_t>(m.size()), static_cast<int64_t>(m.size())}, torch::kFloat64);
  for (size_t i = 0; i < m.size(); ++i)
    for (size_t j = 0; j < m.size(); ++j) t[static_cast<int64_t>(i)][static_cast<int64_t>(j)] = static_cast<double>(m[i][j]);
  return t;
}

// Points on a line (second coordinate 0), so that distances are plain differences.
torch::Tensor on_line(const std::vector<double>& xs) {
  torch::Tensor t = torch::zeros({static_cast<int64_t>(xs.size()), 2});
  for (size_t i = 0; i < xs.size(); ++i) t[static_cast<int64_t>(i)][0] = xs[i];
  return t;
}

torch::Tensor points(const std::vector<std::pair<double, double>>& ps) {
  torch::Tensor t = torch::zeros({static_cast<int64_t>(ps.size()), 2});
  for (size_t i = 0; i < ps.size(); ++i) {
    t[static_cast<int64_t>(i)][0] = ps[i].first;
    t[static_cast<int64_t>(i)][1] = ps[i].second;
  }
  return t;
}

// Brute force, in double: the k-th smallest distance to the other points.
PrecisionRecall brute_force(const torch::Tensor& real, const torch::Tensor& fake, int k) {
  const auto r = real.to(torch::kFloat64), f = fake.to(torch::kFloat64);
  const auto dist = [](const torch::Tensor& a, int64_t i, const torch::Tensor& b, int64_t j) {
    return (a[i] - b[j]).square().sum().item<double>();
  };
  const auto radii = [&](const torch::Tensor& x) {
    std::vector<double> out;
    for (int64_t i = 0; i < x.size(0); ++i) {
      std::vector<double> d;
      for (int64_t j = 0; j < x.size(0); ++j)
        if (j != i) d.push_back(dist(x, i, x, j));
      std::sort(d.begin(), d.end());
      out.push_back(d[static_cast<size_t>(k - 1)]);
    }
    return out;
  };
  const auto rr = radii(r), rf = radii(f);
  const auto share = [&](const torch::Tensor& q, const torch::Tensor& ref, const std::vector<double>& rad) {
    int64_t inside = 0;
    for (int64_t i = 0; i < q.size(0); ++i) {
      for (int64_t j = 0; j < ref.size(0); ++j) {
        if (dist(q, i, ref, j) <= rad[static_cast<size_t>(j)]) {
          ++inside;
          break;
        }
      }
    }
    return static_cast<double>(inside) / static_cast<double>(q.size(0));
  };
  PrecisionRecall pr;
  pr.precision = share(f, r, rr);
  pr.recall = share(r, f, rf);
  pr.f_score = f_score(pr.precision, pr.recall);
  return pr;
}

}  // namespace

TEST_CASE("metrics: Frechet distance of Gaussians with diagonal covariances is the closed form", "[metrics][fid]") {
  GaussianStats a, b;
  a.mean = torch::tensor({0.0, 0.0, 0.0, 0.0}, torch::kFloat64);
  b.mean = torch::tensor({1.0, 2.0, 0.0, -1.0}, torch::kFloat64);
  a.cov = torch::diag(torch::tensor({1.0, 2.0, 3.0, 4.0}, torch::kFloat64));
  b.cov = torch::diag(torch::tensor({4.0, 1.0, 2.0, 0.5}, torch::kFloat64));
  // |mu1 - mu2|^2 + sum_i (s1_i + s2_i - 2 sqrt(s1_i s2_i))
  const double want = 6.0 + (1 + 4 - 2 * 2.0) + (2 + 1 - 2 * std::sqrt(2.0)) + (3 + 2 - 2 * std::sqrt(6.0)) +
                      (4 + 0.5 - 2 * std::sqrt(2.0));
  CHECK(frechet_distance(a, b) == Approx(want).epsilon(1e-12));
  CHECK(frechet_distance(b, a) == Approx(want).epsilon(1e-12));
  CHECK(frechet_distance(a, a) == Approx(0.0).margin(1e-12));
}

TEST_CASE("metrics: Frechet distance of correlated Gaussians matches an independent square root", "[metrics][fid]") {
  // S1 = L1 L1^T, S2 = L2 L2^T with L lower triangular: symmetric positive definite, not commuting
  const Matrix l1 = {{1.0L, 0, 0}, {0.5L, 1.2L, 0}, {-0.3L, 0.4L, 0.9L}};
  const Matrix l2 = {{2.0L, 0, 0}, {-0.7L, 0.6L, 0}, {0.2L, 0.1L, 1.5L}};
  Matrix l1t(3, std::vector<long double>(3)), l2t(3, std::vector<long double>(3));
  for (size_t i = 0; i < 3; ++i)
    for (size_t j = 0; j < 3; ++j) {
      l1t[i][j] = l1[j][i];
      l2t[i][j] = l2[j][i];
    }
  const Moments a{{0.1L, -0.2L, 0.3L}, multiply(l1, l1t)};
  const Moments b{{1.0L, 0.5L, -0.5L}, multiply(l2, l2t)};
  GaussianStats sa{torch::tensor({0.1, -0.2, 0.3}, torch::kFloat64), matrix_tensor(a.cov), 0};
  GaussianStats sb{torch::tensor({1.0, 0.5, -0.5}, torch::kFloat64), matrix_tensor(b.cov), 0};
  const double want = static_cast<double>(reference_frechet(a, b));
  CHECK(want > 1.0);
  CHECK(frechet_distance(sa, sb) == Approx(want).epsilon(1e-10));
}

TEST_CASE("metrics: FID of Gaussian samples approaches the closed form", "[metrics][fid]") {
  torch::manual_seed(123);
  const int64_t n = 20000;
  const auto mu1 = torch::tensor({0.0, 0.0, 0.0, 0.0}, torch::kFloat64);
  const auto mu2 = torch::tensor({1.0, 2.0, 0.0, -1.0}, torch::kFloat64);
  const auto sd1 = torch::tensor({1.0, 2.0, 3.0, 4.0}, torch::kFloat64).sqrt();
  const auto sd2 = torch::tensor({4.0, 1.0, 2.0, 0.5}, torch::kFloat64).sqrt();
  const auto x = (torch::randn({n, 4}, torch::kFloat64) * sd1 + mu1).to(torch::kFloat32);
  const auto y = (torch::randn({n, 4}, torch::kFloat64) * sd2 + mu2).to(torch::kFloat32);
  const double want = 6.0 + 1.0 + (3 - 2 * std::sqrt(2.0)) + (5 - 2 * std::sqrt(6.0)) + (4.5 - 2 * std::sqrt(2.0));
  // sampling error of the means and variances at n = 20000 is about 0.05 here
  CHECK(fid(x, y) == Approx(want).margin(0.15));
  // two samples of one Gaussian: small, not zero
  const auto x2 = (torch::randn({n, 4}, torch::kFloat64) * sd1 + mu1).to(torch::kFloat32);
  const double same = fid(x, x2);
  CHECK(same > 0.0);
  CHECK(same < 0.05);
}

TEST_CASE("metrics: FID on fixed features equals an independent float64 computation to 1e-6", "[metrics][fid]") {
  std::mt19937_64 rng(99);
  std::normal_distribution<double> normal;
  const size_t d = 8;
  std::vector<std::vector<double>> a(60, std::vector<double>(d)), b(45, std::vector<double>(d));
  for (auto& row : a)
    for (size_t j = 0; j < d; ++j) row[j] = normal(rng) * (1.0 + 0.2 * static_cast<double>(j));
  for (auto& row : b) {
    const double shared = normal(rng);  // correlated dimensions
    for (size_t j = 0; j < d; ++j) row[j] = 0.5 + normal(rng) + 0.8 * shared;
  }
  const double want = static_cast<double>(reference_frechet(moments_of(a), moments_of(b)));
  const double got = fid(to_tensor(a), to_tensor(b));
  CHECK(want > 1.0);
  CHECK(std::fabs(got - want) / want < 1e-6);
  // float32 input: the statistics are still float64
  const double got32 = fid(to_tensor(a).to(torch::kFloat32), to_tensor(b).to(torch::kFloat32));
  CHECK(std::fabs(got32 - want) / want < 1e-5);
  const GaussianStats s = gaussian_stats(to_tensor(a));
  CHECK(s.count == 60);
  CHECK(s.cov.scalar_type() == torch::kFloat64);
  CHECK(s.mean[3].item<double>() == Approx(static_cast<double>(moments_of(a).mean[3])).epsilon(1e-12));
}

TEST_CASE("metrics: FID of a set with itself is 0", "[metrics][fid]") {
  torch::manual_seed(5);
  const auto x = torch::randn({300, 64}) * 3 + 1;  // rank-full covariance
  CHECK(fid(x, x) == Approx(0.0).margin(1e-8));
  const auto low_rank = torch::randn({20, 64});  // singular covariance (rank 19)
  CHECK(fid(low_rank, low_rank) == Approx(0.0).margin(1e-8));
}

TEST_CASE("metrics: FID needs two points and equal dimensions", "[metrics][fid]") {
  CHECK_THROWS_AS(fid(torch::zeros({1, 3}), torch::zeros({4, 3})), InputError);
  CHECK_THROWS_AS(fid(torch::randn({4, 3}), torch::randn({4, 2})), InputError);
  CHECK_THROWS_AS(fid(torch::randn({4}), torch::randn({4, 2})), InputError);
  auto bad = torch::randn({4, 3});
  bad[1][1] = std::nan("");
  CHECK_THROWS_AS(fid(bad, torch::randn({4, 3})), InputError);
}

TEST_CASE("metrics: k-th neighbour radius excludes the point itself", "[metrics][pr]") {
  PrecisionRecallOptions o;
  o.k = 1;
  // 0, 1, 5, 6: each has a neighbour at distance 1
  CHECK(torch::equal(knn_radii_squared(on_line({0, 1, 5, 6}), o), torch::tensor({1.0f, 1.0f, 1.0f, 1.0f})));
  o.k = 3;
  // 0..4: third neighbours at 3, 2, 2, 2, 3
  CHECK(torch::equal(knn_radii_squared(on_line({0, 1, 2, 3, 4}), o), torch::tensor({9.0f, 4.0f, 4.0f, 4.0f, 9.0f})));
  // a duplicate counts as a neighbour at distance 0
  o.k = 1;
  CHECK(torch::equal(knn_radii_squared(on_line({2, 2, 7}), o), torch::tensor({0.0f, 0.0f, 25.0f})));
  CHECK_THROWS_AS(knn_radii_squared(on_line({0, 1}), PrecisionRecallOptions{}), InputError);
}

TEST_CASE("metrics: precision and recall of hand-built sets with points exactly on the radius", "[metrics][pr]") {
  PrecisionRecallOptions o;
  o.k = 1;
  // real 0, 1, 5, 6 (radii 1); fake 2, 3, 10, 11 (radii 1)
  // fake 2 is at distance 1 of real 1 (radius 1): inside; 3, 10, 11 are not -> P = 1/4
  // real 1 is at distance 1 of fake 2 (radius 1): inside; 0, 5, 6 are not -> R = 1/4
  const PrecisionRecall pr = precision_recall(on_line({0, 1, 5, 6}), on_line({2, 3, 10, 11}), o);
  CHECK(pr.precision == 0.25);
  CHECK(pr.recall == 0.25);
  CHECK(pr.f_score == Approx(0.25).epsilon(1e-12));

  // k = 3 (the default) in two dimensions: real = the corners of two unit squares, at
  // (0, 0) and at (20, 0); every real radius is sqrt(2) (neighbours at 1, 1, sqrt(2)).
  const auto real = points({{0, 0}, {1, 0}, {0, 1}, {1, 1}, {20, 0}, {21, 0}, {20, 1}, {21, 1}});
  // (0.5, 0.5) inside; (2, 2) exactly sqrt(2) from (1, 1): inside; (20.5, 0.5) inside;
  // (10, 0) and (-5, -5) outside -> P = 3/5. Fake squared radii (third neighbours):
  // 90.5, 98, 110.5, 400, 250: the first square lies in the ball of (0.5, 0.5), the
  // second in that of (20.5, 0.5) -> R = 1.
  const auto fake = points({{0.5, 0.5}, {2, 2}, {10, 0}, {20.5, 0.5}, {-5, -5}});
  const PrecisionRecall pr3 = precision_recall(real, fake);
  CHECK(pr3.precision == Approx(0.6).epsilon(1e-12));
  CHECK(pr3.recall == 1.0);
  CHECK(pr3.f_score == Approx(0.75).epsilon(1e-12));
  // moving (2, 2) a hair outwards puts it outside
  const auto fake_out = points({{0.5, 0.5}, {2.001, 2.001}, {10, 0}, {20.5, 0.5}, {-5, -5}});
  CHECK(precision_recall(real, fake_out).precision == Approx(0.4).epsilon(1e-12));
}

TEST_CASE("metrics: F is 0 when precision and recall are 0", "[metrics][pr]") {
  CHECK(f_score(0.0, 0.0) == 0.0);
  CHECK(f_score(0.5, 0.5) == Approx(0.5));
  CHECK(f_score(1.0, 0.0) == 0.0);
  // two far-apart clusters: nothing of either lies in the other's balls
  const PrecisionRecall pr = precision_recall(on_line({0, 1, 2, 3, 4}), on_line({100, 101, 102, 103, 104}));
  CHECK(pr.precision == 0.0);
  CHECK(pr.recall == 0.0);
  CHECK(pr.f_score == 0.0);
}

TEST_CASE("metrics: blocked distances give the brute-force answer", "[metrics][pr]") {
  torch::manual_seed(17);
  const auto real = torch::randn({37, 6});
  const auto fake = torch::randn({29, 6}) * 0.5 + 0.4;  // tighter: some real points stay outside
  for (int k : {1, 3, 5}) {
    PrecisionRecallOptions whole, blocked;
    whole.k = blocked.k = k;
    blocked.block_elements = 50;  // one or two rows per block
    const PrecisionRecall want = brute_force(real, fake, k);
    const PrecisionRecall a = precision_recall(real, fake, whole);
    const PrecisionRecall b = precision_recall(real, fake, blocked);
    PrecisionRecallOptions f64 = blocked;
    f64.dtype = torch::kFloat64;
    const PrecisionRecall c = precision_recall(real, fake, f64);
    INFO("k = " << k);
    CHECK(want.precision > 0.0);
    CHECK(want.recall > 0.0);
    CHECK(want.recall < 1.0);
    for (const PrecisionRecall& got : {a, b, c}) {
      CHECK(got.precision == want.precision);
      CHECK(got.recall == want.recall);
      CHECK(got.f_score == Approx(want.f_score).epsilon(1e-12));
    }
  }
}

TEST_CASE("metrics: precision and recall check their inputs", "[metrics][pr]") {
  CHECK_THROWS_AS(precision_recall(torch::randn({3, 2}), torch::randn({6, 2})), InputError);  // k + 1 = 4 needed
  CHECK_THROWS_AS(precision_recall(torch::randn({6, 2}), torch::randn({6, 3})), InputError);
  PrecisionRecallOptions o;
  o.k = 0;
  CHECK_THROWS_AS(precision_recall(torch::randn({6, 2}), torch::randn({6, 2}), o), UsageError);
}

TEST_CASE("metrics: score_sets puts FID and P/R/F together", "[metrics]") {
  torch::manual_seed(3);
  const auto ri = torch::randn({12, 5}), fi = torch::randn({10, 5}) + 0.5;
  const auto rv = torch::randn({12, 7}), fv = torch::randn({10, 7});
  const SetScores s = score_sets(ri, fi, rv, fv);
  CHECK(s.real_count == 12);
  CHECK(s.fake_count == 10);
  CHECK(s.fid == fid(ri, fi));
  const PrecisionRecall pr = precision_recall(rv, fv);
  CHECK(s.precision == pr.precision);
  CHECK(s.recall == pr.recall);
  CHECK(s.f_score == pr.f_score);
  CHECK_THROWS_AS(score_sets(ri, fi, rv.narrow(0, 0, 11), fv), InputError);
}
