"""uwsgi.websocket_*: the handshake, the frames, pings and limits, on an
http-socket with threads and with gevent, against the real uWSGI running
the same app."""

import os
import socket
import struct
import time

import pytest

from tests import support
from ugu.options.resolve import resolve
from ugu.vassal import websocket

# The client's key and its accept, from RFC 6455 1.3.
KEY = b"dGhlIHNhbXBsZSBub25jZQ=="
ACCEPT = "s3pPLMBiTxaQ9kYGzzhZRbK+xOo="

APP = '''
import uwsgi


def application(env, start_response):
    path = env["PATH_INFO"]
    if path == "/nokey":
        try:
            uwsgi.websocket_handshake()
        except OSError as e:
            start_response("400 Bad Request", [("Content-Length", "1")])
            print("nokey", repr(e), flush=True)
            return [b"x"]
    if path == "/errors":
        uwsgi.websocket_handshake(env["HTTP_SEC_WEBSOCKET_KEY"], "", "p1")
        for call in (lambda: uwsgi.websocket_send(123),
                     lambda: uwsgi.websocket_handshake(),
                     lambda: uwsgi.websocket_handshake(None),
                     lambda: start_response("200 OK", [])):
            try:
                call()
            except Exception as e:
                uwsgi.websocket_send(repr(e))
        uwsgi.websocket_send("nb:%r" % uwsgi.websocket_recv_nb())
        for call in (uwsgi.websocket_recv, lambda: uwsgi.websocket_send("x")):
            try:
                call()
            except OSError as e:
                print("ended", repr(e), flush=True)
        return []
    uwsgi.websocket_handshake(env["HTTP_SEC_WEBSOCKET_KEY"],
                              env.get("HTTP_ORIGIN", ""))
    while True:
        message = uwsgi.websocket_recv()
        if message == b"binary":
            uwsgi.websocket_send_binary(message)
        else:
            uwsgi.websocket_send(message)
'''

MODES = {"threads": ["--threads", "2"], "gevent": ["--gevent", "10"]}


# -- a websocket client, from the RFC ----------------------------------------
def client_frame(opcode, payload, fin=True):
    """A client's frame: masked, as RFC 6455 5.3 requires."""
    mask = os.urandom(4)
    size = len(payload)
    first = (0x80 if fin else 0) | opcode
    if size < 126:
        head = struct.pack("!BB", first, 0x80 | size)
    elif size < 65536:
        head = struct.pack("!BBH", first, 0x80 | 126, size)
    else:
        head = struct.pack("!BBQ", first, 0x80 | 127, size)
    masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
    return head + mask + masked


def recv_exactly(sock, size):
    data = b""
    while len(data) < size:
        more = sock.recv(size - len(data))
        if not more:
            raise EOFError(data)
        data += more
    return data


def read_frame(sock):
    """(first byte, payload) of the server's next frame."""
    first, size = recv_exactly(sock, 2)
    if size == 126:
        size = struct.unpack("!H", recv_exactly(sock, 2))[0]
    elif size == 127:
        size = struct.unpack("!Q", recv_exactly(sock, 8))[0]
    return first, recv_exactly(sock, size)


