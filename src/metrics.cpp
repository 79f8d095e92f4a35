#include "copgen/metrics.hpp"

#include <algorithm>
#include <cmath>
#include <string>

#include "copgen/error.hpp"
#include "text.hpp"

namespace copgen {

using detail::shape_str;

namespace {

void check_features(const torch::Tensor& f, const std::string& what) {
  if (!f.defined() || f.dim() != 2) {
    throw InputError(what + ": expected a feature matrix [N, D], got " + (f.defined() ? shape_str(f) : "nothing"));
  }
  if (!torch::isfinite(f).all().item<bool>()) throw InputError(what + ": features contain NaN or infinite values");
}

// Squared Euclidean distances [a, b] between rows, in the dtype of the inputs:
// |x|^2 + |y|^2 - 2 x.y, clamped at zero (rounding can make it slightly negative).
torch::Tensor squared_distances(const torch::Tensor& x, const torch::Tensor& x_sq, const torch::Tensor& y,
                                const torch::Tensor& y_sq) {
  torch::Tensor d = torch::addmm(x_sq.unsqueeze(1) + y_sq.unsqueeze(0), x, y.t(), 1.0, -2.0);
  return d.clamp_min_(0.0);
}

// Rows per block so that a block of distances to `others` points holds about `elements`.
int64_t rows_per_block(int64_t others, int64_t elements) {
  return std::max<int64_t>(1, elements / std::max<int64_t>(1, others));
}

// Square root of a symmetric positive semi-definite matrix through its eigen-decomposition.
torch::Tensor sqrt_psd(const torch::Tensor& s) {
  auto [w, v] = torch::linalg_eigh(s);
  return torch::matmul(v * w.clamp_min(0.0).sqrt().unsqueeze(0), v.t());
}

}  // namespace

GaussianStats gaussian_stats(const torch::Tensor& features) {
  check_features(features, "gaussian_stats");
  const int64_t n = features.size(0);
  if (n < 2) throw InputError("FID needs at least 2 feature vectors per set, got " + std::to_string(n));
  const torch::Tensor x = features.to(torch::kCPU, torch::kFloat64);
  GaussianStats s;
  s.count = n;
  s.mean = x.mean(0);
  const torch::Tensor c = x - s.mean.unsqueeze(0);
  s.cov = torch::matmul(c.t(), c) / static_cast<double>(n - 1);
  return s;
}

double frechet_distance(const GaussianStats& a, const GaussianStats& b) {
  if (a.mean.size(0) != b.mean.size(0)) {
    throw InputError("FID: feature dimensions differ (" + std::to_string(a.mean.size(0)) + " and " +
                     std::to_string(b.mean.size(0)) + ")");
  }
  const torch::Tensor mu1 = a.mean.to(torch::kFloat64), mu2 = b.mean.to(torch::kFloat64);
  const torch::Tensor s1 = a.cov.to(torch::kFloat64), s2 = b.cov.to(torch::kFloat64);
  const double mean_term = (mu1 - mu2).square().sum().item<double>();
  // tr((S1 S2)^(1/2)): S1 S2 is similar to S1^(1/2) S2 S1^(1/2), which is symmetric PSD.
  const torch::Tensor s1h = sqrt_psd(s1);
  torch::Tensor m = torch::matmul(torch::matmul(s1h, s2), s1h);
  m = (m + m.t()) * 0.5;  // symmetric up to rounding; make it exactly so for eigh
  const double tr_sqrt = torch::linalg_eigvalsh(m).clamp_min(0.0).sqrt().sum().item<double>();
  const double d = mean_term + s1.trace().item<double>() + s2.trace().item<double>() - 2.0 * tr_sqrt;
  return std::max(0.0, d);
}

double fid(const torch::Tensor& a, const torch::Tensor& b) {
  return frechet_distance(gaussian_stats(a), gaussian_stats(b));
}

double f_score(double precision, double recall) {
  return 2.0 * precision * recall / std::max(1e-5, precision + recall);
}

torch::Tensor knn_radii_squared(const torch::Tensor& features, const PrecisionRecallOptions& o) {
  check_features(features, "precision/recall");
  if (o.k < 1) throw UsageError("precision/recall: k must be at least 1, got " + std::to_string(o.k));
  const int64_t n = features.size(0);
  if (n < o.k + 1) {
    throw InputError("precision/recall with k = " + std::to_string(o.k) + " needs at least " +
                     std::to_string(o.k + 1) + " feature vectors per set, got " + std::to_string(n));
  }
  const torch::Tensor x = features.to(torch::kCPU, o.dtype).contiguous();
  const torch::Tensor x_sq = x.square().sum(1);
  torch::Tensor radii = torch::empty({n}, x.options());
  const int64_t rows = rows_per_block(n, o.block_elements);
  for (int64_t i = 0; i < n; i += rows) {
    const int64_t b = std::min(rows, n - i);
    torch::Tensor d = squared_distances(x.narrow(0, i, b), x_sq.narrow(0, i, b), x, x_sq);
    // each point's distance to itself is exactly zero (rounding of the expansion aside)
    d.narrow(1, i, b).fill_diagonal_(0.0);
    radii.narrow(0, i, b).copy_(std::get<0>(d.kthvalue(o.k + 1, 1)));
  }
  return radii;
}

PrecisionRecall precision_recall(const torch::Tensor& real, const torch::Tensor& fake,
                                 const PrecisionRecallOptions& o) {
  check_features(real, "precision/recall (real set)");
  check_features(fake, "precision/recall (fake set)");
  if (real.size(1) != fake.size(1)) {
    throw InputError("precision/recall: feature dimensions differ (real " + std::to_string(real.size(1)) +
                     ", fake " + std::to_string(fake.size(1)) + ")");
  }
  const torch::Tensor r2_real = knn_radii_squared(real, o);
  const torch::Tensor r2_fake = knn_radii_squared(fake, o);
  const torch::Tensor x = real.to(torch::kCPU, o.dtype).contiguous();
  const torch::Tensor y = fake.to(torch::kCPU, o.dtype).contiguous();
  const torch::Tensor x_sq = x.square().sum(1), y_sq = y.square().sum(1);
  const int64_t n_real = x.size(0), n_fake = y.size(0);

  // One pass over fake-vs-real distance blocks serves both directions.
  int64_t fake_inside = 0;
  torch::Tensor real_inside = torch::zeros({n_real}, torch::kBool);
  const int64_t rows = rows_per_block(n_real, o.block_elements);
  for (int64_t i = 0; i < n_fake; i += rows) {
    const int64_t b = std::min(rows, n_fake - i);
    const torch::Tensor d = squared_distances(y.narrow(0, i, b), y_sq.narrow(0, i, b), x, x_sq);  // [b, n_real]
    fake_inside += d.le(r2_real.unsqueeze(0)).any(1).sum().item<int64_t>();
    real_inside.logical_or_(d.le(r2_fake.narrow(0, i, b).unsqueeze(1)).any(0));
  }
  PrecisionRecall pr;
  pr.precision = static_cast<double>(fake_inside) / static_cast<double>(n_fake);
  pr.recall = real_inside.sum().item<double>() / static_cast<double>(n_real);
  pr.f_score = f_score(pr.precision, pr.recall);
  return pr;
}

SetScores score_sets(const torch::Tensor& real_inception, const torch::Tensor& fake_inception,
                     const torch::Tensor& real_vgg, const torch::Tensor& fake_vgg,
                     const PrecisionRecallOptions& options) {
  if (real_inception.size(0) != real_vgg.size(0) || fake_inception.size(0) != fake_vgg.size(0)) {
    throw InputError("metrics: the Inception and VGG features of a set have different counts (real " +
                     std::to_string(real_inception.size(0)) + " and " + std::to_string(real_vgg.size(0)) +
                     ", fake " + std::to_string(fake_inception.size(0)) + " and " +
                     std::to_string(fake_vgg.size(0)) + ")");
  }
  SetScores s;
  s.real_count = real_inception.size(0);
  s.fake_count = fake_inception.size(0);
  s.fid = fid(real_inception, fake_inception);
  const PrecisionRecall pr = precision_recall(real_vgg, fake_vgg, options);
  s.precision = pr.precision;
  s.recall = pr.recall;
  s.f_score = pr.f_score;
  return s;
}

}  // namespace copgen
