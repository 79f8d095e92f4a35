// SHA-256 (FIPS 180-4), for the checksums the models manifest records.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

namespace copgen {

// Lower-case hex digest of `size` bytes at `data`.
std::string sha256_hex(const void* data, std::size_t size);

// Lower-case hex digest of a file's contents, read in chunks. Throws ModelError naming
// `path` when it cannot be read (the manifest check is its main user).
std::string sha256_file(const std::string& path);

}  // namespace copgen
