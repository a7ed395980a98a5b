"""`http-socket`: HTTP straight into the workers, end to end.

A real `ugu --http-socket` on a free port, driven by raw sockets and
`requests`; where uWSGI answers wrongly, the DEVIATIONS behaviour is
checked (400/431 instead of the app's page or a reset, every pipelined
request answered, chunked bodies de-chunked, HEAD without a body).
"""

import hashlib
import json
import re
import shutil
import socket
import struct
import threading
import time

import h11
import pytest
import requests

from tests import support
from ugu import protocol
from ugu.http import plain
from ugu.http.vars import ListenerVars, RequestVars
from ugu.vassal import plain_http
from ugu.vassal.transport import head_bytes
from tests.support import read_to_eof
from tests.test_router import (ABSURD_LENGTHS, BARE_LF_CHUNKED,
                               assert_pipelined_in_order, read_exactly,
                               read_responses, slow_client)

TIMEOUT = 2


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    folder = tmp_path_factory.mktemp("http-socket")
    shutil.copy(support.ECHO_APP, folder / "app.py")
    (folder / "static").mkdir()
    (folder / "static" / "page.txt").write_bytes(b"static text\n" * 100)
    return folder


@pytest.fixture(scope="module", params=["plain", "h11"])
def parser(request):
    """Every test runs on both paths of a request: the plain fast path
    and h11 (forced by UGU_HTTP_SOCKET_PARSER)."""
    return request.param


@pytest.fixture(scope="module")
def server(site, parser):
    """ugu with an http-socket: 2 cores, short socket-timeout."""
    port = support.free_port()
    process = support.ugu(
        "--master", "--http-socket", f"127.0.0.1:{port}", "--wsgi-file",
        str(site / "app.py"), "--processes", "1", "--threads", "2",
        "--socket-timeout", str(TIMEOUT), "--check-static",
        str(site / "static"), "--offload-threads", "1", cwd=site,
        env={"UGU_HTTP_SOCKET_PARSER": parser})
    try:
        process.wait_for_log(r"spawned uWSGI worker 1")
        support.wait_for_port(port)
    except BaseException:
        process.stop()
        raise
    process.port = port
    process.url = f"http://127.0.0.1:{port}"
    yield process
    process.stop()


def exchange(port, data, timeout=10):
    """Send raw bytes, half-close, read until the server closes."""
    with socket.create_connection(("127.0.0.1", port),
                                  timeout=timeout) as s:
        s.sendall(data)
        s.shutdown(socket.SHUT_WR)
        return read_to_eof(s)


def served(server, path="/next"):
    """The server answers a fresh connection normally."""
    r = requests.get(f"{server.url}{path}", timeout=10)
    return r.status_code == 200 and r.text == f"hello from {path}"


def log_count(server, text):
    return server.output().count(text)


# Requests.

def test_get_and_keepalive_session(server):
    with requests.Session() as session:
        for n in range(3):
            r = session.get(f"{server.url}/page/{n}?q=1", timeout=10)
            assert r.text == f"hello from /page/{n}"


def test_app_sees_the_router_vars(server):
    env = requests.get(f"{server.url}/env?a=%20b", timeout=10,
                       headers={"X-Other": "o"}).json()
    assert env["PATH_INFO"] == "/env"
    assert env["QUERY_STRING"] == "a=%20b"
    assert env["REQUEST_URI"] == "/env?a=%20b"
    assert env["SERVER_PORT"] == str(server.port)
    assert env["HTTP_X_OTHER"] == "o"
    assert env["REMOTE_ADDR"] == "127.0.0.1"


def test_post_body(server):
    body = bytes(range(256)) * 4000
    r = requests.post(f"{server.url}/echo", data=body, timeout=10)
    assert r.text == f"{len(body)} {hashlib.sha256(body).hexdigest()}"


