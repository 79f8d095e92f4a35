// Bounded, interruptible HTTP(S) reads on libcurl (see copgen/remote.hpp).
//
// One GET per try: an easy handle, driven by a multi handle that wakes at least every 100 ms
// to look at the stop flag and the stall clock (out_of_bounds). Callbacks keep it in bounds:
//  * the header callback records each response's status, Content-Length, Content-Range and
//    Location, and ends the transfer at the end of a final non-2xx response's headers (its
//    body is never read) or of a 2xx one whose Content-Length is over the limit;
//  * the write callback keeps the body up to its bound (the text limit, or the 64 KiB a probe
//    reads) and ends the transfer there;
//  * the progress callback ends it on a stop request, after the stall limit, or when far more
//    bytes arrive than are kept (bodies of redirects, which curl reads and drops);
//  * the pre-request callback starts the stall clock once connected (before that,
//    GDAL_HTTP_CONNECTTIMEOUT applies).
// Each ending sets a flag in the Transfer, which says afterwards why curl returned.
#include "copgen/remote.hpp"

#include <algorithm>
#include <cctype>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <ctime>
#include <exception>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include <curl/curl.h>
#include <nlohmann/json.hpp>
#include <spdlog/spdlog.h>

#include "copgen/cancel.hpp"
#include "copgen/error.hpp"
#include "copgen/version.hpp"

