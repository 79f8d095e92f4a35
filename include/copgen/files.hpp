// Files: the one gate every file copgen writes goes through, and how it writes them. A
// command plans every path it will write (images, latents, summaries, STAC items,
// reports, tables, JSON, features) in one OutputGate before any work; the gate refuses
// what would destroy data (an input, another planned output, an existing file without
// --overwrite, a device or FIFO, a folder that is not there), the dry run prints what it
// planned, the writers write what it planned, and a resumed batch calls a tuple complete
// when every file planned for it exists. Plain file system work: no GDAL, no torch.
//
//   copgen::OutputGate gate({"l1c.tif"}, /*overwrite=*/false);
//   gate.add("l2a.tif", copgen::FileKind::Image, "-o");
//   gate.add("l2a.json", copgen::FileKind::StacItem, "--stac-out");  // throws if it were l1c.tif
//   gate.make_dirs();   // not for a dry run: the checks leave no trace
#pragma once

#include <sys/types.h>

#include <map>
#include <set>
#include <string>
#include <utility>
#include <vector>

namespace copgen {

// "a FIFO (named pipe)", "a character device", "a block device" or "a socket" when the
// local `path` names one of those (reading it would block or never end), else "" (a
// regular file, a directory, or nothing).
std::string special_file_kind(const std::string& path);

// The files an input argument reads: the file itself, each file of a comma-joined list
// ("B04.tif,B03.tif,B02.tif"), the regular files directly in a folder (a Major TOM
// product folder), or the document of a STAC reference ("search.json#ITEM"). Names that
// do not exist (URLs included) are left out.
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

// OutputError unless `dir` (or, when it does not exist yet, its nearest existing
// ancestor) is a directory this process can create files in (write and search
// permission, a file system not mounted read-only). Leaves no trace: no probe file, no
// changed modification time. `what` names the folder in messages.
void check_writable_dir(const std::string& dir, const std::string& what);

// What a planned file is, for the dry run and for messages.
enum class FileKind { Image, Latent, Summary, StacItem, Report, Table, Json, Features, Preview, Page };
std::string file_kind_name(FileKind kind);  // "image", "latent", "STAC item", "preview", "HTML page", ...

struct PlannedFile {
  std::string path;
  FileKind kind;
  std::string flag;  // the flag that names it ("-o", "--stac-out", "--report", ...)
};

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

// The one gate: every path a command writes, checked once when added, before any work.
// add() refuses (UsageError for two flags naming one file, OutputError for the rest):
//   - an empty path, a GDAL virtual path or a URL (copgen writes local files);
//   - the same file as any input (device and inode), or a path inside an input folder;
//   - the same path as another planned file (any kind, any flag), a path inside a planned
//     file or the folder of one;
//   - an existing directory, device, FIFO or socket (never replaced), a symbolic link loop;
//   - an existing file without --overwrite (kinds replaced by every run, reports, excepted);
//   - a folder that does not exist, unless under one given to allow_new_dirs, or a folder
//     that is a file or not writable.
// Nothing is created or touched while checking; make_dirs() makes the missing folders.
class OutputGate {
 public:
  OutputGate() = default;
  // `inputs`: the input arguments as given (files, band lists, folders, STAC references).
  OutputGate(const std::vector<std::string>& inputs, bool overwrite);
  OutputGate(OutputGate&&) noexcept = default;
  OutputGate& operator=(OutputGate&&) noexcept = default;

  void add_input(const std::string& input);
  // Folders at or under `dir` may be made for the outputs (-o out/, --output-dir, eval -o).
  void allow_new_dirs(const std::string& dir);
  // Checks `path` as described above and plans it; returns the planned path.
  const std::string& add(const std::string& path, FileKind kind, const std::string& flag);
  // The same checks, existence excepted: a file every run replaces (--report).
  const std::string& add_replaced(const std::string& path, FileKind kind, const std::string& flag);
  // An existing file the run keeps (a resumed batch's finished output): only planned, so
  // that no other file is planned at its path.
  const std::string& keep(const std::string& path, FileKind kind, const std::string& flag);

  const std::vector<PlannedFile>& files() const { return files_; }
  std::vector<std::string> paths(FileKind kind) const;
  // Makes the missing folders of every planned file; those left empty are removed again
  // when the gate goes (a run that fails before writing leaves no trace).
  void make_dirs();

 private:
  enum class Mode { Write, Replace, Keep };
  const std::string& plan(const std::string& path, FileKind kind, const std::string& flag, Mode mode);
  void check_folder(const std::string& path, const std::string& label);
  void check_not_nested(const std::string& key, const std::string& label) const;
  void check_not_input(const std::string& path, const std::string& label);

  bool overwrite_ = false;
  std::vector<std::string> inputs_;              // as given
  bool inputs_listed_ = false;                   // input_ids_ filled (when an existing file is checked)
  std::map<std::pair<dev_t, ino_t>, std::string> input_ids_;  // the input files, by identity
  std::set<std::string> input_dirs_;             // input folders, canonical
  std::vector<std::string> new_dir_roots_;       // absolute, normal
  std::map<std::string, std::size_t> by_path_;   // absolute, normal path -> index in files_
  std::vector<PlannedFile> files_;
  std::set<std::string> checked_dirs_;           // folders already checked
  CreatedDirs made_;
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
// naming `what` on failure (nothing is left at `path` or beside it). The path comes from
// an OutputGate, which checked it; its folder exists.
void write_text_atomically(const std::string& path, const std::string& text, const std::string& what);

}  // namespace copgen
