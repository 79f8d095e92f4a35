// Speed measurement: network calls per second, tuples per second end to end, peak
// memory and model FLOP utilisation, for each device x precision x batch size, with an
// optional side-by-side run of the reference Python pipeline
// (scripts/research/reference_pipeline.py) on the same models and machine.
//
//   copgen::BenchOptions o;
//   o.models_dir = "models/cop-gen-beta";
//   o.batch_sizes = {1, 4, 16};
//   copgen::BenchReport r = copgen::run_bench(o);
//   std::cout << copgen::format_bench_table(r);
//   std::ofstream("bench.json") << copgen::bench_to_json(r).dump(2);
//
// Network calls: one backbone call of a batch of B random latents, `warmup` untimed
// calls then `repeat` timed ones (the device is synchronised before the clock stops).
// End to end: a translation S2L1C -> S2L2A of B synthetic in-memory tiles through
// sample_tuples (encode, draw, `steps` solver calls, decode), after one untimed run of the
// same shape with a single step. A benchmark never fails on time; it reports figures.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "copgen/models.hpp"
#include "copgen/tuples.hpp"

namespace copgen {

struct BenchOptions {
  std::string models_dir;                          // --models
  std::vector<std::string> devices = {"auto"};     // --devices: auto, cpu, cuda, cuda:N
  std::vector<Precision> precisions = {Precision::Auto};  // --precisions
  std::vector<int> batch_sizes = {1, 4, 16};       // --batch-sizes: samples per network call
  int warmup = 1;                                  // --warmup: untimed calls before timing
  int repeat = 3;                                  // --repeat: timed network calls per batch size
  SamplingOptions sampling;                        // the end-to-end run's: --steps, --seed (unset: 0); the
                                                   // network calls take --batch-sizes instead of batch_size
  bool end_to_end = true;                          // --no-end-to-end: network calls only
  bool cuda_graphs = true;                         // --cuda-graphs on|off (CUDA only)
  Precision ae_precision = Precision::Auto;        // --ae-precision of the end-to-end run (auto: fp32)
  bool tf32 = false;                               // --tf32 on|off (CUDA only)
  double peak_tflops = 0.0;                        // --peak-tflops: device peak; 0: no utilisation
  bool compare_reference = false;                  // --compare-reference
  std::string python;                              // --python; "": /usr/bin/python3, else python3
  std::string reference_script;                    // --reference-script; "": installed, else source tree
  bool reference_autocast = true;                  // --reference-autocast on|off: the reference runs
                                                   // bf16/fp16 under torch.autocast, as its code does
};

// Throws UsageError naming the flag: empty lists, batch sizes < 1, repeat < 1, warmup < 0,
// steps < 1, peak_tflops < 0.
void validate(const BenchOptions& options);

// Figures of the reference pipeline for one configuration (from its JSON).
struct ReferenceFigures {
  double seconds_per_call = 0.0;
  double cpu_seconds_per_call = 0.0;  // process CPU time (all threads)
  double tuples_per_s = 0.0;  // 0 when not measured
  double e2e_seconds = 0.0;
  double e2e_cpu_seconds = 0.0;
  std::int64_t peak_host_rss_bytes = -1;        // as copgen's row measures it (VmHWM after loading)
  std::int64_t peak_device_bytes = -1;          // CUDA: peak reserved; -1 on the CPU
  std::int64_t peak_device_allocated_bytes = -1;  // CUDA: peak allocated; -1 on the CPU
};

struct BenchRow {
  std::string device;            // as resolved: "cpu", "cuda:0"
  std::string precision;         // "fp32", "bf16", "fp16"
  int batch_size = 0;
  std::string skipped;           // non-empty: why this configuration was not measured
  bool cuda_graphs = false;      // backbone calls replayed as CUDA graphs
  int threads = 0;               // torch intra-op threads during the measurement
  int timed_calls = 0;
  double seconds_per_call = 0.0;  // one backbone call of the whole batch (wall clock)
  double cpu_seconds_per_call = 0.0;  // process CPU time per call, all threads: on a shared
                                      // machine less sensitive to other load than the wall clock
  double calls_per_s = 0.0;       // backbone calls (of B samples) per second
  double sample_calls_per_s = 0.0;  // B * calls_per_s
  double tflops = 0.0;              // achieved, from the manifest's FLOPs per call
  double mfu = -1.0;                // tflops / peak_tflops; -1 without --peak-tflops
  int e2e_steps = 0;                // 0: no end-to-end run
  RunCost e2e_cost;                 // of the timed end-to-end run, as counted (conditioning.hpp)
  double e2e_seconds = 0.0;
  double e2e_cpu_seconds = 0.0;
  double tuples_per_s = 0.0;
  std::int64_t peak_host_rss_bytes = -1;  // peak resident set of the process in this configuration
  std::int64_t peak_device_bytes = -1;    // CUDA caching allocator's peak reserved bytes (tensors,
                                          // cached blocks, CUDA graph pools); -1 on the CPU
  std::int64_t peak_device_allocated_bytes = -1;  // of which allocated to tensors at the peak; -1 on the CPU
  std::string ae_precision;               // the autoencoder's ("fp32" unless --ae-precision)
  std::optional<ReferenceFigures> reference;  // with --compare-reference
};

struct BenchReport {
  std::string copgen_version;
  std::string torch_version;
  std::string blas;               // library providing sgemm_, "" if none
  std::string omp_wait_policy;    // OMP_WAIT_POLICY copgen ran with (the reference gets the user's)
  std::string models_dir;
  std::string models_sha256;
  std::string models_source;
  double flops_per_call = 0.0;    // per sample
  double peak_tflops = 0.0;
  std::string load_average;       // "1.23 0.98 0.75" when the run started
  std::string python;             // interpreter of the reference, when compared
  nlohmann::json environment;     // to_json(system_info(models_dir)): what `copgen info` reports
  BenchOptions options;
  std::vector<BenchRow> rows;
};

// Progress lines ("cpu fp32 batch 4: ...") for the log.
using BenchLog = std::function<void(const std::string&)>;

// Runs every configuration in order device, precision, batch size. A device/precision
// pair the machine cannot run (bf16 on the CPU, an absent GPU) becomes skipped rows;
// when every pair is skipped, throws UsageError naming --devices/--precisions. Model
// errors, and a failing reference pipeline (RuntimeError with its output), propagate.
BenchReport run_bench(const BenchOptions& options, const BenchLog& log = {});

nlohmann::json bench_to_json(const BenchReport& report);
// A fixed-width table: one line per row, then the machine and model notes.
std::string format_bench_table(const BenchReport& report);
// The figures as an SVG chart (bench --svg; src/bench_chart.cpp): backbone calls per
// second, and with --peak-tflops the MFU in percent, one bar per measured row
// (<rect class="bar copgen" data-row="i">; skipped rows have none), the reference's bar
// beside it (class "bar reference") with --compare-reference. Valid standalone XML.
std::string bench_svg(const BenchReport& report);

// CPU time (user + system, every thread) this process has used, in seconds.
double process_cpu_seconds();

// Peak resident set size of this process in bytes (VmHWM), -1 if unknown; and a reset of
// that peak to the current size (Linux >= 4.0; returns false where it cannot).
std::int64_t peak_host_rss_bytes();
bool reset_peak_host_rss();

// B deterministic synthetic uint8 tiles [B, 3, S, S] (a smooth pattern that differs per
// tile), the inputs of the end-to-end run; the reference pipeline is given the same.
torch::Tensor synthetic_tiles(std::int64_t b, std::int64_t size);

// The reference pipeline script: `explicit_path` when given (must exist), else the
// installed one, else the source tree's. Throws UsageError naming --reference-script.
std::string find_reference_script(const std::string& explicit_path);

}  // namespace copgen
