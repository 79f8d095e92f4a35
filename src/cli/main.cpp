// copgen's command line: parses arguments into the library's option structs (one file
// per subcommand, src/cli/cmd_*.cpp), runs the chosen one, and maps errors to exit codes.
// No algorithm lives here.
#include <alloca.h>
#include <unistd.h>

#include <atomic>
#include <csignal>
#include <cstdint>
#include <ctime>
#include <cstdlib>
#include <cstring>
#include <iostream>
#include <string>
#include <vector>

#include <spdlog/spdlog.h>

#include "common.hpp"
#include "copgen/cancel.hpp"
#include "copgen/error.hpp"
#include "copgen/provenance.hpp"
#include "copgen/runtime.hpp"
#include "copgen/version.hpp"

namespace {

// Runs before any shared library's constructor (ELF .preinit_array; executables only), so
// before libgomp reads its environment: when OMP_WAIT_POLICY is unset, copgen executes
// itself again at once with OMP_WAIT_POLICY=PASSIVE (plus a marker naming it, runtime.hpp).
// Idle OpenMP threads then sleep instead of spinning; torch's OpenMP pool and OpenBLAS's
// own threads otherwise fight for the same cores between operations (measured here: tiny
// backbone 0.066 -> 0.028 s per call, full-size 3.67 -> 3.14 s; docs/performance.md).
// setenv() cannot be used here: the C library resets its environment after this runs.
// A value the user set is kept; if the exec fails, copgen runs on with spinning threads.
void prefer_passive_openmp(int, char** argv, char** envp) {
  static const char kPolicy[] = "OMP_WAIT_POLICY=";
  std::size_t n = 0;
  for (; envp[n] != nullptr; ++n) {
    if (std::strncmp(envp[n], kPolicy, sizeof kPolicy - 1) == 0) return;
  }
  static char policy[] = "OMP_WAIT_POLICY=PASSIVE";
  static char marker[] = "COPGEN_DEFAULTED_ENV=OMP_WAIT_POLICY";
  char** env = static_cast<char**>(alloca((n + 3) * sizeof(char*)));
  for (std::size_t i = 0; i < n; ++i) env[i] = envp[i];
  env[n] = policy;
  env[n + 1] = marker;
  env[n + 2] = nullptr;
  execve("/proc/self/exe", argv, env);
}
__attribute__((section(".preinit_array"), used)) void (*const preinit_passive_openmp)(int, char**, char**) =
    &prefer_passive_openmp;

// When the first SIGINT/SIGTERM came (CLOCK_MONOTONIC, ns).
std::atomic<std::int64_t> g_first_signal_ns{0};

// The first signal asks copgen to stop (it finishes what it must and exits 130); a second
// one ends it at once, unless it comes within a second of the first: that is the same stop
// delivered twice (timeout(1) signals the child and then its process group; a terminal's
// Ctrl-C reaches every process of the job). Async-signal-safe.
void on_signal(int sig) {
  timespec ts{};
  clock_gettime(CLOCK_MONOTONIC, &ts);
  const std::int64_t now = static_cast<std::int64_t>(ts.tv_sec) * 1000000000 + ts.tv_nsec;
  if (!copgen::stop_requested()) {
    g_first_signal_ns.store(now);
    copgen::request_stop();
    return;
  }
  if (now - g_first_signal_ns.load() < 1000000000) return;
  std::signal(sig, SIG_DFL);
  std::raise(sig);
}

void install_signal_handlers() {
  struct sigaction sa {};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
}

// `copgen --version --verbose` (either order, -v for --verbose): nothing else on the line.
bool version_verbose(int argc, char** argv) {
  bool version = false, verbose = false;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    if (a == "--version") {
      version = true;
    } else if (a == "--verbose" || a == "-v") {
      verbose = true;
    } else {
      return false;
    }
  }
  return version && verbose;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace copgen;
  CLI::App app{"copgen: translate between Earth-observation modalities (DEM, S1RTC, S2L1C, S2L2A)\n"
               "with the COP-GEN-Beta diffusion model."};
  app.set_version_flag("--version", std::string("copgen ") + kVersion,
                       "Print the version and exit (with --verbose: also what `copgen info` prints)");
  app.require_subcommand(1);
  app.footer(cli::kExitCodesAndModels);

  cli::LogFlags log;
  const std::vector<cli::Command> commands = {
      cli::add_translate(app, log),
      cli::add_generate(app, log),
      cli::add_render(app, log),
      cli::add_metrics(app, log),
      cli::add_eval(app, log),
      cli::add_bench(app, log),
      cli::add_info(app, log),
  };

  setup_logging(0, false);  // usage errors are logged in the same style as every other error
  if (version_verbose(argc, argv)) {
    // `copgen --version --verbose`: the version line, then what `copgen info` prints
    configure_threads(0);
    std::cout << "copgen " << kVersion << "\n" << format_system_info(system_info()) << std::flush;
    return 0;
  }
  if (argc == 1) {
    // plain `copgen`: the usage, as a usage error
    std::cerr << app.help();
    return static_cast<int>(ErrorKind::Usage);
  }
  try {
    app.parse(argc, argv);
  } catch (const CLI::CallForHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForAllHelp& e) {
    return app.exit(e);
  } catch (const CLI::CallForVersion& e) {
    return app.exit(e);
  } catch (const CLI::ParseError& e) {
    std::string what = e.what();
    std::string help = "copgen --help";
    if (argc > 1 && argv[1][0] != '-' && app.get_subcommands().empty()) {
      // CLI11 only says "A subcommand is required"; name the word it did not know
      what = std::string("unknown command '") + argv[1] + "' (expected one of:";
      for (const cli::Command& c : commands) what += " " + c.app->get_name();
      what += ")";
    } else if (!app.get_subcommands().empty()) {
      help = "copgen " + app.get_subcommands().front()->get_name() + " --help";
    }
    spdlog::error("{}; see '{}'", what, help);
    return static_cast<int>(ErrorKind::Usage);
  }
  setup_logging(log.verbosity, log.quiet);
  install_signal_handlers();

  try {
    warn_if_reference_blas();
    for (const cli::Command& c : commands) {
      if (c.app->parsed()) return c.run();
    }
    return static_cast<int>(ErrorKind::Usage);
  } catch (const Error& e) {
    spdlog::error("{}", e.what());
    return e.exit_code();
  } catch (const c10::Error& e) {
    spdlog::error("torch: {}", e.what_without_backtrace());
    return 1;
  } catch (const std::bad_alloc&) {
    spdlog::error("out of memory; try a smaller --batch-size");
    return 1;
  } catch (const std::exception& e) {
    spdlog::error("{}", e.what());
    return 1;
  }
}
