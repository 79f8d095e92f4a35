// End-to-end: copgen translate --input-dir on a synthetic Major TOM tree with the tiny
// models: outputs, failures and exit codes, reruns, --fail-fast, and runs stopped by
// SIGKILL or SIGINT that resume to the bytes of an uninterrupted run.
#include "catch_torch.hpp"

#include <chrono>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <map>
#include <set>
#include <sstream>
#include <thread>

#include <gdal_priv.h>
#include <nlohmann/json.hpp>
#include <fcntl.h>
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>

#include "copgen/raster_io.hpp"
#include "support.hpp"

using namespace copgen::test;
namespace fs = std::filesystem;
using nlohmann::json;

extern char** environ;

namespace {

const std::string kRun = " --from S2L1C,S1RTC --to S2L2A --steps 2 --seed 7 ";

// Core-<MOD>/<row>/<cell>/P<MOD>_<cell>/thumbnail.png, a 256 x 256 RGB PNG.
void thumbnail(const std::string& root, const std::string& mod, const std::string& cell, int seed) {
  const std::string row = cell.substr(0, cell.find('_'));
  const std::string dir = root + "/Core-" + mod + "/" + row + "/" + cell + "/P" + mod + "_" + cell;
  fs::create_directories(dir);
  SyntheticRaster spec;
  spec.format = "PNG";
  spec.georeferenced = false;
  spec.seed = seed;
  write_synthetic(dir + "/thumbnail.png", spec);
}

std::string cell_name(int i) { return std::to_string(400 + i % 3) + "U_" + std::to_string(1000 + i) + "R"; }
std::string key_of(int i) { return cell_name(i).substr(0, 4) + "/" + cell_name(i); }
std::string output_of(const std::string& out, int i) {
  return out + "/Core-S2L2A/" + key_of(i) + "/PS2L1C_" + cell_name(i) + "/S2L2A.tif";
}

// Eight locations: 0..5 have S2L1C and S1RTC (5's S1RTC thumbnail is corrupt), 6 lacks
// S1RTC, 7 lacks S2L1C. Key order: 0, 3 | 1, 4 | 2, 5 (rows 400U, 401U, 402U).
void make_tree(const std::string& root) {
  for (int i = 0; i < 8; ++i) {
    if (i != 7) thumbnail(root, "S2L1C", cell_name(i), 10 + i);
    if (i != 6) thumbnail(root, "S1RTC", cell_name(i), 50 + i);
  }
  const std::string bad = root + "/Core-S1RTC/" + key_of(5) + "/PS1RTC_" + cell_name(5) + "/thumbnail.png";
  std::ofstream(bad, std::ios::trunc) << "\x89PNG\r\n\x1a\n this is not a PNG";
}

// Relative path -> bytes of every file under root but the reports and the contact sheet
// (index*.html and its pictures under .index/, test_preview.cpp's).
std::map<std::string, std::string> tree(const std::string& root) {
  std::map<std::string, std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    if (!e.is_regular_file()) continue;
    const std::string rel = fs::relative(e.path(), root).generic_string();
    if (rel.rfind("copgen-report", 0) == 0 || rel.rfind("index", 0) == 0 || rel.rfind(".index/", 0) == 0) continue;
    out[rel] = read_file_bytes(e.path().string());
  }
  return out;
}

std::vector<std::string> temporaries(const std::string& root) {
  std::vector<std::string> out;
  for (const auto& e : fs::recursive_directory_iterator(root)) {
    const std::string name = e.path().filename().string();
    if (name.find(".tmp-") != std::string::npos) out.push_back(e.path().string());
  }
  return out;
}

json report_of(const std::string& path) { return json::parse(read_file_bytes(path)); }

