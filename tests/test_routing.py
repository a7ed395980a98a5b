"""Response routing: rules read from INI files, run on response heads.

The engine is pure, so most tests build a router from an INI file and call
it directly; the differential tests start the real uWSGI on the same rules
and compare its start-up dump and its refusals with ours.
"""

import re
import signal

import pytest

from tests import support
from ugu.options.errors import ConfigError
from ugu.options.resolve import resolve
from ugu.routing.engine import ResponseRouter

TUTORIAL = [
    "collect-header = Content-Type RESPONSE_CONTENT_TYPE",
    "response-route-if = equal:${RESPONSE_CONTENT_TYPE};application/json "
    "addheader:uWSGI-Encoding: gzip",
    "response-route-if = startswith:${RESPONSE_CONTENT_TYPE};text/html "
    "addheader:uWSGI-Encoding: gzip",
]
TUTORIAL_DUMP = [
    "*** dumping internal response routing table ***",
    "[rule: 0] subject: ${RESPONSE_CONTENT_TYPE};application/json "
    "func: equal action: addheader:uWSGI-Encoding: gzip",
    "[rule: 1] subject: ${RESPONSE_CONTENT_TYPE};text/html "
    "func: startswith action: addheader:uWSGI-Encoding: gzip",
    "*** end of the internal response routing table ***",
    "collecting header Content-Type to var RESPONSE_CONTENT_TYPE",
]
GZIP = ("uWSGI-Encoding", "gzip")


def write_config(tmp_path, lines):
    path = tmp_path / "routes.ini"
    path.write_text("[uwsgi]\n" + "\n".join(lines) + "\n")
    return path


def make_router(tmp_path, *lines, log=None):
    """A router for `lines` (options); their INI line numbers start at 2."""
    path = write_config(tmp_path, lines)
    config = resolve(["--ini", str(path)], environ={})
    if log is None:
        return ResponseRouter.from_config(config)
    return ResponseRouter.from_config(config, log=log)


def route(router, headers, **variables):
    variables.setdefault("PATH_INFO", "/")
    return router.apply(variables, list(headers))


# --- the tutorial ---------------------------------------------------------

def test_tutorial_dump(tmp_path):
    router = make_router(tmp_path, *TUTORIAL)
    assert router.active
    assert router.startup_lines() == TUTORIAL_DUMP


@pytest.mark.parametrize("content_type", [
    "text/html", "text/html; charset=utf-8", "application/json"])
def test_tutorial_marks_html_and_json(tmp_path, content_type):
    router = make_router(tmp_path, *TUTORIAL)
    app = [("Content-Type", content_type), ("Content-Length", "12")]
    assert route(router, app) == [*app, GZIP]


@pytest.mark.parametrize("content_type", [
    "text/css", "application/json; charset=utf-8", "TEXT/HTML", ""])
def test_tutorial_leaves_others_alone(tmp_path, content_type):
    router = make_router(tmp_path, *TUTORIAL)
    app = [("Content-Type", content_type), ("Content-Length", "12")]
    assert route(router, app) == app


def test_no_content_type_means_empty_var(tmp_path):
    router = make_router(tmp_path, *TUTORIAL)
    variables = {"PATH_INFO": "/"}
    assert router.apply(variables, []) == []
    assert "RESPONSE_CONTENT_TYPE" not in variables


def test_apply_returns_a_new_list(tmp_path):
    router = make_router(tmp_path, *TUTORIAL)
    app = [("Content-Type", "text/html")]
    sent = route(router, app)
    assert app == [("Content-Type", "text/html")]
    assert sent is not app


def test_without_routing_options_the_router_is_idle(tmp_path):
    router = make_router(tmp_path, "processes = 2")
    assert not router.active
    assert router.startup_lines() == []
    app = [("Content-Type", "text/html")]
    assert route(router, app) == app


# --- collect-header and pull-header ---------------------------------------

def test_collect_header_is_case_insensitive_and_last_wins(tmp_path):
    router = make_router(tmp_path, "collect-header = x-multi MM")
    variables = {}
    app = [("X-Multi", "m1"), ("x-MULTI", "m2")]
    assert router.apply(variables, app) == app
    assert variables == {"MM": "m2"}


