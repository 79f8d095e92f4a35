// The progress lines of the command line: on a terminal one line redrawn in place, else
// a log line now and then. The library reports progress through callbacks
// (ProgressFn, BatchProgressFn); these turn them into text.
#pragma once

#include <chrono>
#include <cstdint>

#include "copgen/batch.hpp"

namespace copgen::cli {

// "network calls D/T, E s elapsed, ETA m:ss": on a terminal one line redrawn in place,
// otherwise a log line at most every few seconds; nothing for runs shorter than
// `quiet_for` or when disabled.
class ProgressLine {
 public:
  explicit ProgressLine(bool enabled, double quiet_for_seconds = 3.0);
  ~ProgressLine();
  void update(std::int64_t done, std::int64_t total);
  void finish();

 private:
  bool enabled_;
  bool tty_;
  double quiet_for_;
  double last_print_ = -1e9;
  std::chrono::steady_clock::time_point start_;
};

// Batch progress: on a terminal one line redrawn in place (a bar, tuples done of total,
// tuples per second, ETA), otherwise a log line at most every `log_every` seconds.
// Thread-compatible: run_batch calls its callback under one lock.
class BatchProgressLine {
 public:
  explicit BatchProgressLine(bool enabled, double log_every_seconds = 10.0);
  ~BatchProgressLine();
  void update(const BatchProgress& p);
  void finish();

 private:
  bool enabled_;
  bool tty_;
  double log_every_;
  double last_log_ = -1e9;
};

}  // namespace copgen::cli