// True when GDAL reads every pixel of a 256 x 256 3-band file.
bool complete_raster(const std::string& path) {
  GDALAllRegister();
  CPLPushErrorHandler(CPLQuietErrorHandler);
  auto* ds = static_cast<GDALDataset*>(GDALOpen(path.c_str(), GA_ReadOnly));
  bool ok = ds != nullptr && ds->GetRasterXSize() == 256 && ds->GetRasterYSize() == 256 && ds->GetRasterCount() == 3;
  if (ok) {
    std::vector<unsigned char> buf(256 * 256 * 3);
    ok = ds->RasterIO(GF_Read, 0, 0, 256, 256, buf.data(), 256, 256, GDT_Byte, 3, nullptr, 0, 0, 0, nullptr) ==
         CE_None;
  }
  if (ds != nullptr) GDALClose(ds);
  CPLPopErrorHandler();
  return ok;
}

// Starts copgen with `args` (split on blanks; no quoting needed for these paths).
pid_t spawn_copgen(const std::string& args, const std::string& log) {
  std::vector<std::string> parts = {COPGEN_BIN};
  std::stringstream ss(args);
  for (std::string a; ss >> a;) parts.push_back(a);
  std::vector<char*> argv;
  for (auto& p : parts) argv.push_back(p.data());
  argv.push_back(nullptr);
  std::string models = std::string("COPGEN_MODELS=") + COPGEN_TEST_MODELS;
  std::vector<char*> env;
  for (char** e = environ; *e != nullptr; ++e) {
    if (std::string(*e).rfind("COPGEN_MODELS=", 0) != 0) env.push_back(*e);
  }
  env.push_back(models.data());
  env.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 1, log.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  pid_t pid = -1;
  const int rc = posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), env.data());
  posix_spawn_file_actions_destroy(&fa);
  if (rc != 0) throw std::runtime_error("posix_spawn failed");
  return pid;
}

struct StoppedRun {
  int final_files_at_signal = 0;  // complete outputs when the signal was sent
  int temporaries_seen = 0;       // polls that saw a temporary file
  int partial_finals = 0;         // final names that GDAL could not read whole (must stay 0)
  int status = 0;                 // waitpid status
};

