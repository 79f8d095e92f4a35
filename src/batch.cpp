#include "copgen/batch.hpp"

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <torch/version.h>

#include "copgen/cancel.hpp"
#include "copgen/contact_sheet.hpp"
#include "copgen/inputs.hpp"
#include "copgen/npy.hpp"
#include "copgen/outputs.hpp"
#include "copgen/pictures.hpp"
#include "copgen/pixels.hpp"
#include "copgen/previews.hpp"
#include "copgen/provenance.hpp"
#include "copgen/raster_io.hpp"
#include "copgen/runtime.hpp"
#include "copgen/sha256.hpp"
#include "copgen/stac.hpp"
#include "copgen/tuples.hpp"
#include "copgen/version.hpp"
#include "batch_queues.hpp"

namespace copgen {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

// The longer side of a contact sheet's pictures, pixels.
constexpr int kSheetPictureSide = 128;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

std::vector<Modality> generated_of(const BatchOptions& o) { return generated_modalities(o.from, o.to); }

std::string kind_name(ErrorKind k) {
  switch (k) {
    case ErrorKind::Usage: return "usage";
    case ErrorKind::Input: return "input";
    case ErrorKind::Model: return "model";
    case ErrorKind::Output: return "output";
    case ErrorKind::Runtime: return "runtime";
    case ErrorKind::Interrupted: return "interrupted";
  }
  return "runtime";
}

// The failure a tuple records for exception `e`: copgen's errors with their kind, torch's
// and every other std::exception (how TorchScript ops raise) as runtime errors. Nothing a
// tuple does ends the run without its report; only Interrupted is not a failure, and the
// callers rethrow it before asking.
TupleFailure failure_of(const std::exception_ptr& e, const std::string& key) {
  try {
    std::rethrow_exception(e);
  } catch (const Error& err) {
    return {key, err.what(), err.kind()};
  } catch (const c10::Error& err) {
    return {key, std::string("torch: ") + err.what_without_backtrace(), ErrorKind::Runtime};
  } catch (const std::exception& err) {
    return {key, err.what(), ErrorKind::Runtime};
  } catch (...) {
    return {key, "an unknown exception", ErrorKind::Runtime};
  }
}

// One tuple of the sharded list and what this run must write for it.
struct Planned {
  const TupleSource* src = nullptr;
  std::vector<std::string> outputs;  // one per generated modality
  std::vector<std::string> pictures;  // the contact sheet's: one per --from modality (sorted), then per output
  std::vector<bool> write;           // per output: missing (or --overwrite)
  std::string item;                  // --stac-out: its STAC item, beside its outputs ("" without)
  bool write_item = false;           // the item is missing (or --overwrite)
  bool complete = false;             // every planned file exists: nothing to write
  bool item_only = false;            // its images exist, its item does not: no sampling
  bool sampled() const { return !complete && !item_only; }  // this run samples it
};

// A tuple as a reader thread left it.
struct Loaded {
  std::size_t planned = 0;
  bool fast = false;    // sample_tuples can take it as read
  bool failed = false;
  TupleFailure failure;  // when failed
  TupleInputs inputs;   // when fast
  GeoInfo geo;          // of the first --from modality
};

struct LoadedBatch {
  std::vector<Loaded> tuples;
};

struct WriteJob {
  std::vector<std::size_t> planned;
  std::vector<TupleOutputs> outputs;
  std::vector<GeoInfo> geo;
  std::uint64_t seed = 0;
};

// The model geometry the readers need (they run beside the sampling thread, without the models).
struct ModelDims {
  int image_size = 0;
  std::int64_t channels = 0;
  std::int64_t latent = 0;
};

// Reads one tuple: fast when it is a tile run (inputs.hpp's probe_tile_run, the answer
// translate() gives too) whose tiles have no nodata; any other tuple goes through
// translate(), which decides and reads it itself.
Loaded load_tuple(const Planned& p, std::size_t index, const std::vector<Modality>& from, const ModelDims& dims,
                  const SceneOptions& scene) {
  Loaded l;
  l.planned = index;
  l.inputs.label = p.src->key;
  try {
    std::vector<GivenInput> inputs;
    for (Modality m : from) inputs.push_back({m, p.src->inputs.at(m)});
    const std::vector<GivenProbe> probes = probe_tile_run(inputs, scene, dims.image_size);
    l.fast = !probes.empty();
    for (std::size_t i = 0; i < probes.size() && l.fast; ++i) {
      const Modality m = inputs[i].modality;
      GivenFile given = read_given(probes[i], modality_name(m) + " input", dims.channels, dims.latent);
      // nodata pixels: translate() masks them (or fills them) as in single runs
      if (!given.valid.empty()) l.fast = false;
      if (i == 0) l.geo = given.geo;
      l.inputs.given[m] = std::move(given);
    }
  } catch (...) {
    l.failed = true;
    l.failure = failure_of(std::current_exception(), p.src->key);
  }
  if (!l.fast || l.failed) l.inputs.given.clear();
  return l;
}

// Removes temporary files a killed earlier run left beside the outputs and items of `plan`
// (".<name>.tmp-<pid>-<n>" and their side-cars). Only the names of this shard's own
// outputs are touched, so shards sharing an output tree leave each other alone.
void remove_stale_temporaries(const std::vector<Planned>& plan) {
  std::map<std::string, std::set<std::string>> by_dir;
  for (const Planned& p : plan) {
    std::vector<std::string> files = p.outputs;
    if (!p.item.empty()) files.push_back(p.item);
    for (const std::string& o : files) {
      const fs::path path(o);
      by_dir[path.parent_path().string()].insert("." + path.filename().string() + ".tmp-");
    }
  }
  for (const auto& [dir, prefixes] : by_dir) {
    std::error_code ec;
    if (!fs::is_directory(dir, ec)) continue;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.empty() || name[0] != '.') continue;
      auto next = prefixes.upper_bound(name);
      if (next == prefixes.begin()) continue;
      const std::string& prefix = *std::prev(next);
      if (name.compare(0, prefix.size(), prefix) == 0) {
        std::error_code rm;
        fs::remove(it->path(), rm);
        spdlog::info("removed '{}', left by an interrupted run", it->path().string());
      }
    }
  }
}