def test_collected_var_is_usable_in_actions(tmp_path):
    router = make_router(tmp_path, "collect-header = X-Tag TAG",
                         "response-route-run = addheader:X-Saw: ${TAG}")
    assert route(router, [("X-Tag", "abc")]) == [
        ("X-Tag", "abc"), ("X-Saw", "abc")]


def test_pull_header_moves_the_header_into_a_var(tmp_path):
    router = make_router(tmp_path, "pull-header = X-Secret SECRET",
                         "collect-header = X-Other OTHER",
                         "response-route-run = addheader:X-Secret: ${SECRET}")
    variables = {}
    sent = router.apply(variables, [("X-Secret", "s"), ("X-Other", "o")])
    assert sent == [("X-Other", "o"), ("X-Secret", "s")]
    assert variables == {"SECRET": "s", "OTHER": "o"}
    # uWSGI lists all collected headers, then all pulled ones.
    assert router.startup_lines()[-2:] == [
        "collecting header X-Other to var OTHER",
        "pulling header X-Secret to var SECRET"]


def test_collect_header_var_keeps_its_spaces(tmp_path):
    router = make_router(tmp_path, "collect-header = X-A B C")
    assert router.startup_lines() == ["collecting header X-A to var B C"]


# --- conditions -------------------------------------------------------------

@pytest.mark.parametrize("condition, value, expected", [
    ("equal:${V};abc", "abc", True),
    ("equal:${V};abc", "abcd", False),
    ("isequal:${V};abc", "abc", True),
    ("eq:${V};abc", "abc", True),
    ("==:${V};abc", "abc", True),
    ("equal:${V};", "", True),
    ("equal:${V};${V}", "x;y", True),
    ("startswith:${V};ab", "abc", True),
    ("startswith:${V};bc", "abc", False),
    ("endswith:${V};bc", "abc", True),
    ("endswith:${V};ab", "abc", False),
    ("contains:${V};b", "abc", True),
    ("contain:${V};x", "abc", False),
    ("regexp:${V};^a.c$", "abc", True),
    ("re:${V};^b", "abc", False),
    ("empty:${V}", "", True),
    ("empty:${V}", "x", False),
    ("ishigher:${V};5", "7", True),
    ("ishigher:${V};5", "5", False),
    (">:${V};5", "6x", True),
    ("islower:${V};5", "abc", True),
    ("<:${V};5", " 7", False),
    ("islower:${V};0", "-3", True),
    ("ishigherequal:${V};5", "5", True),
    (">=:${V};5", "4", False),
    ("islowerequal:${V};5", "5", True),
    ("<=:${V};5", "+6", False),
])
def test_condition(tmp_path, condition, value, expected):
    router = make_router(
        tmp_path, f"response-route-if = {condition} addheader:X-Hit: 1")
    hit = route(router, [], V=value) == [("X-Hit", "1")]
    assert hit is expected


def test_path_conditions(tmp_path):
    (tmp_path / "file").write_text("x")
    (tmp_path / "dir").mkdir()
    (tmp_path / "link").symlink_to(tmp_path / "file")
    script = tmp_path / "script"
    script.write_text("#!/bin/sh\n")
    script.chmod(0o755)
    router = make_router(tmp_path, *(
        f"response-route-if = {name}:${{P}} addheader:X-{name}: 1"
        for name in ("exists", "isfile", "isdir", "islink", "isexec")))

    def hits(path):
        return [h[0][2:] for h in route(router, [], P=str(path))]
    assert hits(tmp_path / "file") == ["exists", "isfile"]
    assert hits(tmp_path / "dir") == ["exists", "isdir", "isexec"]
    assert hits(tmp_path / "link") == ["exists", "isfile", "islink"]
    assert hits(script) == ["exists", "isfile", "isexec"]
    assert hits(tmp_path / "missing") == []


