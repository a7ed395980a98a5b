"""Request routing: `route*` rules run before the app, or just before a
static file is sent.

The engine is pure, so some tests build a router from an INI file and
call it on vars; the differential tests replay one table of rules and
requests against ugu and the real uWSGI, on a uwsgi socket (where the
answers must be the same bytes) and on an http-socket (the same status,
headers and body, framed by h11), and compare their log lines.
"""

import re
import signal
import socket

import pytest

from tests import support
from ugu.options.errors import ConfigError
from ugu.options.resolve import resolve
from ugu.routing.engine import RequestRouter, ResponseRouter


def write_config(tmp_path, lines):
    path = tmp_path / "routes.ini"
    path.write_text("[uwsgi]\n" + "\n".join(lines) + "\n")
    return path


def make_router(tmp_path, *lines, log=None):
    """A request router for `lines` (options); their INI lines start at 2."""
    config = resolve(["--ini", str(write_config(tmp_path, lines))],
                     environ={})
    return RequestRouter.from_config(config, log=log or (lambda line: None))


def route(router, path="/", **variables):
    variables.setdefault("PATH_INFO", path)
    variables.setdefault("REQUEST_URI", path)
    return router.run(variables)


# --- the engine -------------------------------------------------------------

def test_without_route_options_the_router_is_idle(tmp_path):
    """The worker then skips request routing, and response routing runs
    only for the response routes (or after request routes, which may
    have added headers)."""
    router = make_router(tmp_path, "response-route-run = addheader:X: 1")
    assert not router.active
    assert router.dump() == []
    config = resolve(["--ini", str(write_config(tmp_path, []))], environ={})
    assert not ResponseRouter.from_config(config).active
    assert ResponseRouter.from_config(config, after_requests=True).active


def test_rules_run_in_order_until_continue(tmp_path):
    router = make_router(tmp_path, "route-run = addheader:X-A: 1",
                         "route = ^/stop continue:",
                         "route-run = addheader:X-B: 2")
    assert route(router, "/stop").added == [("X-A", "1")]
    assert route(router, "/on").added == [("X-A", "1"), ("X-B", "2")]
    assert not route(router, "/on").ended


@pytest.mark.parametrize("action, answer", [
    ("break:", None),
    ("break:403", ("403 Forbidden", [("Connection", "close"),
                                     ("Content-Type", "text/plain")], b"")),
    ("return:404", ("404 Not Found", [("Content-Type", "text/plain"),
                                      ("Content-Length", "9")],
                    b"Not Found")),
    ("redirect:/to/$1", ("302 Found", [("Location", "/to/x")], b"Moved")),
    ("redirect-301:/to/$1", ("301 Moved Permanently",
                             [("Location", "/to/x")], b"Moved Permanently")),
])
def test_actions_that_end_the_request(tmp_path, action, answer):
    router = make_router(tmp_path, f"route = ^/(.*) {action}",
                         "route-run = addheader:X-Never: 1")
    routed = route(router, "/x")
    assert routed.ended and routed.answer == answer
    assert routed.added == []


@pytest.mark.parametrize("target, query, path, qs", [
    ("/new/$1?added=1", "orig=2", "/new/a b", "added=1&orig=2"),
    ("/new/$1?added=1", "", "/new/a b", "added=1"),
    ("/new/$1", "orig=2", "/new/a b", "orig=2"),
    ("/new/../x/%%2e", "", "/x/.", ""),
])
def test_rewrite_changes_path_info_and_the_query_string(
        tmp_path, target, query, path, qs):
    router = make_router(tmp_path, f"route = ^/old/(.*) rewrite:{target}",
                         "route = ^/new/ addheader:X-Matched: new")
    routed = route(router, "/old/a%20b", QUERY_STRING=query)
    assert (routed.vars["PATH_INFO"], routed.vars["QUERY_STRING"]) == \
        (path, qs)
    assert routed.vars["REQUEST_URI"] == "/old/a%20b"
    assert not routed.ended
    # The next regexp rules match the rewritten path.
    assert routed.added == ([("X-Matched", "new")]
                            if path.startswith("/new/") else [])