namespace copgen {
namespace {

using Clock = std::chrono::steady_clock;

constexpr std::uint64_t kMiB = std::uint64_t{1} << 20;
constexpr std::uint64_t kDefaultTextMiB = 512;
constexpr std::uint64_t kMaxTextMiB = std::uint64_t{1} << 20;  // 1 TiB
constexpr std::size_t kProbeBytes = 64 * 1024;
// Bytes a transfer may count beyond what is kept (bodies of redirects curl follows) before it
// is ended anyway.
constexpr curl_off_t kSlackBytes = 1 << 20;

// ---- settings from the environment ------------------------------------------------------

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string trim(const std::string& s) {
  const auto b = s.find_first_not_of(" \t\r\n");
  if (b == std::string::npos) return "";
  return s.substr(b, s.find_last_not_of(" \t\r\n") - b + 1);
}

// The variable's value, or "" when it is unset or blank.
std::string env(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr ? trim(v) : "";
}

bool env_yes(const char* name) {
  const std::string v = lower(env(name));
  return v == "yes" || v == "on" || v == "true" || v == "1";
}

// A number of seconds >= `min` from the variable, or `fallback` when it is unset.
double env_seconds(const char* name, double fallback, double min) {
  const std::string v = env(name);
  if (v.empty()) return fallback;
  char* end = nullptr;
  const double s = std::strtod(v.c_str(), &end);
  if (end == v.c_str() || *end != '\0' || !(s >= min) || s > 1e6) {
    throw UsageError(std::string(name) + "='" + v + "' is not a number of seconds" +
                     (min > 0 ? " greater than 0" : " (0 or more)"));
  }
  return s;
}

struct Settings {
  double connect_s = 30;
  double stall_s = 60;
  std::string stall_var = "GDAL_HTTP_LOW_SPEED_TIME";  // the variable that sets stall_s
  long max_retry = 0;
  bool retry_set = false;  // GDAL_HTTP_MAX_RETRY was given (then no advice to set it)
  double retry_delay_s = 1;
  std::string user_agent;
  std::vector<std::string> headers;  // "Name: value"
  std::string proxy;
  std::string proxy_userpwd;
  std::string bearer;   // GDAL_HTTP_BEARER
  std::string userpwd;  // GDAL_HTTP_USERPWD ("user:password", basic authentication)
  std::string cookie;   // GDAL_HTTP_COOKIE ("name=value; name2=value2")
  bool netrc = true;    // GDAL_HTTP_NETRC (GDAL's default: credentials from ~/.netrc where it has them)
  std::string netrc_file;
  bool unsafe_ssl = false;
  bool verbose = false;
};

// The pieces of `text` between separators `sep`; with `quotes`, a separator between double
// quotes does not count and the quotes go.
std::vector<std::string> split(const std::string& text, char sep, bool quotes) {
  std::vector<std::string> parts(1);
  bool quoted = false;
  for (char c : text) {
    if (quotes && c == '"') {
      quoted = !quoted;
    } else if (c == sep && !quoted) {
      parts.emplace_back();
    } else {
      parts.back() += c;
    }
  }
  return parts;
}

// GDAL_HTTP_HEADERS as GDAL reads it: lines ("\r\n" or "\n"), or else a comma-separated list
// of "Name: value" (one header when no ':' follows the first comma, e.g. "Accept: a, b").
std::vector<std::string> header_lines(const std::string& text) {
  std::vector<std::string> parts;
  if (text.find('\n') != std::string::npos) {
    parts = split(text, '\n', false);
  } else if (text.find(',') != std::string::npos && text.find(':', text.find(',')) != std::string::npos) {
    parts = split(text, ',', true);
  } else {
    parts = {text};
  }
  std::vector<std::string> lines;
  for (const std::string& part : parts) {
    const std::string line = trim(part);
    if (line.empty()) continue;
    if (line.find(':') == std::string::npos || line.front() == ':') {
      throw UsageError("GDAL_HTTP_HEADERS: '" + line + "' is not a header ('Name: value')");
    }
    lines.push_back(line);
  }
  return lines;
}

Settings read_settings() {
  Settings s;
  s.connect_s = env_seconds("GDAL_HTTP_CONNECTTIMEOUT", 30, 0.001);
  if (!env("GDAL_HTTP_LOW_SPEED_TIME").empty()) {
    s.stall_s = env_seconds("GDAL_HTTP_LOW_SPEED_TIME", 60, 0.001);
  } else if (!env("GDAL_HTTP_TIMEOUT").empty()) {
    s.stall_s = env_seconds("GDAL_HTTP_TIMEOUT", 60, 0.001);
    s.stall_var = "GDAL_HTTP_TIMEOUT";
  }
  const std::string retry = env("GDAL_HTTP_MAX_RETRY");
  if (!retry.empty()) {
    char* end = nullptr;
    s.max_retry = std::strtol(retry.c_str(), &end, 10);
    if (end == retry.c_str() || *end != '\0' || s.max_retry < 0 || s.max_retry > 1000) {
      throw UsageError("GDAL_HTTP_MAX_RETRY='" + retry + "' is not a number of retries (0 to 1000)");
    }
    s.retry_set = true;
  }
  s.retry_delay_s = env_seconds("GDAL_HTTP_RETRY_DELAY", 1, 0);
  s.user_agent = env("GDAL_HTTP_USERAGENT");
  if (s.user_agent.empty()) s.user_agent = std::string("copgen/") + kVersion;
  s.headers = header_lines(env("GDAL_HTTP_HEADERS"));
  s.proxy = env("GDAL_HTTP_PROXY");
  s.proxy_userpwd = env("GDAL_HTTP_PROXYUSERPWD");
  s.bearer = env("GDAL_HTTP_BEARER");
  s.userpwd = env("GDAL_HTTP_USERPWD");
  s.cookie = env("GDAL_HTTP_COOKIE");
  s.netrc = env("GDAL_HTTP_NETRC").empty() || env_yes("GDAL_HTTP_NETRC");
  s.netrc_file = env("GDAL_HTTP_NETRC_FILE");
  s.unsafe_ssl = env_yes("GDAL_HTTP_UNSAFESSL");
  s.verbose = env_yes("CPL_CURL_VERBOSE");
  return s;
}

std::string seconds_str(double s) {
  std::string t = std::to_string(s);
  t.erase(t.find_last_not_of('0') + 1);
  if (!t.empty() && t.back() == '.') t.pop_back();
  return t + " s";
}

// ---- one transfer -----------------------------------------------------------------------

void global_init() {
  static std::once_flag once;
  std::call_once(once, [] {
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK) {
      throw RuntimeError("cannot initialise libcurl (curl_global_init failed)");
    }
  });
}

enum class Mode { Text, Probe };

// A body received in blocks (64 KiB, doubling up to 64 MiB), so that growing it never copies
// what was received: memory stays within the bytes kept plus one block. A body of a known
// length goes into one block of that size. take() frees each block once copied (the large
// ones go back to the system at once), so that assembling adds about one block at a time.
class Body {
 public:
  std::size_t size() const { return size_; }
  void expect(std::size_t length) {
    if (blocks_.empty()) new_block(length);
  }
  void append(const char* data, std::size_t n) {
    while (n > 0) {
      if (blocks_.empty() || blocks_.back().size() == blocks_.back().capacity()) {
        const std::size_t last = blocks_.empty() ? 0 : blocks_.back().capacity();
        new_block(std::min<std::size_t>(std::max<std::size_t>(2 * last, 64 * 1024), 64 * kMiB));
      }
      std::string& b = blocks_.back();
      const std::size_t take = std::min(n, b.capacity() - b.size());
      b.append(data, take);
      size_ += take;
      data += take;
      n -= take;
    }
  }
  // The first `n` bytes (a probe's look at what it got).
  std::string head(std::size_t n) const {
    std::string out;
    for (const std::string& b : blocks_) {
      if (out.size() >= n) break;
      out.append(b, 0, n - out.size());
    }
    return out;
  }
  // The whole body; each block is freed once copied.
  std::string take() {
    if (blocks_.size() == 1) return std::move(blocks_.front());
    std::string out;
    out.reserve(size_);
    for (std::string& b : blocks_) {
      out += b;
      std::string().swap(b);
    }
    return out;
  }

