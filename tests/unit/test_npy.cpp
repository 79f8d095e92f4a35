#include "catch_torch.hpp"

#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include <torch/torch.h>

#include "copgen/error.hpp"
#include "copgen/npy.hpp"
#include "support.hpp"

namespace {

// A .npy file built byte by byte: preamble for `major`.0, the dict header padded to a
// multiple of 64 bytes and ending in '\n', then `data`.
std::string make_npy(const std::string& dict, const std::string& data, int major = 1) {
  const std::size_t preamble = major == 1 ? 10 : 12;
  std::string header = dict;
  const std::size_t unpadded = preamble + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  std::string out = "\x93NUMPY";
  out += static_cast<char>(major);
  out += '\0';
  const std::size_t len = header.size();
  out += static_cast<char>(len & 0xFF);
  out += static_cast<char>((len >> 8) & 0xFF);
  if (major != 1) {
    out += static_cast<char>((len >> 16) & 0xFF);
    out += static_cast<char>((len >> 24) & 0xFF);
  }
  return out + header + data;
}

template <typename T>
std::string raw_bytes(const std::vector<T>& values) {
  std::string s(values.size() * sizeof(T), '\0');
  if (!values.empty()) std::memcpy(s.data(), values.data(), s.size());
  return s;
}

void write_file(const std::string& path, const std::string& bytes) {
  std::ofstream f(path, std::ios::binary);
  f.write(bytes.data(), static_cast<std::streamsize>(bytes.size()));
  REQUIRE(f.good());
}

// Calls read_npy(path) and returns the InputError message ("" if nothing was thrown).
std::string read_error(const std::string& path) {
  try {
    copgen::read_npy(path);
  } catch (const copgen::InputError& e) {
    return e.what();
  }
  return "";
}

}  // namespace

TEST_CASE("write_npy and read_npy round trip a 2x3x4 float32 tensor exactly", "[npy]") {
  copgen::test::TempDir dir;
  const std::string path = dir.file("latent.npy");
  const torch::Tensor t = torch::arange(24, torch::kFloat32).reshape({2, 3, 4}) * 0.37f - 3.1f;
  copgen::write_npy(path, t);

  const torch::Tensor back = copgen::read_npy(path);
  CHECK(back.scalar_type() == torch::kFloat32);
  CHECK(back.is_contiguous());
  REQUIRE(back.sizes() == t.sizes());
  CHECK(torch::equal(back, t));

  // Layout of what was written: version 1.0, data 64-byte aligned, header ends with '\n'.
  const std::string bytes = copgen::test::read_file_bytes(path);
  REQUIRE(bytes.size() > 10);
  CHECK(bytes.compare(0, 6, "\x93NUMPY") == 0);
  CHECK(bytes[6] == 1);
  CHECK(bytes[7] == 0);
  const std::size_t header_len =
      static_cast<unsigned char>(bytes[8]) |
      (static_cast<std::size_t>(static_cast<unsigned char>(bytes[9])) << 8);
  const std::size_t data_offset = 10 + header_len;
  CHECK(data_offset % 64 == 0);
  CHECK(bytes[data_offset - 1] == '\n');
  const std::string header = bytes.substr(10, header_len);
  CHECK_THAT(header, Catch::Contains("'descr': '<f4'"));
  CHECK_THAT(header, Catch::Contains("'fortran_order': False"));
  CHECK_THAT(header, Catch::Contains("'shape': (2, 3, 4)"));
  CHECK(bytes.size() == data_offset + 24 * 4);

  // No temporary file is left next to it.
  CHECK(copgen::test::list_dir(dir.path) == std::vector<std::string>{"latent.npy"});
}

TEST_CASE("write_npy converts to contiguous float32 and writes 1-d and 0-d shapes", "[npy]") {
  copgen::test::TempDir dir;
  SECTION("non-contiguous float64 input") {
    const std::string path = dir.file("t.npy");
    const torch::Tensor t = torch::arange(6, torch::kFloat64).reshape({2, 3}).t();  // [3, 2]
    copgen::write_npy(path, t);
    const torch::Tensor back = copgen::read_npy(path);
    REQUIRE(back.sizes() == torch::IntArrayRef({3, 2}));
    CHECK(torch::equal(back, t.to(torch::kFloat32)));
  }
  SECTION("1-d") {
    const std::string path = dir.file("v.npy");
    copgen::write_npy(path, torch::tensor({1.5f, -2.0f, 3.25f}));
    CHECK_THAT(copgen::test::read_file_bytes(path), Catch::Contains("'shape': (3,)"));
    const torch::Tensor back = copgen::read_npy(path);
    REQUIRE(back.dim() == 1);
    CHECK(back.size(0) == 3);
    CHECK(back[2].item<float>() == 3.25f);
  }
  SECTION("0-d") {
    const std::string path = dir.file("s.npy");
    copgen::write_npy(path, torch::tensor(42.5f));
    CHECK_THAT(copgen::test::read_file_bytes(path), Catch::Contains("'shape': ()"));
    const torch::Tensor back = copgen::read_npy(path);
    CHECK(back.dim() == 0);
    CHECK(back.item<float>() == 42.5f);
  }
  SECTION("overwrites an existing file") {
    const std::string path = dir.file("o.npy");
    copgen::write_npy(path, torch::zeros({4}));
    copgen::write_npy(path, torch::ones({2, 2}));
    CHECK(torch::equal(copgen::read_npy(path), torch::ones({2, 2})));
  }
}

