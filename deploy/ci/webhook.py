#!/usr/bin/env python3
"""webhook.py PORT FILE: a loopback webhook receiver for Alertmanager; appends each POST body
(one JSON document a line) to FILE. Stops by itself after 15 minutes."""
import sys
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer

port, path = int(sys.argv[1]), sys.argv[2]


class H(BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        with open(path, "ab") as f:
            f.write(body.replace(b"\n", b" ") + b"\n")
        self.send_response(200)
        self.end_headers()

    def log_message(self, *a):
        pass


srv = HTTPServer(("127.0.0.1", port), H)
threading.Timer(900, srv.shutdown).start()
srv.serve_forever()