 private:
  void new_block(std::size_t capacity) {
    blocks_.emplace_back();
    blocks_.back().reserve(std::max<std::size_t>(capacity, 32));  // libstdc++ reserves exactly from 30 up
  }
  std::vector<std::string> blocks_;
  std::size_t size_ = 0;
};

// What one try saw; the callbacks fill it in.
struct Transfer {
  Mode mode = Mode::Text;
  std::uint64_t limit = 0;  // the most body bytes kept
  double stall_s = 60;
  Body body;
  // the last response's head
  long status = 0;
  std::string reason;
  std::string location;
  std::string content_range;
  long long content_length = -1;
  bool chunked = false;
  // why the transfer ended early
  bool interrupted = false;
  bool stalled = false;
  bool over_limit = false;   // a 2xx body over `limit` (Text)
  bool overflow = false;     // more than limit + kSlackBytes counted (bodies not kept)
  bool enough = false;       // the probe has its bytes
  bool status_only = false;  // a final non-2xx answer: its body is not read
  // the stall clock runs from the request being sent (not while connecting)
  bool requested = false;
  Clock::time_point last_activity = Clock::now();
  std::exception_ptr error;  // thrown in a callback (out of memory), rethrown after curl returns
};

bool is_2xx(long status) { return status >= 200 && status < 300; }
bool is_3xx(long status) { return status >= 300 && status < 400; }

void start_response(Transfer& t, const std::string& line) {
  // "HTTP/1.1 500 Internal Server Error", "HTTP/2 404"
  const auto sp = line.find(' ');
  t.status = sp == std::string::npos ? 0 : std::strtol(line.c_str() + sp + 1, nullptr, 10);
  const auto sp2 = sp == std::string::npos ? sp : line.find(' ', sp + 1);
  t.reason = sp2 == std::string::npos ? "" : trim(line.substr(sp2 + 1));
  t.location.clear();
  t.content_range.clear();
  t.content_length = -1;
  t.chunked = false;
}

// false: end the transfer here
bool end_of_head(Transfer& t) {
  if (t.status < 200) return true;  // 1xx: another head follows
  if (is_3xx(t.status)) return true;  // curl follows it (or says why not)
  if (!is_2xx(t.status) && !(t.mode == Mode::Probe && t.status == 416)) {
    t.status_only = true;
    return false;
  }
  if (t.mode == Mode::Text && t.content_length > 0 && !t.chunked) {
    if (static_cast<std::uint64_t>(t.content_length) > t.limit) {
      t.over_limit = true;
      return false;
    }
    t.body.expect(static_cast<std::size_t>(t.content_length));
  }
  return true;
}

std::size_t read_header(Transfer& t, const std::string& line) {
  if (line.rfind("HTTP/", 0) == 0) {
    start_response(t, trim(line));
    return line.size();
  }
  if (trim(line).empty()) return end_of_head(t) ? line.size() : 0;
  const auto colon = line.find(':');
  if (colon == std::string::npos) return line.size();
  const std::string name = lower(trim(line.substr(0, colon)));
  const std::string value = trim(line.substr(colon + 1));
  if (name == "location") t.location = value;
  if (name == "content-range") t.content_range = value;
  if (name == "transfer-encoding" && lower(value).find("chunked") != std::string::npos) t.chunked = true;
  if (name == "content-length") {
    char* end = nullptr;
    const long long v = std::strtoll(value.c_str(), &end, 10);
    if (end != value.c_str() && *end == '\0' && v >= 0) t.content_length = v;
  }
  return line.size();
}

std::size_t read_body(Transfer& t, const char* data, std::size_t bytes) {
  if (!is_2xx(t.status) && !(t.mode == Mode::Probe && t.status == 416)) {
    t.status_only = true;  // e.g. a 3xx curl does not follow: its body is not the document
    return 0;
  }
  if (t.mode == Mode::Probe) {
    const std::size_t take = std::min(bytes, kProbeBytes - std::min(kProbeBytes, t.body.size()));
    t.body.append(data, take);
    if (t.body.size() < kProbeBytes) return bytes;
    t.enough = true;
    return 0;
  }
  if (static_cast<std::uint64_t>(t.body.size()) + bytes > t.limit) {
    t.over_limit = true;
    return 0;
  }
  t.body.append(data, bytes);
  return bytes;
}

// curl's callbacks: no exception may cross into curl's C code.
std::size_t on_header(char* data, std::size_t size, std::size_t n, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  t.last_activity = Clock::now();
  try {
    return read_header(t, std::string(data, size * n));
  } catch (...) {
    t.error = std::current_exception();
    return 0;
  }
}

std::size_t on_body(char* data, std::size_t size, std::size_t n, void* user) {
  auto& t = *static_cast<Transfer*>(user);
  t.last_activity = Clock::now();
  try {
    return read_body(t, data, size * n);
  } catch (...) {
    t.error = std::current_exception();
    return 0;
  }
}

// true: end the transfer now (a stop request, or nothing received for the stall limit).
bool out_of_bounds(Transfer& t) {
  if (stop_requested()) {
    t.interrupted = true;
    return true;
  }
  const Clock::time_point now = Clock::now();
  if (!t.requested) {
    t.last_activity = now;  // still connecting: GDAL_HTTP_CONNECTTIMEOUT applies
  } else if (std::chrono::duration<double>(now - t.last_activity).count() > t.stall_s) {
    t.stalled = true;
    return true;
  }
  return false;
}

int on_progress(void* user, curl_off_t, curl_off_t dlnow, curl_off_t, curl_off_t) {
  auto& t = *static_cast<Transfer*>(user);
  const std::uint64_t kept = t.mode == Mode::Probe ? kProbeBytes : t.limit;
  if (dlnow > static_cast<curl_off_t>(kept) + kSlackBytes) {
    t.overflow = true;
    return 1;
  }
  return out_of_bounds(t) ? 1 : 0;
}

// Called once a connection is ready, before each request is sent.
int on_request(void* user, char*, char*, int, int) {
  auto& t = *static_cast<Transfer*>(user);
  t.requested = true;
  t.last_activity = Clock::now();
  return CURL_PREREQFUNC_OK;
}

struct CurlDeleter {
  void operator()(CURL* c) const noexcept { curl_easy_cleanup(c); }
};
struct SlistDeleter {
  void operator()(curl_slist* l) const noexcept { curl_slist_free_all(l); }
};
struct MultiDeleter {
  void operator()(CURLM* m) const noexcept { curl_multi_cleanup(m); }
};
using CurlPtr = std::unique_ptr<CURL, CurlDeleter>;
using SlistPtr = std::unique_ptr<curl_slist, SlistDeleter>;
using MultiPtr = std::unique_ptr<CURLM, MultiDeleter>;

// The credentials GDAL would send for /vsicurl/ (so that a probe gets what GDAL gets).
void configure_credentials(CURL* c, const Settings& s) {
  if (!s.bearer.empty()) {
    curl_easy_setopt(c, CURLOPT_HTTPAUTH, static_cast<long>(CURLAUTH_BEARER));
    curl_easy_setopt(c, CURLOPT_XOAUTH2_BEARER, s.bearer.c_str());
  } else if (!s.userpwd.empty()) {
    curl_easy_setopt(c, CURLOPT_USERPWD, s.userpwd.c_str());
  }
  if (!s.cookie.empty()) curl_easy_setopt(c, CURLOPT_COOKIE, s.cookie.c_str());
  if (s.netrc) {
    curl_easy_setopt(c, CURLOPT_NETRC, static_cast<long>(CURL_NETRC_OPTIONAL));
    if (!s.netrc_file.empty()) curl_easy_setopt(c, CURLOPT_NETRC_FILE, s.netrc_file.c_str());
  }
}

void configure(CURL* c, const std::string& url, const Settings& s, Transfer& t, curl_slist* headers,
               char* error_buffer) {
  curl_easy_setopt(c, CURLOPT_URL, url.c_str());
  curl_easy_setopt(c, CURLOPT_NOSIGNAL, 1L);
  curl_easy_setopt(c, CURLOPT_ERRORBUFFER, error_buffer);
  curl_easy_setopt(c, CURLOPT_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_REDIR_PROTOCOLS_STR, "http,https");
  curl_easy_setopt(c, CURLOPT_FOLLOWLOCATION, 1L);
  curl_easy_setopt(c, CURLOPT_MAXREDIRS, 10L);
  curl_easy_setopt(c, CURLOPT_CONNECTTIMEOUT_MS, static_cast<long>(s.connect_s * 1000));
  curl_easy_setopt(c, CURLOPT_HEADERFUNCTION, &on_header);
  curl_easy_setopt(c, CURLOPT_HEADERDATA, &t);
  curl_easy_setopt(c, CURLOPT_WRITEFUNCTION, &on_body);
  curl_easy_setopt(c, CURLOPT_WRITEDATA, &t);
  curl_easy_setopt(c, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(c, CURLOPT_XFERINFOFUNCTION, &on_progress);
  curl_easy_setopt(c, CURLOPT_XFERINFODATA, &t);
  curl_easy_setopt(c, CURLOPT_PREREQFUNCTION, &on_request);
  curl_easy_setopt(c, CURLOPT_PREREQDATA, &t);
  curl_easy_setopt(c, CURLOPT_USERAGENT, s.user_agent.c_str());
  if (headers != nullptr) curl_easy_setopt(c, CURLOPT_HTTPHEADER, headers);
  if (!s.proxy.empty()) curl_easy_setopt(c, CURLOPT_PROXY, s.proxy.c_str());
  if (!s.proxy_userpwd.empty()) curl_easy_setopt(c, CURLOPT_PROXYUSERPWD, s.proxy_userpwd.c_str());
  configure_credentials(c, s);
  if (s.unsafe_ssl) {
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYPEER, 0L);
    curl_easy_setopt(c, CURLOPT_SSL_VERIFYHOST, 0L);
  }
  if (s.verbose) curl_easy_setopt(c, CURLOPT_VERBOSE, 1L);
  if (t.mode == Mode::Probe) {
    curl_easy_setopt(c, CURLOPT_RANGE, "0-65535");  // identity encoding: the sizes are the file's
  } else {
    curl_easy_setopt(c, CURLOPT_ACCEPT_ENCODING, "");  // whatever curl decodes; the limit counts decoded bytes
  }
}

// curl_easy_perform, waking at least every 100 ms to check out_of_bounds (while nothing
// arrives, curl calls the progress callback only about once a second).
CURLcode perform(CURL* c, Transfer& t) {
  MultiPtr multi(curl_multi_init());
  if (!multi || curl_multi_add_handle(multi.get(), c) != CURLM_OK) {
    throw RuntimeError("cannot start an HTTP transfer (curl_multi_init failed)");
  }
  CURLcode result = CURLE_ABORTED_BY_CALLBACK;  // unless curl finishes the transfer
  CURLMcode mc = CURLM_OK;
  for (int running = 1; mc == CURLM_OK;) {
    mc = curl_multi_perform(multi.get(), &running);
    if (mc != CURLM_OK || running == 0 || out_of_bounds(t)) break;
    mc = curl_multi_poll(multi.get(), nullptr, 0, 100, nullptr);
  }
  int queued = 0;
  while (CURLMsg* m = curl_multi_info_read(multi.get(), &queued)) {
    if (m->msg == CURLMSG_DONE) result = m->data.result;
  }
  curl_multi_remove_handle(multi.get(), c);
  if (mc != CURLM_OK) throw RuntimeError(std::string("HTTP transfer failed: ") + curl_multi_strerror(mc));
  return result;
}

// The result of one try.
struct Attempt {
  CURLcode code = CURLE_OK;
  std::string curl_error;  // curl's message for `code`
  Transfer t;
};

Attempt perform_once(const std::string& url, const Settings& s, Mode mode, std::uint64_t limit) {
  global_init();
  Attempt a;
  a.t.mode = mode;
  a.t.limit = limit;
  a.t.stall_s = s.stall_s;
  CurlPtr curl(curl_easy_init());
  if (!curl) throw RuntimeError("cannot start an HTTP transfer (curl_easy_init failed)");
  SlistPtr headers;
  for (const std::string& h : s.headers) {
    curl_slist* more = curl_slist_append(headers.get(), h.c_str());
    if (more == nullptr) throw RuntimeError("out of memory for HTTP headers");
    headers.release();
    headers.reset(more);
  }
  char error_buffer[CURL_ERROR_SIZE] = {};
  configure(curl.get(), url, s, a.t, headers.get(), error_buffer);
  a.code = perform(curl.get(), a.t);
  if (a.t.error) std::rethrow_exception(a.t.error);
  a.curl_error = error_buffer[0] != '\0' ? error_buffer : curl_easy_strerror(a.code);
  while (!a.curl_error.empty() && (a.curl_error.back() == '\n' || a.curl_error.back() == ' ')) {
    a.curl_error.pop_back();
  }
  return a;
}

// ---- what a try's outcome means -----------------------------------------------------

std::string reason_of(long status, const std::string& sent) {
  static const std::map<long, const char*> reasons = {
      {300, "Multiple Choices"}, {301, "Moved Permanently"}, {302, "Found"}, {303, "See Other"},
      {304, "Not Modified"}, {307, "Temporary Redirect"}, {308, "Permanent Redirect"},
      {400, "Bad Request"}, {401, "Unauthorized"}, {403, "Forbidden"}, {404, "Not Found"},
      {405, "Method Not Allowed"}, {406, "Not Acceptable"}, {407, "Proxy Authentication Required"},
      {408, "Request Timeout"}, {410, "Gone"}, {416, "Range Not Satisfiable"},
      {429, "Too Many Requests"}, {500, "Internal Server Error"}, {501, "Not Implemented"},
      {502, "Bad Gateway"}, {503, "Service Unavailable"}, {504, "Gateway Timeout"}};
  const auto it = reasons.find(status);
  if (it != reasons.end()) return it->second;
  return sent;
}

std::string status_str(const Transfer& t) {
  const std::string reason = reason_of(t.status, t.reason);
  return "HTTP " + std::to_string(t.status) + (reason.empty() ? "" : " (" + reason + ")");
}

bool retryable_status(long status) {
  return status == 429 || status == 500 || status == 502 || status == 503 || status == 504;
}

bool connection_failure(CURLcode code) {
  switch (code) {
    case CURLE_COULDNT_RESOLVE_HOST:
    case CURLE_COULDNT_RESOLVE_PROXY:
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
      return true;
    default:
      return false;
  }
}

// A try that did not give a document: why, and whether another try may help.
struct Failure {
  std::string detail;
  bool retryable = false;
};

// The failure of a redirect, or of a 3xx answer that is final.
Failure redirect_failure(const Attempt& a) {
  const Transfer& t = a.t;
  const std::string to = t.location.empty() ? "" : " redirecting to '" + t.location + "'";
  if (a.code == CURLE_TOO_MANY_REDIRECTS) {
    return {"the server answered " + status_str(t) + to + " after 10 redirects (copgen follows at most 10)"};
  }
  if (t.location.empty()) return {"the server answered " + status_str(t) + " without a Location to follow"};
  if (a.code == CURLE_UNSUPPORTED_PROTOCOL || a.code == CURLE_OK || a.code == CURLE_WRITE_ERROR) {
    return {"the server answered " + status_str(t) + to + ", which copgen does not follow (only http and https)"};
  }
  return {"the server answered " + status_str(t) + to + ", which could not be followed (" + a.curl_error + ")"};
}

// Empty detail: the try gave an answer `accept` takes. Throws Interrupted for a stop request.
Failure classify(const Attempt& a, const Settings& s, bool accept_416) {
  const Transfer& t = a.t;
  if (t.interrupted) throw Interrupted();
  if (t.over_limit) return {"the server sent " + remote_text_limit_exceeded()};
  if (t.overflow && t.mode == Mode::Text) return {"the server sent " + remote_text_limit_exceeded()};
  if (t.overflow) return {"the server sent more than 1 MiB in answer to a request for the first 64 KiB"};
  if (t.stalled) {
    return {"the server sent nothing for " + seconds_str(s.stall_s) + " (" + s.stall_var + " sets this limit)"};
  }
  const bool answered = a.code == CURLE_OK || (a.code == CURLE_WRITE_ERROR && (t.enough || t.status_only));
  if (answered && (is_2xx(t.status) || (accept_416 && t.status == 416))) return {};
  if (is_3xx(t.status) && (answered || a.code == CURLE_TOO_MANY_REDIRECTS || a.code == CURLE_UNSUPPORTED_PROTOCOL)) {
    return redirect_failure(a);
  }
  if (answered) return {"the server answered " + status_str(t), retryable_status(t.status)};
  if (a.code == CURLE_OPERATION_TIMEDOUT) {
    return {"cannot connect within " + seconds_str(s.connect_s) + " (" + a.curl_error +
                "; GDAL_HTTP_CONNECTTIMEOUT sets this limit)",
            true};
  }
  return {"cannot be read (" + a.curl_error + ")", connection_failure(a.code)};
}

// Waits `seconds` in slices of at most 100 ms; Interrupted when a stop is requested.
void wait_interruptibly(double seconds) {
  const auto until = Clock::now() + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(seconds));
  throw_if_stop_requested();
  while (Clock::now() < until) {
    const auto left = until - Clock::now();
    std::this_thread::sleep_for(std::min<Clock::duration>(left, std::chrono::milliseconds(100)));
    throw_if_stop_requested();
  }
}

