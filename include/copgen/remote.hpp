// Reading over HTTP(S) with libcurl, bounded and interruptible: every byte copgen reads from a
// server outside GDAL's raster reads comes through here. A body larger than copgen's limit is
// cut off as it arrives (memory stays bounded), a stop request (SIGINT/SIGTERM) ends a transfer
// within 100 ms, a server that sends nothing for a while is given up on, redirects go to
// http and https only, and every HTTP status other than 2xx is reported as itself.
//
//   std::string json = copgen::fetch_text("https://example.com/item.json", "STAC item");
//   if (copgen::is_http_url(href)) copgen::probe_remote_raster(href, "S2L2A input");
//
// GDAL's settings for /vsicurl/ apply, read from the environment: GDAL_HTTP_CONNECTTIMEOUT
// (default 30 s), GDAL_HTTP_LOW_SPEED_TIME or else GDAL_HTTP_TIMEOUT (the seconds without a
// byte after which a transfer is given up on; default 60), GDAL_HTTP_MAX_RETRY (default 0) and
// GDAL_HTTP_RETRY_DELAY (default 1 s) for 429/500/502/503/504 and failed connections,
// GDAL_HTTP_USERAGENT, GDAL_HTTP_HEADERS ("Name: value" lines, or a comma-separated list),
// GDAL_HTTP_PROXY, GDAL_HTTP_PROXYUSERPWD, GDAL_HTTP_BEARER, GDAL_HTTP_USERPWD,
// GDAL_HTTP_COOKIE, GDAL_HTTP_NETRC (default YES: ~/.netrc) and GDAL_HTTP_NETRC_FILE,
// GDAL_HTTP_UNSAFESSL=YES, CPL_CURL_VERBOSE=YES. Only the environment is read (not GDAL config
// options set with --config or CPLSetConfigOption). No GDAL in this module.
#pragma once

#include <cstdint>
#include <string>

namespace copgen {

// True for an http:// or https:// URL (the scheme in any case).
bool is_http_url(const std::string& s);

// The most bytes fetch_text (and raster_io's read_text) accept for one document: 512 MiB, or
// COPGEN_MAX_JSON_MB MiB. UsageError naming the variable when it is not a positive whole number.
std::uint64_t remote_text_limit();

// "more than 512 MiB (copgen's limit for a STAC document; set COPGEN_MAX_JSON_MB to raise it)":
// what messages about a document over remote_text_limit() say after their subject.
std::string remote_text_limit_exceeded();

// The body of a GET of `url` (http or https). Throws InputError "<what> '<url>': ..." when the
// server cannot be reached, answers anything but 2xx (the status and its reason; a redirect not
// followed with its Location), sends more than remote_text_limit() bytes, or sends nothing for
// the stall limit; Interrupted when a stop is requested; UsageError for a malformed setting.
std::string fetch_text(const std::string& url, const std::string& what);

// What a server says about a raster it serves.
struct RemoteProbe {
  std::uint64_t size = 0;  // bytes
  bool ranges = false;     // true: the server answers byte ranges (206)
};

// The largest raster read from a server that ignores byte ranges (GDAL then reads it whole).
inline constexpr std::uint64_t kMaxUnrangedRasterBytes = std::uint64_t{2} << 30;

// Asks the server for the first 64 KiB of `url` (at most that is read, whatever it sends) before
// GDAL opens it. Throws InputError naming `what` and `url` as fetch_text does, and when the size
// of the file is not known (no Content-Length, no byte ranges), it is empty, it is HTML or JSON
// rather than a raster, or the server ignores byte ranges and the file is over
// kMaxUnrangedRasterBytes. Each URL is probed once per process (successful answers are cached).
RemoteProbe probe_remote_raster(const std::string& url, const std::string& what);

// ---- Planetary Computer: SAS tokens for its Azure blob URLs ---------------------------

// The token endpoint: $COPGEN_PC_TOKEN_URL, else Planetary Computer's
// (https://planetarycomputer.microsoft.com/api/sas/v1/token); a token for collection C is
// asked at "<endpoint>/C".
std::string planetary_computer_token_url();
// True for an https URL of an Azure blob host (*.blob.core.windows.net) that carries no
// query yet: what a Planetary Computer item's hrefs are, and what needs a token to read.
bool needs_blob_token(const std::string& url);
// `url` with the SAS token of `collection` appended ("?<token>"). A token is fetched once
// per collection (fetch_text: bounded, interruptible) and reused until a minute before its
// "msft:expiry". Throws InputError naming `what`, the endpoint and COPGEN_PC_TOKEN_URL when
// the endpoint fails or answers no token, or when `collection` is empty.
std::string sign_blob_url(const std::string& url, const std::string& collection, const std::string& what);

}  // namespace copgen