def test_chunked_body_reaches_the_app_dechunked(server):
    pieces = [b"first,", b"second,", b"x" * 100000]
    env = requests.post(f"{server.url}/env", data=iter(pieces),
                        timeout=10).json()
    assert env["body"] == b"".join(pieces).decode()
    assert env["CONTENT_LENGTH"] == str(sum(map(len, pieces)))
    assert "HTTP_TRANSFER_ENCODING" not in env


def test_pipelined_requests_are_all_answered_in_order(server):
    assert_pipelined_in_order(server.port)


def test_pipelined_after_an_unread_body(server):
    data = (b"POST /ignore-body HTTP/1.1\r\nHost: t\r\nContent-Length: 5"
            b"\r\n\r\nxxxxxGET /after HTTP/1.1\r\nHost: t\r\n\r\n")
    with socket.create_connection(("127.0.0.1", server.port),
                                  timeout=10) as s:
        s.sendall(data)
        (_, first), (_, second) = read_responses(s, ["POST", "GET"])
    assert (first, second) == (b"ignored", b"hello from /after")


def test_pipelined_after_an_unread_chunked_body(server):
    """The de-chunked body the app did not read is drained from its
    spool; the next request is answered (uWSGI answers the first)."""
    data = (b"POST /ignore-body HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
            b"chunked\r\n\r\n5\r\nxxxxx\r\n0\r\n\r\n"
            b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n")
    with socket.create_connection(("127.0.0.1", server.port),
                                  timeout=10) as s:
        s.sendall(data)
        (_, first), (_, second) = read_responses(s, ["POST", "GET"])
    assert (first, second) == (b"ignored", b"hello from /after")


def test_head_carries_no_body(server):
    with socket.create_connection(("127.0.0.1", server.port),
                                  timeout=10) as s:
        s.sendall(b"HEAD /x HTTP/1.1\r\nHost: t\r\n\r\n"
                  b"GET /after HTTP/1.1\r\nHost: t\r\n\r\n")
        (head, head_body), (_, get_body) = read_responses(
            s, ["HEAD", "GET"])
    assert head.status_code == 200
    assert head_body == b""
    # Stray body bytes would have been read as the next response.
    assert get_body == b"hello from /after"


def test_bare_lf_is_served_at_once(server):
    started = time.monotonic()
    raw = exchange(server.port, b"GET /lf HTTP/1.1\nHost: t\n\n")
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert raw.endswith(b"hello from /lf\r\n0\r\n\r\n")
    assert time.monotonic() - started < TIMEOUT


def test_obs_fold_never_reaches_the_app_raw(server):
    raw = exchange(server.port, b"GET /env HTTP/1.1\r\nHost: t\r\n"
                   b"X-Fold: a\r\n  b\r\n\r\n")
    body = raw.partition(b"\r\n\r\n")[2].split(b"\r\n")[1]
    assert json.loads(body)["HTTP_X_FOLD"] == "a b"


def test_expect_100_continue_is_answered(server):
    with socket.create_connection(("127.0.0.1", server.port),
                                  timeout=10) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 4"
                  b"\r\nExpect: 100-continue\r\n\r\n")
        expected = b"HTTP/1.1 100 Continue\r\n\r\n"
        assert read_exactly(s, len(expected)) == expected
        s.sendall(b"body")
        s.shutdown(socket.SHUT_WR)
        raw = read_to_eof(s)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert hashlib.sha256(b"body").hexdigest().encode() in raw


