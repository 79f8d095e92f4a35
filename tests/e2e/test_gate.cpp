// End-to-end: the one output gate (issue 20; include/copgen/files.hpp OutputGate). Every
// output flag of every command against every hazard (an empty path, an input, another output
// of the run, an existing file, a FIFO, a device, a missing folder), refused before any work
// with nothing changed; then the cases of the issue one by one: --stac-out onto an input or an
// image, ItemCollections with two items of one id, a batch rerun that adds --stac-out, and
// dry runs that check what the run checks and touch nothing.
#include "catch_torch.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <map>
#include <tuple>

#include <nlohmann/json.hpp>

#include "e2e/stac_item.hpp"
#include "support.hpp"

using namespace copgen::test;
namespace fs = std::filesystem;
using nlohmann::json;

namespace {

// ---- fixtures ------------------------------------------------------------------------------

// `count` 96 x 96 PNGs img0.png.. in `dir` (metrics and eval inputs).
void write_pngs(const std::string& dir, int count, int seed) {
  fs::create_directories(dir);
  SyntheticRaster spec;
  spec.format = "PNG";
  spec.georeferenced = false;
  spec.width = spec.height = 96;
  for (int i = 0; i < count; ++i) {
    spec.seed = seed + i;
    write_synthetic(dir + "/img" + std::to_string(i) + ".png", spec);
  }
}

// A Major TOM tree under `root` with one S2L1C thumbnail per cell; the cells' tuple keys.
std::vector<std::string> write_major_tom(const std::string& root, int cells) {
  std::vector<std::string> keys;
  SyntheticRaster spec;
  spec.format = "PNG";
  spec.georeferenced = false;
  for (int i = 0; i < cells; ++i) {
    const std::string row = std::to_string(400 + i) + "U", cell = row + "_" + std::to_string(1000 + i) + "R";
    const std::string dir = root + "/Core-S2L1C/" + row + "/" + cell + "/PS2L1C_" + cell;
    fs::create_directories(dir);
    spec.seed = 20 + i;
    write_synthetic(dir + "/thumbnail.png", spec);
    keys.push_back(row + "/" + cell);
  }
  return keys;
}

// Where translate --input-dir ROOT --to S2L2A --output-dir OUT writes the image of tuple `key`.
std::string major_tom_output(const std::string& out, const std::string& key) {
  const std::string cell = key.substr(key.find('/') + 1);
  return out + "/Core-S2L2A/" + key + "/PS2L1C_" + cell + "/S2L2A.tif";
}

void write_json(const std::string& path, const json& j) { std::ofstream(path) << j.dump(2); }

// red, green and blue assets at PREFIX{B04,B03,B02}.tif.
json rgb_assets(const std::string& prefix) {
  json a = json::object();
  for (const auto& [role, band] : {std::pair{"red", "B04"}, {"green", "B03"}, {"blue", "B02"}}) {
    a[role] = band_asset(prefix + band + ".tif", band, role);
  }
  return a;
}

// Relative path -> bytes of every regular file under `dir`.
using Contents = std::map<std::string, std::string>;
Contents contents_under(const std::string& dir) {
  Contents out;
  for (const auto& e : fs::recursive_directory_iterator(dir)) {
    if (e.is_regular_file()) out[fs::relative(e.path(), dir).string()] = read_file_bytes(e.path().string());
  }
  return out;
}

// The files of `before` whose bytes differ in `after` (or are gone).
std::vector<std::string> changed(const Contents& before, const Contents& after) {
  std::vector<std::string> out;
  for (const auto& [name, bytes] : before) {
    if (after.count(name) == 0 || after.at(name) != bytes) out.push_back(name);
  }
  return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (auto p = s.find(from); p != std::string::npos; p = s.find(from, p + to.size())) s.replace(p, from.size(), to);
  return s;
}

bool has_line(const std::string& output, const std::string& line) {
  return ("\n" + output + "\n").find("\n" + line + "\n") != std::string::npos;
}

const std::string kQuick = " --steps 2 --seed 3 ";
const std::string kExtractors = " --extractors " + quote(COPGEN_TEST_EXTRACTORS) + " --device cpu ";

// ---- the matrix ----------------------------------------------------------------------------

enum class Hazard { Empty, Input, Other, Existing, Fifo, Device, MissingFolder };
const std::vector<Hazard> kHazards = {Hazard::Empty,    Hazard::Input,  Hazard::Other,        Hazard::Existing,
                                      Hazard::Fifo,     Hazard::Device, Hazard::MissingFolder};

std::string hazard_name(Hazard h) {
  switch (h) {
    case Hazard::Empty: return "an empty path";
    case Hazard::Input: return "the input itself";
    case Hazard::Other: return "another output of the run";
    case Hazard::Existing: return "an existing file";
    case Hazard::Fifo: return "a FIFO";
    case Hazard::Device: return "a device";
    case Hazard::MissingFolder: return "a missing folder";
  }
  return "";
}

// The exit code and a phrase of the message for each hazard.
std::pair<int, std::string> refusal(Hazard h) {
  switch (h) {
    case Hazard::Empty: return {2, "the path is empty"};
    case Hazard::Input: return {5, "the input"};  // "the same file as the input" or "inside the input folder"
    case Hazard::Other: return {2, "; give each output its own path"};  // twice, or one inside the other
    case Hazard::Existing: return {5, "exists (use --overwrite to replace it)"};
    case Hazard::Fifo: return {5, "exists and is a FIFO (named pipe)"};
    case Hazard::Device: return {5, "exists and is a character device"};
    case Hazard::MissingFolder: return {5, "does not exist"};
  }
  return {0, ""};
}

// One output flag of one command. In `command`, `other` and the values, @ stands for the
// flag's value, {FX} for the fixture folder (the inputs) and {H} for the folder where the
// hazards are made (both temporary folders: no quoting needed).
struct OutputFlag {
  std::string name;
  std::string command;
  std::string value;                             // the flag's value
  std::string writes;                            // a file the run writes for `value`: the hazards go there
  std::string input;                             // a value by which that file is one of the inputs
  std::pair<std::string, std::string> other;     // a value, and flags, by which another output is that file
  bool overwrite;                                // has --overwrite: given with every hazard but an existing file
  std::map<Hazard, std::string> not_applicable;  // hazard -> why it does not apply
};

const std::string kTranslate = "translate --from S2L1C --to S2L2A" + kQuick;
const std::string kBatch = "translate --inputs-from {FX}/list.txt --from S2L1C --to S2L2A" + kQuick;
const std::string kGenerate = "generate --to S2L2A -n 1" + kQuick;
const std::string kMetrics = "metrics --real {FX}/real --fake {FX}/fake" + kExtractors;
const std::string kEval = "eval --test-set {FX}/test-set" + kExtractors + kQuick;
const std::string kBench =
    "bench --devices cpu --precisions fp32 --batch-sizes 1 --repeat 1 --warmup 0 --no-end-to-end ";
const std::string kNotJson =
    "a .tif input cannot be named by --stac-out: its name is refused first (exit 2, tested below)";
const std::string kOnlyJson =
    "the run's other files are .tif or .npy, which no .json item can name (-o X --stac-out X: tested below)";
const std::string kMade = "the flag's folder is made";
const std::string kOnlyPng =
    "the run's other files are .tif, .npy or .json, which no .png preview can name (test_preview.cpp: -o o.png)";
const std::string kReplaced = "replaced by every run";

const std::vector<OutputFlag> kOutputFlags = {
    {"translate tile -o", kTranslate + "-i {FX}/in.tif -o @", "{H}/o.tif", "{H}/o.tif", "{FX}/in.tif",
     {"{H}/lat", "--save-latents {H}/lat"}, true, {}},  // the image would be the latents' folder
    {"translate tile --save-latents", kTranslate + "-i {FX}/lat/S2L1C.npy -o {H}/o.tif --save-latents @", "{H}/lat",
     "{H}/lat/S2L2A.npy", "{FX}/lat",  // the given latent would be saved onto itself
     {"{H}/o.tif", ""}, true,          // the latents' folder would be the image
     {{Hazard::MissingFolder, kMade}}},
    {"translate tile --stac-out", kTranslate + "-i {FX}/in.tif -o {H}/o.tif --stac-out @", "{H}/item.json",
     "{H}/item.json", "", {}, true, {{Hazard::Input, kNotJson}, {Hazard::Other, kOnlyJson}}},
    {"translate tile --preview", kTranslate + "-i {FX}/in.png -o {H}/o.tif --preview @", "{H}/p.png", "{H}/p.png",
     "{FX}/in.png", {}, true, {{Hazard::Other, kOnlyPng}}},
    {"translate scene --preview", kTranslate + "-i {FX}/scene_mean.tif -o {H}/o.tif --preview @", "{H}/p.png",
     "{H}/p.png", "", {}, true,
     {{Hazard::Input, "a .tif input cannot be named by --preview: its name is refused first (exit 2)"},
      {Hazard::Other, kOnlyPng}}},
    {"translate scene -o", kTranslate + "-i {FX}/scene_mean.tif -o @", "{H}/o.tif", "{H}/o.tif",
     "{FX}/scene_mean.tif", {}, true,
     {{Hazard::Other, "one sample of one modality: one image; the item is .json, no latents for scenes"}}},
    {"translate scene --summary", kTranslate + "-i {FX}/scene_mean.tif --samples 2 --summary mean,std -o @",
     "{H}/o.tif", "{H}/o_mean.tif", "{FX}/scene.tif",  // its mean would be {FX}/scene_mean.tif, the input
     {}, true,
     {{Hazard::Empty, "the summaries are named after -o (its row)"},
      {Hazard::Other, "images are <stem>_s<k>.tif, summaries <stem>_mean/_std.tif: never one name"},
      {Hazard::MissingFolder, "the summaries lie beside -o's images: -o's folder (its row)"}}},
    {"translate scene --stac-out", kTranslate + "-i {FX}/scene_mean.tif -o {H}/o.tif --stac-out @", "{H}/item.json",
     "{H}/item.json", "", {}, true, {{Hazard::Input, kNotJson}, {Hazard::Other, kOnlyJson}}},
    {"batch --output-dir", kBatch + "--output-dir @", "{H}/out", "{H}/out/S2L2A/a.tif",
     "{FX}",  // the list's input {FX}/S2L2A/a.tif is where the tuple's image would go
     {"{H}/out", "--report {H}/out/S2L2A/a.tif"}, true,
     {{Hazard::Existing, "an existing image is a finished tuple: kept, the tuple resumed"},
      {Hazard::MissingFolder, kMade}}},
    {"batch --report", kBatch + "--output-dir {H}/out --report @", "{H}/r.json", "{H}/r.json", "{FX}/S2L2A/a.tif",
     {"{H}/out/S2L2A/a.tif", ""}, true, {{Hazard::Existing, kReplaced}}},
    {"batch --stac-out", kBatch + "--output-dir {H}/out --stac-out @", "item.json", "{H}/out/S2L2A/item.json", "",
     {"item.json", "--report {H}/out/S2L2A/item.json"}, true,
     {{Hazard::Input, kNotJson},
      {Hazard::Existing, "an existing item is a finished tuple's: kept"},
      {Hazard::MissingFolder, "a file name in a tuple's folder, which is made"}}},
    {"generate -o", kGenerate + "-o @", "{H}/o.tif", "{H}/o.tif", "", {"{H}/lat", "--save-latents {H}/lat"}, true,
     {{Hazard::Input, "generate reads no input file"}}},
    {"generate --save-latents", kGenerate + "-o {H}/o.tif --save-latents @", "{H}/lat", "{H}/lat/S2L2A.npy", "",
     {"{H}/o.tif", ""}, true, {{Hazard::Input, "generate reads no input file"}, {Hazard::MissingFolder, kMade}}},
    {"generate --preview", kGenerate + "-o {H}/o.tif --preview @", "{H}/p.png", "{H}/p.png", "", {}, true,
     {{Hazard::Input, "generate reads no input file"}, {Hazard::Other, kOnlyPng}}},
    {"render -o", "render --modality S2L1C -i {FX}/in.tif -o @", "{H}/o.tif", "{H}/o.tif", "{FX}/in.tif", {}, true,
     {{Hazard::Other, "render writes one file"}}},
    {"metrics --json", kMetrics + "--json @", "{H}/m.json", "{H}/m.json", "{FX}/real/img0.png",
     {"{H}/feat/real/inception.npy", "--save-features {H}/feat"}, false, {{Hazard::Existing, kReplaced}}},
    {"metrics --save-features", kMetrics + "--save-features @", "{H}/feat", "{H}/feat/real/inception.npy",
     "{FX}",  // {FX}/real/inception.npy would lie in the --real folder
     {}, false,
     {{Hazard::Other, "the pair is the --json row's (--json is planned first)"}, {Hazard::Existing, kReplaced},
      {Hazard::MissingFolder, kMade}}},
    {"eval -o", kEval + "-o @", "{H}/ev", "{H}/ev/table1.md", "{FX}/test-set",  // tables inside the test set
     {}, false,
     {{Hazard::Other, "eval has one output flag"}, {Hazard::Existing, kReplaced}, {Hazard::MissingFolder, kMade}}},
    {"bench --json", kBench + "--models {FX}/models --json @", "{H}/b.json", "{H}/b.json",
     "{FX}/models/copgen.json",  // the models bench reads
     {}, false, {{Hazard::Other, "the pair is the --svg row's"}, {Hazard::Existing, kReplaced}}},
    {"bench --svg", kBench + "--models {FX}/models --svg @", "{H}/b.svg", "{H}/b.svg",
     "{FX}/models/copgen.json",  // the models bench reads
     {"{H}/b.json", "--json {H}/b.json"}, false, {{Hazard::Existing, kReplaced}}},
};

// The inputs of every row in `fx`.
void make_matrix_fixture(const std::string& fx) {
  fs::create_directories(fx + "/S2L2A");
  write_synthetic(fx + "/in.tif", SyntheticRaster{});
  SyntheticRaster png;
  png.format = "PNG";
  png.georeferenced = false;
  write_synthetic(fx + "/in.png", png);  // a tile a --preview could overwrite
  write_synthetic(fx + "/scene_mean.tif", SyntheticRaster{300, 300});  // over 256: the scene path
  write_synthetic(fx + "/S2L2A/a.tif", SyntheticRaster{});
  std::ofstream(fx + "/list.txt") << "S2L1C=S2L2A/a.tif\n";
  write_pngs(fx + "/real", 5, 1);
  write_pngs(fx + "/fake", 5, 40);
  for (const std::string mod : {"DEM", "S1RTC", "S2L1C", "S2L2A"}) write_pngs(fx + "/test-set/" + mod, 4, 60);
  fs::copy(COPGEN_TEST_MODELS, fx + "/models", fs::copy_options::recursive);
  // a latent input: the given latent of a run
  const auto r = run_copgen(kTranslate + "-i " + quote(fx + "/in.tif") + " -o " + quote(fx + "/seed.tif") +
                            " --save-latents " + quote(fx + "/lat"));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  fs::remove(fx + "/seed.tif");
  fs::remove(fx + "/lat/S2L2A.npy");
}

// Makes hazard `h` for flag `f` in a fresh {H}, runs the command and checks that it is refused
// with nothing changed: the exit code and message, no name added or removed anywhere, the
// inputs' bytes, and the hazard as it was.
void expect_refused(const TempDir& tmp, const OutputFlag& f, Hazard h) {
  const std::string fx = tmp.file("fx"), hz = tmp.file("h");
  const auto expand = [&](const std::string& s) { return replace_all(replace_all(s, "{FX}", fx), "{H}", hz); };
  fs::remove_all(hz);
  fs::create_directory(hz);
  const std::string target = expand(f.writes);
  if (h == Hazard::Existing || h == Hazard::Fifo || h == Hazard::Device) {
    fs::create_directories(fs::path(target).parent_path());
  }
  std::string value = f.value, extra;
  switch (h) {
    case Hazard::Empty: value = ""; break;
    case Hazard::Input: value = f.input; break;
    case Hazard::Other:  // the other file's folder exists, as an earlier run left it
      std::tie(value, extra) = f.other;
      if (value.find('/') != std::string::npos) fs::create_directories(fs::path(expand(value)).parent_path());
      break;
    case Hazard::Existing: std::ofstream(target) << "an earlier output"; break;
    case Hazard::Fifo: REQUIRE(::mkfifo(target.c_str(), 0644) == 0); break;
    case Hazard::Device: fs::create_symlink("/dev/null", target); break;
    case Hazard::MissingFolder: value = replace_all(value, "{H}/", "{H}/missing/"); break;
  }
  const bool overwrite = f.overwrite && h != Hazard::Existing;
  const std::string command = models_env() + bin() + " " + replace_all(expand(f.command), "@", quote(expand(value))) +
                              " " + expand(extra) + (overwrite ? " --overwrite" : "");
  const auto inputs = contents_under(fx);
  const auto [code, says] = refusal(h);
  expect_failure(command, code, {says}, tmp.path);
  const auto replaced = changed(inputs, contents_under(fx));
  CHECK(replaced.empty());
  // put back what a wrong run replaced, for the next cases
  for (const std::string& name : replaced) std::ofstream(fx + "/" + name, std::ios::binary) << inputs.at(name);
  if (h == Hazard::Existing) CHECK(read_file_bytes(target) == "an earlier output");
  if (h == Hazard::Fifo) CHECK(fs::is_fifo(target));
  if (h == Hazard::Device) CHECK((fs::is_symlink(target) && fs::is_character_file(target)));
}

}  // namespace

