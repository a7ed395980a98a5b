"""`emperor` beside sockets: the instance serves its own app and runs the
Emperor as a child, as uWSGI 2.0 does; without a socket an app's options
are refused, where uWSGI's would read and ignore them.

Each test runs the real ugu (instance and vassals), or the real uWSGI with
the same command line, and waits on log lines and ports, never a clock.
"""

import os
import re
import signal

import pytest

from tests.support import (children_of, free_port, group_members, http10_get,
                           wait_for_port, wait_until)
from tests.test_emperor import ENV
from ugu.emperor import beside
from ugu.router import fastrouter, rawrouter, sslrouter

APP = """\
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [{body!r}]
"""


@pytest.fixture
def tree(tmp_path):
    """The instance's app, a folder with one vassal, and both ports."""
    (tmp_path / "main.py").write_text(APP.format(body=b"the instance"))
    (tmp_path / "vassals").mkdir()
    (tmp_path / "vassal.py").write_text(APP.format(body=b"the vassal"))
    main, vassal = free_port(), free_port()
    (tmp_path / "vassals" / "v.ini").write_text(
        f"[uwsgi]\nhttp-socket = 127.0.0.1:{vassal}\n"
        f"wsgi-file = {tmp_path / 'vassal.py'}\n")
    return tmp_path, main, vassal


def _argv(tree, *extra):
    path, main, _ = tree
    return ["--emperor", str(path / "vassals"), "--http-socket",
            f"127.0.0.1:{main}", "--wsgi-file", str(path / "main.py"),
            *extra]


def _serving(tree):
    _, main, vassal = tree
    for port in (main, vassal):
        wait_for_port(port)
    return http10_get(main), http10_get(vassal)


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_the_instance_serves_beside_its_emperor(start_server, tree, server):
    path = tree[0]
    instance = start_server(server, _argv(tree), cwd=path, env=ENV)
    main, vassal = _serving(tree)
    assert b"the instance" in main and b"the vassal" in vassal
    instance.wait_for_log(r"\*\*\* starting uWSGI Emperor \*\*\*")
    # No master: worker 1 is the instance, and the Emperor its child.
    assert "spawned uWSGI worker 1 (and the only)" in instance.output()
    instance.send_signal(signal.SIGINT)
    instance.wait()
    # The Emperor dies with worker 1, and its vassal with it.
    wait_until(lambda: not group_members(instance.pgid), 10,
               what="the instance's process group to empty")


def _emperor_of(instance):
    found = [pid for pid in children_of(instance.pid)
             if _cmdline(pid) and pid not in _workers(instance)]
    assert len(found) == 1, found
    return found[0]


def _workers(instance):
    return {int(m) for m in re.findall(r"spawned uWSGI worker \d+ \(pid: "
                                       r"(\d+)", instance.output())}


def _cmdline(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read()
    except OSError:
        return b""


def test_a_master_respawns_its_emperor_and_buries_it_at_the_end(
        procs, tree):
    path = tree[0]
    instance = procs.ugu(*_argv(tree, "--master"), cwd=path, env=ENV)
    _serving(tree)
    instance.wait_for_log(r"vassal v\.ini is ready to accept requests")
    first = _emperor_of(instance)
    os.kill(first, signal.SIGKILL)
    instance.wait_for_log(r"!!! Emperor died !!!")
    instance.wait_for_log(r"\*\*\* starting uWSGI Emperor \*\*\*", count=2)
    instance.wait_for_log(r"vassal v\.ini is ready to accept requests",
                          count=2)
    _, vassal = _serving(tree)
    assert b"the vassal" in vassal
    second = _emperor_of(instance)
    instance.send_signal(signal.SIGINT)
    assert instance.wait() == 0
    out = instance.output()
    # uWSGI's order: the Emperor is waited for before the workers are.
    assert re.search(
        rf"SIGINT/SIGTERM received\.\.\.killing workers\.\.\.\n(.*\n)*"
        rf"The Emperor has been buried \(pid: {second}\)\n"
        rf"worker 1 buried after \d+ seconds\ngoodbye to uWSGI\.\n$", out)
    wait_until(lambda: not group_members(instance.pgid), 10,
               what="the instance's process group to empty")


def test_a_reload_ends_the_emperor_and_starts_a_new_one(procs, tree):
    path = tree[0]
    instance = procs.ugu(*_argv(tree, "--master"), cwd=path, env=ENV)
    _serving(tree)
    ready = r"vassal v\.ini is ready to accept requests"
    instance.wait_for_log(ready)
    instance.send_signal(signal.SIGHUP)
    instance.wait_for_log(r"The Emperor has been buried")
    instance.wait_for_log(r"gracefully \(RE\)spawned uWSGI master process")
    instance.wait_for_log(ready, count=2)
    main, vassal = _serving(tree)
    assert b"the instance" in main and b"the vassal" in vassal
    # The new Emperor's vassal takes no socket of the instance's for its
    # own: its link is its link.
    assert "curse the uwsgi instance" not in instance.output()


def test_an_emperor_without_a_socket_refuses_an_app(procs, tmp_path):
    (tmp_path / "vassals").mkdir()
    alone = procs.ugu("--emperor", str(tmp_path / "vassals"), "--module",
                      "app", cwd=tmp_path)
    assert alone.wait() == 1
    assert ("ugu: command line: option 'module': an Emperor with no "
            "socket serves no app") in alone.output()
    ini = tmp_path / "e.ini"
    ini.write_text(f"[uwsgi]\nmaster = true\nemperor = {tmp_path}/vassals"
                   f"\nprocesses = 4\n")
    kept = procs.ugu(str(ini), cwd=tmp_path)
    assert kept.wait() == 1
    assert f"ugu: {ini}:4: option 'processes': " in kept.output()


def test_serving_options_cover_every_router_address():
    for router in (fastrouter, rawrouter, sslrouter):
        assert set(router.LISTEN) <= set(beside.SERVING)


def test_daemonize2_beside_an_emperor_is_refused(procs, tree):
    path = tree[0]
    instance = procs.ugu(*_argv(tree, "--daemonize2",
                                str(path / "d.log")), cwd=path, env=ENV)
    assert instance.wait() == 1
    assert "option 'daemonize2': the Emperor" in instance.output()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("early", [False, True])
def test_early_emperor_starts_before_the_pre_jail_hooks(start_server, tree,
                                                        server, early):
    path = tree[0]
    release = path / "release"
    extra = ["--exec-pre-jail", f"while [ ! -e {release} ]; do sleep "
             f"0.02; done; echo pre-jail done"]
    instance = start_server(server, _argv(tree, *extra, *(
        ["--early-emperor"] if early else [])), cwd=path, env=ENV)
    instance.wait_for_log(r"\(pre-jail\)\.\.\.\n")
    if early:
        # The hook still waits, and the Emperor is up.
        instance.wait_for_log(r"\*\*\* starting uWSGI Emperor \*\*\*")
    release.touch()
    instance.wait_for_log(r"\*\*\* starting uWSGI Emperor \*\*\*")
    instance.wait_for_log(r"(?m)^pre-jail done\n")
    out = instance.output()
    before = out.index("*** starting uWSGI Emperor ***") < \
        out.index("\npre-jail done\n")
    assert before == early
    _serving(tree)