def test_log_line_counts_the_vars_as_a_block(server):
    request = (b"GET /a/../env?x=1 HTTP/1.1\r\nHost: t\r\nX-Twice: 1\r\n"
               b"Accept: */*\r\nx-twice: 2\r\nContent-Type: text/x\r\n"
               b"Connection: close\r\n\r\n")
    with socket.create_connection(("127.0.0.1", server.port),
                                  timeout=10) as s:
        s.sendall(request)
        env = json.loads(read_to_eof(s).split(b"\r\n")[-4])
    expected = {
        "REQUEST_METHOD": "GET", "PATH_INFO": "/env",
        "REQUEST_URI": "/a/../env?x=1", "QUERY_STRING": "x=1",
        "SERVER_PROTOCOL": "HTTP/1.1", "SCRIPT_NAME": "",
        "SERVER_NAME": socket.gethostname(), "SERVER_PORT": str(server.port),
        "REMOTE_ADDR": "127.0.0.1", "HTTP_HOST": "t",
        "HTTP_X_TWICE": "1, 2", "HTTP_ACCEPT": "*/*",
        "CONTENT_TYPE": "text/x", "HTTP_CONNECTION": "close"}
    assert {k: env[k] for k in expected} == expected
    # The router's own vars: an http-socket has no router in front.
    assert "UWSGI_ROUTER" not in env and "REMOTE_PORT" not in env
    size = sum(4 + len(k) + len(v) for k, v in expected.items())
    server.wait_for_log(rf"\{{{2 * len(expected)} vars in {size} bytes\}} "
                        r"\[[^]]*\] GET /a/\.\./env\?x=1 ")


def serving(procs, site, argv, http_parser=None):
    """An http-socket server (uWSGI's or ugu's) of app.py, once it
    serves; (process, port)."""
    port = support.free_port()
    env = {"UGU_HTTP_SOCKET_PARSER": http_parser} if http_parser else None
    server = procs.start(
        [*argv, "--http-socket", f"127.0.0.1:{port}", "--wsgi-file",
         "app.py"], cwd=site, env=env)
    server.wait_for_log(r"spawned uWSGI worker 1")
    support.wait_for_port(port)
    return server, port


VARS_LOGGED = r"\{(\d+) vars in (\d+) bytes\} \[[^]]*\] GET /a/\.\./env"


@pytest.mark.parametrize("http_parser", ["plain", "h11"])
def test_vars_are_uwsgis_http_socket_vars(procs, site, uwsgi_binary,
                                          http_parser):
    """The same request to uWSGI's http-socket and ugu's: the same
    environ (but for the port each listens on) and the same vars count
    and size in the log line."""
    request = (b"GET /a/../env?x=1 HTTP/1.1\r\nHost: t\r\nX-Twice: 1\r\n"
               b"x-twice: 2\r\nContent-Type: text/x\r\n"
               b"Connection: close\r\n\r\n")
    seen = []
    for argv in ([uwsgi_binary], support.UGU):
        server, port = serving(procs, site, argv, http_parser)
        env = json.loads(answer(port, request)[1])
        assert env.pop("SERVER_PORT") == str(port)
        logged = server.wait_for_log(VARS_LOGGED).groups()
        seen.append((env, logged))
    (theirs, their_log), (ours, our_log) = seen
    assert ours == theirs
    assert our_log == their_log


def test_an_http_1_0_request_gets_an_http_1_0_status_line(
        procs, site, uwsgi_binary):
    """uWSGI's http-socket answers in the request's protocol: HTTP/1.0
    to HTTP/1.0 (what HTTP/1.0 clients read in any case).  (The plain
    parser leaves HTTP/1.0 to h11.)"""
    firsts = []
    for argv in ([uwsgi_binary], support.UGU):
        server, port = serving(procs, site, argv)
        raw = exchange(port, b"GET /old HTTP/1.0\r\n\r\n")
        firsts.append(raw.partition(b"\r\n")[0])
    assert firsts == [b"HTTP/1.0 200 OK"] * 2