// Tries up to 1 + GDAL_HTTP_MAX_RETRY times; the answer of the first try that gives one.
Attempt fetch(const std::string& url, const std::string& what, Mode mode, std::uint64_t limit) {
  if (!is_http_url(url)) throw InputError(what + " '" + url + "': not an http or https URL");
  const Settings s = read_settings();
  for (long attempt = 1;; ++attempt) {
    throw_if_stop_requested();
    Attempt a = perform_once(url, s, mode, limit);
    const Failure f = classify(a, s, mode == Mode::Probe);
    if (f.detail.empty()) return a;
    if (!f.retryable || attempt > s.max_retry) {
      std::string message = what + " '" + url + "': " + f.detail;
      if (attempt > 1) message += " (" + std::to_string(attempt) + " tries)";
      if (f.retryable && !s.retry_set) message += "; GDAL_HTTP_MAX_RETRY=3 retries such failures";
      throw InputError(message);
    }
    spdlog::warn("{} '{}': {}; trying again in {} (try {} of {})", what, url, f.detail,
                 seconds_str(s.retry_delay_s), attempt + 1, s.max_retry + 1);
    wait_interruptibly(s.retry_delay_s);
  }
}

// ---- probes -----------------------------------------------------------------------------

// "HTML" or "JSON" when the first bytes say so, else "".
std::string sniff(const std::string& body) {
  std::size_t i = body.rfind("\xEF\xBB\xBF", 0) == 0 ? 3 : 0;
  while (i < body.size() && std::isspace(static_cast<unsigned char>(body[i]))) ++i;
  const std::string head = lower(body.substr(i, 14));
  if (head.rfind("<!doctype html", 0) == 0 || head.rfind("<html", 0) == 0) return "HTML";
  if (!head.empty() && (head[0] == '{' || head[0] == '[')) return "JSON";
  return "";
}