def test_rewrite_last_ends_routing(tmp_path):
    router = make_router(tmp_path, "route = ^/(.*) rewrite-last:/new/$1",
                         "route-run = addheader:X-After: 1")
    routed = route(router, "/a")
    assert routed.vars["PATH_INFO"] == "/new/a"
    assert routed.added == [] and not routed.ended


def test_a_set_action_moves_the_field_that_regexp_rules_match(tmp_path):
    """setpathinfo moves the request's PATH_INFO; addvar:PATH_INFO only
    adds a var, which `${PATH_INFO}` sees and regexp rules do not."""
    router = make_router(tmp_path, "route = ^/a$ addvar:PATH_INFO=/b",
                         "route = ^/b$ addheader:X-B: regexp",
                         "route-if = equal:${PATH_INFO};/b addheader:X-B: if",
                         "route = ^/a$ setpathinfo:/c",
                         "route = ^/c$ addheader:X-C: regexp")
    routed = route(router, "/a")
    assert routed.added == [("X-B", "if"), ("X-C", "regexp")]
    assert routed.vars["PATH_INFO"] == "/c"
    assert routed.appended == [("PATH_INFO", "/b"), ("PATH_INFO", "/c")]


def test_a_var_that_does_not_fit_ends_the_request(tmp_path):
    lines = []
    router = make_router(tmp_path, "route-run = addvar:BIG=${X}",
                         "route-run = addheader:X-After: 1",
                         log=lines.append)
    routed = router.run({"X": "x" * 100}, room=100)
    assert routed.ended and routed.answer is None
    assert lines == ["not enough buffer space to add BIG variable, "
                     "consider increasing it with the --buffer-size option"]


def test_a_goto_built_from_vars_that_leads_back_ends_the_request(tmp_path):
    lines = []
    router = make_router(tmp_path, "route-label = top",
                         "route-run = goto:${TO}", "route-label = end",
                         "route-run = addheader:X-End: 1", log=lines.append)
    assert route(router, TO="end").added == [("X-End", "1")]
    routed = route(router, TO="top")
    assert routed.ended and routed.answer is None and routed.added == []
    assert lines == ['[uwsgi-route] ERROR "goto" instruction can only jump '
                     "forward (check your label !!!)"]


@pytest.mark.parametrize("text, expected", [
    ("${qs[a]}", "1"), ("${qs[b]}", ""), ("${qs[]}", "z"), ("${qs[c]}", ""),
    ("${qs[d]}", "%20x+y"), ("${cookie[sid]}", "abc"), ("${cookie[x]}", "1"),
    ("${cookie[y]}", ""), ("${cookie[e]}", ""), ("${cookie[n]}", "a=b"),
])
def test_computed_vars_find_the_first_item_as_written(tmp_path, text,
                                                      expected):
    router = make_router(tmp_path, f"route-run = addheader:X: {text}")
    routed = route(router, QUERY_STRING="a=1&b=&a=2&=z&c&d=%20x+y",
                   HTTP_COOKIE=" sid=abc ; x=1;x=2;e=; y =3; n=a=b ")
    assert routed.added == [("X", expected)]


