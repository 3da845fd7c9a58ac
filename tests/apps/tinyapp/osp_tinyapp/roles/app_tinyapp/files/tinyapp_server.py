"""TinyApp: a WSGI app served on a Unix socket by the standard library alone.

GET /health answers {"app": "tinyapp", "version": ..., "files": <number of files>};
GET /files lists the uploaded files (paths under the files directory).
Usage: tinyapp_server.py SOCKET FILES_DIR VERSION
"""

from __future__ import annotations

import json
import os
import socketserver
import sys
from wsgiref.simple_server import WSGIRequestHandler


def listing(files_dir: str) -> list[str]:
    out = []
    for top, _dirs, names in os.walk(files_dir):
        out += [os.path.relpath(os.path.join(top, n), files_dir) for n in names]
    return sorted(out)


def make_app(files_dir: str, version: str):
    def app(environ, start_response):
        path = environ.get("PATH_INFO", "/")
        if path == "/health":
            body = {"app": "tinyapp", "version": version, "files": len(listing(files_dir))}
        elif path == "/files":
            body = {"files": listing(files_dir)}
        else:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found\n"]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(body).encode()]

    return app


class Handler(WSGIRequestHandler):
    def setup(self) -> None:
        super().setup()
        self.client_address = ("unix", 0)  # wsgiref reads a host out of it


class Server(socketserver.ThreadingMixIn, socketserver.UnixStreamServer):
    daemon_threads = True

    def __init__(self, path: str, app) -> None:
        if os.path.exists(path):
            os.unlink(path)
        super().__init__(path, Handler)
        os.chmod(path, 0o660)
        self.application = app
        self.base_environ = {
            "SERVER_NAME": "tinyapp",
            "SERVER_PORT": "0",
            "GATEWAY_INTERFACE": "CGI/1.1",
            "REMOTE_HOST": "",
            "CONTENT_LENGTH": "",
            "SCRIPT_NAME": "",
        }

    def get_app(self):
        return self.application


if __name__ == "__main__":
    socket_path, files, app_version = sys.argv[1:4]
    Server(socket_path, make_app(files, app_version)).serve_forever()
