"""The app's side of a worker, beside the real uWSGI: the environ, the
wsgi.input it reads and the response it shapes, over a uwsgi socket and
an http-socket, with the same app behind both servers."""

import http.client
import json
import re
import socket
import textwrap

import pytest

from tests import support
from tests.support import (read_to_close, read_to_eof, split_response,
                           uwsgi_packet, uwsgi_request)

APP = textwrap.dedent('''
    import json, sys

    def input_calls(stream, calls):
        """What each call of wsgi.input returned (lengths for bytes),
        or the exception it raised."""
        seen = []
        for call in calls.split(";"):
            name, _, arg = call.partition(":")
            try:
                got = getattr(stream, name)(*eval(f"({arg},)" if arg
                                                  else "()"))
            except Exception as e:
                got = f"{type(e).__name__}: {e}"
            if isinstance(got, bytes):
                got = len(got)
            elif isinstance(got, list):
                got = [len(line) for line in got]
            elif name == "fileno":
                got = isinstance(got, int)
            seen.append(got)
        return json.dumps(seen).encode()

    def environ_text(environ):
        """Every key with its type and value; the objects by type."""
        seen = {}
        for key, value in environ.items():
            if isinstance(value, (str, bytes, bool, int, tuple)):
                seen[key] = [type(value).__name__, repr(value)]
            else:
                seen[key] = callable(value) or hasattr(value, "read")
        return json.dumps(seen).encode()

    class FailingClose:
        def __iter__(self):
            return iter([b"all ", b"of it"])

        def close(self):
            raise RuntimeError("close failed")

    def late_error(start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        yield b"sent"
        try:
            raise ValueError("after the head")
        except ValueError:
            start_response("500 Oops", [], sys.exc_info())
        yield b"never"

    def application(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/scheme":
            page = environ["wsgi.url_scheme"].encode()
        elif path == "/big-head":
            # COUNTxSIZE: that many headers of SIZE bytes with their
            # name, colon, space and line end.
            count, size = map(int, environ["QUERY_STRING"].split("x"))
            start_response("200 OK", [("X-%04d" % n, "v" * (size - 10))
                                      for n in range(count)])
            page = b"big head"
        elif path == "/close-fails":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return FailingClose()
        elif path == "/late-error":
            return late_error(start_response)
        elif path == "/raise":
            raise RuntimeError("raised")
        elif path.startswith("/environ"):
            page = environ_text(environ)
        elif path == "/input":
            page = input_calls(environ["wsgi.input"], environ["QUERY_STRING"])
        else:
            page = b"hello from " + path.encode("latin-1")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [page]
''')


@pytest.fixture(scope="module")
def servers(uwsgi_binary, tmp_path_factory):
    """{"uwsgi": process, "ugu": process}, each with a uwsgi socket
    (process.port) and an http-socket (process.http_port)."""
    yield from _servers(uwsgi_binary, tmp_path_factory.mktemp("wsgi"))


@pytest.fixture(scope="module")
def buffered_servers(uwsgi_binary, tmp_path_factory):
    """The same, reading each body before the app runs: LINES into a
    temporary file, a shorter body into memory."""
    yield from _servers(uwsgi_binary, tmp_path_factory.mktemp("wsgi"),
                        "--post-buffering", "1000")


def _servers(uwsgi_binary, folder, *options):
    (folder / "app.py").write_text(APP)
    found = {}
    try:
        for name, command in (("uwsgi", [uwsgi_binary]),
                              ("ugu", support.UGU)):
            port, http_port = support.free_port(), support.free_port()
            process = support.Process(
                [*command, "--master", "--processes", "1", "--socket",
                 f"127.0.0.1:{port}", "--http-socket",
                 f"127.0.0.1:{http_port}", "--wsgi-file", "app.py",
                 *options], cwd=folder)
            found[name] = process
            process.port, process.http_port = port, http_port
            process.wait_for_log(r"spawned uWSGI worker 1")
            support.wait_for_port(port)
            support.wait_for_port(http_port)
        yield found
    finally:
        for process in found.values():
            process.stop()


def body(raw):
    return split_response(raw)[2]


def over_http(port, request):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request)
        return read_to_eof(s)


# The environ.

