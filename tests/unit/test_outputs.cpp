// copgen/outputs.hpp: output paths never replace a device, a FIFO or an input; folders
// made for outputs go again when left empty; leftovers of dead processes are removed.
#include "catch_torch.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>

#include "copgen/error.hpp"
#include "copgen/outputs.hpp"
#include "support.hpp"

using namespace copgen;
using copgen::test::error_message_of;
using copgen::test::TempDir;
namespace fs = std::filesystem;

TEST_CASE("outputs: check_output_file refuses non-regular files and inputs by identity", "[outputs]") {
  TempDir tmp;
  std::ofstream(tmp.file("in.tif")) << "input";
  fs::create_directory(tmp.file("sub"));
  fs::create_symlink(tmp.file("in.tif"), tmp.file("link.tif"));
  fs::create_hard_link(tmp.file("in.tif"), tmp.file("hard.tif"));
  REQUIRE(::mkfifo(tmp.file("fifo").c_str(), 0644) == 0);
  const std::vector<std::string> inputs = {tmp.file("in.tif")};

  CHECK_NOTHROW(check_output_file(tmp.file("new.tif"), inputs));  // nothing there yet
  std::ofstream(tmp.file("other.tif")) << "old output";
  CHECK_NOTHROW(check_output_file(tmp.file("other.tif"), inputs));  // a regular file: --overwrite's business
  for (const std::string& same : {tmp.file("in.tif"), tmp.file("link.tif"), tmp.file("hard.tif"),
                                  tmp.file("sub/../in.tif")}) {
    INFO(same);
    CHECK(error_message_of([&] { check_output_file(same, inputs); }) ==
          "5: output '" + same + "' is the same file as the input '" + tmp.file("in.tif") +
              "'; writing it would destroy the input: give another output path");
  }
  CHECK(error_message_of([&] { check_output_file(tmp.file("fifo"), {}, "--report"); }) ==
        "5: --report '" + tmp.file("fifo") +
            "' exists and is a FIFO (named pipe), not a regular file; copgen only replaces files it could have "
            "written (--overwrite included): give another output path");
  CHECK_THAT(error_message_of([&] { check_output_file("/dev/null", {}); }), Catch::Contains("is a character device"));
  CHECK_THAT(error_message_of([&] { check_output_file(tmp.file("sub"), {}); }), Catch::Contains("is a directory"));
  CHECK(special_file_kind(tmp.file("fifo")) == "a FIFO (named pipe)");
  CHECK(special_file_kind("/dev/null") == "a character device");
  CHECK(special_file_kind(tmp.file("in.tif")).empty());
  CHECK(special_file_kind(tmp.file("sub")).empty());
  CHECK(special_file_kind(tmp.file("none")).empty());
}

TEST_CASE("outputs: input_files expands band lists and product folders", "[outputs]") {
  TempDir tmp;
  fs::create_directory(tmp.file("product"));
  for (const std::string b : {"B02.tif", "B03.tif", "B04.tif"}) std::ofstream(tmp.file("product/" + b)) << b;
  fs::create_directory(tmp.file("product/nested"));
  CHECK(input_files(tmp.file("product/B04.tif")) == std::vector<std::string>{tmp.file("product/B04.tif")});
  std::vector<std::string> folder = input_files(tmp.file("product"));
  std::sort(folder.begin(), folder.end());
  CHECK(folder == (std::vector<std::string>{tmp.file("product/B02.tif"), tmp.file("product/B03.tif"),
                                            tmp.file("product/B04.tif")}));
  CHECK(input_files(tmp.file("product/B04.tif") + "," + tmp.file("nope.tif") + "," + tmp.file("product/B02.tif")) ==
        (std::vector<std::string>{tmp.file("product/B04.tif"), tmp.file("product/B02.tif")}));
  CHECK(input_files(tmp.file("nope.tif")).empty());
}

