// NumPy .npy reader/writer (format versions 1.0, 2.0 and 3.0).
//
// File layout: "\x93NUMPY", major, minor, header length (uint16 LE for 1.x, uint32 LE
// for 2.x/3.x), then a Python dict literal such as
//   {'descr': '<f4', 'fortran_order': False, 'shape': (2, 3, 4), }
// padded with spaces and ending in '\n', then the raw array data.
#include "copgen/npy.hpp"

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdint>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <limits>
#include <sstream>
#include <string>
#include <utility>
#include <vector>

#include <unistd.h>

#include "copgen/error.hpp"
#include "copgen/files.hpp"

#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ != __ORDER_LITTLE_ENDIAN__
#error "copgen's .npy support assumes a little-endian host"
#endif

namespace fs = std::filesystem;

namespace copgen {
namespace {

constexpr char kMagic[] = "\x93NUMPY";
constexpr std::size_t kMagicSize = 6;

[[noreturn]] void input_error(const std::string& path, const std::string& detail) {
  throw InputError("npy file '" + path + "': " + detail);
}

[[noreturn]] void output_error(const std::string& path, const std::string& detail) {
  throw OutputError("output '" + path + "': " + detail);
}

// ---- a parser for the Python literals that appear in .npy headers ---------------------

struct PyValue {
  enum class Kind { Str, Bool, Int, None, Seq };
  Kind kind = Kind::None;
  std::string str;
  bool boolean = false;
  std::int64_t integer = 0;
  std::vector<PyValue> items;  // tuple or list elements
};

class HeaderParser {
 public:
  HeaderParser(std::string text, std::string path) : s_(std::move(text)), path_(std::move(path)) {}

  // Parses "{key: value, ...}" with string keys.
  std::vector<std::pair<std::string, PyValue>> parse_dict() {
    std::vector<std::pair<std::string, PyValue>> out;
    skip_ws();
    expect('{');
    for (;;) {
      skip_ws();
      if (peek() == '}') {
        ++pos_;
        break;
      }
      PyValue key = parse_value();
      if (key.kind != PyValue::Kind::Str) fail("dictionary keys must be strings");
      skip_ws();
      expect(':');
      PyValue value = parse_value();
      out.emplace_back(key.str, std::move(value));
      skip_ws();
      if (peek() == ',') {
        ++pos_;
      } else if (peek() == '}') {
        ++pos_;
        break;
      } else {
        fail("expected ',' or '}'");
      }
    }
    skip_ws();
    if (pos_ != s_.size()) fail("unexpected text after the dictionary");
    return out;
  }

 private:
  char peek() const { return pos_ < s_.size() ? s_[pos_] : '\0'; }

  void skip_ws() {
    while (pos_ < s_.size() && std::isspace(static_cast<unsigned char>(s_[pos_])) != 0) ++pos_;
  }

  void expect(char c) {
    if (peek() != c) fail(std::string("expected '") + c + "'");
    ++pos_;
  }

  [[noreturn]] void fail(const std::string& what) const {
    input_error(path_, "malformed header (" + what + " at offset " + std::to_string(pos_) +
                           " of \"" + excerpt() + "\")");
  }

  bool consume_word(const char* word) {
    const std::size_t n = std::strlen(word);
    if (s_.compare(pos_, n, word) != 0) return false;
    const std::size_t end = pos_ + n;
    if (end < s_.size() &&
        (std::isalnum(static_cast<unsigned char>(s_[end])) != 0 || s_[end] == '_'))
      return false;
    pos_ = end;
    return true;
  }

