// The batch runner: translates every tuple of a folder tree or a list, resumably, with
// reading and writing on worker threads beside the sampling, one shard of N at a time.
//
//   copgen::BatchOptions o;
//   o.input_dir = "/data/majortom";  o.output.path = "/out";
//   o.from = {Modality::S2L1C};  o.to = {Modality::S2L2A};
//   o.sampling.batch_size = 8;  o.sampling.seed = 42;  o.shard = copgen::parse_shard("1/4");
//   auto models = copgen::Models::load(dir, model_options);
//   copgen::BatchResult r = copgen::run_batch(o, models);   // also writes the JSON report
//   return r.exit_code();
//
// How it runs: tuples are found (discovery.hpp), sorted by key and filtered to the shard;
// consecutive groups of batch_size of that list are the batches. A tuple is complete when
// every file planned for it exists (its images and, with --stac-out, its item; outputs
// appear atomically by rename); a batch whose tuples are all complete is skipped, and a
// tuple whose images exist but whose item does not gets its item without sampling. Reader threads load the next batches into a bounded
// queue; the calling thread samples each batch with sample_tuples (256 x 256 3-band Byte
// thumbnails or .npy latents/moments) or, for any other input (scenes, physical bands,
// Major TOM product folders without such a thumbnail), calls translate() per tuple; a
// writer thread writes the images under temporary names and renames them.
//
// Randomness: batch k is sampled from a generator seeded with
// batch_seed(seed, key of its first tuple), a per-tuple translate() with
// batch_seed(seed, tuple key). A batch's composition is fixed by the sorted, sharded
// tuple list and batch_size (not by what is already done), so a resumed run writes the
// same bytes as an uninterrupted one; a partly complete batch is sampled whole and only
// its missing outputs are written. Results depend on the batch composition: the same
// seed with another batch size, shard count or set of tuples gives other samples, except
// with batch size 1, where a tuple's result depends only on (seed, key).
#pragma once

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "copgen/discovery.hpp"
#include "copgen/error.hpp"
#include "copgen/models.hpp"
#include "copgen/pipeline.hpp"
#include "copgen/scene.hpp"

namespace copgen {

// One sample per tuple; the seed, when unset, is drawn at random (logged and in the report).
struct BatchOptions {
  std::string input_dir;         // --input-dir: a Major TOM tree or one folder per modality
  std::string inputs_from;       // --inputs-from: a list file (read_tuple_list)
  std::vector<Modality> from;    // --from: the given modalities every tuple must have
  std::vector<Modality> to;      // --to; empty: every modality not in from
  SamplingOptions sampling;      // solver, steps, guidance, seed, batch size (tuples.hpp)
  OutputOptions output;          // path: --output-dir; format, overwrite (save_latents_dir must be empty)
  Shard shard;                   // --shard I/N
  bool fail_fast = false;        // --fail-fast: stop at the first failed tuple
  std::string report;            // --report; empty: default_report_path()
  int readers = 2;               // --readers: reader threads
  SceneOptions scene;            // the scene flags, for tuples that go through translate(); with
                                 // --input-kind physical or --output-kind physical, every tuple does
  bool index = true;             // false: --no-index, no contact sheet
  int index_page_size = 100;     // --index-page-size: tuples per page of the contact sheet
};

// The contact sheet of a run (contact_sheet.hpp): <output>/index.html (index-2.html, ... for
// more pages), <output>/index.shard-I-of-N.html with N > 1; its small pictures under
// <output>/.index/<first 16 hex digits of the SHA-256 of the tuple key>/.
std::string default_index_path(const BatchOptions& options);

// Throws UsageError naming the flags in conflict.
void validate(const BatchOptions& options);

// <output>/copgen-report.json, or <output>/copgen-report.shard-I-of-N.json with N > 1.
std::string default_report_path(const BatchOptions& options);

// The generator seed of a batch (or per-tuple run) whose first tuple has `key`: a
// SplitMix64 mix of seed and tuple_key_hash(key), kept below 2^53.
std::uint64_t batch_seed(std::uint64_t seed, const std::string& key);

struct TupleFailure {
  std::string key;
  std::string reason;  // the error message (names the file and what was wrong)
  ErrorKind kind = ErrorKind::Runtime;
};

struct BatchProgress {
  int done = 0;       // tuples written or failed in this run
  int total = 0;      // tuples this run has to do (complete ones excluded)
  int failed = 0;
  int skipped = 0;    // complete before the run
  double elapsed = 0.0;  // seconds since the run started
};
using BatchProgressFn = std::function<void(const BatchProgress&)>;

// The tuples a run would translate, found and planned as run_batch plans them (this
// shard's, complete ones left out) without reading pixels, loading models or writing
// anything: --dry-run. Throws what run_batch throws before its first tuple.
struct BatchPlan {
  std::string layout;                             // layout_name() of the input
  int found = 0;                                  // tuples with every --from modality
  int incomplete = 0;                             // locations lacking some --from modality
  int in_shard = 0;                               // tuples of this shard
  int complete = 0;                               // of those, with every output present
  std::vector<std::string> keys;                  // the tuples to do, in order
  std::vector<std::vector<std::string>> outputs;  // per tuple to do: the files it writes (images, STAC item)
  std::string report;                             // the run report, replaced by every run
  std::vector<std::string> index;                 // the contact sheet's pages, replaced by every run
};
// `models_dir`: the models the run would load (never written over).
BatchPlan plan_batch(const BatchOptions& options, const std::string& models_dir);
// The plan as lines of text, for --dry-run.
std::string describe(const BatchPlan& plan);

struct BatchResult {
  std::string layout;          // layout_name() of the input
  int found = 0;               // tuples with every --from modality
  int incomplete = 0;          // locations lacking some --from modality (not processed)
  int in_shard = 0;            // tuples of this shard
  int skipped = 0;             // complete before the run
  int written = 0;             // tuples whose outputs this run wrote
  int failed = 0;
  int not_done = 0;            // left for a later run (interrupted or --fail-fast)
  int batches = 0;             // batches sampled
  std::vector<TupleFailure> failures;
  bool interrupted = false;    // SIGINT/SIGTERM
  bool stopped_early = false;  // --fail-fast after a failure
  std::uint64_t seed = 0;
  double wall_seconds = 0.0;
  double sampling_seconds = 0.0;   // inside sample_tuples (the network)
  double translate_seconds = 0.0;  // per-tuple translate() calls (read + network + write)
  double read_seconds = 0.0;       // summed over reader threads
  double write_seconds = 0.0;      // the writer thread
  double read_wait_seconds = 0.0;  // the sampling thread waiting for a reader
  std::string report_path;

  // 0 when nothing failed; 3 when every failure was an input error; else the exit code
  // of the first failure of another kind. (Interruption is left to the caller: 130.)
  int exit_code() const;
};

// Runs the batch and writes the JSON report (also when interrupted or stopped early).
// Throws UsageError/InputError before any work when the options or the input tree are
// wrong, OutputError when the output directory or the report cannot be written; a
// tuple's own failure is recorded, not thrown. Interruption returns with interrupted set.
BatchResult run_batch(const BatchOptions& options, Models& models, const BatchProgressFn& progress = {});


}  // namespace copgen