SCHEME_VARS = [
    [], [("HTTPS", "on")], [("HTTPS", "ON")], [("HTTPS", "onward")],
    [("HTTPS", "1")], [("HTTPS", "10")], [("HTTPS", "off")],
    [("HTTP_X_FORWARDED_PROTO", "https")],
    [("HTTP_X_FORWARDED_PROTO", "HTTPS")],
    [("UWSGI_SCHEME", "http"), ("HTTP_X_FORWARDED_PROTO", "https")],
    [("HTTP_X_FORWARDED_PROTO", "https"), ("UWSGI_SCHEME", "http")],
    [("HTTPS", "on"), ("HTTP_X_FORWARDED_PROTO", "")],
]


@pytest.mark.parametrize("extra_vars", SCHEME_VARS,
                         ids=[str(v) for v in SCHEME_VARS])
def test_url_scheme_is_picked_as_uwsgi_picks_it(servers, extra_vars):
    schemes = {name: body(uwsgi_request(process.port, "/scheme",
                                        extra_vars=extra_vars))
               for name, process in servers.items()}
    assert schemes["ugu"] == schemes["uwsgi"]


def test_x_forwarded_proto_sets_the_url_scheme_on_http_socket(servers):
    # HTTP/1.0: a body of unknown length, not chunked (README).
    request = b"GET /scheme HTTP/1.0\r\nX-Forwarded-Proto: https\r\n\r\n"
    schemes = {name: body(over_http(process.http_port, request))
               for name, process in servers.items()}
    assert schemes == {"uwsgi": b"https", "ugu": b"https"}


ENVIRON_REQUESTS = [
    b"GET /environ HTTP/1.0\r\n\r\n",
    b"GET /environ?a=1&b=%20x&a=2 HTTP/1.0\r\nHost: h:99\r\n\r\n",
    b"POST /environ HTTP/1.0\r\nContent-Type: text/plain\r\n"
    b"Content-Length: 5\r\n\r\nhello",
    b"GET /environ#top HTTP/1.0\r\n\r\n",
    b"GET /environ/a%20b/.%2E/#c?q=%41#d HTTP/1.0\r\n\r\n",
    b"GET /environ HTTP/1.0\r\nX-Rep: a\r\nX-Rep: b\r\nX_Under: u\r\n"
    b"X-Under: d\r\nCookie: a=1\r\nCookie: b=2\r\n\r\n",
]


@pytest.mark.parametrize("request_bytes", ENVIRON_REQUESTS)
def test_the_environ_is_uwsgis_on_http_socket(servers, request_bytes):
    """Keys, types and values, but for the port each server listens on
    and the objects (wsgi.input, wsgi.errors, ...), seen by type."""
    environs = {}
    for name, process in servers.items():
        environ = json.loads(body(over_http(process.http_port,
                                            request_bytes)))
        assert environ.pop("SERVER_PORT") == ["str",
                                              repr(str(process.http_port))]
        environs[name] = environ
    assert environs["ugu"] == environs["uwsgi"]


def test_the_environ_is_uwsgis_on_a_uwsgi_socket(servers):
    environs = {name: json.loads(body(uwsgi_request(
        process.port, "/environ?q=1", method="POST", body=b"abc",
        headers=[("X-A", "1"), ("Content-Type", "text/x")])))
        for name, process in servers.items()}
    assert environs["ugu"] == environs["uwsgi"]


def test_wsgi_disable_file_wrapper_leaves_it_out(uwsgi_binary, tmp_path):
    for servers in _servers(uwsgi_binary, tmp_path,
                            "--wsgi-disable-file-wrapper"):
        environs = {name: json.loads(body(uwsgi_request(process.port,
                                                        "/environ")))
                    for name, process in servers.items()}
    assert "wsgi.file_wrapper" not in environs["ugu"]
    assert "wsgi.errors" in environs["ugu"]
    assert environs["ugu"] == environs["uwsgi"]