def test_negated_condition(tmp_path):
    router = make_router(
        tmp_path, "response-route-if-not = empty:${HTTP_X} "
        "addheader:X-Has: ${HTTP_X}")
    assert router.startup_lines()[1] == (
        "[rule: 0] subject: ${HTTP_X} func: !empty "
        "action: addheader:X-Has: ${HTTP_X}")
    assert route(router, [], HTTP_X="yes") == [("X-Has", "yes")]
    assert route(router, []) == []


def test_negated_regexp_has_no_captures(tmp_path):
    router = make_router(
        tmp_path, "response-route-if-not = regexp:${PATH_INFO};^/(a) "
        "addheader:X-Cap: [$1]")
    assert route(router, [], PATH_INFO="/b") == [("X-Cap", "[]")]


def test_condition_args_split_before_expansion(tmp_path):
    # A ";" inside a var's value is data, not the separator.
    router = make_router(tmp_path, "response-route-if = "
                         "startswith:${V};a;b addheader:X-Hit: 1")
    assert route(router, [], V="a;bc") == [("X-Hit", "1")]
    assert route(router, [], V="a") == []


# --- regexp rules and captures ----------------------------------------------

def test_regexp_rule_captures(tmp_path):
    router = make_router(
        tmp_path, "response-route = ^/r/(.*)/(.*)$ "
        "addheader:X-Route: [$1] [$2] [$0] [$3] [$10] [$$1] [${NOPE}]")
    assert router.startup_lines()[1] == (
        "[rule: 0] subject: path_info regexp: ^/r/(.*)/(.*)$ action: "
        "addheader:X-Route: [$1] [$2] [$0] [$3] [$10] [$$1] [${NOPE}]")
    assert route(router, [], PATH_INFO="/r/aa/bb") == [
        ("X-Route", "[aa] [bb] [/r/aa/bb] [] [aa0] [$$1] []")]
    assert route(router, [], PATH_INFO="/other") == []


@pytest.mark.parametrize("option, var, shown", [
    ("response-route", "PATH_INFO", "path_info"),
    ("response-route-host", "HTTP_HOST", "http_host"),
    ("response-route-uri", "REQUEST_URI", "request_uri"),
    ("response-route-qs", "QUERY_STRING", "query_string"),
    ("response-route-remote-addr", "REMOTE_ADDR", "remote_addr"),
    ("response-route-user-agent", "HTTP_USER_AGENT", "user_agent"),
    ("response-route-referer", "HTTP_REFERER", "referer"),
    ("response-route-remote-user", "REMOTE_USER", "remote_user"),
])
def test_regexp_rule_subjects(tmp_path, option, var, shown):
    router = make_router(tmp_path, f"{option} = ^x(.) addheader:X-C: $1")
    assert router.startup_lines()[1] == (
        f"[rule: 0] subject: {shown} regexp: ^x(.) action: "
        "addheader:X-C: $1")
    assert route(router, [], **{var: "xyz"}) == [("X-C", "y")]
    assert route(router, [], **{var: "axy"}) == []
    assert router.apply({}, []) == []


def test_regexp_condition_captures(tmp_path):
    router = make_router(
        tmp_path, "response-route-if = regexp:${HTTP_HOST};^(\\w+)\\.example$ "
        "addheader:X-Site: $1")
    assert route(router, [], HTTP_HOST="blog.example") == [("X-Site", "blog")]


def test_a_posix_class_reads_as_pcre_reads_it(tmp_path):
    """`[[:digit:]]` is PCRE's class of digits in a rule and in a
    condition, not Python's set of `[:digt` followed by `]`; a class
    PCRE lacks stops the start."""
    router = make_router(
        tmp_path, "response-route = ^/([[:digit:]]+)$ addheader:X-N: $1\n"
        "response-route-if = regexp:${PATH_INFO};^/[^[:alnum:]]+$ "
        "addheader:X-P: 1")
    assert route(router, [], PATH_INFO="/42") == [("X-N", "42")]
    assert route(router, [], PATH_INFO="/:d]") == []
    assert route(router, [], PATH_INFO="/-.-") == [("X-P", "1")]
    with pytest.raises(ConfigError, match="unknown POSIX class name "
                                          r"\[:digits:\]"):
        make_router(tmp_path, "response-route = ^/[[:digits:]] break:404")


