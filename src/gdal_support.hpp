// Private to copgen's GDAL module (src/raster_*.cpp): RAII handles and CPLError capture.
// Nothing outside src/raster_*.cpp includes GDAL.
#pragma once

#include <cerrno>
#include <cstring>
#include <memory>
#include <string>

#include <cpl_conv.h>
#include <cpl_error.h>
#include <cpl_string.h>
#include <cpl_vsi.h>
#include <gdal.h>
#include <gdal_priv.h>
#include <spdlog/spdlog.h>

#include "copgen/error.hpp"
#include "copgen/raster_io.hpp"

namespace copgen::gdal_detail {

// ---- GDAL error routing ---------------------------------------------------------------

// A CPLError message without trailing newlines/blanks (some drivers end them with '\n').
inline std::string clean_message(const char* message) {
  std::string msg = message != nullptr ? message : "";
  while (!msg.empty() && (msg.back() == '\n' || msg.back() == '\r' || msg.back() == ' ')) {
    msg.pop_back();
  }
  return msg;
}

// Logs one CPLError. Failures are logged at debug level only: copgen rethrows them as
// exceptions with context, and the user sees them there.
inline void log_cpl_error(CPLErr level, CPLErrorNum number, const char* message) noexcept {
  try {
    const std::string msg = clean_message(message);
    switch (level) {
      case CE_None:
        spdlog::trace("GDAL: {}", msg);
        break;
      case CE_Debug:
        spdlog::debug("GDAL: {}", msg);
        break;
      case CE_Warning:
        spdlog::warn("GDAL: {}", msg);
        break;
      case CE_Failure:
      case CE_Fatal:
      default:
        spdlog::debug("GDAL error {}: {}", static_cast<int>(number), msg);
        break;
    }
  } catch (...) {
    // Never let an exception cross into GDAL's C code.
  }
}

inline void CPL_STDCALL global_error_handler(CPLErr level, CPLErrorNum number, const char* message) {
  log_cpl_error(level, number, message);
}

// While alive, records the CPLErrors of this thread (and still logs them). GDAL keeps
// error handlers per thread, so concurrent operations on other threads do not interfere.
class ErrorCapture {
 public:
  ErrorCapture() {
    CPLErrorReset();
    errno = 0;
    CPLPushErrorHandlerEx(&ErrorCapture::handler, this);
  }
  ~ErrorCapture() { CPLPopErrorHandler(); }
  ErrorCapture(const ErrorCapture&) = delete;
  ErrorCapture& operator=(const ErrorCapture&) = delete;

  bool failed() const { return failed_; }
  // The last warning (GDAL reports each failed HTTP attempt as one before it retries).
  const std::string& last_warning() const { return last_warning_; }
  // The last failure message, else the last CPL error message, else `fallback`. GDAL's
  // write errors ("Write error at scanline 0") omit the cause; a full disk or a file-size
  // limit is added from errno.
  std::string message(const std::string& fallback = "unknown GDAL error") const {
    if (!last_failure_.empty()) {
      return io_errno_ != 0 ? last_failure_ + ": " + std::strerror(io_errno_) : last_failure_;
    }
    const std::string last = clean_message(CPLGetLastErrorMsg());
    return last.empty() ? fallback : last;
  }
  void reset() {
    failed_ = false;
    last_failure_.clear();
    last_warning_.clear();
    io_errno_ = 0;
    CPLErrorReset();
    errno = 0;
  }

 private:
  static void CPL_STDCALL handler(CPLErr level, CPLErrorNum number, const char* message) {
    auto* self = static_cast<ErrorCapture*>(CPLGetErrorHandlerUserData());
    if (self != nullptr && level == CE_Warning) self->last_warning_ = clean_message(message);
    if (self != nullptr && (level == CE_Failure || level == CE_Fatal)) {
      self->failed_ = true;
      self->last_failure_ = clean_message(message);
      if (errno == ENOSPC || errno == EFBIG || errno == EDQUOT) self->io_errno_ = errno;
    }
    log_cpl_error(level, number, message);
  }

  bool failed_ = false;
  std::string last_failure_;
  std::string last_warning_;
  int io_errno_ = 0;  // ENOSPC, EFBIG or EDQUOT seen with a failure
};

// ---- RAII ---------------------------------------------------------------------------

struct DatasetCloser {
  void operator()(GDALDataset* ds) const noexcept {
    if (ds != nullptr) GDALClose(GDALDataset::ToHandle(ds));
  }
};
using DatasetPtr = std::unique_ptr<GDALDataset, DatasetCloser>;

struct CslDeleter {
  void operator()(char** list) const noexcept { CSLDestroy(list); }
};
using CslPtr = std::unique_ptr<char*, CslDeleter>;

// ---- helpers ------------------------------------------------------------------------

inline std::string quoted(const std::string& path) { return "'" + path + "'"; }

[[noreturn]] inline void input_error(const std::string& what, const std::string& path,
                              const std::string& detail) {
  throw InputError(what + " " + quoted(path) + ": " + detail);
}

[[noreturn]] inline void output_error(const std::string& path, const std::string& detail) {
  throw OutputError("output " + quoted(path) + ": " + detail);
}

inline bool stat_path(const std::string& path, VSIStatBufL* st, int flags) {
  return VSIStatExL(path.c_str(), st, flags) == 0;
}

inline bool is_vsi(const std::string& path) { return path.rfind("/vsi", 0) == 0; }

// Local filesystem paths (not a /vsi... virtual file system).
inline bool is_local(const std::string& path) { return !is_vsi(path); }

inline std::string parent_dir(const std::string& path) {
  std::string dir = CPLGetPath(path.c_str());  // copy out of CPL's rotating buffer
  return dir;
}

inline std::string file_name(const std::string& path) {
  std::string name = CPLGetFilename(path.c_str());
  return name;
}


// Defined in raster_io.cpp.
// Opens a raster for reading; InputError "<what> '<path>': ..." when missing, unreadable,
// not a raster or without pixels. An http(s) URL under /vsicurl/ (or inside a vrt://
// connection string) is first probed with probe_remote_raster (copgen/remote.hpp), whose
// errors name the URL.
DatasetPtr open_dataset(const std::string& path, const std::string& what);
// A temporary name next to `path` (".<name>.tmp-<pid>-<n>"), where a writer writes
// before renaming into place.
std::string temp_path_for(const std::string& path);
// OutputError unless the directory `path` goes into exists and is writable (local paths
// only: /vsi... file systems report problems when written to).
void check_destination_dir(const std::string& path);

}  // namespace copgen::gdal_detail
