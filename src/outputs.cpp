#include "copgen/outputs.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <set>

#include <spdlog/spdlog.h>

#include "copgen/error.hpp"
#include "copgen/version.hpp"
#include "text.hpp"

namespace copgen {

namespace fs = std::filesystem;

namespace {

// What a non-regular file is, for messages.
std::string file_kind(mode_t mode) {
  if (S_ISDIR(mode)) return "a directory";
  if (S_ISCHR(mode)) return "a character device";
  if (S_ISBLK(mode)) return "a block device";
  if (S_ISFIFO(mode)) return "a FIFO (named pipe)";
  if (S_ISSOCK(mode)) return "a socket";
  return "not a regular file";
}

std::string parent_or_dot(const fs::path& p) {
  const fs::path parent = p.parent_path();
  return parent.empty() ? "." : parent.string();
}

// The nearest of `p` and its ancestors that exists ("" when none does).
fs::path nearest_existing(fs::path p) {
  std::error_code ec;
  for (;;) {
    if (p.empty()) p = ".";
    if (fs::exists(p, ec)) return p;
    const fs::path up = p.parent_path();
    if (up == p || p == ".") return {};
    p = up;
  }
}

// True when a process with this pid runs (or exists but is not ours to signal).
bool process_alive(long pid) {
  if (pid <= 0) return true;  // not a name of ours: leave it alone
  return ::kill(static_cast<pid_t>(pid), 0) == 0 || errno != ESRCH;
}

// The pid in a leftover's name: ".copgen-work-<pid>-<n>" or ".<name>.tmp-<pid>[-<n>]";
// -1 when the name is neither.
long leftover_pid(const std::string& name) {
  std::string rest;
  if (name.rfind(".copgen-work-", 0) == 0) {
    rest = name.substr(13);
  } else if (name.size() > 1 && name[0] == '.') {
    const auto at = name.rfind(".tmp-");
    if (at == std::string::npos || at == 0) return -1;
    rest = name.substr(at + 5);
  } else {
    return -1;
  }
  const auto dash = rest.find('-');
  const std::string digits = rest.substr(0, dash);
  if (digits.empty() || digits.size() > 9 || digits.find_first_not_of("0123456789") != std::string::npos) return -1;
  return std::stol(digits);
}

}  // namespace

std::string special_file_kind(const std::string& path) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0 || S_ISREG(st.st_mode) || S_ISDIR(st.st_mode)) return "";
  return file_kind(st.st_mode);
}

std::vector<std::string> input_files(const std::string& input) {
  std::vector<std::string> out;
  std::error_code ec;
  if (fs::is_directory(input, ec)) {
    for (fs::directory_iterator it(input, ec), end; !ec && it != end; it.increment(ec)) {
      if (it->is_regular_file(ec)) out.push_back(it->path().string());
    }
    return out;
  }
  if (fs::exists(input, ec)) return {input};
  // a comma-joined list of band files
  for (std::size_t start = 0; input.find(',') != std::string::npos && start <= input.size();) {
    const std::size_t end = std::min(input.find(',', start), input.size());
    const std::string part = input.substr(start, end - start);
    if (!part.empty() && fs::exists(part, ec)) out.push_back(part);
    start = end + 1;
  }
  return out;
}

void check_output_file(const std::string& path, const std::vector<std::string>& inputs, const std::string& what) {
  struct stat out {};
  if (::stat(path.c_str(), &out) != 0) return;  // nothing there yet (or a dangling link, replaced as a name)
  if (!S_ISREG(out.st_mode)) {
    throw OutputError(what + " '" + path + "' exists and is " + file_kind(out.st_mode) +
                      ", not a regular file; copgen only replaces files it could have written (--overwrite "
                      "included): give another output path");
  }
  for (const std::string& in : inputs) {
    struct stat st {};
    if (::stat(in.c_str(), &st) == 0 && st.st_dev == out.st_dev && st.st_ino == out.st_ino) {
      throw OutputError(what + " '" + path + "' is the same file as the input '" + in +
                        "'; writing it would destroy the input: give another output path");
    }
  }
}