  PyValue parse_value(int depth = 0) {
    // numpy writes flat tuples; a bound on nesting keeps hostile headers off the stack
    if (depth > kMaxNesting) fail("nested deeper than " + std::to_string(kMaxNesting) + " levels");
    skip_ws();
    PyValue v;
    const char c = peek();
    if (c == '\'' || c == '"') {
      v.kind = PyValue::Kind::Str;
      ++pos_;
      while (pos_ < s_.size() && s_[pos_] != c) {
        if (s_[pos_] == '\\' && pos_ + 1 < s_.size()) ++pos_;
        v.str += s_[pos_++];
      }
      expect(c);
    } else if (c == '(' || c == '[') {
      const char close = c == '(' ? ')' : ']';
      v.kind = PyValue::Kind::Seq;
      ++pos_;
      for (;;) {
        skip_ws();
        if (peek() == close) {
          ++pos_;
          break;
        }
        v.items.push_back(parse_value(depth + 1));
        skip_ws();
        if (peek() == ',') {
          ++pos_;
        } else if (peek() == close) {
          ++pos_;
          break;
        } else {
          fail(std::string("expected ',' or '") + close + "'");
        }
      }
    } else if (std::isdigit(static_cast<unsigned char>(c)) != 0 || c == '-' || c == '+') {
      v.kind = PyValue::Kind::Int;
      bool negative = false;
      if (c == '-' || c == '+') {
        negative = c == '-';
        ++pos_;
      }
      if (std::isdigit(static_cast<unsigned char>(peek())) == 0) fail("expected a digit");
      std::uint64_t value = 0;
      while (std::isdigit(static_cast<unsigned char>(peek())) != 0) {
        const auto digit = static_cast<std::uint64_t>(s_[pos_++] - '0');
        if (value >
            (static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) - digit) / 10)
          fail("integer too large");
        value = value * 10 + digit;
      }
      if (peek() == 'L' || peek() == 'l') ++pos_;  // Python 2 long, e.g. (3L, 4L)
      v.integer = negative ? -static_cast<std::int64_t>(value) : static_cast<std::int64_t>(value);
    } else if (consume_word("True")) {
      v.kind = PyValue::Kind::Bool;
      v.boolean = true;
    } else if (consume_word("False")) {
      v.kind = PyValue::Kind::Bool;
      v.boolean = false;
    } else if (consume_word("None")) {
      v.kind = PyValue::Kind::None;
    } else {
      fail("unexpected character");
    }
    return v;
  }

  std::string s_;
  std::string path_;
  std::size_t pos_ = 0;
  static constexpr int kMaxNesting = 32;

  // The header for messages: whole when short, else its start and the part at pos_.
  std::string excerpt() const {
    constexpr std::size_t kMax = 160;
    if (s_.size() <= kMax) return s_;
    const std::size_t from = pos_ > kMax / 2 ? pos_ - kMax / 2 : 0;
    return (from > 0 ? "..." : "") + s_.substr(from, kMax) + (from + kMax < s_.size() ? "..." : "");
  }
};

std::string shape_string(const std::vector<std::int64_t>& shape) {
  std::string s = "(";
  for (std::size_t i = 0; i < shape.size(); ++i) {
    if (i > 0) s += ", ";
    s += std::to_string(shape[i]);
  }
  if (shape.size() == 1) s += ",";
  return s + ")";
}

std::uint32_t read_le(const unsigned char* p, std::size_t n) {
  std::uint32_t v = 0;
  for (std::size_t i = 0; i < n; ++i) v |= static_cast<std::uint32_t>(p[i]) << (8 * i);
  return v;
}

std::atomic<unsigned long> g_temp_counter{0};

}  // namespace