// The tuples of the tree or list; the output tree is never read as input, even when it lies
// inside the input tree.
Discovered find_tuples(const BatchOptions& o) {
  if (!o.input_dir.empty()) return discover_tuples(o.input_dir, o.from, o.output.path);
  return is_stac_reference(o.inputs_from) ? read_item_collection(o.inputs_from, o.from)
                                          : read_tuple_list(o.inputs_from, o.from);
}

// A batch run as planned before any work: the tuples found, this shard's (in key order)
// with every file each writes, checked in one OutputGate (files.hpp) with the report; the
// batches (consecutive groups of batch_size of that list, fixed whatever is done; see
// batch.hpp) and those that have something to sample. run_batch and --dry-run share it.
struct Plan {
  Discovered found;
  std::vector<Planned> tuples;
  std::vector<std::vector<std::size_t>> batches;  // indices into tuples
  std::vector<std::size_t> work;                  // indices into batches
  int complete = 0;                               // tuples with every planned file present
  std::string report_path;
  std::vector<std::string> index_pages;  // the contact sheet's pages (none with --no-index)
  OutputGate gate;
};

// Plans tuple t's files: its images and, with --stac-out, its item; a file that exists is
// kept (the tuple is resumed) unless --overwrite.
Planned plan_tuple(const BatchOptions& o, const TupleSource& t, const std::vector<Modality>& generated,
                   OutputGate& gate) {
  Planned p;
  p.src = &t;
  const auto planned = [&](const std::string& path, FileKind kind, const std::string& flag) {
    std::error_code ec;
    const bool need = o.output.overwrite || !fs::exists(path, ec);
    need ? gate.add(path, kind, flag) : gate.keep(path, kind, flag);
    return need;
  };
  for (Modality m : generated) {
    p.outputs.push_back(tuple_output_path(o.output.path, t, m));
    p.write.push_back(planned(p.outputs.back(), FileKind::Image, "--output-dir"));
  }
  if (!o.output.stac_item.empty()) {
    p.item = (fs::path(p.outputs[0]).parent_path() / o.output.stac_item).string();
    p.write_item = planned(p.item, FileKind::StacItem, "--stac-out");
  }
  const bool images = std::any_of(p.write.begin(), p.write.end(), [](bool w) { return w; });
  p.complete = !images && !p.write_item;
  p.item_only = !images && p.write_item;
  return p;
}

// UsageError when --output-dir is the --input-dir itself (the folders resolved).
void check_output_dir_is_not_input_dir(const BatchOptions& o) {
  if (o.input_dir.empty()) return;
  auto norm = [](const std::string& p, std::error_code& ec) {
    fs::path c = fs::weakly_canonical(p, ec);
    return c.has_filename() ? c : c.parent_path();  // "/in/" -> "/in"
  };
  std::error_code e1, e2;
  const fs::path a = norm(o.input_dir, e1), b = norm(o.output.path, e2);
  if (!e1 && !e2 && a == b) {
    throw UsageError("--output-dir '" + o.output.path + "' is the --input-dir; give another directory");
  }
}

// The contact sheet's pages and pictures (default_index_path), replaced by every run.
void plan_index(const BatchOptions& o, const std::vector<Modality>& generated, Plan& plan) {
  const fs::path index(default_index_path(o));
  const fs::path dir = index.parent_path();
  for (const std::string& name : contact_sheet_page_names(index.stem().string(), plan.tuples.size(),
                                                         static_cast<std::size_t>(o.index_page_size))) {
    plan.index_pages.push_back(plan.gate.add_replaced((dir / name).string(), FileKind::Page, "--output-dir"));
  }
  for (Planned& p : plan.tuples) {
    const fs::path folder = dir / ".index" / sha256_hex(p.src->key.data(), p.src->key.size()).substr(0, 16);
    std::vector<std::string> names;
    for (Modality m : sorted_modalities(o.from)) names.push_back(modality_name(m) + "-given.png");
    for (Modality m : generated) names.push_back(modality_name(m) + ".png");
    for (const std::string& n : names) {
      p.pictures.push_back(plan.gate.add_replaced((folder / n).string(), FileKind::Preview, "--output-dir"));
    }
  }
}