void check_output_extension(const std::string& path, const std::string& flag) {
  const std::string ext = detail::lower(fs::path(path).extension().string());
  if (ext.empty() || ext == ".tif" || ext == ".tiff") return;
  throw UsageError(flag + " '" + path + "': copgen writes GeoTIFF files (--format GTiff or COG); name the output " +
                   "with .tif or .tiff, not '" + fs::path(path).extension().string() + "'");
}

void check_writable_dir(const std::string& dir, const std::string& what) {
  const fs::path base = nearest_existing(dir);
  std::error_code ec;
  if (base.empty() || !fs::is_directory(base, ec)) {
    throw OutputError(what + " '" + dir + "': '" + (base.empty() ? dir : base.string()) +
                      "' is not a directory");
  }
  const std::string probe = (base / (".copgen-probe-" + std::to_string(::getpid()))).string();
  FILE* f = std::fopen(probe.c_str(), "wb");
  if (f == nullptr) {
    const std::string why = std::strerror(errno);
    throw OutputError(what + " '" + dir + "': '" + base.string() + "' is not writable (" + why + ")");
  }
  std::fclose(f);
  fs::remove(probe, ec);
}

void check_output_location(const std::string& path, const std::string& what, bool overwrite) {
  if (path.empty()) throw OutputError(what + ": the path is empty");
  check_output_file(path, {}, what);
  std::error_code ec;
  if (!overwrite && fs::exists(path, ec)) {
    throw OutputError(what + " '" + path + "' exists (use --overwrite to replace it)");
  }
  const fs::path p(path);
  // a path whose folder part names an existing file ("/etc/passwd/r.json")
  const fs::path base = nearest_existing(p.parent_path());
  if (!base.empty() && !fs::is_directory(base, ec)) {
    throw OutputError(what + " '" + path + "': '" + base.string() + "' is not a directory");
  }
  check_writable_dir(parent_or_dot(p), what);
}

CreatedDirs::~CreatedDirs() {
  for (auto it = made_.rbegin(); it != made_.rend(); ++it) {
    std::error_code ec;
    fs::remove(*it, ec);  // only empty folders go; a folder holding an output stays
  }
}

void CreatedDirs::create(const std::string& dir, const std::string& what) {
  if (dir.empty()) return;
  std::vector<fs::path> missing;
  std::error_code ec;
  for (fs::path p = fs::path(dir); !p.empty() && !fs::exists(p, ec); p = p.parent_path()) {
    missing.push_back(p);
    if (p.parent_path() == p) break;
  }
  fs::create_directories(dir, ec);
  std::error_code is_dir;
  if (!fs::is_directory(dir, is_dir)) {
    throw OutputError(what + " '" + dir + "': cannot create the directory" + (ec ? " (" + ec.message() + ")" : ""));
  }
  for (auto it = missing.rbegin(); it != missing.rend(); ++it) made_.push_back(it->string());
}

