#include "copgen/runtime.hpp"

#include <dlfcn.h>
#include <malloc.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <thread>

#include <spdlog/sinks/sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>
#include <ATen/Version.h>
#include <torch/torch.h>

namespace copgen {

namespace {

std::atomic<bool> g_progress_drawn{false};  // a progress line is open on the terminal

// Ends an open progress line before a log line is written, so that the two never share a line.
class ProgressAwareSink final : public spdlog::sinks::sink {
 public:
  explicit ProgressAwareSink(std::shared_ptr<spdlog::sinks::sink> inner) : inner_(std::move(inner)) {}
  void log(const spdlog::details::log_msg& msg) override {
    end_progress_line();
    inner_->log(msg);
  }
  void flush() override { inner_->flush(); }
  void set_pattern(const std::string& pattern) override { inner_->set_pattern(pattern); }
  void set_formatter(std::unique_ptr<spdlog::formatter> formatter) override {
    inner_->set_formatter(std::move(formatter));
  }

 private:
  std::shared_ptr<spdlog::sinks::sink> inner_;
};

}  // namespace

void draw_progress_line(const std::string& text) {
  std::fprintf(stderr, "\r[copgen] %s   ", text.c_str());
  std::fflush(stderr);
  g_progress_drawn.store(true);
}

void end_progress_line() {
  if (g_progress_drawn.exchange(false)) {
    std::fputc('\n', stderr);
    std::fflush(stderr);
  }
}

std::string format_duration(double s) {
  if (!(s >= 0) || s > 1e7) return "--:--";
  const long t = static_cast<long>(s + 0.5);
  char buf[32];
  if (t >= 3600) {
    std::snprintf(buf, sizeof buf, "%ld:%02ld:%02ld", t / 3600, (t / 60) % 60, t % 60);
  } else {
    std::snprintf(buf, sizeof buf, "%ld:%02ld", t / 60, t % 60);
  }
  return buf;
}

void setup_logging(int verbosity, bool quiet) {
  if (spdlog::get("copgen") == nullptr) {
    auto sink = std::make_shared<ProgressAwareSink>(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
    auto logger = std::make_shared<spdlog::logger>("copgen", sink);
    logger->set_pattern("%^[copgen %l]%$ %v");
    spdlog::register_logger(logger);
    spdlog::set_default_logger(logger);
  }
  if (quiet) {
    spdlog::set_level(spdlog::level::warn);
  } else if (verbosity >= 2) {
    spdlog::set_level(spdlog::level::trace);
  } else if (verbosity == 1) {
    spdlog::set_level(spdlog::level::debug);
  } else {
    spdlog::set_level(spdlog::level::info);
  }
}

int configure_threads(int n) {
  if (n <= 0) n = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  torch::set_num_threads(n);
  return torch::get_num_threads();
}

bool keep_freed_host_memory() {
#ifdef __GLIBC__
  static const bool done = mallopt(M_MMAP_MAX, 0) == 1 && mallopt(M_TRIM_THRESHOLD, INT_MAX) == 1;
  return done;
#else
  return false;
#endif
}

bool release_freed_host_memory() {
#ifdef __GLIBC__
  return malloc_trim(0) == 1;
#else
  return false;
#endif
}

std::string user_environment_prefix() {
  const char* set = std::getenv(kDefaultedEnvMarker);
  if (set == nullptr || std::string(set) != "OMP_WAIT_POLICY") return "";
  return std::string("env -u OMP_WAIT_POLICY -u ") + kDefaultedEnvMarker + " ";
}

std::string omp_wait_policy() {
  const char* v = std::getenv("OMP_WAIT_POLICY");
  return v == nullptr ? "" : v;
}

std::string blas_library() {
  void* sym = dlsym(RTLD_DEFAULT, "sgemm_");
  if (sym == nullptr) return "";
  Dl_info info{};
  if (dladdr(sym, &info) == 0 || info.dli_fname == nullptr) return "";
  char resolved[PATH_MAX];
  if (realpath(info.dli_fname, resolved) != nullptr) return resolved;
  return info.dli_fname;
}

std::string torch_blas_info() {
  const std::string config = at::show_config();
  const std::string key = "BLAS_INFO=";
  const auto pos = config.find(key);
  if (pos == std::string::npos) return "";
  const auto begin = pos + key.size();
  const auto end = config.find_first_of(", \n", begin);
  return config.substr(begin, end == std::string::npos ? std::string::npos : end - begin);
}

std::vector<std::string> loaded_blas_libraries() {
  std::set<std::string> found;
  std::ifstream maps("/proc/self/maps");
  std::string line;
  while (std::getline(maps, line)) {
    const auto slash = line.find('/');
    if (slash == std::string::npos) continue;
    const std::string path = line.substr(slash);
    const std::string name = path.substr(path.rfind('/') + 1);
    for (const char* lib : {"libopenblas", "libblas", "liblapack", "libmkl", "libblis"}) {
      if (name.rfind(lib, 0) == 0) {
        char resolved[PATH_MAX];
        found.insert(realpath(path.c_str(), resolved) != nullptr ? std::string(resolved) : path);
        break;
      }
    }
  }
  return {found.begin(), found.end()};
}

bool is_reference_blas(const std::string& library) {
  if (library.empty()) return false;
  if (library.find("openblas") != std::string::npos || library.find("mkl") != std::string::npos ||
      library.find("blis") != std::string::npos || library.find("atlas") != std::string::npos) {
    return false;
  }
  // Debian's reference implementation: /usr/lib/<triplet>/blas/libblas.so.3.x
  return library.find("/blas/libblas") != std::string::npos ||
         library.find("libblas.so") != std::string::npos;
}

void warn_if_reference_blas() {
  const std::string lib = blas_library();
  spdlog::debug("BLAS: {}", lib.empty() ? "(sgemm_ not resolved; torch uses its own kernels)" : lib);
  if (is_reference_blas(lib)) {
    spdlog::warn(
        "torch is using the reference BLAS ({}), about 40 times slower on the CPU; install "
        "libopenblas0-pthread (scripts/dev/install_deps.sh does)",
        lib);
  }
}

}  // namespace copgen