// The total of a Content-Range "bytes 0-65535/100000" or "bytes */100000"; -1 when unknown.
long long range_total(const std::string& content_range) {
  const auto slash = content_range.rfind('/');
  if (slash == std::string::npos) return -1;
  const std::string total = trim(content_range.substr(slash + 1));
  char* end = nullptr;
  const long long v = std::strtoll(total.c_str(), &end, 10);
  return end != total.c_str() && *end == '\0' && v >= 0 ? v : -1;
}

std::string size_str(std::uint64_t bytes) {
  const double gib = static_cast<double>(bytes) / static_cast<double>(std::uint64_t{1} << 30);
  std::string s = std::to_string(static_cast<long long>(gib * 10 + 0.5));
  if (s.size() < 2) s.insert(0, 1, '0');
  return std::to_string(bytes) + " bytes (" + s.substr(0, s.size() - 1) + "." + s.back() + " GiB)";
}

RemoteProbe judge_probe(const Transfer& t, const std::string& url, const std::string& what) {
  const std::string subject = what + " '" + url + "': ";
  if (t.status == 416) {
    if (range_total(t.content_range) == 0) throw InputError(subject + "is empty (0 bytes)");
    throw InputError(subject + "the server answered " + status_str(t) + " to a request for its first bytes");
  }
  const std::string kind = sniff(t.body.head(64));
  if (!kind.empty()) throw InputError(subject + "is not a raster (the server sent " + kind + ")");
  RemoteProbe p;
  long long size = -1;
  if (t.status == 206) {
    size = range_total(t.content_range);
    p.ranges = true;
  } else if (!t.chunked) {
    size = t.content_length;
  }
  if (size < 0) {
    throw InputError(subject + "the server does not say how large the file is (no Content-Length, no byte ranges); "
                     "copgen reads rasters over HTTP by byte ranges and will not stream an unbounded body");
  }
  if (size == 0) throw InputError(subject + "is empty (0 bytes)");
  p.size = static_cast<std::uint64_t>(size);
  if (!p.ranges && p.size > kMaxUnrangedRasterBytes) {
    throw InputError(subject + "the server ignores byte ranges, so the whole file of " + size_str(p.size) +
                     " would be read; copgen reads at most " + size_str(kMaxUnrangedRasterBytes) +
                     " from such a server");
  }
  return p;
}

}  // namespace