TEST_CASE("outputs: the gate refuses what would destroy data and leaves no trace", "[outputs]") {
  TempDir tmp;
  std::ofstream(tmp.file("in.tif")) << "input";
  std::ofstream(tmp.file("file")) << "not a folder";
  fs::create_directory(tmp.file("product"));
  std::ofstream(tmp.file("product/B04.tif")) << "band";
  fs::create_symlink(tmp.file("loop"), tmp.file("loop"));  // a link to itself
  REQUIRE(::mkfifo(tmp.file("fifo").c_str(), 0644) == 0);
  struct stat before {};
  REQUIRE(::stat(tmp.path.c_str(), &before) == 0);

  OutputGate gate({tmp.file("in.tif"), tmp.file("product")}, false);
  CHECK(gate.add(tmp.file("out.tif"), FileKind::Image, "-o") == tmp.file("out.tif"));
  CHECK(error_message_of([&] { gate.add(tmp.file("in.tif"), FileKind::StacItem, "--stac-out"); }) ==
        "5: --stac-out '" + tmp.file("in.tif") + "' is the same file as the input '" + tmp.file("in.tif") +
            "'; writing it would destroy the input: give another path");
  CHECK(error_message_of([&] { gate.add(tmp.file("./x/../out.tif"), FileKind::StacItem, "--stac-out"); }) ==
        "2: --stac-out '" + tmp.file("./x/../out.tif") + "' would be written twice: it is also the image of -o '" +
            tmp.file("out.tif") + "'; give each output its own path");
  CHECK(error_message_of([&] { gate.add(tmp.file("file"), FileKind::Json, "--json"); }) ==
        "5: --json '" + tmp.file("file") + "' exists (use --overwrite to replace it)");
  CHECK_THAT(error_message_of([&] { gate.add(tmp.file("fifo"), FileKind::Report, "--report"); }),
             Catch::StartsWith("5: --report '" + tmp.file("fifo") + "' exists and is a FIFO (named pipe)"));
  CHECK_THAT(error_message_of([&] { gate.add("/dev/null", FileKind::Image, "-o"); }), Catch::Contains("a character device"));
  CHECK(error_message_of([&] { gate.add(tmp.file("product/new.tif"), FileKind::Image, "-o"); }) ==
        "5: -o '" + tmp.file("product/new.tif") + "' is inside the input folder '" +
            fs::canonical(tmp.file("product")).string() +
            "'; a file written there would become one of its inputs: give another path");
  CHECK(error_message_of([&] { gate.add(tmp.file("missing/o.tif"), FileKind::Image, "-o"); }) ==
        "5: -o '" + tmp.file("missing/o.tif") + "': the folder '" + tmp.file("missing") +
            "' does not exist (copgen makes only the folders of -o DIR/, --output-dir and eval -o)");
  CHECK_THAT(error_message_of([&] { gate.add(tmp.file("file/r.json"), FileKind::Report, "--report"); }),
             Catch::StartsWith("5: --report '" + tmp.file("file/r.json") + "'") && Catch::EndsWith("is not a directory"));
  CHECK_THAT(error_message_of([&] { gate.add(tmp.file("loop/x.json"), FileKind::StacItem, "--stac-out"); }),
             Catch::Contains("is a symbolic link loop"));
  CHECK(error_message_of([&] { gate.add(tmp.file("out.tif/S2L2A.npy"), FileKind::Latent, "--save-latents"); }) ==
        "2: --save-latents '" + tmp.file("out.tif/S2L2A.npy") + "' lies inside the image of -o '" +
            tmp.file("out.tif") + "'; give each output its own path");
  CHECK(error_message_of([&] { gate.add(tmp.path, FileKind::Json, "--json"); }) ==
        "2: --json '" + tmp.path + "' would be the folder of the image of -o '" + tmp.file("out.tif") +
            "'; give each output its own path");
  CHECK_THAT(error_message_of([&] { gate.add(tmp.file("product/sub/deeper.tif"), FileKind::Image, "-o"); }),
             Catch::Contains("is inside the input folder '" + fs::canonical(tmp.file("product")).string() + "'"));
  CHECK(error_message_of([&] { gate.add("", FileKind::Json, "--json"); }) == "2: --json: the path is empty");
  CHECK(error_message_of([&] { gate.add("/vsimem/o.tif", FileKind::Image, "-o"); }) ==
        "2: -o '/vsimem/o.tif': copgen writes local files, not GDAL virtual paths or URLs");
  // existing files: replaced by every run (reports), or kept by a resumed batch
  CHECK_NOTHROW(gate.add_replaced(tmp.file("file2.json"), FileKind::Report, "--report"));
  CHECK_NOTHROW(gate.keep(tmp.file("file"), FileKind::Image, "--output-dir"));
  CHECK_THROWS_AS(gate.keep(tmp.file("file"), FileKind::StacItem, "--stac-out"), UsageError);  // planned twice
  // folders under an allowed root are made by make_dirs() only
  gate.allow_new_dirs(tmp.file("made"));
  CHECK_NOTHROW(gate.add(tmp.file("made/a/b/o.tif"), FileKind::Image, "-o"));
  CHECK(gate.files().size() == 4);
  CHECK(gate.paths(FileKind::Image) ==
        (std::vector<std::string>{tmp.file("out.tif"), tmp.file("file"), tmp.file("made/a/b/o.tif")}));
  CHECK_FALSE(fs::exists(tmp.file("made")));
  struct stat after {};
  REQUIRE(::stat(tmp.path.c_str(), &after) == 0);
  CHECK(after.st_mtim.tv_sec == before.st_mtim.tv_sec);  // no probe file came and went
  CHECK(after.st_mtim.tv_nsec == before.st_mtim.tv_nsec);
  {
    OutputGate made({}, false);
    made.allow_new_dirs(tmp.file("made"));
    made.add(tmp.file("made/a/b/o.tif"), FileKind::Image, "-o");
    made.make_dirs();
    CHECK(fs::is_directory(tmp.file("made/a/b")));
  }
  CHECK_FALSE(fs::exists(tmp.file("made")));  // left empty: removed with the gate
}