@pytest.mark.parametrize("how", ["close", "reset"])
@pytest.mark.parametrize("http_parser", ["plain", "h11"])
def test_a_client_leaving_mid_head_is_said_as_by_uwsgis_http_socket(
        procs, site, uwsgi_binary, http_parser, how):
    """Half a request head, then the client closes or resets: one line,
    in the words of uWSGI's parser.  ugu's logged a 400 it could not
    send, or the worker's `error on request` line."""
    said = []
    for argv in ([uwsgi_binary], support.UGU):
        server, port = serving(procs, site, argv, http_parser)
        with socket.create_connection(("127.0.0.1", port),
                                      timeout=10) as s:
            s.sendall(b"GET / HTTP/1.1\r\nHost: t\r\nX-Half")
            if how == "reset":
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                             struct.pack("ii", 1, 0))
            else:
                s.shutdown(socket.SHUT_WR)
        # One core: the request after it is served once it is done.
        exchange(port, b"GET /fence HTTP/1.0\r\n\r\n")
        said.append(server.wait_for_log(
            r"spawned uWSGI worker 1[^\n]*\n((?:.*\n)*?)\[pid: [^\n]* "
            r"GET /fence => ")[1])
    theirs, ours = said
    assert ours == theirs
    assert theirs == {
        "close": "uwsgi_proto_http_parser() -> client closed connection\n",
        "reset": "uwsgi_proto_http_parser(): Connection reset by peer "
                 "[proto/http.c line 463]\n"}[how]


def test_a_file_wrapper_of_no_declared_length_arrives_whole(server):
    """HTTP/1.1 frames it in chunks around each sendfile()."""
    answer = requests.get(f"{server.url}/file", timeout=10)
    assert answer.headers["Transfer-Encoding"] == "chunked"
    assert answer.content == support.ECHO_APP.read_bytes()


BARE_STATUS_APP = """
def application(environ, start_response):
    start_response(environ["QUERY_STRING"], [("Content-Type", "text/plain")])
    return [b"x"]
"""
BARE_CODES = ["200", "207", "226", "308", "404", "418", "421", "509",
              "599"]


def test_a_bare_status_code_gets_uwsgis_reason(procs, tmp_path,
                                               uwsgi_binary):
    (tmp_path / "status.py").write_text(BARE_STATUS_APP)
    seen = []
    for argv in ([uwsgi_binary], support.UGU):
        port = support.free_port()
        procs.start([*argv, "--http-socket", f"127.0.0.1:{port}",
                     "--wsgi-file", "status.py"], cwd=tmp_path)
        support.wait_for_port(port)
        lines = []
        for code in BARE_CODES:
            with socket.create_connection(("127.0.0.1", port),
                                          timeout=10) as s:
                s.sendall(b"GET /?%s HTTP/1.0\r\n\r\n" % code.encode())
                # The version differs (README): the code and reason count.
                lines.append(read_to_eof(s).split(b"\r\n")[0]
                             .split(b" ", 1)[1])
        seen.append(lines)
    assert seen[0] == seen[1]
    assert seen[1][BARE_CODES.index("418")] == b"418 I'm a teapot"


SWITCHES_APP = """
def application(environ, start_response):
    path = environ["PATH_INFO"]
    write = start_response("200 OK", [("Content-Type", "text/plain")])
    if path == "/two":
        return [b"a", b"b"]
    if path == "/three":
        return (x for x in [b"a", b"", b"c"])
    if path == "/none":
        return []
    if path == "/written":
        write(b"x")
        write(b"y")
        return [b"z"]
    if path == "/odd":
        return ["not-bytes", None, b"ok"]
    return environ["wsgi.file_wrapper"](open(__file__, "rb"))
"""
SWITCHES_PATHS = ["/two", "/three", "/none", "/written", "/file", "/odd"]


