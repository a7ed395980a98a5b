"""error-page-500, -404 and -403: the server's own error answers carry an
HTML page, the first of the option's files that can be read; the 500 of a
request no app is loaded for byte for byte as uWSGI's."""

import socket

import pytest

from tests import support

PAGE = b"<html><body>we are sorry</body></html>\n"

FAILING_APP = """def application(environ, start_response):
    if environ["PATH_INFO"] == "/fail":
        raise RuntimeError("failed")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"app"]
"""


def http_get(port, path):
    """The raw answer to an HTTP/1.0 GET, up to the close."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        return support.read_to_eof(s)


def no_app_answers(procs, argv, tmp_path, pages):
    http, uwsgi = support.free_port(), support.free_port()
    options = [arg for page in pages for arg in ("--error-page-500", page)]
    p = procs.start([*argv, "--http-socket", f"127.0.0.1:{http}",
                     "--socket", f"127.0.0.1:{uwsgi}", "--master",
                     *options], cwd=tmp_path)
    p.wait_for_log(r"spawned uWSGI worker 1")
    support.wait_for_port(http)
    answers = [http_get(http, "/x"), support.uwsgi_request(uwsgi, "/y")]
    p.wait_for_log("no python application found", count=2)
    p.stop()
    return answers


@pytest.mark.parametrize("pages", [
    ["missing.html", "page.html", "other.html"], ["missing.html"], []],
    ids=["second-file", "none-there", "unset"])
def test_no_app_500_carries_the_page_as_uwsgis(procs, uwsgi_binary,
                                               tmp_path, pages):
    (tmp_path / "page.html").write_bytes(PAGE)
    (tmp_path / "other.html").write_bytes(b"OTHER")
    ours = no_app_answers(procs, support.UGU, tmp_path, pages)
    theirs = no_app_answers(procs, [uwsgi_binary], tmp_path, pages)
    assert ours[1] == theirs[1]
    # Over HTTP, ugu frames the head as HTTP/1.1 always frames it.
    for answer in ours[0], theirs[0]:
        status, headers, body = support.split_response(answer)
        assert status.endswith(" 500 Internal Server Error")
        assert (headers["content-type"], body) == (
            support.split_response(ours[1])[1]["content-type"],
            support.split_response(ours[1])[2])
    if "page.html" in pages:
        assert ours[1] == (b"HTTP/1.1 500 Internal Server Error\r\n"
                           b"Connection: close\r\n"
                           b"Content-Type: text/html\r\n"
                           b"Content-Length: %d\r\n\r\n%s"
                           % (len(PAGE), PAGE))
    else:
        assert ours[1].endswith(b"text/plain\r\n\r\nInternal Server Error")


def test_own_500_and_404_carry_the_pages(procs, tmp_path):
    """ugu's answers where uWSGI sends none: an app's failure (500) and
    a static: route without its file (404)."""
    (tmp_path / "app.py").write_text(FAILING_APP)
    (tmp_path / "500.html").write_bytes(PAGE)
    (tmp_path / "404.html").write_bytes(b"<p>not here</p>")
    port = support.free_port()
    p = procs.ugu("--http-socket", f"127.0.0.1:{port}", "--master",
                  "--wsgi-file", "app.py", "--error-page-500", "500.html",
                  "--error-page-404", "404.html", "--error-page-403",
                  "403.html", "--route", "^/gone$ static:/nowhere/file",
                  cwd=tmp_path)
    p.wait_for_log(r"spawned uWSGI worker 1")
    support.wait_for_port(port)
    failed = http_get(port, "/fail")
    assert failed.startswith(b"HTTP/1.0 500 Internal Server Error\r\n")
    assert b"Content-Type: text/html\r\n" in failed
    assert failed.endswith(b"\r\n\r\n" + PAGE)
    gone = http_get(port, "/gone")
    assert gone.startswith(b"HTTP/1.0 404 Not Found\r\n")
    assert b"Content-Length: 15\r\n" in gone
    assert gone.endswith(b"\r\n\r\n<p>not here</p>")
    assert http_get(port, "/").endswith(b"\r\n\r\napp")