@pytest.mark.parametrize("line, reason", [
    ("route = ^/x static-next:/srv/x",
     'unable to register route "^/x static-next:/srv/x": action '
     '"static-next" is not implemented by ugu in route* rules yet; remove '
     "the rule, or do its work in the app"),
    ("route-run = logvar:k=v", 'unable to register route "logvar:k=v": '
     'action "logvar" is not implemented'),
    ("route-run = uwsgi:127.0.0.1:3031,0,0",
     'action "uwsgi" is not implemented'),
    ("route-run = nosuch:", 'unable to register route "nosuch:" (ugu has '
     'no action "nosuch" in route* rules; it has addheader, addvar,'),
    ("route-run = return:299", 'invalid status "299" for return'),
    ("route-run = return:", 'invalid status "" for return'),
    ("route-run = return:204", "return:204 answers with its phrase as the "
     "body, which a 204 cannot carry: write break:204"),
    ("route-run = break:40", 'invalid status "40" for break'),
    ("route-if = bogus:x break:", 'unable to find "bogus" route condition'),
    ("route-run = goto:nowhere", '"goto" to an unknown label "nowhere"'),
    ("route = ^/(x log:x", 'invalid regexp "^/(x"'),
    ("route = ^/x", "invalid route syntax"),
    ("route-run = log:${uwsgi[wid]}",
     "route var ${uwsgi[wid]} is not implemented by ugu yet"),
])
def test_refused_at_start_up(tmp_path, line, reason):
    with pytest.raises(ConfigError) as info:
        make_router(tmp_path, "route-label = before", line)
    error = info.value
    assert reason in error.reason
    assert (error.file, error.line) == (str(tmp_path / "routes.ini"), 3)
    assert error.option == line.partition(" = ")[0]


def test_response_only_actions_stay_refused_in_request_routes(tmp_path):
    """What the response phase refuses it still refuses, in its words."""
    config = resolve(["--ini", str(write_config(
        tmp_path, ["response-route-run = redirect:/x"]))], environ={})
    with pytest.raises(ConfigError) as info:
        ResponseRouter.from_config(config)
    assert 'action "redirect" is not implemented by ugu in ' \
        "response-route* rules yet" in info.value.reason


# --- against the real uWSGI ---------------------------------------------------

