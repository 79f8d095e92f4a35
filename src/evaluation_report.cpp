// report.html: Table 1 beside the paper's values, the example grids and the provenance, as
// one static page that reads offline and prints (no script, no font or file from the network).
#include <sstream>

#include "copgen/evaluation.hpp"
#include "copgen/html.hpp"

namespace copgen {

using nlohmann::json;

namespace {

// Shared by screen and print; print keeps each row's grid on one page where it fits.
constexpr const char* kStyle = R"(
body { font-family: "DejaVu Sans", "Helvetica Neue", Arial, sans-serif; font-size: 14px; color: #1a1a1a;
       margin: 24px; max-width: 1500px; }
h1 { font-size: 22px; margin: 0 0 4px; }
h2 { font-size: 18px; margin: 28px 0 8px; border-bottom: 1px solid #ccc; padding-bottom: 2px; }
h3 { font-size: 15px; margin: 20px 0 6px; }
p.note { color: #444; max-width: 60em; }
code { font-family: "DejaVu Sans Mono", monospace; font-size: 12px; word-break: break-all; }
table { border-collapse: collapse; }
#table1 { font-size: 12px; }
#table1 th, #table1 td { padding: 3px 6px; border-bottom: 1px solid #e2e2e2; }
#table1 thead th { background: #f0f0f0; text-align: center; }
#table1 tbody th { text-align: left; font-weight: normal; white-space: nowrap; }
#table1 td.num, #table1 td.na { text-align: right; font-variant-numeric: tabular-nums; }
#table1 td.na { color: #999; }
#table1 .metric { border-left: 1px solid #bbb; }
#table1 tr.measured { font-weight: bold; }
#table1 tr.measured th, #table1 tr.measured td { border-top: 2px solid #999; }
#table1 tr.paper { color: #333; }
#table1 tr.difference { color: #555; font-style: italic; }
table.examples th, table.examples td { padding: 2px 4px; text-align: center; vertical-align: middle; }
table.examples thead th { font-size: 12px; font-weight: normal; color: #333; }
table.examples thead th.given { background: #e8f0fe; }
table.examples thead th.generated { background: #fdecea; }
table.examples thead th.real { background: #e9f5ea; }
table.examples tbody th { font-size: 12px; font-weight: normal; text-align: right; max-width: 10em;
                          word-break: break-all; }
img.tile { width: 128px; height: 128px; display: block; image-rendering: auto; border: 1px solid #ccc; }
dl { display: grid; grid-template-columns: max-content auto; gap: 3px 16px; }
dt { color: #555; }
dd { margin: 0; }
footer { margin-top: 32px; color: #777; font-size: 12px; }
@media print {
  @page { size: A4 landscape; margin: 12mm; }
  body { margin: 0; font-size: 10pt; max-width: none; }
  h2 { break-after: avoid; }
  section.row { break-inside: avoid; }
  #table1 { font-size: 8pt; }
  img.tile { width: 20mm; height: 20mm; }
  a { color: inherit; text-decoration: none; }
}
)";

std::string esc(const std::string& s) { return html_escape(s); }

// An image cell: the picture, linked to itself at full size.
std::string image_cell(const std::string& path, const std::string& alt) {
  const std::string href = esc(url_escape(path));
  return "<td><a href=\"" + href + "\"><img class=\"tile\" src=\"" + href + "\" alt=\"" + esc(alt) +
         "\" width=\"128\" height=\"128\"></a></td>";
}

std::string examples_section(const EvalResult& r) {
  std::ostringstream s;
  s << "<section id=\"examples\">\n<h2>Examples</h2>\n";
  if (r.examples.empty()) {
    s << "<p class=\"note\">No examples (--report-examples 0).</p>\n</section>\n";
    return s.str();
  }
  s << "<p class=\"note\">The first " << r.examples.size()
    << " tuple(s) of the test set by key, sample 0 of each. <em>Given</em>: the condition; <em>generated</em>: "
       "copgen's sample; <em>real</em>: the test set's image of the generated modality as it was scored (the "
       "centre crop, or the autoencoder's decoding of a .npy). Each picture links to its file.</p>\n";
  for (size_t i = 0; i < r.rows.size(); ++i) {
    const EvalRow& row = r.rows[i];
    const std::vector<Modality> generated = row.condition.generated();
    s << "<section class=\"row\" id=\"row-" << i << "\">\n<h3>Row " << esc(row.condition.label()) << ": given "
      << esc(row.condition.given.empty() ? "nothing" : join_modalities(row.condition.given, ", ")) << "; generated "
      << esc(join_modalities(generated, ", ")) << "</h3>\n";
    s << "<table class=\"examples\">\n<thead><tr><th>tuple</th>";
    for (Modality m : row.condition.given) s << "<th class=\"given\">" << esc(modality_name(m)) << "<br>given</th>";
    for (Modality m : generated) {
      s << "<th class=\"generated\">" << esc(modality_name(m)) << "<br>generated</th><th class=\"real\">"
        << esc(modality_name(m)) << "<br>real</th>";
    }
    s << "</tr></thead>\n<tbody>\n";
    for (size_t e = 0; e < r.examples.size() && e < row.examples.size(); ++e) {
      const EvalExample& ex = r.examples[e];
      s << "<tr><th scope=\"row\">" << esc(ex.key) << "</th>";
      for (Modality m : row.condition.given) {
        s << image_cell(ex.real.at(m), modality_name(m) + " given, tuple " + ex.key);
      }
      for (Modality m : generated) {
        s << image_cell(row.examples[e].at(m), modality_name(m) + " generated, tuple " + ex.key);
        s << image_cell(ex.real.at(m), modality_name(m) + " real, tuple " + ex.key);
      }
      s << "</tr>\n";
    }
    s << "</tbody>\n</table>\n</section>\n";
  }
  s << "</section>\n";
  return s.str();
}

// The provenance field at a JSON pointer, as text ("?" where absent).
std::string provenance_text(const json& p, const char* pointer) {
  const json::json_pointer ptr(pointer);
  if (!p.is_object() || !p.contains(ptr)) return "?";
  const json& v = p.at(ptr);
  return v.is_string() ? v.get<std::string>() : v.dump();
}

std::string provenance_section(const EvalResult& r) {
  const auto f = [&r](const char* pointer) { return provenance_text(r.provenance, pointer); };
  std::ostringstream s;
  const auto item = [&s](const std::string& name, const std::string& value, bool code = false) {
    s << "<dt>" << esc(name) << "</dt><dd>" << (code ? "<code>" : "") << esc(value) << (code ? "</code>" : "")
      << "</dd>\n";
  };
  s << "<section id=\"provenance\">\n<h2>Provenance</h2>\n<dl>\n";
  item("models", f("/models/dir"), true);
  item("models manifest SHA-256", f("/models/sha256"), true);
  item("backbone", f("/models/backbone"));
  item("autoencoder", f("/models/autoencoder"));
  item("extractors", f("/extractors/dir"), true);
  item("extractors manifest SHA-256", f("/extractors/sha256"), true);
  item("seed", f("/seed"));
  item("sampler", f("/sampler/steps") + " steps of " + f("/sampler/solver") + " (" + f("/sampler/time_grid") +
                      "), guidance scale " + f("/sampler/guidance_scale") + ", conditioning latent " +
                      f("/sampler/cond_latent"));
  item("precision", r.precision.empty() ? "?" : r.precision);
  item("device", f("/device"));
  item("batch size", f("/batch_size"));
  item("test set", f("/test_set/root"), true);
  item("test set layout", f("/test_set/layout"));
  item("tuples", f("/test_set/tuples") + " (" + f("/test_set/incomplete_skipped") + " incomplete skipped; --limit " +
                     f("/test_set/limit") + ")");
  item("samples per tuple", f("/samples_per_tuple"));
  item("precision/recall k", f("/k"));
  item("crop", f("/crop"));
  item("copgen", f("/copgen_version"));
  s << "</dl>\n</section>\n";
  return s.str();
}

}  // namespace

std::string eval_report_html(const EvalResult& r) {
  const auto text = [&r](const char* pointer) { return provenance_text(r.provenance, pointer); };
  std::ostringstream s;
  s << html_page_start("copgen eval: COP-GEN-Beta Table 1", kStyle);
  s << "<header>\n<h1>COP-GEN-Beta Table 1, measured by copgen</h1>\n<p class=\"note\">"
    << esc(text("/test_set/tuples")) << " tuple(s) of <code>" << esc(text("/test_set/root")) << "</code>, "
    << esc(text("/samples_per_tuple")) << " sample(s) per tuple; " << esc(text("/sampler/steps")) << " steps of "
    << esc(text("/sampler/solver")) << ", seed " << esc(text("/seed")) << ".</p>\n</header>\n";
  s << "<section id=\"table\">\n<h2>Table 1</h2>\n<p class=\"note\">F, P and R in percent (precision and recall with "
    << "k = " << esc(text("/k")) << "), FID on Inception pool3 features: higher F, P and R and lower FID are better. "
    << "NA: the modality was given, not generated. Each row copgen measured is followed by the paper's published "
    << "row (COP-GEN-Beta, Table 1) and the difference copgen &minus; paper; rows the paper does not have stand "
    << "alone.</p>\n";
  s << table1_html(r, true) << "</section>\n";
  s << examples_section(r);
  s << provenance_section(r);
  s << "<footer>Written by copgen " << esc(text("/copgen_version"))
    << " (copgen eval). The same table: table1.md, table1.csv, table1.json.</footer>\n</body>\n</html>\n";
  return s.str();
}

}  // namespace copgen
