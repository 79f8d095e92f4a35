// Shared test fixtures: temporary directories, synthetic GeoTIFFs, running the binary.
#pragma once

#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <utility>
#include <vector>

class GDALDataset;

namespace copgen {
class Models;
}

namespace copgen::test {

// The tiny test models (COPGEN_TEST_MODELS) on the CPU, loaded once per test binary.
copgen::Models& tiny_models();

// A fresh empty directory under the system temp dir, removed by the destructor.
struct TempDir {
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path;
  std::string file(const std::string& name) const { return path + "/" + name; }
};

// A synthetic georeferenced raster written with GDAL directly (independent of the
// library under test). Pixels are a deterministic pattern of `seed`.
struct SyntheticRaster {
  int width = 256;
  int height = 256;
  int bands = 3;
  std::string data_type = "Byte";   // GDAL type name
  std::string format = "GTiff";
  std::string epsg = "EPSG:32633";  // empty: no CRS
  bool georeferenced = true;
  std::array<double, 6> geotransform{500000.0, 10.0, 0.0, 5000000.0, 0.0, -10.0};
  int seed = 1;
};
void write_synthetic(const std::string& path, const SyntheticRaster& spec);

// A raster opened read-only with GDAL for checks; ds is null when it does not open.
struct Ds {
  explicit Ds(const std::string& path);
  ~Ds();
  Ds(const Ds&) = delete;
  Ds& operator=(const Ds&) = delete;
  GDALDataset* ds = nullptr;
};
// Sets the CRS of a GDAL dataset (a GDALDatasetH) to EPSG:`epsg`.
void set_epsg(void* dataset, int epsg);
// Band b (1-based) of ds, read whole as bytes.
std::vector<std::uint8_t> band(GDALDataset* ds, int b);

// Runs a shell command; captures combined stdout+stderr.
struct CommandResult {
  int exit_code = -1;
  std::string output;
};
CommandResult run_command(const std::string& command);

// Runs the copgen binary under test with `args` (already shell-quoted where needed),
// with COPGEN_MODELS pointing at the tiny test models.
CommandResult run_copgen(const std::string& args);

// Shell-quotes one argument.
std::string quote(const std::string& s);

// ---- end-to-end checks --------------------------------------------------------------

// The binary under test (shell-quoted) and the environment naming the tiny test models.
std::string bin();
std::string models_env();

// Every file and folder under `dir`, recursively, relative to it, sorted.
std::vector<std::string> file_names_under(const std::string& dir);

// Runs `command` (a full shell command) and checks the exit code, that the output
// contains every one of `says`, and that nothing under `dir` changed in name.
CommandResult expect_failure(const std::string& command, int exit_code, const std::vector<std::string>& says,
                             const std::string& dir);
// The same for the copgen binary with `args`.
CommandResult expect_copgen_failure(const std::string& args, int exit_code, const std::vector<std::string>& says,
                                    const std::string& dir);

// As root, file permissions stop nothing; the binary is then run as nobody instead
// (setpriv, from util-linux) and `dir` is opened up so that nobody can reach the files
// meant to be reachable. Returns the command prefix ("" when not root); empty optional
// when that is not possible (root without setpriv).
std::optional<std::string> unprivileged_prefix(const std::string& dir);

bool built_with_asan();

// A pid no process has (the owner of a "killed" run's leftovers); -1 if none is found.
long dead_pid();

// Whole file as bytes ("" if missing).
// tests/python/range_server.py on the loopback, serving the files of `dir` over HTTP with
// byte ranges and counting what it served; `work` holds its port and statistics files.
// Stopped with the object.
class LocalServer {
 public:
  LocalServer(const std::string& dir, const std::string& work, int fail_first = 0);
  ~LocalServer();
  LocalServer(const LocalServer&) = delete;
  LocalServer& operator=(const LocalServer&) = delete;
  const std::string& http() const { return http_; }  // "http://127.0.0.1:PORT"
  std::string url() const { return "/vsicurl/" + http_; }
  // {requests, body bytes} served so far
  std::pair<long, long> served() const;

 private:
  std::string stats_;
  std::string http_;
  long pid_ = 0;
};

// tests/python/trouble_server.py on the loopback: paths that misbehave (endless bodies, stalls,
// error statuses, redirects; the script lists them); `work` holds its port file. Stopped with
// the object.
class TroubleServer {
 public:
  explicit TroubleServer(const std::string& work);
  ~TroubleServer();
  TroubleServer(const TroubleServer&) = delete;
  TroubleServer& operator=(const TroubleServer&) = delete;
  const std::string& http() const { return http_; }  // "http://127.0.0.1:PORT"
  std::string url(const std::string& path) const { return http_ + path; }  // path: "/ok.json"

 private:
  std::string http_;
  long pid_ = 0;
};

// GDAL's settings for reading over HTTP without probing for sidecar files, retrying a
// failed request twice.
inline const std::string kRemoteEnv =
    "GDAL_DISABLE_READDIR_ON_OPEN=EMPTY_DIR CPL_VSIL_CURL_ALLOWED_EXTENSIONS=.tif,.json GDAL_HTTP_MAX_RETRY=2 "
    "GDAL_HTTP_RETRY_DELAY=0.1 ";

// "CODE: message" of the copgen::Error that f throws (CODE: its exit code); "" when f
// throws none.
std::string error_message_of(const std::function<void()>& f);

std::string read_file_bytes(const std::string& path);
bool file_exists(const std::string& path);
// Names in a directory (not recursive), sorted.
std::vector<std::string> list_dir(const std::string& path);

}  // namespace copgen::test
