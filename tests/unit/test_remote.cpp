// copgen/remote.hpp against tests/python/trouble_server.py: bodies that never end, servers that
// stall, error statuses, redirects, and the wiring into raster_io (read_text, open_raster).
#include "catch_torch.hpp"

#include <chrono>
#include <cstdint>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <thread>

#include "copgen/cancel.hpp"
#include "copgen/error.hpp"
#include "copgen/raster_io.hpp"
#include "copgen/remote.hpp"
#include "support.hpp"

using namespace copgen;
using copgen::test::TempDir;
using copgen::test::TroubleServer;

namespace {

// Sets an environment variable for the scope; the previous value (or its absence) comes back.
class ScopedEnv {
 public:
  ScopedEnv(const char* name, const char* value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = std::string(old);
    if (value != nullptr) {
      ::setenv(name, value, 1);
    } else {
      ::unsetenv(name);
    }
  }
  ~ScopedEnv() {
    if (old_) {
      ::setenv(name_.c_str(), old_->c_str(), 1);
    } else {
      ::unsetenv(name_.c_str());
    }
  }
  ScopedEnv(const ScopedEnv&) = delete;
  ScopedEnv& operator=(const ScopedEnv&) = delete;

 private:
  std::string name_;
  std::optional<std::string> old_;
};

// The message of the InputError that `f` throws ("" when it throws none, which fails the test).
template <class F>
std::string input_error_of(F f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  FAIL("no InputError");
  return "";
}

// A field of /proc/self/status in kB ("VmRSS:", "VmHWM:"); -1 when absent.
long status_kb(const std::string& key) {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line)) {
    if (line.rfind(key, 0) == 0) return std::stol(line.substr(key.size()));
  }
  return -1;
}

// Resets the peak RSS (VmHWM) to the current RSS; false where the kernel does not allow it.
bool reset_peak_rss() {
  std::ofstream f("/proc/self/clear_refs");
  f << "5";
  f.flush();
  return static_cast<bool>(f);
}

// Requests a stop after `delay` from another thread; joins it and clears the stop request when
// the scope ends, whatever the test did.
class StopLater {
 public:
  explicit StopLater(std::chrono::milliseconds delay)
      : thread_([delay] {
          std::this_thread::sleep_for(delay);
          request_stop();
        }) {}
  ~StopLater() {
    thread_.join();
    reset_stop();
  }
  StopLater(const StopLater&) = delete;
  StopLater& operator=(const StopLater&) = delete;

 private:
  std::thread thread_;
};

double seconds_since(std::chrono::steady_clock::time_point start) {
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

}  // namespace

TEST_CASE("remote: is_http_url takes http and https only", "[remote]") {
  CHECK(is_http_url("http://example.com/a.json"));
  CHECK(is_http_url("HTTPS://example.com/a.json"));
  CHECK_FALSE(is_http_url("ftp://example.com/a.json"));
  CHECK_FALSE(is_http_url("file:///etc/passwd"));
  CHECK_FALSE(is_http_url("/vsicurl/http://example.com/a.tif"));
  CHECK_FALSE(is_http_url("http://"));
}

TEST_CASE("remote: fetch_text reads a document directly and through a redirect", "[remote]") {
  TempDir tmp;
  TroubleServer server(tmp.file("server"));
  CHECK(fetch_text(server.url("/ok.json"), "STAC item") == "{\"ok\": true}");
  CHECK(fetch_text(server.url("/redirect-ok"), "STAC item") == "{\"ok\": true}");
}

TEST_CASE("remote: a redirect to a file URL is refused with its status and location", "[remote]") {
  TempDir tmp;
  TroubleServer server(tmp.file("server"));
  const std::string m = input_error_of([&] { fetch_text(server.url("/redirect-file"), "STAC item"); });
  CHECK_THAT(m, Catch::Contains("STAC item '" + server.url("/redirect-file") + "'"));
  CHECK_THAT(m, Catch::Contains("302"));
  CHECK_THAT(m, Catch::Contains("file:///etc/passwd"));
  const std::string loop = input_error_of([&] { fetch_text(server.url("/redirect-loop"), "STAC item"); });
  CHECK_THAT(loop, Catch::Contains("302") && Catch::Contains("10 redirects"));
}