namespace {

// Checks that `path` is a non-empty regular file and returns its size in bytes.
std::uintmax_t npy_file_size(const std::string& path) {
  std::error_code ec;
  const fs::file_status status = fs::status(path, ec);
  if (ec || !fs::exists(status)) input_error(path, "file not found");
  if (fs::is_directory(status)) input_error(path, "is a directory, not a .npy file");
  if (!fs::is_regular_file(status)) input_error(path, "is " + special_file_kind(path) + ", not a regular file");
  const std::uintmax_t file_size = fs::file_size(path, ec);
  if (ec) input_error(path, "cannot read (" + ec.message() + ")");
  if (file_size == 0) input_error(path, "file is empty (0 bytes)");
  return file_size;
}

// Reads the preamble (magic, version, header length) and the header text; sets where the data starts.
std::string read_header_text(std::ifstream& in, const std::string& path, std::uintmax_t file_size,
                             std::uint64_t& data_offset) {
  unsigned char preamble[12] = {};
  in.read(reinterpret_cast<char*>(preamble), 8);
  if (in.gcount() < static_cast<std::streamsize>(kMagicSize) ||
      std::memcmp(preamble, kMagic, kMagicSize) != 0) {
    input_error(path, "not a .npy file (bad magic; expected \\x93NUMPY)");
  }
  if (in.gcount() < 8) input_error(path, "truncated header");
  const int major = preamble[6];
  const int minor = preamble[7];
  if (major < 1 || major > 3 || minor != 0) {
    input_error(path, "unsupported .npy format version " + std::to_string(major) + "." +
                          std::to_string(minor) + " (copgen reads 1.0, 2.0 and 3.0)");
  }
  const std::size_t length_bytes = major == 1 ? 2 : 4;
  in.read(reinterpret_cast<char*>(preamble + 8), static_cast<std::streamsize>(length_bytes));
  if (in.gcount() < static_cast<std::streamsize>(length_bytes))
    input_error(path, "truncated header");
  const std::uint64_t header_len = read_le(preamble + 8, length_bytes);
  data_offset = 8 + length_bytes + header_len;
  if (data_offset > file_size) {
    input_error(path, "truncated header (header length " + std::to_string(header_len) +
                          " but the file has " + std::to_string(file_size) + " bytes)");
  }
  std::string header(static_cast<std::size_t>(header_len), '\0');
  in.read(header.data(), static_cast<std::streamsize>(header_len));
  if (static_cast<std::uint64_t>(in.gcount()) != header_len) input_error(path, "truncated header");
  return header;
}

// The three entries a .npy header dictionary must hold (pointing into the parsed dictionary).
struct HeaderFields {
  const PyValue* descr = nullptr;
  const PyValue* fortran = nullptr;
  const PyValue* shape_value = nullptr;
};

// Finds 'descr', 'fortran_order' and 'shape' in the parsed header; throws if one is missing.
HeaderFields find_header_fields(const std::vector<std::pair<std::string, PyValue>>& dict, const std::string& path,
                                const std::string& header) {
  HeaderFields h;
  for (const auto& [key, value] : dict) {
    if (key == "descr")
      h.descr = &value;
    else if (key == "fortran_order")
      h.fortran = &value;
    else if (key == "shape")
      h.shape_value = &value;
  }
  if (h.descr == nullptr || h.fortran == nullptr || h.shape_value == nullptr) {
    input_error(path,
                "malformed header (it needs 'descr', 'fortran_order' and 'shape'): " +
                    (header.size() > 200 ? header.substr(0, 200) + "..." : header));
  }
  return h;
}

// Maps the header's 'descr' to the stored dtype and its size in bytes; throws for unsupported dtypes.
void parse_dtype(const PyValue* descr, const std::string& path, torch::ScalarType& stored, std::size_t& itemsize) {
  if (descr->kind != PyValue::Kind::Str) {
    input_error(path,
                "unsupported dtype (structured arrays are not supported; copgen reads "
                "'<f4', '<f8' and '<f2')");
  }
  const std::string& dtype = descr->str;
  if (dtype == "<f4") {
    stored = torch::kFloat32;
    itemsize = 4;
  } else if (dtype == "<f8") {
    stored = torch::kFloat64;
    itemsize = 8;
  } else if (dtype == "<f2") {
    stored = torch::kFloat16;
    itemsize = 2;
  } else {
    input_error(path, "unsupported dtype '" + (dtype.size() > 40 ? dtype.substr(0, 40) + "..." : dtype) +
                          "' (copgen reads little-endian float32 '<f4', float64 '<f8' and "
                          "float16 '<f2')");
  }
}

// Throws unless the header's 'fortran_order' is False.
void check_c_order(const PyValue* fortran, const std::string& path) {
  if (fortran->kind != PyValue::Kind::Bool)
    input_error(path, "malformed header ('fortran_order' is not True/False)");
  if (fortran->boolean) {
    input_error(path,
                "fortran_order is True; copgen reads C-order arrays only (save it with "
                "numpy.ascontiguousarray)");
  }
}

// Reads the header's 'shape' into `shape` and returns the element count; throws if the sizes would overflow.
std::uint64_t parse_shape(const PyValue* shape_value, const std::string& path, std::size_t itemsize,
                          std::vector<std::int64_t>& shape) {
  if (shape_value->kind != PyValue::Kind::Seq)
    input_error(path, "malformed header ('shape' is not a tuple)");
  // The product of the non-zero dimensions must fit torch's int64 strides and byte counts
  // even when another dimension is 0 (found by fuzz_npy: (0, 925, 9220, ...) overflowed
  // the strides of an empty tensor).
  std::uint64_t extent = 1;
  bool empty = false;
  const auto limit = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()) / itemsize;
  for (const PyValue& dim : shape_value->items) {
    if (dim.kind != PyValue::Kind::Int || dim.integer < 0) {
      input_error(path, "malformed header ('shape' must hold non-negative integers)");
    }
    const auto d = static_cast<std::uint64_t>(dim.integer);
    if (d == 0) {
      empty = true;
    } else {
      if (extent > limit / d) input_error(path, "shape too large");
      extent *= d;
    }
    shape.push_back(dim.integer);
  }
  return empty ? 0 : extent;
}

// Throws unless the file holds exactly `data_bytes` bytes of data after the header.
void check_data_size(const std::string& path, const std::vector<std::int64_t>& shape, const std::string& dtype,
                     std::uint64_t data_bytes, std::uint64_t present) {
  if (present < data_bytes) {
    input_error(path, "truncated: shape " + shape_string(shape) + " of " + dtype + " needs " +
                          std::to_string(data_bytes) + " data bytes, the file has " +
                          std::to_string(present));
  }
  if (present > data_bytes) {
    input_error(path, "unexpected " + std::to_string(present - data_bytes) +
                          " bytes after the data of shape " + shape_string(shape) + " (" + dtype +
                          ")");
  }
}

}  // namespace