TEST_CASE("gate: every output flag of every command refuses every hazard before any work", "[gate]") {
  TempDir tmp;
  make_matrix_fixture(tmp.file("fx"));
  int cases = 0;
  for (const OutputFlag& f : kOutputFlags) {
    for (Hazard h : kHazards) {
      if (f.not_applicable.count(h) > 0) continue;
      INFO(f.name << ": " << hazard_name(h));
      expect_refused(tmp, f, h);
      ++cases;
    }
  }
  CHECK(cases == 106);
}

// ---- issue 20, items 1, 2 and 8 ------------------------------------------------------------

TEST_CASE("gate: --stac-out never replaces an input or an image", "[gate]") {
  TempDir tmp;
  write_synthetic(tmp.file("in.tif"), SyntheticRaster{});
  const std::string input = read_file_bytes(tmp.file("in.tif"));
  const std::string translate = kTranslate + "-i " + quote(tmp.file("in.tif"));

  SECTION("-i in.tif --stac-out in.tif --overwrite: a .tif is no STAC item") {
    expect_copgen_failure(translate + " -o " + quote(tmp.file("o.tif")) + " --stac-out " + quote(tmp.file("in.tif")) +
                              " --overwrite",
                          2, {"--stac-out", "in.tif", "a STAC item is JSON"}, tmp.path);
    CHECK(read_file_bytes(tmp.file("in.tif")) == input);
  }
  SECTION("-o out.tif --stac-out out.tif: refused - an existing out.tif is never made JSON") {
    expect_copgen_failure(translate + " -o " + quote(tmp.file("out.tif")) + " --stac-out " + quote(tmp.file("out.tif")),
                          2, {"--stac-out", "out.tif"}, tmp.path);
    fs::copy_file(tmp.file("in.tif"), tmp.file("out.tif"));
    expect_copgen_failure(translate + " -o " + quote(tmp.file("out.tif")) + " --stac-out " +
                              quote(tmp.file("out.tif")) + " --overwrite",
                          2, {"--stac-out", "out.tif"}, tmp.path);
    CHECK(read_file_bytes(tmp.file("out.tif")) == input);
  }
  SECTION("--input S2L2A=item.json --stac-out item.json --overwrite: the item and its bands are inputs") {
    SyntheticRaster band{300, 300, 1, "UInt16"};
    for (const std::string b : {"B04", "B03", "B02"}) write_synthetic(tmp.file(b + ".tif"), band);
    write_json(tmp.file("item.json"), s2_item("S2_local", rgb_assets("./")));
    const auto before = contents_under(tmp.path);
    const std::string from_item = "translate --to DEM" + kQuick + "--input S2L2A=" + quote(tmp.file("item.json"));
    expect_copgen_failure(from_item + " -o " + quote(tmp.file("o.tif")) + " --stac-out " +
                              quote(tmp.file("item.json")) + " --overwrite",
                          5, {"--stac-out", "item.json", "the same file as the input"}, tmp.path);
    expect_copgen_failure(from_item + " -o " + quote(tmp.file("B04.tif")) + " --overwrite", 5,
                          {"-o", "B04.tif", "the same file as the input"}, tmp.path);
    CHECK(changed(before, contents_under(tmp.path)).empty());
  }
}