// Runs copgen, polling the output tree every millisecond: every file under a final name
// must be a complete raster at all times; sends `sig` once `after` outputs exist.
StoppedRun run_and_stop(const std::string& args, const std::string& out, int sig, int after, const std::string& log) {
  StoppedRun r;
  const pid_t pid = spawn_copgen(args, log);
  std::set<std::string> verified;
  bool signalled = false;
  const auto deadline = std::chrono::steady_clock::now() + std::chrono::minutes(5);
  while (std::chrono::steady_clock::now() < deadline) {
    int finals = 0;
    bool temp = false;
    std::error_code ec;
    for (fs::recursive_directory_iterator it(out, ec), end; !ec && it != end; it.increment(ec)) {
      const std::string name = it->path().filename().string();
      if (name.find(".tmp-") != std::string::npos) temp = true;
      if (name.size() > 4 && name[0] != '.' && name.substr(name.size() - 4) == ".tif") {
        ++finals;
        if (!verified.count(it->path().string())) {
          if (complete_raster(it->path().string())) {
            verified.insert(it->path().string());
          } else {
            ++r.partial_finals;
          }
        }
      }
    }
    if (temp) ++r.temporaries_seen;
    if (!signalled && finals >= after) {
      r.final_files_at_signal = finals;
      kill(pid, sig);
      signalled = true;
    }
    int status = 0;
    if (waitpid(pid, &status, WNOHANG) == pid) {
      r.status = status;
      return r;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  kill(pid, SIGKILL);
  waitpid(pid, &r.status, 0);
  FAIL("copgen did not stop within 5 minutes");
  return r;
}

}  // namespace

TEST_CASE("batch cli: a Major TOM tree with incomplete and corrupt tuples - rerun skips - fail-fast", "[batch]") {
  TempDir tmp;
  const std::string in = tmp.file("majortom"), out = tmp.file("out");
  make_tree(in);
  const auto r = run_copgen("translate --input-dir " + quote(in) + " --output-dir " + quote(out) + kRun +
                            " --batch-size 4");
  INFO(r.output);
  CHECK(r.exit_code == 3);
  for (int i : {0, 1, 2, 3, 4}) CHECK(complete_raster(output_of(out, i)));
  for (int i : {5, 6, 7}) CHECK_FALSE(fs::exists(output_of(out, i)));
  CHECK(tree(out).size() == 5);
  CHECK(temporaries(out).empty());
  CHECK(r.output.find(key_of(5)) != std::string::npos);  // the failure is named in the log

  const json rep = report_of(out + "/copgen-report.json");
  CHECK(rep["status"] == "completed_with_failures");
  CHECK(rep["exit_code"] == 3);
  CHECK(rep["counts"]["found"] == 6);
  CHECK(rep["counts"]["incomplete"] == 2);
  CHECK(rep["counts"]["written"] == 5);
  CHECK(rep["counts"]["failed"] == 1);
  CHECK(rep["counts"]["skipped_complete"] == 0);
  CHECK(rep["counts"]["batches_sampled"] == 2);
  REQUIRE(rep["failures"].size() == 1);
  CHECK(rep["failures"][0]["key"] == key_of(5));
  CHECK(rep["failures"][0]["kind"] == "input");
  CHECK(rep["failures"][0]["reason"].get<std::string>().find("thumbnail.png") != std::string::npos);
  CHECK(rep["failures"][0]["inputs"]["S1RTC"].get<std::string>().find("PS1RTC_" + cell_name(5)) != std::string::npos);
  CHECK((rep["incomplete_keys"] == json::array({key_of(6), key_of(7)})));
  CHECK(rep["settings"]["layout"] == "majortom");
  CHECK(rep["settings"]["seed"] == 7);
  CHECK(rep["settings"]["batch_size"] == 4);
  CHECK((rep["settings"]["from"] == json::array({"S2L1C", "S1RTC"})));
  CHECK(rep["versions"]["models_sha256"].get<std::string>().size() == 64);
  const double share = rep["timings"]["network_busy_share"];
  CHECK(share > 0.0);
  CHECK(share <= 1.0);

  // a rerun skips every complete tuple, touches nothing, and still reports the bad one
  const auto before = tree(out);
  struct stat st0 {};
  stat(output_of(out, 0).c_str(), &st0);
  const auto again = run_copgen("translate --input-dir " + quote(in) + " --output-dir " + quote(out) + kRun +
                                " --batch-size 4");
  INFO(again.output);
  CHECK(again.exit_code == 3);
  const json rep2 = report_of(out + "/copgen-report.json");
  CHECK(rep2["counts"]["skipped_complete"] == 5);
  CHECK(rep2["counts"]["written"] == 0);
  CHECK(rep2["counts"]["failed"] == 1);
  CHECK(rep2["counts"]["batches_sampled"] == 0);
  CHECK(tree(out) == before);
  struct stat st1 {};
  stat(output_of(out, 0).c_str(), &st1);
  CHECK(st1.st_ino == st0.st_ino);
  CHECK(st1.st_mtim.tv_sec == st0.st_mtim.tv_sec);
  CHECK(st1.st_mtim.tv_nsec == st0.st_mtim.tv_nsec);

  // --fail-fast stops at the bad tuple, in the third batch of two (2, 5): two batches written
  const std::string ff = tmp.file("ff");
  const auto stop = run_copgen("translate --input-dir " + quote(in) + " --output-dir " + quote(ff) + kRun +
                               " --batch-size 2 --fail-fast --report " + quote(tmp.file("ff.json")));
  INFO(stop.output);
  CHECK(stop.exit_code == 3);
  const json rep3 = report_of(tmp.file("ff.json"));
  CHECK(rep3["status"] == "stopped_early");
  CHECK(rep3["counts"]["failed"] == 1);
  CHECK(rep3["counts"]["written"] == 4);
  CHECK(rep3["counts"]["not_done"] == 1);
  CHECK(tree(ff).size() == 4);
  CHECK_FALSE(fs::exists(output_of(ff, 2)));
}

TEST_CASE("batch cli: one folder per modality and a list file give the same outputs", "[batch]") {
  TempDir tmp;
  const std::string in = tmp.file("flat");
  fs::create_directories(in + "/s2_l1c");
  SyntheticRaster spec;
  spec.format = "PNG";
  spec.georeferenced = false;
  for (int i = 0; i < 3; ++i) {
    spec.seed = 30 + i;
    write_synthetic(in + "/s2_l1c/t" + std::to_string(i) + ".png", spec);
  }
  const std::string a = tmp.file("a"), b = tmp.file("b");
  const std::string common = " --from S2L1C --to S2L2A --steps 2 --seed 5 --batch-size 2 ";
  const auto r = run_copgen("translate --input-dir " + quote(in) + " --output-dir " + quote(a) + common);
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK((list_dir(a + "/S2L2A") == std::vector<std::string>{"t0.tif", "t1.tif", "t2.tif"}));

  const std::string list = tmp.file("list.txt");
  std::ofstream(list) << "S2L1C=flat/s2_l1c/t0.png\nS2L1C=flat/s2_l1c/t1.png\nS2L1C=" << in << "/s2_l1c/t2.png\n";
  const auto l = run_copgen("translate --inputs-from " + quote(list) + " --output-dir " + quote(b) + common);
  INFO(l.output);
  REQUIRE(l.exit_code == 0);
  CHECK(tree(a) == tree(b));  // same keys, same batches, same seed: same bytes
}

TEST_CASE("batch cli: flag conflicts are usage errors", "[batch]") {
  TempDir tmp;
  fs::create_directories(tmp.file("in/S2L1C"));
  const std::string dir = " --input-dir " + quote(tmp.file("in")) + " --from S2L1C ";
  CHECK(run_copgen("translate" + dir + "-i x.tif --output-dir " + quote(tmp.file("o"))).exit_code == 2);
  CHECK(run_copgen("translate" + dir + "-o " + quote(tmp.file("o"))).exit_code == 2);
  CHECK(run_copgen("translate" + dir + "--output-dir " + quote(tmp.file("o")) + " --shard 3/3").exit_code == 2);
  CHECK(run_copgen("translate" + dir + "--inputs-from l.txt --output-dir " + quote(tmp.file("o"))).exit_code == 2);
  CHECK(run_copgen("translate --from S2L1C -i a.tif -o b.tif --shard 0/2").exit_code == 2);
  const auto none = run_copgen("translate" + dir + "--output-dir " + quote(tmp.file("o")) + " --steps 2 --seed 1");
  INFO(none.output);
  CHECK(none.exit_code == 0);  // an empty tree is not an error: nothing to do
}

TEST_CASE("batch cli: runs stopped by SIGKILL or SIGINT resume to the bytes of an uninterrupted run", "[batch]") {
  TempDir tmp;
  const std::string in = tmp.file("majortom");
  // 12 complete locations, no failures
  for (int i = 0; i < 12; ++i) {
    thumbnail(in, "S2L1C", cell_name(i), 100 + i);
    thumbnail(in, "S1RTC", cell_name(i), 200 + i);
  }
  auto args = [&](const std::string& out) {
    return "translate --input-dir " + in + " --output-dir " + out + kRun + " --batch-size 2 --threads 1";
  };
  const std::string ref = tmp.file("ref");
  const auto full = run_copgen(args(ref));
  INFO(full.output);
  REQUIRE(full.exit_code == 0);
  const auto expected = tree(ref);
  REQUIRE(expected.size() == 12);

  for (int sig : {SIGKILL, SIGINT}) {
    INFO("signal " << sig);
    const std::string out = tmp.file(sig == SIGKILL ? "killed" : "interrupted");
    const StoppedRun s = run_and_stop(args(out), out, sig, 1, tmp.file("log.txt"));
    INFO(read_file_bytes(tmp.file("log.txt")));
    CHECK(s.partial_finals == 0);
    CHECK(s.final_files_at_signal >= 1);
    auto part = tree(out);  // a SIGKILL may leave a temporary file: never under a final name
    for (const std::string& t : temporaries(out)) part.erase(fs::relative(t, out).generic_string());
    CHECK(part.size() < 12);  // stopped part-way
    for (const auto& [rel, bytes] : part) CHECK(expected.at(rel) == bytes);
    if (sig == SIGKILL) {
      CHECK(WIFSIGNALED(s.status));
    } else {
      REQUIRE(WIFEXITED(s.status));
      CHECK(WEXITSTATUS(s.status) == 130);
      CHECK(temporaries(out).empty());
      const json rep = report_of(out + "/copgen-report.json");
      CHECK(rep["status"] == "interrupted");
      CHECK(rep["counts"]["not_done"].get<int>() == 12 - static_cast<int>(part.size()));
    }
    const auto rerun = run_copgen(args(out));
    INFO(rerun.output);
    CHECK(rerun.exit_code == 0);
    CHECK(temporaries(out).empty());
    CHECK(tree(out) == expected);
    const json rep = report_of(out + "/copgen-report.json");
    CHECK(rep["counts"]["skipped_complete"].get<int>() == static_cast<int>(part.size()));
  }
}

namespace {

// Replaces the backbone of the models in `dir` by one whose forward raises: TorchScript's
// `raise` reaches C++ as a std::runtime_error, neither a copgen::Error nor a c10::Error.
const char* const kRaisingBackbone = R"PY(
import hashlib, json, sys, torch
d = sys.argv[1]
inner = torch.jit.load(d + "/backbone.pt")
class Raising(torch.nn.Module):
    def __init__(self, inner):
        super().__init__()
        self.inner = inner
        for k in ["embed_dim", "depth", "num_heads", "num_modalities", "latent_channels", "latent_size", "patch_size"]:
            setattr(self, k, int(getattr(inner, k)))
    def forward(self, z, t):
        if bool(t.numel() > 0):
            raise ValueError("backbone op failed on purpose")
        return self.inner(z, t)
torch.jit.script(Raising(inner)).save(d + "/backbone.pt")
with open(d + "/copgen.json") as f:
    manifest = json.load(f)
with open(d + "/backbone.pt", "rb") as f:
    manifest["backbone"]["sha256"] = hashlib.sha256(f.read()).hexdigest()
with open(d + "/copgen.json", "w") as f:
    json.dump(manifest, f, indent=2)
)PY";

}  // namespace

