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

#include <spdlog/spdlog.h>

#include "copgen/error.hpp"

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
  std::string ext = fs::path(path).extension().string();
  for (char& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
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

}  // namespace copgen