TEST_CASE("gate: a batch --stac-out that is not JSON is refused before any tuple", "[gate]") {
  TempDir tmp;
  write_major_tom(tmp.file("tree"), 2);
  const std::string batch = "translate --from S2L1C --to S2L2A" + kQuick + "--output-dir " + quote(tmp.file("out"));
  SECTION("S2L2A.tif: the name of each tuple's image (Major TOM tree)") {
    expect_copgen_failure(batch + " --input-dir " + quote(tmp.file("tree")) + " --stac-out S2L2A.tif", 2,
                          {"--stac-out", "S2L2A.tif"}, tmp.path);
  }
  SECTION("S2L1C.tif beside the images of a list (no image of that name)") {
    write_synthetic(tmp.file("a.tif"), SyntheticRaster{});
    std::ofstream(tmp.file("list.txt")) << "S2L1C=a.tif\n";
    expect_copgen_failure(batch + " --inputs-from " + quote(tmp.file("list.txt")) + " --stac-out S2L1C.tif", 2,
                          {"--stac-out", "S2L1C.tif", "a STAC item is JSON"}, tmp.path);
  }
  CHECK_FALSE(fs::exists(tmp.file("out")));
}

TEST_CASE("gate: an ItemCollection with two different items of one id is refused and nothing is written", "[gate]") {
  TempDir tmp;
  write_json(tmp.file("search.json"),
             {{"type", "FeatureCollection"},
              {"features", {s2_item("S2_A", rgb_assets("a_")), s2_item("S2_A", rgb_assets("b_"))}}});
  expect_copgen_failure("translate --from S2L2A --to DEM" + kQuick + "--inputs-from " + quote(tmp.file("search.json")) +
                            " --output-dir " + quote(tmp.file("out")) + " --stac-out item.json",
                        3, {"search.json", "two different items have the id 'S2_A'"}, tmp.path);
  CHECK_FALSE(fs::exists(tmp.file("out")));
}