TEST_CASE("batch cli: an op error of another exception type fails its tuples - the report is still written", "[batch]") {
  TempDir tmp;
  const std::string models = tmp.file("models");
  fs::copy(COPGEN_TEST_MODELS, models, fs::copy_options::recursive);
  std::ofstream(tmp.file("raising.py")) << kRaisingBackbone;  // torch.jit.script reads the class's source
  const CommandResult made =
      run_command(quote(COPGEN_PYTHON) + " " + quote(tmp.file("raising.py")) + " " + quote(models));
  INFO(made.output);
  REQUIRE(made.exit_code == 0);
  make_tree(tmp.file("in"));
  // tuple 1's inputs are no 256 x 256 thumbnails: it takes the per-tuple path (translate())
  SyntheticRaster odd;
  odd.format = "PNG";
  odd.georeferenced = false;
  odd.width = 300;
  odd.height = 280;
  for (const std::string mod : {"S2L1C", "S1RTC"}) {
    write_synthetic(tmp.file("in/Core-" + mod + "/" + key_of(1) + "/P" + mod + "_" + cell_name(1) + "/thumbnail.png"), odd);
  }

  const std::string out = tmp.file("out");
  const CommandResult r = run_command(bin() + " translate --input-dir " + quote(tmp.file("in")) + " --output-dir " +
                                      quote(out) + " --models " + quote(models) + kRun + " --batch-size 2");
  INFO(r.output);
  CHECK(r.exit_code == 1);  // runtime failures (tuple 5's input error does not decide)
  const json report = report_of(out + "/copgen-report.json");
  CHECK(report["status"] == "completed_with_failures");
  CHECK(report["exit_code"] == 1);
  CHECK(report["counts"]["written"] == 0);
  CHECK(report["counts"]["failed"] == 6);  // tuples 0..5 (6 and 7 lack a --from modality)
  std::set<std::string> raised, other;
  for (const json& f : report["failures"]) {
    const std::string reason = f["reason"];
    (reason.find("backbone op failed on purpose") != std::string::npos ? raised : other).insert(f["key"].get<std::string>());
    if (f["key"] != key_of(5)) CHECK(f["kind"] == "runtime");
  }
  CHECK(raised == std::set<std::string>{key_of(0), key_of(1), key_of(2), key_of(3), key_of(4)});
  CHECK(other == std::set<std::string>{key_of(5)});
  for (const std::string& name : file_names_under(out)) CHECK(name.find(".tif") == std::string::npos);
}