TEST_CASE("read_npy reads float64 and float16 files written by hand", "[npy]") {
  copgen::test::TempDir dir;
  SECTION("float64 [2, 3]") {
    const std::string path = dir.file("f8.npy");
    const std::vector<double> values = {0.5, -1.25, 3.0, 1e-3, 123456.75, -0.0};
    write_file(path, make_npy("{'descr': '<f8', 'fortran_order': False, 'shape': (2, 3), }",
                              raw_bytes(values)));
    const torch::Tensor t = copgen::read_npy(path);
    CHECK(t.scalar_type() == torch::kFloat32);
    REQUIRE(t.sizes() == torch::IntArrayRef({2, 3}));
    const auto acc = t.accessor<float, 2>();
    for (int i = 0; i < 6; ++i)
      CHECK(acc[i / 3][i % 3] == static_cast<float>(values[static_cast<std::size_t>(i)]));
  }
  SECTION("float16 [4]") {
    const std::string path = dir.file("f2.npy");
    // 1.0, -2.0, 0.5, 65504 (largest half)
    const std::vector<std::uint16_t> halves = {0x3C00, 0xC000, 0x3800, 0x7BFF};
    write_file(path, make_npy("{'descr': '<f2', 'fortran_order': False, 'shape': (4,), }",
                              raw_bytes(halves)));
    const torch::Tensor t = copgen::read_npy(path);
    CHECK(t.scalar_type() == torch::kFloat32);
    REQUIRE(t.sizes() == torch::IntArrayRef({4}));
    CHECK(t[0].item<float>() == 1.0f);
    CHECK(t[1].item<float>() == -2.0f);
    CHECK(t[2].item<float>() == 0.5f);
    CHECK(t[3].item<float>() == 65504.0f);
  }
  SECTION("format 2.0, double quotes, keys in another order") {
    const std::string path = dir.file("v2.npy");
    const std::vector<float> values = {7.0f, 8.0f};
    write_file(path, make_npy("{\"shape\": (2,), \"fortran_order\": False, \"descr\": \"<f4\"}",
                              raw_bytes(values), 2));
    const torch::Tensor t = copgen::read_npy(path);
    REQUIRE(t.sizes() == torch::IntArrayRef({2}));
    CHECK(t[1].item<float>() == 8.0f);
  }
}

TEST_CASE("read_npy parses 1-d and 0-d shapes", "[npy]") {
  copgen::test::TempDir dir;
  SECTION("1-d (n,)") {
    const std::string path = dir.file("one.npy");
    write_file(path, make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (5,), }",
                              raw_bytes(std::vector<float>{0, 1, 2, 3, 4})));
    const torch::Tensor t = copgen::read_npy(path);
    REQUIRE(t.dim() == 1);
    CHECK(t.size(0) == 5);
    CHECK(t[4].item<float>() == 4.0f);
  }
  SECTION("0-d ()") {
    const std::string path = dir.file("zero.npy");
    write_file(path, make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (), }",
                              raw_bytes(std::vector<float>{-9.5f})));
    const torch::Tensor t = copgen::read_npy(path);
    CHECK(t.dim() == 0);
    CHECK(t.numel() == 1);
    CHECK(t.item<float>() == -9.5f);
  }
  SECTION("empty array (0, 3)") {
    const std::string path = dir.file("empty.npy");
    write_file(path, make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", ""));
    const torch::Tensor t = copgen::read_npy(path);
    CHECK(t.sizes() == torch::IntArrayRef({0, 3}));
  }
}

