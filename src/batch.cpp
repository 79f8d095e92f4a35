#include "copgen/batch.hpp"

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <optional>
#include <set>
#include <thread>

#include <ATen/CPUGeneratorImpl.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>
#include <torch/version.h>
#include <unistd.h>

#include "copgen/cancel.hpp"
#include "copgen/npy.hpp"
#include "copgen/outputs.hpp"
#include "copgen/pixels.hpp"
#include "copgen/raster_io.hpp"
#include "copgen/runtime.hpp"
#include "copgen/tuples.hpp"
#include "copgen/version.hpp"
#include "pipeline_detail.hpp"

namespace copgen {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

std::uint64_t splitmix64(std::uint64_t x) {
  x += 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  return x ^ (x >> 31);
}

bool is_npy(const std::string& path) {
  return path.size() >= 4 && [&] {
    std::string ext = path.substr(path.size() - 4);
    std::transform(ext.begin(), ext.end(), ext.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    return ext == ".npy";
  }();
}

std::vector<Modality> generated_of(const BatchOptions& o) {
  if (!o.to.empty()) return sorted_modalities(o.to);
  std::vector<Modality> out;
  for (Modality m : kAllModalities) {
    if (std::find(o.from.begin(), o.from.end(), m) == o.from.end()) out.push_back(m);
  }
  return out;
}

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

// A thumbnail.png inside a Major TOM product folder (any case), or "".
std::string thumbnail_in(const std::string& dir) {
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    std::string name = it->path().filename().string();
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    if (name == "thumbnail.png" && it->is_regular_file(ec)) return it->path().string();
  }
  return "";
}

// One tuple of the sharded list and what this run must write for it.
struct Planned {
  const TupleSource* src = nullptr;
  std::vector<std::string> outputs;  // one per generated modality
  std::vector<bool> write;           // per output: missing (or --overwrite)
  bool complete = false;             // nothing to write
};

// A tuple as a reader thread left it.
struct Loaded {
  std::size_t planned = 0;
  bool fast = false;    // sample_tuples can take it as read
  bool failed = false;
  std::string reason;
  ErrorKind kind = ErrorKind::Runtime;
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

struct ModelDims {
  int image_size = 256;
  std::int64_t channels = 4;
  std::int64_t latent = 32;
};

// Reads one tuple: fast when every input is a 256 x 256 3-band Byte raster (or a Major
// TOM product folder holding one as thumbnail.png) or a .npy latent/moments.
Loaded load_tuple(const Planned& p, std::size_t index, const std::vector<Modality>& from, const ModelDims& dims,
                  bool tiles) {
  Loaded l;
  l.planned = index;
  l.fast = tiles;
  l.inputs.label = p.src->key;
  if (!tiles) return l;
  try {
    bool first = true;
    for (Modality m : from) {
      const std::string& path = p.src->inputs.at(m);
      const std::string what = modality_name(m) + " input";
      GivenData given;
      if (is_npy(path)) {
        torch::Tensor t = detail::read_given_npy(path, what, dims.channels, dims.latent);
        (t.size(0) == dims.channels ? given.latent : given.moments) = t;
      } else {
        std::string file = path;
        std::error_code ec;
        if (fs::is_directory(path, ec)) {
          file = thumbnail_in(path);
          if (file.empty()) {  // physical bands only: translate() reads the product folder
            l.fast = false;
            continue;
          }
        }
        const RasterInfo info = probe_raster(file, what);
        if (info.bands != 3 || info.data_type != "Byte" || info.width != dims.image_size ||
            info.height != dims.image_size) {
          l.fast = false;  // a scene or physical bands: translate() decides
          continue;
        }
        const ImageU8 img = read_image_u8(file, what);
        if (!img.valid.empty()) {
          l.fast = false;  // nodata pixels: translate() masks them (or fills them) as in single runs
          continue;
        }
        if (first) l.geo = img.geo;
        given.pixels = image_to_tensor(img);
      }
      first = false;
      l.inputs.given[m] = std::move(given);
    }
  } catch (const Error& e) {
    l.failed = true;
    l.reason = e.what();
    l.kind = e.kind();
  } catch (const c10::Error& e) {
    l.failed = true;
    l.reason = std::string("torch: ") + e.what_without_backtrace();
  } catch (const std::exception& e) {
    l.failed = true;
    l.reason = e.what();
  }
  if (!l.fast || l.failed) l.inputs.given.clear();
  return l;
}

// Removes temporary files a killed earlier run left beside the outputs of `plan`
// (".<name>.tmp-<pid>-<n>" and their side-cars). Only the names of this shard's own
// outputs are touched, so shards sharing an output tree leave each other alone.
void remove_stale_temporaries(const std::vector<Planned>& plan) {
  std::map<std::string, std::set<std::string>> by_dir;
  for (const Planned& p : plan) {
    for (const std::string& o : p.outputs) {
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

// A bounded single-consumer queue of write jobs.
class WriteQueue {
 public:
  explicit WriteQueue(std::size_t capacity) : capacity_(capacity) {}
  void push(WriteJob job) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return jobs_.size() < capacity_; });
    jobs_.push_back(std::move(job));
    cv_.notify_all();
  }
  // False once closed and drained.
  bool pop(WriteJob& job) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !jobs_.empty() || closed_; });
    if (jobs_.empty()) return false;
    job = std::move(jobs_.front());
    jobs_.pop_front();
    cv_.notify_all();
    return true;
  }
  void close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }

 private:
  std::size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<WriteJob> jobs_;
  bool closed_ = false;
};

