// copgen eval: the paper's Table 1 protocol on a test set of aligned tuples. For each
// row (a set of given modalities: none, DEM, S1RTC, S2L1C, S2L2A, plus any extra ones)
// the missing modalities of every test tuple are generated, and each generated modality
// is scored against that modality's real images: FID (Inception pool3) and precision,
// recall and F (VGG16 fc2_relu, k = 3), as metrics.hpp computes them. copgen metrics,
// two image folders compared, is compare.hpp's.
//
//   copgen::EvalOptions o;
//   o.test_set = "/data/test";  o.output = "eval-out";  o.sampling.seed = 42;
//   copgen::Models models = copgen::Models::load(models_dir, model_options);
//   copgen::Extractors ex = copgen::Extractors::load(extractors_dir);
//   copgen::EvalResult r = copgen::run_eval(o, models, ex);   // writes OUT/table1.{md,csv,json}
//                                                            // and OUT/report.html (+ OUT/report/)
//
// Everything expensive is cached under OUT/cache (generated images as PNG, per chunk of
// --batch-size samples, and feature matrices as .npy), so an interrupted eval resumes
// where it stopped when run again with the same settings. docs/eval.md describes the
// layouts, the cache, the outputs and the conventions.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "copgen/discovery.hpp"
#include "copgen/features.hpp"
#include "copgen/metrics.hpp"
#include "copgen/modality.hpp"
#include "copgen/models.hpp"
#include "copgen/tuples.hpp"

namespace copgen {

// One row of the table: the modalities given; every other one is generated and scored.
struct EvalCondition {
  std::vector<Modality> given;  // modality order; empty: unconditional

