#include "support.hpp"

#include "copgen/error.hpp"
#include "copgen/models.hpp"

#include "catch_torch.hpp"

#include <algorithm>
#include <array>
#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <random>
#include <sstream>
#include <stdexcept>

#include <gdal_priv.h>
#include <nlohmann/json.hpp>
#include <ogr_spatialref.h>
#include <ogr_srs_api.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

namespace fs = std::filesystem;

namespace copgen::test {

TempDir::TempDir() {
  std::string tmpl = (fs::temp_directory_path() / "copgen-test-XXXXXX").string();
  std::vector<char> buf(tmpl.begin(), tmpl.end());
  buf.push_back('\0');
  if (mkdtemp(buf.data()) == nullptr) throw std::runtime_error("mkdtemp failed");
  path = buf.data();
}

TempDir::~TempDir() {
  std::error_code ec;
  fs::permissions(path, fs::perms::owner_all, fs::perm_options::add, ec);
  fs::remove_all(path, ec);
}

copgen::Models& tiny_models() {
  static copgen::Models models = [] {
    copgen::ModelOptions o;
    o.device = "cpu";
    return copgen::Models::load(COPGEN_TEST_MODELS, o);
  }();
  return models;
}

void write_synthetic(const std::string& path, const SyntheticRaster& spec) {
  GDALAllRegister();
  GDALDriver* driver = GetGDALDriverManager()->GetDriverByName(spec.format.c_str());
  if (driver == nullptr) throw std::runtime_error("no GDAL driver " + spec.format);
  const GDALDataType type = GDALGetDataTypeByName(spec.data_type.c_str());
  // PNG/WebP cannot be created directly: build in memory and copy.
  GDALDriver* mem = GetGDALDriverManager()->GetDriverByName("MEM");
  GDALDataset* ds = mem->Create("", spec.width, spec.height, spec.bands, type, nullptr);
  std::mt19937 rng(static_cast<unsigned>(spec.seed));
  std::vector<double> row(static_cast<size_t>(spec.width));
  for (int b = 1; b <= spec.bands; ++b) {
    for (int y = 0; y < spec.height; ++y) {
      for (int x = 0; x < spec.width; ++x) {
        // a smooth pattern plus noise, within Byte range
        double v = 128 + 60 * std::sin(0.05 * x + 0.3 * b) * std::cos(0.04 * y) +
                   static_cast<double>(rng() % 40) - 20;
        row[static_cast<size_t>(x)] = v;
      }
      if (ds->GetRasterBand(b)->RasterIO(GF_Write, 0, y, spec.width, 1, row.data(), spec.width,
                                         1, GDT_Float64, 0, 0) != CE_None)
        throw std::runtime_error("RasterIO failed");
    }
  }
  if (spec.georeferenced) {
    std::array<double, 6> gt = spec.geotransform;
    ds->SetGeoTransform(gt.data());
    if (!spec.epsg.empty()) {
      OGRSpatialReference srs;
      srs.SetFromUserInput(spec.epsg.c_str());
      ds->SetSpatialRef(&srs);
    }
  }
  GDALDataset* out = driver->CreateCopy(path.c_str(), ds, FALSE, nullptr, nullptr, nullptr);
  GDALClose(ds);
  if (out == nullptr) throw std::runtime_error("CreateCopy failed for " + path);
  GDALClose(out);
}

CommandResult run_command(const std::string& command) {
  CommandResult r;
  std::string full = command + " 2>&1";
  FILE* pipe = popen(full.c_str(), "r");
  if (pipe == nullptr) throw std::runtime_error("popen failed");
  std::array<char, 4096> buf{};
  size_t n = 0;
  while ((n = fread(buf.data(), 1, buf.size(), pipe)) > 0) r.output.append(buf.data(), n);
  int status = pclose(pipe);
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  return r;
}

std::string quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) {
    if (c == '\'') q += "'\\''";
    else q += c;
  }
  return q + "'";
}

CommandResult run_copgen(const std::string& args) {
  return run_command("COPGEN_MODELS=" + quote(COPGEN_TEST_MODELS) + " " + quote(COPGEN_BIN) +
                     " " + args);
}

std::string read_file_bytes(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return "";
  std::ostringstream ss;
  ss << f.rdbuf();
  return ss.str();
}

bool file_exists(const std::string& path) { return fs::exists(path); }

std::vector<std::string> list_dir(const std::string& path) {
  std::vector<std::string> names;
  if (!fs::exists(path)) return names;
  for (const auto& e : fs::directory_iterator(path)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

std::string bin() { return quote(COPGEN_BIN); }
std::string models_env() { return "COPGEN_MODELS=" + quote(COPGEN_TEST_MODELS) + " "; }

std::vector<std::string> file_names_under(const std::string& dir) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) out.push_back(fs::relative(e.path(), dir).string());
  std::sort(out.begin(), out.end());
  return out;
}