// ---- public API ---------------------------------------------------------------------

bool is_http_url(const std::string& s) {
  const std::string head = lower(s.substr(0, 8));
  return (head.rfind("http://", 0) == 0 && s.size() > 7) || (head == "https://" && s.size() > 8);
}

std::uint64_t remote_text_limit() {
  const std::string v = env("COPGEN_MAX_JSON_MB");
  if (v.empty()) return kDefaultTextMiB * kMiB;
  const bool digits = v.find_first_not_of("0123456789") == std::string::npos;
  const std::uint64_t mib = digits && v.size() <= 8 ? std::stoull(v) : 0;
  if (mib == 0 || mib > kMaxTextMiB) {
    throw UsageError("COPGEN_MAX_JSON_MB='" + v + "' is not a positive whole number of MiB (1 to " +
                     std::to_string(kMaxTextMiB) + ")");
  }
  return mib * kMiB;
}

std::string remote_text_limit_exceeded() {
  return "more than " + std::to_string(remote_text_limit() / kMiB) +
         " MiB (copgen's limit for a STAC document; set COPGEN_MAX_JSON_MB to raise it)";
}

std::string fetch_text(const std::string& url, const std::string& what) {
  Attempt a = fetch(url, what, Mode::Text, remote_text_limit());
  spdlog::debug("read {} bytes from '{}'", a.t.body.size(), url);
  return a.t.body.take();
}

