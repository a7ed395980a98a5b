"""uWSGI's alarms: `alarm`, `log-alarm`, `not-log-alarm` and
`alarm-freq`, with the kinds uWSGI 2.0 builds in (cmd, signal, mule,
log), on ugu and on the real uWSGI side by side."""

import signal
import subprocess
import textwrap

import pytest

from tests import support

SERVERS = ["ugu", "uwsgi"]

# Prints what follows /say/ (then the line is the log master's).
APP = textwrap.dedent("""
    def application(environ, start_response):
        path = environ["PATH_INFO"]
        if path.startswith("/say/"):
            print(path[5:], flush=True)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
""")


@pytest.fixture
def site(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


def serve(start_server, server, site, *pairs):
    """A master serving the app on an http-socket, without request
    lines (they too would be checked); (process, port)."""
    port = support.free_port()
    support.write_ini(site / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"),
        ("wsgi-file", site / "app.py"), ("disable-logging", "true"),
        *pairs])
    p = start_server(server, ["--ini", "app.ini"], cwd=site)
    support.wait_for_port(port)
    return p, port


def say(port, text):
    assert support.http10_get(port, f"/say/{text}").endswith(b"ok")


def recorder(site, name):
    """A cmd alarm's command: it appends `NAME LINE` to alarms.txt (one
    `read`, which takes the line whatever uWSGI's stdin does after)."""
    return (f'cmd:read line; echo "{name} $line" >> '
            f'{site / "alarms.txt"}')


def recorded(site, count):
    path = site / "alarms.txt"
    support.wait_until(lambda: path.exists() and
                       len(path.read_text().splitlines()) >= count,
                       what=f"{count} alarms in {path}")
    return sorted(path.read_text().splitlines())


@pytest.mark.parametrize("server", SERVERS)
def test_cmd_alarms_get_the_lines_their_rules_match(start_server, site,
                                                    server):
    """The command gets the line on its stdin; rules are tried in order,
    and a not-log-alarm that matches ends the search for that line; the
    master says each command's end.  Its own lines are checked too (the
    banner)."""
    p, port = serve(start_server, server, site,
                    ("alarm", "tell " + recorder(site, "tell")),
                    ("alarm", "other " + recorder(site, "other")),
                    ("log-alarm", "tell BOOM|Starting uWSGI"),
                    ("not-log-alarm", "other QUIET"),
                    ("alarm-log", "tell,other QUIET|xyz"))
    for text in ("BOOM-1", "xQUIETx", "xyz"):
        say(port, text)
    found = recorded(site, 4)
    # uWSGI may reap the banner's command before its loop says it.
    p.wait_for_log(r"subprocess \d+ exited with code 0", count=3)
    p.stop()
    assert found[1].startswith("tell *** Starting uWSGI 2.0.")
    assert found[:1] + found[2:] == ["other xyz", "tell BOOM-1",
                                     "tell xyz"]


@pytest.mark.parametrize("server", SERVERS)
def test_an_alarm_waits_alarm_freq_for_the_same_line(start_server, site,
                                                     server):
    """The same line again within alarm-freq seconds (3) raises nothing;
    another line does."""
    p, port = serve(start_server, server, site,
                    ("alarm", "tell " + recorder(site, "tell")),
                    ("log-alarm", "tell ^BOOM"))
    for text in ("BOOM-same", "BOOM-same", "BOOM-other"):
        say(port, text)
        p.wait_for_log(f"(?m)^{text}$")
    assert recorded(site, 2) == ["tell BOOM-other", "tell BOOM-same"]
    p.wait_for_log(r"subprocess \d+ exited with code 0", count=2)
    p.stop()
    assert recorded(site, 2) == ["tell BOOM-other", "tell BOOM-same"]


@pytest.mark.parametrize("server", SERVERS)
def test_log_alarms_log_the_line_after_it(start_server, site, server):
    """`log:TEXT` logs the line after ALARM: and TEXT (the date first),
    once the line itself is written."""
    p, port = serve(start_server, server, site,
                    ("alarm", "said log:foo bar"), ("alarm", "bare log:"),
                    ("log-alarm", "said,bare ^BOOM"))
    say(port, "BOOM1")
    p.wait_for_log(r"- ALARM: BOOM1\n")
    p.stop()
    lines = p.output().splitlines()
    at = lines.index("BOOM1")
    assert lines[at + 1].endswith(" - ALARM: foo bar BOOM1")
    assert lines[at + 2].endswith(" - ALARM: BOOM1")


def test_a_log_alarm_does_not_raise_itself(procs, site):
    """ugu checks no line an alarm logs: uWSGI reads its log alarm's line
    back, matches it again and logs without end."""
    p, port = serve(lambda _, argv, **kw: procs.ugu(*argv, **kw), "ugu",
                    site, ("alarm", "said log:"),
                    ("log-alarm", "said BOOM"))
    say(port, "BOOM1")
    say(port, "after")
    p.wait_for_log("(?m)^after$")
    p.stop()
    assert p.output().count("ALARM:") == 1


