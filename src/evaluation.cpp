#include "copgen/evaluation.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cinttypes>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include <ATen/CPUGeneratorImpl.h>
#include <spdlog/spdlog.h>
#include <unistd.h>

#include "copgen/cancel.hpp"
#include "copgen/conditioning.hpp"
#include "copgen/error.hpp"
#include "copgen/inputs.hpp"
#include "copgen/npy.hpp"
#include "copgen/outputs.hpp"
#include "copgen/pipeline.hpp"
#include "copgen/pixels.hpp"
#include "copgen/raster_io.hpp"
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

std::vector<Modality> EvalCondition::generated() const {
  std::vector<Modality> out;
  for (Modality m : kAllModalities) {
    if (std::find(given.begin(), given.end(), m) == given.end()) out.push_back(m);
  }
  return out;
}

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

// ---- the test set -------------------------------------------------------------------------

namespace {

// The thumbnail of a Major TOM product folder (inputs.hpp's rule).
std::string find_thumbnail(const std::string& product_dir, Modality m) {
  const std::string found = find_product_thumbnail(product_dir);
  if (found.empty()) {
    throw InputError(modality_name(m) + " product folder '" + product_dir + "' holds no *thumbnail.png");
  }
  return found;
}

}  // namespace

TestSet discover_test_set(const std::string& root, int limit) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) throw InputError("--test-set '" + root + "': not a directory");
  const std::vector<Modality> all(kAllModalities.begin(), kAllModalities.end());
  const Discovered d = discover_tuples(root, all);
  TestSet s;
  s.root = root;
  s.layout = d.layout;
  s.incomplete = static_cast<std::int64_t>(d.incomplete.size());
  s.warnings = d.warnings;
  for (const TupleSource& t : d.tuples) {
    if (limit > 0 && static_cast<int>(s.tuples.size()) >= limit) break;
    TestTuple tt;
    tt.key = t.key;
    for (const auto& [m, path] : t.inputs) {
      tt.files[m] = d.layout == TupleLayout::MajorTom ? find_thumbnail(path, m) : path;
    }
    s.tuples.push_back(std::move(tt));
  }
  if (s.tuples.empty()) {
    throw InputError("--test-set '" + root + "': no tuple has all four modalities (" + std::to_string(s.incomplete) +
                     " incomplete)");
  }
  return s;
}

GivenData read_test_input(const std::string& path, Modality m, Models& models) {
  const std::string what = modality_name(m) + " test input";
  GivenData in;
  const int64_t c = models.latent_channels();
  if (ends_with_ci(path, ".npy")) {
    torch::Tensor t = read_given_npy(path, what, c, models.latent_size());
    (t.size(0) == c ? in.latent : in.moments) = t;
    return in;
  }
  const ImageU8 img = read_image_u8(path, what);
  const int s = models.image_size();
  if (img.bands != 3 || img.width < s || img.height < s) {
    throw InputError(what + " '" + path + "': expected an image of 3 Byte bands of at least " + std::to_string(s) +
                     " x " + std::to_string(s) + ", found " + std::to_string(img.width) + " x " +
                     std::to_string(img.height) + " with " + std::to_string(img.bands) + " band(s)");
  }
  torch::Tensor t = image_to_tensor(img);
  const int64_t y0 = (img.height - s) / 2, x0 = (img.width - s) / 2;  // the centre crop
  in.pixels = t.narrow(1, y0, s).narrow(2, x0, s).contiguous();
  return in;
}

void validate(const EvalOptions& o) {
  if (o.test_set.empty()) throw UsageError("--test-set: a test set folder is required");
  if (o.output.empty()) throw UsageError("-o/--output: an output folder is required");
  if (o.batch_size < 1) throw UsageError("--batch-size: must be at least 1, got " + std::to_string(o.batch_size));
  if (o.samples_per_tuple < 1) {
    throw UsageError("--samples-per-tuple: must be at least 1, got " + std::to_string(o.samples_per_tuple));
  }
  if (o.limit < 0) throw UsageError("--limit: must be positive (0: all), got " + std::to_string(o.limit));
  if (o.feature_batch < 1) {
    throw UsageError("--feature-batch: must be at least 1, got " + std::to_string(o.feature_batch));
  }
  if (o.pr.k < 1) throw UsageError("--k: must be at least 1, got " + std::to_string(o.pr.k));
  validate(o.sampling.sampler);
  validate(o.sampling.guidance);
}