TEST_CASE("gate: a batch rerun adding --stac-out writes the items from the existing images without sampling",
          "[gate]") {
  TempDir tmp;
  const auto keys = write_major_tom(tmp.file("tree"), 2);
  const std::string out = tmp.file("out");
  const std::string batch = "translate --input-dir " + quote(tmp.file("tree")) + " --from S2L1C --to S2L2A" + kQuick +
                            "--output-dir " + quote(out);
  const auto first = run_copgen(batch);
  INFO(first.output);
  REQUIRE(first.exit_code == 0);
  std::map<std::string, std::pair<std::string, fs::file_time_type>> images;
  for (const std::string& key : keys) {
    const std::string image = major_tom_output(out, key);
    images[image] = {read_file_bytes(image), fs::last_write_time(image)};
  }

  const auto rerun = run_copgen(batch + " --stac-out item.json");
  INFO(rerun.output);
  REQUIRE(rerun.exit_code == 0);
  const json report = json::parse(read_file_bytes(out + "/copgen-report.json"));
  CHECK(report["status"] == "completed");
  CHECK(report["counts"]["written"] == 2);
  CHECK(report["counts"]["batches_sampled"] == 0);
  for (const auto& [image, was] : images) {
    CHECK(read_file_bytes(image) == was.first);
    CHECK(fs::last_write_time(image) == was.second);
    const json item = json::parse(read_file_bytes((fs::path(image).parent_path() / "item.json").string()));
    CHECK(item["assets"]["S2L2A"]["href"] == "S2L2A.tif");
  }
}

