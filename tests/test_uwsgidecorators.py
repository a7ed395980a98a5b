"""ugu's `uwsgidecorators`: an app decorated with it, run on ugu and on
the real uWSGI (whose venv has uWSGI's own module) with the same INI
file; where it lives (last on the app's sys.path, in the app's
processes only); what ugu lacks said when a decorator is used."""

import http.client
import json
import re
import subprocess
import sys
import textwrap

import pytest

from tests.support import free_port, wait_for_port, wait_until, write_ini

APP = textwrap.dedent('''\
    import json
    import os
    import threading

    import uwsgi
    import uwsgidecorators as ud

    HERE = os.path.dirname(os.path.abspath(__file__))


    def note(line):
        with open(os.path.join(HERE, "notes.txt"), "a") as f:
            f.write(line + "\\n")


    @ud.postfork
    def forked():
        note(f"postfork {uwsgi.worker_id()} {uwsgi.mule_id()} "
             f"{bool(uwsgi.i_am_the_spooler())}")


    @ud.postfork(2)
    def second():
        note(f"postfork-2 {uwsgi.worker_id()}")


    @ud.spool
    def task(args):
        note(f"spool {sorted(args.items())}")


    @ud.spool(pass_arguments=True)
    def with_arguments(a, b, c=None):
        note(f"spool-args {a!r} {b!r} {c!r} {bool(uwsgi.i_am_the_spooler())}")


    @ud.timer(1)
    def ticked(signum):
        note(f"timer {signum} {uwsgi.worker_id()}")


    @ud.cron(-1, -1, -1, -1, -1, target="workers")
    def crontab(signum):
        note(f"cron {signum} {uwsgi.worker_id()}")


    @ud.mulefunc
    def in_a_mule(value, more=None):
        note(f"mulefunc {value} {more} {uwsgi.mule_id()}")


    @ud.thread
    def in_a_thread(value):
        note(f"thread {value} "
             f"{threading.current_thread() is not threading.main_thread()}")


    @ud.lock
    def locked():
        return uwsgi.is_locked()


    def application(environ, start_response):
        found = None
        if environ["PATH_INFO"] == "/go":
            task(name="first", more=b"bytes")
            with_arguments(1, [2, 3], c={"x": 4})
            in_a_mule(5, more="six")
            in_a_thread(7)
            found = [locked(), uwsgi.is_locked(), ud.__file__,
                     ud.spooler_functions["task"] is task.f]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(found).encode()]
''')


@pytest.fixture(params=["ugu", "uwsgi"])
def server(request):
    return request.param


def get(port, path):
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        conn.request("GET", path)
        return json.loads(conn.getresponse().read())
    finally:
        conn.close()


def notes(tmp_path):
    path = tmp_path / "notes.txt"
    return path.read_text().splitlines() if path.exists() else []


def wait_for_notes(tmp_path, wanted):
    """Wait until every line of `wanted` is there (as many times as it
    holds it); the lines written."""
    def done():
        found = notes(tmp_path)
        return all(found.count(line) >= wanted.count(line)
                   for line in wanted)
    wait_until(done)
    return notes(tmp_path)


def start(start_server, tmp_path, server, app=APP, *pairs):
    (tmp_path / "app.py").write_text(app)
    port = free_port()
    ini = write_ini(tmp_path / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"), ("master", "true"),
        ("wsgi-file", "app.py"), *pairs])
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path)
    wait_for_port(port)
    return p, port


def test_an_app_of_decorators(start_server, tmp_path, server):
    """postfork in every process (and in worker 2 alone), spool with a
    dict and with pass_arguments, timer and cron firings, mulefunc in
    the mule, thread and lock, the same on both servers."""
    p, port = start(start_server, tmp_path, server, APP,
                    ("processes", "2"), ("mules", "1"),
                    ("spooler", str(tmp_path / "spool")),
                    # The second task may come while the first runs,
                    # when the spooler is not woken (uWSGI's as ugu's).
                    ("spooler-frequency", "1"))
    answer = get(port, "/go")
    assert answer[:2] + answer[3:] == [True, False, True]
    # uWSGI's own module in its venv, ugu's where ugu has none.
    assert answer[2].endswith({"ugu": "/ugu/appmodules/uwsgidecorators.py",
                               "uwsgi": "/site-packages/uwsgidecorators.py"}
                              [server])
    found = wait_for_notes(tmp_path, [
        "postfork 1 0 False", "postfork 2 0 False", "postfork 0 1 False",
        "postfork 0 0 True", "postfork-2 2",
        "spool-args 1 [2, 3] {'x': 4} True", "mulefunc 5 six 1",
        "thread 7 True", "cron 1 1", "cron 1 2"])
    assert "postfork-2 1" not in found
    spooled = [line for line in found if line.startswith("spool [")]
    assert len(spooled) == 1
    assert re.fullmatch(
        r"spool \[\('more', 'bytes'\), \('name', 'first'\), "
        r"\('spooler_task_name', 'uwsgi_spoolfile_on_[^']+'\), "
        r"\('ud_spool_func', 'task'\), \('ud_spool_ret', '-2'\)\]",
        spooled[0])
    # A timer on the first free signal (0), to any worker, each second.
    wait_until(lambda: len([line for line in notes(tmp_path)
                            if line.startswith("timer 0 ")]) >= 2)
    p.wait_for_log(r"\[uwsgi-signal\] signum 0 registered \(wid: 0 "
                   r"modifier1: 0 target: default, any worker\)\n")


