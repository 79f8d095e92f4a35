#include "catch_torch.hpp"

#include <cstdint>
#include <fstream>
#include <string>
#include <vector>

#include "copgen/error.hpp"
#include "copgen/sha256.hpp"
#include "support.hpp"

namespace {

std::string hex_of(const std::string& s) { return copgen::sha256_hex(s.data(), s.size()); }

std::vector<std::uint8_t> pattern(std::size_t n) {
  std::vector<std::uint8_t> v(n);
  for (std::size_t i = 0; i < n; ++i) v[i] = static_cast<std::uint8_t>(i % 251);
  return v;
}

void write_bytes(const std::string& path, const void* data, std::size_t size) {
  std::ofstream f(path, std::ios::binary);
  f.write(static_cast<const char*>(data), static_cast<std::streamsize>(size));
  REQUIRE(f.good());
}

}  // namespace

TEST_CASE("sha256_hex matches the FIPS 180-4 / NIST test vectors", "[sha256]") {
  CHECK(hex_of("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(copgen::sha256_hex(nullptr, 0) ==
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  CHECK(hex_of("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hex_of("abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq") ==
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1");
  CHECK(hex_of(std::string(1000000, 'a')) ==
        "cdc76e5c9914fb9281a1c7e284d73e67f1809a48a497200e046d39ccc7112cd0");
}

TEST_CASE("sha256_hex pads correctly around block boundaries", "[sha256]") {
  // Expected digests from Python's hashlib over bytes(i % 251 for i in range(n)).
  const std::vector<std::pair<std::size_t, std::string>> cases = {
      {55, "463eb28e72f82e0a96c0a4cc53690c571281131f672aa229e0d45ae59b598b59"},
      {56, "da2ae4d6b36748f2a318f23e7ab1dfdf45acdc9d049bd80e59de82a60895f562"},
      {57, "2fe741af801cc238602ac0ec6a7b0c3a8a87c7fc7d7f02a3fe03d1c12eac4d8f"},
      {63, "29af2686fd53374a36b0846694cc342177e428d1647515f078784d69cdb9e488"},
      {64, "fdeab9acf3710362bd2658cdc9a29e8f9c757fcf9811603a8c447cd1d9151108"},
      {65, "4bfd2c8b6f1eec7a2afeb48b934ee4b2694182027e6d0fc075074f2fabb31781"},
      {119, "da18797ed7c3a777f0847f429724a2d8cd5138e6ed2895c3fa1a6d39d18f7ec6"},
      {120, "f52b23db1fbb6ded89ef42a23ce0c8922c45f25c50b568a93bf1c075420bbb7c"},
      {128, "471fb943aa23c511f6f72f8d1652d9c880cfa392ad80503120547703e56a2be5"},
  };
  for (const auto& [n, digest] : cases) {
    INFO("length " << n);
    const auto data = pattern(n);
    CHECK(copgen::sha256_hex(data.data(), data.size()) == digest);
  }
}

TEST_CASE("sha256_file equals sha256_hex of the file's bytes", "[sha256]") {
  copgen::test::TempDir dir;
  SECTION("small file") {
    const std::string path = dir.file("small.bin");
    const std::string content = "copgen model weights\n";
    write_bytes(path, content.data(), content.size());
    CHECK(copgen::sha256_file(path) == hex_of(content));
  }
  SECTION("empty file") {
    const std::string path = dir.file("empty.bin");
    write_bytes(path, "", 0);
    CHECK(copgen::sha256_file(path) ==
          "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
  }
  SECTION("file larger than one read chunk (1 MiB)") {
    const std::string path = dir.file("large.bin");
    const auto data = pattern((std::size_t{1} << 20) * 2 + 12345);
    write_bytes(path, data.data(), data.size());
    CHECK(copgen::sha256_file(path) == copgen::sha256_hex(data.data(), data.size()));
  }
}

TEST_CASE("sha256_file throws ModelError naming an unreadable file", "[sha256]") {
  copgen::test::TempDir dir;
  const std::string missing = dir.file("missing.pt");
  try {
    copgen::sha256_file(missing);
    FAIL("expected ModelError");
  } catch (const copgen::ModelError& e) {
    CHECK_THAT(e.what(), Catch::Contains("cannot read '" + missing + "'"));
  }
  // A directory cannot be hashed either.
  CHECK_THROWS_AS(copgen::sha256_file(dir.path), copgen::ModelError);
}