// The batches the readers prefetch, handed to the sampling thread in order.
class ReadAhead {
 public:
  ReadAhead(std::size_t count, std::size_t window) : count_(count), window_(std::max<std::size_t>(1, window)) {}

  // Reader side: the next batch position to load, or nullopt when done or stopped.
  std::optional<std::size_t> claim() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return stop_ || next_ >= count_ || next_ < consumed_ + window_; });
    if (stop_ || next_ >= count_) return std::nullopt;
    return next_++;
  }
  void deliver(std::size_t pos, LoadedBatch batch) {
    std::lock_guard<std::mutex> lock(mu_);
    ready_[pos] = std::move(batch);
    cv_.notify_all();
  }
  // Sampling side: batch `pos`, waiting for it; throws Interrupted on a stop request.
  LoadedBatch take(std::size_t pos, double& waited) {
    const auto start = Clock::now();
    std::unique_lock<std::mutex> lock(mu_);
    while (!ready_.count(pos)) {
      if (stop_requested()) throw Interrupted();
      cv_.wait_for(lock, std::chrono::milliseconds(50));
    }
    LoadedBatch b = std::move(ready_[pos]);
    ready_.erase(pos);
    consumed_ = pos + 1;
    cv_.notify_all();
    waited += seconds_since(start);
    return b;
  }
  void stop() {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }

 private:
  std::size_t count_, window_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t next_ = 0, consumed_ = 0;
  std::map<std::size_t, LoadedBatch> ready_;
  bool stop_ = false;
};

// This shard's tuples (in key order) with their outputs, the batches (consecutive groups
// of batch_size of that list, fixed whatever is done; see batch.hpp) and those batches
// that have something to write.
struct Plan {
  std::vector<Planned> tuples;
  std::vector<std::vector<std::size_t>> batches;  // indices into tuples
  std::vector<std::size_t> work;                  // indices into batches
  int complete = 0;                               // tuples with every output present
};

// The files the inputs of `t` read (input_files of each).
std::vector<std::string> tuple_input_files(const TupleSource& t) {
  std::vector<std::string> files;
  for (const auto& [m, path] : t.inputs) {
    for (const std::string& f : input_files(path)) files.push_back(f);
  }
  return files;
}

// The report is replaced at the end of every run: checked before any work that it can be
// written there and is not one of the inputs.
void check_report_path(const std::string& path, const Discovered& found) {
  check_output_location(path, "--report", true);
  std::error_code ec;
  if (!fs::exists(path, ec)) return;
  std::vector<std::string> inputs;
  for (const TupleSource& t : found.tuples) {
    for (const std::string& f : tuple_input_files(t)) inputs.push_back(f);
  }
  check_output_file(path, inputs, "--report");
}

