"""Error routes (run on every response head, with its status) and final
routes (run once the response is sent, before its log line), served by
ugu and by the real uWSGI from the same INI file."""

import re
import signal
import socket

import pytest

from tests import support
from tests.test_routing import serve_routes, write_config
from ugu.options.errors import ConfigError
from ugu.options.resolve import resolve
from ugu.routing.engine import FinalRouter, ResponseRouter

# The app answers the status its path names ("/404" -> 404), in two
# writes.
APP = """
def application(environ, start_response):
    code = environ["PATH_INFO"].strip("/").split("/")[0] or "200"
    start_response(code + " X", [("Content-Type", "text/plain"),
                                 ("X-App", "yes")])
    return [b"body of ", environ["PATH_INFO"].encode()]
"""
ROUTES = [
    "route = ^/gone$ return:410",
    "collect-header = X-App APP",
    "error-route-run = log:ERR ${PATH_INFO}",
    "error-route-if = empty:${APP} addheader:X-Collected: not yet",
    "error-route-status = 404 addheader:X-Err: nf",
    "error-route-status = 410 addheader:X-Gone: yes",
    "error-route-status = 418 break:503 Gone Away",
    "error-route-status = 401 delheader:X-App",
    "error-route-if = equal:${PATH_INFO};/500 goto:five",
    "error-route-run = continue:",
    "error-route-label = five",
    "error-route-run = addheader:X-Five: jumped",
    "response-route-run = addheader:X-Response: ran",
    "response-route-status = 404 addheader:X-Resp: nf",
    "response-route-status = 410 addheader:X-Resp: gone",
    "response-route-status = 503 addheader:X-Resp: 503",
    "response-route-status = 3xx addheader:X-Resp: zero",
    "final-route-run = log:FIN ${PATH_INFO}",
    "final-route-status = 202 donotlog:",
    "final-route-status = 503 log:FIN was 503",
]
DUMP = re.compile(r"^(\*\*\* (dumping|end of the) internal .*routing table"
                  r" \*\*\*|\[rule: \d+\] .*|collecting header .*)$",
                  re.MULTILINE)


def serve(tmp_path, procs, argv, routes):
    """`argv` serving the app on an http-socket with `routes`:
    (process, port), once it listens."""
    (tmp_path / "app.py").write_text(APP)
    return serve_routes(tmp_path, procs, argv, routes)


