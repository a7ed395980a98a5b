"""An app for the tests of the uwsgi module's shared-memory and RPC
functions: each request evaluates the Python expressions it is sent
(a JSON list, as the body of a POST) with the app's module as globals,
and answers the repr of each result, or of the exception it raised.
Started the same way on ugu and on the real uWSGI."""

import json
import textwrap
import urllib.request

from tests.support import free_port, wait_for_port, write_ini

APP = textwrap.dedent('''\
    import json
    import os
    import threading
    import time

    import uwsgi


    def wait_for(check, seconds=10):
        """check()'s first true answer, polled until `seconds` pass."""
        deadline = time.monotonic() + seconds
        while not (found := check()) and time.monotonic() < deadline:
            time.sleep(0.01)
        return found


    def hello(*args):
        return b"hello " + b",".join(args)


    def fail(*args):
        raise RuntimeError("boom")


    def text(*args):
        return "text"


    def big(n):
        return b"y" * int(n)


    for name, function in (("hello", hello), ("fail", fail),
                           ("text", text), ("big", big)):
        uwsgi.register_rpc(name, function)


    def application(environ, start_response):
        size = int(environ.get("CONTENT_LENGTH") or 0)
        found = []
        for code in json.loads(environ["wsgi.input"].read(size)):
            try:
                found.append(repr(eval(code, globals())))
            except BaseException as e:
                found.append(f"{type(e).__name__}: {e}")
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(found).encode()]
''')


def start(start_server, tmp_path, server, *pairs):
    """The app on `server` with the INI's `pairs`; its HTTP port."""
    (tmp_path / "app.py").write_text(APP)
    port = free_port()
    ini = write_ini(tmp_path / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"), ("master", "true"),
        ("wsgi-file", "app.py"), *pairs])
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path)
    wait_for_port(port)
    return p, port


def run(port, *codes, timeout=15):
    """The answers to `codes`, evaluated in one request."""
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/", data=json.dumps(codes).encode(),
        method="POST")
    with urllib.request.urlopen(request, timeout=timeout) as answer:
        return json.loads(answer.read())


def one(port, code, timeout=15):
    return run(port, code, timeout=timeout)[0]
