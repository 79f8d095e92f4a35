// Library-level reliability: inputs that claim huge sizes, empty or all-nodata files,
// the --input spec parser, the out-of-memory message, and writes that hit a full disk
// (a file-size limit, so that write() fails with EFBIG). See docs/errors.md.
#include "catch_torch.hpp"

#include <sys/resource.h>

#include <array>
#include <csignal>
#include <filesystem>
#include <fstream>
#include <optional>

#include <gdal_priv.h>

#include "copgen/error.hpp"
#include "copgen/modality.hpp"
#include "copgen/npy.hpp"
#include "copgen/raster_io.hpp"
#include "copgen/tuples.hpp"
#include "support.hpp"

using namespace copgen;
namespace fs = std::filesystem;

namespace {

template <class F>
std::string input_error_of(F&& f) {
  try {
    f();
  } catch (const InputError& e) {
    return e.what();
  }
  return "(no InputError)";
}

// A 3-band Byte GeoTIFF: band b filled with values[b], each band's nodata `nodata`.
void write_filled(const std::string& path, int size, std::array<int, 3> values, std::optional<double> nodata) {
  GDALAllRegister();
  GDALDataset* ds =
      GetGDALDriverManager()->GetDriverByName("GTiff")->Create(path.c_str(), size, size, 3, GDT_Byte, nullptr);
  REQUIRE(ds != nullptr);
  for (int b = 1; b <= 3; ++b) {
    if (nodata) ds->GetRasterBand(b)->SetNoDataValue(*nodata);
    REQUIRE(ds->GetRasterBand(b)->Fill(values[static_cast<size_t>(b - 1)]) == CE_None);
  }
  GDALClose(ds);
}

// Lowers this process's file-size limit while alive, with SIGXFSZ ignored so that a
// write past it fails with EFBIG, as on a full disk.
struct FileSizeLimit {
  explicit FileSizeLimit(rlim_t bytes) {
    getrlimit(RLIMIT_FSIZE, &saved);
    old_handler = std::signal(SIGXFSZ, SIG_IGN);
    rlimit lim = saved;
    lim.rlim_cur = bytes;
    REQUIRE(setrlimit(RLIMIT_FSIZE, &lim) == 0);
  }
  ~FileSizeLimit() {
    setrlimit(RLIMIT_FSIZE, &saved);
    std::signal(SIGXFSZ, old_handler);
  }
  rlimit saved{};
  void (*old_handler)(int) = nullptr;
};

}  // namespace

TEST_CASE("reliability: --input MODALITY=PATH items", "[reliability]") {
  CHECK(parse_input_spec("S2L1C=a.tif") == std::make_pair(Modality::S2L1C, std::string("a.tif")));
  CHECK(parse_input_spec(" s1_rtc =x=y.tif") == std::make_pair(Modality::S1RTC, std::string("x=y.tif")));
  CHECK_THROWS_WITH(parse_input_spec("S2L1C"), Catch::Contains("--input 'S2L1C': expected MODALITY=PATH"));
  CHECK_THROWS_WITH(parse_input_spec("=a.tif"), Catch::Contains("'=a.tif'"));
  CHECK_THROWS_WITH(parse_input_spec("DEM="), Catch::Contains("'DEM='"));
  CHECK_THROWS_WITH(parse_input_spec("S9=a.tif", "--in"), Catch::Contains("--in: unknown modality 'S9'"));
  CHECK_THROWS_AS(parse_input_spec(""), UsageError);
}

TEST_CASE("reliability: a header claiming 100000 x 100000 is refused before allocating", "[reliability]") {
  test::TempDir tmp;
  const std::string path = tmp.file("huge.tif");
  GDALAllRegister();
  const char* opts[] = {"TILED=YES", "BLOCKXSIZE=4096", "BLOCKYSIZE=4096", "SPARSE_OK=TRUE", "BIGTIFF=YES", nullptr};
  GDALDataset* ds = GetGDALDriverManager()->GetDriverByName("GTiff")->Create(path.c_str(), 100000, 100000, 3,
                                                                             GDT_Byte, const_cast<char**>(opts));
  REQUIRE(ds != nullptr);
  GDALClose(ds);
  REQUIRE(fs::file_size(path) < 1000000);

  const RasterInfo info = probe_raster(path, "S2L1C input");  // the header alone is fine
  CHECK(info.width == 100000);
  CHECK(info.height == 100000);
  const std::string msg = input_error_of([&] { read_image_u8(path, "S2L1C input"); });
  CHECK_THAT(msg, Catch::Contains("S2L1C input '" + path + "'"));
  CHECK_THAT(msg, Catch::Contains("image too large (3 band(s) of 100000 x 100000 = 30000000000 bytes"));
  CHECK_THAT(msg, Catch::Contains("at most 4 GiB"));
}

TEST_CASE("reliability: empty files and directories are named as such", "[reliability]") {
  test::TempDir tmp;
  std::ofstream(tmp.file("empty.tif")).flush();
  std::ofstream(tmp.file("empty.npy")).flush();
  fs::create_directory(tmp.file("dir.tif"));
  CHECK(input_error_of([&] { read_image_u8(tmp.file("empty.tif"), "DEM input"); }) ==
        "DEM input '" + tmp.file("empty.tif") + "': file is empty (0 bytes)");
  CHECK_THAT(input_error_of([&] { probe_raster(tmp.file("empty.tif"), "DEM input"); }),
             Catch::Contains("file is empty"));
  CHECK(input_error_of([&] { read_npy(tmp.file("empty.npy")); }) ==
        "npy file '" + tmp.file("empty.npy") + "': file is empty (0 bytes)");
  CHECK(input_error_of([&] { read_image_u8(tmp.file("dir.tif"), "DEM input"); }) ==
        "DEM input '" + tmp.file("dir.tif") + "': is a directory, not a raster GDAL can read");
}