def test_a_regexp_pattern_is_taken_as_written(tmp_path):
    """As uWSGI: only the subject is expanded, so no request var (which a
    client may set) becomes a regexp."""
    router = make_router(
        tmp_path, "response-route-if = regexp:${PATH_INFO};${PATTERN} "
        "addheader:X-M: matched")
    assert route(router, [], PATH_INFO="/ab", PATTERN=".*") == []
    # The pattern the request var held, written in the rule, matches.
    written = make_router(
        tmp_path, "response-route-if = regexp:${PATH_INFO};.* "
        "addheader:X-M: matched")
    assert route(written, [], PATH_INFO="/ab") == [("X-M", "matched")]


def test_a_capture_is_not_expanded_again(tmp_path):
    # uWSGI would expand the ${...} that a client put in its path.
    router = make_router(tmp_path,
                         "response-route = ^/r/(.*)$ addheader:X-R: $1")
    sent = route(router, [], PATH_INFO="/r/${SECRET}", SECRET="s3cret")
    assert sent == [("X-R", "${SECRET}")]


# --- actions -----------------------------------------------------------------

@pytest.mark.parametrize("action", ["delheader", "remheader"])
def test_delheader_removes_an_app_header(tmp_path, action):
    router = make_router(tmp_path, "response-route-run = addheader:X-App: 2",
                         f"response-route-run = {action}:x-app")
    app = [("Content-Type", "text/html"), ("X-App", "1"), ("X-APP", "3")]
    assert route(router, app) == [("Content-Type", "text/html")]


def test_addheader_after_delheader_stays(tmp_path):
    router = make_router(tmp_path, "response-route-run = delheader:Server",
                         "response-route-run = addheader:Server:ugu")
    assert route(router, [("Server", "app")]) == [("Server", "ugu")]


def test_addvar_and_expansion(tmp_path):
    router = make_router(
        tmp_path, "response-route-run = addvar:WHO=${REMOTE_ADDR}=x",
        "response-route-run = addheader:X-Who: <${WHO}>")
    variables = {"REMOTE_ADDR": "127.0.0.1"}
    assert router.apply(variables, []) == [("X-Who", "<127.0.0.1=x>")]
    assert variables["WHO"] == "127.0.0.1=x"


def test_log_action(tmp_path):
    logged = []
    router = make_router(tmp_path, "response-route-run = log:done ${PATH_INFO}"
                         " $1", log=logged.append)
    route(router, [], PATH_INFO="/x")
    assert logged == ["done /x "]


def test_log_goes_to_stderr_by_default(tmp_path, capsys):
    router = make_router(tmp_path, "response-route-run = log:hello")
    route(router, [])
    assert capsys.readouterr().err == "hello\n"


@pytest.mark.parametrize("stop", ["continue:", "last:"])
def test_continue_ends_routing(tmp_path, stop):
    router = make_router(tmp_path, "response-route-run = addheader:X-1: 1",
                         f"response-route-if = equal:${{V}};stop {stop}",
                         "response-route-run = addheader:X-2: 2")
    assert route(router, [], V="stop") == [("X-1", "1")]
    result = router.run({"V": "stop"}, [("Content-Length", "5")])
    assert result.send_body and result.status is None
    assert route(router, [], V="go") == [("X-1", "1"), ("X-2", "2")]


def test_break_ends_routing_and_drops_the_body(tmp_path):
    router = make_router(tmp_path, "response-route-run = addheader:X-1: 1",
                         "response-route-run = break:",
                         "response-route-run = addheader:X-2: 2")
    app = [("Content-Type", "text/html"), ("Content-Length", "5"),
           ("Transfer-Encoding", "chunked")]
    result = router.run({}, app)
    assert not result.send_body
    assert result.status is None
    # The app's length would promise a body that never comes.
    assert result.headers == [("Content-Type", "text/html"), ("X-1", "1"),
                              ("Content-Length", "0")]


