// copgen metrics: a folder of generated images scored against a folder of real ones (or
// the features of both, saved before) by FID, precision, recall and F, on the features of
// features.hpp's extractors, as metrics.hpp computes them. The Table 1 protocol of
// copgen eval is evaluation.hpp's.
//
//   copgen::CompareOptions o;
//   o.real = "real/";  o.fake = "generated/";  o.json = "scores.json";
//   copgen::Extractors ex = copgen::Extractors::load(extractors_dir);
//   copgen::CompareResult r = copgen::compare_image_sets(o, &ex);   // writes scores.json
//   std::cout << copgen::scores_table(r);
#pragma once

#include <string>

#include <nlohmann/json.hpp>

#include "copgen/features.hpp"
#include "copgen/metrics.hpp"

namespace copgen {

struct CompareOptions {
  std::string real;           // --real: folder of real images (any GDAL format, 3 Byte bands)
  std::string fake;           // --fake: folder of generated images
  std::string features;       // --features: read DIR/real and DIR/fake (features.hpp) instead
  std::string save_features;  // --save-features: also write DIR/real and DIR/fake
  std::string json;           // --json: also write the scores as JSON here
  int batch = 32;             // --batch-size: images per extractor call
  PrecisionRecallOptions pr;  // --k
};

// Throws UsageError naming the flags of a conflict (--features with --real, ...).
void validate(const CompareOptions& options);

struct CompareResult {
  SetScores scores;
  nlohmann::json report;  // what --json writes: inputs, counts, scores, k, extractors
};

// Scores --fake against --real. `extractors` may be null only with --features.
// Writes --save-features and --json (temporary name, then rename). Throws UsageError,
// InputError, ModelError, OutputError.
CompareResult compare_image_sets(const CompareOptions& options, Extractors* extractors,
                                 const FeatureProgress& progress = {});

// The scores as a small text table: counts, FID, precision, recall, F.
std::string scores_table(const CompareResult& result);

}  // namespace copgen
