// copgen eval: Table 1's rows, and the runner that generates, caches and scores them.
#include "copgen/evaluation.hpp"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>

#include "copgen/cancel.hpp"
#include "copgen/conditioning.hpp"
#include "copgen/error.hpp"
#include "copgen/files.hpp"
#include "copgen/inputs.hpp"
#include "copgen/pipeline.hpp"
#include "copgen/pixels.hpp"
#include "copgen/provenance.hpp"
#include "copgen/raster_io.hpp"
#include "copgen/sampler.hpp"
#include "copgen/sha256.hpp"
#include "copgen/version.hpp"
#include "text.hpp"

namespace copgen {

namespace fs = std::filesystem;
using nlohmann::json;
using detail::ends_with_ci;

// ---- rows -------------------------------------------------------------------------------

std::string EvalCondition::label() const {
  if (given.empty()) return "uncond.";
  return join_modalities(given, "+");
}

std::vector<Modality> EvalCondition::generated() const { return generated_modalities(given, {}); }

std::vector<EvalCondition> table1_conditions() {
  return {EvalCondition{{}}, EvalCondition{{Modality::DEM}}, EvalCondition{{Modality::S1RTC}},
          EvalCondition{{Modality::S2L1C}}, EvalCondition{{Modality::S2L2A}}};
}

std::vector<EvalCondition> parse_conditions(const std::string& text, const std::string& flag) {
  std::vector<EvalCondition> out;
  std::stringstream rows(text);
  std::string row;
  while (std::getline(rows, row, ',')) {
    const auto b = row.find_first_not_of(" \t");
    if (b == std::string::npos) throw UsageError(flag + " '" + text + "': an empty row");
    row = row.substr(b, row.find_last_not_of(" \t") - b + 1);
    std::vector<std::string> names;
    std::stringstream parts(row);
    std::string name;
    while (std::getline(parts, name, '+')) names.push_back(name);
    if (names.empty()) throw UsageError(flag + " '" + text + "': an empty row");
    EvalCondition c{sorted_modalities(parse_modality_list(names, flag))};
    if (c.given.size() == kAllModalities.size()) {
      throw UsageError(flag + " '" + row + "': gives all four modalities, so nothing would be generated");
    }
    if (std::find(out.begin(), out.end(), c) != out.end()) {
      throw UsageError(flag + ": row " + c.label() + " is given more than once");
    }
    out.push_back(std::move(c));
  }
  if (out.empty()) throw UsageError(flag + ": no row given (e.g. \"DEM+S1RTC,S2L1C\")");
  return out;
}

std::optional<TableValues> paper_values(const EvalCondition& condition) {
  // Table 1 of COP-GEN-Beta (shared/reference/metrics.md), COP-GEN-Beta rows. Per row:
  // F, P, R (percent) and FID for DEM, S1RTC, S2L1C, S2L2A; a negative value is NA.
  struct Row {
    std::vector<Modality> given;
    double f[4], p[4], r[4], fid[4];
  };
  static const Row rows[] = {
      {{}, {42.25, 24.22, 36.71, 39.54}, {73.25, 49.81, 73.65, 71.72}, {29.69, 16.00, 24.45, 27.29},
       {90.36, 52.21, 53.66, 48.49}},
      {{Modality::DEM}, {-1, 30.14, 42.71, 46.64}, {-1, 45.35, 68.04, 67.77}, {-1, 22.58, 31.12, 35.56},
       {-1, 23.97, 27.33, 25.32}},
      {{Modality::S1RTC}, {49.17, -1, 42.67, 46.63}, {65.53, -1, 68.96, 69.38}, {39.35, -1, 30.89, 35.12},
       {49.27, -1, 29.55, 27.18}},
      {{Modality::S2L1C}, {51.89, 32.57, -1, 83.51}, {64.25, 47.22, -1, 85.68}, {43.52, 24.86, -1, 81.45},
       {40.90, 20.94, -1, 7.71}},
      {{Modality::S2L2A}, {51.41, 33.13, 82.78, -1}, {62.71, 46.75, 85.50, -1}, {43.56, 25.66, 80.24, -1},
       {36.70, 20.98, 5.57, -1}},
  };
  for (const Row& row : rows) {
    if (row.given != condition.given) continue;
    TableValues v;
    for (Modality m : kAllModalities) {
      const auto i = static_cast<size_t>(modality_index(m));
      if (row.f[i] < 0) continue;
      v.f[m] = row.f[i];
      v.precision[m] = row.p[i];
      v.recall[m] = row.r[i];
      v.fid[m] = row.fid[i];
    }
    return v;
  }
  return std::nullopt;
}

void validate(const EvalOptions& o) {
  if (o.test_set.empty()) throw UsageError("--test-set: a test set folder is required");
  if (o.output.empty()) throw UsageError("-o/--output: an output folder is required");
  if (o.samples_per_tuple < 1) {
    throw UsageError("--samples-per-tuple: must be at least 1, got " + std::to_string(o.samples_per_tuple));
  }
  if (o.limit < 0) throw UsageError("--limit: must be positive (0: all), got " + std::to_string(o.limit));
  if (o.feature_batch < 1) {
    throw UsageError("--feature-batch: must be at least 1, got " + std::to_string(o.feature_batch));
  }
  if (o.pr.k < 1) throw UsageError("--k: must be at least 1, got " + std::to_string(o.pr.k));
  if (o.report_examples < 0) {
    throw UsageError("--report-examples: must be 0 or more, got " + std::to_string(o.report_examples));
  }
  validate(o.sampling);
}

// ---- the run ------------------------------------------------------------------------------

namespace {

std::optional<json> read_json(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  if (!f) return std::nullopt;
  try {
    return json::parse(f);
  } catch (const json::exception&) {
    return std::nullopt;  // a damaged cache entry is recomputed
  }
}

// The seed of chunk `chunk` of the row `label`: the first 52 bits of
// SHA-256("<seed>/<label>/<chunk>"), so that every chunk can be (re)generated alone and
// adding rows or resuming never changes another chunk's draws.
std::uint64_t chunk_seed(std::uint64_t seed, const std::string& label, std::int64_t chunk) {
  const std::string text = std::to_string(seed) + "/" + label + "/" + std::to_string(chunk);
  return std::stoull(sha256_hex(text.data(), text.size()).substr(0, 13), nullptr, 16);
}

std::string row_dir_name(const EvalCondition& c) { return c.given.empty() ? "uncond" : c.label(); }

// One generated sample: tuple `tuple` of the test set, sample `sample` of it.
struct Item {
  size_t tuple;
  int sample;
};

std::string item_name(const TestTuple& t, int sample) { return t.key + "_s" + std::to_string(sample); }

// The settings the generated images depend on; a cache made with others is not reused.
json generation_settings(const EvalOptions& o, Models& models, std::uint64_t seed) {
  return json{{"models_sha256", models.manifest().sha256},
              {"seed", seed},
              {"solver", solver_name(o.sampling.sampler.solver)},
              {"steps", o.sampling.sampler.steps},
              {"time_grid", time_grid_name(o.sampling.sampler.grid)},
              {"guidance_scale", o.sampling.guidance.scale},
              {"cond_latent", cond_latent_name(o.sampling.cond_latent)},
              {"batch_size", o.sampling.batch_size},
              {"samples_per_tuple", o.samples_per_tuple},
              {"image_size", models.image_size()}};
}

class Runner {
 public:
  Runner(const EvalOptions& o, Models& models, Extractors& ex, const EvalProgress& progress)
      : o_(o), models_(models), ex_(ex), progress_(progress), cache_(fs::path(o.output) / "cache") {}