TEST_CASE("batch cli: --dry-run lists the tuples that would run and writes nothing", "[batch]") {
  TempDir tmp;
  make_tree(tmp.file("tree"));
  const std::string out = tmp.file("out");
  const auto r = run_copgen("translate --input-dir " + quote(tmp.file("tree")) + " --output-dir " + quote(out) +
                            kRun + "--dry-run");
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("6 found, 2 lacking a --from modality; 6 in this shard, 0 complete, 6 to do"));
  for (int i = 0; i < 6; ++i) {
    CHECK_THAT(r.output, Catch::Contains("tuple: " + key_of(i) + " -> " + output_of(out, i)));
  }
  CHECK_FALSE(fs::exists(out));  // no output folder, no report
  // a shard lists its own tuples only
  const auto s = run_copgen("translate --input-dir " + quote(tmp.file("tree")) + " --output-dir " + quote(out) +
                            kRun + "--shard 0/2 --dry-run");
  INFO(s.output);
  REQUIRE(s.exit_code == 0);
  CHECK_THAT(s.output, Catch::Contains("in this shard"));
  CHECK(s.output.find("tuple: ") != std::string::npos);
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("batch cli: a full disk stops the run at the first output that cannot be written", "[batch]") {
  TempDir tmp;
  make_tree(tmp.file("tree"));
  const std::string out = tmp.file("out");
  // 20 blocks of 512 bytes: the report fits, no GeoTIFF does (write() fails with EFBIG)
  const std::string cmd = "sh -c " + quote("ulimit -f 20; trap '' XFSZ; exec " + bin() + " translate --input-dir " +
                                           quote(tmp.file("tree")) + " --output-dir " + quote(out) + kRun +
                                           "--batch-size 1");
  const auto r = run_command(models_env() + cmd);
  INFO(r.output);
  CHECK(r.exit_code == 5);
  CHECK_THAT(r.output, Catch::Contains("stopping: an output could not be written, and the tuples after it would "
                                       "fail the same way"));
  const json report = json::parse(read_file_bytes(out + "/copgen-report.json"));
  CHECK(report["status"] == "stopped_early");
  CHECK(report["counts"]["written"] == 0);
  CHECK(report["counts"]["not_done"].get<int>() >= 1);  // not sampled only to fail
  CHECK(report["failures"][0]["kind"] == "output");
  CHECK(temporaries(out).empty());
}