TEST_CASE("reliability: an image whose every pixel is nodata is an input error", "[reliability]") {
  test::TempDir tmp;
  SECTION("all bands nodata") {
    write_filled(tmp.file("void.tif"), 8, {0, 0, 0}, 0.0);
    CHECK(input_error_of([&] { read_image_u8(tmp.file("void.tif"), "S1RTC input"); }) ==
          "S1RTC input '" + tmp.file("void.tif") + "': every pixel is nodata (nodata value 0); there is nothing to read");
  }
  SECTION("one band holds data") {
    write_filled(tmp.file("part.tif"), 8, {255, 7, 255}, 255.0);
    const ImageU8 img = read_image_u8(tmp.file("part.tif"), "x");
    CHECK(img.pixels[64] == 7);
  }
  SECTION("a constant image without nodata is data") {
    write_filled(tmp.file("const.tif"), 8, {0, 0, 0}, std::nullopt);
    CHECK(read_image_u8(tmp.file("const.tif"), "x").pixels.size() == 3u * 8 * 8);
  }
  SECTION("a nodata value outside the Byte range never matches") {
    write_filled(tmp.file("neg.tif"), 8, {0, 0, 0}, -9999.0);
    CHECK(read_image_u8(tmp.file("neg.tif"), "x").pixels.size() == 3u * 8 * 8);
  }
}

TEST_CASE("reliability: out-of-memory messages name the tiles and suggest a batch size", "[reliability]") {
  CHECK(is_out_of_memory("DefaultCPUAllocator: can't allocate memory: you tried to allocate 123 bytes."));
  CHECK(is_out_of_memory("CUDA out of memory. Tried to allocate 2.00 GiB (GPU 0; 79.15 GiB total capacity)"));
  CHECK_FALSE(is_out_of_memory("shape '[2, 3]' is invalid for input of size 7"));

  CHECK(out_of_memory_message({"a.tif", "a.tif", "b.tif"}, 8, "cuda:0") ==
        "out of memory on cuda:0 while sampling a batch of 8 samples (a.tif, b.tif); try --batch-size 4");
  CHECK(out_of_memory_message({"t1", "t2", "t3", "t4", "t5", "t6", "t7"}, 7, "cpu") ==
        "out of memory on cpu while sampling a batch of 7 samples (t1, t2, t3, t4, t5 and 2 more); "
        "try --batch-size 3");
  const std::string one = out_of_memory_message({"tile"}, 1, "cuda:0");
  CHECK_THAT(one, Catch::StartsWith("out of memory on cuda:0 while sampling a batch of 1 sample (tile)"));
  CHECK_THAT(one, !Catch::Contains("try --batch-size"));
  CHECK_THAT(one, Catch::Contains("already 1"));
}

TEST_CASE("reliability: a full disk fails writes cleanly with nothing left behind", "[reliability]") {
  test::TempDir tmp;
  ImageU8 img;
  img.width = img.height = 512;
  img.bands = 3;
  img.pixels.resize(3u * 512 * 512);
  std::uint32_t state = 12345;  // incompressible pixels
  for (auto& p : img.pixels) {
    state = state * 1664525u + 1013904223u;
    p = static_cast<std::uint8_t>(state >> 24);
  }
  {
    FileSizeLimit limit(64 * 1024);
    try {
      write_image_u8(tmp.file("o.tif"), img, WriteOptions{});
      FAIL("expected OutputError");
    } catch (const OutputError& e) {
      CHECK_THAT(e.what(), Catch::Contains("output '" + tmp.file("o.tif") + "': cannot write"));
    }
    try {
      write_npy(tmp.file("z.npy"), torch::zeros({4, 64, 64}));
      FAIL("expected OutputError");
    } catch (const OutputError& e) {
      CHECK_THAT(e.what(), Catch::Contains("output '" + tmp.file("z.npy") + "': cannot write"));
      CHECK_THAT(e.what(), Catch::Contains("File too large"));
    }
  }
  CHECK(test::list_dir(tmp.path).empty());
  // and with room again, the same writes succeed
  write_npy(tmp.file("z.npy"), torch::zeros({4, 64, 64}));
  CHECK(test::list_dir(tmp.path) == std::vector<std::string>{"z.npy"});
}

TEST_CASE("reliability: a .npy header nested 100000 deep is refused without exhausting the stack", "[reliability]") {
  // found by fuzz_npy: the header parser recursed once per '(' until the stack overflowed
  test::TempDir tmp;
  const std::string header = "{'descr': '<f4', 'fortran_order': False, 'shape': " + std::string(100000, '(') + "}";
  std::string bytes = std::string("\x93NUMPY\x02\x00", 8);
  for (int i = 0; i < 4; ++i) bytes += static_cast<char>((header.size() >> (8 * i)) & 0xFF);
  bytes += header;
  std::ofstream(tmp.file("deep.npy"), std::ios::binary) << bytes;
  const std::string msg = input_error_of([&] { read_npy(tmp.file("deep.npy")); });
  CHECK_THAT(msg, Catch::StartsWith("npy file '" + tmp.file("deep.npy") + "': malformed header (nested deeper than 32 levels"));
  CHECK(msg.size() < 400);  // the header is quoted in part, not whole
}