def test_static_sends_a_file_instead_of_the_response(tmp_path):
    """X-Sendfile emulation: the file's own head replaces the app's, and
    the headers routes add go after it, as in uWSGI."""
    router = make_router(
        tmp_path, "collect-header = X-Sendfile X_SENDFILE",
        "add-header = X-Always: 1",
        "response-route-run = addheader:X-1: 1",
        "response-route-if-not = empty:${X_SENDFILE} static:${X_SENDFILE}",
        "response-route-run = addheader:X-Never: 1")
    result = router.run({}, [("X-Sendfile", "/srv/f.txt"),
                             ("Content-Length", "3")])
    assert result.file == "/srv/f.txt"
    assert result.headers == [("X-Always", "1"), ("X-1", "1")]
    assert router.run({}, [("Content-Length", "3")]).file is None


@pytest.mark.parametrize("arg, status", [
    ("403", "403 Forbidden"), ("403 Go away", "403 Go away"),
    ("499", "499 Unknown"), ("418 ${PATH_INFO}", "418 ${PATH_INFO}")])
def test_break_with_a_status_replaces_the_response(tmp_path, arg, status):
    router = make_router(tmp_path, "response-route-run = addheader:X-1: 1",
                         f"response-route-run = break:{arg}")
    result = router.run({"PATH_INFO": "/"}, [("X-App", "a")])
    assert result.status == status
    assert not result.send_body
    assert result.headers == [("Connection", "close"),
                              ("Content-Type", "text/plain"), ("X-1", "1"),
                              ("Content-Length", "0")]


def test_goto_jumps_forward_to_the_label(tmp_path):
    router = make_router(
        tmp_path, "response-route-if = equal:${V};skip goto:end",
        "response-route-run = addheader:X-Skipped: no",
        "response-route-label = end",
        "response-route-run = addheader:X-End: 1")
    assert router.startup_lines()[1:5] == [
        "[rule: 0] subject: ${V};skip func: equal action: goto:end",
        "[rule: 1] action: addheader:X-Skipped: no",
        "[rule: 2] label: end",
        "[rule: 3] action: addheader:X-End: 1"]
    assert route(router, [], V="skip") == [("X-End", "1")]
    assert route(router, [], V="") == [("X-Skipped", "no"), ("X-End", "1")]


def test_goto_to_the_next_rule_and_to_the_first_label(tmp_path):
    router = make_router(
        tmp_path, "response-route-run = goto:a",
        "response-route-label = a",
        "response-route-run = addheader:X-A: 1",
        "response-route-label = a",
        "response-route-run = addheader:X-B: 1")
    assert route(router, []) == [("X-A", "1"), ("X-B", "1")]


@pytest.mark.parametrize("target", ["back", "missing"])
def test_goto_from_vars_that_fails_breaks(tmp_path, target):
    logged = []
    router = make_router(
        tmp_path, "response-route-label = back",
        "response-route-run = addheader:X-1: 1",
        "response-route-run = goto:${TARGET}",
        "response-route-run = addheader:X-2: 2", log=logged.append)
    result = router.run({"TARGET": target}, [])
    assert logged == ['[uwsgi-route] ERROR "goto" instruction can only jump '
                      "forward (check your label !!!)"]
    assert not result.send_body
    assert result.headers == [("X-1", "1"), ("Content-Length", "0")]


def test_goto_to_a_number_without_such_a_label_goes_to_that_rule(
        tmp_path):
    """As uWSGI: rule 0 jumps to rule 2 (the label counts as rule 1)."""
    router = make_router(
        tmp_path, "response-route-run = goto:2",
        "response-route-label = skipped",
        "response-route-run = addheader:X-2: two",
        "response-route-run = goto:${N}",
        "response-route-run = addheader:X-4: four",
        "response-route-run = addheader:X-5: five")
    assert route(router, [], N="5") == [("X-2", "two"), ("X-5", "five")]


def test_goto_from_vars_that_works(tmp_path):
    router = make_router(
        tmp_path, "response-route-run = goto:${TARGET}",
        "response-route-run = addheader:X-1: 1",
        "response-route-label = end",
        "response-route-run = addheader:X-2: 2")
    assert route(router, [], TARGET="end") == [("X-2", "2")]


