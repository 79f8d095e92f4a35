// Cooperative cancellation. The CLI's SIGINT/SIGTERM handler calls request_stop(); long
// loops call throw_if_stop_requested() at safe points (between network calls, between
// outputs), which throws copgen::Interrupted. Outputs are written under temporary names
// and renamed, so stopping never leaves a partial file.
#pragma once

namespace copgen {

void request_stop() noexcept;      // async-signal-safe
bool stop_requested() noexcept;
void reset_stop() noexcept;        // clears a request: a program that goes on after a stopped run
void throw_if_stop_requested();    // throws Interrupted

}  // namespace copgen