def test_switches_in_the_log_line_are_uwsgis(procs, tmp_path,
                                              uwsgi_binary):
    """uWSGI counts the items of the response iterable as the request's
    switches (empty ones too; neither write() nor sendfile)."""
    (tmp_path / "app.py").write_text(SWITCHES_APP)
    counts = []
    for argv in ([uwsgi_binary], support.UGU):
        port = support.free_port()
        server = procs.start([*argv, "--http-socket", f"127.0.0.1:{port}",
                              "--wsgi-file", "app.py"], cwd=tmp_path)
        server.wait_for_log(r"spawned uWSGI worker 1")
        support.wait_for_port(port)
        found = []
        for path in SWITCHES_PATHS:
            exchange(port, f"GET {path} HTTP/1.1\r\nHost: t\r\n"
                           f"Connection: close\r\n\r\n".encode())
            line = server.wait_for_log(rf"GET {path} => .*\((\d+) switches")
            found.append(int(line[1]))
        counts.append(found)
        # An item that is not bytes is skipped and named, None silently.
        odd = re.findall(r"\[ERROR\] Unhandled object from iterator: "
                         r"(.*) \(0x[0-9a-f]+\)", server.output())
        assert odd == ["'not-bytes'"]
    assert counts[1] == counts[0] == [2, 3, 0, 1, 0, 3]