@pytest.mark.parametrize("threaded", [False, True])
def test_a_cmd_alarm_does_not_raise_itself(procs, site, threaded):
    """What a cmd alarm's command prints is logged, but never checked:
    uWSGI reads it back, and a command that prints what its rule
    matches raises itself again without end (hundreds a second)."""
    p, port = serve(lambda _, argv, **kw: procs.ugu(*argv, **kw), "ugu",
                    site, ("alarm", "echo cmd:read line; echo SEEN $line"),
                    ("log-alarm", "echo BOOM"),
                    ("threaded-logger", "true" if threaded else "false"))
    for n in range(3):
        say(port, f"BOOM-{n}")
    for n in range(3):
        p.wait_for_log(f"(?m)^SEEN BOOM-{n}$")
    p.wait_for_log(r"subprocess \d+ exited with code 0", count=3)
    say(port, "after")
    p.wait_for_log("(?m)^after$")
    p.stop()
    assert p.output().count("SEEN") == 3
    assert p.output().count("exited with code") == 3


@pytest.mark.parametrize("server", SERVERS)
def test_signal_and_mule_alarms(start_server, site, server):
    """signal:N raises uWSGI signal N (here one no worker handles); mule:N
    queues the line for mule N, and a mule that is not there is said and
    falls back to any mule."""
    p, port = serve(start_server, server, site, ("mules", "2"),
                    ("alarm", "sig signal:17"), ("alarm", "one mule:2"),
                    ("alarm", "far mule:9"),
                    ("log-alarm", "sig,one ^SIG"),
                    ("log-alarm", "far ^FAR"))
    p.wait_for_log(r"spawned uWSGI mule 2 ")
    say(port, "SIG")
    p.wait_for_log(r"\*\*\* mule 2 received a 4 bytes message \*\*\*")
    p.wait_for_log("error managing signal 17 on worker 1")
    say(port, "FAR-AWAY")
    p.wait_for_log(r"\*\*\* mule \d received a 9 bytes message \*\*\*")
    p.stop()
    assert "[uwsgi-alarm] invalid mule_id (2 mules available), fallback " \
        "to 0\n" in p.output()


def test_the_threaded_logger_raises_them_too(procs, site):
    p, port = serve(lambda _, argv, **kw: procs.ugu(*argv, **kw), "ugu",
                    site, ("threaded-logger", "true"),
                    ("alarm", "tell " + recorder(site, "tell")),
                    ("log-alarm", "tell ^BOOM"))
    say(port, "BOOM-1")
    assert recorded(site, 1) == ["tell BOOM-1"]


# Each bad config: the line ugu refuses (its message starts with uWSGI's
# words), and what ugu's message adds.
REFUSED = [
    ([("alarm", "x curl:http://example.invalid/")], 4, "alarm",
     'invalid alarm: x curl:http://example.invalid/ (ugu has the alarm '
     'kinds uWSGI 2.0 builds in: cmd, signal, mule, log; "curl" is not '
     'one)'),
    ([("alarm", "x cmd")], 4, "alarm",
     "invalid alarm syntax: x cmd (write it NAME KIND:ARGS"),
    ([("log-alarm", "y BOOM"), ("alarm", "x log:")], 4, "log-alarm",
     'invalid log-alarm: y BOOM (no alarm is named "y"'),
    ([("not-alarm-log", "y BOOM")], 4, "not-alarm-log",
     'invalid not-alarm-log: y BOOM (no alarm is named "y"'),
    ([("alarm", "x log:"), ("log-alarm", "x")], 5, "log-alarm",
     "invalid log-alarm syntax: x (write it ALARM[,ALARM...] REGEXP)"),
    ([("alarm", "x log:"), ("not-log-alarm", "x (")], 5, "not-log-alarm",
     "invalid not-log-alarm: x ( (the regexp: missing )"),
]


@pytest.mark.parametrize("pairs, line, option, message", REFUSED)
def test_bad_alarms_stop_the_start(site, uwsgi_binary, pairs, line, option,
                                   message):
    """Both refuse to start (but for a rule where no alarm is named at
    all, which uWSGI ignores); ugu names the line and the option."""
    port = support.free_port()
    support.write_ini(site / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"),
        ("wsgi-file", site / "app.py"), *pairs])
    ours = start_once([*support.UGU, "--ini", "app.ini"], site)
    assert ours.returncode == 1
    assert f"app.ini:{line}: option '{option}': {message}" in ours.stderr
    if any(key == "alarm" for key, _ in pairs):
        assert start_once([uwsgi_binary, "--ini", "app.ini"], site) \
            .returncode == 1


def start_once(argv, site):
    return subprocess.run(argv, cwd=site, capture_output=True, text=True,
                          timeout=30, stdin=subprocess.DEVNULL)


@pytest.mark.parametrize("option, value", [
    ("alarm", "x log:"), ("log-alarm", "x BOOM"),
    ("not-log-alarm", "x BOOM")])
def test_the_emperor_refuses_alarms(site, option, value):
    done = start_once([*support.UGU, "--emperor", str(site),
                       f"--{option}", value], site)
    assert done.returncode == 1
    assert f"option '{option}': ugu's alarms run in vassals, not in the " \
        f"Emperor yet" in done.stderr


def test_children_that_flood_the_log_do_not_hold_the_master(procs, site):
    """Daemons that print without end keep the log master's pipe full;
    the master still takes its SIGINT and stops (it would copy lines,
    each checked against the rules, for ever), as uWSGI's does."""
    p, port = serve(lambda _, argv, **kw: procs.ugu(*argv, **kw), "ugu",
                    site, ("alarm", "said log:"),
                    ("log-alarm", "said BOOM"), ("log-drain", "^y$"),
                    ("attach-daemon", "yes"), ("attach-daemon", "yes"))
    p.wait_for_log(r"spawned uWSGI worker 1")
    p.send_signal(signal.SIGINT)
    assert p.wait(timeout=10) == 0
    p.wait_for_log("goodbye to uWSGI")