def connect(port, path="/echo", extra=b"", then=b""):
    """A connection that asked for a websocket (and sent `then` in the
    same write), and the answer's head."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"GET %s HTTP/1.1\r\nHost: t\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Key: %s\r\n"
                 b"Sec-WebSocket-Version: 13\r\n%s\r\n%s"
                 % (path.encode(), KEY, extra, then))
    head = b""
    while not head.endswith(b"\r\n\r\n"):
        head += recv_exactly(sock, 1)
    return sock, head.decode("latin-1")


@pytest.fixture(params=["ugu", "uwsgi"])
def server(request):
    return request.param


@pytest.fixture
def serve(procs, server, request, tmp_path):
    """serve(mode, *options): the app on an http-socket of `server` (or
    behind its router: http="--http"); its port and process."""
    (tmp_path / "app.py").write_text(APP)

    def start(mode, *options, http="--http-socket"):
        port = support.free_port()
        argv = [http, f"127.0.0.1:{port}", "--wsgi-file",
                str(tmp_path / "app.py"), "--master", *MODES[mode],
                *options]
        if server == "ugu":
            p = procs.ugu(*argv)
        else:
            binary = request.getfixturevalue(
                "uwsgi_gevent_binary" if mode == "gevent" else
                "uwsgi_binary")
            p = procs.start([binary, *argv])
        support.wait_for_port(port)
        return port, p
    return start


# -- against the real uWSGI ---------------------------------------------------
@pytest.mark.parametrize("mode", MODES)
def test_echo_as_uwsgi_frames_it(serve, mode):
    port, p = serve(mode)
    sock, head = connect(port, extra=b"Origin: http://o\r\n"
                                     b"Sec-WebSocket-Protocol: chat\r\n")
    assert head == ("HTTP/1.1 101 Web Socket Protocol Handshake\r\n"
                    "Upgrade: WebSocket\r\nConnection: Upgrade\r\n"
                    "Sec-WebSocket-Origin: http://o\r\n"
                    "Sec-WebSocket-Protocol: chat\r\n"
                    f"Sec-WebSocket-Accept: {ACCEPT}\r\n\r\n")
    with sock:
        sock.sendall(client_frame(1, b"hello"))
        assert read_frame(sock) == (0x81, b"hello")
        sock.sendall(client_frame(2, b"binary"))
        assert read_frame(sock) == (0x82, b"binary")
        # A ping's answer: an empty pong, whatever the ping carried.
        sock.sendall(client_frame(9, b"pp"))
        assert read_frame(sock) == (0x8A, b"")
        for size in (200, 70000):   # 16- and 64-bit lengths
            sock.sendall(client_frame(1, b"a" * size))
            assert read_frame(sock) == (0x81, b"a" * size)
        # A fragmented message: b"\0" for the frame before the last.
        sock.sendall(client_frame(1, b"frag1", fin=False)
                     + client_frame(0, b"frag2"))
        assert read_frame(sock) == (0x81, b"\0")
        assert read_frame(sock) == (0x81, b"frag1frag2")
        sock.sendall(client_frame(8, b"\x03\xe8"))
        assert read_frame(sock) == (0x88, b"")
        assert support.read_to_eof(sock) == b""
    p.wait_for_log(r"OSError: unable to receive websocket message")
    sent = 7 + 8 + 2 + 204 + 70010 + 3 + 12 + 2
    p.wait_for_log(rf"GET /echo => generated {sent} bytes in \d+ msecs "
                   rf"\(HTTP/1.1 101\) 5 headers in 201 bytes")


@pytest.mark.parametrize("mode", MODES)
def test_the_apps_mistakes_are_refused_in_uwsgis_words(serve, mode):
    port, p = serve(mode, "--websocket-max-size", "1")
    sock, head = connect(port, "/errors")
    assert "Sec-WebSocket-Origin: *\r\nSec-WebSocket-Protocol: p1\r\n" \
        in head
    with sock:
        errors = [read_frame(sock) for _ in range(4)]
        assert errors == [(0x81, text) for text in (
            b"TypeError(\"a bytes-like object is required, not 'int'\")",
            b"OSError('unable to complete websocket handshake')",
            b"TypeError(\"a bytes-like object is required, not "
            b"'NoneType'\")",
            b"OSError('headers already sent')")]
        # recv_nb: nothing came, after the first ping (its first look
        # sends one, as uWSGI's does).
        assert read_frame(sock) == (0x89, b"")
        assert read_frame(sock) == (0x81, b"nb:b''")
        # A frame past websocket-max-size (1 KiB) ends it, unanswered.
        sock.sendall(client_frame(1, b"x" * 1100))
        assert support.read_to_eof(sock) == b""
    p.wait_for_log(r'\[uwsgi-websocket\] "GET /errors" \(127.0.0.1\) '
                   r"invalid packet size received: 1100, max allowed: 1024")
    p.wait_for_log(r"ended OSError\('unable to receive websocket message'\)"
                   r"\nended OSError\('unable to send websocket message'\)")


@pytest.mark.parametrize("mode", MODES)
def test_frames_sent_with_the_request_are_the_first(serve, mode):
    """And the response routes see the handshake's head, as any."""
    port, _ = serve(mode, "--response-route-run", "addheader:X-Ws: yes")
    sock, head = connect(port, then=client_frame(1, b"early")
                         + client_frame(2, b"binary"))
    assert head.endswith(f"Accept: {ACCEPT}\r\nX-Ws: yes\r\n\r\n")
    with sock:
        assert read_frame(sock) == (0x81, b"early")
        assert read_frame(sock) == (0x82, b"binary")