TEST_CASE("batch cli: a report that is also a tuple's STAC item is refused before any work", "[batch]") {
  TempDir tmp;
  make_tree(tmp.file("tree"));
  const std::string out = tmp.file("out");
  const std::string item = fs::path(output_of(out, 0)).parent_path().string() + "/item.json";
  const auto r = run_copgen("translate --input-dir " + quote(tmp.file("tree")) + " --output-dir " + quote(out) + kRun +
                            "--stac-out item.json --report " + quote(item));
  INFO(r.output);
  CHECK(r.exit_code == 2);
  CHECK_THAT(r.output, Catch::Contains("--stac-out '" + item + "' would be written twice: it is also the report of "
                                       "--report '" + item + "'"));
  CHECK_FALSE(fs::exists(out));
}

TEST_CASE("batch cli: an --input-dir that is a symbolic link loop or missing says so", "[batch]") {
  TempDir tmp;
  fs::create_directories(tmp.file("links"));
  fs::create_directories(tmp.file("work"));  // where the outputs would go: checked unchanged
  fs::create_symlink(tmp.file("links/loop"), tmp.file("links/loop"));
  expect_copgen_failure("translate --input-dir " + quote(tmp.file("links/loop")) + " --output-dir " +
                            quote(tmp.file("work/out")) + kRun,
                        3, {"--input-dir '" + tmp.file("links/loop") + "': a symbolic link loop"}, tmp.file("work"));
  expect_copgen_failure("translate --input-dir " + quote(tmp.file("nope")) + " --output-dir " +
                            quote(tmp.file("work/out")) + kRun,
                        3, {"--input-dir '" + tmp.file("nope") + "': does not exist"}, tmp.file("work"));
}

