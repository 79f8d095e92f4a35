// HTML text: escaping for the pages copgen writes (the batch contact sheet, the eval
// report). Pure string functions: no files, no GDAL, no torch.
//
//   "<td>" + copgen::html_escape(error) + "</td>"
//   "<a href=\"" + copgen::html_escape(copgen::url_escape("S2L2A/a b.tif")) + "\">"
#pragma once

#include <string>
#include <string_view>

namespace copgen {

// `text` with & < > " ' replaced by &amp; &lt; &gt; &quot; &#39;, safe in element content
// and in quoted attribute values. Other bytes (UTF-8 included) pass through unchanged.
std::string html_escape(std::string_view text);

// A relative path as a URL path: every byte outside A-Z a-z 0-9 - . _ ~ and '/' becomes
// %XX (upper-case hex), so spaces, '#', '?', '%' and non-ASCII names survive as hrefs; '/'
// stays the separator. Escape the result with html_escape inside an attribute (a no-op
// for its characters, but the rule is kept in one place).
std::string url_escape(std::string_view path);

// The start of every page copgen writes, up to and including <body>: UTF-8, a viewport,
// a Content-Security-Policy that forbids scripts and plugins (the pages hold none and load
// nothing from the network), the escaped `title` and the inline stylesheet `css`.
std::string html_page_start(std::string_view title, std::string_view css);

}  // namespace copgen