ECHO_APP = """
import json

KEYS = ["PATH_INFO", "QUERY_STRING", "REQUEST_URI", "REQUEST_METHOD",
        "SCRIPT_NAME", "UWSGI_SCHEME", "MYVAR", "wsgi.url_scheme",
        "REMOTE_ADDR", "DOCUMENT_ROOT"]


def application(environ, start_response):
    body = json.dumps({k: environ.get(k) for k in KEYS}).encode()
    start_response("200 OK", [("Content-Type", "application/json"),
                              ("X-App", "1"),
                              ("Content-Length", str(len(body)))])
    return [body]
"""
MOUNTED_APP = """
def application(environ, start_response):
    body = "mounted {SCRIPT_NAME} {PATH_INFO}".format(**environ).encode()
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [body]
"""
BIG = "/big" + "x" * 600
ROUTES = [
    "route-run = addheader:X-First: ${REQUEST_METHOD}",
    "route = ^/redir redirect:/elsewhere",
    "route = ^/file/(.*) static:%dstatic/$1",
    "route = ^/perm(.*) redirect-permanent:http://example.com$1",
    "route = ^/ret return:404",
    "route = ^/brk$ break:",
    "route = ^/brk403 break:403",
    "route = ^/brk418 break:418 I'm a teapot",
    "route = ^/rw/(.*) rewrite:/new/$1?added=1",
    "route = ^/rwl/(.*) rewrite-last:/newl/$1",
    "route = ^/blocked.txt$ break:403",
    "route-qs = foo addvar:MYVAR=qs",
    "route-if = equal:${PATH_INFO};/set setpathinfo:/changed",
    "route = ^/set seturi:/never",
    "route = ^/goto goto:later",
    "route = ^/cont continue:",
    "route = ^/last last:",
    "route = ^/r302 redirect-302:/to?$1",
    "route = ^/r301(.*) redirect-301:/to$1",
    "route = ^/bws break-with-status:410",
    "route = ^/rem remheader:Content-Type",
    "route = ^/del delheader:X-App",
    "route = ^/meth setmethod:PUT",
    "route = ^/tohead setmethod:HEAD",
    "route = ^/sn setscriptname:/sn",
    "route = ^/tom setscriptname:/m",
    "route = ^/byid setapp:/m",
    "route = ^/scheme setscheme:https",
    "route = ^/quiet donotlog:",
    "route = ^/ra setremoteaddr:192.0.2.1",
    "route = ^/uri seturi:/other?x",
    "route = ^/doc setdocroot:/srv",
    "route = ^/big addvar:BIG=" + "${REQUEST_URI}" * 8,
    "route-host = ^(hostx) addheader:X-Host: $1",
    "route-uri = \\?u=1 addheader:X-Uri: yes",
    "route-user-agent = ^(curl)/ addheader:X-UA: $1",
    "route-referer = ^http://ref/ addheader:X-Referer: 1",
    "route-remote-addr = ^127\\. addheader:X-Local: 1",
    "route-remote-user = . addheader:X-User: 1",
    "route-if-not = empty:${QUERY_STRING} addheader:X-Qs: ${QUERY_STRING}",
    "route-if = equal:${qs[go]};yes addheader:X-Go: [${qs[a]}] [${qs[]}]",
    "route-if-not = empty:${HTTP_COOKIE} addheader:X-Cookie: "
    "[${cookie[sid]}] [${cookie[x]}] [${cookie[e]}]",
    "route-if = startswith:${PATH_INFO};/back goto:${PATH_INFO}",
    "route-label = later",
    "route-run = addheader:X-Later: 1",
    "route-label = /back",
    "route-run = log:routed ${REQUEST_METHOD} ${PATH_INFO} ${QUERY_STRING}",
    "response-route-run = addheader:X-Response: ${MYVAR}",
]
REQUESTS = [
    ("GET", "/redir", {}), ("GET", "/perm/x", {}), ("GET", "/ret", {}),
    ("GET", "/file/a.txt", {}), ("HEAD", "/file/a.txt", {}),
    ("GET", "/brk", {}), ("GET", "/brk403", {}), ("GET", "/brk418", {}),
    ("GET", "/rw/z?orig=2", {}), ("GET", "/rw/z", {}),
    ("GET", "/rwl/q?x=1", {}), ("GET", "/a.txt", {}),
    ("HEAD", "/a.txt", {}), ("POST", "/a.txt", {}),
    ("GET", "/blocked.txt", {}), ("GET", "/x?foo=1", {}),
    ("GET", "/set", {}), ("GET", "/goto", {}), ("GET", "/cont", {}),
    ("GET", "/last", {}), ("GET", "/r302", {}), ("GET", "/r301/x?y", {}),
    ("GET", "/bws", {}), ("GET", "/rem", {}),
    ("GET", "/del", {}), ("GET", "/meth", {}), ("GET", "/tohead", {}),
    ("GET", "/sn/x", {}),
    ("GET", "/tom/x", {}), ("GET", "/byid/y", {}),
    ("GET", "/scheme", {}), ("GET", "/quiet", {}), ("GET", "/ra", {}),
    ("GET", "/uri", {}), ("GET", "/doc", {}), ("GET", BIG, {}),
    ("GET", "/h", {"Host": "hostx:80"}), ("GET", "/u?u=1", {}),
    ("GET", "/ua", {"User-Agent": "curl/8", "Referer": "http://ref/x"}),
    ("GET", "/c?a=1&b=&a=2&=z&c&go=yes",
     {"Cookie": "sid=abc ; x=1;x=2;e=; y =3"}),
    ("GET", "/back", {}), ("GET", "/z", {}),
]
# A request's log line, with what differs from run to run left out.
REQUEST_LINE = re.compile(r"^\[pid: \d+\|(app: .*) \[[^]]+\] (.*) in \d+ "
                          r"msecs (.*)$")


def serve(argv, tmp_path, http):
    """Start `argv` on the routes, answer REQUESTS; (answers, log)."""
    port = support.free_port()
    kind = "http-socket" if http else "socket"
    path = write_config(tmp_path, [f"{kind} = 127.0.0.1:{port}",
                                   "wsgi-file = app.py",
                                   "mount = /m=mounted.py",
                                   "check-static = static", *ROUTES])
    server = support.Process([*argv, "--ini", str(path)], cwd=tmp_path)
    try:
        support.wait_for_port(port)
        answers = [ask(port, http, *request) for request in REQUESTS]
        server.wait_for_log(r"GET /z => ")
    finally:
        server.stop()
    return answers, server.output()