TEST_CASE("gate: --dry-run refuses what the run refuses and lists every file it would write", "[gate]") {
  TempDir tmp;
  write_synthetic(tmp.file("scene.tif"), SyntheticRaster{300, 300});
  fs::create_directory(tmp.file("out"));
  const std::string o = tmp.file("out/o.tif"), item = tmp.file("out/item.json");
  const std::string scene = kTranslate + "-i " + quote(tmp.file("scene.tif")) + " -o " + quote(o) + " --dry-run";

  SECTION("--stac-out an existing file - or a FIFO") {
    std::ofstream(item) << "{}";
    expect_copgen_failure(scene + " --stac-out " + quote(item), 5, {"--stac-out", "exists (use --overwrite"},
                          tmp.path);
    REQUIRE(::mkfifo(tmp.file("out/fifo.json").c_str(), 0644) == 0);
    expect_copgen_failure(scene + " --overwrite --stac-out " + quote(tmp.file("out/fifo.json")), 5,
                          {"--stac-out", "a FIFO"}, tmp.path);
    CHECK(fs::is_fifo(tmp.file("out/fifo.json")));
    CHECK(read_file_bytes(item) == "{}");
  }
  SECTION("a scene with --samples 2 --summary mean,std and --stac-out") {
    const auto r = run_copgen(scene + " --samples 2 --summary mean,std --stac-out " + quote(item));
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    for (const std::string& line :
         {"output: " + tmp.file("out/o_s0.tif") + " (image, -o)",
          "output: " + tmp.file("out/o_s1.tif") + " (image, -o)",
          "output: " + tmp.file("out/o_mean.tif") + " (summary, --summary mean)",
          "output: " + tmp.file("out/o_std.tif") + " (summary, --summary std)",
          "output: " + item + " (STAC item, --stac-out)"}) {
      CHECK(has_line(r.output, line));
    }
    CHECK(file_names_under(tmp.path) == (std::vector<std::string>{"out", "scene.tif"}));
  }
  SECTION("a batch: each tuple's image and item - then the report") {
    const auto keys = write_major_tom(tmp.file("tree"), 1);
    const std::string batch = "translate --input-dir " + quote(tmp.file("tree")) + " --from S2L1C --to S2L2A" +
                              kQuick + "--output-dir " + quote(tmp.file("out/b")) + " --stac-out item.json --dry-run";
    const auto r = run_copgen(batch);
    INFO(r.output);
    REQUIRE(r.exit_code == 0);
    const std::string image = major_tom_output(tmp.file("out/b"), keys[0]);
    CHECK(has_line(r.output, "tuple: " + keys[0] + " -> " + image + " -> " +
                                 (fs::path(image).parent_path() / "item.json").string()));
    CHECK(has_line(r.output, "report: " + tmp.file("out/b/copgen-report.json")));
    REQUIRE(::mkfifo(tmp.file("out/r.json").c_str(), 0644) == 0);
    expect_copgen_failure(batch + " --report " + quote(tmp.file("out/r.json")), 5, {"--report", "a FIFO"}, tmp.path);
  }
}