def answer(port, request):
    """(h11.Response, body) of one raw GET, parsed by h11: a body cut
    short fails here."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        [(response, body)] = read_responses(s, ["GET"])
    return response, body


def test_response_framing_for_a_closing_client(server):
    raw = exchange(server.port, b"GET /c HTTP/1.1\r\nHost: t\r\n"
                   b"Connection: close\r\n\r\n")
    assert raw == (b"HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\n"
                   b"X-App: test\r\n"
                   b"Transfer-Encoding: chunked\r\nConnection: close\r\n"
                   b"\r\nd\r\nhello from /c\r\n0\r\n\r\n")


def test_app_connection_header_is_framed_by_h11(server):
    with socket.create_connection(("127.0.0.1", server.port),
                                  timeout=10) as s:
        s.sendall(b"GET /app-closes HTTP/1.1\r\nHost: t\r\n\r\n")
        raw = read_to_eof(s)
    assert raw == (b"HTTP/1.1 200 OK\r\nConnection: close\r\n"
                   b"Content-Length: 3\r\n\r\nbye")


def test_app_own_chunks_go_out_as_written(server):
    """An app that frames its body itself: sent as it is, as uWSGI
    sends it, never chunked a second time."""
    raw = exchange(server.port, b"GET /own-chunks HTTP/1.1\r\nHost: t\r\n"
                   b"\r\n")
    assert raw == (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                   b"\r\n5\r\nhello\r\n0\r\n\r\n")


def test_app_own_framing_with_a_file_goes_out_as_written(server, site):
    raw = exchange(server.port, b"GET /own-chunks-file HTTP/1.1\r\n"
                   b"Host: t\r\n\r\n")
    head, _, body = raw.partition(b"\r\n\r\n")
    assert head == b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked"
    assert body == (site / "app.py").read_bytes()


def test_latin_1_header_values_go_out(server):
    raw = exchange(server.port, b"GET /latin-1 HTTP/1.1\r\nHost: t\r\n"
                   b"Connection: close\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 OK\r\nX-Word: caf\xe9\r\n")
    assert raw.endswith(b"\r\n\r\nok")


def test_unsendable_response_gets_a_whole_500_and_cores_live_on(server):
    """A response HTTP cannot carry (a 204 with a body) is replaced by a
    complete 500, as often as it comes, and every core goes on serving."""
    for _ in range(3):
        response, body = answer(server.port, b"GET /no-content-with-body "
                                b"HTTP/1.1\r\nHost: t\r\n\r\n")
        assert response.status_code == 500
        assert body == b"Internal Server Error"
    for _ in range(4):
        assert served(server)


@pytest.mark.parametrize("path, status, body", [
    (b"/cookie-space", 200, b"ok"), (b"/cookie-space-empty", 302, b"")])
def test_spaces_around_a_header_value_go_out(server, parser, path, status,
                                             body):
    """HTTP allows them; the plain path sends them as given, as uWSGI
    does, h11 (which refuses them) gets the value without them."""
    request = b"GET %s HTTP/1.1\r\nHost: t\r\n\r\n" % path
    response, got = answer(server.port, request)
    assert (response.status_code, got) == (status, body)
    assert (b"set-cookie", b"a=1; Path=/") in response.headers
    sent = b"Set-Cookie:  a=1; Path=/\r\n" if parser == "plain" else \
        b"Set-Cookie: a=1; Path=/\r\n"
    assert sent in exchange(server.port, request)


def test_a_raw_utf8_target_reaches_the_app_as_sent(server, parser):
    """As through the router (see test_router): the plain parser passes
    the bytes on, h11 refuses them."""
    target = "/env?q=\u2713".encode()
    response, body = answer(server.port, b"GET %s HTTP/1.1\r\nHost: t\r\n"
                            b"\r\n" % target)
    if parser == "h11":
        assert response.status_code == 400
        return
    assert json.loads(body)["REQUEST_URI"] == target.decode("latin-1")
    # The request log has the bytes as they came, as uWSGI's has.
    server.wait_for_log("GET /env\\?q=\u2713 => ")
    # An answer framed by h11 (the app's Connection header) goes out too.
    raw = exchange(server.port, b"GET /app-closes?q=\xe2\x9c\x93 HTTP/1.1"
                   b"\r\nHost: t\r\n\r\n")
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n") and raw.endswith(b"bye")


def test_unsendable_head_without_a_body_gets_a_500(server):
    """Sent when the app returns, after the body turned out empty: still
    replaced by the 500 rather than leaving the client with nothing."""
    response, body = answer(server.port, b"GET /bad-name-empty HTTP/1.1\r\n"
                            b"Host: t\r\n\r\n")
    assert (response.status_code, body) == (500, b"Internal Server Error")
    assert served(server)


def test_static_file_get_and_head(server):
    r = requests.get(f"{server.url}/page.txt", timeout=10)
    assert r.content == b"static text\n" * 100
    assert r.headers["Content-Length"] == "1200"
    raw = exchange(server.port, b"HEAD /page.txt HTTP/1.1\r\nHost: t\r\n"
                   b"\r\n")
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert raw.endswith(b"\r\n\r\n")
    assert b"Content-Length: 1200\r\n" in raw


# Bad input: an answer (or a clean close), one log line, then served.

MALFORMED = {
    "request-line": b"GARBAGE\r\n\r\n",
    "version": b"GET / HTTP/2.0\r\nHost: t\r\n\r\n",
    "header": b"GET / HTTP/1.1\r\nHost: t\r\nBad Header: x\r\n\r\n",
    "cr-in-value": b"GET / HTTP/1.1\r\nHost: t\r\nX: a\rb\r\n\r\n",
    "fold-first": b"GET / HTTP/1.1\r\n Host: t\r\n\r\n",
    "lengths": b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n"
               b"Content-Length: 2\r\n\r\nab",
    "bad-length": b"POST / HTTP/1.1\r\nHost: t\r\nContent-Length: +2\r\n"
                  b"\r\nab",
    "smuggling": b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: 3\r\n"
                 b"Transfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
    "coding": b"POST / HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: gzip\r\n"
              b"\r\n",
    "chunk-size": b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
                  b"chunked\r\n\r\nzz\r\nabc\r\n0\r\n\r\n",
    "chunk-negative": b"POST /echo HTTP/1.1\r\nHost: t\r\nTransfer-Encoding"
                      b": chunked\r\n\r\n-1\r\nabc\r\n0\r\n\r\n",
}


@pytest.mark.parametrize("request_bytes", MALFORMED.values(),
                         ids=MALFORMED.keys())
def test_400_on_a_malformed_request_then_served(server, request_bytes):
    before = log_count(server, "] 400 ")
    raw = exchange(server.port, request_bytes)
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Connection: close\r\n" in raw
    assert b"hello" not in raw
    assert served(server)
    assert log_count(server, "] 400 ") == before + 1


@pytest.mark.parametrize("request_bytes",
                         [*BARE_LF_CHUNKED.values(), *ABSURD_LENGTHS.values()],
                         ids=[*BARE_LF_CHUNKED, *ABSURD_LENGTHS])
def test_a_malformed_body_framing_is_refused_at_once(server, request_bytes):
    """DEVIATIONS 3: a 400 before the app runs (a bare LF in chunked
    framing, a length no body has), never a wait for the socket-timeout;
    the client does not half-close, which would end the body for h11 at
    once."""
    started = time.monotonic()
    with socket.create_connection(("127.0.0.1", server.port),
                                  timeout=10) as s:
        s.sendall(request_bytes)
        raw = read_to_eof(s)
    assert raw.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    assert b"Connection: close\r\n" in raw
    assert time.monotonic() - started < TIMEOUT
    assert served(server)


@pytest.mark.parametrize("head", [
    b"X-Big: %s\r\n" % (b"a" * 5000),
    b"".join(b"X-Many-%d: %s\r\n" % (n, b"v" * 30) for n in range(100)),
], ids=["one-header", "many-headers"])
def test_431_when_headers_exceed_buffer_size(server, head):
    raw = exchange(server.port, b"GET / HTTP/1.1\r\nHost: t\r\n" + head
                   + b"\r\n")
    assert raw.startswith(b"HTTP/1.1 431 Request Header Fields Too "
                          b"Large\r\n")
    # uWSGI's line first, which log watchers know.
    server.wait_for_log(r"invalid HTTP request size \(max 4096\)\.\.\.skip\n"
                        r".*431 ")
    assert served(server)


def test_431_when_the_vars_exceed_buffer_size(server):
    # Under buffer-size as HTTP, over it as uwsgi vars (each header's
    # var name is longer than its HTTP name).
    head = b"".join(b"a%d:\r\n" % n for n in range(500))
    raw = exchange(server.port, b"GET / HTTP/1.1\r\nHost: t\r\n" + head
                   + b"\r\n")
    assert len(head) < 4096
    assert raw.startswith(b"HTTP/1.1 431 ")
    server.wait_for_log(r"431 uwsgi vars of \d+ bytes exceed buffer-size")
    assert served(server)


def test_client_vanishing_mid_body(server):
    """The app's read fails as through a uwsgi socket, in uWSGI's words."""
    line = (r"\[uwsgi-body-read\] Error reading 993 bytes\. Content-Length: "
            r"1000 consumed: 7 left: 993 message: Client closed connection")
    before = log_count(server, "Error reading 993 bytes")
    with socket.create_connection(("127.0.0.1", server.port),
                                  timeout=10) as s:
        s.sendall(b"POST /echo HTTP/1.1\r\nHost: t\r\nContent-Length: "
                  b"1000\r\n\r\npartial")
    server.wait_for_log(line, count=before + 1)
    server.wait_for_log(r"OSError: error during read\(\d+\) on wsgi\.input",
                        count=before + 1)
    assert served(server)


def test_slowloris_is_timed_out_without_starving_others(server):
    stop, result = threading.Event(), []
    slow = threading.Thread(target=slow_client,
                            args=(server.port, stop, result))
    slow.start()
    try:
        # One core is held by the slow client; the other serves.
        for n in range(5):
            assert served(server, f"/during/{n}")
        server.wait_for_log(rf"request head incomplete after {TIMEOUT} "
                            r"seconds")
    finally:
        stop.set()
        slow.join()
    assert result[0] < TIMEOUT + 3
    assert served(server)


def test_an_unread_body_sent_slowly_does_not_hold_the_core(server):
    """Clients on both cores trickle long bodies the app never reads:
    each core reads on for the next request only a moment, then closes
    (uWSGI's closes at once), so a third client is served."""
    stop, threads, socks = threading.Event(), [], []

    def trickle(sock):
        while not stop.is_set():
            try:
                sock.sendall(b"x" * 100)
            except OSError:
                return
            stop.wait(0.2)
    try:
        for _ in range(2):
            s = socket.create_connection(("127.0.0.1", server.port),
                                         timeout=10)
            socks.append(s)
            s.sendall(b"POST /ignore-body HTTP/1.1\r\nHost: t\r\n"
                      b"Content-Length: 100000000\r\n\r\nxxxx")
            assert read_responses(s, ["POST"])[0][1] == b"ignored"
            threads.append(threading.Thread(target=trickle, args=(s,)))
            threads[-1].start()
        started = time.monotonic()
        assert served(server)
        assert time.monotonic() - started < TIMEOUT + 2
    finally:
        stop.set()
        for t in threads:
            t.join()
        for s in socks:
            s.close()


def test_response_shorter_than_its_length_closes(server):
    with socket.create_connection(("127.0.0.1", server.port),
                                  timeout=10) as s:
        s.sendall(b"GET /short HTTP/1.1\r\nHost: t\r\n\r\n")
        raw = read_to_eof(s)
    assert raw.startswith(b"HTTP/1.1 200 OK\r\n")
    assert raw.endswith(b"\r\n\r\nonly this")
    server.wait_for_log("response cut short: Too little data")
    assert served(server)


# The fast path against the block and h11 it stands in for, in-process.

PLAIN_HEADS = [
    b"GET / HTTP/1.1\r\nHost: t",
    b"GET /a/./b/../%7Ec?q=%20&r HTTP/1.1\r\nHost: t\r\nX-A: 1\r\n"
    b"Content-Type: text/x\r\nx-a: 2\r\nContent-Length: 0\r\nX-B:",
    b"POST /p HTTP/1.1\r\nhost: h\r\nConnection: close\r\nX-Obs: \xe9t\xe9",
]


@pytest.mark.parametrize("head", PLAIN_HEADS)
def test_plain_vars_are_the_decoded_block(head):
    request = plain.parse_request(head)
    assert request is not None
    listener = ListenerVars(9090, hostname="box")
    peer = listener.peer(("10.0.0.1", 4321))
    block = RequestVars(request).block(listener, peer)
    found, count = protocol.decode_text(block)
    fixed = plain_http.Fixed(listener.constants, peer)
    assert plain_http.request_vars(request, fixed) == (found, count,
                                                       len(block))
    assert list(plain_http.request_vars(request, fixed)[0]) == list(found)


RESPONSES = [
    ("200 OK", [("Content-Type", "text/plain")]),
    ("200 OK", [("Content-Length", "5"), ("X-Empty", "")]),
    ("204 No Content", [("X-A", "b  c")]),
    ("304 Not Modified", []),
    ("404 ", [("Content-Length", "0")]),
]


@pytest.mark.parametrize("method", [b"GET", b"HEAD"])
@pytest.mark.parametrize("keep_alive", [True, False])
@pytest.mark.parametrize("status_line, headers", RESPONSES)
def test_plain_response_head_is_h11s(status_line, headers, method,
                                     keep_alive):
    close = b"" if keep_alive else b"Connection: close\r\n"
    head = method + b" / HTTP/1.1\r\nHost: t\r\n" + close
    conn = h11.Connection(h11.SERVER)
    conn.receive_data(head + b"\r\n")
    conn.next_event()
    code, _, reason = status_line.partition(" ")
    expected = conn.send(h11.Response(status_code=int(code), headers=headers,
                                      reason=reason.encode()))
    raw = head_bytes("HTTP/1.1", status_line, headers)
    status, length = plain.sent_head(raw)
    assert plain.framed(raw, status, length is not None,
                        keep_alive) == expected


@pytest.mark.parametrize("headers", [
    [("Connection", "close")], [("Transfer-Encoding", "chunked")],
    [("X-Latin", "\xe9")],
    [("Content-Length", "1"), ("content-length", "1")],
    [("Content-Length", "+1")],
])
def test_responses_h11_must_frame_are_not_plain(headers):
    assert plain.sent_head(head_bytes("HTTP/1.1", "200 OK", headers)) is None