  EvalResult run();

 private:
  json provenance(std::int64_t n) const;
  void prepare_cache();
  // uint8 [3, S, S] of each tuple's real `m`, decoding moments/latents where given so.
  torch::Tensor real_pixels(Modality m, size_t first, size_t count);
  ImageFeatures real_features(Modality m);
  void generate_row(const EvalCondition& c, bool& changed);
  ImageFeatures generated_features(const EvalCondition& c, Modality m, bool changed);
  ImageFeatures cached_features(const fs::path& dir, const json& key, const std::string& what,
                                const std::function<ImageFeatures()>& compute);
  // report.html's pictures, relative to the output folder: real image e of `m`, and the
  // generated `m` of example e in row `c`.
  static std::string report_real(size_t e, Modality m) {
    return "report/real-" + std::to_string(e) + "-" + modality_name(m) + ".png";
  }
  static std::string report_generated(const EvalCondition& c, size_t e, Modality m) {
    return "report/" + row_dir_name(c) + "-" + std::to_string(e) + "-" + modality_name(m) + ".png";
  }
  // Writes the report's pictures (the real crops, copies of the cached samples) and fills
  // result.examples and each row's examples.
  void write_report_images(EvalResult& result, size_t examples);
  std::string image_path(const EvalCondition& c, Modality m, const Item& it) const {
    return (cache_ / "generated" / row_dir_name(c) / modality_name(m) /
            (item_name(set_.tuples[it.tuple], it.sample) + ".png"))
        .string();
  }
  std::vector<Item> items() const {
    std::vector<Item> v;
    for (size_t t = 0; t < set_.tuples.size(); ++t) {
      for (int s = 0; s < o_.samples_per_tuple; ++s) v.push_back({t, s});
    }
    return v;
  }
  void report(const std::string& step, std::int64_t done, std::int64_t total) const {
    if (progress_) progress_(step, done, total);
  }

