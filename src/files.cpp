#include "copgen/files.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cerrno>
#include <csignal>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <spdlog/spdlog.h>

#include "copgen/error.hpp"
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

// The nearest of `p` and its ancestors that exists ("" when none does). A symbolic link
// loop on the way is an OutputError naming `what`.
fs::path nearest_existing(fs::path p, const std::string& what) {
  for (;;) {
    if (p.empty()) p = ".";
    struct stat st {};
    if (::stat(p.c_str(), &st) == 0) return p;
    if (errno == ELOOP) throw OutputError(what + ": '" + p.string() + "' is a symbolic link loop");
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

// A path as the gate compares it: absolute and lexically normal ("a/./b/../c" -> "/cwd/a/c").
std::string normal(const std::string& path) {
  std::error_code ec;
  const fs::path abs = fs::absolute(path, ec);
  std::string s = (ec ? fs::path(path) : abs).lexically_normal().string();
  while (s.size() > 1 && s.back() == '/') s.pop_back();
  return s;
}

// `path` is `dir` or lies under it (both absolute and normal).
bool is_under(const std::string& path, const std::string& dir) {
  return path == dir || (path.size() > dir.size() && path.compare(0, dir.size(), dir) == 0 &&
                         (dir.back() == '/' || path[dir.size()] == '/'));
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
  // a STAC reference "search.json#ITEM": the document
  const auto hash = input.rfind('#');
  if (hash != std::string::npos && input.find('/', hash) == std::string::npos && fs::exists(input.substr(0, hash), ec)) {
    return {input.substr(0, hash)};
  }
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
  if (::stat(path.c_str(), &out) != 0) {
    if (errno == ELOOP) throw OutputError(what + " '" + path + "' is a symbolic link loop");
    return;  // nothing there yet (or a dangling link, replaced as a name)
  }
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

namespace {

// Why no file can be created in the existing directory `dir` ("" when one can): write and
// search permission, a file system mounted read-write. A check without a probe file.
std::string unwritable_reason(const fs::path& dir) {
  struct statvfs vfs {};
  if (::statvfs(dir.c_str(), &vfs) == 0 && (vfs.f_flag & ST_RDONLY) != 0) return std::strerror(EROFS);
  if (::faccessat(AT_FDCWD, dir.c_str(), W_OK | X_OK, AT_EACCESS) != 0) return std::strerror(errno);
  return "";
}

}  // namespace

void check_writable_dir(const std::string& dir, const std::string& what) {
  const fs::path base = nearest_existing(dir.empty() ? "." : dir, what + " '" + dir + "'");
  std::error_code ec;
  if (base.empty() || !fs::is_directory(base, ec)) {
    throw OutputError(what + " '" + dir + "': '" + (base.empty() ? dir : base.string()) + "' is not a directory");
  }
  const std::string why = unwritable_reason(base);
  if (!why.empty()) throw OutputError(what + " '" + dir + "': '" + base.string() + "' is not writable (" + why + ")");
}

std::string file_kind_name(FileKind kind) {
  switch (kind) {
    case FileKind::Image: return "image";
    case FileKind::Latent: return "latent";
    case FileKind::Summary: return "summary";
    case FileKind::StacItem: return "STAC item";
    case FileKind::Report: return "report";
    case FileKind::Table: return "table";
    case FileKind::Json: return "JSON";
    case FileKind::Features: return "features";
    case FileKind::Preview: return "preview";
    case FileKind::Page: return "HTML page";
  }
  return "file";
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

// ---- the gate -------------------------------------------------------------------------

OutputGate::OutputGate(const std::vector<std::string>& inputs, bool overwrite) : overwrite_(overwrite) {
  for (const std::string& in : inputs) add_input(in);
}

void OutputGate::add_input(const std::string& input) {
  std::error_code ec;
  if (!input.empty() && fs::is_directory(input, ec)) input_dirs_.insert(fs::canonical(input, ec).string());
  inputs_.push_back(input);
  inputs_listed_ = false;
}

void OutputGate::allow_new_dirs(const std::string& dir) { new_dir_roots_.push_back(normal(dir)); }

const std::string& OutputGate::add(const std::string& path, FileKind kind, const std::string& flag) {
  return plan(path, kind, flag, Mode::Write);
}

const std::string& OutputGate::add_replaced(const std::string& path, FileKind kind, const std::string& flag) {
  return plan(path, kind, flag, Mode::Replace);
}

const std::string& OutputGate::keep(const std::string& path, FileKind kind, const std::string& flag) {
  return plan(path, kind, flag, Mode::Keep);
}

std::vector<std::string> OutputGate::paths(FileKind kind) const {
  std::vector<std::string> out;
  for (const PlannedFile& f : files_) {
    if (f.kind == kind) out.push_back(f.path);
  }
  return out;
}

// An existing path is compared with every input file (listed once, on the first such
// check: a fresh run checks nothing); any path with the input folders.
void OutputGate::check_not_input(const std::string& path, const std::string& label) {
  struct stat st {};
  if (::stat(path.c_str(), &st) == 0) {
    if (!inputs_listed_) {
      input_ids_.clear();
      for (const std::string& in : inputs_) {
        for (const std::string& f : input_files(in)) {
          struct stat is {};
          if (::stat(f.c_str(), &is) == 0) input_ids_.emplace(std::make_pair(is.st_dev, is.st_ino), f);
        }
      }
      inputs_listed_ = true;
    }
    if (const auto it = input_ids_.find({st.st_dev, st.st_ino}); it != input_ids_.end()) {
      throw OutputError(label + " is the same file as the input '" + it->second +
                        "'; writing it would destroy the input: give another path");
    }
  }
  if (input_dirs_.empty()) return;
  std::error_code ec;
  const fs::path parent = fs::weakly_canonical(fs::absolute(path, ec).parent_path(), ec);
  for (fs::path dir = parent; !dir.empty(); dir = dir.parent_path()) {  // the folder and each above it
    if (input_dirs_.count(dir.string())) {
      throw OutputError(label + " is inside the input folder '" + dir.string() +
                        "'; a file written there would become one of its inputs: give another path");
    }
    if (dir == dir.parent_path()) break;
  }
}

// The folder of a planned file: an existing writable directory, or one the gate may make
// (under a root of allow_new_dirs) whose nearest existing ancestor is one.
void OutputGate::check_folder(const std::string& path, const std::string& label) {
  const std::string dir = fs::path(normal(path)).parent_path().string();
  if (!checked_dirs_.insert(dir).second) return;
  const fs::path base = nearest_existing(dir, label);
  std::error_code ec;
  if (base.empty() || !fs::is_directory(base, ec)) {
    throw OutputError(label + ": '" + (base.empty() ? dir : base.string()) + "' is not a directory");
  }
  const bool may_make = std::any_of(new_dir_roots_.begin(), new_dir_roots_.end(),
                                    [&](const std::string& root) { return is_under(dir, root); });
  if (base.string() != dir && !may_make) {
    throw OutputError(label + ": the folder '" + fs::path(path).parent_path().string() +
                      "' does not exist (copgen makes only the folders of -o DIR/, --output-dir and eval -o)");
  }
  const std::string why = unwritable_reason(base);
  if (!why.empty()) {
    throw OutputError(label + ": the output directory '" + base.string() + "' is not writable (" + why + ")");
  }
}

// A file cannot also be the folder of another: neither `key` inside a planned file nor a
// planned file inside `key` ("-o o.tif --save-latents o.tif").
void OutputGate::check_not_nested(const std::string& key, const std::string& label) const {
  const auto refuse = [&](const PlannedFile& other, const std::string& how) {
    throw UsageError(label + " " + how + " the " + file_kind_name(other.kind) + " of " + other.flag + " '" +
                     other.path + "'; give each output its own path");
  };
  for (fs::path up = fs::path(key).parent_path(); !up.empty() && up != up.parent_path(); up = up.parent_path()) {
    if (const auto it = by_path_.find(up.string()); it != by_path_.end()) refuse(files_[it->second], "lies inside");
  }
  const auto below = by_path_.lower_bound(key + "/");
  if (below != by_path_.end() && below->first.compare(0, key.size() + 1, key + "/") == 0) {
    refuse(files_[below->second], "would be the folder of");
  }
}

const std::string& OutputGate::plan(const std::string& path, FileKind kind, const std::string& flag, Mode mode) {
  const std::string label = flag + " '" + path + "'";
  if (path.empty()) throw UsageError(flag + ": the path is empty");
  if (detail::starts_with_ci(path, "/vsi") || path.find("://") != std::string::npos) {
    throw UsageError(label + ": copgen writes local files, not GDAL virtual paths or URLs");
  }
  const std::string key = normal(path);
  if (const auto it = by_path_.find(key); it != by_path_.end()) {
    const PlannedFile& other = files_[it->second];
    throw UsageError(label + " would be written twice: it is also the " + file_kind_name(other.kind) + " of " +
                     other.flag + " '" + other.path + "'; give each output its own path");
  }
  check_not_nested(key, label);
  check_output_file(path, {}, flag);  // not a device, FIFO, folder or link loop
  if (mode != Mode::Keep) {
    check_not_input(path, label);
    std::error_code ec;
    if (mode == Mode::Write && !overwrite_ && fs::exists(path, ec)) {
      throw OutputError(label + " exists (use --overwrite to replace it)");
    }
    check_folder(path, label);
  }
  by_path_[key] = files_.size();
  files_.push_back({path, kind, flag});
  return files_.back().path;
}

void OutputGate::make_dirs() {
  std::set<std::string> dirs;
  for (const PlannedFile& f : files_) dirs.insert(fs::path(f.path).parent_path().string());
  for (const std::string& d : dirs) {
    std::error_code ec;
    if (!d.empty() && !fs::is_directory(d, ec)) made_.create(d, "output directory");
  }
}

// ---- scratch folders, leftovers, atomic text files -------------------------------------

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

}  // namespace copgen