  // "uncond." or the given modalities joined by '+', e.g. "DEM+S1RTC".
  std::string label() const;
  std::vector<Modality> generated() const;
  bool operator==(const EvalCondition& o) const { return given == o.given; }
};

// The five COP-GEN-Beta rows of Table 1, in its order: uncond., DEM, S1RTC, S2L1C, S2L2A.
std::vector<EvalCondition> table1_conditions();

// "DEM+S1RTC,S2L1C": rows separated by ',', modalities of a row by '+'. Throws
// UsageError naming `flag` for an unknown or repeated modality, an empty row, or a row
// that gives all four (nothing would be generated).
std::vector<EvalCondition> parse_conditions(const std::string& text, const std::string& flag);

// Table 1's values for one row: percent for F/P/R, FID as is; absent where the paper
// has NA (the modality was given).
struct TableValues {
  std::map<Modality, double> f, precision, recall, fid;
};

// The paper's COP-GEN-Beta values for a row, if the paper has that row.
std::optional<TableValues> paper_values(const EvalCondition& condition);

// One aligned test tuple: an image file (any GDAL format, 3 Byte bands, at least
// 256 x 256) or a .npy of autoencoder moments [8, 32, 32] (or a latent [4, 32, 32]) per
// modality.
struct TestTuple {
  std::string key;                        // "433U/433U_1043R", or the file name's stem
  std::map<Modality, std::string> files;  // all four
};

struct TestSet {
  std::string root;
  TupleLayout layout = TupleLayout::PerModality;
  std::vector<TestTuple> tuples;       // sorted by key; the first `limit` if limited
  std::int64_t incomplete = 0;         // tuples skipped for lacking a modality
  std::vector<std::string> warnings;   // ambiguities resolved (two products of a cell, ...)
};

// Finds the tuples under `root`: a Major TOM tree (Core-<MOD>/<row>/<cell>/<product>/
// holding a file whose name ends in "thumbnail.png"), or one folder per modality (DEM/,
// S1RTC/, S2L1C/, S2L2A/, canonical or reference names) with files of matching names
// (the stem is the key). Keeps the first `limit` tuples by key when limit > 0. Throws
// InputError naming `root` when it holds neither layout, or a product folder has no
// thumbnail.
TestSet discover_test_set(const std::string& root, int limit = 0);

// What one test-set file gives, exactly one of: pixels (uint8 [3, S, S], the centre S x S
// crop of a larger image, S = models.image_size()), autoencoder moments (float
// [2C, h, w]) or a scaled latent (float [C, h, w]) from a .npy. Throws InputError naming
// the file for anything else (too small, not 3 Byte bands, wrong .npy shape, NaN).
GivenData read_test_input(const std::string& path, Modality m, Models& models);

struct EvalOptions {
  std::string test_set;                     // --test-set: Major TOM tree or one folder per modality
  std::string output;                       // -o: tables and cache go here
  std::vector<EvalCondition> extra_conditions;  // --conditions, after the five Table 1 rows
  // --solver, --steps, --time-grid, --guidance-scale, --cond-latent; --seed (unset: the cache's
  // seed, else a random one, logged); --batch-size: samples per sample_tuples call (a cache chunk)
  SamplingOptions sampling = [] {
    SamplingOptions s;
    s.batch_size = 8;
    return s;
  }();
  int samples_per_tuple = 1;                // --samples-per-tuple: generated samples of each tuple per row
  int limit = 0;                            // --limit: the first N tuples by key (0: all)
  int feature_batch = 32;                   // --feature-batch: images per extractor call
  PrecisionRecallOptions pr;                // --k
  bool compare_paper = false;               // --compare-paper: paper values and differences beside
  bool overwrite = false;                   // --overwrite: discard a cache made with other settings
  int report_examples = 4;                  // --report-examples: tuples shown in report.html's grids (0: none)
};

// Throws UsageError naming the flag of a bad value.
void validate(const EvalOptions& options);

// The scores of one row, per generated modality.
struct EvalRow {
  EvalCondition condition;
  std::map<Modality, SetScores> scores;  // generated modalities only
  std::int64_t generated_images = 0;     // per modality: tuples x samples per tuple
  // report.html's grid: per example tuple (EvalResult::examples), sample 0 of each
  // generated modality, as a PNG path relative to the output folder ("report/DEM-0-S1RTC.png")
  std::vector<std::map<Modality, std::string>> examples;
};

// One tuple of report.html's grids: the first report_examples tuples by key.
struct EvalExample {
  std::string key;
  // each modality's real image as scored (the centre crop, or the decoding of a .npy), as a
  // PNG path relative to the output folder ("report/real-0-DEM.png")
  std::map<Modality, std::string> real;
};

// Where each step's work came from, this run.
struct EvalCacheStats {
  std::int64_t chunks_generated = 0;   // sample_tuples calls made
  std::int64_t chunks_reused = 0;      // chunks found complete in the cache
  std::int64_t images_generated = 0;   // images decoded and written
  std::int64_t features_extracted = 0; // feature sets (one image set, both extractors) computed
  std::int64_t features_reused = 0;    // feature sets read from the cache
  std::int64_t network_calls = 0;      // backbone calls of the solver
};

struct EvalResult {
  std::vector<EvalRow> rows;
  EvalCacheStats cache;
  nlohmann::json provenance;  // models and extractors hashes, seed, steps, solver, counts, ...
  nlohmann::json environment;  // to_json(system_info(models dir)): what `copgen info` reports
  std::uint64_t seed = 0;
  double seconds = 0.0;
  std::vector<EvalExample> examples;  // report.html's example tuples
  std::string precision;              // "backbone fp32, autoencoder fp32" (report.html)
  std::vector<std::string> outputs;   // table1.md, table1.csv, table1.json, report.html
};

// Called with a one-line description of the step and (done, total) within it.
using EvalProgress = std::function<void(const std::string&, std::int64_t, std::int64_t)>;

// Runs the protocol and writes OUT/table1.md, OUT/table1.csv, OUT/table1.json and
// OUT/report.html with its pictures in OUT/report/.
// Throws UsageError (bad options, a cache of other settings without --overwrite),
// InputError (test set), ModelError, OutputError, RuntimeError or Interrupted; whatever
// was cached before an interruption is kept.
EvalResult run_eval(const EvalOptions& options, Models& models, Extractors& extractors,
                    const EvalProgress& progress = {});

// ---- Table 1 ---------------------------------------------------------------------------

// The table in Table 1's layout (Model, Condition, then F, P, R and FID per modality;
// NA where a modality was given). With `compare_paper`, the paper's row and the
// difference (measured - paper) follow each measured row the paper has.
std::string table1_markdown(const EvalResult& result, bool compare_paper);
std::string table1_csv(const EvalResult& result, bool compare_paper);
nlohmann::json table1_json(const EvalResult& result, bool compare_paper);
// The same table as an HTML <table id="table1"> (two header lines: the metrics, then the
// modalities); every line is a <tr> in <tbody>, of class "measured", "paper" or "difference".
std::string table1_html(const EvalResult& result, bool compare_paper);

// report.html: Table 1 with the paper's values and the differences, a grid of examples per
// row (given, generated and real images of result.examples, linked by relative paths), and
// the provenance. One static page: no script, no font or file from the network, print CSS.
// Every string from the run (keys, paths, labels) is HTML-escaped.
std::string eval_report_html(const EvalResult& result);

}  // namespace copgen