def test_catch_exceptions_answers_with_uwsgis_page(uwsgi_binary, tmp_path):
    """The page of an app that raised, over both sockets (the ports each
    server listens on set aside)."""
    pages = {}
    for servers in _servers(uwsgi_binary, tmp_path, "--catch-exceptions"):
        for name, process in servers.items():
            raw = over_http(process.http_port,
                            b"GET /raise?x=1 HTTP/1.0\r\nX-A: b\r\n\r\n")
            status, headers, page = split_response(raw)
            assert status.endswith("500 Internal Server Error")
            assert headers["content-type"] == "text/plain"
            text = page.decode().replace(str(process.http_port), "PORT")
            raw = uwsgi_request(process.port, "/raise", headers=[("X-B",
                                                                   "c")])
            pages[name] = text, body(raw)
    assert pages["ugu"] == pages["uwsgi"]
    page, _ = pages["ugu"]
    assert page.startswith('uWSGI exceptions catcher for "GET /raise?x=1" '
                           '(request plugin: "python", modifier1: 0)\n\n'
                           "Exception: builtins.RuntimeError: raised\n\n"
                           "Exception class: builtins.RuntimeError\n\n"
                           "Exception message: raised\n\nBacktrace:\n"
                           'filename: "app.py" line: ')
    assert "\nHTTP_X_A = b\n" in page


# wsgi.input.

LINES = b"".join(b"line %d\n" % n * (n % 7) for n in range(60))
INPUT_CALLS = [
    "read:0;read", "read:-1", "read:5;read:0", "readline:0;readline:0",
    "readlines", "readlines:20;read", "read:7;tell;read:3;tell",
    "close;read:3", "seek:0", "fileno", "read:2.5", "read:'3'",
    "readline:'x'",
]


@pytest.mark.parametrize("over", ["socket", "http-socket"])
@pytest.mark.parametrize("calls", INPUT_CALLS)
def test_wsgi_input_answers_as_uwsgis(servers, calls, over):
    assert_same_input_calls(servers, calls, over, LINES)


# Under post-buffering, seek() moves in the body read before the app.
SEEK_CALLS = [
    "read;seek:0;read:4;tell", "read:9;seek:-4,1;tell;read:2",
    "seek:-3,2;tell;read", "seek:0,2;read", "seek:-1", "seek:2,2",
    "read:5;seek:3,1;tell", "readline;seek:0;read",
]


@pytest.mark.parametrize("size", [len(LINES), 300], ids=["file", "memory"])
@pytest.mark.parametrize("over", ["socket", "http-socket"])
@pytest.mark.parametrize("calls", INPUT_CALLS + SEEK_CALLS)
def test_post_buffered_wsgi_input_answers_as_uwsgis(buffered_servers, calls,
                                                    over, size):
    assert_same_input_calls(buffered_servers, calls, over, LINES[:size])


def test_readline_after_seek_reads_from_the_new_position(buffered_servers):
    """uWSGI's readline() goes on from the line it had buffered, as if
    the seek had not been: the app reads the wrong bytes (README)."""
    raw = uwsgi_request(buffered_servers["ugu"].port,
                        "/input?readline;seek:1;readline", method="POST",
                        body=LINES)
    assert json.loads(body(raw)) == [len(b"line 1\n"), None,
                                      len(b"ine 1\n")]


def assert_same_input_calls(servers, calls, over, payload):
    got = {}
    for name, process in servers.items():
        path = f"/input?{calls}"
        if over == "socket":
            raw = uwsgi_request(process.port, path, method="POST",
                                body=payload)
        else:
            raw = over_http(process.http_port, (
                b"POST %s HTTP/1.0\r\nContent-Length: %d\r\n\r\n"
                % (path.encode(), len(payload))) + payload)
        got[name] = json.loads(body(raw))
    assert got["ugu"] == got["uwsgi"]


def test_a_body_cut_short_under_post_buffering_never_reaches_the_app(
        buffered_servers):
    """The body is read before the app: a client that stops sending
    gets no answer, and the line says 500, served by no app."""
    for name, process in buffered_servers.items():
        assert send_cut_short(process.http_port) == b"", name
        process.wait_for_log(
            r"\[uwsgi-body-read\] (Error|Timeout) reading \d+ bytes\. "
            r"Content-Length: 100 consumed: \d+ left: \d+")
        process.wait_for_log(
            r"\|app: -1\|req: -1/\d+\] [^\n]* POST /input\?read => "
            r"generated 0 bytes in \d+ msecs \(HTTP/1\.1 500\) 0 headers "
            r"in 0 bytes")