// ---- the run ------------------------------------------------------------------------------

void write_text_atomic(const std::string& path, const std::string& text) {
  write_text_atomically(path, text, "output");
}

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
              {"batch_size", o.batch_size},
              {"samples_per_tuple", o.samples_per_tuple},
              {"image_size", models.image_size()}};
}

class Runner {
 public:
  Runner(const EvalOptions& o, Models& models, Extractors& ex, const EvalProgress& progress)
      : o_(o), models_(models), ex_(ex), progress_(progress), cache_(fs::path(o.output) / "cache") {}

  EvalResult run();

 private:
  void prepare_cache();
  // uint8 [3, S, S] of each tuple's real `m`, decoding moments/latents where given so.
  torch::Tensor real_pixels(Modality m, size_t first, size_t count);
  ImageFeatures real_features(Modality m);
  void generate_row(const EvalCondition& c, bool& changed);
  ImageFeatures generated_features(const EvalCondition& c, Modality m, bool changed);
  ImageFeatures cached_features(const fs::path& dir, const json& key, const std::string& what,
                                const std::function<ImageFeatures()>& compute);
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
  if (o_.seed) {
    seed_ = *o_.seed;
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
  write_text_atomic(settings_path, want.dump(2) + "\n");
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
  write_text_atomic(key_path, key.dump(1) + "\n");
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
  const std::int64_t chunks = (n + o_.batch_size - 1) / o_.batch_size;
  const int calls_per_step = (o_.sampling.guidance.scale != 0.0 && !c.given.empty()) ? 2 : 1;
  const fs::path chunk_dir = cache_ / "generated" / row_dir_name(c) / "chunks";
  std::error_code ec;
  fs::create_directories(chunk_dir, ec);
  for (Modality m : generated) fs::create_directories(cache_ / "generated" / row_dir_name(c) / modality_name(m), ec);

  for (std::int64_t k = 0; k < chunks; ++k) {
    throw_if_stop_requested();
    const std::int64_t first = k * o_.batch_size;
    const std::int64_t b = std::min<std::int64_t>(o_.batch_size, n - first);
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
    write_text_atomic(marker_path, marker.dump(1) + "\n");  // the chunk is complete only now
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
  prepare_cache();

  std::vector<EvalCondition> conditions = table1_conditions();
  for (const EvalCondition& c : o_.extra_conditions) {
    if (std::find(conditions.begin(), conditions.end(), c) == conditions.end()) {
      conditions.push_back(c);
    } else {
      spdlog::info("--conditions: row {} is already a Table 1 row", c.label());
    }
  }
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
  const Manifest& mf = models_.manifest();
  const ExtractorsManifest& em = ex_.manifest();
  std::map<std::string, std::int64_t> per_modality_real;
  result.provenance = json{
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
      {"batch_size", o_.batch_size},
      {"samples_per_tuple", o_.samples_per_tuple},
      {"k", o_.pr.k},
      {"test_set", {{"root", o_.test_set}, {"layout", layout_name(set_.layout)}, {"tuples", n},
                    {"incomplete_skipped", set_.incomplete}, {"limit", o_.limit}}},
      {"counts", {{"real_per_modality", n}, {"generated_per_modality", n * o_.samples_per_tuple}}},
      {"crop", "images larger than " + std::to_string(models_.image_size()) + " px: the centre " +
                   std::to_string(models_.image_size()) + " x " + std::to_string(models_.image_size()) + " crop"},
  };
  result.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();

  const std::string md = (fs::path(o_.output) / "table1.md").string();
  const std::string csv = (fs::path(o_.output) / "table1.csv").string();
  const std::string js = (fs::path(o_.output) / "table1.json").string();
  write_text_atomic(md, table1_markdown(result, o_.compare_paper));
  write_text_atomic(csv, table1_csv(result, o_.compare_paper));
  write_text_atomic(js, table1_json(result, o_.compare_paper).dump(2) + "\n");
  result.outputs = {md, csv, js};
  return result;
}

// ---- tables -------------------------------------------------------------------------------

enum class Metric { F, P, R, Fid };
constexpr Metric kMetrics[] = {Metric::F, Metric::P, Metric::R, Metric::Fid};

std::string metric_column(Metric k) {
  switch (k) {
    case Metric::F: return "F";
    case Metric::P: return "P";
    case Metric::R: return "R";
    case Metric::Fid: return "FID";
  }
  return "?";
}

// The row's values in the table's units (percent for F/P/R).
TableValues measured_values(const EvalRow& row) {
  TableValues v;
  for (const auto& [m, s] : row.scores) {
    v.f[m] = 100.0 * s.f_score;
    v.precision[m] = 100.0 * s.precision;
    v.recall[m] = 100.0 * s.recall;
    v.fid[m] = s.fid;
  }
  return v;
}

std::map<Modality, double>& values_of(TableValues& v, Metric k) {
  switch (k) {
    case Metric::F: return v.f;
    case Metric::P: return v.precision;
    case Metric::R: return v.recall;
    case Metric::Fid: break;
  }
  return v.fid;
}

const std::map<Modality, double>& values_of(const TableValues& v, Metric k) {
  return values_of(const_cast<TableValues&>(v), k);  // the same member, read only
}

// a - b where both have a value (the modalities both generated).
TableValues difference(const TableValues& a, const TableValues& b) {
  TableValues d;
  for (Metric k : kMetrics) {
    const auto& other = values_of(b, k);
    for (const auto& [m, x] : values_of(a, k)) {
      if (other.count(m)) values_of(d, k)[m] = x - other.at(m);
    }
  }
  return d;
}

std::string fmt(double x, int decimals, bool sign = false) {
  char buf[64];
  std::snprintf(buf, sizeof buf, sign ? "%+.*f" : "%.*f", decimals, x);
  return buf;
}

struct TableLine {
  std::string model;
  std::string condition;
  TableValues values;
  bool signed_values = false;
};

std::vector<TableLine> table_lines(const EvalResult& r, bool compare_paper) {
  std::vector<TableLine> lines;
  for (const EvalRow& row : r.rows) {
    const TableValues mine = measured_values(row);
    lines.push_back({"COP-GEN-Beta (copgen)", row.condition.label(), mine, false});
    if (!compare_paper) continue;
    if (const auto paper = paper_values(row.condition)) {
      lines.push_back({"COP-GEN-Beta (paper)", row.condition.label(), *paper, false});
      lines.push_back({"copgen - paper", row.condition.label(), difference(mine, *paper), true});
    }
  }
  return lines;
}

std::vector<std::string> header() {
  std::vector<std::string> h = {"Model", "Condition"};
  for (Metric k : kMetrics) {
    for (Modality m : kAllModalities) h.push_back(metric_column(k) + " " + modality_name(m));
  }
  return h;
}

std::vector<std::string> cells(const TableLine& line, int decimals) {
  std::vector<std::string> c = {line.model, line.condition};
  for (Metric k : kMetrics) {
    for (Modality m : kAllModalities) {
      const auto& v = values_of(line.values, k);
      c.push_back(v.count(m) ? fmt(v.at(m), decimals, line.signed_values) : "NA");
    }
  }
  return c;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

json values_json(const TableValues& v) {
  json out = json::object();
  for (Modality m : kAllModalities) {
    if (!v.fid.count(m)) continue;
    out[modality_name(m)] = {{"f_score", v.f.at(m)}, {"precision", v.precision.at(m)},
                             {"recall", v.recall.at(m)}, {"fid", v.fid.at(m)}};
  }
  return out;
}

}  // namespace

EvalResult run_eval(const EvalOptions& options, Models& models, Extractors& extractors, const EvalProgress& progress) {
  validate(options);
  Runner runner(options, models, extractors, progress);
  return runner.run();
}

std::string table1_markdown(const EvalResult& r, bool compare_paper) {
  std::ostringstream s;
  const json& p = r.provenance;
  s << "# Table 1, measured by copgen\n\n";
  s << "F, P and R in percent (P/R with k = " << (p.is_object() ? p.value("k", 3) : 3) << "), FID on Inception pool3 features. "
    << "NA: the modality was given, not generated.\n\n";
  const std::vector<std::string> h = header();
  s << "|";
  for (const auto& c : h) s << " " << c << " |";
  s << "\n|";
  for (size_t i = 0; i < h.size(); ++i) s << "---|";
  s << "\n";
  for (const TableLine& line : table_lines(r, compare_paper)) {
    s << "|";
    for (const auto& c : cells(line, 2)) s << " " << c << " |";
    s << "\n";
  }
  if (!p.is_object() || !p.contains("models")) return s.str();
  s << "\n## Provenance\n\n";
  // the field at a JSON pointer, as text ("?" where absent)
  const auto f = [&p](const char* pointer) -> std::string {
    const json::json_pointer ptr(pointer);
    if (!p.contains(ptr)) return "?";
    const json& v = p.at(ptr);
    return v.is_string() ? v.get<std::string>() : v.dump();
  };
  s << "- models: `" << f("/models/dir") << "` (manifest sha256 `" << f("/models/sha256") << "`; backbone "
    << f("/models/backbone") << ", autoencoder " << f("/models/autoencoder") << ")\n";
  s << "- extractors: `" << f("/extractors/dir") << "` (manifest sha256 `" << f("/extractors/sha256")
    << "`; Inception " << f("/extractors/inception/source") << ", VGG16 " << f("/extractors/vgg16/source") << ")\n";
  s << "- seed " << f("/seed") << ", " << f("/sampler/steps") << " steps of " << f("/sampler/solver") << " ("
    << f("/sampler/time_grid") << "), guidance scale " << f("/sampler/guidance_scale") << ", conditioning latent "
    << f("/sampler/cond_latent") << ", batch size " << f("/batch_size") << ", device " << f("/device") << "\n";
  s << "- test set: `" << f("/test_set/root") << "` (" << f("/test_set/layout") << "), " << f("/test_set/tuples")
    << " tuples (" << f("/test_set/incomplete_skipped") << " incomplete skipped), " << f("/samples_per_tuple")
    << " sample(s) per tuple; " << f("/crop") << "\n";
  s << "- copgen " << f("/copgen_version") << "\n";
  return s.str();
}

std::string table1_csv(const EvalResult& r, bool compare_paper) {
  std::ostringstream s;
  const std::vector<std::string> h = header();
  for (size_t i = 0; i < h.size(); ++i) s << (i ? "," : "") << csv_field(h[i]);
  s << "\n";
  for (const TableLine& line : table_lines(r, compare_paper)) {
    const std::vector<std::string> c = cells(line, 4);
    for (size_t i = 0; i < c.size(); ++i) s << (i ? "," : "") << csv_field(c[i]);
    s << "\n";
  }
  return s.str();
}

json table1_json(const EvalResult& r, bool compare_paper) {
  json rows = json::array();
  for (const EvalRow& row : r.rows) {
    json j{{"condition", row.condition.label()}};
    json given = json::array(), generated = json::array();
    for (Modality m : row.condition.given) given.push_back(modality_name(m));
    for (Modality m : row.condition.generated()) generated.push_back(modality_name(m));
    j["given"] = given;
    j["generated"] = generated;
    json measured = values_json(measured_values(row));
    for (const auto& [m, s] : row.scores) {
      measured[modality_name(m)]["real_count"] = s.real_count;
      measured[modality_name(m)]["fake_count"] = s.fake_count;
    }
    j["measured"] = measured;
    if (compare_paper) {
      if (const auto paper = paper_values(row.condition)) {
        j["paper"] = values_json(*paper);
        j["difference"] = values_json(difference(measured_values(row), *paper));
      } else {
        j["paper"] = nullptr;
      }
    }
    rows.push_back(j);
  }
  return json{{"format", "copgen-eval"},
              {"format_version", 1},
              {"table", "COP-GEN-Beta Table 1"},
              {"units", {{"f_score", "percent"}, {"precision", "percent"}, {"recall", "percent"}, {"fid", "FID"}}},
              {"rows", rows},
              {"provenance", r.provenance},
              {"cache",
               {{"chunks_generated", r.cache.chunks_generated},
                {"chunks_reused", r.cache.chunks_reused},
                {"images_generated", r.cache.images_generated},
                {"features_extracted", r.cache.features_extracted},
                {"features_reused", r.cache.features_reused},
                {"network_calls", r.cache.network_calls}}},
              {"seconds", r.seconds}};
}

// ---- copgen metrics -------------------------------------------------------------------------

void validate(const CompareOptions& o) {
  if (!o.features.empty()) {
    if (!o.real.empty() || !o.fake.empty()) {
      throw UsageError("--features reads both sets' features; it cannot be combined with --real or --fake");
    }
    if (!o.save_features.empty()) throw UsageError("--save-features cannot be combined with --features");
  } else if (o.real.empty() || o.fake.empty()) {
    throw UsageError("--real and --fake: give both image folders (or --features DIR)");
  }
  if (o.batch < 1) throw UsageError("--batch-size: must be at least 1, got " + std::to_string(o.batch));
  if (o.pr.k < 1) throw UsageError("--k: must be at least 1, got " + std::to_string(o.pr.k));
}

CompareResult compare_image_sets(const CompareOptions& o, Extractors* extractors, const FeatureProgress& progress) {
  validate(o);
  if (!o.json.empty()) check_output_location(o.json, "--json", true);  // before the slow part
  ImageFeatures real, fake;
  json report;
  if (!o.features.empty()) {
    real = load_features((fs::path(o.features) / "real").string());
    fake = load_features((fs::path(o.features) / "fake").string());
    report["real"] = {{"features", (fs::path(o.features) / "real").string()}};
    report["fake"] = {{"features", (fs::path(o.features) / "fake").string()}};
    report["extractors"] = nullptr;
  } else {
    if (extractors == nullptr) throw ModelError("metrics: no feature extractors loaded");
    const std::vector<std::string> real_files = list_image_files(o.real, "--real");
    const std::vector<std::string> fake_files = list_image_files(o.fake, "--fake");
    // P/R need k + 1 points per set: say so before the slow part
    for (const auto& [flag, n] : {std::pair<std::string, size_t>{"--real", real_files.size()}, {"--fake", fake_files.size()}}) {
      if (static_cast<int64_t>(n) < o.pr.k + 1) {
        throw InputError(flag + " '" + (flag == "--real" ? o.real : o.fake) + "': " + std::to_string(n) +
                         " image(s); precision/recall with k = " + std::to_string(o.pr.k) + " need at least " +
                         std::to_string(o.pr.k + 1));
      }
    }
    const auto total = static_cast<std::int64_t>(real_files.size() + fake_files.size());
    real = extract_features(*extractors, real_files, "--real", o.batch, [&](std::int64_t d, std::int64_t) {
      throw_if_stop_requested();
      if (progress) progress(d, total);
    });
    fake = extract_features(*extractors, fake_files, "--fake", o.batch, [&](std::int64_t d, std::int64_t) {
      throw_if_stop_requested();
      if (progress) progress(static_cast<std::int64_t>(real_files.size()) + d, total);
    });
    report["real"] = {{"path", o.real}};
    report["fake"] = {{"path", o.fake}};
    const ExtractorsManifest& em = extractors->manifest();
    report["extractors"] = {{"dir", extractors->directory()},
                            {"sha256", em.sha256},
                            {"inception", em.inception.source},
                            {"vgg16", em.vgg16.source}};
    if (!o.save_features.empty()) {
      save_features(real, (fs::path(o.save_features) / "real").string());
      save_features(fake, (fs::path(o.save_features) / "fake").string());
    }
  }
  CompareResult r;
  r.scores = score_sets(real.inception, fake.inception, real.vgg16, fake.vgg16, o.pr);
  report["real"]["count"] = r.scores.real_count;
  report["fake"]["count"] = r.scores.fake_count;
  report["fid"] = r.scores.fid;
  report["precision"] = r.scores.precision;
  report["recall"] = r.scores.recall;
  report["f_score"] = r.scores.f_score;
  report["k"] = o.pr.k;
  report["copgen_version"] = kVersion;
  r.report = report;
  if (!o.json.empty()) write_text_atomic(o.json, report.dump(2) + "\n");
  return r;
}

std::string scores_table(const CompareResult& r) {
  const SetScores& s = r.scores;
  std::ostringstream t;
  t << "metric      value\n";
  t << "real        " << s.real_count << " images\n";
  t << "fake        " << s.fake_count << " images\n";
  t << "FID         " << fmt(s.fid, 4) << "\n";
  t << "precision   " << fmt(s.precision, 6) << "  (" << fmt(100 * s.precision, 2) << " %)\n";
  t << "recall      " << fmt(s.recall, 6) << "  (" << fmt(100 * s.recall, 2) << " %)\n";
  t << "F-score     " << fmt(s.f_score, 6) << "  (" << fmt(100 * s.f_score, 2) << " %)\n";
  return t.str();
}

}  // namespace copgen
