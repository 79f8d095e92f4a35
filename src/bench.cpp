#include "copgen/bench.hpp"

#include <sys/wait.h>
#include <time.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <map>
#include <sstream>

#include <ATen/CPUGeneratorImpl.h>
#include <torch/version.h>

#include "copgen/conditioning.hpp"
#include "copgen/cuda.hpp"
#include "copgen/cancel.hpp"
#include "copgen/error.hpp"
#include "copgen/npy.hpp"
#include "copgen/provenance.hpp"
#include "copgen/runtime.hpp"
#include "copgen/scripts_dirs.hpp"
#include "copgen/tuples.hpp"
#include "copgen/version.hpp"


namespace copgen {

namespace fs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) {
  return std::chrono::duration<double>(Clock::now() - start).count();
}

std::string precision_of(torch::ScalarType t) {
  if (t == torch::kBFloat16) return "bf16";
  if (t == torch::kFloat16) return "fp16";
  return "fp32";
}

std::string load_average() {
  double l[3] = {0, 0, 0};
  if (getloadavg(l, 3) != 3) return "";
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.2f %.2f %.2f", l[0], l[1], l[2]);
  return buf;
}

std::string shell_quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string join_ints(const std::vector<int>& v) {
  std::string s;
  for (int x : v) s += (s.empty() ? "" : ",") + std::to_string(x);
  return s;
}

// Runs `command` through the shell; returns its stdout (stderr passes through).
std::string run_capture(const std::string& command, int& exit_code) {
  FILE* pipe = popen(command.c_str(), "r");
  if (pipe == nullptr) throw RuntimeError("--compare-reference: cannot start '" + command + "'");
  std::string out;
  char buf[4096];
  size_t n = 0;
  while ((n = std::fread(buf, 1, sizeof buf, pipe)) > 0) out.append(buf, n);
  const int status = pclose(pipe);
  exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + (WIFSIGNALED(status) ? WTERMSIG(status) : 0);
  return out;
}

std::string default_python() {
  std::error_code ec;
  return fs::exists("/usr/bin/python3", ec) ? "/usr/bin/python3" : "python3";
}

// A temporary directory for the tiles handed to the reference, removed on scope exit.
struct ScratchDir {
  std::string path;
  ScratchDir() {
    std::string pattern = (fs::temp_directory_path() / "copgen-bench-XXXXXX").string();
    if (mkdtemp(pattern.data()) == nullptr) throw RuntimeError("cannot create a temporary directory for the benchmark");
    path = pattern;
  }
  ~ScratchDir() {
    std::error_code ec;
    fs::remove_all(path, ec);
  }
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
};

// Network calls of batch b: warm-up, then `repeat` timed calls.
void measure_calls(Models& models, int b, const BenchOptions& o, BenchRow& row) {
  at::Generator gen = at::detail::createCPUGenerator(o.sampling.seed.value_or(0));
  const int64_t c = models.latent_channels(), h = models.latent_size();
  const int64_t m = models.manifest().backbone.num_modalities;
  const double n = models.schedule().num_timesteps();
  const torch::Tensor z = to_device(torch::randn({b, m, c, h, h}, gen, torch::kFloat32), models.device());
  const torch::Tensor t = to_device(torch::rand({b, m}, gen, torch::kFloat32) * n, models.device());
  for (int i = 0; i < o.warmup; ++i) {
    throw_if_stop_requested();
    (void)models.predict_noise(z, t);
  }
  synchronize(models.device());
  const double cpu = process_cpu_seconds();
  const auto start = Clock::now();
  for (int i = 0; i < o.repeat; ++i) {
    throw_if_stop_requested();
    (void)models.predict_noise(z, t);
  }
  synchronize(models.device());
  const double s = seconds_since(start);
  row.timed_calls = o.repeat;
  row.seconds_per_call = s / o.repeat;
  row.cpu_seconds_per_call = (process_cpu_seconds() - cpu) / o.repeat;
  row.calls_per_s = o.repeat / s;
  row.sample_calls_per_s = row.calls_per_s * b;
  row.tflops = models.manifest().backbone_flops_per_call() * row.sample_calls_per_s / 1e12;
  row.mfu = o.peak_tflops > 0 ? row.tflops / o.peak_tflops : -1.0;
}

