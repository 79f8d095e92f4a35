// Table 1 as Markdown, CSV and JSON, beside the paper's values.
#include "copgen/evaluation.hpp"

#include <sstream>

#include "copgen/html.hpp"
#include "text.hpp"

namespace copgen {

using nlohmann::json;
using detail::fixed;

// ---- tables -------------------------------------------------------------------------------

namespace {

enum class Metric { F, P, R, Fid };
constexpr Metric kMetrics[] = {Metric::F, Metric::P, Metric::R, Metric::Fid};

std::string metric_column(Metric k) {
  switch (k) {
    case Metric::F: return "F";
    case Metric::P: return "P";
    case Metric::R: return "R";
    case Metric::Fid: return "FID";
  }
  return "?";
}

// The row's values in the table's units (percent for F/P/R).
TableValues measured_values(const EvalRow& row) {
  TableValues v;
  for (const auto& [m, s] : row.scores) {
    v.f[m] = 100.0 * s.f_score;
    v.precision[m] = 100.0 * s.precision;
    v.recall[m] = 100.0 * s.recall;
    v.fid[m] = s.fid;
  }
  return v;
}

std::map<Modality, double>& values_of(TableValues& v, Metric k) {
  switch (k) {
    case Metric::F: return v.f;
    case Metric::P: return v.precision;
    case Metric::R: return v.recall;
    case Metric::Fid: break;
  }
  return v.fid;
}

const std::map<Modality, double>& values_of(const TableValues& v, Metric k) {
  return values_of(const_cast<TableValues&>(v), k);  // the same member, read only
}

// a - b where both have a value (the modalities both generated).
TableValues difference(const TableValues& a, const TableValues& b) {
  TableValues d;
  for (Metric k : kMetrics) {
    const auto& other = values_of(b, k);
    for (const auto& [m, x] : values_of(a, k)) {
      if (other.count(m)) values_of(d, k)[m] = x - other.at(m);
    }
  }
  return d;
}

struct TableLine {
  std::string model;
  std::string condition;
  TableValues values;
  bool signed_values = false;
  const char* kind = "measured";  // the HTML row's class: measured, paper, difference
};

std::vector<TableLine> table_lines(const EvalResult& r, bool compare_paper) {
  std::vector<TableLine> lines;
  for (const EvalRow& row : r.rows) {
    const TableValues mine = measured_values(row);
    lines.push_back({"COP-GEN-Beta (copgen)", row.condition.label(), mine, false});
    if (!compare_paper) continue;
    if (const auto paper = paper_values(row.condition)) {
      lines.push_back({"COP-GEN-Beta (paper)", row.condition.label(), *paper, false, "paper"});
      lines.push_back({"copgen - paper", row.condition.label(), difference(mine, *paper), true, "difference"});
    }
  }
  return lines;
}

std::vector<std::string> header() {
  std::vector<std::string> h = {"Model", "Condition"};
  for (Metric k : kMetrics) {
    for (Modality m : kAllModalities) h.push_back(metric_column(k) + " " + modality_name(m));
  }
  return h;
}

std::vector<std::string> cells(const TableLine& line, int decimals) {
  std::vector<std::string> c = {line.model, line.condition};
  for (Metric k : kMetrics) {
    for (Modality m : kAllModalities) {
      const auto& v = values_of(line.values, k);
      c.push_back(v.count(m) ? fixed(v.at(m), decimals, line.signed_values) : "NA");
    }
  }
  return c;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string q = "\"";
  for (char ch : s) q += ch == '"' ? std::string("\"\"") : std::string(1, ch);
  return q + "\"";
}

json values_json(const TableValues& v) {
  json out = json::object();
  for (Modality m : kAllModalities) {
    if (!v.fid.count(m)) continue;
    out[modality_name(m)] = {{"f_score", v.f.at(m)}, {"precision", v.precision.at(m)},
                             {"recall", v.recall.at(m)}, {"fid", v.fid.at(m)}};
  }
  return out;
}

}  // namespace

std::string table1_markdown(const EvalResult& r, bool compare_paper) {
  std::ostringstream s;
  const json& p = r.provenance;
  s << "# Table 1, measured by copgen\n\n";
  s << "F, P and R in percent (P/R with k = " << (p.is_object() ? p.value("k", 3) : 3) << "), FID on Inception pool3 features. "
    << "NA: the modality was given, not generated.\n\n";
  const std::vector<std::string> h = header();
  s << "|";
  for (const auto& c : h) s << " " << c << " |";
  s << "\n|";
  for (size_t i = 0; i < h.size(); ++i) s << "---|";
  s << "\n";
  for (const TableLine& line : table_lines(r, compare_paper)) {
    s << "|";
    for (const auto& c : cells(line, 2)) s << " " << c << " |";
    s << "\n";
  }
  if (!p.is_object() || !p.contains("models")) return s.str();
  s << "\n## Provenance\n\n";
  // the field at a JSON pointer, as text ("?" where absent)
  const auto f = [&p](const char* pointer) -> std::string {
    const json::json_pointer ptr(pointer);
    if (!p.contains(ptr)) return "?";
    const json& v = p.at(ptr);
    return v.is_string() ? v.get<std::string>() : v.dump();
  };
  s << "- models: `" << f("/models/dir") << "` (manifest sha256 `" << f("/models/sha256") << "`; backbone "
    << f("/models/backbone") << ", autoencoder " << f("/models/autoencoder") << ")\n";
  s << "- extractors: `" << f("/extractors/dir") << "` (manifest sha256 `" << f("/extractors/sha256")
    << "`; Inception " << f("/extractors/inception/source") << ", VGG16 " << f("/extractors/vgg16/source") << ")\n";
  s << "- seed " << f("/seed") << ", " << f("/sampler/steps") << " steps of " << f("/sampler/solver") << " ("
    << f("/sampler/time_grid") << "), guidance scale " << f("/sampler/guidance_scale") << ", conditioning latent "
    << f("/sampler/cond_latent") << ", batch size " << f("/batch_size") << ", device " << f("/device") << "\n";
  s << "- test set: `" << f("/test_set/root") << "` (" << f("/test_set/layout") << "), " << f("/test_set/tuples")
    << " tuples (" << f("/test_set/incomplete_skipped") << " incomplete skipped), " << f("/samples_per_tuple")
    << " sample(s) per tuple; " << f("/crop") << "\n";
  s << "- copgen " << f("/copgen_version") << "\n";
  return s.str();
}

std::string table1_csv(const EvalResult& r, bool compare_paper) {
  std::ostringstream s;
  const std::vector<std::string> h = header();
  for (size_t i = 0; i < h.size(); ++i) s << (i ? "," : "") << csv_field(h[i]);
  s << "\n";
  for (const TableLine& line : table_lines(r, compare_paper)) {
    const std::vector<std::string> c = cells(line, 4);
    for (size_t i = 0; i < c.size(); ++i) s << (i ? "," : "") << csv_field(c[i]);
    s << "\n";
  }
  return s.str();
}

json table1_json(const EvalResult& r, bool compare_paper) {
  json rows = json::array();
  for (const EvalRow& row : r.rows) {
    json j{{"condition", row.condition.label()}};
    json given = json::array(), generated = json::array();
    for (Modality m : row.condition.given) given.push_back(modality_name(m));
    for (Modality m : row.condition.generated()) generated.push_back(modality_name(m));
    j["given"] = given;
    j["generated"] = generated;
    json measured = values_json(measured_values(row));
    for (const auto& [m, s] : row.scores) {
      measured[modality_name(m)]["real_count"] = s.real_count;
      measured[modality_name(m)]["fake_count"] = s.fake_count;
    }
    j["measured"] = measured;
    if (compare_paper) {
      if (const auto paper = paper_values(row.condition)) {
        j["paper"] = values_json(*paper);
        j["difference"] = values_json(difference(measured_values(row), *paper));
      } else {
        j["paper"] = nullptr;
      }
    }
    rows.push_back(j);
  }
  return json{{"format", "copgen-eval"},
              {"format_version", 1},
              {"table", "COP-GEN-Beta Table 1"},
              {"units", {{"f_score", "percent"}, {"precision", "percent"}, {"recall", "percent"}, {"fid", "FID"}}},
              {"rows", rows},
              {"provenance", r.provenance},
              {"environment", r.environment.is_null() ? json::object() : r.environment},
              {"cache",
               {{"chunks_generated", r.cache.chunks_generated},
                {"chunks_reused", r.cache.chunks_reused},
                {"images_generated", r.cache.images_generated},
                {"features_extracted", r.cache.features_extracted},
                {"features_reused", r.cache.features_reused},
                {"network_calls", r.cache.network_calls}}},
              {"seconds", r.seconds}};
}

std::string table1_html(const EvalResult& r, bool compare_paper) {
  std::ostringstream s;
  s << "<table id=\"table1\">\n<thead>\n<tr><th rowspan=\"2\">Model</th><th rowspan=\"2\">Condition</th>";
  for (Metric k : kMetrics) {
    s << "<th colspan=\"" << kAllModalities.size() << "\" class=\"metric\">" << metric_column(k)
      << (k == Metric::Fid ? "" : " (%)") << "</th>";
  }
  s << "</tr>\n<tr>";
  for (size_t k = 0; k < std::size(kMetrics); ++k) {
    for (Modality m : kAllModalities) {
      s << "<th" << (m == kAllModalities.front() ? " class=\"metric\"" : "") << ">" << html_escape(modality_name(m))
        << "</th>";
    }
  }
  s << "</tr>\n</thead>\n<tbody>\n";
  for (const TableLine& line : table_lines(r, compare_paper)) {
    const std::vector<std::string> c = cells(line, 2);
    s << "<tr class=\"" << line.kind << "\"><th scope=\"row\">" << html_escape(c[0]) << "</th><td>"
      << html_escape(c[1]) << "</td>";
    for (size_t i = 2; i < c.size(); ++i) {
      const bool first_of_metric = (i - 2) % kAllModalities.size() == 0;
      std::string cls = c[i] == "NA" ? "na" : "num";
      if (first_of_metric) cls += " metric";
      s << "<td class=\"" << cls << "\">" << html_escape(c[i]) << "</td>";
    }
    s << "</tr>\n";
  }
  s << "</tbody>\n</table>\n";
  return s.str();
}

}  // namespace copgen
