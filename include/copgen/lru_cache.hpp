// A small least-recently-used map of at most `capacity` entries. Inserting into a full
// cache destroys the least recently used entry (its value's destructor frees what it
// holds: a CUDA graph's memory pool, a pinned staging buffer). Used by GraphCache (one
// graph per input shape) and HostStagingPool (one buffer per shape and dtype).
//
//   LruCache<std::string, Buffer> c(4);
//   if (Buffer* b = c.find(key)) use(*b);      // marks key most recently used
//   else c.insert(key, make_buffer());         // may evict the oldest
//
// Linear in the capacity per call, which stays a handful. Not thread-safe.
#pragma once

#include <cstddef>
#include <list>
#include <stdexcept>
#include <utility>

namespace copgen {

template <class Key, class Value>
class LruCache {
 public:
  // capacity >= 1; throws std::invalid_argument otherwise.
  explicit LruCache(std::size_t capacity) : capacity_(capacity) {
    if (capacity == 0) throw std::invalid_argument("LruCache: capacity must be at least 1");
  }

  // The value of `key`, now the most recently used, or null. The pointer stays valid until
  // the entry is evicted or erased.
  Value* find(const Key& key) {
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->first == key) {
        entries_.splice(entries_.begin(), entries_, it);
        return &entries_.front().second;
      }
    }
    return nullptr;
  }

  // The value of `key` without marking it used, or null.
  Value* peek(const Key& key) {
    for (auto& e : entries_) {
      if (e.first == key) return &e.second;
    }
    return nullptr;
  }

  bool contains(const Key& key) const {
    for (const auto& e : entries_) {
      if (e.first == key) return true;
    }
    return false;
  }

  // Inserts (or replaces) `key` as the most recently used entry; when that makes one entry
  // too many, the least recently used is destroyed first. Returns the number evicted (0 or 1).
  std::size_t insert(const Key& key, Value value) {
    erase(key);
    std::size_t evicted = 0;
    if (entries_.size() >= capacity_) {
      entries_.pop_back();
      evicted = 1;
    }
    entries_.emplace_front(key, std::move(value));
    return evicted;
  }

  bool erase(const Key& key) {
    for (auto it = entries_.begin(); it != entries_.end(); ++it) {
      if (it->first == key) {
        entries_.erase(it);
        return true;
      }
    }
    return false;
  }

  void clear() { entries_.clear(); }
  std::size_t size() const { return entries_.size(); }
  std::size_t capacity() const { return capacity_; }
  // The least recently used key (the next to go); requires size() > 0.
  const Key& oldest() const { return entries_.back().first; }

 private:
  std::size_t capacity_;
  std::list<std::pair<Key, Value>> entries_;  // most recently used first
};

}  // namespace copgen
