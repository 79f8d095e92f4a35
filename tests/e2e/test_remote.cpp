// End-to-end: remote reads bounded and interruptible (issue 20; src/remote.cpp), through the
// real binary against servers on the loopback: tests/python/trouble_server.py for the paths
// that misbehave (endless bodies, stalls, error statuses) and tests/python/range_server.py for
// the STAC items that name them. Every copgen run here is bounded by timeout(1), so that a
// hang fails a test instead of blocking it.
#include "catch_torch.hpp"

#include <sys/stat.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include <nlohmann/json.hpp>

#include "e2e/stac_item.hpp"
#include "support.hpp"

using namespace copgen::test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// copgen with the tiny models and GDAL's HTTP settings, stopped after 30 s (killed 5 s later).
// --foreground: a SIGTERM sent to timeout reaches copgen once, not again through its group.
const std::string kBounded = "timeout --foreground -k 5 30 ";
std::string remote_copgen(const std::string& args) { return models_env() + kRemoteEnv + kBounded + bin() + " " + args; }

// A translate of one S2L2A input (a STAC item URL) into `out`.
std::string translate_item(const std::string& url, const std::string& out) {
  return "translate --to DEM --steps 2 --seed 3 --input S2L2A=" + quote(url) + " -o " + quote(out);
}

// A STAC item whose red, green and blue assets are all `href`.
json item_naming(const std::string& id, const std::string& href) {
  json assets = json::object();
  for (const char* role : {"red", "green", "blue"}) assets[role] = band_asset(href, role, role);
  return s2_item(id, assets);
}

void write_json(const std::string& path, const json& j) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << j.dump(2);
}

struct Stopped {
  int exit_code = -1;
  double seconds = 1e9;  // from the signal to the exit
  std::string log;
};

// Starts `command` in the background, sends it SIGTERM after 1 s and waits for it.
Stopped terminate_after_one_second(const std::string& command, const TempDir& tmp) {
  const std::string log = tmp.file("stopped.log");
  const auto r = run_command(command + " > " + quote(log) + " 2>&1 & pid=$!; sleep 1; t0=$(date +%s%N); " +
                             "kill -TERM $pid; wait $pid; code=$?; t1=$(date +%s%N); " +
                             "echo \"$code $(( (t1 - t0) / 1000000 ))\"");
  Stopped s;
  std::istringstream(r.output) >> s.exit_code >> s.seconds;
  s.seconds /= 1000.0;
  s.log = read_file_bytes(log);
  fs::remove(log);
  return s;
}

void check_stopped(const Stopped& s) {
  INFO(s.log);
  CHECK(s.exit_code == 130);
  CHECK(s.seconds < 5.0);
  CHECK_THAT(s.log, Catch::Contains("interrupted"));
}

}  // namespace

TEST_CASE("remote cli: an endless STAC document stops at COPGEN_MAX_JSON_MB with memory bounded", "[remote-e2e]") {
  TempDir tmp;
  TroubleServer trouble(tmp.file("server"));
  // an address-space limit keeps a regression from taking the machine's memory (not under ASan)
  const std::string limit = built_with_asan() ? "" : "ulimit -v 4000000; ";
  const auto r = run_command(limit + "COPGEN_MAX_JSON_MB=8 " + models_env() + kRemoteEnv +
                             kBounded + "/usr/bin/time -f maxrss=%M " + bin() + " " +
                             translate_item(trouble.url("/endless.json"), tmp.file("o.tif")));
  INFO(r.output);
  CHECK(r.exit_code == 3);
  CHECK_THAT(r.output, Catch::Contains("more than 8 MiB") && Catch::Contains("COPGEN_MAX_JSON_MB"));
  const auto at = r.output.rfind("maxrss=");
  REQUIRE(at != std::string::npos);
  const long max_rss_kb = std::stol(r.output.substr(at + 7));
  WARN("copgen's peak memory reading an endless document with an 8 MiB limit: " << max_rss_kb / 1024 << " MiB");
  CHECK(max_rss_kb < 1500L * 1024);
  CHECK_FALSE(fs::exists(tmp.file("o.tif")));
}

TEST_CASE("remote cli: an asset whose server does not say its size - or sends HTML - is refused", "[remote-e2e]") {
  TempDir tmp;
  TroubleServer trouble(tmp.file("server"));
  LocalServer items(tmp.file("www"), tmp.file("items"));
  fs::create_directories(tmp.file("out"));
  for (const auto& [path, says] : {std::pair{"/endless.tif", "does not say how large the file is"},
                                   {"/nolength.tif", "does not say how large the file is"},
                                   {"/html.tif", "is not a raster (the server sent HTML)"}}) {
    const std::string name = fs::path(path).stem().string() + ".json";
    write_json(tmp.file("www/" + name), item_naming("S2_x", trouble.url(path)));
    expect_failure(remote_copgen(translate_item(items.http() + "/" + name, tmp.file("out/o.tif"))), 3,
                   {trouble.url(path), says}, tmp.file("out"));
  }
}

