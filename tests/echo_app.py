"""The WSGI app the router and http-socket tests serve, one path per case.

Copied into each test's folder as app.py and loaded by the worker under
test (real uWSGI's or ugu's), so it uses the standard library only.
"""

import hashlib
import json


def application(environ, start_response):
    path = environ["PATH_INFO"]
    if path == "/env":
        body = environ["wsgi.input"].read()
        env = {k: v for k, v in environ.items() if isinstance(v, str)}
        env["body"] = body.decode("latin-1")
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(env).encode()]
    if path == "/echo":
        body = environ["wsgi.input"].read()
        digest = hashlib.sha256(body).hexdigest()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d %s" % (len(body), digest.encode())]
    if path == "/gz":
        start_response("200 OK", [("Content-Type", "text/html"),
                                  ("uWSGI-Encoding", "gzip")])
        return [b"<p>compress me</p>" * 40]
    if path == "/gzcl":
        page = b"<p>sized</p>" * 40
        start_response("200 OK", [("Content-Type", "text/html"),
                                  ("Content-Length", str(len(page))),
                                  ("uWSGI-Encoding", "gzip")])
        return [page]
    if path == "/boom":
        raise RuntimeError("boom before the response")
    if path == "/short":
        start_response("200 OK", [("Content-Length", "100")])
        return [b"only this"]
    if path == "/app-closes":
        start_response("200 OK", [("Connection", "close"),
                                  ("Content-Length", "3")])
        return [b"bye"]
    if path == "/no-content-with-body":
        start_response("204 No Content", [("Content-Type", "text/plain")])
        return [b"a 204 has no body"]
    if path == "/own-chunks":
        start_response("200 OK", [("Transfer-Encoding", "chunked")])
        return [b"5\r\nhello\r\n0\r\n\r\n"]
    if path == "/own-chunks-file":
        # Not chunked at all: whatever the app frames is its own business.
        start_response("200 OK", [("Transfer-Encoding", "chunked")])
        return environ["wsgi.file_wrapper"](open(__file__, "rb"))
    if path == "/file":
        start_response("200 OK", [("Content-Type", "text/plain")])
        return environ["wsgi.file_wrapper"](open(__file__, "rb"))
    if path == "/latin-1":
        start_response("200 OK", [("X-Word", "caf\xe9"),
                                  ("Content-Length", "2")])
        return [b"ok"]
    if path == "/cookie-space":
        # Django starts each Set-Cookie value with a space.
        start_response("200 OK", [("Set-Cookie", " a=1; Path=/")])
        return iter([b"o", b"k"])
    if path == "/cookie-space-empty":
        start_response("302 Found", [("Location", "/x"),
                                     ("Content-Length", "0"),
                                     ("Set-Cookie", " a=1; Path=/")])
        return [b""]
    if path == "/bad-name-empty":
        start_response("200 OK", [("Bad Name", "x")])
        return []
    if path == "/chunked-read":
        import uwsgi
        chunks = []
        while chunk := uwsgi.chunked_read(5):
            chunks.append(chunk.decode("latin-1"))
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(chunks).encode()]
    if path == "/big":
        # More than the connections' buffers hold.
        start_response("200 OK", [("Content-Length", str(4 << 20))])
        return [b"x" * (4 << 20)]
    if path == "/ignore-body":
        start_response("200 OK", [("Content-Length", "7")])
        return [b"ignored"]
    start_response("200 OK", [("Content-Type", "text/plain"),
                              ("X-App", "test")])
    return [b"hello from " + path.encode("latin-1")]
