// The contact sheet of a batch run: index.html in the output folder, every tuple of the
// run's shard with small pictures of its inputs and outputs, its state, a failed tuple's
// error, links to its files; split into pages (index.html, index-2.html, ...) linked to one
// another. Plain HTML and CSS: no script, no font or image from the network, printable.
// Pure text: the batch (batch.cpp) makes the pictures (previews.hpp) and writes the pages.
//
//   std::vector<std::string> names = copgen::contact_sheet_page_names("index", 250, 100);
//   std::string html = copgen::contact_sheet_page(title, entries, 0, 100, names);
#pragma once

#include <string>
#include <vector>

namespace copgen {

// One picture of a tuple: an input or an output.
struct SheetPicture {
  std::string label;  // e.g. "S2L1C (given)", "S2L2A"
  std::string image;  // the PNG, relative to the page's folder ("" when there is none)
  std::string link;   // the file it shows (a GeoTIFF), relative to the page's folder ("": no link)
  std::string note;   // why there is no picture ("" when there is one)
};

struct SheetEntry {
  std::string key;
  std::string state;  // "done" (every output there), "failed", "not done"
  std::string error;  // a failed tuple's message
  std::vector<SheetPicture> pictures;  // its inputs (modality order), then its outputs
};

// The page file names: "<base>.html", "<base>-2.html", ... one per page_size entries
// (at least one page). page_size must be at least 1.
std::vector<std::string> contact_sheet_page_names(const std::string& base, std::size_t entries, std::size_t page_size);

// Page `page` (0-based) of `entries`: a heading with `title` and the counts by state, the
// links to every page, then one row per entry of the page. Every text HTML-escaped, every
// href URL-escaped (html.hpp).
std::string contact_sheet_page(const std::string& title, const std::vector<SheetEntry>& entries, std::size_t page,
                               std::size_t page_size, const std::vector<std::string>& page_names);

}  // namespace copgen