TEST_CASE("batch: one product folder is read from the same pixels as translate -i reads it", "[batch][inputs]") {
  // a Major TOM S2L1C product with its physical bands and a 256 x 256 thumbnail of other
  // content: the bands win for both commands, unless --input-kind thumbnail
  TempDir tmp;
  const std::string cell = cell_name(0);
  const std::string product = tmp.file("in/Core-S2L1C/" + key_of(0) + "/PS2L1C_" + cell);
  thumbnail(tmp.file("in"), "S2L1C", cell, 99);
  for (const char* band : {"B04", "B03", "B02"}) {
    SyntheticRaster spec;
    spec.bands = 1;
    spec.data_type = "UInt16";
    spec.seed = band[2];
    write_synthetic(product + "/" + band + ".tif", spec);
  }
  const auto seed_and_kinds = [](const std::string& path) {
    GDALDatasetUniquePtr ds(GDALDataset::Open(path.c_str(), GDAL_OF_RASTER));
    REQUIRE(ds);
    // the seed the tuple was sampled with: a batch's own, else the run's
    const char* batch_seed = ds->GetMetadataItem("COPGEN_BATCH_SEED");
    const char* seed = batch_seed ? batch_seed : ds->GetMetadataItem("COPGEN_SEED");
    const char* kinds = ds->GetMetadataItem("COPGEN_INPUT_KINDS");
    REQUIRE(seed != nullptr);
    return std::make_pair(std::string(seed), std::string(kinds ? kinds : ""));
  };
  for (const std::string kind : {"auto", "thumbnail"}) {
    INFO("--input-kind " << kind);
    const std::string out = tmp.file("batch-" + kind), single = tmp.file("single-" + kind + ".tif");
    const auto b = run_copgen("translate --input-dir " + quote(tmp.file("in")) + " --from S2L1C --to S2L2A --steps 2 "
                              "--seed 7 --input-kind " + kind + " --output-dir " + quote(out));
    INFO(b.output);
    REQUIRE(b.exit_code == 0);
    const std::string batch_file = out + "/Core-S2L2A/" + key_of(0) + "/PS2L1C_" + cell + "/S2L2A.tif";
    const auto [seed, kinds] = seed_and_kinds(batch_file);
    // the bands make a scene (its metadata names the input kind); the thumbnail a tile
    CHECK(kinds == (kind == "auto" ? "S2L1C:physical" : ""));
    const auto s = run_copgen("translate --from S2L1C --to S2L2A -i " + quote(product) + " --steps 2 --seed " + seed +
                              " --input-kind " + kind + " -o " + quote(single));
    INFO(s.output);
    REQUIRE(s.exit_code == 0);
    CHECK(seed_and_kinds(single).second == kinds);
    const copgen::ImageU8 a = copgen::read_image_u8(batch_file, "batch output");
    const copgen::ImageU8 c = copgen::read_image_u8(single, "translate output");
    CHECK(a.valid == c.valid);
    CHECK(a.pixels == c.pixels);
  }
  // and the two kinds are different pixels: the test can tell them apart
  CHECK(copgen::read_image_u8(tmp.file("single-auto.tif"), "a").pixels !=
        copgen::read_image_u8(tmp.file("single-thumbnail.tif"), "b").pixels);
}