TEST_CASE("remote cli: SIGTERM ends a read of a server that sends nothing with exit 130 at once", "[remote-e2e]") {
  TempDir tmp;
  TroubleServer trouble(tmp.file("server"));
  const std::string out = tmp.file("out");
  const std::string batch = "translate --from S2L2A --to DEM --steps 2 --seed 3 --output-dir " + quote(out) +
                            " --inputs-from ";
  SECTION("an item URL") {
    const std::string item = translate_item(trouble.url("/stall"), tmp.file("o.tif"));
    check_stopped(terminate_after_one_second(remote_copgen(item), tmp));
    CHECK_FALSE(fs::exists(tmp.file("o.tif")));
  }
  SECTION("--inputs-from a URL") {
    check_stopped(terminate_after_one_second(remote_copgen(batch + quote(trouble.url("/stall"))), tmp));
    CHECK_FALSE(fs::exists(out));
  }
  SECTION("a batch over an ItemCollection whose assets stall: the report says interrupted") {
    LocalServer items(tmp.file("www"), tmp.file("items"));
    write_json(tmp.file("www/search.json"),
               {{"type", "FeatureCollection"}, {"features", {item_naming("S2_stall", trouble.url("/stall"))}}});
    check_stopped(terminate_after_one_second(remote_copgen(batch + quote(items.http() + "/search.json")), tmp));
    const json report = json::parse(read_file_bytes(out + "/copgen-report.json"));
    CHECK(report["status"] == "interrupted");
    CHECK(report["exit_code"] == 130);
    CHECK(report["counts"]["not_done"] == 1);
  }
}

TEST_CASE("remote cli: a server that sends nothing is given up after GDAL_HTTP_LOW_SPEED_TIME", "[remote-e2e]") {
  TempDir tmp;
  TroubleServer trouble(tmp.file("server"));
  fs::create_directory(tmp.file("out"));
  for (const std::string path : {"/stall", "/stall-body.json"}) {
    const std::string item = translate_item(trouble.url(path), tmp.file("out/o.tif"));
    expect_failure("GDAL_HTTP_LOW_SPEED_TIME=2 " + remote_copgen(item), 3,
                   {trouble.url(path), "the server sent nothing for 2 s", "GDAL_HTTP_LOW_SPEED_TIME"}, tmp.file("out"));
  }
}

TEST_CASE("remote cli: an item read over HTTP may name neither local files nor GDAL's special files", "[remote-e2e]") {
  TempDir tmp;
  LocalServer items(tmp.file("www"), tmp.file("items"));
  // copgen's stdin: a FIFO it holds open itself, which never ends and never sends
  REQUIRE(::mkfifo(tmp.file("stdin").c_str(), 0600) == 0);
  fs::create_directory(tmp.file("out"));
  for (const auto& [href, says] : {std::pair{"file:///etc/hostname", "a file on this machine"},
                                   {"/vsistdin/", "names one of GDAL's special files"},
                                   {"/vsizip//tmp/x.zip/a.tif", "names one of GDAL's special files"},
                                   {"vrt:///tmp/x.vrt", "names one of GDAL's special files"}}) {
    write_json(tmp.file("www/item.json"), item_naming("S2_local", href));
    expect_failure(remote_copgen(translate_item(items.http() + "/item.json", tmp.file("out/o.tif"))) + " 0<> " +
                       quote(tmp.file("stdin")),
                   3, {"href '" + std::string(href) + "'", says}, tmp.file("out"));
  }
}

TEST_CASE("remote cli: the server's answer is named - HTTP 500 and a redirect to a file", "[remote-e2e]") {
  TempDir tmp;
  TroubleServer trouble(tmp.file("server"));
  fs::create_directory(tmp.file("out"));
  expect_failure(remote_copgen(translate_item(trouble.url("/status/500"), tmp.file("out/o.tif"))), 3,
                 {trouble.url("/status/500"), "the server answered HTTP 500 (Internal Server Error)"}, tmp.file("out"));
  expect_failure(remote_copgen(translate_item(trouble.url("/redirect-file"), tmp.file("out/o.tif"))), 3,
                 {"redirecting to 'file:///etc/passwd'", "only http and https"}, tmp.file("out"));
}

TEST_CASE("remote cli: --target-crs EPSG:4978 is refused before any read", "[remote-e2e]") {
  TempDir tmp;
  TroubleServer trouble(tmp.file("server"));
  fs::create_directory(tmp.file("out"));
  // the input stalls: a check after the read would never be reached
  const std::string item = translate_item(trouble.url("/stall"), tmp.file("out/o.tif"));
  expect_failure(remote_copgen(item + " --target-crs EPSG:4978"), 2, {"--target-crs 'EPSG:4978'", "geocentric"},
                 tmp.file("out"));
}
