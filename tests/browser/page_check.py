#!/usr/bin/python3
"""Opens a page copgen wrote (report.html, index.html, an SVG chart) in headless Chromium
and reports, as JSON on stdout, what a reader would see: every image with its loading
state and natural size, counts of elements matched by CSS selectors, the resources the
page fetched, and a screenshot of the whole page.

Standard library only. Chromium is driven over the DevTools protocol on a pipe
(--remote-debugging-pipe: the browser reads NUL-terminated JSON messages on fd 3 and
writes its answers on fd 4), so no websocket library and no port are needed.

    page_check.py [--chromium PATH] [--screenshot OUT.png] [--width 1280] [--height 800]
                  [--scale 1] [--count NAME=SELECTOR ...] [--json OUT.json] PAGE

PAGE: a local file (made a file:// URL) or a URL. Exit codes: 0 the page was opened and
checked (the JSON says what was found; the caller asserts), 2 bad arguments, 3 the page
or the browser failed, 77 no Chromium found (the caller decides whether that is a skip).
"""

import argparse
import base64
import json
import os
import pathlib
import select
import shutil
import subprocess
import sys
import tempfile
import time

SKIP_EXIT = 77
TIMEOUT_S = 120.0  # a safety net against a hung browser, not a timing assertion

# Runs in the page once it has loaded: the images (every <img>, and <image> in SVG), the
# counts asked for, the resources fetched, the scripts present.
COLLECT = r"""
(async (counts) => {
  const imgs = Array.from(document.images || []);
  await Promise.all(imgs.map((i) => (i.decode ? i.decode().catch(() => null) : null)));
  const out = {
    title: document.title || "",
    content_type: document.contentType,
    images: imgs.map((i) => ({src: i.getAttribute("src") || "", complete: i.complete,
                              naturalWidth: i.naturalWidth, naturalHeight: i.naturalHeight})),
    counts: {},
    scripts: document.querySelectorAll("script").length,
    resources: performance.getEntriesByType("resource").map((e) => e.name),
    // an SVG document: the drawing's own size; a page: what scrolls
    svg: document.documentElement.localName === "svg",
    width: Math.ceil(document.documentElement.localName === "svg"
                     ? document.documentElement.getBoundingClientRect().width
                     : Math.max(document.documentElement.scrollWidth,
                                document.documentElement.getBoundingClientRect().width)),
    height: Math.ceil(document.documentElement.localName === "svg"
                      ? document.documentElement.getBoundingClientRect().height
                      : Math.max(document.documentElement.scrollHeight,
                                 document.documentElement.getBoundingClientRect().height)),
  };
  for (const [name, selector] of Object.entries(counts)) {
    out.counts[name] = document.querySelectorAll(selector).length;
  }
  return out;
})
"""


class Browser:
    """One headless Chromium process and the DevTools pipe to it."""

    def __init__(self, chromium, width, height):
        self.profile = tempfile.mkdtemp(prefix="copgen-chromium-")
        to_browser_r, self.to_browser = os.pipe()
        self.from_browser, from_browser_w = os.pipe()

        def child_fds():
            # fds 3 and 4 may be among the pipe ends: move them out of the way first. Python's
            # own fds are not inherited (PEP 446); dup2 makes 3 and 4 inheritable.
            a, b = os.dup(to_browser_r), os.dup(from_browser_w)
            os.dup2(a, 3)
            os.dup2(b, 4)

        args = [chromium, "--headless=new", "--remote-debugging-pipe", "--disable-gpu",
                "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-sync", "--mute-audio",
                "--hide-scrollbars", "--disable-dev-shm-usage", "--user-data-dir=" + self.profile,
                "--window-size=%d,%d" % (width, height)]
        if os.geteuid() == 0:
            args.append("--no-sandbox")  # Chromium refuses to run as root with its sandbox
        self.proc = subprocess.Popen(args + ["about:blank"], preexec_fn=child_fds,
                                     stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=subprocess.PIPE, close_fds=False)  # fds 3, 4 stay
        os.close(to_browser_r)
        os.close(from_browser_w)
        self.buffer = b""
        self.next_id = 0
        self.events = []
        self.deadline = time.monotonic() + TIMEOUT_S

    def _read_message(self):
        while b"\0" not in self.buffer:
            left = self.deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError("no answer from Chromium within %d s" % TIMEOUT_S)
            ready, _, _ = select.select([self.from_browser], [], [], left)
            if not ready:
                continue
            chunk = os.read(self.from_browser, 1 << 20)
            if not chunk:
                raise RuntimeError("Chromium closed the DevTools pipe: " + self.stderr_tail())
            self.buffer += chunk
        message, self.buffer = self.buffer.split(b"\0", 1)
        return json.loads(message)

    def send(self, method, params=None, session=None):
        """Sends a command and returns its result; events met on the way are kept (self.events)."""
        self.next_id += 1
        message = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            message["sessionId"] = session
        os.write(self.to_browser, json.dumps(message).encode() + b"\0")
        while True:
            answer = self._read_message()
            if answer.get("id") == self.next_id:
                if "error" in answer:
                    raise RuntimeError("%s: %s" % (method, answer["error"].get("message")))
                return answer.get("result", {})
            self.events.append(answer)

    def wait_event(self, method, session):
        while True:
            for i, e in enumerate(self.events):
                if e.get("method") == method and e.get("sessionId") == session:
                    return self.events.pop(i)
            self.events.append(self._read_message())

    def stderr_tail(self):
        try:
            self.proc.wait(timeout=5)
            return self.proc.stderr.read().decode(errors="replace")[-2000:]
        except Exception:  # still running
            return "(no output)"

    def close(self):
        try:
            self.send("Browser.close")
        except Exception:
            pass
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        for fd in (self.to_browser, self.from_browser):
            try:
                os.close(fd)
            except OSError:
                pass
        shutil.rmtree(self.profile, ignore_errors=True)


