// copgen metrics: two image folders (or saved features) compared by FID, precision, recall, F.
#include "copgen/compare.hpp"

#include <cstdint>
#include <filesystem>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include "copgen/cancel.hpp"
#include "copgen/error.hpp"
#include "copgen/features.hpp"
#include "copgen/files.hpp"
#include "copgen/metrics.hpp"
#include "copgen/provenance.hpp"
#include "copgen/version.hpp"
#include "text.hpp"

namespace copgen {

namespace fs = std::filesystem;
using nlohmann::json;
using detail::fixed;

// ---- copgen metrics -------------------------------------------------------------------------

void validate(const CompareOptions& o) {
  if (!o.features.empty()) {
    if (!o.real.empty() || !o.fake.empty()) {
      throw UsageError("--features reads both sets' features; it cannot be combined with --real or --fake");
    }
    if (!o.save_features.empty()) throw UsageError("--save-features cannot be combined with --features");
  } else if (o.real.empty() || o.fake.empty()) {
    throw UsageError("--real and --fake: give both image folders (or --features DIR)");
  }
  if (o.batch < 1) throw UsageError("--batch-size: must be at least 1, got " + std::to_string(o.batch));
  if (o.pr.k < 1) throw UsageError("--k: must be at least 1, got " + std::to_string(o.pr.k));
}

CompareResult compare_image_sets(const CompareOptions& o, Extractors* extractors, const FeatureProgress& progress) {
  validate(o);
  // every file it writes, checked before the slow part; --json and the features are replaced
  OutputGate gate({o.real, o.fake, o.features}, true);
  if (extractors != nullptr) gate.add_input(extractors->directory());  // the extractors are read too
  if (!o.json.empty()) gate.add_replaced(o.json, FileKind::Json, "--json");
  if (!o.save_features.empty()) {
    gate.allow_new_dirs(o.save_features);
    for (const char* set : {"real", "fake"}) {
      for (const char* name : {"inception.npy", "vgg16.npy"}) {
        gate.add_replaced((fs::path(o.save_features) / set / name).string(), FileKind::Features, "--save-features");
      }
    }
  }
  ImageFeatures real, fake;
  json report;
  if (!o.features.empty()) {
    real = load_features((fs::path(o.features) / "real").string());
    fake = load_features((fs::path(o.features) / "fake").string());
    report["real"] = {{"features", (fs::path(o.features) / "real").string()}};
    report["fake"] = {{"features", (fs::path(o.features) / "fake").string()}};
    report["extractors"] = nullptr;
  } else {
    if (extractors == nullptr) throw ModelError("metrics: no feature extractors loaded");
    const std::vector<std::string> real_files = list_image_files(o.real, "--real");
    const std::vector<std::string> fake_files = list_image_files(o.fake, "--fake");
    // P/R need k + 1 points per set: say so before the slow part
    for (const auto& [flag, n] : {std::pair<std::string, size_t>{"--real", real_files.size()}, {"--fake", fake_files.size()}}) {
      if (static_cast<int64_t>(n) < o.pr.k + 1) {
        throw InputError(flag + " '" + (flag == "--real" ? o.real : o.fake) + "': " + std::to_string(n) +
                         " image(s); precision/recall with k = " + std::to_string(o.pr.k) + " need at least " +
                         std::to_string(o.pr.k + 1));
      }
    }
    const auto total = static_cast<std::int64_t>(real_files.size() + fake_files.size());
    real = extract_features(*extractors, real_files, "--real", o.batch, [&](std::int64_t d, std::int64_t) {
      throw_if_stop_requested();
      if (progress) progress(d, total);
    });
    fake = extract_features(*extractors, fake_files, "--fake", o.batch, [&](std::int64_t d, std::int64_t) {
      throw_if_stop_requested();
      if (progress) progress(static_cast<std::int64_t>(real_files.size()) + d, total);
    });
    report["real"] = {{"path", o.real}};
    report["fake"] = {{"path", o.fake}};
    const ExtractorsManifest& em = extractors->manifest();
    report["extractors"] = {{"dir", extractors->directory()},
                            {"sha256", em.sha256},
                            {"inception", em.inception.source},
                            {"vgg16", em.vgg16.source}};
    if (!o.save_features.empty()) {
      save_features(real, (fs::path(o.save_features) / "real").string());
      save_features(fake, (fs::path(o.save_features) / "fake").string());
    }
  }
  CompareResult r;
  r.scores = score_sets(real.inception, fake.inception, real.vgg16, fake.vgg16, o.pr);
  report["real"]["count"] = r.scores.real_count;
  report["fake"]["count"] = r.scores.fake_count;
  report["fid"] = r.scores.fid;
  report["precision"] = r.scores.precision;
  report["recall"] = r.scores.recall;
  report["f_score"] = r.scores.f_score;
  report["k"] = o.pr.k;
  report["copgen_version"] = kVersion;
  report["environment"] = to_json(system_info());  // what `copgen info` reports
  r.report = report;
  if (!o.json.empty()) write_text_atomically(o.json, report.dump(2) + "\n", "--json");
  return r;
}

std::string scores_table(const CompareResult& r) {
  const SetScores& s = r.scores;
  std::ostringstream t;
  t << "metric      value\n";
  t << "real        " << s.real_count << " images\n";
  t << "fake        " << s.fake_count << " images\n";
  t << "FID         " << fixed(s.fid, 4) << "\n";
  t << "precision   " << fixed(s.precision, 6) << "  (" << fixed(100 * s.precision, 2) << " %)\n";
  t << "recall      " << fixed(s.recall, 6) << "  (" << fixed(100 * s.recall, 2) << " %)\n";
  t << "F-score     " << fixed(s.f_score, 6) << "  (" << fixed(100 * s.f_score, 2) << " %)\n";
  return t.str();
}

}  // namespace copgen
