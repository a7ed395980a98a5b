"""The app every setup serves; each workload has its own path.

Kept to the standard library except W3, which is a small Flask endpoint, as
the issue asks.  Copied into each setup's site folder as `code/app.py`.
"""

import os

from flask import Flask, jsonify

HELLO = b"Hello World!"
BIG = b"x" * (1 << 20)
STATIC = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                      "static")

flask_app = Flask(__name__)


@flask_app.route("/json")
def json_endpoint():
    return jsonify(message="Hello World!", items=[1, 2, 3], ok=True)


def hello(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(HELLO)))])
    return [HELLO]


def big(environ, start_response):
    start_response("200 OK", [("Content-Type", "application/octet-stream"),
                              ("Content-Length", str(len(BIG)))])
    return [BIG]


def upload(environ, start_response):
    """Read the whole body, answer its size."""
    stream, left, size = environ["wsgi.input"], _length(environ), 0
    while left > 0:
        chunk = stream.read(min(left, 65536))
        if not chunk:
            break
        size += len(chunk)
        left -= len(chunk)
    body = str(size).encode()
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("Content-Length", str(len(body)))])
    return [body]


def static(environ, start_response):
    """For servers without a static file handler (gunicorn)."""
    name = os.path.basename(environ["PATH_INFO"])
    f = open(os.path.join(STATIC, name), "rb")
    start_response("200 OK", [("Content-Type", "text/css"),
                              ("Content-Length",
                               str(os.fstat(f.fileno()).st_size))])
    return environ["wsgi.file_wrapper"](f)


def _length(environ):
    text = environ.get("CONTENT_LENGTH") or "0"
    return int(text) if text.isdigit() else 0


ROUTES = {"/": hello, "/big": big, "/upload": upload, "/bench.css": static}


def application(environ, start_response):
    handler = ROUTES.get(environ.get("PATH_INFO") or "/", flask_app)
    return handler(environ, start_response)