// S2L1C -> S2L2A of b synthetic tiles through sample_tuples: one untimed single-step run,
// then one timed run of the sampling options' steps.
void measure_end_to_end(Models& models, const torch::Tensor& tiles, int b, const BenchOptions& o, BenchRow& row) {
  const Roles roles = Roles::make({Modality::S2L1C}, {Modality::S2L2A});
  std::vector<TupleInputs> tuples(static_cast<size_t>(b));
  for (int k = 0; k < b; ++k) {
    tuples[static_cast<size_t>(k)].label = "synthetic tile " + std::to_string(k);
    tuples[static_cast<size_t>(k)].given[Modality::S2L1C].pixels = tiles[k];
  }
  SamplingOptions settings = o.sampling;
  settings.sampler.steps = 1;
  at::Generator warm_gen = at::detail::createCPUGenerator(o.sampling.seed.value_or(0));
  const auto stop_check = [](int, int) { throw_if_stop_requested(); };
  (void)sample_tuples(models, roles, tuples, settings, warm_gen, stop_check);
  synchronize(models.device());

  settings.sampler.steps = o.sampling.sampler.steps;
  at::Generator gen = at::detail::createCPUGenerator(o.sampling.seed.value_or(0));
  const double cpu = process_cpu_seconds();
  const std::int64_t passes_before = models.backbone_calls();
  const RunCost step = tile_step_cost(b, settings.guidance, true);
  const auto start = Clock::now();
  (void)sample_tuples(models, roles, tuples, settings, gen, [&](int, int) {
    row.e2e_cost += step;
    throw_if_stop_requested();
  });
  synchronize(models.device());
  row.e2e_cost.samples = b;
  row.e2e_cost.backbone_passes = models.backbone_calls() - passes_before;
  row.e2e_steps = o.sampling.sampler.steps;
  row.e2e_seconds = seconds_since(start);
  row.e2e_cpu_seconds = process_cpu_seconds() - cpu;
  row.tuples_per_s = b / row.e2e_seconds;
}

std::string describe(const BenchRow& r) {
  char buf[256];
  std::snprintf(buf, sizeof buf, "%s %s batch %d: %.4g s/call, %.3g calls/s, %.3g TFLOP/s", r.device.c_str(),
                r.precision.c_str(), r.batch_size, r.seconds_per_call, r.calls_per_s, r.tflops);
  std::string s = buf;
  if (r.e2e_steps > 0) {
    std::snprintf(buf, sizeof buf, "; end to end %.4g tuples/s (%d steps, %.3g s)", r.tuples_per_s, r.e2e_steps,
                  r.e2e_seconds);
    s += buf;
  }
  return s;
}