torch::Tensor read_npy(const std::string& path) {
  const std::uintmax_t file_size = npy_file_size(path);

  std::ifstream in(path, std::ios::binary);
  if (!in) input_error(path, "cannot open (" + std::string(std::strerror(errno)) + ")");

  // Preamble: magic, version, header length.
  std::uint64_t data_offset = 0;
  std::string header = read_header_text(in, path, file_size, data_offset);

  // Header dictionary.
  HeaderParser parser(header, path);
  const auto dict = parser.parse_dict();
  const HeaderFields fields = find_header_fields(dict, path, header);

  torch::ScalarType stored = torch::kFloat32;
  std::size_t itemsize = 0;
  parse_dtype(fields.descr, path, stored, itemsize);
  const std::string& dtype = fields.descr->str;

  check_c_order(fields.fortran, path);

  std::vector<std::int64_t> shape;
  const std::uint64_t count = parse_shape(fields.shape_value, path, itemsize, shape);

  const std::uint64_t data_bytes = count * itemsize;
  const std::uint64_t present = file_size - data_offset;
  check_data_size(path, shape, dtype, data_bytes, present);

  torch::Tensor raw = torch::empty(shape, torch::TensorOptions().dtype(stored));
  if (data_bytes > 0) {
    in.read(static_cast<char*>(raw.data_ptr()), static_cast<std::streamsize>(data_bytes));
    if (static_cast<std::uint64_t>(in.gcount()) != data_bytes) {
      input_error(path, "truncated: could read only " + std::to_string(in.gcount()) + " of " +
                            std::to_string(data_bytes) + " data bytes");
    }
  }
  if (stored == torch::kFloat32) return raw;
  return raw.to(torch::kFloat32).contiguous();
}

void write_npy(const std::string& path, const torch::Tensor& tensor) {
  if (path.empty()) throw OutputError("output path is empty");
  if (!tensor.defined()) output_error(path, "no tensor to write (undefined)");
  const torch::Tensor data = tensor.detach().to(torch::kCPU).to(torch::kFloat32).contiguous();

  std::vector<std::int64_t> shape(data.sizes().begin(), data.sizes().end());
  std::string header =
      "{'descr': '<f4', 'fortran_order': False, 'shape': " + shape_string(shape) + ", }";
  // Pad with spaces so that the data starts at a multiple of 64 bytes; end with '\n'.
  const std::size_t preamble = kMagicSize + 2 + 2;
  const std::size_t unpadded = preamble + header.size() + 1;
  header.append((64 - unpadded % 64) % 64, ' ');
  header += '\n';
  if (header.size() > 0xFFFF)
    output_error(path, "array has too many dimensions for a .npy 1.0 header");

  const fs::path target(path);
  std::error_code ec;
  if (fs::is_directory(target, ec)) output_error(path, "is a directory");
  check_output_file(path, {}, "npy file");  // never a device or FIFO
  fs::path dir = target.parent_path();
  if (dir.empty()) dir = ".";
  if (!fs::is_directory(dir, ec))
    output_error(path, "directory '" + dir.string() + "' does not exist");

  const fs::path temp =
      dir / ("." + target.filename().string() + ".tmp-" + std::to_string(::getpid()) + "-" +
             std::to_string(g_temp_counter.fetch_add(1)));
  try {
    {
      std::ofstream out(temp, std::ios::binary | std::ios::trunc);
      if (!out) {
        output_error(path, "cannot create '" + temp.string() + "' (" + std::strerror(errno) + ")");
      }
      out.write(kMagic, static_cast<std::streamsize>(kMagicSize));
      const char version[2] = {1, 0};
      out.write(version, 2);
      const char len[2] = {static_cast<char>(header.size() & 0xFF),
                           static_cast<char>((header.size() >> 8) & 0xFF)};
      out.write(len, 2);
      out.write(header.data(), static_cast<std::streamsize>(header.size()));
      const std::size_t bytes = static_cast<std::size_t>(data.numel()) * sizeof(float);
      if (bytes > 0)
        out.write(static_cast<const char*>(data.data_ptr()), static_cast<std::streamsize>(bytes));
      out.flush();
      if (!out)
        output_error(path, "cannot write '" + temp.string() + "' (" + std::strerror(errno) + ")");
      out.close();
      if (out.fail())
        output_error(path, "cannot write '" + temp.string() + "' (" + std::strerror(errno) + ")");
    }
    fs::rename(temp, target, ec);
    if (ec)
      output_error(path, "cannot rename '" + temp.string() + "' into place (" + ec.message() + ")");
  } catch (...) {
    std::error_code ignored;
    fs::remove(temp, ignored);
    throw;
  }
}

}  // namespace copgen