def ask(port, http, method, target, headers):
    if not http:
        return support.uwsgi_request(port, target, method=method,
                                     headers=list(headers.items()))
    fields = {"Host": "test", **headers}
    head = "".join(f"{name}: {value}\r\n" for name, value in fields.items())
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"{method} {target} HTTP/1.0\r\n{head}\r\n".encode())
        return support.read_to_eof(s)


def routing_lines(output):
    """The request lines (without pid, time and duration) and the route
    log lines, in order."""
    lines = []
    for line in output.splitlines():
        m = REQUEST_LINE.match(line)
        if m:
            lines.append(" ".join(m.groups()))
        elif line.startswith(("routed ", "not enough buffer space")):
            lines.append(line)
    return lines


def as_http(raw):
    """What an HTTP client makes of an answer: the status code, the
    headers but Connection (h11 adds it for an HTTP/1.0 client) and the
    body."""
    status, headers, body = support.split_response(raw)
    headers.pop("connection", None)
    return status.partition(" ")[2], headers, body


@pytest.fixture
def site(tmp_path):
    (tmp_path / "app.py").write_text(ECHO_APP)
    (tmp_path / "mounted.py").write_text(MOUNTED_APP)
    (tmp_path / "static").mkdir()
    for name in ("a.txt", "blocked.txt"):
        (tmp_path / "static" / name).write_text("hello\n")
    return tmp_path


@pytest.mark.parametrize("http", [False, True], ids=["uwsgi", "http"])
def test_routes_answer_and_log_as_uwsgi(site, uwsgi_binary, http):
    theirs, their_log = serve([uwsgi_binary], site, http)
    ours, our_log = serve(support.UGU, site, http)
    for request, their, our in zip(REQUESTS, theirs, ours):
        if http:
            assert as_http(our) == as_http(their), request
        else:
            assert our == their, request
    assert routing_lines(our_log) == routing_lines(their_log)
    # The table held what it is meant to show.
    lines = routing_lines(our_log)
    logged = [line for line in lines if line.startswith("app: ")]
    assert len(logged) == len(REQUESTS) - 1  # all but donotlog's
    assert not any(" GET /quiet " in line for line in logged)
    assert "routed GET /quiet " in lines
    assert "routed PUT /meth " in lines
    assert any(line.startswith("app: 1|") and "GET /byid/y " in line
               for line in logged)
    assert any(" 192.0.2.1 () " in line and "GET /ra " in line
               for line in logged)
    assert "not enough buffer space to add BIG variable, consider " \
        "increasing it with the --buffer-size option" in lines


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_regexps_read_as_uwsgis_pcre_reads_them(site, start_server, server):
    """Classes and word boundaries are ASCII's, as in a PCRE without UTF,
    and `{,2}` is those characters, as in PCRE2 10.42."""
    port = support.free_port()
    path = write_config(site, [
        f"http-socket = 127.0.0.1:{port}", "wsgi-file = app.py",
        "route = ^/(\\w+)$ log:routed word $1",
        "route = ^/a\\sb log:routed space",
        "route = ^/caf\\b log:routed boundary",
        "route = ^/a{,2}b$ log:routed brace",
        "route = ^/end$ log:routed end"])
    process = start_server(server, ["--ini", str(path)], cwd=site)
    support.wait_for_port(port)
    for target in ("/caf%E9", "/a%A0b", "/a%1Fb", "/aab", "/a%7B,2%7Db",
                   "/end"):
        ask(port, True, "GET", target, {})
    process.wait_for_log(r"GET /end => ")
    assert [line for line in process.output().splitlines()
            if line.startswith("routed ")] == [
        "routed boundary", "routed word aab", "routed brace",
        "routed word end", "routed end"]


def test_a_code_point_escape_pcre_refuses_is_refused(tmp_path):
    with pytest.raises(ConfigError, match=r"PCRE does not support \\u"):
        make_router(tmp_path, "route = ^/\\u0041 break:403")


