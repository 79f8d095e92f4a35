// Fuzzes the command-line spec parsers: modality lists (--from, --to) and --input
// MODALITY=PATH items. Input: items separated by '\n'; the first byte picks the parser.
// Each must return a valid value or throw copgen::UsageError.
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "copgen/error.hpp"
#include "copgen/modality.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  const bool input_specs = (data[0] & 1) != 0;
  const std::string text(reinterpret_cast<const char*>(data + 1), size - 1);
  std::vector<std::string> items;
  std::size_t start = 0;
  for (;;) {
    const std::size_t nl = text.find('\n', start);
    items.push_back(text.substr(start, nl == std::string::npos ? std::string::npos : nl - start));
    if (nl == std::string::npos) break;
    start = nl + 1;
  }
  try {
    if (input_specs) {
      for (const std::string& item : items) {
        const auto [m, path] = copgen::parse_input_spec(item);
        if (path.empty() || copgen::modality_index(m) < 0 ||
            copgen::modality_index(m) >= copgen::kNumModalities)
          __builtin_trap();
      }
    } else {
      const std::vector<copgen::Modality> ms = copgen::parse_modality_list(items, "--from");
      // no repeats, and each one round-trips through its name
      if (copgen::sorted_modalities(ms).size() != ms.size() ||
          ms.size() > static_cast<std::size_t>(copgen::kNumModalities))
        __builtin_trap();
      for (copgen::Modality m : ms) {
        if (copgen::parse_modality(copgen::modality_name(m)) != m) __builtin_trap();
      }
    }
  } catch (const copgen::UsageError&) {
  }
  return 0;
}