Plan plan_run(const BatchOptions& o, const Discovered& found, const std::vector<Modality>& generated) {
  Plan plan;
  for (const TupleSource& t : found.tuples) {
    if (!in_shard(t.key, o.shard)) continue;
    Planned p;
    p.src = &t;
    p.complete = true;
    for (Modality m : generated) {
      p.outputs.push_back(tuple_output_path(o.output, t, m));
      std::error_code ec;
      const bool exists = fs::exists(p.outputs.back(), ec);
      if (exists && o.overwrite) check_output_file(p.outputs.back(), tuple_input_files(t), "output");
      const bool need = o.overwrite || !exists;
      p.write.push_back(need);
      if (need) p.complete = false;
    }
    if (p.complete) ++plan.complete;
    plan.tuples.push_back(std::move(p));
  }
  const std::size_t n = plan.tuples.size(), b = static_cast<std::size_t>(o.batch_size);
  for (std::size_t first = 0; first < n; first += b) {
    std::vector<std::size_t> batch;
    bool pending = false;
    for (std::size_t i = first; i < std::min(n, first + b); ++i) {
      batch.push_back(i);
      pending = pending || !plan.tuples[i].complete;
    }
    if (pending) plan.work.push_back(plan.batches.size());
    plan.batches.push_back(std::move(batch));
  }
  return plan;
}

// The options of translate() for a tuple that is not a 256 x 256 tile: its own seed.
TranslateOptions per_tuple_options(const BatchOptions& o, const Planned& p, const std::vector<Modality>& generated,
                                   std::uint64_t seed) {
  TranslateOptions t;
  static_cast<RunOptions&>(t) = static_cast<const RunOptions&>(o);
  t.output = (fs::path(o.output) / p.src->output_pattern).string();
  t.samples = 1;
  t.batch_size = 1;
  t.overwrite = true;  // a partly written tuple is redone whole, with the same seed
  t.save_latents_dir.clear();
  t.seed = batch_seed(seed, p.src->key);
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
        {"output_dir", o.output},
        {"from", from_names},
        {"to", to_names},
        {"seed", result.seed},
        {"seed_given", o.seed.has_value()},
        {"batch_size", o.batch_size},
        {"shard", shard_name(o.shard)},
        {"steps", o.sampler.steps},
        {"solver", solver_name(o.sampler.solver)},
        {"time_grid", time_grid_name(o.sampler.grid)},
        {"guidance_scale", o.guidance.scale},
        {"cond_latent", cond_latent_name(o.cond_latent)},
        {"format", o.format},
        {"overwrite", o.overwrite},
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
  };
  return report;
}

}  // namespace

std::uint64_t batch_seed(std::uint64_t seed, const std::string& key) {
  return splitmix64(seed ^ splitmix64(tuple_key_hash(key))) & ((std::uint64_t{1} << 53) - 1);
}

