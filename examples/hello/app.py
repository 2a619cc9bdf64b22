"""The example app: a tiny HTTP server, with a fake migration step."""
import json
import os
import sys
from http.server import BaseHTTPRequestHandler, HTTPServer

HERE = os.path.dirname(os.path.abspath(__file__))


def migrate():
    with open(os.path.join(HERE, "migrated.txt"), "a") as out:
        out.write(os.environ.get("UPAAS_REVISION", "unknown") + "\n")


class Hello(BaseHTTPRequestHandler):
    def do_GET(self):
        with open(os.path.join(HERE, "config", "settings.json")) as f:
            body = json.load(f)["greeting"].encode() + b"\n"
        self.send_response(200)
        self.end_headers()
        self.wfile.write(body)


if __name__ == "__main__":
    if "--migrate" in sys.argv:
        migrate()
    else:
        HTTPServer(("127.0.0.1", int(os.environ.get("PORT", "5000"))), Hello).serve_forever()
