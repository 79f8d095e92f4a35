#!/usr/bin/python3
"""An HTTP server on the loopback whose paths misbehave, for tests of copgen's HTTP reader:

    trouble_server.py --port-file FILE

Listens on 127.0.0.1 at a free port, written to --port-file once it listens; one thread per
connection; stops on SIGTERM or SIGINT. Paths (GET; HEAD sends the same head without a body):

  /endless.json      200, chunked: '{"a":"' then 'x' without end
  /endless.tif       200, chunked: TIFF magic 'II*\\0' then 'x' without end
  /stall             reads the request, then sends nothing
  /stall-body.json   Content-Length 1000, sends 10 bytes, then nothing
  /status/N          answers HTTP N (e.g. /status/500, /status/503, /status/404)
  /redirect-file     302 to file:///etc/passwd
  /redirect-ok       302 to /ok.json
  /redirect-loop     302 to itself
  /ok.json           200 '{"ok": true}' with a Content-Length
  /big.json          200 with a Content-Length of 2 MiB (a JSON string of 'x')
  /html.tif          200, an HTML page with a Content-Length
  /nolength.tif      200, TIFF magic + 1000 bytes, no Content-Length, then the connection closes
  /ranged.tif        a 100000-byte TIFF-magic file with single byte ranges (206)

Every loop is bounded: an endless body stops after 60 s or when the client goes away, and a
stalled answer holds its connection until the server stops (at most 10 minutes).
"""

import argparse
import re
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler

from loopback import serve_on_loopback

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")
ENDLESS_SECONDS = 60
HOLD_SECONDS = 600
RANGED = b"II*\x00" + bytes((i * 7) % 251 for i in range(100000 - 4))
HTML = b"<!DOCTYPE html>\n<html><head><title>Sign in</title></head><body>Please sign in</body></html>\n"
REASONS = {404: "Not Found", 500: "Internal Server Error", 503: "Service Unavailable"}


def make_handler(stopping):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def _head(self, status, headers, location=None):
            self.send_response(status, REASONS.get(status))
            for name, value in headers:
                self.send_header(name, value)
            if location is not None:
                self.send_header("Location", location)
            self.end_headers()

        def _fixed(self, status, body, content_type="application/octet-stream", location=None):
            self._head(status, [("Content-Type", content_type), ("Content-Length", str(len(body)))], location)
            if not self.head:
                self.wfile.write(body)

        def _endless(self, first):
            self._head(200, [("Content-Type", "application/octet-stream"), ("Transfer-Encoding", "chunked")])
            if self.head:
                return
            chunk = b"x" * 65536
            end = time.monotonic() + ENDLESS_SECONDS
            try:
                self.wfile.write(b"%x\r\n%s\r\n" % (len(first), first))
                while time.monotonic() < end and not stopping.is_set():
                    self.wfile.write(b"%x\r\n%s\r\n" % (len(chunk), chunk))
            except (BrokenPipeError, ConnectionResetError, OSError):
                pass
            self.close_connection = True

        def _hold(self):
            try:
                self.wfile.flush()
            except OSError:
                pass
            stopping.wait(HOLD_SECONDS)
            self.close_connection = True

        def _ranged(self):
            size = len(RANGED)
            start, end = 0, size - 1
            m = RANGE.match(self.headers.get("Range", ""))
            if m and (m.group(1) or m.group(2)):
                if m.group(1):
                    start = int(m.group(1))
                    end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
                else:
                    start = max(0, size - int(m.group(2)))
                if start >= size:
                    self._head(416, [("Content-Range", "bytes */%d" % size), ("Content-Length", "0")])
                    return
                self._head(206, [("Content-Range", "bytes %d-%d/%d" % (start, end, size)),
                                 ("Accept-Ranges", "bytes"), ("Content-Length", str(end - start + 1))])
            else:
                self._head(200, [("Accept-Ranges", "bytes"), ("Content-Length", str(size))])
            if not self.head:
                self.wfile.write(RANGED[start:end + 1])

        def _nolength(self):
            self._head(200, [("Content-Type", "image/tiff"), ("Connection", "close")])
            if not self.head:
                self.wfile.write(b"II*\x00" + b"\x01" * 1000)
            self.close_connection = True

        def _status(self, code):
            self._fixed(code, b"status %d\n" % code, "text/plain")

        def _answer(self, head):
            self.head = head
            path = self.path.split("?", 1)[0]
            routes = {
                "/endless.json": lambda: self._endless(b'{"a":"'),
                "/endless.tif": lambda: self._endless(b"II*\x00"),
                "/stall": self._hold,
                "/redirect-file": lambda: self._fixed(302, b"", location="file:///etc/passwd"),
                "/redirect-ok": lambda: self._fixed(302, b"", location="/ok.json"),
                "/redirect-loop": lambda: self._fixed(302, b"", location="/redirect-loop"),
                "/ok.json": lambda: self._fixed(200, b'{"ok": true}', "application/json"),
                "/big.json": lambda: self._fixed(200, b'{"a":"' + b"x" * (2 * 1024 * 1024 - 8) + b'"}',
                                                 "application/json"),
                "/html.tif": lambda: self._fixed(200, HTML, "text/html"),
                "/nolength.tif": self._nolength,
                "/ranged.tif": self._ranged,
            }
            if path == "/stall-body.json":
                self._head(200, [("Content-Type", "application/json"), ("Content-Length", "1000")])
                if not head:
                    self.wfile.write(b'{"a": "xxx')
                    self._hold()
            elif path in routes:
                routes[path]()
            elif re.fullmatch(r"/status/[2-5]\d\d", path):
                self._status(int(path[len("/status/"):]))
            else:
                self._status(404)

        def do_HEAD(self):
            self._answer(True)

        def do_GET(self):
            self._answer(False)

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--port-file", required=True)
    args = parser.parse_args()
    stopping = threading.Event()
    return serve_on_loopback(make_handler(stopping), args.port_file, on_stop=stopping.set)


if __name__ == "__main__":
    sys.exit(main())