@pytest.mark.parametrize("mode", MODES)
def test_post_buffering_keeps_the_frames_sent_with_the_request(serve, mode):
    """The body read before the app runs is empty; the frames past it
    are still the websocket's first."""
    port, _ = serve(mode, "--post-buffering", "4096")
    sock, head = connect(port, then=client_frame(1, b"early"))
    with sock:
        assert head.startswith("HTTP/1.1 101 ")
        assert read_frame(sock) == (0x81, b"early")


@pytest.mark.parametrize("mode", MODES)
def test_a_fragmented_message_is_bounded_by_websocket_max_size(serve, server,
                                                              mode):
    """Each fragment is within websocket-max-size (1 KiB), the message
    they join is not: ugu ends the websocket with a close of status 1009
    (Message Too Big) once the joined bytes pass it; uWSGI joins them
    without a bound, and echoes the whole message."""
    port, p = serve(mode, "--websocket-max-size", "1")
    sock, _ = connect(port)
    with sock:
        sock.sendall(client_frame(1, b"x" * 1000, fin=False))
        assert read_frame(sock) == (0x81, b"\0")
        sock.sendall(client_frame(0, b"y" * 24, fin=False))
        assert read_frame(sock) == (0x81, b"\0")
        sock.sendall(client_frame(0, b"z"))
        if server == "uwsgi":
            assert read_frame(sock) == (0x81, b"x" * 1000 + b"y" * 24 + b"z")
            return
        assert read_frame(sock) == (0x88, struct.pack("!H", 1009))
        assert support.read_to_eof(sock) == b""
    p.wait_for_log(r'\[uwsgi-websocket\] "GET /echo" \(127.0.0.1\) '
                   r"fragmented message too large: 1025 bytes joined, max "
                   r"allowed: 1024")
    p.wait_for_log(r"OSError: unable to receive websocket message")


def test_fragmented_messages_of_two_websockets_stay_apart(procs, tmp_path):
    """uWSGI keeps one buffer of fragments per process: there the first
    gets b"b1a2" and the second's websocket ends."""
    (tmp_path / "app.py").write_text(APP)
    port = support.free_port()
    procs.ugu("--http-socket", f"127.0.0.1:{port}", "--wsgi-file",
              str(tmp_path / "app.py"), "--gevent", "10")
    support.wait_for_port(port)
    (a, _), (b, _) = connect(port), connect(port)
    with a, b:
        for sock, text in ((a, b"a1"), (b, b"b1")):
            sock.sendall(client_frame(1, text, fin=False))
            assert read_frame(sock) == (0x81, b"\0")
        for sock, text in ((a, b"a"), (b, b"b")):
            sock.sendall(client_frame(0, text + b"2"))
            assert read_frame(sock) == (0x81, text + b"1" + text + b"2")


def test_a_uwsgi_socket_takes_the_frames_sent_with_the_request(
        procs, server, request, tmp_path):
    """As behind a router: the frames that came in the packet's read
    are the first ones."""
    from ugu import protocol
    (tmp_path / "app.py").write_text(APP)
    port = support.free_port()
    argv = ["--socket", f"127.0.0.1:{port}", "--wsgi-file",
            str(tmp_path / "app.py")]
    if server == "ugu":
        procs.ugu(*argv)
    else:
        procs.start([request.getfixturevalue("uwsgi_binary"), *argv])
    support.wait_for_port(port)
    packet = protocol.encode([
        (b"REQUEST_METHOD", b"GET"), (b"REQUEST_URI", b"/echo"),
        (b"PATH_INFO", b"/echo"), (b"SERVER_PROTOCOL", b"HTTP/1.1"),
        (b"REMOTE_ADDR", b"127.0.0.1"), (b"HTTP_SEC_WEBSOCKET_KEY", KEY)])
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(packet + client_frame(1, b"early"))
        head = b""
        while not head.endswith(b"\r\n\r\n"):
            head += recv_exactly(s, 1)
        assert head.startswith(b"HTTP/1.1 101 Web Socket Protocol "
                               b"Handshake\r\n")
        assert read_frame(s) == (0x81, b"early")
        s.sendall(client_frame(8, b""))
        assert read_frame(s) == (0x88, b"")