def test_a_head_request_set_to_get_is_answered_with_the_head(site, procs):
    """The client asked for the head: setmethod changes what the app and
    the log line see, not what the client waits for (it was a 500)."""
    port = support.free_port()
    path = write_config(site, [f"http-socket = 127.0.0.1:{port}",
                               "wsgi-file = app.py",
                               "route-if = equal:${REQUEST_METHOD};HEAD "
                               "setmethod:GET"])
    server = procs.ugu("--ini", str(path), cwd=site)
    support.wait_for_port(port)
    raw = ask(port, True, "HEAD", "/x", {})
    status, headers, body = support.split_response(raw)
    assert status == "HTTP/1.0 200 OK" and body == b""
    assert int(headers["content-length"]) > 0
    server.wait_for_log(r"GET /x => generated \d+ bytes .*\(HTTP/1\.0 200\)")


def test_a_static_route_answers_404_for_a_file_it_cannot_send(site, procs):
    """DEVIATIONS 15: uWSGI closes the connection unanswered; a path
    that is not the file's real one is also named in uWSGI's line."""
    port = support.free_port()
    path = write_config(site, [f"socket = 127.0.0.1:{port}",
                               "wsgi-file = app.py",
                               "route = ^/rel static:static/a.txt",
                               "route = ^/(.*) static:%dstatic/$1"])
    ugu = procs.ugu("--ini", str(path), cwd=site)
    support.wait_for_port(port)
    assert support.uwsgi_request(port, "/a.txt").endswith(b"\r\n\r\nhello\n")
    for target, method in (("/nope.txt", "GET"), ("/", "GET"),
                           ("/a.txt", "POST"), ("/rel", "GET")):
        status, headers, body = support.split_response(
            support.uwsgi_request(port, target, method=method))
        assert (status, body) == ("HTTP/1.1 404 Not Found", b"Not Found")
    ugu.wait_for_log(r"GET /rel => ")
    assert f"[uwsgi-fileserve] security error: {site}/static/a.txt is " \
        "not under static/a.txt or a safe path" in ugu.output()


def test_a_redirect_that_a_request_breaks_gets_a_500(site, procs):
    """A line break the request put in a Location is refused as an app's
    would be; uWSGI sends it, and the request adds a header of its own."""
    port = support.free_port()
    path = write_config(site, [f"socket = 127.0.0.1:{port}",
                               "wsgi-file = app.py",
                               "route = ^/r(.*) redirect:$1"])
    ugu = procs.ugu("--ini", str(path), cwd=site)
    support.wait_for_port(port)
    raw = support.uwsgi_request(port, "/r/a\r\nX-Evil: 1")
    assert raw.startswith(b"HTTP/1.1 500 Internal Server Error\r\n")
    assert b"X-Evil" not in raw
    ugu.wait_for_log(r"route answer refused: invalid http header "
                     r"'Location'")
    assert support.uwsgi_request(port, "/r/b").startswith(
        b"HTTP/1.1 302 Found\r\nLocation: /b\r\n")


@pytest.mark.parametrize("option", ["route", "response-route"])
def test_an_added_header_that_a_request_breaks_gets_a_500(site, procs,
                                                          option):
    """An `addheader` value taken from the request (PATH_INFO, with a
    decoded %0D%0A) is refused as an app's header with a line break is;
    uWSGI sends it, and the request adds a header of its own."""
    port = support.free_port()
    path = write_config(site, [f"http-socket = 127.0.0.1:{port}",
                               "wsgi-file = app.py",
                               f"{option} = ^/ addheader:X-Path: "
                               "${PATH_INFO}"])
    ugu = procs.ugu("--ini", str(path), cwd=site)
    support.wait_for_port(port)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /a%0D%0AX-Evil:%201 HTTP/1.0\r\n\r\n")
        raw = support.read_to_eof(s)
    assert raw.startswith(b"HTTP/1.0 500 Internal Server Error\r\n")
    assert b"X-Evil" not in raw
    ugu.wait_for_log(r"invalid http header 'X-Path'")
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET /b HTTP/1.0\r\n\r\n")
        raw = support.read_to_eof(s)
    assert raw.startswith(b"HTTP/1.0 200 OK\r\n")
    assert b"\r\nX-Path: /b\r\n" in raw