def find_chromium(explicit):
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    if os.environ.get("COPGEN_CHROMIUM"):
        return os.environ["COPGEN_CHROMIUM"]
    for name in ("chromium", "chromium-browser", "google-chrome"):
        found = shutil.which(name)
        if found:
            return found
    return None


def check(page, chromium, width, height, counts, screenshot, scale=1.0):
    url = page if "://" in page else pathlib.Path(page).resolve().as_uri()
    browser = Browser(chromium, width, height)
    try:
        target = browser.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        session = browser.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        browser.send("Page.enable", session=session)
        browser.send("Network.enable", session=session)  # every request the page makes, listed below
        browser.send("Emulation.setDeviceMetricsOverride",
                     {"width": width, "height": height, "deviceScaleFactor": 1, "mobile": False}, session)
        nav = browser.send("Page.navigate", {"url": url}, session)
        if nav.get("errorText"):
            raise RuntimeError("cannot open %s: %s" % (url, nav["errorText"]))
        browser.wait_event("Page.loadEventFired", session)
        value = browser.send("Runtime.evaluate",
                             {"expression": "(%s)(%s)" % (COLLECT, json.dumps(counts)),
                              "awaitPromise": True, "returnByValue": True}, session)
        if "exceptionDetails" in value:
            raise RuntimeError("page script failed: %s" % value["exceptionDetails"].get("text"))
        result = value["result"]["value"]
        result["url"] = url
        result["images_total"] = len(result["images"])
        result["images_loaded"] = sum(1 for i in result["images"] if i["complete"] and i["naturalWidth"] > 0)
        result["broken"] = [i["src"] for i in result["images"] if not (i["complete"] and i["naturalWidth"] > 0)]
        requested = [e["params"]["request"]["url"] for e in browser.events
                     if e.get("method") == "Network.requestWillBeSent" and e.get("sessionId") == session]
        result["requests"] = [u if len(u) < 200 else u[:200] + "..." for u in requested]
        result["external"] = [u for u in dict.fromkeys(requested + result["resources"])
                              if not u.startswith(("file:", "data:", "about:"))]
        if screenshot:
            # the whole page: the viewport grown to the document's size (an SVG: its own size)
            w = max(1, result["width"]) if result["svg"] else max(width, result["width"])
            h = max(1, result["height"])
            browser.send("Emulation.setDeviceMetricsOverride",
                         {"width": w, "height": h, "deviceScaleFactor": 1, "mobile": False}, session)
            shot = browser.send("Page.captureScreenshot",
                                {"format": "png", "captureBeyondViewport": True,
                                 "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": scale}}, session)
            data = base64.b64decode(shot["data"])
            pathlib.Path(screenshot).parent.mkdir(parents=True, exist_ok=True)
            tmp = screenshot + ".tmp"
            with open(tmp, "wb") as f:
                f.write(data)
            os.replace(tmp, screenshot)
            result["screenshot"] = screenshot
            result["screenshot_size"] = [round(w * scale), round(h * scale)]
        return result
    finally:
        browser.close()


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("page")
    ap.add_argument("--chromium", help="the browser (default: $COPGEN_CHROMIUM, else chromium on PATH)")
    ap.add_argument("--screenshot", help="write a PNG of the whole page here")
    ap.add_argument("--json", help="write the JSON here rather than to stdout")
    ap.add_argument("--scale", type=float, default=1.0,
                    help="the screenshot's scale (0.5: half the page's CSS pixels, for docs/img)")
    ap.add_argument("--width", type=int, default=1280)
    ap.add_argument("--height", type=int, default=800)
    ap.add_argument("--count", action="append", default=[], metavar="NAME=SELECTOR",
                    help="count the elements matching SELECTOR, reported under NAME")
    a = ap.parse_args()
    counts = {}
    for item in a.count:
        name, sep, selector = item.partition("=")
        if not sep or not name or not selector:
            ap.error("--count %r: expected NAME=SELECTOR" % item)
        counts[name] = selector
    if "://" not in a.page and not os.path.isfile(a.page):
        print("page_check: %s: no such file" % a.page, file=sys.stderr)
        return 3
    chromium = find_chromium(a.chromium)
    if not chromium:
        print("page_check: no Chromium found (install Debian's chromium: scripts/dev/install_deps.sh)",
              file=sys.stderr)
        return SKIP_EXIT
    try:
        result = check(a.page, chromium, a.width, a.height, counts, a.screenshot, a.scale)
    except (RuntimeError, OSError) as e:
        print("page_check: %s" % e, file=sys.stderr)
        return 3
    result["chromium"] = chromium
    text = json.dumps(result, indent=1) + "\n"
    if a.json:
        with open(a.json, "w") as f:
            f.write(text)
    else:
        sys.stdout.write(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