// The one plan of a batch run, for run_batch and plan_batch alike: the options validated
// (validate: no file touched), the tuples found, every output planned in one gate.
Plan plan_run(const BatchOptions& o, const std::vector<Modality>& generated, const std::string& models_dir) {
  validate(o);
  check_output_dir_is_not_input_dir(o);
  Plan plan;
  plan.report_path = o.report.empty() ? default_report_path(o) : o.report;
  plan.found = find_tuples(o);
  for (const std::string& w : plan.found.warnings) spdlog::warn("{}", w);
  plan.gate = OutputGate({models_dir}, o.output.overwrite);  // the models are read too
  for (const TupleSource& t : plan.found.tuples) {
    for (const auto& [m, path] : t.inputs) plan.gate.add_input(path);
  }
  plan.gate.allow_new_dirs(o.output.path);
  check_writable_dir(o.output.path, "--output-dir");
  plan.gate.add_replaced(plan.report_path, FileKind::Report, "--report");
  for (const TupleSource& t : plan.found.tuples) {
    throw_if_stop_requested();
    if (!in_shard(t.key, o.shard)) continue;
    plan.tuples.push_back(plan_tuple(o, t, generated, plan.gate));
    if (plan.tuples.back().complete) ++plan.complete;
  }
  if (o.index) plan_index(o, generated, plan);
  const std::size_t n = plan.tuples.size(), b = static_cast<std::size_t>(o.sampling.batch_size);
  for (std::size_t first = 0; first < n; first += b) {
    std::vector<std::size_t> batch;
    bool pending = false;
    for (std::size_t i = first; i < std::min(n, first + b); ++i) {
      batch.push_back(i);
      pending = pending || plan.tuples[i].sampled();
    }
    if (pending) plan.work.push_back(plan.batches.size());
    plan.batches.push_back(std::move(batch));
  }
  return plan;
}

// With --stac-out NAME: the tuple's STAC item, beside its first output, keyed by the
// tuple, its sources the tuple's inputs as given.
void write_tuple_item(const Planned& p) {
  if (p.item.empty()) return;
  std::vector<std::string> sources;
  for (const auto& [m, path] : p.src->inputs) sources.push_back(path);
  write_stac_item(p.item, p.src->key, p.outputs, sources);
}

// The options of translate() for a tuple that is not a 256 x 256 tile: its own seed.
TranslateOptions per_tuple_options(const BatchOptions& o, const Planned& p, const std::vector<Modality>& generated,
                                   std::uint64_t seed) {
  TranslateOptions t;
  t.sampling = o.sampling;
  t.sampling.batch_size = 1;
  t.sampling.seed = batch_seed(seed, p.src->key);
  t.output = o.output;
  t.output.path = (fs::path(o.output.path) / p.src->output_pattern).string();
  t.output.overwrite = true;  // a partly written tuple is redone whole, with the same seed
  t.output.stac_item.clear();  // the batch writes the tuple's item, with the tuple's key
  for (Modality m : o.from) t.inputs.push_back({m, p.src->inputs.at(m)});
  t.to = generated;
  t.scene = o.scene;
  return t;
}

// The JSON run report (docs/batch.md lists its fields).
nlohmann::json make_report(const BatchOptions& o, const BatchResult& result, const Discovered& found,
                           const std::vector<Modality>& generated, std::size_t window, Models& models) {
  using nlohmann::json;
  std::map<std::string, const TupleSource*> by_key;
  for (const TupleSource& t : found.tuples) by_key[t.key] = &t;
  json failures = json::array();
  for (const TupleFailure& f : result.failures) {
    json inputs = json::object();
    if (auto it = by_key.find(f.key); it != by_key.end()) {
      for (const auto& [m, path] : it->second->inputs) inputs[modality_name(m)] = path;
    }
    failures.push_back({{"key", f.key}, {"kind", kind_name(f.kind)}, {"reason", f.reason}, {"inputs", inputs}});
  }
  const double wall = result.wall_seconds;
  std::vector<std::string> from_names, to_names;
  for (Modality m : o.from) from_names.push_back(modality_name(m));
  for (Modality m : generated) to_names.push_back(modality_name(m));
  const int exit_code = result.interrupted ? static_cast<int>(ErrorKind::Interrupted) : result.exit_code();
  json report = {
      {"copgen_report", "batch"},
      {"status", result.interrupted       ? "interrupted"
                 : result.stopped_early  ? "stopped_early"
                 : result.failed > 0     ? "completed_with_failures"
                                         : "completed"},
      {"exit_code", exit_code},
      {"counts",
       {{"found", result.found},
        {"incomplete", result.incomplete},
        {"in_shard", result.in_shard},
        {"skipped_complete", result.skipped},
        {"written", result.written},
        {"failed", result.failed},
        {"not_done", result.not_done},
        {"batches_sampled", result.batches}}},
      {"failures", failures},
      {"incomplete_keys", found.incomplete},
      {"timings",
       {{"wall_seconds", wall},
        {"sampling_seconds", result.sampling_seconds},
        {"network_busy_share", wall > 0 ? result.sampling_seconds / wall : 0.0},
        {"translate_seconds", result.translate_seconds},
        {"read_seconds", result.read_seconds},
        {"write_seconds", result.write_seconds},
        {"read_wait_seconds", result.read_wait_seconds},
        {"tuples_per_second", wall > 0 ? result.written / wall : 0.0}}},
      {"settings",
       {{"input_dir", o.input_dir},
        {"inputs_from", o.inputs_from},
        {"layout", result.layout},
        {"output_dir", o.output.path},
        {"from", from_names},
        {"to", to_names},
        {"seed", result.seed},
        {"seed_given", o.sampling.seed.has_value()},
        {"batch_size", o.sampling.batch_size},
        {"shard", shard_name(o.shard)},
        {"steps", o.sampling.sampler.steps},
        {"solver", solver_name(o.sampling.sampler.solver)},
        {"time_grid", time_grid_name(o.sampling.sampler.grid)},
        {"guidance_scale", o.sampling.guidance.scale},
        {"cond_latent", cond_latent_name(o.sampling.cond_latent)},
        {"format", o.output.format},
        {"overwrite", o.output.overwrite},
        {"fail_fast", o.fail_fast},
        {"readers", o.readers},
        {"prefetch_batches", window}}},
      {"versions",
       {{"copgen", kVersion},
        {"torch", TORCH_VERSION},
        {"models_dir", models.directory()},
        {"models_sha256", models.manifest().sha256},
        {"models_source", models.manifest().backbone.source},
        {"device", models.device().str()},
        {"dtype", std::string(c10::toString(models.dtype()))},
        {"torch_threads", at::get_num_threads()}}},
      {"environment", to_json(system_info(ModelsDirChoice{models.directory(), kRunModelsOrigin}))},
  };
  return report;
}

}  // namespace