ORDERS = textwrap.dedent('''\
    import json
    import os

    import uwsgi
    import uwsgidecorators as ud

    HERE = os.path.dirname(os.path.abspath(__file__))


    def note(line):
        with open(os.path.join(HERE, "notes.txt"), "a") as f:
            f.write(line + "\\n")


    @ud.mule(1)
    def brain():
        note(f"mule {uwsgi.mule_id()}")
        raise RuntimeError("the brain ends")


    @ud.mulemsg(2)
    def messages(message):
        note(f"mulemsg {message!r} {uwsgi.mule_id()}")


    @ud.farm(name="f1")
    def farmed(message):
        note(f"farm {message!r} {uwsgi.mule_id()}")


    @ud.signal(40, target="mule4")
    def signalled(signum):
        note(f"signal {signum} {uwsgi.mule_id()}")


    @ud.rbtimer(1, signum=41)
    def rb(signum):
        note(f"rbtimer {signum} {uwsgi.worker_id()}")


    @ud.spoolforever
    def again(args):
        note(f"spoolforever {args['n']}")


    def application(environ, start_response):
        if environ["PATH_INFO"] == "/go":
            uwsgi.mule_msg(b"hello", 2)
            uwsgi.farm_msg("f1", b"to the farm")
            uwsgi.signal(40)
            again.spool(n="1")
        start_response("200 OK", [("Content-Type", "application/json")])
        return [b"null"]
''')


def test_mules_farms_signals_and_spoolforever(start_server, tmp_path,
                                              server):
    """@mule runs once in its mule (which an exception ends, to be
    respawned), @mulemsg and @farm take their messages, @signal and
    @rbtimer handlers, @spoolforever's task runs on every scan."""
    p, port = start(start_server, tmp_path, server, ORDERS,
                    ("processes", "1"), ("mules", "4"), ("farm", "f1:3"),
                    ("spooler", str(tmp_path / "spool")),
                    ("spooler-frequency", "1"))
    assert get(port, "/go") is None
    wait_for_notes(tmp_path, [
        "mule 1", "mule 1", "mulemsg b'hello' 2", "farm b'to the farm' 3",
        "signal 40 4", "rbtimer 41 1", "spoolforever 1", "spoolforever 1"])
    p.wait_for_log(r"RuntimeError: the brain ends\n")


LACKING = textwrap.dedent('''\
    import json

    import uwsgidecorators as ud


    def attempt(decorate):
        try:
            decorate(lambda: None)()
        except Exception as e:
            return f"{type(e).__name__}: {e}"


    FOUND = [attempt(ud.rpc("name")), attempt(ud.erlang("name")),
             attempt(ud.harakiri(5)), attempt(ud.spool), ud.__file__]


    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(FOUND).encode()]
''')


def test_what_ugu_lacks_is_said(start_server, tmp_path):
    """A decorator whose subsystem ugu lacks raises, naming it, when
    used; @spool without a spooler names the option.  (@rpc and
    @harakiri work.)"""
    p, port = start(start_server, tmp_path, "ugu", LACKING)
    assert get(port, "/")[:4] == [
        None,
        "AttributeError: uwsgidecorators.erlang is not available: ugu has "
        "no Erlang support (uWSGI's erlang plugin)",
        None,
        "RuntimeError: @spool needs a spooler: add `spooler = DIR` to the "
        "config"]


def test_without_a_master_it_will_not_import(start_server, tmp_path,
                                             server):
    p, port = start(start_server, tmp_path, server,
                    LACKING.replace("import uwsgidecorators as ud",
                                    "try:\n    import uwsgidecorators\n"
                                    "except Exception as e:\n"
                                    "    print('refused:', e)\n"
                                    "ud = None"),
                    ("master", "false"))
    p.wait_for_log(r"refused: .*master process")


def test_the_apps_own_module_wins(start_server, tmp_path):
    """One the app's environment has (here on `pythonpath`) comes before
    ugu's, which is last on sys.path."""
    (tmp_path / "site").mkdir()
    (tmp_path / "site" / "uwsgidecorators.py").write_text("")
    app = ("import json, sys, uwsgidecorators\n"
           "FOUND = [uwsgidecorators.__file__, sys.path[-1]]\n" +
           LACKING[LACKING.index("def application"):])
    p, port = start(start_server, tmp_path, "ugu", app,
                    ("pythonpath", str(tmp_path / "site")))
    mine, last = get(port, "/")
    assert mine == str(tmp_path / "site" / "uwsgidecorators.py")
    assert last.endswith("/ugu/appmodules")


def test_only_the_apps_processes_have_it():
    """ugu's own code does not put it on sys.path."""
    found = subprocess.run(
        [sys.executable, "-c", "import ugu.__main__, ugu.vassal.pymodule, "
         "uwsgidecorators"], capture_output=True, text=True)
    assert "No module named 'uwsgidecorators'" in found.stderr
