// Small text helpers the library's modules share: case-insensitive name tests and the
// way shapes and numbers appear in messages.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include <ATen/core/Tensor.h>

namespace copgen::detail {

// ASCII lower case.
std::string lower(std::string_view s);
// Case-insensitive prefix and suffix tests ("B04.TIF" ends with ".tif").
bool starts_with_ci(std::string_view s, std::string_view prefix);
bool ends_with_ci(std::string_view s, std::string_view suffix);
// The items of `parts` with `separator` between them ("a, b, c").
std::string join(const std::vector<std::string>& parts, std::string_view separator);
// A tensor's shape as "[2, 3, 256, 256]".
std::string shape_str(const at::Tensor& t);
// A number as a person writes it ("10", "0.5", "1e+30", "nan").
std::string number_str(double v);
// A number with `decimals` digits after the point ("12.30"; "+1.20" with sign).
std::string fixed(double x, int decimals, bool sign = false);

}  // namespace copgen::detail