CommandResult expect_failure(const std::string& command, int exit_code, const std::vector<std::string>& says,
                             const std::string& dir) {
  const std::vector<std::string> before = file_names_under(dir);
  CommandResult r = run_command(command);
  INFO(command);
  INFO(r.output);
  CHECK(r.exit_code == exit_code);
  for (const std::string& s : says) CHECK_THAT(r.output, Catch::Contains(s));
  CHECK(file_names_under(dir) == before);
  return r;
}

CommandResult expect_copgen_failure(const std::string& args, int exit_code, const std::vector<std::string>& says,
                                    const std::string& dir) {
  return expect_failure(models_env() + bin() + " " + args, exit_code, says, dir);
}

std::optional<std::string> unprivileged_prefix(const std::string& dir) {
  if (::geteuid() != 0) return std::string();
  if (run_command("command -v setpriv").exit_code != 0) return std::nullopt;
  fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                           fs::perms::others_read | fs::perms::others_exec);
  return std::string("setpriv --reuid=65534 --regid=65534 --clear-groups ");
}

long dead_pid() {
  for (long p = 4000000; p > 1000; --p) {
    if (::kill(static_cast<pid_t>(p), 0) != 0 && errno == ESRCH) return p;
  }
  return -1;
}

bool built_with_asan() {
#if defined(__SANITIZE_ADDRESS__)
  return true;
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
  return true;
#endif
#endif
  return false;
}

LocalServer::LocalServer(const std::string& dir, const std::string& work, int fail_first) {
  fs::create_directories(work);
  stats_ = work + "/stats.json";
  const std::string port_file = work + "/port";
  const auto r = run_command(std::string(COPGEN_PYTHON) + " " +
                             quote(std::string(COPGEN_SOURCE_DIR) + "/tests/python/range_server.py") + " --dir " +
                             quote(dir) + " --port-file " + quote(port_file) + " --stats " + quote(stats_) +
                             " --fail " + std::to_string(fail_first) + " > /dev/null 2>&1 & echo $!");
  pid_ = std::stol(r.output);
  for (int i = 0; i < 200 && !file_exists(port_file); ++i) run_command("sleep 0.05");
  if (!file_exists(port_file)) throw std::runtime_error("range_server.py did not start");
  http_ = "http://127.0.0.1:" + read_file_bytes(port_file);
}

LocalServer::~LocalServer() { run_command("kill " + std::to_string(pid_)); }

std::pair<long, long> LocalServer::served() const {
  const auto j = nlohmann::json::parse(read_file_bytes(stats_));
  return {j["requests"].get<long>(), j["bytes"].get<long>()};
}

TroubleServer::TroubleServer(const std::string& work) {
  fs::create_directories(work);
  const std::string port_file = work + "/trouble-port";
  const auto r = run_command(std::string(COPGEN_PYTHON) + " " +
                             quote(std::string(COPGEN_SOURCE_DIR) + "/tests/python/trouble_server.py") +
                             " --port-file " + quote(port_file) + " > /dev/null 2>&1 & echo $!");
  pid_ = std::stol(r.output);
  for (int i = 0; i < 200 && !file_exists(port_file); ++i) run_command("sleep 0.05");
  if (!file_exists(port_file)) throw std::runtime_error("trouble_server.py did not start");
  http_ = "http://127.0.0.1:" + read_file_bytes(port_file);
}

TroubleServer::~TroubleServer() { run_command("kill " + std::to_string(pid_)); }

std::string error_message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const copgen::Error& e) {
    return std::to_string(e.exit_code()) + ": " + e.what();
  }
  return "";
}

void set_epsg(void* dataset, int epsg) {
  OGRSpatialReferenceH srs = OSRNewSpatialReference(nullptr);
  OSRImportFromEPSG(srs, epsg);
  char* wkt = nullptr;
  OSRExportToWkt(srs, &wkt);
  GDALSetProjection(static_cast<GDALDatasetH>(dataset), wkt);
  CPLFree(wkt);
  OSRDestroySpatialReference(srs);
}

Ds::Ds(const std::string& path) {
  GDALAllRegister();
  ds = static_cast<GDALDataset*>(GDALOpen(path.c_str(), GA_ReadOnly));
}

Ds::~Ds() {
  if (ds) GDALClose(ds);
}

std::vector<std::uint8_t> band(GDALDataset* ds, int b) {
  std::vector<std::uint8_t> v(static_cast<size_t>(ds->GetRasterXSize()) * ds->GetRasterYSize());
  REQUIRE(ds->GetRasterBand(b)->RasterIO(GF_Read, 0, 0, ds->GetRasterXSize(), ds->GetRasterYSize(), v.data(),
                                         ds->GetRasterXSize(), ds->GetRasterYSize(), GDT_Byte, 0, 0) == CE_None);
  return v;
}

}  // namespace copgen::test