int remove_leftovers_of_dead_processes(const std::string& dir) {
  int removed = 0;
  std::error_code ec;
  for (fs::directory_iterator it(dir.empty() ? "." : dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    const long pid = leftover_pid(name);
    if (pid < 0 || process_alive(pid)) continue;
    std::error_code rm;
    fs::remove_all(it->path(), rm);
    if (!rm) {
      ++removed;
      spdlog::info("removed '{}', left by an earlier copgen process that was killed", it->path().string());
    }
  }
  return removed;
}

WorkDir::WorkDir(const std::string& parent) {
  static std::atomic<int> counter{0};
  const std::string dir = parent.empty() ? "." : parent;
  remove_leftovers_of_dead_processes(dir);
  path_ = (fs::path(dir) / (".copgen-work-" + std::to_string(::getpid()) + "-" + std::to_string(counter++))).string();
  std::error_code ec;
  fs::create_directory(path_, ec);
  if (ec) throw OutputError("cannot create a work directory '" + path_ + "': " + ec.message());
}

WorkDir::~WorkDir() {
  std::error_code ec;
  fs::remove_all(path_, ec);
}

void write_text_atomically(const std::string& path, const std::string& text, const std::string& what) {
  check_output_file(path, {}, what);
  const fs::path target(path);
  CreatedDirs dirs;
  if (!target.parent_path().empty()) dirs.create(target.parent_path().string(), what);
  static std::atomic<int> counter{0};
  const fs::path temp = target.parent_path() / ("." + target.filename().string() + ".tmp-" +
                                                std::to_string(::getpid()) + "-" + std::to_string(counter++));
  std::error_code ec;
  {
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) {
      fs::remove(temp, ec);
      throw OutputError(what + " '" + path + "': cannot write");
    }
  }
  fs::rename(temp, target, ec);
  if (ec) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    throw OutputError(what + " '" + path + "': cannot rename into place (" + ec.message() + ")");
  }
}

// ---- the outputs of a run ------------------------------------------------------------

std::vector<std::string> band_descriptions(Modality m) {
  switch (m) {
    case Modality::DEM: return {"hillshade", "hillshade", "hillshade"};
    case Modality::S1RTC: return {"VV (dB, stretched)", "VV+VH (stretched)", "VH (dB, stretched)"};
    case Modality::S2L1C:
    case Modality::S2L2A: return {"B04 (red)", "B03 (green)", "B02 (blue)"};
  }
  return {};
}

std::string insert_sample_suffix(const std::string& path, int k, int n) {
  if (n <= 1) return path;
  const fs::path p(path);
  const std::string suffix = "_s" + std::to_string(k);
  return (p.parent_path() / (p.stem().string() + suffix + p.extension().string())).string();
}

void validate(const OutputOptions& o) {
  if (o.path.empty()) throw UsageError("-o/--output: an output path is required");
  if (o.format != "GTiff" && o.format != "COG") {
    throw UsageError("--format: unknown format '" + o.format + "' (expected GTiff or COG)");
  }
}

OutputPlan plan_outputs(const OutputOptions& o, int samples, const std::vector<Modality>& generated,
                        const std::vector<Modality>& saved_latent_modalities, const std::vector<std::string>& inputs) {
  OutputPlan plan;
  std::set<std::string> all;
  std::set<std::string> dirs;
  std::vector<std::string> input_paths;
  for (const std::string& in : inputs) {
    for (const std::string& f : input_files(in)) input_paths.push_back(f);
  }
  // -o out/, an existing folder or several outputs: the folder is made if missing
  const bool dir_mode = o.path.find("{modality}") == std::string::npos &&
                        (o.path.back() == '/' || fs::is_directory(o.path) || generated.size() > 1);
  const auto check = [&](const std::string& p, const std::string& what) {
    check_output_file(p, input_paths, what);
    std::error_code ec;
    if (!o.overwrite && fs::exists(p, ec)) {
      throw OutputError(what + " '" + p + "' exists (use --overwrite to replace it)");
    }
  };
  for (int k = 0; k < samples; ++k) {
    std::vector<std::string> row;
    for (Modality m : generated) {
      const std::string p = output_path(o.path, generated, m, k, samples);
      if (!all.insert(p).second) {
        throw UsageError("-o '" + o.path + "': two outputs would both be written to '" + p + "'");
      }
      check_output_extension(p, "-o");
      check(p, "output");
      dirs.insert(fs::path(p).parent_path().string());
      row.push_back(p);
    }
    plan.images.push_back(row);
    std::vector<std::string> lrow(kNumModalities);
    if (!o.save_latents_dir.empty()) {
      for (Modality m : saved_latent_modalities) {
        const std::string p = insert_sample_suffix(
            (fs::path(o.save_latents_dir) / (modality_name(m) + ".npy")).string(), k, samples);
        check(p, "latent output");
        if (!all.insert(p).second) {
          throw UsageError("--save-latents '" + o.save_latents_dir + "': '" + p + "' collides with another output");
        }
        lrow[static_cast<size_t>(modality_index(m))] = p;
      }
    }
    plan.latents.push_back(lrow);
  }
  // Folders are made only once every check passed; the plan removes them again if the run
  // ends before writing into them.
  for (const std::string& d : dirs) {
    const std::string dir = d.empty() ? "." : d;
    std::error_code ec;
    if (!dir_mode && !fs::is_directory(dir, ec)) {
      throw OutputError("output directory '" + dir + "' does not exist or is not a directory");
    }
    check_writable_dir(dir, "output directory");
  }
  if (!o.save_latents_dir.empty()) check_writable_dir(o.save_latents_dir, "--save-latents directory");
  for (const std::string& d : dirs) {
    if (dir_mode) plan.dirs.create(d, "output directory");
  }
  if (!o.save_latents_dir.empty()) plan.dirs.create(o.save_latents_dir, "--save-latents directory");
  return plan;
}