def get(port, path):
    """(head lines, body) of a GET on its own connection; the first line
    is the status, without the protocol."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET %s HTTP/1.0\r\n\r\n" % path.encode())
        head, _, body = support.read_to_eof(s).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    return [lines[0].partition(" ")[2], *lines[1:]], body


def both(tmp_path, procs, uwsgi_binary, paths, routes=ROUTES):
    """For uWSGI then ugu: ({path: (head, body)}, log output once the
    last request's line is written)."""
    results = []
    for argv in ([uwsgi_binary], support.UGU):
        server, port = serve(tmp_path, procs, argv, routes)
        answers = {p: get(port, p) for p in paths}
        # A last request, logged, so that every line before it is out.
        get(port, "/200/last")
        server.wait_for_log(r"GET /200/last ")
        results.append((answers, server.output()))
        server.stop(signal.SIGINT)
    return results


def test_startup_dump_matches_uwsgi(tmp_path, procs, uwsgi_binary):
    """uWSGI dumps the tables in its order: request, error, response,
    final, then the header copies; a status rule shows its number as
    subject and func."""
    dumps = []
    for argv in ([uwsgi_binary], support.UGU):
        server, _ = serve(tmp_path, procs, argv, ROUTES)
        server.wait_for_log(r"spawned uWSGI worker")
        dumps.append([m.group(0) for m in DUMP.finditer(server.output())])
        # Just started, uWSGI may not handle SIGINT yet; nothing more is
        # needed of either.
        server.stop(signal.SIGKILL)
    theirs, ours = dumps
    assert ours == theirs
    assert "[rule: 2] subject: 404 func: 404 action: addheader:X-Err: nf" \
        in ours
    assert ours.index("*** dumping internal error routing table ***") < \
        ours.index("*** dumping internal response routing table ***") < \
        ours.index("*** dumping internal final routing table ***")


def test_error_routes_run_on_every_status(tmp_path, procs, uwsgi_binary):
    """Not only on errors: on every response head, with its status,
    before collect-header and the response routes; the request routes'
    answers too."""
    paths = ["/200", "/404", "/401", "/500", "/302", "/gone"]
    for answers, output in both(tmp_path, procs, uwsgi_binary, paths):
        for path in paths:
            assert f"ERR {path}\n" in output
        ok, _ = answers["/200"]
        assert ok[0] == "200 X"
        assert "X-App: yes" in ok and "X-Response: ran" in ok
        assert "X-Collected: not yet" in ok
        assert not any(h.startswith(("X-Err", "X-Five")) for h in ok)
        assert "X-Err: nf" in answers["/404"][0]
        # delheader takes out the app's header, which comes after it.
        assert "X-App: yes" not in answers["/401"][0]
        assert answers["/401"][1] == b"body of /401"
        # A goto jumps over the continue.
        assert "X-Five: jumped" in answers["/500"][0]
        assert "X-Five: jumped" not in answers["/302"][0]
        gone, body = answers["/gone"]
        assert gone[0] == "410 Gone" and body == b"Gone"
        assert "X-Gone: yes" in gone


def test_error_break_with_a_status_replaces_the_response(
        tmp_path, procs, uwsgi_binary):
    for answers, output in both(tmp_path, procs, uwsgi_binary, ["/418"]):
        head, body = answers["/418"]
        assert head[0] == "503 Gone Away"
        assert "Connection: close" in head
        assert "Content-Type: text/plain" in head
        assert "X-App: yes" not in head
        assert body == b""
        # The final routes and the log line see the status sent.
        assert "FIN was 503\n" in output
        assert re.search(r"GET /418 => generated 0 bytes .*\(HTTP/1.0 503\)",
                         output)


ANSWERS = [
    "error-route-run = addheader:X-Early: 1",
    "error-route-status = 403 redirect:/login",
    "error-route-status = 404 return:404",
    "error-route-status = 410 redirect-301:/new${PATH_INFO}",
    "response-route-run = addheader:X-Response: ran",
]
# The framing each server gives a body (uWSGI none to HTTP/1.0, ugu its
# length and the close), which the comparison leaves out.
FRAMING = ("Content-Length:", "Connection:", "Transfer-Encoding:")


def test_error_routes_answer_instead_of_the_app(tmp_path, procs,
                                                 uwsgi_binary):
    """return and the redirects in an error route send their answer, with
    the headers routes add, and the app's body goes nowhere; the log
    line counts the answer's body."""
    results = both(tmp_path, procs, uwsgi_binary, ["/403", "/404", "/410"],
                   ANSWERS)
    (theirs, their_log), (ours, our_log) = results
    for path in ("/403", "/404", "/410"):
        their_head, their_body = theirs[path]
        our_head, our_body = ours[path]
        assert [h for h in our_head if not h.startswith(FRAMING)] == \
            [h for h in their_head if not h.startswith(FRAMING)]
        assert our_body == their_body
    assert ours["/404"] == (["404 Not Found", "Content-Type: text/plain",
                             "X-Early: 1", "X-Response: ran",
                             "Content-Length: 9", "Connection: close"],
                            b"Not Found")
    assert ours["/410"][0][1] == "Location: /new/410"
    # The app's second write went nowhere, not into the answer's framing.
    assert "refused" not in our_log
    for output in (their_log, our_log):
        assert re.search(r"GET /403 => generated 5 bytes .*\(HTTP/1.0 302\)",
                         output)
        assert re.search(r"GET /404 => generated 9 bytes .*\(HTTP/1.0 404\)",
                         output)


def test_final_routes_run_before_the_log_line(tmp_path, procs,
                                              uwsgi_binary):
    """After the response (the error line before them), before the
    request's log line, which `donotlog` there silences."""
    paths = ["/200", "/202", "/404"]
    for answers, output in both(tmp_path, procs, uwsgi_binary, paths):
        assert answers["/202"][1] == b"body of /202"
        for path in ("/200", "/404"):
            assert re.search(
                rf"ERR {path}\n(?:.*\n)*?FIN {path}\n(?:.*\n)*?"
                rf"\[pid: .*GET {path} => ", output)
        assert "FIN /202\n" in output
        assert "GET /202 " not in output


def test_final_routes_that_would_change_the_response_are_refused(
        tmp_path, procs, uwsgi_binary):
    """uWSGI takes them and does nothing (the head is sent); ugu says so
    at start-up, naming the line."""
    line = "final-route-run = addheader:X-Late: 1"
    server, port = serve(tmp_path, procs, [uwsgi_binary], [line])
    assert "X-Late: 1" not in get(port, "/")[0]
    server.stop(signal.SIGINT)
    config = resolve(["--ini", str(write_config(tmp_path, [line]))],
                     environ={})
    with pytest.raises(ConfigError) as info:
        FinalRouter.from_config(config)
    assert info.value.line == 2
    assert "the response is sent" in info.value.reason


@pytest.mark.parametrize("router, line", [
    (ResponseRouter, "error-route-status = 404 rewrite:/x"),
    (FinalRouter, "final-route-status = 404 rewrite:/x"),
])
def test_request_phase_actions_are_refused_by_name(tmp_path, router, line):
    config = resolve(["--ini", str(write_config(tmp_path, [line]))],
                     environ={})
    with pytest.raises(ConfigError, match="not implemented by ugu in "
                       r"(error|final)-route\* rules"):
        router.from_config(config)


def test_without_tables_a_request_pays_nothing(tmp_path):
    """No error table: no error routing object to test; no final table:
    the worker holds None (one test per request)."""
    config = resolve(["--ini", str(write_config(
        tmp_path, ["response-route-run = log:x"]))], environ={})
    assert ResponseRouter.from_config(config).errors is None
    assert not FinalRouter.from_config(config).active


def test_response_routes_on_a_status(tmp_path, procs, uwsgi_binary):
    """response-route-status runs its action when the head's status is
    the number: the app's, a request route's answer's, or what an error
    route's break made of it."""
    paths = ["/200", "/404", "/gone", "/418", "/302"]
    expected = {"/200": [], "/404": ["X-Resp: nf"],
                "/gone": ["X-Resp: gone"], "/418": ["X-Resp: 503"],
                "/302": []}
    for answers, _ in both(tmp_path, procs, uwsgi_binary, paths):
        for path, (head, _) in answers.items():
            assert [h for h in head if h.startswith("X-Resp:")] == \
                expected[path]