TEST_CASE("outputs: --overwrite replaces files but never an input", "[outputs]") {
  TempDir tmp;
  std::ofstream(tmp.file("in.tif")) << "input";
  std::ofstream(tmp.file("old.tif")) << "an old output";
  fs::create_hard_link(tmp.file("in.tif"), tmp.file("hard.tif"));
  OutputGate gate({tmp.file("in.tif")}, true);
  CHECK_NOTHROW(gate.add(tmp.file("old.tif"), FileKind::Image, "-o"));
  CHECK_THROWS_AS(gate.add(tmp.file("hard.tif"), FileKind::Image, "-o"), OutputError);
  CHECK_THROWS_AS(gate.add(tmp.file("in.tif"), FileKind::StacItem, "--stac-out"), OutputError);
  // a STAC reference's document is an input too
  std::ofstream(tmp.file("search.json")) << "{}";
  OutputGate stac({tmp.file("search.json") + "#item-1"}, true);
  CHECK_THROWS_AS(stac.add(tmp.file("search.json"), FileKind::StacItem, "--stac-out"), OutputError);
}

TEST_CASE("outputs: extensions and folders made for outputs", "[outputs]") {
  TempDir tmp;
  std::ofstream(tmp.file("file")) << "not a folder";
  CHECK_NOTHROW(check_output_extension("o.tif", "-o"));
  CHECK_NOTHROW(check_output_extension("dir/O.TIFF", "-o"));
  CHECK_NOTHROW(check_output_extension("noext", "-o"));
  CHECK(error_message_of([] { check_output_extension("o.png", "-o"); }) ==
        "2: -o 'o.png': copgen writes GeoTIFF files (--format GTiff or COG); name the output with .tif or .tiff, "
        "not '.png'");

  {
    CreatedDirs dirs;
    dirs.create(tmp.file("x/y/z"));
    dirs.create(tmp.file("x/w"));
    std::ofstream(tmp.file("x/w/kept.tif")) << "an output";
    CHECK(fs::is_directory(tmp.file("x/y/z")));
  }
  // z and y were left empty: removed; w holds an output, so w and x stay
  CHECK_FALSE(fs::exists(tmp.file("x/y")));
  CHECK(fs::exists(tmp.file("x/w/kept.tif")));
  CHECK_THROWS_AS(CreatedDirs().create(tmp.file("file/sub")), OutputError);
}

TEST_CASE("outputs: work folders and temporary files of dead processes are removed", "[outputs]") {
  TempDir tmp;
  const long dead = copgen::test::dead_pid();
  REQUIRE(dead > 0);
  const std::string d = std::to_string(dead), me = std::to_string(::getpid());
  fs::create_directories(tmp.file(".copgen-work-" + d + "-3/inner"));
  std::ofstream(tmp.file(".o.tif.tmp-" + d + "-0")) << "partial";
  std::ofstream(tmp.file(".r.json.tmp-" + d)) << "partial";
  fs::create_directories(tmp.file(".copgen-work-" + me + "-9"));  // a live process's: kept
  std::ofstream(tmp.file(".o.tif.tmp-" + me + "-1")) << "being written";
  std::ofstream(tmp.file(".hidden")) << "not ours";
  std::ofstream(tmp.file("o.tif")) << "an output";
  CHECK(remove_leftovers_of_dead_processes(tmp.path) == 3);
  CHECK(copgen::test::list_dir(tmp.path) ==
        (std::vector<std::string>{".copgen-work-" + me + "-9", ".hidden", ".o.tif.tmp-" + me + "-1", "o.tif"}));
  {
    const WorkDir work(tmp.path);
    CHECK(fs::is_directory(work.path()));
    CHECK(fs::path(work.path()).filename().string().rfind(".copgen-work-" + me + "-", 0) == 0);
  }
  CHECK(copgen::test::list_dir(tmp.path).size() == 4);
}
