"""honour-range: Range requests for static files, read as uWSGI reads
them (side by side with the real uWSGI over the uwsgi protocol), and the
places ugu does not follow it (ranges.py's docstring)."""

import email.utils
import os
import socket

import pytest

from tests import support
from tests.test_static import normalized
from ugu.vassal import ranges
from ugu.vassal.ranges import UNSATISFIABLE

APP = """def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"app"]
"""
TEXT = "hello world\n!"     # 13 bytes
# Range values whose answers uWSGI and ugu share.
SHARED = ["bytes=0-4", "bytes=-3", "bytes=3-", "bytes=0-100", "bytes=0-12",
          "bytes=12-12", "bytes=13-", "bytes=5-3", "items=0-5", "bytes=-0",
          "bytes=0-4,6-8", "bytes = 0-4", "BYTES=0-4", "bytes=x-4",
          "bytes=-", "bytes=7"]


@pytest.fixture
def site(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "a.txt").write_text(TEXT)
    (tmp_path / "static" / "empty.txt").write_text("")
    return tmp_path


def _served(procs, argv, site, options, requests):
    """(status, headers, body) of each (path, Range) request, then the
    request lines logged, from one server on a uwsgi socket."""
    port = support.free_port()
    p = procs.start([*argv, "--socket", f"127.0.0.1:{port}", "--master",
                     "--wsgi-file", "app.py", "--check-static", "static",
                     *options], cwd=site)
    p.wait_for_log(r"spawned uWSGI worker 1")
    support.wait_for_port(port)
    answers = []
    for path, value in requests:
        headers = [("Range", value)] if value is not None else []
        raw = support.uwsgi_request(port, path, headers=headers)
        answers.append(support.split_response(raw))
    p.wait_for_log(r"=> generated", count=len(requests))
    p.stop()
    return answers, normalized(p.output(), site)


@pytest.mark.parametrize("options", [["--honour-range"],
                                     ["--honour-range",
                                      "--offload-threads", "1"],
                                     []],
                         ids=["sendfile", "offload", "off"])
def test_ranges_are_answered_as_uwsgi_answers_them(procs, uwsgi_binary, site,
                                                   options):
    requests = [("/a.txt", value) for value in SHARED]
    requests += [("/empty.txt", "bytes=0-"), ("/empty.txt", "bytes=1-"),
                 ("/a.txt", None)]
    ours = _served(procs, support.UGU, site, options, requests)
    theirs = _served(procs, [uwsgi_binary], site, options, requests)
    for request, mine, real in zip(requests, ours[0], theirs[0]):
        # uWSGI's offload thread sends the file to its end, past the
        # range's Content-Length (ranges.py): ugu sends the range alone.
        assert mine == _cut(mine)
        assert (request, mine) == (request, _cut(real))
    assert ours[1] == theirs[1]
    if options:
        status, headers, body = ours[0][0]
        assert status == "HTTP/1.1 206 Partial Content"
        assert headers["content-range"] == "bytes 0-4/13"
        assert body == b"hello"
        assert "(HTTP/1.1 200) 4 headers" in ours[1][1]
    else:
        assert all(answer[0].endswith("200 OK") for answer in ours[0])


def _cut(answer):
    """The answer, its body cut at its Content-Length."""
    status, headers, body = answer
    if "content-length" in headers:
        body = body[:int(headers["content-length"])]
    return status, headers, body


def _get(port, path, *headers):
    return support.split_response(support.uwsgi_request(
        port, path, headers=list(headers)))


@pytest.fixture
def served(procs, site):
    port = support.free_port()
    p = procs.ugu("--socket", f"127.0.0.1:{port}", "--wsgi-file", "app.py",
                  "--check-static", "static", "--honour-range", cwd=site)
    support.wait_for_port(port)
    return port, p


def test_a_suffix_longer_than_the_file_is_the_whole_file(served):
    """uWSGI drops the connection (and for an empty file sends a 206 it
    cannot fill)."""
    port, _ = served
    assert _get(port, "/a.txt", ("Range", "bytes=-20"))[2] == TEXT.encode()
    status, headers, body = _get(port, "/empty.txt", ("Range", "bytes=-1"))
    assert (status, headers["content-length"], body) == \
        ("HTTP/1.1 200 OK", "0", b"")