def hosts_seen(argv, site, http):
    """What route-host and log-format's %(host) make of a request with
    no Host, an empty one and a Host: [X-Host headers], [log lines]."""
    port = support.free_port()
    kind = "http-socket" if http else "socket"
    path = write_config(site, [f"{kind} = 127.0.0.1:{port}",
                               "wsgi-file = app.py",
                               "route-host = ^(.*)$ addheader:X-Host: [$1]",
                               "log-format = host=[%(host)] %(uri)"])
    server = support.Process([*argv, "--ini", str(path)], cwd=site)
    answers = []
    try:
        support.wait_for_port(port)
        for target, host in (("/none", None), ("/empty", ""),
                             ("/named", "h.example")):
            headers = {} if host is None else {"Host": host}
            if http:
                head = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
                with socket.create_connection(("127.0.0.1", port),
                                              timeout=10) as s:
                    s.sendall(f"GET {target} HTTP/1.0\r\n{head}\r\n"
                              .encode())
                    raw = support.read_to_eof(s)
            else:
                raw = support.uwsgi_request(port, target,
                                            headers=list(headers.items()))
            answers.append(support.split_response(raw)[1].get("x-host"))
        server.wait_for_log(r"\] /named\n")
    finally:
        server.stop()
    return answers, re.findall(r"^host=.*$", server.output(), re.M)


@pytest.mark.parametrize("http", [False, True], ids=["uwsgi", "http"])
def test_the_host_is_uwsgis_with_no_host_or_an_empty_one(site, uwsgi_binary,
                                                         http):
    """uWSGI's request host is HTTP_HOST, even empty, or SERVER_NAME when
    there is no HTTP_HOST (or an empty one came before SERVER_NAME):
    route-host matches it and %(host) logs it."""
    theirs = hosts_seen([uwsgi_binary], site, http)
    ours = hosts_seen(support.UGU, site, http)
    assert ours == theirs
    assert theirs[0][2] == "[h.example]"


def test_startup_dump_matches_uwsgi(tmp_path, procs, uwsgi_binary):
    port = support.free_port()
    path = write_config(tmp_path, [f"socket = 127.0.0.1:{port}", *ROUTES,
                                   "collect-header = X-A A"])
    uwsgi = procs.start([uwsgi_binary, "--ini", str(path)], cwd=tmp_path)
    try:
        uwsgi.wait_for_log(r"spawned uWSGI worker")
    finally:
        # Right after start-up uWSGI may not have its SIGINT handler yet,
        # and we need nothing more from it.
        uwsgi.stop(signal.SIGKILL)
    theirs = [line for line in uwsgi.output().splitlines()
              if line.startswith(("*** dumping", "[rule: ", "*** end of",
                                  "collecting header"))]
    ugu = procs.ugu("--ini", str(path), cwd=tmp_path)
    ugu.wait_for_log(r"spawned uWSGI worker")
    ours = [line for line in ugu.output().splitlines()
            if line.startswith(("*** dumping", "[rule: ", "*** end of",
                                "collecting header"))]
    assert ours == theirs
    assert len(theirs) == len(ROUTES) + 4 + 1
    assert theirs[0] == "*** dumping internal routing table ***"


def test_pcre_jit_changes_nothing_but_its_line(site, procs):
    """ugu's regexps have no JIT: as a uWSGI whose PCRE lacks one, the
    start says so after its first line, and the routes match as
    without it."""
    port = support.free_port()
    path = write_config(site, [f"http-socket = 127.0.0.1:{port}",
                               "wsgi-file = app.py", "pcre-jit = true",
                               "route = ^/gone$ break:410 Gone"])
    ugu = procs.ugu("--ini", str(path), cwd=site)
    support.wait_for_port(port)
    assert ask(port, True, "GET", "/gone", {}).startswith(
        b"HTTP/1.0 410 Gone\r\n")
    assert re.search(r"\*\*\* Starting uWSGI .*\npcre jit disabled\n",
                     ugu.output())