TEST_CASE("remote: an HTTP error names its status and only 404 is a missing file", "[remote]") {
  TempDir tmp;
  TroubleServer server(tmp.file("server"));
  ScopedEnv retry("GDAL_HTTP_MAX_RETRY", nullptr);
  const std::string m500 = input_error_of([&] { fetch_text(server.url("/status/500"), "STAC item"); });
  CHECK_THAT(m500, Catch::Contains("HTTP 500 (Internal Server Error)"));
  CHECK_THAT(m500, !Catch::Contains("not found", Catch::CaseSensitive::No));
  CHECK_THAT(m500, Catch::Contains("GDAL_HTTP_MAX_RETRY"));  // unset: the advice to set it
  const std::string m404 = input_error_of([&] { fetch_text(server.url("/status/404"), "STAC item"); });
  CHECK_THAT(m404, Catch::Contains("HTTP 404"));
}

TEST_CASE("remote: GDAL_HTTP_MAX_RETRY retries a 503 and the error counts the tries", "[remote]") {
  TempDir tmp;
  TroubleServer server(tmp.file("server"));
  ScopedEnv retry("GDAL_HTTP_MAX_RETRY", "2");
  ScopedEnv delay("GDAL_HTTP_RETRY_DELAY", "0.1");
  const std::string m = input_error_of([&] { fetch_text(server.url("/status/503"), "STAC item"); });
  CHECK_THAT(m, Catch::Contains("HTTP 503 (Service Unavailable)"));
  CHECK_THAT(m, Catch::Contains("3 tries"));
  CHECK_THAT(m, !Catch::Contains("GDAL_HTTP_MAX_RETRY"));  // set by the user: no advice
  const std::string m404 = input_error_of([&] { fetch_text(server.url("/status/404"), "STAC item"); });
  CHECK_THAT(m404, !Catch::Contains("tries"));  // not retried
}

TEST_CASE("remote: an endless body stops at COPGEN_MAX_JSON_MB in bounded memory", "[remote]") {
  TempDir tmp;
  TroubleServer server(tmp.file("server"));
  ScopedEnv limit("COPGEN_MAX_JSON_MB", "1");
  CHECK(remote_text_limit() == std::uint64_t{1} << 20);
  // VmHWM is the peak since the process started (or since the last reset): reset it to the
  // current RSS first, so that its growth is that of this read alone.
  const bool measured = reset_peak_rss();
  const long rss_before = status_kb("VmRSS:");
  const std::string m = input_error_of([&] { fetch_text(server.url("/endless.json"), "STAC item"); });
  const long peak_after = status_kb("VmHWM:");
  CHECK_THAT(m, Catch::Contains("STAC item '" + server.url("/endless.json") + "'"));
  CHECK_THAT(m, Catch::Contains("more than 1 MiB"));
  CHECK_THAT(m, Catch::Contains("COPGEN_MAX_JSON_MB"));
  if (measured && rss_before > 0 && peak_after > 0) {
    INFO("peak RSS " << peak_after << " kB, RSS before " << rss_before << " kB");
    CHECK(peak_after - rss_before < 64 * 1024);
  } else {
    WARN("/proc/self/clear_refs cannot reset the peak RSS here: memory not checked");
  }
  // a Content-Length over the limit is refused before the body is read
  const std::string big = input_error_of([&] { fetch_text(server.url("/big.json"), "STAC item"); });
  CHECK_THAT(big, Catch::Contains("more than 1 MiB"));
}

TEST_CASE("remote: COPGEN_MAX_JSON_MB must be a positive whole number", "[remote]") {
  for (const char* bad : {"abc", "0", "-3", "1.5"}) {
    ScopedEnv limit("COPGEN_MAX_JSON_MB", bad);
    INFO(bad);
    CHECK_THROWS_AS(remote_text_limit(), UsageError);
    CHECK_THROWS_WITH(fetch_text("http://127.0.0.1:9/x.json", "STAC item"), Catch::Contains("COPGEN_MAX_JSON_MB"));
  }
  ScopedEnv unset("COPGEN_MAX_JSON_MB", nullptr);
  CHECK(remote_text_limit() == std::uint64_t{512} << 20);
}

TEST_CASE("remote: a stop request ends a stalled read at once", "[remote]") {
  TempDir tmp;
  TroubleServer server(tmp.file("server"));
  const auto start = std::chrono::steady_clock::now();
  {
    StopLater stop(std::chrono::milliseconds(500));
    CHECK_THROWS_AS(fetch_text(server.url("/stall"), "STAC item"), Interrupted);
  }
  CHECK(seconds_since(start) < 5);  // not the 60 s stall limit
  CHECK_FALSE(stop_requested());
}