std::uint64_t batch_seed(std::uint64_t seed, const std::string& key) {
  return splitmix64(seed ^ splitmix64(tuple_key_hash(key))) & ((std::uint64_t{1} << 53) - 1);
}

std::string default_index_path(const BatchOptions& o) {
  const std::string name = o.shard.count > 1 ? "index.shard-" + std::to_string(o.shard.index) + "-of-" +
                                                   std::to_string(o.shard.count) + ".html"
                                             : "index.html";
  return (fs::path(o.output.path) / name).string();
}

std::string default_report_path(const BatchOptions& o) {
  const std::string name = o.shard.count > 1 ? "copgen-report.shard-" + std::to_string(o.shard.index) + "-of-" +
                                                   std::to_string(o.shard.count) + ".json"
                                             : "copgen-report.json";
  return (fs::path(o.output.path) / name).string();
}

int BatchResult::exit_code() const {
  if (failures.empty()) return 0;
  for (const TupleFailure& f : failures) {
    if (f.kind != ErrorKind::Input) return static_cast<int>(f.kind);
  }
  return static_cast<int>(ErrorKind::Input);
}

void validate(const BatchOptions& o) {
  if (!o.input_dir.empty() && !o.inputs_from.empty()) {
    throw UsageError("--input-dir and --inputs-from cannot be used together; give one source of tuples");
  }
  if (o.input_dir.empty() && o.inputs_from.empty()) throw UsageError("--input-dir or --inputs-from is required");
  if (o.output.path.empty()) throw UsageError("--output-dir: an output directory is required");
  if (o.from.empty()) throw UsageError("--from: give the modalities every tuple provides (e.g. --from S2L1C)");
  std::set<Modality> given(o.from.begin(), o.from.end());
  if (given.size() != o.from.size()) throw UsageError("--from: a modality is given more than once");
  std::set<Modality> seen;
  for (Modality m : o.to) {
    if (given.count(m)) throw UsageError("--to " + modality_name(m) + " is also given with --from");
    if (!seen.insert(m).second) throw UsageError("--to: modality " + modality_name(m) + " is given more than once");
  }
  if (generated_of(o).empty()) throw UsageError("--to: nothing to generate (every modality is given with --from)");
  if (!o.output.save_latents_dir.empty()) throw UsageError("--save-latents cannot be used with --input-dir/--inputs-from");
  if (o.readers < 1) throw UsageError("--readers: must be at least 1, got " + std::to_string(o.readers));
  if (o.index_page_size < 1) {
    throw UsageError("--index-page-size: must be at least 1, got " + std::to_string(o.index_page_size));
  }
  if (!o.output.preview.empty()) {
    throw UsageError("--preview is for single runs; a batch writes its contact sheet, index.html, in --output-dir "
                     "(--no-index leaves it out)");
  }
  if (o.shard.count < 1 || o.shard.index < 0 || o.shard.index >= o.shard.count) {
    throw UsageError("--shard " + shard_name(o.shard) + ": expected I/N with 0 <= I < N");
  }
  validate(o.sampling);
  validate(o.output);
  validate(o.scene, generated_of(o), 1);
  check_asset_overrides(o.scene.assets, o.from);
  if (!o.output.stac_item.empty() &&
      (fs::path(o.output.stac_item).is_absolute() || o.output.stac_item.find("..") != std::string::npos)) {
    throw UsageError("--stac-out '" + o.output.stac_item + "': in batch mode a file name, written beside each "
                     "tuple's outputs (e.g. --stac-out item.json)");
  }
  if (!o.output.stac_item.empty()) check_stac_item_name(o.output.stac_item, "--stac-out");
  if (o.scene.projwin || o.scene.srcwin) {
    throw UsageError(std::string(o.scene.projwin ? "--projwin" : "--srcwin") +
                     ": a region of interest is for one scene, not a batch; run copgen translate -i on the scene");
  }
}