// Runs the reference pipeline for one device/precision over every batch size and
// stores its figures in the matching rows.
void run_reference(const BenchOptions& o, const std::string& python, const std::string& script,
                   const std::string& device, const std::string& precision, int threads,
                   const std::string& tiles_path, std::vector<BenchRow*>& rows, const BenchLog& log) {
  // The reference runs in the user's environment, without what copgen set for itself.
  std::string cmd = user_environment_prefix() + shell_quote(python) + " " + shell_quote(script) + " --models " +
                    shell_quote(o.models_dir) + " --device " + shell_quote(device) + " --precision " + precision + " --batch-sizes " +
                    join_ints(o.batch_sizes) + " --warmup " + std::to_string(o.warmup) + " --repeat " +
                    std::to_string(o.repeat) + " --steps " + std::to_string(o.sampling.sampler.steps) +
                    " --seed " + std::to_string(o.sampling.seed.value_or(0)) + " --threads " + std::to_string(threads);
  if (o.reference_autocast && precision != "fp32") cmd += " --autocast";
  if (o.end_to_end) {
    cmd += " --tiles " + shell_quote(tiles_path);
  } else {
    cmd += " --no-end-to-end";
  }
  if (log) log("reference pipeline: " + cmd);
  int code = 0;
  const std::string out = run_capture(cmd, code);
  if (code != 0) {
    throw RuntimeError("--compare-reference: the reference pipeline failed (exit status " + std::to_string(code) +
                       "); command: " + cmd);
  }
  nlohmann::json j;
  try {
    j = nlohmann::json::parse(out);
  } catch (const nlohmann::json::exception& e) {
    throw RuntimeError("--compare-reference: the reference pipeline printed no valid JSON (" + std::string(e.what()) +
                       "); command: " + cmd);
  }
  if (!j.contains("results") || !j["results"].is_array()) {
    throw RuntimeError("--compare-reference: the reference pipeline's JSON has no 'results' array; command: " + cmd);
  }
  for (const auto& r : j["results"]) {
    const int b = r.value("batch_size", 0);
    for (BenchRow* row : rows) {
      if (row->batch_size != b) continue;
      ReferenceFigures f;
      f.seconds_per_call = r.value("seconds_per_call", 0.0);
      f.cpu_seconds_per_call = r.value("cpu_seconds_per_call", 0.0);
      f.tuples_per_s = r.value("tuples_per_s", 0.0);
      f.e2e_seconds = r.value("e2e_seconds", 0.0);
      f.e2e_cpu_seconds = r.value("e2e_cpu_seconds", 0.0);
      f.peak_host_rss_bytes = r.value("peak_host_rss_bytes", std::int64_t{-1});
      f.peak_device_bytes = r.value("peak_device_bytes", std::int64_t{-1});
      f.peak_device_allocated_bytes = r.value("peak_device_allocated_bytes", std::int64_t{-1});
      row->reference = f;
    }
  }
  for (BenchRow* row : rows) {
    if (!row->reference) {
      throw RuntimeError("--compare-reference: the reference pipeline reported nothing for batch size " +
                         std::to_string(row->batch_size) + "; command: " + cmd);
    }
  }
}

}  // namespace

void validate(const BenchOptions& o) {
  if (o.devices.empty()) throw UsageError("--devices: give at least one device");
  if (o.precisions.empty()) throw UsageError("--precisions: give at least one precision");
  if (o.batch_sizes.empty()) throw UsageError("--batch-sizes: give at least one batch size");
  for (int b : o.batch_sizes) {
    if (b < 1) throw UsageError("--batch-sizes: every batch size must be at least 1, got " + std::to_string(b));
  }
  if (o.repeat < 1) throw UsageError("--repeat: must be at least 1, got " + std::to_string(o.repeat));
  if (o.warmup < 0) throw UsageError("--warmup: must not be negative, got " + std::to_string(o.warmup));
  validate(o.sampling);
  if (!(o.peak_tflops >= 0) || !std::isfinite(o.peak_tflops)) {
    throw UsageError("--peak-tflops: must be a finite number, not negative");
  }
}

double process_cpu_seconds() {
  timespec ts{};
  if (clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts) != 0) return 0.0;
  return static_cast<double>(ts.tv_sec) + 1e-9 * static_cast<double>(ts.tv_nsec);
}

std::int64_t peak_host_rss_bytes() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind("VmHWM:", 0) == 0) {
      std::istringstream s(line.substr(6));
      std::int64_t kb = -1;
      s >> kb;
      return kb < 0 ? -1 : kb * 1024;
    }
  }
  return -1;
}

