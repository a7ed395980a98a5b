"""check-static-docroot: static files under the DOCUMENT_ROOT each request
names (nginx's `uwsgi_param DOCUMENT_ROOT $document_root`), on ugu and on
the real uWSGI, answer for answer and line for line.

Requests go over the uwsgi protocol, as nginx sends them, with the
DOCUMENT_ROOT vars each case gives (none, one, or two: the last counts).
"""

import re

import pytest

from tests import support
from tests.test_static import build, normalized, utf8

OPTIONS = ["--check-static", "cs", "--static-index", "index.html",
           "--check-static-docroot", "--buffer-size", "16384"]
TOO_LONG = "/" * 4097
APP = "HTTP/1.1 200 OK"

# (method, PATH_INFO, DOCUMENT_ROOT vars, status line, body); SITE is
# the site's folder.
CASES = [
    ("GET", "/a.txt", ["SITE/static"], APP, b"A\n"),
    ("GET", "/a.txt", [], APP, b"app GET /a.txt"),
    ("GET", "/a.txt", [""], APP, b"app GET /a.txt"),
    # Relative to the worker's folder.
    ("GET", "/a.txt", ["static/"], APP, b"A\n"),
    # One uWSGI cannot resolve: the request ends unanswered.
    ("GET", "/a.txt", ["SITE/missing"], "", b""),
    ("GET", "/a.txt", ["SITE/missing", "SITE/static"], APP, b"A\n"),
    ("GET", "/a.txt", ["SITE/static/a.txt/x"], "", b""),
    ("GET", "/a.txt", [TOO_LONG], "", b""),
    # The path ends at a NUL.
    ("GET", "/a.txt", ["SITE/static\0/x"], APP, b"A\n"),
    ("GET", "/a.txt", ["\0SITE/static"], "", b""),
    # After check-static's roots.
    ("GET", "/c.txt", ["SITE/static"], APP, b"CHECK\n"),
    ("GET", "/static/a.txt", ["SITE"], APP, b"CHECK FIRST\n"),
    ("GET", "/link-out", ["SITE/static"], APP, b"app GET /link-out"),
    ("GET", "/../outside/secret.txt", ["SITE/static"], APP,
     b"app GET /../outside/secret.txt"),
    ("GET", "/link-in", ["SITE/static"], APP, b"A\n"),
    ("GET", "/sub", ["SITE/static"], APP, b"SUB INDEX\n"),
    ("GET", "/", ["SITE/static"], APP, b"ROOT INDEX\n"),
    ("HEAD", "/a.txt", ["SITE/static"], APP, b""),
    ("POST", "/a.txt", ["SITE/static"], APP, b"app POST /a.txt"),
    ("GET", "/x.txt", [utf8("SITE/wörld")], APP, b"UTF8\n"),
    ("GET", "/x.txt", [utf8("SITE/nö")], "", b""),
]

LINES = [
    "realpath() of SITE/missing failed: No such file or directory "
    "[core/utils.c line 3640]",
    "realpath() of SITE/static/a.txt/x failed: Not a directory "
    "[core/utils.c line 3640]",
    "invalid path size: 4097 (max 4096)",
    "realpath() of  failed: No such file or directory "
    "[core/utils.c line 3640]",
    "[uwsgi-fileserve] security error: SITE/outside/secret.txt is not "
    "under SITE/static or a safe path",
    "[uwsgi-fileserve] security error: SITE/outside/secret.txt is not "
    "under SITE/cs or a safe path",
    "[uwsgi-fileserve] security error: SITE/outside/secret.txt is not "
    "under SITE/static or a safe path",
    "realpath() of SITE/nö failed: No such file or directory "
    "[core/utils.c line 3640]",
]


def ask(port, site, method, path, roots):
    """(status line, body) of one request with these DOCUMENT_ROOTs."""
    extra = [("DOCUMENT_ROOT", root.replace("SITE", utf8(str(site))))
             for root in roots]
    raw = support.uwsgi_request(port, path, method, extra_vars=extra)
    status, _, body = support.split_response(raw)
    return status, body


def request_line(line):
    """A request line without the size of its vars (the site's path is
    in them)."""
    return re.sub(r"(\{\d+ vars) in \d+ bytes\}", r"\1}", line)


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_request_names_its_own_root(start_server, tmp_path, server):
    """After check-static and the maps, the file under the request's
    DOCUMENT_ROOT, resolved for each request (relative to the worker's
    folder, symlinks followed, the file kept inside it); a root that
    cannot be resolved ends the request unanswered, logged as a 500 no
    app served."""
    build(tmp_path)
    (tmp_path / "wörld").mkdir()
    (tmp_path / "wörld" / "x.txt").write_text("UTF8\n")
    port = support.free_port()
    p = start_server(server, ["--socket", f"127.0.0.1:{port}", "--master",
                              "--wsgi-file", "app.py", *OPTIONS],
                     cwd=tmp_path)
    p.wait_for_log(r"spawned uWSGI worker 1")
    for method, path, roots, status, body in CASES:
        assert ask(port, tmp_path, method, path, roots) == (status, body), \
            (method, path, roots)
    p.wait_for_log(r"=> generated", count=len(CASES))
    lines = [request_line(line) for line in normalized(p.output(), tmp_path)]
    assert [line for line in lines if "=> gen" not in line] == [
        "[uwsgi-static] added check for cs", *LINES]
    unanswered = [line for line in lines if "HTTP/1.1 500" in line]
    assert unanswered == [
        f"[app: -1|req: -1/{n}] 127.0.0.1 () {{22 vars}} GET {path} => "
        f"generated 0 bytes (HTTP/1.1 500) 0 headers in 0 bytes "
        f"(0 switches on core 0)"
        for n, path in ((5, "/a.txt"), (7, "/a.txt"), (8, "/a.txt"),
                        (10, "/a.txt"), (21, "/x.txt"))]
    # A file served, its index file's name added to PATH_INFO.
    assert "[app: -1|req: -1/16] 127.0.0.1 () {24 vars} GET /sub => " \
           "generated 10 bytes via sendfile() (HTTP/1.1 200) 3 headers " \
           "in 110 bytes (0 switches on core 0)" in lines
