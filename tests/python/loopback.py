"""What the tests' HTTP servers share: a threaded server on 127.0.0.1 at a free port,
the port written to a file once it listens, stopped by SIGTERM or SIGINT.

    serve_on_loopback(Handler, "/tmp/x/port", on_stop=lambda: ...)
"""

import os
import signal
import threading
from http.server import ThreadingHTTPServer


def serve_on_loopback(handler, port_file, on_stop=None):
    server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    server.daemon_threads = True
    tmp = port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.replace(tmp, port_file)

    def stop(*_):
        if on_stop is not None:
            on_stop()
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    server.serve_forever()
    return 0