bool reset_peak_host_rss() {
  std::ofstream f("/proc/self/clear_refs");
  if (!f) return false;
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

torch::Tensor synthetic_tiles(std::int64_t b, std::int64_t size) {
  // value = (x (1 + c) + y (2 + k mod 3) + 37 k + 85 c) mod 256, in integers
  const auto i64 = torch::TensorOptions().dtype(torch::kInt64);
  const torch::Tensor k = torch::arange(b, i64).view({b, 1, 1, 1});
  const torch::Tensor c = torch::arange(3, i64).view({1, 3, 1, 1});
  const torch::Tensor y = torch::arange(size, i64).view({1, 1, size, 1});
  const torch::Tensor x = torch::arange(size, i64).view({1, 1, 1, size});
  const torch::Tensor v = x * (1 + c) + y * (2 + torch::remainder(k, 3)) + 37 * k + 85 * c;
  return torch::remainder(v, 256).to(torch::kUInt8).contiguous();
}

std::string find_reference_script(const std::string& explicit_path) {
  std::error_code ec;
  if (!explicit_path.empty()) {
    if (!fs::is_regular_file(explicit_path, ec)) {
      throw UsageError("--reference-script '" + explicit_path + "': file not found");
    }
    return explicit_path;
  }
  for (const std::string dir : {kInstalledScriptsDir, kSourceScriptsDir}) {
    if (dir.empty()) continue;
    const std::string p = (fs::path(dir) / "reference_pipeline.py").string();
    if (fs::is_regular_file(p, ec)) return p;
  }
  throw UsageError("--compare-reference: reference_pipeline.py is neither installed (" +
                   std::string(kInstalledScriptsDir) + ") nor in the source tree (" +
                   std::string(kSourceScriptsDir) + "); give --reference-script");
}

namespace {

// What every configuration of a bench run shares: the end-to-end tiles and, with
// --compare-reference, the reference script and the tiles written for it.
struct BenchInputs {
  torch::Tensor tiles;     // uint8 pixel values [max batch, 3, S, S] (end to end)
  std::string tiles_path;  // the same as .npy, for the reference
  std::string script;      // scripts/research/reference_pipeline.py
};

// Rows skipped for every batch size of a configuration that cannot run here.
void add_skipped_rows(const BenchOptions& o, const std::string& device_spec, Precision p, const std::string& why,
                      BenchReport& report) {
  for (int b : o.batch_sizes) {
    BenchRow row;
    row.device = device_spec;
    row.precision = precision_name(p);
    row.batch_size = b;
    row.skipped = why;
    report.rows.push_back(row);
  }
}

// Measures one device and precision at every batch size (then the reference, if asked);
// false, with skipped rows and `last_skip` set, when the configuration cannot run here.
bool measure_configuration(const BenchOptions& o, const std::string& device_spec, Precision p,
                           const BenchInputs& in, BenchReport& report, const BenchLog& log, std::string& last_skip) {
  ModelOptions mo;
  mo.device = device_spec;
  mo.precision = p;
  mo.cuda_graphs = o.cuda_graphs;
  mo.ae_precision = o.ae_precision;
  mo.tf32 = o.tf32;
  std::optional<Models> models;
  try {
    models = Models::load(o.models_dir, mo);
  } catch (const UsageError& e) {
    last_skip = e.what();
    add_skipped_rows(o, device_spec, p, e.what(), report);
    if (log) log("skipped " + device_spec + " " + precision_name(p) + ": " + e.what());
    return false;
  }
  const Manifest& mf = models->manifest();
  report.models_sha256 = mf.sha256;
  report.models_source = mf.backbone.source;
  report.flops_per_call = mf.backbone_flops_per_call();

  std::vector<size_t> indices;
  for (int b : o.batch_sizes) {
    BenchRow row;
    row.device = models->device().str();
    row.precision = precision_of(models->dtype());
    row.ae_precision = precision_of(models->ae_dtype());
    row.batch_size = b;
    row.cuda_graphs = models->cuda_graphs();
    row.threads = torch::get_num_threads();
    if (log) log("measuring " + row.device + " " + row.precision + " batch " + std::to_string(b) + " ...");
    reset_peak_host_rss();
    reset_device_peak_bytes(models->device());
    measure_calls(*models, b, o, row);
    if (o.end_to_end) measure_end_to_end(*models, in.tiles.narrow(0, 0, b), b, o, row);
    row.peak_host_rss_bytes = peak_host_rss_bytes();
    row.peak_device_bytes = device_peak_reserved_bytes(models->device());
    row.peak_device_allocated_bytes = device_peak_bytes(models->device());
    row.cuda_graphs = models->cuda_graphs_captured() > 0;
    if (log) log(describe(row));
    indices.push_back(report.rows.size());
    report.rows.push_back(row);
  }
  if (o.compare_reference) {
    const std::string device = models->device().str();
    const std::string precision = precision_of(models->dtype());
    const int threads = torch::get_num_threads();
    models.reset();  // free its memory before the reference loads its own copy
    std::vector<BenchRow*> rows;
    for (size_t i : indices) rows.push_back(&report.rows[i]);
    run_reference(o, report.python, in.script, device, precision, threads, in.tiles_path, rows, log);
  }
  return true;
}

}  // namespace

BenchReport run_bench(const BenchOptions& o, const BenchLog& log) {
  validate(o);
  BenchReport report;
  report.options = o;
  report.copgen_version = kVersion;
  report.torch_version = TORCH_VERSION;
  report.blas = blas_library();
  report.omp_wait_policy = omp_wait_policy();
  report.models_dir = o.models_dir;
  report.peak_tflops = o.peak_tflops;
  report.load_average = load_average();
  report.environment = to_json(system_info(ModelsDirChoice{o.models_dir, kRunModelsOrigin}));

  BenchInputs reference;
  if (o.compare_reference) {
    reference.script = find_reference_script(o.reference_script);
    report.python = o.python.empty() ? default_python() : o.python;
  }
  int max_batch = 0;
  for (int b : o.batch_sizes) max_batch = std::max(max_batch, b);

  std::unique_ptr<ScratchDir> scratch;
  if (o.end_to_end) {
    reference.tiles = synthetic_tiles(max_batch, read_manifest(o.models_dir).image_size);
    if (o.compare_reference) {
      scratch = std::make_unique<ScratchDir>();
      reference.tiles_path = (fs::path(scratch->path) / "tiles.npy").string();
      write_npy(reference.tiles_path, reference.tiles);  // float32 pixel values 0..255
    }
  }

  bool any_measured = false;
  std::string last_skip;
  for (const std::string& device_spec : o.devices) {
    for (Precision p : o.precisions) {
      if (measure_configuration(o, device_spec, p, reference, report, log, last_skip)) any_measured = true;
    }
  }
  if (!any_measured) {
    throw UsageError("--devices/--precisions: no configuration can run here (" + last_skip + ")");
  }
  return report;
}

namespace {

// The reference's figures of a row and copgen's speed over them, into j.
void add_reference_json(const BenchRow& row, nlohmann::json& j) {
  using nlohmann::json;
  const ReferenceFigures& f = *row.reference;
  auto ratio = [](double ref_s, double ours_s) { return ref_s > 0 && ours_s > 0 ? json(ref_s / ours_s) : json(nullptr); };
  json ref = {{"seconds_per_call", f.seconds_per_call},
              {"cpu_seconds_per_call", f.cpu_seconds_per_call},
              {"calls_per_s", f.seconds_per_call > 0 ? 1.0 / f.seconds_per_call : 0.0},
              {"peak_host_rss_bytes", f.peak_host_rss_bytes},
              {"peak_device_bytes", f.peak_device_bytes >= 0 ? json(f.peak_device_bytes) : json(nullptr)},
              {"peak_device_allocated_bytes",
               f.peak_device_allocated_bytes >= 0 ? json(f.peak_device_allocated_bytes) : json(nullptr)}};
  // copgen's speed over the reference's: by wall clock, and by CPU time
  json speedup = {{"network_calls", ratio(f.seconds_per_call, row.seconds_per_call)},
                  {"network_calls_cpu", ratio(f.cpu_seconds_per_call, row.cpu_seconds_per_call)}};
  if (row.e2e_steps > 0) {
    ref["e2e_seconds"] = f.e2e_seconds;
    ref["e2e_cpu_seconds"] = f.e2e_cpu_seconds;
    ref["tuples_per_s"] = f.tuples_per_s;
    speedup["end_to_end"] = ratio(f.e2e_seconds, row.e2e_seconds);
    speedup["end_to_end_cpu"] = ratio(f.e2e_cpu_seconds, row.e2e_cpu_seconds);
  }
  j["reference"] = ref;
  j["speedup"] = speedup;
}

// One row of the JSON report.
nlohmann::json row_json(const BenchRow& row, const BenchOptions& options) {
  using nlohmann::json;
  json j = {{"device", row.device}, {"precision", row.precision}, {"batch_size", row.batch_size}};
  if (!row.skipped.empty()) {
    j["skipped"] = row.skipped;
    return j;
  }
  j["cuda_graphs"] = row.cuda_graphs;
  j["threads"] = row.threads;
  j["network"] = {{"warmup_calls", options.warmup},
                  {"timed_calls", row.timed_calls},
                  {"seconds_per_call", row.seconds_per_call},
                  {"cpu_seconds_per_call", row.cpu_seconds_per_call},
                  {"calls_per_s", row.calls_per_s},
                  {"sample_calls_per_s", row.sample_calls_per_s},
                  {"tflops", row.tflops},
                  {"mfu", row.mfu >= 0 ? json(row.mfu) : json(nullptr)}};
  if (row.e2e_steps > 0) {
    j["end_to_end"] = {{"translation", "S2L1C -> S2L2A"},
                       {"tuples", row.batch_size},
                       {"steps", row.e2e_steps},
                       {"cost",
                        {{"samples", row.e2e_cost.samples},
                         {"solver_steps", row.e2e_cost.solver_steps},
                         {"backbone_passes", row.e2e_cost.backbone_passes},
                         {"window_evaluations", row.e2e_cost.window_evaluations}}},
                       {"seconds", row.e2e_seconds},
                       {"cpu_seconds", row.e2e_cpu_seconds},
                       {"tuples_per_s", row.tuples_per_s}};
  } else {
    j["end_to_end"] = nullptr;
  }
  j["peak_host_rss_bytes"] = row.peak_host_rss_bytes;
  j["peak_device_bytes"] = row.peak_device_bytes >= 0 ? json(row.peak_device_bytes) : json(nullptr);
  j["peak_device_allocated_bytes"] =
      row.peak_device_allocated_bytes >= 0 ? json(row.peak_device_allocated_bytes) : json(nullptr);
  j["ae_precision"] = row.ae_precision;
  if (row.reference) add_reference_json(row, j);
  return j;
}

}  // namespace

nlohmann::json bench_to_json(const BenchReport& r) {
  using nlohmann::json;
  json rows = json::array();
  for (const BenchRow& row : r.rows) rows.push_back(row_json(row, r.options));
  std::vector<std::string> precisions;
  for (Precision p : r.options.precisions) precisions.push_back(precision_name(p));
  return {{"copgen_version", r.copgen_version},
          {"torch_version", r.torch_version},
          {"blas", r.blas},
          {"omp_wait_policy", r.omp_wait_policy},
          {"load_average", r.load_average},
          {"models",
           {{"dir", r.models_dir},
            {"sha256", r.models_sha256},
            {"source", r.models_source},
            {"backbone_flops_per_call_per_sample", r.flops_per_call}}},
          {"options",
           {{"devices", r.options.devices},
            {"precisions", precisions},
            {"batch_sizes", r.options.batch_sizes},
            {"warmup", r.options.warmup},
            {"repeat", r.options.repeat},
            {"steps", r.options.sampling.sampler.steps},
            {"end_to_end", r.options.end_to_end},
            {"cuda_graphs", r.options.cuda_graphs},
            {"peak_tflops", r.peak_tflops > 0 ? json(r.peak_tflops) : json(nullptr)},
            {"seed", r.options.sampling.seed.value_or(0)},
            {"compare_reference", r.options.compare_reference},
            {"reference_autocast", r.options.reference_autocast}}},
          {"python", r.python.empty() ? json(nullptr) : json(r.python)},
          {"environment", r.environment.is_null() ? json::object() : r.environment},
          {"rows", rows}};
}

namespace {

std::string fmt_num(double v, const char* f = "%.3g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

std::string fmt_bytes(std::int64_t b) {
  if (b < 0) return "-";
  return fmt_num(static_cast<double>(b) / (1024.0 * 1024.0 * 1024.0), "%.2f") + " GiB";
}

}  // namespace

std::string format_bench_table(const BenchReport& r) {
  const bool ref = r.options.compare_reference;
  std::vector<std::vector<std::string>> cells;
  std::vector<std::string> head = {"device", "precision", "batch", "graphs", "threads", "s/call", "cpu s/call",
                                   "calls/s", "TFLOP/s", "MFU", "tuples/s", "peak RSS", "peak dev"};
  if (ref) {
    for (const char* h : {"ref s/call", "ref cpu s/call", "ref tuples/s", "ref peak RSS", "ref peak dev", "x calls",
                          "x e2e"}) {
      head.push_back(h);
    }
  }
  cells.push_back(head);
  for (const BenchRow& row : r.rows) {
    std::vector<std::string> c = {row.device, row.precision, std::to_string(row.batch_size)};
    if (!row.skipped.empty()) {
      c.push_back("skipped: " + row.skipped);
      cells.push_back(c);
      continue;
    }
    c.push_back(row.cuda_graphs ? "on" : "off");
    c.push_back(std::to_string(row.threads));
    c.push_back(fmt_num(row.seconds_per_call, "%.4g"));
    c.push_back(fmt_num(row.cpu_seconds_per_call, "%.4g"));
    c.push_back(fmt_num(row.calls_per_s));
    c.push_back(fmt_num(row.tflops));
    c.push_back(row.mfu >= 0 ? fmt_num(100.0 * row.mfu, "%.1f%%") : "-");
    c.push_back(row.e2e_steps > 0 ? fmt_num(row.tuples_per_s, "%.4g") : "-");
    c.push_back(fmt_bytes(row.peak_host_rss_bytes));
    c.push_back(fmt_bytes(row.peak_device_bytes));
    if (ref && row.reference) {
      const ReferenceFigures& f = *row.reference;
      c.push_back(fmt_num(f.seconds_per_call, "%.4g"));
      c.push_back(fmt_num(f.cpu_seconds_per_call, "%.4g"));
      c.push_back(row.e2e_steps > 0 ? fmt_num(f.tuples_per_s, "%.4g") : "-");
      c.push_back(fmt_bytes(f.peak_host_rss_bytes));
      c.push_back(fmt_bytes(f.peak_device_bytes));
      c.push_back(row.seconds_per_call > 0 ? fmt_num(f.seconds_per_call / row.seconds_per_call, "%.2f") : "-");
      c.push_back(row.e2e_steps > 0 && f.tuples_per_s > 0 ? fmt_num(row.tuples_per_s / f.tuples_per_s, "%.2f")
                                                          : "-");
    }
    cells.push_back(c);
  }
  // Column widths over the rows that fill every column (a skipped row's reason runs on).
  std::vector<size_t> width(head.size(), 0);
  for (const auto& row : cells) {
    if (row.size() < head.size()) continue;
    for (size_t i = 0; i < row.size(); ++i) width[i] = std::max(width[i], row[i].size());
  }
  std::string out;
  for (const auto& row : cells) {
    std::string line;
    for (size_t i = 0; i < row.size(); ++i) {
      std::string cell = row[i];
      if (i + 1 < row.size() && i < width.size()) cell.resize(std::max(width[i], cell.size()), ' ');
      line += (i ? "  " : "") + cell;
    }
    while (!line.empty() && line.back() == ' ') line.pop_back();
    out += line + "\n";
  }
  out += "models: " + r.models_dir + " (" + r.models_source + "), " + fmt_num(r.flops_per_call / 1e9, "%.4g") +
         " GFLOP per call per sample\n";
  out += "copgen " + r.copgen_version + ", LibTorch " + r.torch_version +
         ", BLAS: " + (r.blas.empty() ? "(none resolved)" : r.blas) +
         ", OMP_WAIT_POLICY " + (r.omp_wait_policy.empty() ? "unset" : r.omp_wait_policy) + ", load average " +
         r.load_average + "\n";
  std::string steps = std::to_string(r.options.sampling.sampler.steps);
  out += "timing: " + std::to_string(r.options.warmup) + " warm-up + " + std::to_string(r.options.repeat) +
         " timed network call(s) per batch size" +
         (r.options.end_to_end ? "; end to end: S2L1C -> S2L2A of <batch> synthetic tiles, " + steps + " steps" : "") +
         "\n";
  if (ref) {
    out += "reference: " + r.python + " scripts/research/reference_pipeline.py (x: copgen's speed over the reference's, wall clock)\n";
  }
  out += "cpu s/call: process CPU time of all threads per call (on a shared machine steadier than the wall clock)\n";
  return out;
}

}  // namespace copgen