def send_cut_short(http_port):
    """A POST whose client stops after 10 of its 100 bytes; what came
    back."""
    with socket.create_connection(("127.0.0.1", http_port),
                                  timeout=10) as s:
        s.sendall(b"POST /input?read HTTP/1.1\r\nHost: t\r\n"
                  b"Content-Length: 100\r\n\r\n" + b"x" * 10)
        s.shutdown(socket.SHUT_WR)
        return read_to_eof(s)


def test_a_body_cut_short_on_http_socket_ends_the_connection(servers):
    """The client closes mid-body: the app's read fails (here caught,
    and answered), and the connection ends there, as in uWSGI; the rest
    of the body that came is no next request (ugu answered it a 400 and
    logged one more line)."""
    for name, process in servers.items():
        raw = send_cut_short(process.http_port)
        assert raw.count(b"HTTP/1.1 ") == 1, name
        assert b"error during read(0) on wsgi.input" in raw, name
        # A request after it, to be sure that no line is still to come.
        over_http(process.http_port, b"GET /fence HTTP/1.0\r\n\r\n")
        between = process.wait_for_log(
            r"(?s)POST /input\?read => [^\n]*\n(.*?)GET /fence => ")[1]
        assert "\n" not in between, (name, between)


# The response.

def test_start_response_after_the_head_raises_uwsgis_error(servers):
    """With exc_info too: uWSGI raises "headers already sent", the app's
    own exception being only its context, and the body so far stays.
    The body had no length: ugu's worker resets the connection after it,
    so that the client does not take it for whole (tests/
    test_broken_off.py); uWSGI's closes it as usual."""
    for name, process in servers.items():
        with socket.create_connection(("127.0.0.1", process.port),
                                      timeout=10) as s:
            s.sendall(uwsgi_packet("/late-error"))
            raw, reset = read_to_close(s)
        assert body(raw) == b"sent", name
        assert reset == (name == "ugu"), name
        logged = process.wait_for_log(
            r"(?s)ValueError: after the head\n\n(.*?)\n\[pid")[1]
        assert logged.startswith("During handling of the above "
                                 "exception, another exception"), name
        assert logged.endswith("OSError: headers already sent"), name


# (count, size) of the app's headers: a head that ends under 64 KiB can
# still be refused (13x5000), as uWSGI grows its buffer.  (Not a value
# of 64 KiB or more, which uWSGI cuts to its length modulo 65536 and
# sends: ugu refuses it.)
HEADS = [(60, 1000), (65, 1000), (100, 1000), (12, 5000), (13, 5000),
         (1, 61000), (1, 65400), (1, 65520), (2, 32700), (15, 4300),
         (16, 4300)]


def test_a_response_head_over_uwsgis_limit_is_refused(servers):
    """uWSGI's start_response() raises a TypeError for a head its buffer
    cannot take (and sends nothing); ugu's too, then answers 500
    (DEVIATIONS 9)."""
    taken = {}
    for name, process in servers.items():
        taken[name] = []
        for count, size in HEADS:
            raw = uwsgi_request(process.port, f"/big-head?{count}x{size}")
            taken[name].append(body(raw) == b"big head")
        refusals = process.output().count(
            "TypeError: unable to add header to the response")
        assert refusals == taken[name].count(False), name
    assert taken["ugu"] == taken["uwsgi"]
    assert taken["ugu"].count(False) == 7


def test_a_close_that_raises_ends_a_whole_response(servers):
    """Logged once, and the body that went is complete: ugu left an
    HTTP/1.1 client's chunked body unended."""
    for name, process in servers.items():
        client = http.client.HTTPConnection("127.0.0.1", process.http_port,
                                            timeout=10)
        try:
            client.request("GET", "/close-fails")
            assert client.getresponse().read() == b"all of it", name
        finally:
            client.close()
        process.wait_for_log(r"GET /close-fails => ")
        assert process.output().count("RuntimeError: close failed") == 1


@pytest.mark.parametrize("length", ["5x", "abc", "-5", " 5", "\xb2", "3",
                                    str(2**64 + 5)])
