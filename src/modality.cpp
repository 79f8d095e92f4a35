#include "copgen/modality.hpp"

#include <algorithm>
#include <cctype>

#include "copgen/error.hpp"
#include "text.hpp"

namespace copgen {

using detail::lower;

namespace {

std::string trim(std::string_view s) {
  size_t b = 0, e = s.size();
  while (b < e && std::isspace(static_cast<unsigned char>(s[b]))) ++b;
  while (e > b && std::isspace(static_cast<unsigned char>(s[e - 1]))) --e;
  return std::string(s.substr(b, e - b));
}

}  // namespace

std::string modality_name(Modality m) {
  switch (m) {
    case Modality::DEM: return "DEM";
    case Modality::S1RTC: return "S1RTC";
    case Modality::S2L1C: return "S2L1C";
    case Modality::S2L2A: return "S2L2A";
  }
  return "?";
}

std::string modality_reference_name(Modality m) {
  switch (m) {
    case Modality::DEM: return "dem";
    case Modality::S1RTC: return "s1_rtc";
    case Modality::S2L1C: return "s2_l1c";
    case Modality::S2L2A: return "s2_l2a";
  }
  return "?";
}

Modality parse_modality(std::string_view text, std::string_view flag) {
  const std::string key = lower(trim(text));
  for (Modality m : kAllModalities) {
    if (key == lower(modality_name(m)) || key == modality_reference_name(m)) return m;
  }
  throw UsageError(std::string(flag) + ": unknown modality '" + std::string(text) +
                   "' (expected one of DEM, S1RTC, S2L1C, S2L2A; case-insensitive; or "
                   "dem, s1_rtc, s2_l1c, s2_l2a)");
}

std::vector<Modality> parse_modality_list(const std::vector<std::string>& items,
                                          std::string_view flag) {
  std::vector<Modality> out;
  for (const std::string& item : items) {
    size_t start = 0;
    while (start <= item.size()) {
      size_t comma = item.find(',', start);
      if (comma == std::string::npos) comma = item.size();
      const std::string part = trim(std::string_view(item).substr(start, comma - start));
      if (part.empty()) {
        throw UsageError(std::string(flag) + ": empty modality name in '" + item + "'");
      }
      const Modality m = parse_modality(part, flag);
      if (std::find(out.begin(), out.end(), m) != out.end()) {
        throw UsageError(std::string(flag) + ": modality " + modality_name(m) +
                         " is given more than once");
      }
      out.push_back(m);
      start = comma + 1;
    }
  }
  return out;
}

std::pair<Modality, std::string> parse_input_spec(std::string_view spec, std::string_view flag) {
  const auto eq = spec.find('=');
  if (eq == std::string_view::npos || eq == 0 || eq + 1 == spec.size()) {
    throw UsageError(std::string(flag) + " '" + std::string(spec) + "': expected MODALITY=PATH");
  }
  return {parse_modality(spec.substr(0, eq), flag), std::string(spec.substr(eq + 1))};
}

std::string join_modalities(const std::vector<Modality>& ms, std::string_view sep) {
  std::string out;
  for (size_t i = 0; i < ms.size(); ++i) {
    if (i) out += sep;
    out += modality_name(ms[i]);
  }
  return out;
}

std::vector<Modality> sorted_modalities(std::vector<Modality> ms) {
  std::sort(ms.begin(), ms.end(),
            [](Modality a, Modality b) { return modality_index(a) < modality_index(b); });
  return ms;
}

std::vector<Modality> generated_modalities(const std::vector<Modality>& given, const std::vector<Modality>& to) {
  if (!to.empty()) return sorted_modalities(to);
  std::vector<Modality> out;
  for (Modality m : kAllModalities) {
    if (std::find(given.begin(), given.end(), m) == given.end()) out.push_back(m);
  }
  return out;
}

}  // namespace copgen