TEST_CASE("remote: a server that sends nothing is given up on after GDAL_HTTP_LOW_SPEED_TIME", "[remote]") {
  TempDir tmp;
  TroubleServer server(tmp.file("server"));
  ScopedEnv stall("GDAL_HTTP_LOW_SPEED_TIME", "1");
  ScopedEnv retry("GDAL_HTTP_MAX_RETRY", nullptr);
  for (const std::string path : {"/stall", "/stall-body.json"}) {
    INFO(path);
    const auto start = std::chrono::steady_clock::now();
    const std::string m = input_error_of([&] { fetch_text(server.url(path), "STAC item"); });
    CHECK_THAT(m, Catch::Contains("STAC item '" + server.url(path) + "'"));
    CHECK_THAT(m, Catch::Contains("sent nothing for 1 s"));
    CHECK_THAT(m, Catch::Contains("GDAL_HTTP_LOW_SPEED_TIME"));
    CHECK(seconds_since(start) < 10);
  }
}

TEST_CASE("remote: probe_remote_raster reads the size of a file served by byte ranges", "[remote]") {
  TempDir tmp;
  TroubleServer server(tmp.file("server"));
  const RemoteProbe p = probe_remote_raster(server.url("/ranged.tif"), "S2L2A input");
  CHECK(p.size == 100000);
  CHECK(p.ranges);
}

TEST_CASE("remote: probe_remote_raster refuses a body of unknown size", "[remote]") {
  TempDir tmp;
  TroubleServer server(tmp.file("server"));
  for (const std::string path : {"/nolength.tif", "/endless.tif"}) {
    INFO(path);
    const std::string m = input_error_of([&] { probe_remote_raster(server.url(path), "S2L2A input"); });
    CHECK_THAT(m, Catch::Contains("S2L2A input '" + server.url(path) + "'"));
    CHECK_THAT(m, Catch::Contains("does not say how large"));
  }
}

TEST_CASE("remote: probe_remote_raster refuses an HTML page", "[remote]") {
  TempDir tmp;
  TroubleServer server(tmp.file("server"));
  const std::string m = input_error_of([&] { probe_remote_raster(server.url("/html.tif"), "S2L2A input"); });
  CHECK_THAT(m, Catch::Contains("not a raster (the server sent HTML)"));
}

TEST_CASE("remote: read_text and probe_raster read /vsicurl/ URLs through the bounded reader", "[remote]") {
  TempDir tmp;
  TroubleServer server(tmp.file("server"));
  CHECK(read_text("/vsicurl/" + server.url("/ok.json"), "STAC item") == "{\"ok\": true}");
  ScopedEnv limit("COPGEN_MAX_JSON_MB", "1");
  const std::string m = input_error_of([&] { read_text("/vsicurl/" + server.url("/endless.json"), "STAC item"); });
  CHECK_THAT(m, Catch::StartsWith("STAC item '" + server.url("/endless.json") + "'"));
  CHECK_THAT(m, Catch::Contains("more than 1 MiB"));
  // a raster over HTTP is probed before GDAL opens it, also inside a vrt:// connection string
  for (const std::string& path : {"/vsicurl/" + server.url("/endless.tif"),
                                 "vrt:///vsicurl/" + server.url("/endless.tif") + "?bands=1"}) {
    INFO(path);
    const std::string p = input_error_of([&] { probe_raster(path, "S2L2A input"); });
    CHECK_THAT(p, Catch::Contains("S2L2A input '" + server.url("/endless.tif") + "'"));
    CHECK_THAT(p, Catch::Contains("does not say how large"));
  }
}

TEST_CASE("remote: read_text of a local file applies the same limit", "[remote]") {
  TempDir tmp;
  {
    std::ofstream f(tmp.file("big.json"), std::ios::binary);
    f << "{\"a\":\"" << std::string(2 << 20, 'x') << "\"}";
  }
  ScopedEnv limit("COPGEN_MAX_JSON_MB", "1");
  const std::string m = input_error_of([&] { read_text(tmp.file("big.json"), "STAC item"); });
  CHECK_THAT(m, Catch::Contains("more than 1 MiB"));
  CHECK_THAT(m, Catch::Contains("COPGEN_MAX_JSON_MB"));
  ScopedEnv unset("COPGEN_MAX_JSON_MB", nullptr);
  CHECK(read_text(tmp.file("big.json"), "STAC item").size() == (2u << 20) + 8);
}