def test_rules_keep_their_order_across_options(tmp_path):
    router = make_router(
        tmp_path, "response-route-run = addheader:X-1: 1",
        "response-route = ^/ addheader:X-2: 2",
        "response-route-if-not = empty:x addheader:X-3: 3",
        "response-route-if = empty: addheader:X-4: 4",
        "response-route-run = addheader:X-5: 5")
    assert [h[0] for h in route(router, [])] == [
        "X-1", "X-2", "X-3", "X-4", "X-5"]


# --- refusals ----------------------------------------------------------------

@pytest.mark.parametrize("line, reason", [
    ("response-route-if = empty:${X}", "invalid route syntax"),
    ("response-route-if = empty:${X} break", "invalid route syntax"),
    ("response-route-run = break", "invalid route syntax"),
    ("response-route = ^/x", "invalid route syntax"),
    ("response-route-if = bogus break:", "invalid route condition syntax"),
    ("response-route-if = bogus:x break:",
     'unable to find "bogus" route condition'),
    ("response-route-if = EQUAL:a;a break:",
     'unable to find "EQUAL" route condition'),
    ("response-route-if = ipv4in:${REMOTE_ADDR};10.0.0.0/8 break:",
     'unable to find "ipv4in" route condition (not implemented by ugu yet)'),
    ("response-route-if = empty:x foo:",
     'unable to register route "empty:x foo:"'),
    ("response-route-if = empty:a  log:x",
     'unable to register route "empty:a  log:x"'),
    ("response-route-run = chunked:",
     'unable to register route "chunked:": action "chunked" is not '
     'implemented'),
    ("response-route-if = eq:abc log:x",
     'route condition "eq" needs two arguments separated by ";"'),
    ("response-route = ^/(x log:x", 'invalid regexp "^/(x"'),
    ("response-route-if = regexp:${X};( log:x", 'invalid regexp "("'),
    ("response-route-run = addvar:FOO",
     "invalid addvar syntax, must be KEY=VAL"),
    ("response-route-run = addheader:X-Bad", 'addheader needs "Name: value"'),
    ("response-route-run = delheader:", "delheader needs a header name"),
    ("response-route-run = break:abc", 'invalid status "abc" for break'),
    ("response-route-run = break:40", 'invalid status "40" for break'),
    ("response-route-run = goto:nowhere",
     '"goto" to an unknown label "nowhere" (a number jumps to that rule)'),
    ("response-route-run = log:${time[unix]}",
     "route var ${time[unix]} is not implemented by ugu yet"),
    ("collect-header = Content-Type",
     "invalid collect header syntax, must be <header> <var>"),
    ("pull-header = X-A",
     "invalid pull header syntax, must be <header> <var>"),
])
def test_refused_at_start_up(tmp_path, line, reason):
    lines = ["response-route-label = before", line,
             "response-route-run = log:after"]
    with pytest.raises(ConfigError) as info:
        make_router(tmp_path, *lines)
    error = info.value
    assert error.reason.startswith(reason)
    assert error.file == str(tmp_path / "routes.ini")
    assert error.line == 3
    assert error.option == line.partition(" = ")[0]
    assert f"routes.ini:3: option '{error.option}'" in str(error)


def test_backward_goto_is_refused_at_start_up(tmp_path):
    with pytest.raises(ConfigError) as info:
        make_router(tmp_path, "response-route-label = top",
                    "response-route-run = addheader:X: 1",
                    "response-route-run = goto:top")
    assert info.value.reason == ('"goto" can only jump forward, and label '
                                 '"top" is rule 0, before this one')
    assert info.value.line == 4


# --- against the real uWSGI ------------------------------------------------

