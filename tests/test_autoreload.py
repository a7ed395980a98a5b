"""py-autoreload: a changed module file reloads the instance, on ugu and
on the real uWSGI, each serving an app that imports two modules."""

import os
import re
import socket
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from tests import support

APP = textwrap.dedent('''
    import helper, other

    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [helper.VALUE.encode()]
''')
ENABLED = "Python auto-reloader enabled"
RESPAWNED = r"gracefully \(RE\)spawned uWSGI master process"


@pytest.fixture
def site():
    folder = Path(tempfile.mkdtemp(prefix="ugu-autoreload-"))
    (folder / "app.py").write_text(APP)
    (folder / "helper.py").write_text('VALUE = "one"\n')
    (folder / "other.py").write_text("")
    yield folder
    for path in folder.rglob("*"):
        if path.is_file():
            path.unlink()
    for path in sorted(folder.rglob("*"), reverse=True):
        path.rmdir()
    folder.rmdir()


def _start(start_server, server, site, *pairs):
    port = support.free_port()
    support.write_ini(site / "vassal.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"), ("wsgi-file", "app.py"),
        ("pythonpath", "."), ("py-autoreload", "1"), *pairs])
    p = start_server(server, ["--ini", "vassal.ini"], cwd=site)
    p.wait_for_log(ENABLED)
    support.wait_for_port(port)
    return p, port


def _get(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.0\r\nHost: t\r\n\r\n")
        status, _, body = support.split_response(support.read_to_eof(s))
    assert status.endswith("200 OK"), status
    return body.decode()


def _modify_until(p, pattern, *paths):
    """Give `paths` a new mtime, a whole second later each time, until
    `pattern` is logged (its match): the reloader's first look at a file
    only records its mtime, and nothing tells when that look was."""
    regex = re.compile(pattern)
    stamp = time.time()

    def modified():
        nonlocal stamp
        stamp += 1
        for path in paths:
            os.utime(path, (stamp, stamp))
        return regex.search(p.output())
    return support.wait_until(modified, 20, interval=0.3,
                              what=f"{pattern!r} after touching {paths}")


def _modified_line(path):
    return (rf"\[uwsgi-python-reloader\] module/file {re.escape(str(path))}"
            rf" has been modified\n")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_changed_module_reloads_the_instance(start_server, site, server):
    """The option turns the master on (no `master` here), worker 1 says
    the reloader runs, and a changed module reloads every process."""
    p, port = _start(start_server, server, site, ("processes", "2"))
    assert "spawned uWSGI master process" in p.output()
    assert _get(port) == "one"
    (site / "helper.py").write_text('VALUE = "two"\n')
    _modify_until(p, _modified_line(f"{site}/./helper.py"),
                  site / "helper.py")
    p.wait_for_log(r"\.\.\.gracefully killing workers\.\.\.")
    p.wait_for_log(RESPAWNED)
    p.wait_for_log(ENABLED, count=2)
    support.wait_for_port(port)
    assert _get(port) == "two"
    assert p.output().count(ENABLED) == 2


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_ignored_modules_are_not_looked_at(start_server, site, server):
    """helper comes before other in sys.modules: were it looked at, its
    change would be the one logged."""
    p, _ = _start(start_server, server, site,
                  ("py-auto-reload-ignore", "helper"))
    _modify_until(p, _modified_line(f"{site}/./other.py"),
                  site / "helper.py", site / "other.py")
    assert "helper.py has been modified" not in p.output()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_the_app_file_is_watched_under_its_given_name(start_server, site,
                                                      server):
    p, _ = _start(start_server, server, site)
    _modify_until(p, _modified_line("app.py"), site / "app.py")
    p.wait_for_log(RESPAWNED)


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_without_a_master_worker_one_ends(start_server, site, server):
    """An explicit `master = false` after it wins: the first process,
    worker 1, is told to reload, and it ends gracefully."""
    p, _ = _start(start_server, server, site, ("master", "false"))
    _modify_until(p, _modified_line(f"{site}/./helper.py"),
                  site / "helper.py")
    p.wait_for_log(r"Gracefully killing worker 1 \(pid: \d+\)\.\.\.")
    p.wait()
    assert RESPAWNED.replace("\\", "") not in p.output()


@pytest.mark.parametrize("mode", [("lazy-apps", "true"), ("gevent", "10"),
                                  ("threads", "4")])
def test_every_worker_mode_reloads(procs, site, mode):
    p, port = _start(lambda _, argv, **kw: procs.ugu(*argv, **kw), "ugu",
                     site, mode)
    (site / "helper.py").write_text('VALUE = "two"\n')
    _modify_until(p, _modified_line(f"{site}/./helper.py"),
                  site / "helper.py")
    p.wait_for_log(RESPAWNED)
    p.wait_for_log(ENABLED, count=2)
    support.wait_for_port(port)
    assert _get(port) == "two"


def test_off_by_default(procs, site):
    port = support.free_port()
    p = procs.ugu("--http-socket", f"127.0.0.1:{port}", "--wsgi-file",
                  "app.py", "--pythonpath", ".", cwd=site)
    support.wait_for_port(port)
    assert _get(port) == "one"
    assert ENABLED not in p.output()
    assert "spawned uWSGI master process" not in p.output()