  const EvalOptions& o_;
  Models& models_;
  Extractors& ex_;
  const EvalProgress& progress_;
  fs::path cache_;
  TestSet set_;
  std::uint64_t seed_ = 0;
  EvalCacheStats stats_;
};

void Runner::prepare_cache() {
  std::error_code ec;
  fs::create_directories(cache_, ec);
  if (!fs::is_directory(cache_, ec)) throw OutputError("-o '" + o_.output + "': cannot create " + cache_.string());
  const std::string settings_path = (cache_ / "settings.json").string();
  const std::optional<json> old = read_json(settings_path);
  if (o_.sampling.seed) {
    seed_ = *o_.sampling.seed;
  } else if (old && old->contains("seed") && (*old)["seed"].is_number_unsigned()) {
    seed_ = (*old)["seed"].get<std::uint64_t>();
    spdlog::info("seed: {} (from the cache in '{}'; pass --seed to choose another)", seed_, cache_.string());
  } else {
    seed_ = random_seed();
    spdlog::info("seed: {} (random; pass --seed {} to reproduce)", seed_, seed_);
  }
  const json want = generation_settings(o_, models_, seed_);
  if (old && *old != want) {
    std::string diff;
    for (const auto& [key, value] : want.items()) {
      if (!old->contains(key) || (*old)[key] != value) {
        diff += (diff.empty() ? "" : ", ") + key + " " + (old->contains(key) ? (*old)[key].dump() : "unset") +
                " -> " + value.dump();
      }
    }
    if (!o_.overwrite) {
      throw UsageError("-o '" + o_.output + "' holds an eval cache made with other settings (" + diff +
                       "); use another output folder, the same settings, or --overwrite to discard the cache");
    }
    spdlog::warn("discarding the eval cache in '{}' (settings changed: {})", cache_.string(), diff);
    fs::remove_all(cache_, ec);
    if (ec) throw OutputError("cannot remove the old cache '" + cache_.string() + "' (" + ec.message() + ")");
    fs::create_directories(cache_, ec);
  }
  write_text_atomically(settings_path, want.dump(2) + "\n", "output");
}

torch::Tensor Runner::real_pixels(Modality m, size_t first, size_t count) {
  std::vector<torch::Tensor> pixels(count);
  std::vector<torch::Tensor> latents;  // to decode, in order
  std::vector<size_t> owners;
  for (size_t i = 0; i < count; ++i) {
    const TestTuple& t = set_.tuples[first + i];
    GivenData in = read_test_input(t.files.at(m), m, models_);
    if (in.pixels.defined()) {
      pixels[i] = in.pixels;
    } else {
      // a real image given as moments is the autoencoder's decoding of the posterior mean
      latents.push_back(in.latent.defined() ? in.latent
                                            : in.moments.narrow(0, 0, models_.latent_channels()) *
                                                  models_.scale_factor());
      owners.push_back(i);
    }
  }
  c10::InferenceMode guard;
  for (size_t j = 0; j < latents.size(); j += 8) {  // at most 8 decodes at once, as encode_images
    const size_t b = std::min<size_t>(8, latents.size() - j);
    const std::vector<torch::Tensor> part(latents.begin() + static_cast<std::ptrdiff_t>(j),
                                          latents.begin() + static_cast<std::ptrdiff_t>(j + b));
    const torch::Tensor decoded = model_to_pixels(models_.decode(torch::stack(part, 0))).to(torch::kCPU);
    for (size_t q = 0; q < b; ++q) pixels[owners[j + q]] = decoded[static_cast<int64_t>(q)];
  }
  return torch::stack(pixels, 0);
}

ImageFeatures Runner::cached_features(const fs::path& dir, const json& key, const std::string& what,
                                      const std::function<ImageFeatures()>& compute) {
  const std::string key_path = (dir / "items.json").string();
  if (const std::optional<json> old = read_json(key_path); old && *old == key) {
    try {
      ImageFeatures f = load_features(dir.string());
      if (f.count() == static_cast<std::int64_t>(key["items"].size())) {
        ++stats_.features_reused;
        spdlog::debug("{}: features from the cache", what);
        return f;
      }
    } catch (const InputError&) {
      // missing or damaged: computed again below
    }
  }
  std::error_code ec;
  fs::remove(key_path, ec);  // invalid until the new features are written
  ImageFeatures f = compute();
  save_features(f, dir.string());
  write_text_atomically(key_path, key.dump(1) + "\n", "output");
  ++stats_.features_extracted;
  return f;
}

ImageFeatures Runner::real_features(Modality m) {
  json key{{"kind", "real"},
           {"modality", modality_name(m)},
           {"extractors_sha256", ex_.manifest().sha256},
           {"image_size", models_.image_size()}};
  if (std::any_of(set_.tuples.begin(), set_.tuples.end(),
                  [m](const TestTuple& t) { return ends_with_ci(t.files.at(m), ".npy"); })) {
    key["models_sha256"] = models_.manifest().sha256;  // real images decoded by the autoencoder
  }
  json files = json::array();
  for (const TestTuple& t : set_.tuples) files.push_back(t.files.at(m));
  key["items"] = files;
  const std::string what = "real " + modality_name(m);
  return cached_features(cache_ / "features" / "real" / modality_name(m), key, what, [&] {
    std::vector<torch::Tensor> inc, vgg;
    const size_t n = set_.tuples.size(), step = static_cast<size_t>(o_.feature_batch);
    for (size_t i = 0; i < n; i += step) {
      throw_if_stop_requested();
      const size_t b = std::min(step, n - i);
      const ImageFeatures f = extract_features(ex_, real_pixels(m, i, b), o_.feature_batch);
      inc.push_back(f.inception);
      vgg.push_back(f.vgg16);
      report("features of " + what, static_cast<std::int64_t>(i + b), static_cast<std::int64_t>(n));
    }
    return ImageFeatures{torch::cat(inc, 0), torch::cat(vgg, 0)};
  });
}

void Runner::generate_row(const EvalCondition& c, bool& changed) {
  const std::vector<Modality> generated = c.generated();
  const Roles roles = Roles::make(c.given, generated);
  const std::vector<Item> all = items();
  const auto n = static_cast<std::int64_t>(all.size());
  const std::int64_t chunks = chunks_of(n, o_.sampling.batch_size);
  const int calls_per_step = passes_per_step(o_.sampling.guidance, !c.given.empty());
  const fs::path chunk_dir = cache_ / "generated" / row_dir_name(c) / "chunks";
  std::error_code ec;
  fs::create_directories(chunk_dir, ec);
  for (Modality m : generated) fs::create_directories(cache_ / "generated" / row_dir_name(c) / modality_name(m), ec);

  for (std::int64_t k = 0; k < chunks; ++k) {
    throw_if_stop_requested();
    const std::int64_t first = k * o_.sampling.batch_size;
    const std::int64_t b = std::min<std::int64_t>(o_.sampling.batch_size, n - first);
    const std::uint64_t seed = chunk_seed(seed_, c.label(), k);
    json marker{{"row", c.label()}, {"chunk", k}, {"seed", seed}};
    json names = json::array();
    for (std::int64_t j = 0; j < b; ++j) {
      const Item& it = all[static_cast<size_t>(first + j)];
      names.push_back(item_name(set_.tuples[it.tuple], it.sample));
    }
    marker["items"] = names;
    const std::string marker_path = (chunk_dir / (std::to_string(k) + ".json")).string();
    if (const std::optional<json> old = read_json(marker_path); old && *old == marker) {
      bool complete = true;
      for (std::int64_t j = 0; j < b && complete; ++j) {
        for (Modality m : generated) {
          if (!fs::is_regular_file(image_path(c, m, all[static_cast<size_t>(first + j)]), ec)) complete = false;
        }
      }
      if (complete) {
        ++stats_.chunks_reused;
        report("generating row " + c.label() + " (cached)", first + b, n);
        continue;
      }
    }
    fs::remove(marker_path, ec);

    // The given modalities of the chunk's tuples, each file read once.
    std::map<size_t, std::map<Modality, GivenData>> given;
    std::vector<TupleInputs> inputs;
    for (std::int64_t j = 0; j < b; ++j) {
      const Item& it = all[static_cast<size_t>(first + j)];
      const TestTuple& t = set_.tuples[it.tuple];
      if (!given.count(it.tuple)) {
        auto& g = given[it.tuple];
        for (Modality m : c.given) {
          g[m] = read_test_input(t.files.at(m), m, models_);
        }
      }
      inputs.push_back(TupleInputs{t.key, given[it.tuple]});
    }
    at::Generator gen = at::detail::createCPUGenerator(seed);
    const std::vector<TupleOutputs> outs =
        sample_tuples(models_, roles, inputs, o_.sampling, gen, [&](int, int) {
          stats_.network_calls += calls_per_step;
          throw_if_stop_requested();
        });
    WriteOptions w;
    w.format = "PNG";
    for (std::int64_t j = 0; j < b; ++j) {
      const Item& it = all[static_cast<size_t>(first + j)];
      for (Modality m : generated) {
        throw_if_stop_requested();
        const std::string path = image_path(c, m, it);
        fs::create_directories(fs::path(path).parent_path(), ec);  // keys may hold '/' ("433U/433U_1043R")
        write_image_u8(path, tensor_to_image(outs[static_cast<size_t>(j)].images.at(m), GeoInfo{}), w);
        ++stats_.images_generated;
      }
    }
    write_text_atomically(marker_path, marker.dump(1) + "\n", "output");  // the chunk is complete only now
    ++stats_.chunks_generated;
    changed = true;
    report("generating row " + c.label(), first + b, n);
  }
}

ImageFeatures Runner::generated_features(const EvalCondition& c, Modality m, bool changed) {
  const std::vector<Item> all = items();
  json names = json::array();
  for (const Item& it : all) names.push_back(item_name(set_.tuples[it.tuple], it.sample));
  const json key{{"kind", "generated"},
                 {"row", c.label()},
                 {"modality", modality_name(m)},
                 {"extractors_sha256", ex_.manifest().sha256},
                 {"items", names}};
  const fs::path dir = cache_ / "features" / row_dir_name(c) / modality_name(m);
  if (changed) {  // images (re)made this run: never trust older features of the row
    std::error_code ec;
    fs::remove(dir / "items.json", ec);
  }
  const std::string what = "generated " + modality_name(m) + " of row " + c.label();
  return cached_features(dir, key, what, [&] {
    std::vector<std::string> files;
    for (const Item& it : all) files.push_back(image_path(c, m, it));
    return extract_features(ex_, files, what, o_.feature_batch, [&](std::int64_t d, std::int64_t t) {
      throw_if_stop_requested();
      report("features of " + what, d, t);
    });
  });
}

// What produced the tables: versions, models, extractors, sampler and test set.
json Runner::provenance(std::int64_t n) const {
  const Manifest& mf = models_.manifest();
  const ExtractorsManifest& em = ex_.manifest();
  return json{
      {"copgen_version", kVersion},
      {"models", {{"dir", models_.directory()}, {"sha256", mf.sha256}, {"backbone", mf.backbone.source},
                  {"autoencoder", mf.autoencoder.source}}},
      {"extractors", {{"dir", ex_.directory()}, {"sha256", em.sha256},
                      {"inception", {{"name", em.inception.name}, {"feature", em.inception.feature},
                                     {"feature_dim", em.inception.feature_dim}, {"source", em.inception.source}}},
                      {"vgg16", {{"name", em.vgg16.name}, {"feature", em.vgg16.feature},
                                 {"feature_dim", em.vgg16.feature_dim}, {"source", em.vgg16.source}}}}},
      {"seed", seed_},
      {"sampler", {{"solver", solver_name(o_.sampling.sampler.solver)}, {"steps", o_.sampling.sampler.steps},
                   {"time_grid", time_grid_name(o_.sampling.sampler.grid)},
                   {"guidance_scale", o_.sampling.guidance.scale},
                   {"cond_latent", cond_latent_name(o_.sampling.cond_latent)}}},
      {"device", models_.device().str()},
      {"batch_size", o_.sampling.batch_size},
      {"samples_per_tuple", o_.samples_per_tuple},
      {"k", o_.pr.k},
      {"test_set", {{"root", o_.test_set}, {"layout", layout_name(set_.layout)}, {"tuples", n},
                    {"incomplete_skipped", set_.incomplete}, {"limit", o_.limit}}},
      {"counts", {{"real_per_modality", n}, {"generated_per_modality", n * o_.samples_per_tuple}}},
      {"crop", "images larger than " + std::to_string(models_.image_size()) + " px: the centre " +
                   std::to_string(models_.image_size()) + " x " + std::to_string(models_.image_size()) + " crop"},
  };
}

EvalResult Runner::run() {
  const auto started = std::chrono::steady_clock::now();
  set_ = discover_test_set(o_.test_set, o_.limit);
  for (const std::string& w : set_.warnings) spdlog::warn("test set: {}", w);
  if (set_.incomplete > 0) {
    spdlog::warn("test set '{}': {} tuple(s) lack a modality and are skipped", o_.test_set, set_.incomplete);
  }
  const auto n = static_cast<std::int64_t>(set_.tuples.size());
  if (n < o_.pr.k + 1) {
    throw InputError("--test-set '" + o_.test_set + "': " + std::to_string(n) + " complete tuple(s); precision/recall " +
                     "with k = " + std::to_string(o_.pr.k) + " need at least " + std::to_string(o_.pr.k + 1));
  }
  std::vector<EvalCondition> conditions = table1_conditions();
  for (const EvalCondition& c : o_.extra_conditions) {
    if (std::find(conditions.begin(), conditions.end(), c) == conditions.end()) {
      conditions.push_back(c);
    } else {
      spdlog::info("--conditions: row {} is already a Table 1 row", c.label());
    }
  }

  // the tables and the report are replaced by every run; the cache beside them is the run's own
  OutputGate gate({o_.test_set, models_.directory(), ex_.directory()}, true);  // never an input, the models included
  gate.allow_new_dirs(o_.output);
  for (const char* name : {"table1.md", "table1.csv", "table1.json"}) {
    gate.add_replaced((fs::path(o_.output) / name).string(), FileKind::Table, "-o");
  }
  gate.add_replaced((fs::path(o_.output) / "report.html").string(), FileKind::Report, "-o");
  const size_t examples = std::min(static_cast<size_t>(o_.report_examples), set_.tuples.size());
  for (size_t e = 0; e < examples; ++e) {
    for (Modality m : kAllModalities) {
      gate.add_replaced((fs::path(o_.output) / report_real(e, m)).string(), FileKind::Image, "-o");
    }
    for (const EvalCondition& c : conditions) {
      for (Modality m : c.generated()) {
        gate.add_replaced((fs::path(o_.output) / report_generated(c, e, m)).string(), FileKind::Image, "-o");
      }
    }
  }
  prepare_cache();
  spdlog::info("eval: {} tuple(s) from '{}' ({}), {} row(s), {} sample(s) per tuple, {} steps of {}, seed {}", n,
               o_.test_set, layout_name(set_.layout), conditions.size(), o_.samples_per_tuple,
               o_.sampling.sampler.steps, solver_name(o_.sampling.sampler.solver), seed_);

  std::map<Modality, ImageFeatures> real;
  for (Modality m : kAllModalities) real[m] = real_features(m);

  EvalResult result;
  for (const EvalCondition& c : conditions) {
    bool changed = false;
    generate_row(c, changed);
    EvalRow row;
    row.condition = c;
    row.generated_images = n * o_.samples_per_tuple;
    for (Modality m : c.generated()) {
      const ImageFeatures fake = generated_features(c, m, changed);
      row.scores[m] = score_sets(real[m].inception, fake.inception, real[m].vgg16, fake.vgg16, o_.pr);
      const SetScores& s = row.scores[m];
      spdlog::info("row {:<10} {:<5}: FID {:.2f}, P {:.2f}, R {:.2f}, F {:.2f}", c.label(), modality_name(m), s.fid,
                   100 * s.precision, 100 * s.recall, 100 * s.f_score);
    }
    result.rows.push_back(std::move(row));
  }

  result.seed = seed_;
  result.cache = stats_;
  result.provenance = provenance(n);
  result.environment = to_json(system_info(ModelsDirChoice{models_.directory(), kRunModelsOrigin}));
  result.precision = "backbone " + precision_name(models_.dtype()) + ", autoencoder " + precision_name(models_.ae_dtype());
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  const std::string md = (fs::path(o_.output) / "table1.md").string();
  const std::string csv = (fs::path(o_.output) / "table1.csv").string();
  const std::string js = (fs::path(o_.output) / "table1.json").string();
  write_text_atomically(md, table1_markdown(result, o_.compare_paper), "output");
  write_text_atomically(csv, table1_csv(result, o_.compare_paper), "output");
  write_text_atomically(js, table1_json(result, o_.compare_paper).dump(2) + "\n", "output");
  gate.make_dirs();  // report/
  write_report_images(result, examples);
  const std::string html = (fs::path(o_.output) / "report.html").string();
  write_text_atomically(html, eval_report_html(result), "output");
  result.outputs = {md, csv, js, html};
  return result;
}

void Runner::write_report_images(EvalResult& result, size_t examples) {
  const fs::path out(o_.output);
  WriteOptions w;
  w.format = "PNG";
  result.examples.resize(examples);
  for (size_t e = 0; e < examples; ++e) result.examples[e].key = set_.tuples[e].key;
  if (examples > 0) {
    for (Modality m : kAllModalities) {
      throw_if_stop_requested();
      const torch::Tensor pixels = real_pixels(m, 0, examples);  // as scored: the crop or the decoding
      for (size_t e = 0; e < examples; ++e) {
        const std::string rel = report_real(e, m);
        write_image_u8((out / rel).string(), tensor_to_image(pixels[static_cast<std::int64_t>(e)], GeoInfo{}), w);
        result.examples[e].real[m] = rel;
      }
    }
  }
  for (EvalRow& row : result.rows) {
    row.examples.assign(examples, {});
    for (size_t e = 0; e < examples; ++e) {
      for (Modality m : row.condition.generated()) {
        throw_if_stop_requested();
        const std::string rel = report_generated(row.condition, e, m);
        const std::string cached = image_path(row.condition, m, Item{e, 0});
        std::ifstream in(cached, std::ios::binary);
        std::ostringstream bytes;
        bytes << in.rdbuf();
        if (!in) throw OutputError("eval cache '" + cached + "': cannot read it for report.html");
        write_text_atomically((out / rel).string(), bytes.str(), "output");
        row.examples[e][m] = rel;
      }
    }
  }
}

}  // namespace

EvalResult run_eval(const EvalOptions& options, Models& models, Extractors& extractors, const EvalProgress& progress) {
  validate(options);
  Runner runner(options, models, extractors, progress);
  return runner.run();
}

}  // namespace copgen