@pytest.mark.parametrize("option", ["--http-websockets", "--http-raw-body"])
@pytest.mark.parametrize("mode", MODES)
def test_the_router_relays_a_websocket_both_ways(serve, server, mode,
                                                 option):
    """http-websockets: the node's 101 and frames, the client's frames,
    until either side closes; other requests as before.  A frame sent
    with the request, before the 101 (which RFC 6455 4.1 forbids), is
    relayed too; uWSGI's router drops it, but with http-raw-body (which
    makes every request such a session).  """
    port, p = serve(mode, option, http="--http")
    early = client_frame(1, b"early")
    sent_early = server == "ugu" or option == "--http-raw-body"
    sock, head = connect(port, then=early if sent_early else b"")
    assert head.startswith("HTTP/1.1 101 Web Socket Protocol Handshake\r\n")
    with sock:
        if not sent_early:
            sock.sendall(early)
        assert read_frame(sock) == (0x81, b"early")
        sock.sendall(client_frame(1, b"x" * 70000))
        assert read_frame(sock) == (0x81, b"x" * 70000)
        sock.sendall(client_frame(8, b""))
        assert read_frame(sock) == (0x88, b"")
        assert support.read_to_eof(sock) == b""
    p.wait_for_log(r"\{32 vars in \d+ bytes\} .* GET /echo => generated "
                   r"70019 bytes in \d+ msecs \(HTTP/1.1 101\) 4 headers")
    # A client that leaves without a close frame ends the app's too.
    sock, head = connect(port)
    sock.sendall(client_frame(1, b"bye"))
    assert read_frame(sock) == (0x81, b"bye")
    sock.close()
    p.wait_for_log(r"OSError: unable to receive websocket message", count=2)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /nokey HTTP/1.1\r\nHost: t\r\n"
                  b"Connection: close\r\n\r\n")
        assert support.read_to_eof(s).startswith(
            b"HTTP/1.1 400 Bad Request\r\n")


def test_a_router_without_http_websockets_says_what_it_lacks(procs, tmp_path):
    """The app's 101 comes to a router that relays no websocket: the
    client gets a 502 at once and the log names the option (uWSGI's
    router relays the 101, then none of the frames: the client waits)."""
    (tmp_path / "app.py").write_text(APP)
    port = support.free_port()
    p = procs.ugu("--http", f"127.0.0.1:{port}", "--wsgi-file",
                  str(tmp_path / "app.py"), "--master", "--threads", "2")
    support.wait_for_port(port)
    sock, head = connect(port)
    with sock:
        assert head.startswith("HTTP/1.1 502 Bad Gateway\r\n")
    p.wait_for_log(r"\] 502 backend answered 101 Switching Protocols \(a "
                   r"websocket's handshake\): the router relays websockets "
                   r"with http-websockets = true")


def test_a_request_without_a_key_gets_no_handshake(serve):
    port, p = serve("threads")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /nokey HTTP/1.1\r\nHost: t\r\n"
                  b"Connection: close\r\n\r\n")
        answer = support.read_to_eof(s)
    assert answer.startswith(b"HTTP/1.1 400 Bad Request\r\n")
    p.wait_for_log(r"nokey OSError\('unable to complete websocket "
                   r"handshake'\)")


@pytest.mark.parametrize("mode", MODES)
def test_a_waiting_receive_pings_and_ends_without_its_pong(serve, mode):
    port, p = serve(mode, "--websocket-ping-freq", "1",
                    "--websockets-pong-tolerance", "1")
    sock, _ = connect(port)
    with sock:
        start = time.monotonic()
        assert read_frame(sock) == (0x89, b"")
        assert time.monotonic() - start > 0.5
        # Answered, it goes on; unanswered, it ends.
        sock.sendall(client_frame(10, b"") + client_frame(1, b"still"))
        assert read_frame(sock) == (0x81, b"still")
        assert read_frame(sock) == (0x89, b"")
        assert support.read_to_eof(sock) == b""
    p.wait_for_log(r'\[uwsgi-websocket\] "GET /echo" \(127.0.0.1\) no PONG '
                   r"received in 1 seconds !!!")