DIFFERENTIAL = [
    *TUTORIAL,
    "pull-header = X-Secret SECRET",
    "response-route-if-not = empty:${SECRET} goto:secret",
    "response-route = ^/r/(.*)$ addheader:X-Route: $1",
    "response-route-host = ^example addvar:HOST_SEEN=1",
    "response-route-if = ==:${V};a log:equal ${V}",
    "response-route-if = regexp:${PATH_INFO};^/(a) continue:",
    "response-route-run = log:done ${PATH_INFO}",
    "response-route-label = secret",
    "response-route-run = delheader:X-Internal",
    "response-route-if = >=:${CONTENT_LENGTH};10 break:403 Forbidden",
    "collect-header = X-B B C",
]
DUMP_PREFIXES = ("*** dumping internal response", "[rule: ",
                 "*** end of the internal response", "collecting header ",
                 "pulling header ")


def start_uwsgi(procs, binary, tmp_path, lines):
    port = support.free_port()
    path = write_config(tmp_path, [f"socket = 127.0.0.1:{port}", *lines])
    return procs.start([binary, "--ini", str(path)], cwd=tmp_path), path


def test_startup_dump_matches_uwsgi(tmp_path, procs, uwsgi_binary):
    uwsgi, path = start_uwsgi(procs, uwsgi_binary, tmp_path, DIFFERENTIAL)
    try:
        uwsgi.wait_for_log(r"spawned uWSGI worker")
    finally:
        # Right after start-up uWSGI may not have its SIGINT handler yet,
        # and we need nothing more from it.
        uwsgi.stop(signal.SIGKILL)
    theirs = [line for line in uwsgi.output().splitlines()
              if line.startswith(DUMP_PREFIXES)]
    config = resolve(["--ini", str(path)], environ={})
    ours = ResponseRouter.from_config(config).startup_lines()
    assert ours == theirs
    assert len(theirs) == 16  # 11 rules, 2 banners, 3 header copies


@pytest.mark.parametrize("line", [
    "response-route-if = empty:${X}",
    "response-route-run = break",
    "response-route-if = bogus break:",
    "response-route-if = bogus:${X} break:",
    "response-route-if = empty:${X} foo:",
    "response-route-run = addvar:FOO",
    "collect-header = Content-Type",
])
def test_refusals_match_uwsgi(tmp_path, procs, uwsgi_binary, line):
    uwsgi, path = start_uwsgi(procs, uwsgi_binary, tmp_path, [line])
    assert uwsgi.wait() == 1
    with pytest.raises(ConfigError) as info:
        ResponseRouter.from_config(resolve(["--ini", str(path)], environ={}))
    # Ours may add a hint in parentheses after uWSGI's wording, which is
    # the whole of uWSGI's last line (after its route prefix, if any).
    their_words = info.value.reason.split(" (")[0]
    last = uwsgi.output().rstrip("\n").splitlines()[-1]
    assert last.removeprefix("[uwsgi-route] ") == their_words


ROUTED_APP = """
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"app"]
"""
SERVED_ROUTES = [
    "response-route-run = log:route ran for ${PATH_INFO}",
    "response-route = ^/b102$ break:102",
    "response-route-run = addheader:X-Euro: 1\u20ac \u00fc",
]


def head_of(port, path):
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET %s HTTP/1.0\r\n\r\n" % path)
        return support.read_to_eof(s).partition(b"\r\n\r\n")[0]


def serve_routes(tmp_path, procs, argv, routes):
    """`argv` (ugu's or uWSGI's) serving tmp_path's app.py on an
    http-socket with `routes`, once it listens: (process, port)."""
    port = support.free_port()
    path = write_config(tmp_path, [f"http-socket = 127.0.0.1:{port}",
                                   "wsgi-file = app.py", *routes])
    server = procs.start([*argv, "--ini", str(path)], cwd=tmp_path)
    support.wait_for_port(port)
    return server, port


