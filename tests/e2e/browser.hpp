// Browser tests: a page copgen wrote (eval's report.html, batch's index.html, bench's SVG
// chart) opened in headless Chromium by tests/browser/page_check.py, which reports every
// image's loading state and natural size, the counts of CSS selectors, the requests the
// page made, and saves a screenshot of the whole page.
//
//   const copgen::test::PageCheck p = copgen::test::open_in_browser(out + "/report.html", "eval_report",
//                                                                   {{"rows", "#table1 tbody tr"}});
//   if (p.skipped) return;                     // no Chromium, not in CI (the marker was printed)
//   CHECK(p.page["images_loaded"] == p.page["images_total"]);
//   CHECK(p.page["counts"]["rows"] == 16);
//
// Screenshots go to $COPGEN_TEST_OUTPUT/browser/<name>.png, else to test-output/browser/
// beside the copgen binary (the build folder), and are kept after the test.
#pragma once

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <string>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "catch_torch.hpp"
#include "support.hpp"

namespace copgen::test {

inline std::string browser_output_dir() {
  const char* env = std::getenv("COPGEN_TEST_OUTPUT");
  const std::filesystem::path root = env && *env ? std::filesystem::path(env)
                                                 : std::filesystem::path(COPGEN_BIN).parent_path() / "test-output";
  std::filesystem::create_directories(root / "browser");
  return (root / "browser").string();
}

struct PageCheck {
  bool skipped = false;  // no Chromium here, and not in CI
  nlohmann::json page;   // page_check.py's report (images, counts, requests, external, screenshot, ...)
};

// Opens `page` (a local file) in Chromium, counts each (name, CSS selector) of `counts`
// and saves the screenshot `<name>.png`. Fails the test (REQUIRE) when the page cannot be
// opened; when Chromium is absent, prints the COPGEN_BROWSER_SKIP marker (ctest reports a
// skip) and returns skipped, unless $CI is "true": CI installs Chromium
// (scripts/dev/install_deps.sh), so there its absence is a failure.
inline PageCheck open_in_browser(const std::string& page, const std::string& name,
                                 const std::vector<std::pair<std::string, std::string>>& counts = {}) {
  TempDir tmp;
  const std::string shot = browser_output_dir() + "/" + name + ".png";
  std::string cmd = quote(COPGEN_PYTHON) + " " + quote(std::string(COPGEN_SOURCE_DIR) + "/tests/browser/page_check.py") +
                    " --screenshot " + quote(shot) + " --json " + quote(tmp.file("page.json"));
  for (const auto& [key, selector] : counts) cmd += " --count " + quote(key + "=" + selector);
  const CommandResult r = run_command(cmd + " " + quote(page));
  PageCheck out;
  if (r.exit_code == 77) {
    const char* ci = std::getenv("CI");
    INFO(r.output);
    REQUIRE_FALSE((ci != nullptr && std::string(ci) == "true"));  // CI must have Chromium
    std::cout << "COPGEN_BROWSER_SKIP: no Chromium (scripts/dev/install_deps.sh installs it)" << std::endl;
    WARN("COPGEN_BROWSER_SKIP: no Chromium (scripts/dev/install_deps.sh installs it)");
    out.skipped = true;
    return out;
  }
  INFO(cmd << "\n" << r.output);
  REQUIRE(r.exit_code == 0);
  out.page = nlohmann::json::parse(read_file_bytes(tmp.file("page.json")));
  REQUIRE(file_exists(shot));
  return out;
}

// The common checks of a page copgen wrote: it fetched nothing from the network, holds no
// script, and every one of its `images` images loaded with a natural size.
inline void check_static_page(const nlohmann::json& page, std::size_t images) {
  INFO(page.dump(1));
  CHECK(page["external"].empty());
  CHECK(page["scripts"] == 0);
  CHECK(page["images_total"] == images);
  CHECK(page["images_loaded"] == images);
  CHECK(page["broken"].empty());
  for (const auto& img : page["images"]) {
    CHECK(img["complete"] == true);
    CHECK(img["naturalWidth"].get<int>() > 0);
    CHECK(img["naturalHeight"].get<int>() > 0);
  }
}

}  // namespace copgen::test