# -- the codec ----------------------------------------------------------------
def test_accept_key_is_the_rfcs():
    assert websocket.accept_key(KEY) == ACCEPT


@pytest.mark.parametrize("size, head_size", [(0, 2), (125, 2), (126, 4),
                                             (65535, 4), (65536, 10)])
def test_frames_take_the_shortest_length(size, head_size):
    data = websocket.frame(websocket.BINARY, b"z" * size)
    assert len(data) == head_size + size
    assert websocket.parse_frame(data, 1 << 20) == (
        True, websocket.BINARY, b"z" * size, len(data))


def test_a_masked_frame_is_unmasked_and_waits_to_be_whole():
    data = client_frame(1, b"hello world", fin=False)
    for cut in range(len(data)):
        assert websocket.parse_frame(data[:cut], 100) is None
    assert websocket.parse_frame(data + b"next", 100) == (
        False, websocket.TEXT, b"hello world", len(data))


def test_a_length_past_the_limit_is_refused_before_its_payload():
    head = websocket.frame(websocket.TEXT, b"y" * 300)[:4]
    with pytest.raises(websocket.TooLarge) as found:
        websocket.parse_frame(head, 299)
    assert found.value.size == 300


_KEYED = [("Sec-WebSocket-Key", KEY)]


@pytest.mark.parametrize("headers, asks", [
    ([("Upgrade", "WebSocket"), ("Connection", "Upgrade"),
      ("Sec-WebSocket-Version", "13"), *_KEYED], True),
    # Firefox's: its Connection is not uWSGI's sign, the other two are.
    ([("Upgrade", "websocket"), ("Connection", "keep-alive, Upgrade"),
      ("Sec-WebSocket-Version", "13"), *_KEYED], True),
    ([("Upgrade", "websocket"), *_KEYED], False),
    ([("Upgrade", "websocket"), ("Connection", "upgrade"),
      ("Sec-WebSocket-Version", "13")], False)])
def test_the_router_knows_a_websocket_by_uwsgis_signs(headers, asks):
    import h11

    from ugu.http.vars import RequestVars
    from ugu.router.tunnel import asks_for_websocket
    request = h11.Request(method="GET", target="/",
                          headers=[("Host", "t"), *headers])
    assert asks_for_websocket(RequestVars(request)) is asks


# -- the options --------------------------------------------------------------
def test_options_take_uwsgis_names_and_defaults():
    settings = websocket.Settings(resolve([], {}))
    assert (settings.ping_freq, settings.pong_tolerance,
            settings.max_size) == (30, 3, 1024 * 1024)
    config = resolve(["--websockets-ping-freq", "5",
                      "--websocket-pong-tolerance", "7",
                      "--websockets-max-size", "2"], {})
    settings = websocket.Settings(config)
    assert (settings.ping_freq, settings.pong_tolerance,
            settings.max_size) == (5, 7, 2048)


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_http_raw_body_relays_a_body_and_closes(procs, request, tmp_path,
                                                 server):
    """http-raw-body: a request's body reaches the app as sent, and the
    connection closes after the answer, keepalive or not."""
    (tmp_path / "app.py").write_text(
        "def application(env, start_response):\n"
        "    body = env['wsgi.input'].read()\n"
        "    start_response('200 OK', [('Content-Length', "
        "str(len(body)))])\n"
        "    return [body]\n")
    port = support.free_port()
    argv = ["--http", f"127.0.0.1:{port}", "--http-keepalive",
            "--http-raw-body", "--wsgi-file", str(tmp_path / "app.py"),
            "--master"]
    if server == "ugu":
        procs.ugu(*argv)
    else:
        procs.start([request.getfixturevalue("uwsgi_binary"), *argv])
    support.wait_for_port(port)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"POST /p HTTP/1.1\r\nHost: t\r\nContent-Length: 5"
                  b"\r\n\r\nhello")
        reply = support.read_to_eof(s)
    assert reply.startswith(b"HTTP/1.1 200 OK\r\n")
    assert reply.endswith(b"\r\n\r\nhello")