def test_routes_on_a_served_response(tmp_path, procs, uwsgi_binary):
    """addheader sends the value's bytes as written in the file, as
    uWSGI does; a status HTTP cannot carry gets the client ugu's 500
    (README), routed once."""
    (tmp_path / "app.py").write_text(ROUTED_APP)
    for argv in ([uwsgi_binary], support.UGU):
        server, port = serve_routes(tmp_path, procs, argv, SERVED_ROUTES)
        assert b"\r\nX-Euro: 1\xe2\x82\xac \xc3\xbc" in \
            head_of(port, b"/")
    ugu = server  # the last one: the rest is ugu's own
    assert head_of(port, b"/b102").startswith(
        b"HTTP/1.0 500 Internal Server Error\r\n")
    ugu.wait_for_log(r"response refused: .*102")
    assert head_of(port, b"/").startswith(b"HTTP/1.0 200 OK")
    assert ugu.output().count("route ran for /b102") == 1
    assert "Traceback" not in ugu.output()


COPYING_APP = """
def application(environ, start_response):
    value = "v" * 5000 if environ["PATH_INFO"] == "/long" else "two"
    start_response("200 OK", [("X-A", "one"), ("Content-Type", "text/plain"),
                              ("x-a", value)])
    return [b"app"]
"""
COPYING_ROUTES = [
    "collect-header = X-A C1",
    "pull-header = X-A P1",
    "pull-header = x-a P2",
    "collect-header = content-type CT",
    "collect-header = Content-Type CT",
    "response-route-run = addheader:X-Seen: [${C1}] [${P1}] [${P2}] [${CT}]",
    "response-route = ^/big addvar:BIG=" + "${PATH_INFO}" * 10,
    "response-route-run = addheader:X-After: yes",
]


def test_vars_from_headers_and_routes_as_uwsgi_appends_them(
        tmp_path, procs, uwsgi_binary):
    """A header pulled goes to the first pull-header of its name alone;
    each copy and addvar counts in the log line's vars, even of a name
    met again; a var over buffer-size is refused with uWSGI's line (the
    header, in start_response(); addvar, ending routing as break)."""
    (tmp_path / "app.py").write_text(COPYING_APP)
    big = b"/big" + b"x" * 380
    results = []
    for argv in (support.UGU, [uwsgi_binary]):
        server, port = serve_routes(tmp_path, procs, argv, COPYING_ROUTES)
        heads = [head_of(port, p) for p in (b"/", big, b"/long")]
        server.wait_for_log(r"GET /long ")
        results.append((heads, server.output()))
    for heads, output in results:
        assert b"\r\nX-Seen: [] [two] [] [text/plain]\r\nX-After: yes" \
            in heads[0]
        assert b"X-Seen: [] [two] [] [text/plain]" in heads[1]
        assert b"X-After" not in heads[1]
        counts = re.findall(r"\{(\d+ vars in \d+ bytes)\} \[[^]]*\] "
                            r"GET (/|/big)[ x]", output)
        assert counts == [("26 vars in 220 bytes", "/"),
                          ("26 vars in 986 bytes", "/big")]
        for var in ("BIG", "P1"):
            assert (f"not enough buffer space to add {var} variable, "
                    "consider increasing it with the --buffer-size "
                    "option") in output
        assert "TypeError: unable to add header to the response" in output


ARRIVAL_ROUTES = [
    "response-route-run = addvar:PATH_INFO=/changed",
    "response-route-run = addvar:HTTP_REFERER=/from",
    "response-route = ^/changed addheader:X-Regexp-Path: new",
    "response-route = ^/$ addheader:X-Regexp-Path: arrived",
    "response-route-referer = from addheader:X-Regexp-Referer: new",
    "response-route-if = equal:${PATH_INFO};/changed addheader:X-If: new",
]


def test_regexp_rules_match_the_vars_the_request_arrived_with(
        tmp_path, procs, uwsgi_binary):
    """As uWSGI's: a regexp rule's subject is the request's own value,
    whatever addvar made of it since; `${VAR}` is the latest value."""
    (tmp_path / "app.py").write_text(ROUTED_APP)
    for argv in (support.UGU, [uwsgi_binary]):
        head = head_of(serve_routes(tmp_path, procs, argv,
                                    ARRIVAL_ROUTES)[1], b"/")
        assert b"\r\nX-Regexp-Path: arrived\r\n" in head
        assert b"X-Regexp-Path: new" not in head
        assert b"X-Regexp-Referer" not in head
        assert b"\r\nX-If: new" in head