std::string default_report_path(const BatchOptions& o) {
  const std::string name = o.shard.count > 1 ? "copgen-report.shard-" + std::to_string(o.shard.index) + "-of-" +
                                                   std::to_string(o.shard.count) + ".json"
                                             : "copgen-report.json";
  return (fs::path(o.output) / name).string();
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
  if (o.output.empty()) throw UsageError("--output-dir: an output directory is required");
  if (o.from.empty()) throw UsageError("--from: give the modalities every tuple provides (e.g. --from S2L1C)");
  std::set<Modality> given(o.from.begin(), o.from.end());
  if (given.size() != o.from.size()) throw UsageError("--from: a modality is given more than once");
  std::set<Modality> seen;
  for (Modality m : o.to) {
    if (given.count(m)) throw UsageError("--to " + modality_name(m) + " is also given with --from");
    if (!seen.insert(m).second) throw UsageError("--to: modality " + modality_name(m) + " is given more than once");
  }
  if (generated_of(o).empty()) throw UsageError("--to: nothing to generate (every modality is given with --from)");
  if (o.samples != 1) throw UsageError("--samples: a batch run writes one sample per tuple (got --samples " +
                                       std::to_string(o.samples) + ")");
  if (!o.save_latents_dir.empty()) throw UsageError("--save-latents cannot be used with --input-dir/--inputs-from");
  if (o.batch_size < 1) throw UsageError("--batch-size: must be at least 1, got " + std::to_string(o.batch_size));
  if (o.readers < 1) throw UsageError("--readers: must be at least 1, got " + std::to_string(o.readers));
  if (o.prefetch < 0) throw UsageError("prefetch: must not be negative");
  if (o.shard.count < 1 || o.shard.index < 0 || o.shard.index >= o.shard.count) {
    throw UsageError("--shard " + shard_name(o.shard) + ": expected I/N with 0 <= I < N");
  }
  validate(o.sampler);
  validate(o.guidance);
  validate(o.scene, generated_of(o), o.samples);
  if (o.format != "GTiff" && o.format != "COG") {
    throw UsageError("--format: unknown format '" + o.format + "' (expected GTiff or COG)");
  }
  if (!o.input_dir.empty()) {
    auto norm = [](const std::string& p, std::error_code& ec) {
      fs::path c = fs::weakly_canonical(p, ec);
      return c.has_filename() ? c : c.parent_path();  // "/in/" -> "/in"
    };
    std::error_code e1, e2;
    const fs::path a = norm(o.input_dir, e1), b = norm(o.output, e2);
    if (!e1 && !e2 && a == b) {
      throw UsageError("--output-dir '" + o.output + "' is the --input-dir; give another directory");
    }
  }
}

