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
using copgen::test::TempDir;
namespace fs = std::filesystem;

namespace {

std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const Error& e) {
    return std::to_string(e.exit_code()) + ": " + e.what();
  }
  return "";
}

}  // namespace

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
    CHECK(message_of([&] { check_output_file(same, inputs); }) ==
          "5: output '" + same + "' is the same file as the input '" + tmp.file("in.tif") +
              "'; writing it would destroy the input: give another output path");
  }
  CHECK(message_of([&] { check_output_file(tmp.file("fifo"), {}, "--report"); }) ==
        "5: --report '" + tmp.file("fifo") +
            "' exists and is a FIFO (named pipe), not a regular file; copgen only replaces files it could have "
            "written (--overwrite included): give another output path");
  CHECK_THAT(message_of([&] { check_output_file("/dev/null", {}); }), Catch::Contains("is a character device"));
  CHECK_THAT(message_of([&] { check_output_file(tmp.file("sub"), {}); }), Catch::Contains("is a directory"));
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

TEST_CASE("outputs: locations - extensions and folders made for outputs", "[outputs]") {
  TempDir tmp;
  std::ofstream(tmp.file("file")) << "not a folder";
  CHECK_THAT(message_of([&] { check_output_location(tmp.file("file/r.json"), "--report", true); }),
             Catch::StartsWith("5: --report '" + tmp.file("file/r.json") + "': '" + tmp.file("file") +
                               "' is not a directory"));
  CHECK(message_of([&] { check_output_location(tmp.file("file"), "--json", false); }) ==
        "5: --json '" + tmp.file("file") + "' exists (use --overwrite to replace it)");
  CHECK_NOTHROW(check_output_location(tmp.file("file"), "--json", true));
  CHECK_NOTHROW(check_output_location(tmp.file("a/b/c.json"), "--json", false));  // made when written
  CHECK_FALSE(fs::exists(tmp.file("a")));

  CHECK_NOTHROW(check_output_extension("o.tif", "-o"));
  CHECK_NOTHROW(check_output_extension("dir/O.TIFF", "-o"));
  CHECK_NOTHROW(check_output_extension("noext", "-o"));
  CHECK(message_of([] { check_output_extension("o.png", "-o"); }) ==
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