def test_content_length_is_read_as_uwsgi_reads_it(servers, length):
    """Over a uwsgi socket: its leading ASCII digits, else 0 (a `\xb2`,
    a digit to Python, killed ugu's request without an answer), modulo
    2**64 as uWSGI's size_t keeps it (2**64 + 5 is 5: ugu's read()
    raised an OverflowError).  The var comes after the helper's own
    CONTENT_LENGTH, and counts, in both."""
    got = {name: body(uwsgi_request(
        process.port, "/input?read", method="POST", body=b"hello",
        extra_vars=[("CONTENT_LENGTH", length)]))
        for name, process in servers.items()}
    assert got["ugu"] == got["uwsgi"]


# Lengths no read can be given memory for: 10**30 is 4477988020393345024
# modulo 2**64, thousands of nines 2**64 - 1.
UNREADABLE_LENGTHS = {"10**30": "1" + "0" * 30, "3000 nines": "9" * 3000}
MALLOC_FAILED = (r"uwsgi_request_body_read\(\)/malloc\(\): Cannot allocate "
                 r"memory \[core/reader\.c line 371\] during POST "
                 r"/input\?read;read:5 \(127\.0\.0\.1\)")


@pytest.mark.parametrize("length", UNREADABLE_LENGTHS.values(),
                         ids=UNREADABLE_LENGTHS.keys())
def test_a_read_longer_than_memory_holds_fails_as_uwsgis(servers, length):
    """uWSGI allocates what read() asks for before it reads: a body
    declared longer than memory can hold fails the read with its
    malloc() line and an OSError, and the bytes that came are still
    there for a smaller read.  ugu's read raised a MemoryError or an
    OverflowError, and lost them."""
    got = {}
    for name, process in servers.items():
        before = len(re.findall(MALLOC_FAILED, process.output()))
        got[name] = json.loads(body(uwsgi_request(
            process.port, "/input?read;read:5", method="POST",
            body=b"hello", extra_vars=[("CONTENT_LENGTH", length)])))
        process.wait_for_log(MALLOC_FAILED, count=before + 1)
    assert got["ugu"] == got["uwsgi"] == [
        "OSError: error during read(0) on wsgi.input", 5]


KEEPING_APP = '''
kept = []


def application(environ, start_response):
    if environ["PATH_INFO"] == "/keep":
        environ["app.mark"] = "set"
        kept.append(environ)
        text = "kept"
    else:
        # The environ the first request kept, as this one finds it.
        first = kept[0]
        text = "same=%s mark=%s path=%s" % (
            first is environ, first.get("app.mark"), first.get("PATH_INFO"))
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [text.encode()]
'''


@pytest.mark.parametrize("behaviour", [None, "holy", "cheat"])
def test_wsgi_env_behaviour_keeps_or_reuses_the_environ_as_uwsgi(
        uwsgi_binary, tmp_path, behaviour):
    """cheat, the default: one dict per core, emptied when its request
    ends (an environ the app kept becomes the next request's); holy: a
    new dict each time, kept as the app left it."""
    (tmp_path / "app.py").write_text(KEEPING_APP)
    option = ["--wsgi-env-behavior", behaviour] if behaviour else []
    answers = {}
    for name, argv in (("ugu", support.UGU), ("uwsgi", [uwsgi_binary])):
        port = support.free_port()
        with support.Process([*argv, "--socket", f"127.0.0.1:{port}",
                              "--wsgi-file", "app.py", *option],
                             cwd=tmp_path):
            support.wait_for_port(port)
            answers[name] = [body(uwsgi_request(port, path))
                             for path in ("/keep", "/next", "/last")]
    assert answers["ugu"] == answers["uwsgi"]
    if behaviour == "holy":
        assert answers["ugu"][2] == b"same=False mark=set path=/keep"
    else:
        assert answers["ugu"][2] == b"same=True mark=None path=/last"


def test_an_unknown_wsgi_env_behaviour_stops_the_start(tmp_path, procs):
    server = procs.ugu("--http-socket", f"127.0.0.1:{support.free_port()}",
                       "--wsgi-env-behaviour", "saintly", cwd=tmp_path)
    assert server.wait() == 1
    assert "option 'wsgi-env-behaviour': invalid wsgi-env-behaviour " \
        "value: saintly (write holy or cheat)" in server.output()
