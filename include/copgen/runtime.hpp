// Process-wide runtime set-up: logging and the terminal progress line, CPU threads, freed
// host memory kept for reuse, the environment copgen set for itself, and the BLAS check.
#pragma once

#include <chrono>
#include <string>
#include <vector>

namespace copgen {

// spdlog to stderr. verbosity 0: info, 1: debug, 2+: trace; quiet: warnings and errors only.
void setup_logging(int verbosity, bool quiet);

// Sets torch's intra-op threads (n <= 0: every core). Returns the number in use.
int configure_threads(int n);

// Makes the C library keep freed host memory for reuse instead of handing it back to the
// system (glibc: no mmap for large blocks, no trimming). Every CPU network call allocates
// and frees the same large activation tensors; by default glibc maps each block over its
// threshold afresh and the kernel zero-fills every page on first touch, about a quarter of
// a full-size backbone call's CPU time. Process-wide; call it once the models are loaded
// (loading a model through it would raise the peak memory). Returns false where it does
// not apply (not glibc).
bool keep_freed_host_memory();
// Hands the C library's free host memory back to the system (glibc: malloc_trim(0), which
// also releases free pages inside the heap). Models::load calls it after casting and moving
// the weights and before keep_freed_host_memory(), so that the weights' superseded copies
// (fp32 before a cast to bf16, CPU before a move to CUDA) do not stay resident. Returns
// false where it does not apply (not glibc) or nothing was released.
bool release_freed_host_memory();

// The copgen executable sets OMP_WAIT_POLICY=PASSIVE before the libraries start, unless the
// user set it (src/cli/main.cpp), and then names it in this variable, so that child
// processes that should see the user's environment (the reference pipeline of
// `copgen bench --compare-reference`) can be given it back.
inline constexpr const char* kDefaultedEnvMarker = "COPGEN_DEFAULTED_ENV";
// A shell prefix that undoes what copgen set ("env -u OMP_WAIT_POLICY -u ... "), or "".
std::string user_environment_prefix();
// OMP_WAIT_POLICY as this process runs with it ("" when unset).
std::string omp_wait_policy();

// The shared library that provides sgemm_ to this process (resolved path), or "" if none.
std::string blas_library();
// The BLAS LibTorch was built against, as its build configuration names it (BLAS_INFO of
// at::show_config(), e.g. "open" or "mkl"), or "" when it names none.
std::string torch_blas_info();
// The BLAS and LAPACK libraries mapped into this process (/proc/self/maps: libopenblas,
// libblas, liblapack, libmkl, libblis), resolved paths, sorted, each once.
std::vector<std::string> loaded_blas_libraries();
// True when that library is the slow reference BLAS (Debian's libblas3), not OpenBLAS/MKL.
bool is_reference_blas(const std::string& library);
// Logs a warning when torch runs on the reference BLAS (about 40 times slower here).
void warn_if_reference_blas();

// A progress line on the terminal (stderr): drawn in place ("\r[copgen] TEXT"), and ended
// with a newline before the next log line or by end_progress_line().
void draw_progress_line(const std::string& text);
void end_progress_line();
// "m:ss" or "h:mm:ss"; "--:--" for a negative or unknown time.
std::string format_duration(double seconds);

}  // namespace copgen
