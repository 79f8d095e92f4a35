#!/usr/bin/python3
"""A static HTTP server on the loopback for tests that read rasters over /vsicurl/:
it answers HEAD and GET, with single byte ranges (206), and counts what it served.

    range_server.py --dir DIR --port-file FILE --stats FILE [--fail N]

Serves the files of DIR on 127.0.0.1 at a free port, written to --port-file once it
listens. After every request it rewrites --stats (JSON): requests, bytes (body bytes
sent), and per path the requests and bytes. With --fail N the first N GET requests of
each path answer 503 (for retry tests). Stops on SIGTERM or SIGINT.
"""

import argparse
import json
import os
import re
import sys
import threading
from http.server import BaseHTTPRequestHandler

from loopback import serve_on_loopback

RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def make_handler(root, stats_path, fail):
    lock = threading.Lock()
    stats = {"requests": 0, "bytes": 0, "paths": {}}
    failed = {}

    def record(path, sent):
        with lock:
            stats["requests"] += 1
            stats["bytes"] += sent
            entry = stats["paths"].setdefault(path, {"requests": 0, "bytes": 0})
            entry["requests"] += 1
            entry["bytes"] += sent
            tmp = stats_path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(stats, f)
            os.replace(tmp, stats_path)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args):  # quiet
            pass

        def _file(self):
            rel = self.path.split("?", 1)[0].lstrip("/")
            full = os.path.realpath(os.path.join(root, rel))
            if not full.startswith(os.path.realpath(root) + os.sep) or not os.path.isfile(full):
                return None
            return full

        def _answer(self, head):
            full = self._file()
            if full is None:
                self.send_response(404)
                self.send_header("Content-Length", "0")
                self.end_headers()
                record(self.path, 0)
                return
            if not head and fail > 0:
                with lock:
                    n = failed.get(self.path, 0)
                    failed[self.path] = n + 1
                if n < fail:
                    self.send_response(503)
                    self.send_header("Content-Length", "0")
                    self.end_headers()
                    record(self.path, 0)
                    return
            size = os.path.getsize(full)
            start, end = 0, size - 1
            m = RANGE.match(self.headers.get("Range", ""))
            if m and (m.group(1) or m.group(2)):
                if m.group(1):
                    start = int(m.group(1))
                    end = min(int(m.group(2)), size - 1) if m.group(2) else size - 1
                else:
                    start = max(0, size - int(m.group(2)))
                self.send_response(206)
                self.send_header("Content-Range", "bytes %d-%d/%d" % (start, end, size))
            else:
                self.send_response(200)
            length = max(0, end - start + 1)
            self.send_header("Accept-Ranges", "bytes")
            self.send_header("Content-Length", str(length))
            self.send_header("Content-Type", "application/octet-stream")
            self.end_headers()
            sent = 0
            if not head:
                with open(full, "rb") as f:
                    f.seek(start)
                    data = f.read(length)
                self.wfile.write(data)
                sent = len(data)
            record(self.path, sent)

        def do_HEAD(self):
            self._answer(True)

        def do_GET(self):
            self._answer(False)

    return Handler


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--dir", required=True)
    parser.add_argument("--port-file", required=True)
    parser.add_argument("--stats", required=True)
    parser.add_argument("--fail", type=int, default=0)
    args = parser.parse_args()
    with open(args.stats, "w") as f:
        json.dump({"requests": 0, "bytes": 0, "paths": {}}, f)
    return serve_on_loopback(make_handler(args.dir, args.stats, args.fail), args.port_file)


if __name__ == "__main__":
    sys.exit(main())