BatchResult run_batch(const BatchOptions& o, Models& models, const BatchProgressFn& progress) {
  validate(o);
  const auto started = Clock::now();
  BatchResult result;
  result.seed = o.seed.value_or(random_seed());
  if (!o.seed) {
    spdlog::info("seed: {} (random; pass --seed {} to reproduce, and to resume with the same seed)", result.seed,
                 result.seed);
  }
  result.report_path = o.report.empty() ? default_report_path(o) : o.report;

  // ---- find the tuples, keep this shard's, plan their outputs -------------------------
  // the output tree is never read as input, even when it lies inside the input tree
  const Discovered found =
      o.input_dir.empty() ? read_tuple_list(o.inputs_from, o.from) : discover_tuples(o.input_dir, o.from, o.output);
  for (const std::string& w : found.warnings) spdlog::warn("{}", w);
  result.layout = layout_name(found.layout);
  result.found = static_cast<int>(found.tuples.size());
  result.incomplete = static_cast<int>(found.incomplete.size());
  const std::vector<Modality> generated = generated_of(o);
  const std::vector<Modality> given_sorted = sorted_modalities(o.from);
  const Roles roles = Roles::make(given_sorted, generated);

  const Plan planned = plan_run(o, found, generated);
  const std::vector<Planned>& plan = planned.tuples;
  const std::vector<std::vector<std::size_t>>& batches = planned.batches;
  const std::vector<std::size_t>& work = planned.work;
  result.in_shard = static_cast<int>(plan.size());
  result.skipped = planned.complete;
  const int to_do = result.in_shard - result.skipped;
  spdlog::info("batch: {} tuple(s) found ({} layout), {} lacking a --from modality; shard {}: {}, {} complete, {} to do",
               result.found, result.layout, result.incomplete, shard_name(o.shard), result.in_shard, result.skipped,
               to_do);

  check_report_path(result.report_path, found);
  check_writable_dir(o.output, "--output-dir");
  CreatedDirs made;  // removed again if the run ends before writing anything into them
  made.create(o.output, "--output-dir");
  {
    std::vector<Planned> todo;
    for (const Planned& p : plan) {
      if (!p.complete) todo.push_back(p);
    }
    remove_stale_temporaries(todo);
  }

  // ---- shared state --------------------------------------------------------------------
  std::mutex stats_mu;
  bool halt = false;  // --fail-fast tripped
  double read_seconds = 0.0, write_seconds = 0.0;
  auto report_progress = [&]() {  // under stats_mu
    if (!progress) return;
    BatchProgress p;
    p.done = result.written + result.failed;
    p.total = to_do;
    p.failed = result.failed;
    p.skipped = result.skipped;
    p.elapsed = seconds_since(started);
    progress(p);
  };
  auto fail = [&](std::size_t index, const std::string& reason, ErrorKind kind) {
    std::lock_guard<std::mutex> lock(stats_mu);
    spdlog::warn("tuple {} failed: {}", plan[index].src->key, reason);
    result.failures.push_back({plan[index].src->key, reason, kind});
    ++result.failed;
    if (o.fail_fast) halt = true;
    report_progress();
  };
  auto halted = [&]() {
    std::lock_guard<std::mutex> lock(stats_mu);
    return halt;
  };
  if (progress) {
    std::lock_guard<std::mutex> lock(stats_mu);
    report_progress();
  }

  std::map<std::string, std::string> meta = {
      {"COPGEN_VERSION", kVersion},
      {"COPGEN_MODELS_SHA256", models.manifest().sha256},
      {"COPGEN_MODELS_SOURCE", models.manifest().backbone.source},
      {"COPGEN_MODE", "batch"},
      {"COPGEN_SEED", std::to_string(result.seed)},
      {"COPGEN_STEPS", std::to_string(o.sampler.steps)},
      {"COPGEN_SOLVER", solver_name(o.sampler.solver)},
      {"COPGEN_TIME_GRID", time_grid_name(o.sampler.grid)},
      {"COPGEN_GUIDANCE_SCALE", std::to_string(o.guidance.scale)},
      {"COPGEN_BATCH_SIZE", std::to_string(o.batch_size)},
      {"COPGEN_GIVEN", join_modalities(given_sorted)},
      {"COPGEN_GENERATED", join_modalities(generated)},
      {"COPGEN_UNUSED", roles.unused.empty() ? "none" : join_modalities(roles.unused) + " (noise at t=N)"},
      {"COPGEN_COND_LATENT", cond_latent_name(o.cond_latent)},
  };
  const auto model_settings = models.settings_metadata();  // precisions and TF32
  meta.insert(model_settings.begin(), model_settings.end());

  // ---- workers -------------------------------------------------------------------------
  const ModelDims dims{models.image_size(), models.latent_channels(), models.latent_size()};
  // the scene flags that make translate() treat even 256 x 256 thumbnails as scenes
  const bool tiles = o.scene.input_kind != InputKind::Physical && o.scene.output_kind == OutputKind::Thumbnail &&
                     !o.scene.force;
  const std::size_t window = static_cast<std::size_t>(o.prefetch > 0 ? o.prefetch : o.readers + 1);
  ReadAhead ahead(work.size(), window);
  WriteQueue queue(2);
  std::vector<std::thread> readers;
  std::thread writer;
  auto shutdown = [&]() {
    ahead.stop();
    for (std::thread& t : readers) {
      if (t.joinable()) t.join();
    }
    queue.close();
    if (writer.joinable()) writer.join();
  };
  struct Guard {
    std::function<void()> f;
    ~Guard() { f(); }
  } guard{shutdown};

  for (int r = 0; r < o.readers && !work.empty(); ++r) {
    readers.emplace_back([&]() {
      while (auto pos = ahead.claim()) {
        const auto t0 = Clock::now();
        LoadedBatch lb;
        for (std::size_t i : batches[work[*pos]]) lb.tuples.push_back(load_tuple(plan[i], i, o.from, dims, tiles));
        {
          std::lock_guard<std::mutex> lock(stats_mu);
          read_seconds += seconds_since(t0);
        }
        ahead.deliver(*pos, std::move(lb));
      }
    });
  }
  writer = std::thread([&]() {
    WriteJob job;
    while (queue.pop(job)) {
      const auto t0 = Clock::now();
      for (std::size_t j = 0; j < job.planned.size(); ++j) {
        const Planned& p = plan[job.planned[j]];
        try {
          for (std::size_t g = 0; g < generated.size(); ++g) {
            if (!p.write[g]) continue;
            const Modality m = generated[g];
            std::error_code ec;
            fs::create_directories(fs::path(p.outputs[g]).parent_path(), ec);
            WriteOptions w;
            w.format = o.format;
            w.overwrite = true;
            w.metadata = meta;
            w.metadata["COPGEN_BATCH_SEED"] = std::to_string(job.seed);
            w.metadata["COPGEN_TUPLE"] = p.src->key;
            w.metadata["COPGEN_MODALITY"] = modality_name(m);
            w.band_descriptions = detail::band_descriptions(m);  // as translate() writes them
            write_image_u8(p.outputs[g], tensor_to_image(job.outputs[j].images.at(m), job.geo[j]), w);
            spdlog::debug("wrote {}", p.outputs[g]);
          }
          std::lock_guard<std::mutex> lock(stats_mu);
          ++result.written;
          report_progress();
        } catch (const Error& e) {
          fail(job.planned[j], e.what(), e.kind());
        } catch (const std::exception& e) {
          fail(job.planned[j], e.what(), ErrorKind::Runtime);
        }
      }
      std::lock_guard<std::mutex> lock(stats_mu);
      write_seconds += seconds_since(t0);
    }
  });

  // ---- sampling, on this thread ------------------------------------------------------
  SamplingSettings settings;
  settings.sampler = o.sampler;
  settings.guidance = o.guidance;
  settings.cond_latent = o.cond_latent;
  try {
    for (std::size_t w = 0; w < work.size(); ++w) {
      throw_if_stop_requested();
      if (halted()) break;
      LoadedBatch lb = ahead.take(w, result.read_wait_seconds);
      const std::vector<std::size_t>& members = batches[work[w]];
      std::vector<Loaded*> fast, slow;
      for (Loaded& l : lb.tuples) {
        const Planned& p = plan[l.planned];
        if (l.failed) {
          if (!p.complete) fail(l.planned, l.reason, l.kind);
        } else if (l.fast) {
          fast.push_back(&l);
        } else if (!p.complete) {
          slow.push_back(&l);
        }
      }
      if (halted()) break;
      // Complete tuples join only a batch that has something to write.
      const bool sample = std::any_of(fast.begin(), fast.end(), [&](const Loaded* l) { return !plan[l->planned].complete; });
      if (sample) {
        WriteJob job;
        job.seed = batch_seed(result.seed, plan[members.front()].src->key);
        at::Generator gen = at::detail::createCPUGenerator(job.seed);
        std::vector<TupleInputs> inputs;
        for (Loaded* l : fast) inputs.push_back(l->inputs);
        const auto t0 = Clock::now();
        std::vector<TupleOutputs> outs;
        std::optional<std::pair<std::string, ErrorKind>> error;
        try {
          outs = sample_tuples(models, roles, inputs, settings, gen, [](int, int) { throw_if_stop_requested(); });
        } catch (const Interrupted&) {
          result.sampling_seconds += seconds_since(t0);
          throw;
        } catch (const Error& e) {
          error = std::make_pair(std::string(e.what()), e.kind());
        } catch (const c10::Error& e) {
          error = std::make_pair(std::string("torch: ") + e.what_without_backtrace(), ErrorKind::Runtime);
        }
        result.sampling_seconds += seconds_since(t0);
        ++result.batches;
        for (std::size_t j = 0; j < fast.size(); ++j) {
          const Planned& p = plan[fast[j]->planned];
          if (p.complete) continue;  // sampled for the batch's composition only
          if (error) {
            fail(fast[j]->planned, error->first, error->second);
            continue;
          }
          job.planned.push_back(fast[j]->planned);
          job.outputs.push_back(std::move(outs[j]));
          job.geo.push_back(fast[j]->geo);
        }
        if (!job.planned.empty()) queue.push(std::move(job));
      }
      for (Loaded* l : slow) {
        throw_if_stop_requested();
        if (halted()) break;
        const Planned& p = plan[l->planned];
        const TranslateOptions t = per_tuple_options(o, p, generated, result.seed);
        const auto t0 = Clock::now();
        try {
          for (const std::string& out : p.outputs) {
            std::error_code ec;
            fs::create_directories(fs::path(out).parent_path(), ec);
          }
          translate(t, models);
          result.translate_seconds += seconds_since(t0);
          std::lock_guard<std::mutex> lock(stats_mu);
          ++result.written;
          report_progress();
        } catch (const Interrupted&) {
          result.translate_seconds += seconds_since(t0);
          throw;
        } catch (const Error& e) {
          result.translate_seconds += seconds_since(t0);
          fail(l->planned, e.what(), e.kind());
        } catch (const c10::Error& e) {
          result.translate_seconds += seconds_since(t0);
          fail(l->planned, std::string("torch: ") + e.what_without_backtrace(), ErrorKind::Runtime);
        }
      }
    }
  } catch (const Interrupted&) {
    result.interrupted = true;
    spdlog::warn("interrupted: finishing the outputs already sampled, then stopping");
  }
  shutdown();  // the writer drains its queue: every sampled tuple is written
  result.read_seconds = read_seconds;
  result.write_seconds = write_seconds;
  result.not_done = result.in_shard - result.skipped - result.written - result.failed;
  result.stopped_early = !result.interrupted && halt && result.not_done > 0;
  result.wall_seconds = seconds_since(started);

  // ---- the report ----------------------------------------------------------------------
  const double wall = result.wall_seconds;
  write_text_atomically(result.report_path, make_report(o, result, found, generated, window, models).dump(2) + "\n",
                        "--report");

  spdlog::info("batch: {} written, {} skipped (complete), {} failed, {} not done; {:.2f} tuples/s; network busy {:.0f}% of "
               "{:.1f} s; report {}",
               result.written, result.skipped, result.failed, result.not_done, wall > 0 ? result.written / wall : 0.0,
               wall > 0 ? 100.0 * result.sampling_seconds / wall : 0.0, wall, result.report_path);
  for (std::size_t i = 0; i < result.failures.size() && i < 10; ++i) {
    spdlog::error("failed: {}: {}", result.failures[i].key, result.failures[i].reason);
  }
  if (result.failures.size() > 10) spdlog::error("... and {} more (see the report)", result.failures.size() - 10);
  if (result.stopped_early) spdlog::error("stopped at the first failure (--fail-fast); rerun to go on");
  return result;
}