TEST_CASE("read_npy rejects bad files with an InputError naming the path and reason", "[npy]") {
  copgen::test::TempDir dir;
  const std::vector<float> six = {1, 2, 3, 4, 5, 6};

  SECTION("truncated data") {
    const std::string path = dir.file("trunc.npy");
    std::string bytes =
        make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", raw_bytes(six));
    bytes.resize(bytes.size() - 5);
    write_file(path, bytes);
    const std::string msg = read_error(path);
    CHECK_THAT(msg, Catch::Contains(path));
    CHECK_THAT(msg, Catch::Contains("truncated"));
  }
  SECTION("truncated header") {
    const std::string path = dir.file("trunc_header.npy");
    std::string bytes =
        make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", raw_bytes(six));
    bytes.resize(40);
    write_file(path, bytes);
    const std::string msg = read_error(path);
    CHECK_THAT(msg, Catch::Contains(path));
    CHECK_THAT(msg, Catch::Contains("truncated"));
  }
  SECTION("bad magic") {
    const std::string path = dir.file("magic.npy");
    std::string bytes =
        make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }", raw_bytes(six));
    bytes[1] = 'X';
    write_file(path, bytes);
    const std::string msg = read_error(path);
    CHECK_THAT(msg, Catch::Contains(path));
    CHECK_THAT(msg, Catch::Contains("magic"));
  }
  SECTION("not a npy at all (text)") {
    const std::string path = dir.file("text.npy");
    write_file(path, "hello");
    const std::string msg = read_error(path);
    CHECK_THAT(msg, Catch::Contains(path));
    CHECK_THAT(msg, Catch::Contains("magic"));
  }
  SECTION("int32 dtype") {
    const std::string path = dir.file("int.npy");
    write_file(path, make_npy("{'descr': '<i4', 'fortran_order': False, 'shape': (2, 3), }",
                              raw_bytes(std::vector<std::int32_t>{1, 2, 3, 4, 5, 6})));
    const std::string msg = read_error(path);
    CHECK_THAT(msg, Catch::Contains(path));
    CHECK_THAT(msg, Catch::Contains("unsupported dtype '<i4'"));
  }
  SECTION("big-endian float32") {
    const std::string path = dir.file("be.npy");
    write_file(path, make_npy("{'descr': '>f4', 'fortran_order': False, 'shape': (2, 3), }",
                              raw_bytes(six)));
    const std::string msg = read_error(path);
    CHECK_THAT(msg, Catch::Contains(path));
    CHECK_THAT(msg, Catch::Contains("'>f4'"));
  }
  SECTION("Fortran order") {
    const std::string path = dir.file("fortran.npy");
    write_file(path, make_npy("{'descr': '<f4', 'fortran_order': True, 'shape': (2, 3), }",
                              raw_bytes(six)));
    const std::string msg = read_error(path);
    CHECK_THAT(msg, Catch::Contains(path));
    CHECK_THAT(msg, Catch::Contains("fortran_order"));
  }
  SECTION("malformed header") {
    const std::string path = dir.file("malformed.npy");
    write_file(path, make_npy("{'descr': '<f4', 'shape': (2, 3)", raw_bytes(six)));
    const std::string msg = read_error(path);
    CHECK_THAT(msg, Catch::Contains(path));
    CHECK_THAT(msg, Catch::Contains("malformed header"));
  }
  SECTION("trailing bytes") {
    const std::string path = dir.file("long.npy");
    write_file(path, make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }",
                              raw_bytes(six) + "xxxx"));
    const std::string msg = read_error(path);
    CHECK_THAT(msg, Catch::Contains(path));
    CHECK_THAT(msg, Catch::Contains("bytes after the data"));
  }
  SECTION("a shape whose dimensions overflow int64 beside a zero (found by fuzz_npy)") {
    const std::string path = dir.file("overflow.npy");
    write_file(path, make_npy("{'descr': '<f2', 'fortran_order': False, "
                              "'shape': (0,925,9220,925,9223372,0685,7,5807) }",
                              ""));
    const std::string msg = read_error(path);
    CHECK_THAT(msg, Catch::Contains(path));
    CHECK_THAT(msg, Catch::Contains("shape too large"));
  }
  SECTION("an empty array of a sane shape is read") {
    const std::string path = dir.file("empty.npy");
    write_file(path, make_npy("{'descr': '<f4', 'fortran_order': False, 'shape': (0, 3), }", ""));
    CHECK(copgen::read_npy(path).sizes() == torch::IntArrayRef({0, 3}));
  }
  SECTION("missing file") {
    const std::string path = dir.file("missing.npy");
    const std::string msg = read_error(path);
    CHECK_THAT(msg, Catch::Contains(path));
    CHECK_THAT(msg, Catch::Contains("not found"));
  }
}

TEST_CASE("write_npy reports OutputError and leaves nothing behind", "[npy]") {
  copgen::test::TempDir dir;
  const std::string path = dir.file("no/such/dir/x.npy");
  try {
    copgen::write_npy(path, torch::zeros({2}));
    FAIL("expected OutputError");
  } catch (const copgen::OutputError& e) {
    CHECK_THAT(e.what(), Catch::Contains(path));
    CHECK_THAT(e.what(), Catch::Contains(dir.file("no/such/dir")));
  }
  CHECK(copgen::test::list_dir(dir.path).empty());
  CHECK_THROWS_AS(copgen::write_npy(dir.file("u.npy"), torch::Tensor()), copgen::OutputError);
}