RemoteProbe probe_remote_raster(const std::string& url, const std::string& what) {
  static std::mutex mutex;
  static std::map<std::string, RemoteProbe> probed;
  {
    std::lock_guard<std::mutex> lock(mutex);
    const auto it = probed.find(url);
    if (it != probed.end()) return it->second;
  }
  const Attempt a = fetch(url, what, Mode::Probe, kProbeBytes);
  const RemoteProbe p = judge_probe(a.t, url, what);
  spdlog::debug("'{}': {} bytes, {}", url, p.size, p.ranges ? "byte ranges" : "no byte ranges");
  std::lock_guard<std::mutex> lock(mutex);
  probed.emplace(url, p);
  return p;
}

// ---- Planetary Computer SAS tokens ---------------------------------------------------

namespace {

struct BlobToken {
  std::string token;
  std::chrono::system_clock::time_point expiry;
};

// "2024-04-19T10:20:30Z" (fractional seconds and an offset of Z only); nullopt otherwise.
std::optional<std::chrono::system_clock::time_point> parse_utc(const std::string& s) {
  std::tm tm{};
  int year = 0, month = 0;
  char tail = 0;
  if (std::sscanf(s.c_str(), "%4d-%2d-%2dT%2d:%2d:%2d%c", &year, &month, &tm.tm_mday, &tm.tm_hour, &tm.tm_min,
                  &tm.tm_sec, &tail) < 6) {
    return std::nullopt;
  }
  tm.tm_year = year - 1900;
  tm.tm_mon = month - 1;
  const std::time_t t = timegm(&tm);
  if (t == static_cast<std::time_t>(-1)) return std::nullopt;
  return std::chrono::system_clock::from_time_t(t);
}

// The token of `collection` from the endpoint.
BlobToken fetch_blob_token(const std::string& collection, const std::string& what) {
  const std::string endpoint = planetary_computer_token_url() + "/" + collection;
  const std::string fix = " (Planetary Computer's blob URLs are read with a SAS token from its token endpoint; "
                          "set COPGEN_PC_TOKEN_URL to another endpoint)";
  std::string body;
  try {
    body = fetch_text(endpoint, "SAS token endpoint");
  } catch (const InputError& e) {
    throw InputError(what + ": no SAS token: " + e.what() + fix);
  }
  const nlohmann::json j = nlohmann::json::parse(body, nullptr, false);
  if (!j.is_object() || !j.contains("token") || !j["token"].is_string() || j["token"].get<std::string>().empty()) {
    throw InputError(what + ": the SAS token endpoint '" + endpoint + "' answered no \"token\"" + fix);
  }
  BlobToken t;
  t.token = j["token"].get<std::string>();
  if (!t.token.empty() && t.token[0] == '?') t.token.erase(0, 1);
  const auto expiry = j.contains("msft:expiry") && j["msft:expiry"].is_string()
                          ? parse_utc(j["msft:expiry"].get<std::string>())
                          : std::nullopt;
  // without an expiry the token is asked again after 10 minutes
  t.expiry = expiry.value_or(std::chrono::system_clock::now() + std::chrono::minutes(10));
  spdlog::debug("SAS token for {} from {}, valid until {}", collection, endpoint,
                j.value("msft:expiry", std::string("(not said)")));
  return t;
}

}  // namespace

