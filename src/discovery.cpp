#include "copgen/discovery.hpp"

#include <algorithm>
#include <cerrno>
#include <cctype>
#include <filesystem>
#include <fstream>
#include <optional>
#include <set>
#include <sstream>

#include <spdlog/fmt/fmt.h>

#include "copgen/error.hpp"
#include "copgen/files.hpp"
#include "text.hpp"

namespace copgen {

namespace fs = std::filesystem;

using detail::ends_with_ci;
using detail::lower;
using detail::starts_with_ci;

namespace {

// The modality a folder name stands for ("S2L1C", "s2_l1c"), if any.
std::optional<Modality> modality_of(const std::string& name) {
  for (Modality m : kAllModalities) {
    if (lower(name) == lower(modality_name(m)) || lower(name) == modality_reference_name(m)) return m;
  }
  return std::nullopt;
}

// The modality of a Major TOM Core folder name ("Core-S2L2A", "core-s2_l2a"), if any.
std::optional<Modality> core_modality_of(const std::string& name) {
  if (!starts_with_ci(name, "Core-")) return std::nullopt;
  return modality_of(name.substr(5));
}

// True when `dir` is the folder `exclude` (the run's output tree), through links and "..".
bool excluded(const fs::path& dir, const fs::path& exclude) {
  std::error_code ec;
  return !exclude.empty() && fs::equivalent(dir, exclude, ec);
}

[[noreturn]] void cannot_list(const fs::path& dir, const std::error_code& ec) {
  throw InputError("--input-dir: cannot list '" + dir.string() + "' (" + ec.message() + ")");
}

// Sub-directories of `dir` (not hidden, not the output tree), sorted by name. InputError
// naming the folder that cannot be listed.
std::vector<fs::path> sub_dirs(const fs::path& dir, const fs::path& exclude) {
  std::vector<fs::path> out;
  std::error_code ec;
  fs::directory_iterator it(dir, ec), end;
  for (; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    std::error_code kind;
    if (!name.empty() && name[0] != '.' && it->is_directory(kind) && !excluded(it->path(), exclude)) {
      out.push_back(it->path());
    }
  }
  if (ec) cannot_list(dir, ec);
  std::sort(out.begin(), out.end());
  return out;
}

// Files GDAL writes beside a raster, and our own temporary files: never inputs.
bool is_side_file(const std::string& name) {
  return name.empty() || name[0] == '.' || ends_with_ci(name, ".aux.xml") || ends_with_ci(name, ".ovr") ||
         ends_with_ci(name, ".msk") || ends_with_ci(name, ".json") || ends_with_ci(name, ".txt") ||
         ends_with_ci(name, ".parquet");
}

std::string generic(const fs::path& p) { return p.generic_string(); }

// Splits the tuples found per modality into complete ones and incomplete keys.
// found[m][key] = (input path, output pattern of that modality's entry).
struct Entry {
  std::string input;
  std::string output_pattern;
};

void assemble(const std::vector<Modality>& from, const std::map<Modality, std::map<std::string, Entry>>& found,
              Discovered& d) {
  std::set<std::string> keys;
  for (const auto& [m, entries] : found) {
    for (const auto& [key, e] : entries) keys.insert(key);
  }
  for (const std::string& key : keys) {
    TupleSource t;
    t.key = key;
    bool complete = true;
    for (Modality m : from) {
      const auto fm = found.find(m);
      const Entry* e = nullptr;
      if (fm != found.end()) {
        const auto it = fm->second.find(key);
        if (it != fm->second.end()) e = &it->second;
      }
      if (e == nullptr) {
        complete = false;
        break;
      }
      t.inputs[m] = e->input;
      if (t.output_pattern.empty()) t.output_pattern = e->output_pattern;  // the first --from modality's
    }
    if (complete) {
      d.tuples.push_back(std::move(t));
    } else {
      d.incomplete.push_back(key);
    }
  }
}

Discovered discover_major_tom(const std::vector<Modality>& from,
                              const std::map<Modality, std::vector<fs::path>>& core_dirs, const fs::path& exclude) {
  Discovered d;
  d.layout = TupleLayout::MajorTom;
  std::map<Modality, std::map<std::string, Entry>> found;
  for (Modality m : from) {
    auto& entries = found[m];
    for (const fs::path& core : core_dirs.at(m)) {
      for (const fs::path& row : sub_dirs(core, exclude)) {
        for (const fs::path& cell : sub_dirs(row, exclude)) {
          const std::string key = row.filename().string() + "/" + cell.filename().string();
          const std::vector<fs::path> products = sub_dirs(cell, exclude);
          if (products.empty()) continue;
          if (entries.count(key)) {
            d.warnings.push_back(modality_name(m) + " cell " + key + ": found in more than one Core folder; using '" +
                                 entries[key].input + "'");
            continue;
          }
          if (products.size() > 1) {
            d.warnings.push_back(modality_name(m) + " cell " + key + ": " + std::to_string(products.size()) +
                                 " product folders; using '" + products.front().filename().string() + "'");
          }
          entries[key] = {generic(products.front()),
                          "Core-{modality}/" + key + "/" + products.front().filename().string() + "/{modality}.tif"};
        }
      }
    }
  }
  assemble(from, found, d);
  return d;
}

// "a/b.png" -> "a/b"
std::string strip_extension(const std::string& rel) {
  const auto slash = rel.rfind('/');
  const auto dot = rel.rfind('.');
  if (dot == std::string::npos || (slash != std::string::npos && dot < slash) || dot == 0 ||
      (slash != std::string::npos && dot == slash + 1)) {
    return rel;
  }
  return rel.substr(0, dot);
}

Discovered discover_per_modality(const std::vector<Modality>& from,
                                 const std::map<Modality, std::vector<fs::path>>& dirs, const fs::path& exclude) {
  Discovered d;
  d.layout = TupleLayout::PerModality;
  std::map<Modality, std::map<std::string, Entry>> found;
  for (Modality m : from) {
    auto& entries = found[m];
    for (const fs::path& dir : dirs.at(m)) {
      std::vector<fs::path> files;
      std::error_code ec;
      fs::recursive_directory_iterator it(dir, fs::directory_options::none, ec), end;
      if (ec) cannot_list(dir, ec);
      fs::path entering;  // the folder the next step descends into, named when it cannot be listed
      for (; it != end; it.increment(ec)) {
        if (ec) cannot_list(entering.empty() ? dir : entering, ec);
        entering.clear();
        const std::string name = it->path().filename().string();
        std::error_code kind;
        const bool is_dir = it->is_directory(kind);
        if ((!name.empty() && name[0] == '.') || (is_dir && excluded(it->path(), exclude))) {
          if (is_dir) it.disable_recursion_pending();
          continue;
        }
        if (is_dir) entering = it->path();
        if (it->is_regular_file(kind) && !is_side_file(name)) files.push_back(it->path());
      }
      if (ec) cannot_list(entering.empty() ? dir : entering, ec);
      std::sort(files.begin(), files.end());
      for (const fs::path& f : files) {
        const std::string key = strip_extension(generic(f.lexically_relative(dir)));
        if (entries.count(key)) {
          d.warnings.push_back(modality_name(m) + " " + key + ": several files ('" + entries[key].input + "', '" +
                               generic(f) + "'); using the first");
          continue;
        }
        entries[key] = {generic(f), "{modality}/" + key + ".tif"};
      }
    }
  }
  assemble(from, found, d);
  return d;
}

std::string trim(const std::string& s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return s.substr(b, e - b);
}

std::vector<std::string> split_fields(const std::string& line) {
  std::vector<std::string> out;
  if (line.find('\t') != std::string::npos) {
    std::stringstream ss(line);
    std::string f;
    while (std::getline(ss, f, '\t')) {
      f = trim(f);
      if (!f.empty()) out.push_back(f);
    }
  } else {
    std::stringstream ss(line);
    std::string f;
    while (ss >> f) out.push_back(f);
  }
  return out;
}

bool safe_key(const std::string& key) {
  if (key.empty() || key[0] == '/' || key.find('\\') != std::string::npos) return false;
  std::stringstream ss(key);
  std::string part;
  while (std::getline(ss, part, '/')) {
    if (part.empty() || part == "." || part == ".." || part[0] == '.') return false;
  }
  return true;
}

// For a path inside a Major TOM tree, (key "<row>/<cell>", output pattern); else nullopt.
std::optional<std::pair<std::string, std::string>> major_tom_naming(const fs::path& path) {
  std::vector<std::string> parts;
  for (const auto& p : path.lexically_normal()) {
    if (!p.empty() && p.string() != "/") parts.push_back(p.string());
  }
  for (size_t i = parts.size(); i-- > 0;) {
    // Core-<MOD> followed by row, cell and product
    if (core_modality_of(parts[i]) && i + 3 < parts.size()) {
      const std::string key = parts[i + 1] + "/" + parts[i + 2];
      return std::make_pair(key, "Core-{modality}/" + key + "/" + parts[i + 3] + "/{modality}.tif");
    }
  }
  return std::nullopt;
}

}  // namespace

std::string layout_name(TupleLayout layout) {
  switch (layout) {
    case TupleLayout::MajorTom: return "majortom";
    case TupleLayout::PerModality: return "per-modality";
    case TupleLayout::List: return "list";
  }
  return "?";
}

Discovered discover_tuples(const std::string& root_text, const std::vector<Modality>& from,
                           const std::string& exclude) {
  const fs::path root(root_text);
  std::error_code ec;
  const fs::path skip = exclude.empty() || !fs::is_directory(exclude, ec) ? fs::path() : fs::path(exclude);
  if (!fs::is_directory(root, ec)) {
    const bool loop = ec.value() == ELOOP;
    const bool missing = !loop && !fs::exists(fs::symlink_status(root, ec));
    throw InputError("--input-dir '" + root_text + "': " +
                     (loop ? "a symbolic link loop" : missing ? "does not exist" : "not a directory"));
  }
  std::map<Modality, std::vector<fs::path>> core_dirs, mod_dirs;
  std::vector<std::string> names;
  for (const fs::path& dir : sub_dirs(root, skip)) {
    const std::string name = dir.filename().string();
    names.push_back(name);
    if (auto m = core_modality_of(name)) core_dirs[*m].push_back(dir);
    if (auto m = modality_of(name)) mod_dirs[*m].push_back(dir);
  }
  const bool major_tom = !core_dirs.empty();
  auto& dirs = major_tom ? core_dirs : mod_dirs;
  if (dirs.empty()) {
    throw InputError("--input-dir '" + root_text +
                     "': found neither Major TOM folders (Core-S2L1C, Core-S1RTC, ...) nor one folder per "
                     "modality (DEM, S1RTC, S2L1C, S2L2A, or dem, s1_rtc, s2_l1c, s2_l2a)");
  }
  for (Modality m : from) {
    if (!dirs.count(m)) {
      std::string have;
      for (const auto& [mm, ds] : dirs) {
        for (const auto& dd : ds) have += (have.empty() ? "" : ", ") + dd.filename().string();
      }
      throw InputError("--input-dir '" + root_text + "': no folder for --from modality " + modality_name(m) + " (" +
                       (major_tom ? "Core-" + modality_name(m) : modality_name(m)) + "); found " + have);
    }
  }
  return major_tom ? discover_major_tom(from, core_dirs, skip) : discover_per_modality(from, mod_dirs, skip);
}

namespace {

// Throws if a --inputs-from line holds a control character (other than a tab).
void check_list_line(const std::string& t, const std::string& where) {
  // a control character (a NUL byte, say) cannot be part of a path, and would cut messages
  const auto bad = std::find_if(t.begin(), t.end(), [](char c) {
    return static_cast<unsigned char>(c) < 0x20 && c != '\t';
  });
  if (bad != t.end()) {
    throw UsageError(fmt::format("{}: holds the control character \\x{:02x} at column {}; is it a text file?", where,
                                 static_cast<unsigned char>(*bad), (bad - t.begin()) + 1));
  }
}

// Reads the MODALITY=PATH and key=KEY fields of a --inputs-from line; sets `key` if the line names one.
std::map<Modality, std::string> parse_list_fields(const std::string& t, const std::string& where,
                                                  const fs::path& base, std::string& key) {
  std::map<Modality, std::string> paths;
  for (const std::string& field : split_fields(t)) {
    const auto eq = field.find('=');
    if (eq == std::string::npos || eq == 0 || eq + 1 == field.size()) {
      throw UsageError(where + ": '" + field + "' is not MODALITY=PATH or key=KEY");
    }
    const std::string name = field.substr(0, eq), value = field.substr(eq + 1);
    if (lower(name) == "key") {
      if (!safe_key(value)) {
        throw UsageError(where + ": key '" + value + "' must be a relative path without '.', '..' or hidden parts");
      }
      key = value;
      continue;
    }
    const auto m = modality_of(name);
    if (!m) throw UsageError(where + ": unknown modality '" + name + "' (expected DEM, S1RTC, S2L1C or S2L2A)");
    if (paths.count(*m)) throw UsageError(where + ": modality " + modality_name(*m) + " is given twice");
    // a URL (a STAC item) and GDAL's virtual paths stay as they are
    const bool url = value.find("://") != std::string::npos || value.rfind("/vsi", 0) == 0;
    fs::path p(value);
    if (!url && p.is_relative() && !base.empty()) p = base / p;
    paths[*m] = url ? value : generic(p);
  }
  return paths;
}

// Names a tuple whose line has no key=KEY after one of its files; sets `key` and, for Major TOM names, `pattern`.
void name_tuple_after_file(const std::vector<Modality>& from, std::map<Modality, std::string>& paths,
                           const std::string& where, std::string& key, std::string& pattern) {
  // named after the first --from modality present (or any, for an incomplete line)
  std::string first;
  for (Modality m : from) {
    if (paths.count(m)) {
      first = paths[m];
      break;
    }
  }
  if (first.empty() && !paths.empty()) first = paths.begin()->second;
  if (first.empty()) throw UsageError(where + ": no MODALITY=PATH field");
  if (auto mt = major_tom_naming(first)) {
    key = mt->first;
    pattern = mt->second;
  } else {
    fs::path fp(first);
    if (fp.filename().empty()) fp = fp.parent_path();
    key = fp.stem().string();
    if (!safe_key(key)) throw UsageError(where + ": cannot name the tuple after '" + first + "'; add key=NAME");
  }
}

}  // namespace

Discovered read_tuple_list(const std::string& list_file, const std::vector<Modality>& from) {
  const std::string special = special_file_kind(list_file);  // a FIFO would block the run
  if (!special.empty()) throw InputError("--inputs-from '" + list_file + "': is " + special + ", not a regular file");
  std::ifstream in(list_file);
  if (!in) throw InputError("--inputs-from '" + list_file + "': cannot open the file");
  const fs::path base = fs::path(list_file).parent_path();
  Discovered d;
  d.layout = TupleLayout::List;
  std::map<std::string, int> key_lines;
  std::string line;
  int line_no = 0;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const std::string t = trim(line);
    if (t.empty() || t[0] == '#') continue;
    const std::string where = "--inputs-from '" + list_file + "' line " + std::to_string(line_no);
    check_list_line(t, where);
    std::string key;
    std::map<Modality, std::string> paths = parse_list_fields(t, where, base, key);
    std::string pattern;
    const bool complete =
        std::all_of(from.begin(), from.end(), [&](Modality m) { return paths.count(m) > 0; });
    if (key.empty()) name_tuple_after_file(from, paths, where, key, pattern);
    if (pattern.empty()) pattern = "{modality}/" + key + ".tif";
    if (!complete) {
      d.incomplete.push_back(key);
      continue;
    }
    if (auto [it, fresh] = key_lines.emplace(key, line_no); !fresh) {
      throw UsageError(where + ": tuple key '" + key + "' is also the key of line " + std::to_string(it->second) +
                       " (outputs would collide); add key=NAME to tell them apart");
    }
    TupleSource ts;
    ts.key = key;
    for (Modality m : from) ts.inputs[m] = paths[m];
    ts.output_pattern = pattern;
    d.tuples.push_back(std::move(ts));
  }
  if (in.bad()) throw InputError("--inputs-from '" + list_file + "': read error");
  std::sort(d.tuples.begin(), d.tuples.end(), [](const TupleSource& a, const TupleSource& b) { return a.key < b.key; });
  std::sort(d.incomplete.begin(), d.incomplete.end());
  return d;
}