TEST_CASE("gate: a dry run creates nothing and leaves the output folder's modification time as it was", "[gate]") {
  TempDir tmp;
  write_synthetic(tmp.file("in.tif"), SyntheticRaster{});
  write_major_tom(tmp.file("tree"), 1);
  const std::string out = tmp.file("out");
  fs::create_directory(out);
  const auto mtime = fs::last_write_time(out);
  const auto names = file_names_under(tmp.path);
  for (const std::string& args :
       {kTranslate + "-i " + quote(tmp.file("in.tif")) + " -o " + quote(out + "/new/") + " --save-latents " +
            quote(out + "/lat") + " --stac-out " + quote(out + "/item.json"),
        kTranslate + "-i " + quote(tmp.file("in.tif")) + " -o " + quote(out + "/o.tif"),
        "translate --input-dir " + quote(tmp.file("tree")) + " --from S2L1C --to S2L2A" + kQuick + "--output-dir " +
            quote(out) + " --stac-out item.json"}) {
    const auto r = run_copgen(args + " --dry-run");
    INFO(args);
    INFO(r.output);
    CHECK(r.exit_code == 0);
    CHECK(file_names_under(tmp.path) == names);
    CHECK(fs::last_write_time(out) == mtime);
  }
}

TEST_CASE("gate: the models and the feature extractors are inputs too", "[gate]") {
  TempDir tmp;
  fs::copy(COPGEN_TEST_MODELS, tmp.file("models"), fs::copy_options::recursive);
  fs::copy(COPGEN_TEST_EXTRACTORS, tmp.file("extractors"), fs::copy_options::recursive);
  write_synthetic(tmp.file("in.tif"), SyntheticRaster{});
  write_pngs(tmp.file("real"), 5, 1);
  const auto before = contents_under(tmp.path);
  const std::string models = tmp.file("models/copgen.json"), extractors = tmp.file("extractors/extractors.json");
  SECTION("translate --stac-out onto the models' manifest") {
    expect_failure("COPGEN_MODELS=" + quote(tmp.file("models")) + " " + bin() + " " + kTranslate + "-i " +
                       quote(tmp.file("in.tif")) + " -o " + quote(tmp.file("o.tif")) + " --stac-out " +
                       quote(models) + " --overwrite",
                   5, {"--stac-out", "the same file as the input"}, tmp.path);
  }
  SECTION("bench --json onto the models' manifest") {
    expect_copgen_failure(kBench + "--models " + quote(tmp.file("models")) + " --json " + quote(models),
                          5, {"--json", "the same file as the input"}, tmp.path);
  }
  SECTION("metrics --json onto the extractors' manifest") {
    expect_copgen_failure("metrics --real " + quote(tmp.file("real")) + " --fake " + quote(tmp.file("real")) +
                              " --extractors " + quote(tmp.file("extractors")) + " --device cpu --json " +
                              quote(extractors),
                          5, {"--json", "the same file as the input"}, tmp.path);
  }
  CHECK(changed(before, contents_under(tmp.path)).empty());
}
