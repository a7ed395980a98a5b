"""A config's bytes as written: an INI file saved in Latin-1 (or with any
byte that is not UTF-8) starts, and what its values put on the wire, in
the log or in the environment are the file's own bytes, as in uWSGI;
UTF-8 text likewise goes out as its UTF-8 bytes.  Run on ugu and on the
real uWSGI with the same file."""

import re

import pytest

from tests import support

APP = b'''
import os

def application(environ, start_response):
    value = os.environb.get(b"GREETING", b"-")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [value]
'''
SERVERS = ["ugu", "uwsgi"]


def _ini(port):
    """Latin-1 bytes (\\xe9) and UTF-8 ones (\\xc3\\xa9) in values that
    reach the environment, a header, a route's regexp and condition, a
    route's log line and the request line."""
    return b"\n".join([
        b"[uwsgi]",
        b"master = true",
        b"http-socket = 127.0.0.1:%d" % port,
        b"wsgi-file = app.py",
        b"env = GREETING=caf\xe9",
        b"add-header = X-Latin: caf\xe9",
        b"route = ^/x addheader:X-Utf: caf\xc3\xa9",
        b"route = ^/caf\xc3\xa9$ break:403",
        b"route-if = equal:${PATH_INFO};/caf\xe9 break:404",
        b"route = ^/log log:route caf\xc3\xa9 ${PATH_INFO}",
        b"log-format = line %(uri) caf\xe9 caf\xc3\xa9",
        b""])


_get = support.http10_get


@pytest.mark.parametrize("server", SERVERS)
def test_values_keep_the_bytes_the_file_holds(start_server, tmp_path,
                                               server):
    (tmp_path / "app.py").write_bytes(APP)
    port = support.free_port()
    (tmp_path / "app.ini").write_bytes(_ini(port))
    p = start_server(server, ["--ini", "app.ini"], cwd=tmp_path)
    support.wait_for_port(port)
    answer = _get(port, "/x")
    assert answer.startswith(b"HTTP/1.0 200 ") or \
        answer.startswith(b"HTTP/1.1 200 ")
    assert b"\r\nX-Latin: caf\xe9\r\n" in answer
    assert b"\r\nX-Utf: caf\xc3\xa9\r\n" in answer
    assert answer.endswith(b"\r\n\r\ncaf\xe9")
    assert re.match(rb"HTTP/1\.[01] 403 ", _get(port, "/caf%C3%A9"))
    assert re.match(rb"HTTP/1\.[01] 404 ", _get(port, "/caf%E9"))
    assert re.match(rb"HTTP/1\.[01] 200 ", _get(port, "/log"))
    p.wait_for_log("line /log ")
    p.stop()
    out = p.log_path.read_bytes()
    assert b"\nroute caf\xc3\xa9 /log\n" in out
    assert b"\nline /x caf\xe9 caf\xc3\xa9\n" in out