namespace {

// One run of run_batch: plan, then reader threads, the sampling loop on the calling
// thread (the fast path for batches of tiles, the per-tuple path for the rest) and a
// writer thread, then the report. The destructor stops and joins the threads.
class BatchRunner {
 public:
  BatchRunner(const BatchOptions& o, Models& models, const BatchProgressFn& progress)
      : o_(o), models_(models), progress_(progress) {}
  ~BatchRunner() { shutdown(); }
  BatchRunner(const BatchRunner&) = delete;
  BatchRunner& operator=(const BatchRunner&) = delete;

  BatchResult run();

 private:
  void plan();
  void start_readers();
  void start_writer();
  bool sample_next(std::size_t w);
  void sample_fast(const std::vector<Loaded*>& fast, std::size_t first);
  void translate_one(const Loaded& l);
  void write_missing_items();
  void write(const WriteJob& job);
  void write_index();
  void finish();
  void shutdown();

  void fail(std::size_t index, TupleFailure failure);
  bool halted();
  void report_progress();  // under stats_mu_

  const BatchOptions& o_;
  Models& models_;
  const BatchProgressFn& progress_;
  const Clock::time_point started_ = Clock::now();
  std::vector<Modality> generated_;
  Roles roles_;
  BatchResult result_;
  Plan plan_;
  int to_do_ = 0;
  CreatedDirs made_;  // removed again if the run ends before writing anything into them
  std::map<std::string, std::string> meta_;
  std::size_t window_ = 1;
  std::unique_ptr<detail::ReadAhead<LoadedBatch>> ahead_;
  detail::BoundedQueue<WriteJob> queue_{2};
  std::vector<std::thread> readers_;
  std::thread writer_;
  std::mutex stats_mu_;  // result_'s counts, halt_, the timings below
  bool halt_ = false;    // --fail-fast tripped, or an output could not be written
  bool output_failed_ = false;  // an output error (ErrorKind::Output) stopped the run
  double read_seconds_ = 0.0, write_seconds_ = 0.0;
};

BatchResult BatchRunner::run() {
  plan();
  start_readers();
  start_writer();
  try {
    write_missing_items();
    for (std::size_t w = 0; w < plan_.work.size(); ++w) {
      throw_if_stop_requested();
      if (halted() || !sample_next(w)) break;
    }
  } catch (const Interrupted&) {
    result_.interrupted = true;
    spdlog::warn("interrupted: finishing the outputs already sampled, then stopping");
  }
  finish();
  return result_;
}

// Finds the tuples, keeps this shard's, plans their outputs, checks where the outputs and
// the report go and makes the output folder: everything that can fail before any work.
void BatchRunner::plan() {
  generated_ = generated_of(o_);
  plan_ = plan_run(o_, generated_, models_.directory());  // validates the options first
  roles_ = Roles::make(sorted_modalities(o_.from), generated_);
  result_.seed = o_.sampling.seed.value_or(random_seed());
  if (!o_.sampling.seed) {
    spdlog::info("seed: {} (random; pass --seed {} to reproduce, and to resume with the same seed)", result_.seed,
                 result_.seed);
  }
  result_.report_path = plan_.report_path;
  result_.layout = layout_name(plan_.found.layout);
  result_.found = static_cast<int>(plan_.found.tuples.size());
  result_.incomplete = static_cast<int>(plan_.found.incomplete.size());
  result_.in_shard = static_cast<int>(plan_.tuples.size());
  result_.skipped = plan_.complete;
  to_do_ = result_.in_shard - result_.skipped;
  spdlog::info("batch: {} tuple(s) found ({} layout), {} lacking a --from modality; shard {}: {}, {} complete, {} to do",
               result_.found, result_.layout, result_.incomplete, shard_name(o_.shard), result_.in_shard,
               result_.skipped, to_do_);

  made_.create(o_.output.path, "--output-dir");
  made_.create(fs::path(result_.report_path).parent_path().string(), "--report");  // checked by the plan's gate
  std::vector<Planned> todo;
  for (const Planned& p : plan_.tuples) {
    if (!p.complete) todo.push_back(p);
  }
  remove_stale_temporaries(todo);
  if (progress_) {
    std::lock_guard<std::mutex> lock(stats_mu_);
    report_progress();
  }
  meta_ = run_metadata(o_.sampling, 1, models_, result_.seed, "batch", sorted_modalities(o_.from), roles_);
}

void BatchRunner::start_readers() {
  const ModelDims dims{models_.image_size(), models_.latent_channels(), models_.latent_size()};
  window_ = static_cast<std::size_t>(o_.readers + 1);  // batches read ahead of the one sampled
  ahead_ = std::make_unique<detail::ReadAhead<LoadedBatch>>(plan_.work.size(), window_);
  for (int r = 0; r < o_.readers && !plan_.work.empty(); ++r) {
    readers_.emplace_back([this, dims]() {
      while (auto pos = ahead_->claim()) {
        const auto t0 = Clock::now();
        LoadedBatch lb;
        for (std::size_t i : plan_.batches[plan_.work[*pos]]) {
          lb.tuples.push_back(load_tuple(plan_.tuples[i], i, o_.from, dims, o_.scene));
        }
        {
          std::lock_guard<std::mutex> lock(stats_mu_);
          read_seconds_ += seconds_since(t0);
        }
        ahead_->deliver(*pos, std::move(lb));
      }
    });
  }
}

void BatchRunner::start_writer() {
  writer_ = std::thread([this]() {
    WriteJob job;
    while (queue_.pop(job)) {
      const auto t0 = Clock::now();
      write(job);
      std::lock_guard<std::mutex> lock(stats_mu_);
      write_seconds_ += seconds_since(t0);
    }
  });
}

// The writer thread: each tuple's missing outputs, with the provenance of single runs.
void BatchRunner::write(const WriteJob& job) {
  for (std::size_t j = 0; j < job.planned.size(); ++j) {
    const Planned& p = plan_.tuples[job.planned[j]];
    try {
      CreatedDirs dirs;  // the tuple's folder goes again if it is left empty (a failed write)
      for (std::size_t g = 0; g < generated_.size(); ++g) {
        if (!p.write[g]) continue;
        const Modality m = generated_[g];
        dirs.create(fs::path(p.outputs[g]).parent_path().string());
        WriteOptions w;
        w.format = o_.output.format;
        w.overwrite = true;
        w.metadata = meta_;
        w.metadata["COPGEN_BATCH_SEED"] = std::to_string(job.seed);
        w.metadata["COPGEN_TUPLE"] = p.src->key;
        w.metadata["COPGEN_MODALITY"] = modality_name(m);
        w.band_descriptions = band_descriptions(m);  // as translate() writes them
        write_image_u8(p.outputs[g], tensor_to_image(job.outputs[j].images.at(m), job.geo[j]), w);
        spdlog::debug("wrote {}", p.outputs[g]);
      }
      if (p.write_item) write_tuple_item(p);
      std::lock_guard<std::mutex> lock(stats_mu_);
      ++result_.written;
      report_progress();
    } catch (...) {
      fail(job.planned[j], failure_of(std::current_exception(), p.src->key));
    }
  }
}

// Batch `w` of the work list: its tiles sampled together, its other tuples one by one.
// False when --fail-fast has tripped.
bool BatchRunner::sample_next(std::size_t w) {
  LoadedBatch lb = ahead_->take(w, result_.read_wait_seconds);
  std::vector<Loaded*> fast, slow;
  for (Loaded& l : lb.tuples) {
    const Planned& p = plan_.tuples[l.planned];
    if (l.failed) {
      if (p.sampled()) fail(l.planned, l.failure);
    } else if (l.fast) {
      fast.push_back(&l);
    } else if (p.sampled()) {
      slow.push_back(&l);
    }
  }
  if (halted()) return false;
  // Complete tuples join only a batch that has something to write.
  if (std::any_of(fast.begin(), fast.end(), [&](const Loaded* l) { return plan_.tuples[l->planned].sampled(); })) {
    sample_fast(fast, plan_.batches[plan_.work[w]].front());
  }
  for (const Loaded* l : slow) {
    throw_if_stop_requested();
    if (halted()) break;
    translate_one(*l);
  }
  return true;
}

// The fast path: the batch's tiles in one sample_tuples call, seeded by the key of the
// batch's first tuple; the outputs go to the writer.
void BatchRunner::sample_fast(const std::vector<Loaded*>& fast, std::size_t first) {
  WriteJob job;
  job.seed = batch_seed(result_.seed, plan_.tuples[first].src->key);
  at::Generator gen = at::detail::createCPUGenerator(job.seed);
  std::vector<TupleInputs> inputs;
  for (const Loaded* l : fast) inputs.push_back(l->inputs);
  const auto t0 = Clock::now();
  std::vector<TupleOutputs> outs;
  std::optional<TupleFailure> error;
  try {
    outs = sample_tuples(models_, roles_, inputs, o_.sampling, gen, [](int, int) { throw_if_stop_requested(); });
  } catch (const Interrupted&) {
    result_.sampling_seconds += seconds_since(t0);
    throw;
  } catch (...) {
    error = failure_of(std::current_exception(), "");
  }
  result_.sampling_seconds += seconds_since(t0);
  ++result_.batches;
  for (std::size_t j = 0; j < fast.size(); ++j) {
    const Planned& p = plan_.tuples[fast[j]->planned];
    if (!p.sampled()) continue;  // sampled for the batch's composition only
    if (error) {
      fail(fast[j]->planned, {p.src->key, error->reason, error->kind});
      continue;
    }
    job.planned.push_back(fast[j]->planned);
    job.outputs.push_back(std::move(outs[j]));
    job.geo.push_back(fast[j]->geo);
  }
  if (!job.planned.empty()) queue_.push(std::move(job));
}

// The per-tuple path: translate() with the tuple's own seed; it writes the outputs itself.
void BatchRunner::translate_one(const Loaded& l) {
  const Planned& p = plan_.tuples[l.planned];
  const TranslateOptions t = per_tuple_options(o_, p, generated_, result_.seed);
  const auto t0 = Clock::now();
  try {
    CreatedDirs dirs;  // the tuple's folder goes again if it is left empty (interrupted, failed)
    for (const std::string& out : p.outputs) dirs.create(fs::path(out).parent_path().string());
    translate(t, models_);
    if (p.write_item) write_tuple_item(p);
    result_.translate_seconds += seconds_since(t0);
    std::lock_guard<std::mutex> lock(stats_mu_);
    ++result_.written;
    report_progress();
  } catch (const Interrupted&) {
    result_.translate_seconds += seconds_since(t0);
    throw;
  } catch (...) {
    result_.translate_seconds += seconds_since(t0);
    fail(l.planned, failure_of(std::current_exception(), p.src->key));
  }
}

// The items of tuples whose images a run before this one wrote (a rerun with --stac-out
// added, or after writing an item failed): written from those images, without sampling.
void BatchRunner::write_missing_items() {
  for (std::size_t i = 0; i < plan_.tuples.size(); ++i) {
    const Planned& p = plan_.tuples[i];
    if (!p.item_only) continue;
    throw_if_stop_requested();
    if (halted()) return;
    try {
      write_tuple_item(p);
      std::lock_guard<std::mutex> lock(stats_mu_);
      ++result_.written;
      report_progress();
    } catch (...) {
      fail(i, failure_of(std::current_exception(), p.src->key));
    }
  }
}

// Drains the writer (every sampled tuple is written), then the counts, the report and the
// summary in the log.
void BatchRunner::finish() {
  shutdown();
  result_.read_seconds = read_seconds_;
  result_.write_seconds = write_seconds_;
  result_.not_done = result_.in_shard - result_.skipped - result_.written - result_.failed;
  result_.stopped_early = !result_.interrupted && halt_ && result_.not_done > 0;
  result_.wall_seconds = seconds_since(started_);
  const double wall = result_.wall_seconds;
  write_text_atomically(result_.report_path,
                        make_report(o_, result_, plan_.found, generated_, window_, models_).dump(2) + "\n", "--report");
  if (o_.index) write_index();

  spdlog::info("batch: {} written, {} skipped (complete), {} failed, {} not done; {:.2f} tuples/s; network busy {:.0f}% of "
               "{:.1f} s; report {}",
               result_.written, result_.skipped, result_.failed, result_.not_done, wall > 0 ? result_.written / wall : 0.0,
               wall > 0 ? 100.0 * result_.sampling_seconds / wall : 0.0, wall, result_.report_path);
  for (std::size_t i = 0; i < result_.failures.size() && i < 10; ++i) {
    spdlog::error("failed: {}: {}", result_.failures[i].key, result_.failures[i].reason);
  }
  if (result_.failures.size() > 10) spdlog::error("... and {} more (see the report)", result_.failures.size() - 10);
  if (result_.stopped_early) {
    spdlog::error(output_failed_ ? "stopped at the first output that could not be written; free the space (or fix "
                                   "the output folder) and rerun to go on"
                                 : "stopped at the first failure (--fail-fast); rerun to go on");
  }
}

namespace {

// `relative` to `dir` as an href ('/' separators); both made absolute first.
std::string relative_href(const std::string& path, const std::string& dir) {
  std::error_code ec;
  const fs::path rel = fs::relative(fs::absolute(path, ec), fs::absolute(dir, ec), ec);
  return ec ? std::string() : rel.generic_string();
}

// The contact sheet's picture `png` of `source` (a small PNG, nodata drawn as the
// checkerboard), made unless it is newer than its source; the note to show instead when
// there is none.
std::string make_sheet_picture(const std::string& source, const std::string& png, std::optional<double> s2_offset,
                               const std::string& what) {
  std::error_code ec;
  if (source.empty() || !fs::is_regular_file(source, ec)) return "no picture (not a local raster)";
  if (fs::exists(png, ec) && fs::last_write_time(png, ec) >= fs::last_write_time(source, ec) && !ec) return "";
  try {
    const ImageU8 picture = flatten_nodata(picture_of_file(source, kSheetPictureSide, s2_offset, what));
    fs::create_directories(fs::path(png).parent_path());
    write_png(png, picture);
    return "";
  } catch (const std::exception& e) {
    spdlog::debug("no contact sheet picture of '{}': {}", source, e.what());
    return std::string("no picture: ") + e.what();
  }
}

}  // namespace

// The contact sheet: every tuple of the shard, its state, its pictures, its files.
void BatchRunner::write_index() {
  std::map<std::string, const TupleFailure*> failed;
  for (const TupleFailure& f : result_.failures) failed.emplace(f.key, &f);
  const std::string dir = fs::path(plan_.index_pages.at(0)).parent_path().string();
  const std::vector<Modality> from = sorted_modalities(o_.from);
  std::vector<SheetEntry> entries;
  for (const Planned& p : plan_.tuples) {
    SheetEntry e;
    e.key = p.src->key;
    std::error_code ec;
    const bool all = std::all_of(p.outputs.begin(), p.outputs.end(), [&](const std::string& f) { return fs::exists(f, ec); });
    if (const auto it = failed.find(e.key); it != failed.end()) {
      e.state = "failed";
      e.error = it->second->reason;
    } else {
      e.state = all ? "done" : "not done";  // the same page whether a run was resumed or not
    }
    std::size_t k = 0;
    for (Modality m : from) {
      const std::string input = p.src->inputs.at(m);
      std::string source = input;
      if (fs::is_directory(input, ec)) source = find_product_thumbnail(input);  // a Major TOM product folder
      SheetPicture pic;
      pic.label = modality_name(m) + " (given)";
      const std::string& png = p.pictures.at(k++);
      pic.note = make_sheet_picture(source, png, std::nullopt, modality_name(m) + " input");
      if (pic.note.empty()) pic.image = relative_href(png, dir);
      if (fs::exists(input, ec)) pic.link = relative_href(input, dir);
      e.pictures.push_back(std::move(pic));
    }
    for (std::size_t g = 0; g < p.outputs.size(); ++g) {
      const Modality m = generated_[g];
      SheetPicture pic;
      pic.label = modality_name(m);
      const std::string& png = p.pictures.at(k++);
      if (fs::exists(p.outputs[g], ec)) {
        pic.note = make_sheet_picture(p.outputs[g], png, physical_dn_offset(o_.scene, m), modality_name(m) + " output");
        if (pic.note.empty()) pic.image = relative_href(png, dir);
        pic.link = relative_href(p.outputs[g], dir);
      } else {
        pic.note = "not written";
      }
      e.pictures.push_back(std::move(pic));
    }
    entries.push_back(std::move(e));
  }
  std::string title = "copgen batch: " + (o_.input_dir.empty() ? o_.inputs_from : o_.input_dir);
  if (o_.shard.count > 1) title += " (shard " + shard_name(o_.shard) + ")";
  std::vector<std::string> names;
  for (const std::string& page : plan_.index_pages) names.push_back(fs::path(page).filename().string());
  for (std::size_t i = 0; i < plan_.index_pages.size(); ++i) {
    write_text_atomically(plan_.index_pages[i],
                          contact_sheet_page(title, entries, i, static_cast<std::size_t>(o_.index_page_size), names),
                          "the contact sheet");
  }
  spdlog::info("contact sheet: {} ({} page(s))", plan_.index_pages.at(0), plan_.index_pages.size());
}

void BatchRunner::shutdown() {
  if (ahead_) ahead_->stop();
  for (std::thread& t : readers_) {
    if (t.joinable()) t.join();
  }
  queue_.close();
  if (writer_.joinable()) writer_.join();
}

void BatchRunner::fail(std::size_t index, TupleFailure failure) {
  std::lock_guard<std::mutex> lock(stats_mu_);
  failure.key = plan_.tuples[index].src->key;
  spdlog::warn("tuple {} failed: {}", failure.key, failure.reason);
  // an output that cannot be written (a full disk, a lost mount) fails every tuple after it
  if (failure.kind == ErrorKind::Output && !halt_) {
    output_failed_ = true;
    spdlog::error("stopping: an output could not be written, and the tuples after it would fail the same way");
  }
  result_.failures.push_back(std::move(failure));
  ++result_.failed;
  if (o_.fail_fast || output_failed_) halt_ = true;
  report_progress();
}

bool BatchRunner::halted() {
  std::lock_guard<std::mutex> lock(stats_mu_);
  return halt_;
}

void BatchRunner::report_progress() {
  if (!progress_) return;
  BatchProgress p;
  p.done = result_.written + result_.failed;
  p.total = to_do_;
  p.failed = result_.failed;
  p.skipped = result_.skipped;
  p.elapsed = seconds_since(started_);
  progress_(p);
}

}  // namespace

