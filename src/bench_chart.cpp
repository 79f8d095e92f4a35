// copgen bench --svg: the figures as a small hand-written SVG bar chart (valid XML, text
// labels, axes; no script, no font or file from the network).
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

#include "copgen/bench.hpp"
#include "copgen/html.hpp"

namespace copgen {

namespace {

std::string num(double v, const char* f = "%.3g") {
  char buf[64];
  std::snprintf(buf, sizeof buf, f, v);
  return buf;
}

// Coordinates with one decimal: stable text, small files.
std::string px(double v) { return num(v, "%.1f"); }

// The smallest of 1, 2, 2.5, 5 x 10^k at or above v (v > 0): the axis' top.
double nice_ceiling(double v) {
  if (!(v > 0)) return 1.0;
  const double e = std::pow(10.0, std::floor(std::log10(v)));
  for (double f : {1.0, 2.0, 2.5, 5.0, 10.0}) {
    if (f * e >= v * (1 - 1e-12)) return f * e;
  }
  return 10.0 * e;
}

struct Series {
  std::string name;   // "copgen", "reference"
  std::string fill;
  std::vector<double> values;  // per measured row; < 0: no bar (not measured)
};

constexpr double kLeft = 72, kRight = 16, kSlot = 76, kPanelHeight = 190, kPanelGap = 78, kTop = 58;

// One panel: a y axis from 0 to a nice top with 5 ticks, one group of bars per measured row.
void panel(std::ostringstream& s, double y0, const std::string& title, const std::string& metric,
           const std::string& unit, const std::vector<std::string>& labels, const std::vector<Series>& series,
           double width) {
  double top = 0;
  for (const Series& se : series) {
    for (double v : se.values) top = std::max(top, v);
  }
  top = nice_ceiling(top);
  const double x0 = kLeft, x1 = width - kRight, base = y0 + kPanelHeight;
  s << "<g class=\"panel\" data-metric=\"" << html_escape(metric) << "\">\n";
  s << "<text class=\"title\" x=\"" << px(x0) << "\" y=\"" << px(y0 - 10) << "\" font-weight=\"bold\">"
    << html_escape(title) << "</text>\n";
  for (int i = 0; i <= 5; ++i) {
    const double v = top * i / 5.0, y = base - kPanelHeight * i / 5.0;
    s << "<line x1=\"" << px(x0) << "\" y1=\"" << px(y) << "\" x2=\"" << px(x1) << "\" y2=\"" << px(y)
      << "\" stroke=\"" << (i == 0 ? "#333" : "#e0e0e0") << "\"/>\n";
    s << "<text x=\"" << px(x0 - 6) << "\" y=\"" << px(y + 4) << "\" text-anchor=\"end\">" << html_escape(num(v))
      << "</text>\n";
  }
  s << "<line x1=\"" << px(x0) << "\" y1=\"" << px(y0) << "\" x2=\"" << px(x0) << "\" y2=\"" << px(base)
    << "\" stroke=\"#333\"/>\n";
  s << "<text x=\"" << px(18) << "\" y=\"" << px(y0 + kPanelHeight / 2) << "\" text-anchor=\"middle\" transform=\"rotate(-90 "
    << px(18) << " " << px(y0 + kPanelHeight / 2) << ")\">" << html_escape(unit) << "</text>\n";
  const double bar = std::min(28.0, (kSlot - 16) / static_cast<double>(series.size()));
  for (size_t r = 0; r < labels.size(); ++r) {
    const double cx = x0 + kSlot * (static_cast<double>(r) + 0.5);
    const double first = cx - bar * static_cast<double>(series.size()) / 2;
    for (size_t k = 0; k < series.size(); ++k) {
      const double v = series[k].values[r];
      if (v < 0) continue;
      const double h = top > 0 ? kPanelHeight * v / top : 0, x = first + bar * static_cast<double>(k);
      const std::string text = labels[r] + ", " + series[k].name + ": " + num(v) + " " + unit;
      s << "<rect class=\"bar " << html_escape(series[k].name) << "\" data-row=\"" << r << "\" data-value=\""
        << html_escape(num(v, "%.6g")) << "\" x=\"" << px(x) << "\" y=\"" << px(base - h) << "\" width=\""
        << px(bar - 2) << "\" height=\"" << px(h) << "\" fill=\"" << series[k].fill << "\"><title>"
        << html_escape(text) << "</title></rect>\n";
      s << "<text class=\"value\" x=\"" << px(x + (bar - 2) / 2) << "\" y=\"" << px(base - h - 3)
        << "\" text-anchor=\"middle\" font-size=\"10\">" << html_escape(num(v)) << "</text>\n";
    }
    s << "<text class=\"label\" x=\"" << px(cx) << "\" y=\"" << px(base + 16) << "\" text-anchor=\"middle\">"
      << html_escape(labels[r]) << "</text>\n";
  }
  s << "</g>\n";
}

}  // namespace

std::string bench_svg(const BenchReport& r) {
  std::vector<const BenchRow*> measured;
  for (const BenchRow& row : r.rows) {
    if (row.skipped.empty()) measured.push_back(&row);
  }
  std::vector<std::string> devices;
  for (const BenchRow* row : measured) {
    if (std::find(devices.begin(), devices.end(), row->device) == devices.end()) devices.push_back(row->device);
  }
  std::vector<std::string> labels;
  Series calls{"copgen", "#1f77b4", {}}, ref_calls{"reference", "#ff7f0e", {}};
  Series mfu{"copgen", "#1f77b4", {}}, ref_mfu{"reference", "#ff7f0e", {}};
  bool any_reference = false, any_mfu = false;
  for (const BenchRow* row : measured) {
    labels.push_back((devices.size() > 1 ? row->device + " " : "") + row->precision + " B" +
                     std::to_string(row->batch_size));
    calls.values.push_back(row->calls_per_s);
    mfu.values.push_back(row->mfu >= 0 ? 100.0 * row->mfu : -1.0);
    any_mfu = any_mfu || row->mfu >= 0;
    const bool ref = row->reference && row->reference->seconds_per_call > 0;
    any_reference = any_reference || ref;
    ref_calls.values.push_back(ref ? 1.0 / row->reference->seconds_per_call : -1.0);
    // the reference's utilisation: the same FLOPs per call in its time per call
    ref_mfu.values.push_back(ref && row->mfu >= 0 ? 100.0 * row->mfu * row->seconds_per_call /
                                                        row->reference->seconds_per_call
                                                  : -1.0);
  }
  std::vector<Series> call_series = {calls}, mfu_series = {mfu};
  if (any_reference) {
    call_series.push_back(ref_calls);
    mfu_series.push_back(ref_mfu);
  }
  const int panels = any_mfu ? 2 : 1;
  const double width = std::max(640.0, kLeft + kRight + kSlot * static_cast<double>(std::max<size_t>(1, labels.size())));
  const double height = kTop + panels * (kPanelHeight + kPanelGap) + 10;
  std::ostringstream s;
  s << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n";
  s << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << px(width) << "\" height=\"" << px(height)
    << "\" viewBox=\"0 0 " << px(width) << " " << px(height)
    << "\" font-family=\"DejaVu Sans, Arial, sans-serif\" font-size=\"12\" fill=\"#1a1a1a\">\n";
  s << "<title>copgen bench: backbone calls per second" << (any_mfu ? " and MFU" : "") << "</title>\n";
  s << "<rect x=\"0\" y=\"0\" width=\"" << px(width) << "\" height=\"" << px(height) << "\" fill=\"#ffffff\"/>\n";
  std::string devices_text;
  for (const std::string& d : devices) devices_text += (devices_text.empty() ? "" : ", ") + d;
  s << "<text x=\"" << px(kLeft) << "\" y=\"20\" font-size=\"14\" font-weight=\"bold\">copgen bench"
    << html_escape(devices_text.empty() ? "" : " on " + devices_text) << "</text>\n";
  s << "<text x=\"" << px(kLeft) << "\" y=\"36\" font-size=\"11\" fill=\"#555\">"
    << html_escape("copgen " + r.copgen_version + ", LibTorch " + r.torch_version + ", models " + r.models_source +
                   "; B: samples per call")
    << "</text>\n";
  if (any_reference) {  // the legend
    const double lx = width - kRight - 190;
    s << "<g class=\"legend\"><rect x=\"" << px(lx) << "\" y=\"10\" width=\"12\" height=\"12\" fill=\"" << calls.fill
      << "\"/><text x=\"" << px(lx + 16) << "\" y=\"20\">copgen</text><rect x=\"" << px(lx + 80)
      << "\" y=\"10\" width=\"12\" height=\"12\" fill=\"" << ref_calls.fill << "\"/><text x=\"" << px(lx + 96)
      << "\" y=\"20\">reference</text></g>\n";
  }
  if (labels.empty()) {
    s << "<text x=\"" << px(kLeft) << "\" y=\"" << px(kTop + 20) << "\">no configuration was measured</text>\n";
  }
  panel(s, kTop + 14, "Backbone calls per second", "calls_per_s", "calls/s", labels, call_series, width);
  if (any_mfu) {
    panel(s, kTop + 14 + kPanelHeight + kPanelGap, "Model FLOP utilisation (peak " + num(r.peak_tflops) + " TFLOP/s)",
          "mfu", "MFU %", labels, mfu_series, width);
  }
  s << "</svg>\n";
  return s.str();
}

}  // namespace copgen