def test_if_range_serves_the_range_only_for_the_same_file(served, site):
    """uWSGI 2.0 never reads If-Range (DEVIATIONS 12)."""
    port, _ = served
    mtime = os.stat(site / "static" / "a.txt").st_mtime
    same = email.utils.formatdate(mtime, usegmt=True)
    older = email.utils.formatdate(mtime - 60, usegmt=True)
    rng = ("Range", "bytes=0-4")
    assert _get(port, "/a.txt", rng, ("If-Range", same))[0] == \
        "HTTP/1.1 206 Partial Content"
    for validator in (older, '"an-etag"'):
        status, _, body = _get(port, "/a.txt", rng, ("If-Range", validator))
        assert (status, body) == ("HTTP/1.1 200 OK", TEXT.encode())
    # Another version of the file: its whole, not a 416 for its old end.
    assert _get(port, "/a.txt", ("Range", "bytes=20-"),
                ("If-Range", older))[0] == "HTTP/1.1 200 OK"


def test_a_304_comes_before_the_range(served, site):
    port, _ = served
    mtime = os.stat(site / "static" / "a.txt").st_mtime
    status, _, _ = _get(port, "/a.txt", ("Range", "bytes=0-4"),
                        ("If-Modified-Since",
                         email.utils.formatdate(mtime, usegmt=True)))
    assert status == "HTTP/1.1 304 Not Modified"


def _http_socket(procs, site, *options):
    port = support.free_port()
    procs.ugu("--http-socket", f"127.0.0.1:{port}", "--wsgi-file", "app.py",
              "--check-static", "static", "--honour-range", *options,
              cwd=site)
    support.wait_for_port(port)
    return port


def _http_exchange(port, requests):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(requests)
        return support.read_to_eof(s)


def test_ranges_keep_an_http_connection_open(procs, site):
    port = _http_socket(procs, site)
    raw = _http_exchange(
        port, b"GET /a.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=6-10\r\n\r\n"
        b"GET /a.txt HTTP/1.1\r\nHost: t\r\nRange: bytes=-1\r\n"
        b"Connection: close\r\n\r\n")
    first, second = raw.split(b"HTTP/1.1 ")[1:]
    assert first.startswith(b"206 Partial Content\r\n")
    assert b"\r\nContent-Range: bytes 6-10/13\r\n" in first
    assert first.endswith(b"\r\n\r\nworld")
    assert b"\r\nContent-Range: bytes 12-12/13\r\n" in second
    assert second.endswith(b"\r\n\r\n!")


def test_an_offload_thread_sends_the_range_alone(procs, site):
    port = _http_socket(procs, site, "--offload-threads", "1")
    raw = _http_exchange(port, b"GET /a.txt HTTP/1.1\r\nHost: t\r\n"
                         b"Range: bytes=3-5\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 206 Partial Content\r\n")
    assert raw.endswith(b"\r\n\r\nlo ")


@pytest.mark.parametrize("header, size, expected", [
    ("bytes=0-4", 13, (0, 4)),
    ("bytes=-3", 13, (10, 12)),
    ("bytes=3-", 13, (3, 12)),
    ("bytes=0-", 13, None),
    ("bytes=0-99999999999999999999999", 13, None),
    ("bytes=13-", 13, UNSATISFIABLE),
    ("bytes=0-", 0, None),
    ("bytes=0-0", 0, None),
    ("bytes=1-", 0, UNSATISFIABLE),
    ("bytes=-20", 13, None),
    ("bytes=-1", 0, None),
    ("bytes=0-4x", 13, UNSATISFIABLE),
    ("bytes=0-\u0664", 13, UNSATISFIABLE),
    ("bytes=1-2-3", 13, UNSATISFIABLE),
    ("bytes=--5", 13, UNSATISFIABLE),
])
def test_range_values(header, size, expected):
    assert ranges.fit(ranges.requested(header), size) == expected
