// The two hand-offs of the batch runner (batch.cpp): reader threads load batches ahead of
// the sampling thread, which takes them in order (ReadAhead); the sampling thread hands
// sampled batches to the writer thread (BoundedQueue).
#pragma once

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <map>
#include <mutex>
#include <optional>

#include "copgen/cancel.hpp"
#include "copgen/error.hpp"

namespace copgen::detail {

// A bounded queue of many producers and one consumer: push() waits while it is full,
// pop() while it is empty, and returns false once it is closed and drained.
template <class T>
class BoundedQueue {
 public:
  explicit BoundedQueue(std::size_t capacity) : capacity_(capacity) {}
  void push(T item) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return items_.size() < capacity_; });
    items_.push_back(std::move(item));
    cv_.notify_all();
  }
  bool pop(T& item) {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return !items_.empty() || closed_; });
    if (items_.empty()) return false;
    item = std::move(items_.front());
    items_.pop_front();
    cv_.notify_all();
    return true;
  }
  void close() {
    std::lock_guard<std::mutex> lock(mu_);
    closed_ = true;
    cv_.notify_all();
  }

 private:
  std::size_t capacity_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<T> items_;
  bool closed_ = false;
};

// Positions 0 .. count-1, claimed by readers at most `window` ahead of the last one taken
// and handed to the one consumer in order.
template <class T>
class ReadAhead {
 public:
  ReadAhead(std::size_t count, std::size_t window) : count_(count), window_(std::max<std::size_t>(1, window)) {}

  // Reader side: the next position to load, or nullopt when done or stopped.
  std::optional<std::size_t> claim() {
    std::unique_lock<std::mutex> lock(mu_);
    cv_.wait(lock, [&] { return stop_ || next_ >= count_ || next_ < consumed_ + window_; });
    if (stop_ || next_ >= count_) return std::nullopt;
    return next_++;
  }
  void deliver(std::size_t pos, T item) {
    std::lock_guard<std::mutex> lock(mu_);
    ready_[pos] = std::move(item);
    cv_.notify_all();
  }
  // Consumer side: the item at `pos`, waiting for it (the wait is added to `waited`, in
  // seconds); throws Interrupted on a stop request.
  T take(std::size_t pos, double& waited) {
    const auto start = std::chrono::steady_clock::now();
    std::unique_lock<std::mutex> lock(mu_);
    while (!ready_.count(pos)) {
      if (stop_requested()) throw Interrupted();
      cv_.wait_for(lock, std::chrono::milliseconds(50));
    }
    T item = std::move(ready_[pos]);
    ready_.erase(pos);
    consumed_ = pos + 1;
    cv_.notify_all();
    waited += std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    return item;
  }
  void stop() {
    std::lock_guard<std::mutex> lock(mu_);
    stop_ = true;
    cv_.notify_all();
  }

 private:
  std::size_t count_, window_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::size_t next_ = 0, consumed_ = 0;
  std::map<std::size_t, T> ready_;
  bool stop_ = false;
};

}  // namespace copgen::detail