std::string tuple_output_path(const std::string& output_dir, const TupleSource& t, Modality m) {
  std::string rel = t.output_pattern;
  for (auto p = rel.find("{modality}"); p != std::string::npos; p = rel.find("{modality}")) {
    rel.replace(p, 10, modality_name(m));
  }
  return generic(fs::path(output_dir) / rel);
}

Shard parse_shard(const std::string& text) {
  const auto slash = text.find('/');
  auto bad = [&]() {
    return UsageError("--shard '" + text + "': expected I/N with 0 <= I < N (e.g. 0/4)");
  };
  if (slash == std::string::npos || slash == 0 || slash + 1 == text.size()) throw bad();
  const std::string a = text.substr(0, slash), b = text.substr(slash + 1);
  auto digits = [](const std::string& s) {
    return !s.empty() && s.size() <= 9 && std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c); });
  };
  if (!digits(a) || !digits(b)) throw bad();
  Shard s{std::stoi(a), std::stoi(b)};
  if (s.count < 1 || s.index >= s.count) throw bad();
  return s;
}

std::string shard_name(const Shard& s) { return std::to_string(s.index) + "/" + std::to_string(s.count); }

std::uint64_t tuple_key_hash(const std::string& key) {
  std::uint64_t h = 14695981039346656037ULL;
  for (unsigned char c : key) {
    h ^= c;
    h *= 1099511628211ULL;
  }
  return h;
}

bool in_shard(const std::string& key, const Shard& s) {
  return tuple_key_hash(key) % static_cast<std::uint64_t>(s.count) == static_cast<std::uint64_t>(s.index);
}

}  // namespace copgen