BatchProgressLine::BatchProgressLine(bool enabled, double log_every_seconds)
    : enabled_(enabled), tty_(isatty(STDERR_FILENO) != 0), log_every_(log_every_seconds) {}

BatchProgressLine::~BatchProgressLine() { finish(); }

void BatchProgressLine::update(const BatchProgress& p) {
  if (!enabled_) return;
  const double rate = p.elapsed > 0 ? p.done / p.elapsed : 0.0;
  const double eta = rate > 0 ? (p.total - p.done) / rate : -1.0;
  const std::string failed = p.failed > 0 ? ", " + std::to_string(p.failed) + " failed" : "";
  if (tty_) {
    constexpr int kWidth = 24;
    const int filled = p.total > 0 ? static_cast<int>(static_cast<double>(kWidth) * p.done / p.total) : kWidth;
    std::string bar(static_cast<std::size_t>(std::clamp(filled, 0, kWidth)), '#');
    bar.resize(kWidth, '.');
    draw_progress_line(fmt::format("[{}] {}/{} tuples{}, {:.2f} tuples/s, ETA {}", bar, p.done, p.total, failed, rate,
                                   format_duration(eta)));
    if (p.done >= p.total) finish();  // the last update: the summary goes on its own line
  } else if (p.elapsed - last_log_ >= log_every_ || p.done == p.total) {
    spdlog::info("progress: {}/{} tuples{}, {:.2f} tuples/s, ETA {}", p.done, p.total, failed, rate,
                 format_duration(eta));
    last_log_ = p.elapsed;
  }
}

void BatchProgressLine::finish() {
  if (tty_) end_progress_line();
}

}  // namespace copgen
