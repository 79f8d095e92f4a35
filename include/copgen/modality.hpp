// The four COP-GEN-Beta modalities, in the fixed order baked into the checkpoint
// (patch embeddings, positional embedding and output heads are indexed by it).
//
//   auto m = copgen::parse_modality("s2_l1c");   // Modality::S2L1C
//   copgen::modality_name(m);                     // "S2L1C"
//   auto set = copgen::parse_modality_list({"DEM,S1RTC"}, "--from");  // {DEM, S1RTC}
#pragma once

#include <array>
#include <ostream>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace copgen {

enum class Modality : int { DEM = 0, S1RTC = 1, S2L1C = 2, S2L2A = 3 };

inline constexpr int kNumModalities = 4;
inline constexpr std::array<Modality, kNumModalities> kAllModalities = {
    Modality::DEM, Modality::S1RTC, Modality::S2L1C, Modality::S2L2A};

inline int modality_index(Modality m) { return static_cast<int>(m); }

// Canonical name: "DEM", "S1RTC", "S2L1C", "S2L2A".
std::string modality_name(Modality m);
// The reference code's name: "dem", "s1_rtc", "s2_l1c", "s2_l2a".
std::string modality_reference_name(Modality m);
// Case-insensitive; accepts canonical and reference names. Throws UsageError naming
// `flag` (e.g. "--from") and listing the valid names when `text` is none of them.
Modality parse_modality(std::string_view text, std::string_view flag = "modality");
// Comma-separated list (items may also be separate strings). Throws UsageError on an
// unknown or repeated modality. Order is kept as given.
std::vector<Modality> parse_modality_list(const std::vector<std::string>& items,
                                          std::string_view flag);
// One "MODALITY=PATH" item of --input: the modality (any name parse_modality accepts)
// and the path after the first '='. Throws UsageError naming `flag` and the item when
// there is no '=', the modality is unknown, or either side is empty.
std::pair<Modality, std::string> parse_input_spec(std::string_view spec,
                                                  std::string_view flag = "--input");
// Joined canonical names, e.g. "DEM,S2L2A".
std::string join_modalities(const std::vector<Modality>& ms, std::string_view sep = ",");
inline std::ostream& operator<<(std::ostream& os, Modality m) { return os << modality_name(m); }

// Sorted into modality order.
std::vector<Modality> sorted_modalities(std::vector<Modality> ms);

// The modalities a run generates: `to` (sorted) when it names any, else every modality
// not in `given`, in modality order. translate, generate, batch and eval ask this.
std::vector<Modality> generated_modalities(const std::vector<Modality>& given, const std::vector<Modality>& to);

}  // namespace copgen
