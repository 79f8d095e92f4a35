// Finding the tuples of a batch run: the same location in several modalities, in a Major
// TOM tree, in one folder per modality, or in a list file, and where each tuple's outputs
// go under the output directory. No pixel is read here.
//
//   auto d = copgen::discover_tuples("/data/majortom", {Modality::S2L1C});
//   for (const auto& t : d.tuples)
//     if (copgen::in_shard(t.key, shard))
//       copgen::tuple_output_path("/out", t, Modality::S2L2A);
//       // "/out/Core-S2L2A/433U/433U_1043R/<S2L1C product>/S2L2A.tif"
//
// Layouts (folder names are matched case-insensitively, canonical or reference names):
//   Major TOM  ROOT/Core-<MOD>/<row>/<cell>/<product>/...   key "<row>/<cell>"; the input of
//              a modality is its product folder; outputs go to
//              OUT/Core-<MOD>/<row>/<cell>/<product of the first --from modality>/<MOD>.tif
//   per modality  ROOT/<MOD>/<rel>.<ext> (e.g. S2L1C/a.png, s1_rtc/a.tif)  key "<rel>" (the
//              relative path without its extension, sub-folders allowed); the input is the
//              file; outputs go to OUT/<MOD>/<rel>.tif
//   list       lines of MOD=PATH fields (see read_tuple_list)
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "copgen/modality.hpp"

namespace copgen {

enum class TupleLayout { MajorTom, PerModality, List };
std::string layout_name(TupleLayout layout);  // "majortom", "per-modality", "list"

// One tuple: the inputs of every --from modality of one location.
struct TupleSource {
  std::string key;                         // stable relative key, e.g. "433U/433U_1043R"
  std::map<Modality, std::string> inputs;  // a file, or a Major TOM product folder
  std::string output_pattern;              // relative to the output dir, "{modality}" in it
};

struct Discovered {
  TupleLayout layout = TupleLayout::PerModality;
  std::vector<TupleSource> tuples;      // every tuple that has all --from modalities, by key
  std::vector<std::string> incomplete;  // keys that lack some --from modality, sorted
  std::vector<std::string> warnings;    // ambiguities resolved (e.g. two products of a cell)
};

// Walks `root` (a Major TOM tree if it holds a Core-<MOD> folder, else one folder per
// modality). The folder `exclude` (the run's --output-dir, when it lies inside the input
// tree) and everything under it is skipped, so a rerun never reads its own outputs as
// inputs. Throws InputError naming `root` when it is not a directory, holds neither
// layout, or lacks the folder of a `from` modality, and naming the folder that cannot be
// listed (e.g. no permission).
Discovered discover_tuples(const std::string& root, const std::vector<Modality>& from,
                           const std::string& exclude = "");

// Reads a list of tuples, one a line: fields MOD=PATH (any modality name; those not in
// `from` are ignored) and optionally key=KEY, separated by tabs when the line holds one
// (paths may then contain spaces), else by blanks. Empty lines and lines starting with
// '#' are skipped. Relative paths are relative to the list file's folder. Without key=,
// a path inside a Major TOM tree (.../Core-<MOD>/<row>/<cell>/<product>[/file]) gives the
// key "<row>/<cell>" and Major TOM output naming; any other gives the file name without
// its extension and OUT/<MOD>/<key>.tif. Throws InputError when the file cannot be read
// and UsageError naming the line for a malformed field, an unsafe key or a repeated key.
Discovered read_tuple_list(const std::string& list_file, const std::vector<Modality>& from);

// The output file of generated modality `m` of `t` under `output_dir`.
std::string tuple_output_path(const std::string& output_dir, const TupleSource& t, Modality m);

// --shard I/N: this process takes the tuples whose key hash is I modulo N.
struct Shard {
  int index = 0;  // I, 0 <= I < N
  int count = 1;  // N
};
Shard parse_shard(const std::string& text);  // "I/N"; throws UsageError naming --shard
std::string shard_name(const Shard& s);      // "I/N"
// FNV-1a (64 bit) of the key's bytes: the same on every machine, build and run.
std::uint64_t tuple_key_hash(const std::string& key);
bool in_shard(const std::string& key, const Shard& s);

}  // namespace copgen
