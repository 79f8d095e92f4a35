// Outputs: where a run's outputs go (output_path, plan_outputs), what they carry
// (run_metadata, band_descriptions), what copgen checks before it writes anything, and
// what it removes when a run fails. Plain filesystem work (no GDAL); every command that
// writes files uses it, so an output can never replace what is not an output.
//
//   copgen::check_output_file("l2a.tif", copgen::input_files("l1c.tif"), "output");
//   copgen::CreatedDirs dirs;            // folders made for outputs...
//   dirs.create("out/S2L2A");            // ...removed again if still empty when it goes
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "copgen/conditioning.hpp"
#include "copgen/modality.hpp"
#include "copgen/models.hpp"
#include "copgen/tuples.hpp"

namespace copgen {

// "a FIFO (named pipe)", "a character device", "a block device" or "a socket" when the
// local `path` names one of those (reading it would block or never end), else "" (a
// regular file, a directory, or nothing).
std::string special_file_kind(const std::string& path);

// The files an input argument reads: the file itself, each file of a comma-joined list
// ("B04.tif,B03.tif,B02.tif"), or the regular files directly in a folder (a Major TOM
// product folder). Names that do not exist are left out.
std::vector<std::string> input_files(const std::string& input);

// Refuses an output `path` that exists and is not a regular file (a directory, character
// or block device, FIFO or socket: --overwrite never replaces those), or that is the same
// file as one of `inputs` (device and inode compared, so symlinks, hard links and ".."
// are seen through), as gdal_translate refuses to overwrite its input. `what` names the
// output in the message ("output", "--report"). Throws OutputError (exit 5).
void check_output_file(const std::string& path, const std::vector<std::string>& inputs,
                       const std::string& what = "output");

// copgen writes GeoTIFFs (GTiff or COG): UsageError "FLAG 'x.png': ..." unless `path`
// ends in .tif or .tiff (any case) or has no extension, so that no tool is misled by
// the name.
void check_output_extension(const std::string& path, const std::string& flag);

// Checks, before any work, that a file can be written at `path` later: check_output_file
// (without inputs), not an existing file unless `overwrite`, and the nearest existing
// folder on its way is a writable directory (folders still missing are made when the file
// is written). Throws OutputError naming `what` and the path.
void check_output_location(const std::string& path, const std::string& what, bool overwrite);

// OutputError unless `dir` (or, when it does not exist yet, its nearest existing
// ancestor) is a directory this process can create files in. Probes with a real file:
// a permission check alone says nothing for root. `what` names the folder in messages.
void check_writable_dir(const std::string& dir, const std::string& what);

// Folders made for a run's outputs. Those still empty when it is destroyed are removed
// (deepest first), so a run that fails or is interrupted before writing into a folder it
// made leaves no trace; folders that received a file are kept.
class CreatedDirs {
 public:
  CreatedDirs() = default;
  CreatedDirs(const CreatedDirs&) = delete;
  CreatedDirs& operator=(const CreatedDirs&) = delete;
  CreatedDirs(CreatedDirs&&) noexcept = default;
  CreatedDirs& operator=(CreatedDirs&&) noexcept = default;
  ~CreatedDirs();
  // Makes `dir` and its missing parents; throws OutputError naming `what` when it cannot.
  void create(const std::string& dir, const std::string& what = "output directory");

 private:
  std::vector<std::string> made_;  // in the order made (parents first)
};

// A scratch folder ".copgen-work-<pid>-<n>" in `parent`, removed with everything in it on
// destruction. Work folders and temporary files (".<name>.tmp-<pid>-<n>") that dead
// processes (SIGKILL, power loss) left in `parent` are removed first.
class WorkDir {
 public:
  explicit WorkDir(const std::string& parent);
  WorkDir(const WorkDir&) = delete;
  WorkDir& operator=(const WorkDir&) = delete;
  ~WorkDir();
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// Removes from `dir` the work folders and temporary files of copgen processes that no
// longer run (the pid in their name is not a live process). Returns how many it removed.
int remove_leftovers_of_dead_processes(const std::string& dir);

// Writes `text` to `path` under a temporary name and renames it into place; OutputError
// naming `what` on failure (nothing is left at `path` or beside it).
void write_text_atomically(const std::string& path, const std::string& text, const std::string& what);

// ---- the outputs of a run ------------------------------------------------------------

// Where a run writes its images: translate and generate; batch takes the folder and the
// format (the per-tuple layout is its own).
struct OutputOptions {
  std::string path;              // -o: file, directory, or pattern with {modality}
  std::string format = "GTiff";  // --format: GTiff or COG
  std::string save_latents_dir;  // --save-latents: also write latents as .npy
  bool overwrite = false;        // --overwrite: replace existing outputs
  std::string stac_item;         // --stac-out: also a STAC item describing the outputs (stac.hpp);
                                 // in batch mode the file name, beside each tuple's outputs
};
// -o given, a known --format; throws UsageError naming the flag.
void validate(const OutputOptions& options);

// The output file of `modality`, sample k of n, for an -o of `output` when `modalities`
// are generated: a pattern's {modality} is replaced; a directory (existing, ending in
// '/', or several modalities) gets "<MODALITY>.tif"; a file name is used as is. With
// n > 1 "_s<k>" goes before the extension. Throws UsageError for a single file name
// with several modalities.
std::string output_path(const std::string& output, const std::vector<Modality>& modalities,
                        Modality modality, int k, int n);

// "<stem>_s<k><ext>" when n > 1, else path.
std::string insert_sample_suffix(const std::string& path, int k, int n);

// The band descriptions an output of modality m carries (the thumbnail's renderings).
std::vector<std::string> band_descriptions(Modality m);

struct OutputPlan {
  std::vector<std::vector<std::string>> images;   // [sample][generated modality]
  std::vector<std::vector<std::string>> latents;  // [sample][modality index], "" when not saved
  CreatedDirs dirs;  // folders made for the outputs; those left empty are removed with the plan
};
// Resolves and checks every output path of a run before any work: existence without
// --overwrite, collisions, a .tif name, writable directories, never a device, FIFO or
// folder, never the same file as one of `inputs` (the paths as given: files, band lists,
// product folders). Then makes the output folders.
OutputPlan plan_outputs(const OutputOptions& o, int samples, const std::vector<Modality>& generated,
                        const std::vector<Modality>& saved_latent_modalities, const std::vector<std::string>& inputs);

// The provenance items every output carries (COPGEN_VERSION, the models, the seed, the
// sampler, the roles, the precisions); translate, generate, scenes and batch alike.
std::map<std::string, std::string> run_metadata(const SamplingOptions& s, int samples, const Models& models,
                                                std::uint64_t seed, const std::string& mode,
                                                const std::vector<Modality>& given_mods, const Roles& roles);

}  // namespace copgen
