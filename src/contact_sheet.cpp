#include "copgen/contact_sheet.hpp"

#include <algorithm>
#include <map>

#include "copgen/html.hpp"

namespace copgen {

std::vector<std::string> contact_sheet_page_names(const std::string& base, std::size_t entries, std::size_t page_size) {
  const std::size_t pages = std::max<std::size_t>(1, (entries + page_size - 1) / page_size);
  std::vector<std::string> names;
  for (std::size_t p = 0; p < pages; ++p) names.push_back(base + (p == 0 ? "" : "-" + std::to_string(p + 1)) + ".html");
  return names;
}

namespace {

std::string href(const std::string& relative) { return html_escape(url_escape(relative)); }

std::string page_links(const std::vector<std::string>& names, std::size_t page) {
  if (names.size() < 2) return "";
  std::string out = "<nav class=\"pages\">Pages:";
  for (std::size_t p = 0; p < names.size(); ++p) {
    out += " ";
    out += p == page ? "<strong>" + std::to_string(p + 1) + "</strong>"
                     : "<a href=\"" + href(names[p]) + "\">" + std::to_string(p + 1) + "</a>";
  }
  return out + "</nav>\n";
}

const char* kStyle =
    "body{font-family:sans-serif;margin:1em;color:#111}"
    "table{border-collapse:collapse}td,th{border:1px solid #bbb;padding:4px;vertical-align:top;text-align:left}"
    "figure{display:inline-block;margin:0 6px 0 0;text-align:center}figcaption{font-size:80%}"
    "img{display:block;width:128px;height:auto;image-rendering:pixelated;background:#eee}"
    ".nopic{display:block;width:128px;height:64px;overflow:hidden;text-overflow:ellipsis;font-size:75%;background:#eee;overflow-wrap:anywhere}"
    ".failed{background:#fde8e8}.error{color:#a00;white-space:pre-wrap;font-family:monospace;font-size:85%}"
    "nav{margin:0.5em 0}"
    "@media print{nav{display:none}tr{break-inside:avoid}img{width:96px}}";

}  // namespace

std::string contact_sheet_page(const std::string& title, const std::vector<SheetEntry>& entries, std::size_t page,
                               std::size_t page_size, const std::vector<std::string>& page_names) {
  std::map<std::string, int> counts;
  for (const SheetEntry& e : entries) ++counts[e.state];
  std::string summary;
  for (const auto& [state, n] : counts) summary += (summary.empty() ? "" : ", ") + std::to_string(n) + " " + state;
  const std::size_t first = page * page_size, last = std::min(entries.size(), first + page_size);
  std::string out =
      html_page_start(title, kStyle) + "<h1>" + html_escape(title) +
      "</h1>\n<p class=\"summary\">" + std::to_string(entries.size()) + " tuple(s)" +
      (summary.empty() ? "" : ": " + html_escape(summary)) + (page_names.size() > 1
                                                                  ? "; page " + std::to_string(page + 1) + " of " +
                                                                        std::to_string(page_names.size()) + " (tuples " +
                                                                        std::to_string(first + 1) + "-" +
                                                                        std::to_string(last) + ")"
                                                                  : "") +
      "</p>\n" + page_links(page_names, page) +
      "<table>\n<thead><tr><th>tuple</th><th>state</th><th>pictures</th></tr></thead>\n<tbody>\n";
  for (std::size_t i = first; i < last; ++i) {
    const SheetEntry& e = entries[i];
    out += std::string("<tr class=\"entry") + (e.state == "failed" ? " failed" : "") + "\"><td class=\"key\">" +
           html_escape(e.key) + "</td><td class=\"state\">" + html_escape(e.state);
    if (!e.error.empty()) out += "<div class=\"error\">" + html_escape(e.error) + "</div>";
    out += "</td><td>";
    for (const SheetPicture& p : e.pictures) {
      out += "<figure>";
      if (!p.link.empty()) out += "<a href=\"" + href(p.link) + "\">";
      if (!p.image.empty()) {
        out += "<img src=\"" + href(p.image) + "\" alt=\"" + html_escape(p.label) + "\">";
      } else {
        out += "<span class=\"nopic\">" + html_escape(p.note.empty() ? "no picture" : p.note) + "</span>";
      }
      if (!p.link.empty()) out += "</a>";
      out += "<figcaption>" + html_escape(p.label) + "</figcaption></figure>";
    }
    out += "</td></tr>\n";
  }
  out += "</tbody>\n</table>\n" + page_links(page_names, page) + "</body>\n</html>\n";
  return out;
}

}  // namespace copgen
