// copgen's error type. Library code throws copgen::Error (or a subclass) with a message
// that names the culprit (file, flag, modality) and what was wrong; the CLI catches it
// once in main() and maps its kind to the process exit code.
//
// Exit codes (documented in --help, README.md and docs/errors.md):
//   0 success, 1 anything else, 2 usage error, 3 input data error, 4 model error,
//   5 output error, 130 interrupted (SIGINT/SIGTERM).
#pragma once

#include <stdexcept>
#include <string>

namespace copgen {

enum class ErrorKind {
  Usage = 2,    // bad flags or arguments
  Input = 3,    // an input file is missing, unreadable or not what was expected
  Model = 4,    // models directory, manifest or TorchScript files are wrong
  Output = 5,   // an output cannot be written
  Runtime = 1,  // anything else (out of memory, NaN in the network output, ...)
  Interrupted = 130,  // the user asked copgen to stop
};

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const noexcept { return kind_; }
  int exit_code() const noexcept { return static_cast<int>(kind_); }

 private:
  ErrorKind kind_;
};

struct UsageError : Error {
  explicit UsageError(const std::string& m) : Error(ErrorKind::Usage, m) {}
};
struct InputError : Error {
  explicit InputError(const std::string& m) : Error(ErrorKind::Input, m) {}
};
struct ModelError : Error {
  explicit ModelError(const std::string& m) : Error(ErrorKind::Model, m) {}
};
struct OutputError : Error {
  explicit OutputError(const std::string& m) : Error(ErrorKind::Output, m) {}
};
struct RuntimeError : Error {
  explicit RuntimeError(const std::string& m) : Error(ErrorKind::Runtime, m) {}
};
struct Interrupted : Error {
  Interrupted() : Error(ErrorKind::Interrupted, "interrupted") {}
};

}  // namespace copgen
