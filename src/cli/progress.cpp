#include "progress.hpp"

#include <unistd.h>

#include <algorithm>
#include <string>

#include <spdlog/spdlog.h>

#include "copgen/runtime.hpp"

namespace copgen::cli {

ProgressLine::ProgressLine(bool enabled, double quiet_for_seconds)
    : enabled_(enabled), tty_(isatty(STDERR_FILENO) != 0), quiet_for_(quiet_for_seconds),
      start_(std::chrono::steady_clock::now()) {}

ProgressLine::~ProgressLine() { finish(); }

void ProgressLine::update(std::int64_t done, std::int64_t total) {
  if (!enabled_) return;
  const double elapsed =
      std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
  if (elapsed < quiet_for_ && done < total) return;
  const double eta = done > 0 ? elapsed / done * (total - done) : -1.0;
  const std::string text = fmt::format("solver steps {}/{}, {:.1f} s elapsed, ETA {}", done, total, elapsed,
                                       format_duration(eta));
  if (tty_) {
    draw_progress_line(text);
    if (done >= total) finish();
  } else if (elapsed - last_print_ >= 5.0 || done == total) {
    if (elapsed >= quiet_for_) spdlog::info("{}", text);
    last_print_ = elapsed;
  }
}

void ProgressLine::finish() {
  if (tty_) end_progress_line();
}

BatchProgressLine::BatchProgressLine(bool enabled, double log_every_seconds)
    : enabled_(enabled), tty_(isatty(STDERR_FILENO) != 0), log_every_(log_every_seconds) {}

BatchProgressLine::~BatchProgressLine() { finish(); }

void BatchProgressLine::update(const BatchProgress& p) {
  if (!enabled_) return;
  const double rate = p.elapsed > 0 ? p.done / p.elapsed : 0.0;
  const double eta = rate > 0 ? (p.total - p.done) / rate : -1.0;
  const std::string failed = p.failed > 0 ? ", " + std::to_string(p.failed) + " failed" : "";
  if (tty_) {
    constexpr int kWidth = 24;
    const int filled = p.total > 0 ? static_cast<int>(static_cast<double>(kWidth) * p.done / p.total) : kWidth;
    std::string bar(static_cast<std::size_t>(std::clamp(filled, 0, kWidth)), '#');
    bar.resize(kWidth, '.');
    draw_progress_line(fmt::format("[{}] {}/{} tuples{}, {:.2f} tuples/s, ETA {}", bar, p.done, p.total, failed, rate,
                                   format_duration(eta)));
    if (p.done >= p.total) finish();  // the last update: the summary goes on its own line
  } else if (p.elapsed - last_log_ >= log_every_ || p.done == p.total) {
    spdlog::info("progress: {}/{} tuples{}, {:.2f} tuples/s, ETA {}", p.done, p.total, failed, rate,
                 format_duration(eta));
    last_log_ = p.elapsed;
  }
}

void BatchProgressLine::finish() {
  if (tty_) end_progress_line();
}

}  // namespace copgen::cli
