// The paper's image-set metrics on feature vectors: Fréchet distance (FID on Inception
// pool3 features) and improved precision / recall with their F-score (on VGG16 fc2_relu
// features), with torch-fidelity's conventions (shared/reference/metrics.md). This module
// only does the maths on [N, D] feature matrices; which network made the features is
// features.hpp's business, so other extractors can be plugged in.
//
//   double fid = copgen::fid(real_inception, fake_inception);             // [N, 2048] each
//   copgen::PrecisionRecall pr = copgen::precision_recall(real_vgg, fake_vgg);  // k = 3
//   pr.precision; pr.recall; pr.f_score;                                   // fractions in [0, 1]
//
// Statistics are float64 whatever the input dtype. Distances for precision/recall are
// computed in blocks of rows, so tens of thousands of points per set fit in memory.
#pragma once

#include <cstdint>

#include <torch/torch.h>

namespace copgen {

// Mean and unbiased covariance (divided by N - 1) of a feature set, float64 on the CPU.
struct GaussianStats {
  torch::Tensor mean;  // [D]
  torch::Tensor cov;   // [D, D]
  std::int64_t count = 0;
};

// Statistics of features [N, D] (any floating dtype, any device). Throws InputError when
// N < 2, the tensor is not 2-D, or a value is NaN or infinite.
GaussianStats gaussian_stats(const torch::Tensor& features);

// Fréchet distance of two Gaussians:
//   |mu1 - mu2|^2 + tr(S1) + tr(S2) - 2 tr((S1 S2)^(1/2)),
// with tr((S1 S2)^(1/2)) = sum_i sqrt(lambda_i(S1^(1/2) S2 S1^(1/2))) from symmetric
// eigen-decompositions in float64; eigenvalues below zero (rounding of a positive
// semi-definite matrix) count as zero, and the result is never negative. Throws
// InputError when the dimensions differ.
double frechet_distance(const GaussianStats& a, const GaussianStats& b);

// FID of two feature sets: frechet_distance(gaussian_stats(a), gaussian_stats(b)).
double fid(const torch::Tensor& a, const torch::Tensor& b);

struct PrecisionRecallOptions {
  int k = 3;                                   // neighbourhood size (Kynkäänniemi et al.: 3)
  std::int64_t block_elements = 1 << 25;       // distance entries held at once (x 4 or 8 bytes)
  torch::ScalarType dtype = torch::kFloat32;   // distance arithmetic (torch-fidelity: float32)
};

struct PrecisionRecall {
  double precision = 0.0;  // share of fake points inside some real point's ball
  double recall = 0.0;     // share of real points inside some fake point's ball
  double f_score = 0.0;    // 2 P R / max(1e-5, P + R)
};

// Squared distance of each point of `features` [N, D] to its k-th nearest neighbour in
// the same set, not counting itself (the (k+1)-th smallest including the zero to
// itself): [N] in options.dtype on the CPU. Throws InputError when N < k + 1.
torch::Tensor knn_radii_squared(const torch::Tensor& features, const PrecisionRecallOptions& options = {});

// Improved precision and recall (Kynkäänniemi et al. 2019) of `fake` against `real`
// ([N, D] each, same D), Euclidean distances; a point exactly at a ball's radius is
// inside. Throws InputError when a set has fewer than k + 1 points or the dimensions
// differ.
PrecisionRecall precision_recall(const torch::Tensor& real, const torch::Tensor& fake,
                                 const PrecisionRecallOptions& options = {});

// 2 P R / max(1e-5, P + R): 0 when P = R = 0.
double f_score(double precision, double recall);

// Everything Table 1 reports for one generated modality.
struct SetScores {
  double fid = 0.0;
  double precision = 0.0;
  double recall = 0.0;
  double f_score = 0.0;
  std::int64_t real_count = 0;
  std::int64_t fake_count = 0;
};

// FID from the Inception features and P/R/F from the VGG features of a real and a fake
// set (rows are images; the two feature kinds of one set must have the same rows).
SetScores score_sets(const torch::Tensor& real_inception, const torch::Tensor& fake_inception,
                     const torch::Tensor& real_vgg, const torch::Tensor& fake_vgg,
                     const PrecisionRecallOptions& options = {});

}  // namespace copgen