std::string planetary_computer_token_url() {
  const char* env = std::getenv("COPGEN_PC_TOKEN_URL");
  std::string url = env && *env ? env : "https://planetarycomputer.microsoft.com/api/sas/v1/token";
  while (!url.empty() && url.back() == '/') url.pop_back();
  return url;
}

bool needs_blob_token(const std::string& url) {
  if (url.rfind("https://", 0) != 0 || url.find('?') != std::string::npos) return false;
  const std::size_t host_end = url.find('/', 8);
  std::string host = url.substr(8, host_end == std::string::npos ? std::string::npos : host_end - 8);
  std::transform(host.begin(), host.end(), host.begin(), [](unsigned char c) { return std::tolower(c); });
  const std::string suffix = ".blob.core.windows.net";
  return host.size() > suffix.size() && host.compare(host.size() - suffix.size(), suffix.size(), suffix) == 0;
}

std::string sign_blob_url(const std::string& url, const std::string& collection, const std::string& what) {
  if (collection.empty()) {
    throw InputError(what + ": '" + url + "' is an Azure blob URL that needs a SAS token, and the item names no "
                     "collection to ask a token for");
  }
  static std::mutex mu;
  static std::map<std::string, BlobToken> tokens;
  std::lock_guard<std::mutex> lock(mu);
  auto it = tokens.find(collection);
  if (it == tokens.end() || std::chrono::system_clock::now() + std::chrono::minutes(1) >= it->second.expiry) {
    tokens[collection] = fetch_blob_token(collection, what);
    it = tokens.find(collection);
  }
  return url + "?" + it->second.token;
}

}  // namespace copgen