std::map<std::string, std::string> run_metadata(const SamplingOptions& s, int samples, const Models& models,
                                                std::uint64_t seed, const std::string& mode,
                                                const std::vector<Modality>& given_mods, const Roles& roles) {
  const std::vector<Modality>& generated = roles.generated;
  std::map<std::string, std::string> meta = {
      {"COPGEN_VERSION", kVersion},
      {"COPGEN_MODELS_SHA256", models.manifest().sha256},
      {"COPGEN_MODELS_SOURCE", models.manifest().backbone.source},
      {"COPGEN_MODE", mode},
      {"COPGEN_SEED", std::to_string(seed)},
      {"COPGEN_STEPS", std::to_string(s.sampler.steps)},
      {"COPGEN_SOLVER", solver_name(s.sampler.solver)},
      {"COPGEN_TIME_GRID", time_grid_name(s.sampler.grid)},
      {"COPGEN_GUIDANCE_SCALE", std::to_string(s.guidance.scale)},
      {"COPGEN_BATCH_SIZE", std::to_string(s.batch_size)},
      {"COPGEN_GIVEN", given_mods.empty() ? "none" : join_modalities(given_mods)},
      {"COPGEN_GENERATED", join_modalities(generated)},
      {"COPGEN_UNUSED", roles.unused.empty() ? "none" : join_modalities(roles.unused) + " (noise at t=N)"},
      {"COPGEN_COND_LATENT", cond_latent_name(s.cond_latent)},
      {"COPGEN_SAMPLES", std::to_string(samples)},
  };
  const auto settings = models.settings_metadata();  // precisions and TF32
  meta.insert(settings.begin(), settings.end());
  return meta;
}

std::string output_path(const std::string& output, const std::vector<Modality>& modalities,
                        Modality modality, int k, int n) {
  std::string path;
  const auto pos = output.find("{modality}");
  if (pos != std::string::npos) {
    path = output;
    for (auto p = path.find("{modality}"); p != std::string::npos; p = path.find("{modality}")) {
      path.replace(p, 10, modality_name(modality));
    }
  } else if (output.back() == '/' || fs::is_directory(output) || modalities.size() > 1) {
    if (modalities.size() > 1 && output.back() != '/' && !fs::is_directory(output) &&
        fs::path(output).has_extension()) {
      throw UsageError("-o '" + output + "': " + std::to_string(modalities.size()) +
                       " modalities are generated (" + join_modalities(modalities) +
                       "); give a directory or a pattern with {modality}");
    }
    path = (fs::path(output) / (modality_name(modality) + ".tif")).string();
  } else {
    path = output;
  }
  return insert_sample_suffix(path, k, n);
}

}  // namespace copgen