BatchPlan plan_batch(const BatchOptions& o, const std::string& models_dir) {
  const Plan plan = plan_run(o, generated_of(o), models_dir);
  BatchPlan p;
  p.layout = layout_name(plan.found.layout);
  p.found = static_cast<int>(plan.found.tuples.size());
  p.incomplete = static_cast<int>(plan.found.incomplete.size());
  p.in_shard = static_cast<int>(plan.tuples.size());
  p.complete = plan.complete;
  p.report = plan.report_path;
  p.index = plan.index_pages;
  for (const Planned& t : plan.tuples) {
    if (t.complete) continue;
    p.keys.push_back(t.src->key);
    std::vector<std::string> outs;
    for (std::size_t i = 0; i < t.outputs.size(); ++i) {
      if (t.write[i]) outs.push_back(t.outputs[i]);
    }
    if (t.write_item) outs.push_back(t.item);
    p.outputs.push_back(outs);
  }
  return p;
}

std::string describe(const BatchPlan& p) {
  std::string out = fmt::format("layout: {}\ntuples: {} found, {} lacking a --from modality; {} in this shard, {} "
                                "complete, {} to do\n",
                                p.layout, p.found, p.incomplete, p.in_shard, p.complete, p.keys.size());
  for (std::size_t i = 0; i < p.keys.size(); ++i) {
    out += "tuple: " + p.keys[i];
    for (const std::string& f : p.outputs[i]) out += " -> " + f;
    out += "\n";
  }
  out += "report: " + p.report + "\n";
  for (const std::string& page : p.index) out += "index: " + page + "\n";
  return out;
}

BatchResult run_batch(const BatchOptions& o, Models& models, const BatchProgressFn& progress) {
  BatchRunner runner(o, models, progress);
  return runner.run();
}

}  // namespace copgen
