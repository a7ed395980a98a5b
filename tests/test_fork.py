"""py-call-osafterfork beside the real uWSGI: Python is told of each
worker's fork (os.register_at_fork's child hooks, threading's reset)."""

import textwrap

import pytest

from tests import support
from tests.support import free_port, write_ini

APP = textwrap.dedent('''
    import os
    import threading
    import time

    os.register_at_fork(
        after_in_child=lambda: print("CHILD", os.getpid(), flush=True))
    threading.Thread(target=time.sleep, args=(30,), daemon=True,
                     name="master-thread").start()

    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        names = [t.name for t in threading.enumerate()]
        return [b"stale" if "master-thread" in names else b"reset"]
''')


_get = support.http10_get


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_py_call_osafterfork(start_server, tmp_path, server):
    """Each worker runs the app's after_in_child hook, and its threading
    module no longer lists the master's thread."""
    port = free_port()
    (tmp_path / "app.py").write_text(APP)
    ini = write_ini(tmp_path / "app.ini", uwsgi=[
        ("master", "true"), ("processes", 1),
        ("http-socket", f"127.0.0.1:{port}"),
        ("wsgi-file", tmp_path / "app.py"),
        ("py-call-osafterfork", "true")])
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path)
    worker = p.wait_for_log(r"spawned uWSGI worker 1 \(pid: (\d+)")[1]
    p.wait_for_log(rf"CHILD {worker}\n")
    support.wait_for_port(port)
    assert _get(port).endswith(b"reset")


HOOKS_APP = textwrap.dedent('''
    import os

    def _say(word):
        return lambda: print(word, os.getpid(), flush=True)

    os.register_at_fork(before=_say("BEFORE"), after_in_parent=_say("PARENT"),
                        after_in_child=_say("CHILD"))

    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
''')


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_py_call_uwsgi_fork_hooks(start_server, tmp_path, server):
    """All three hooks of os.register_at_fork run at each worker's fork:
    before and after_in_parent in the master, after_in_child in the
    worker."""
    port = free_port()
    (tmp_path / "app.py").write_text(HOOKS_APP)
    ini = write_ini(tmp_path / "app.ini", uwsgi=[
        ("master", "true"), ("processes", 2),
        ("http-socket", f"127.0.0.1:{port}"),
        ("wsgi-file", tmp_path / "app.py"),
        ("py-call-uwsgi-fork-hooks", "true")])
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path)
    master = p.wait_for_log(r"spawned uWSGI master process \(pid: (\d+)")[1]
    workers = [p.wait_for_log(rf"spawned uWSGI worker {n} \(pid: (\d+)")[1]
               for n in (1, 2)]
    for worker in workers:
        p.wait_for_log(rf"CHILD {worker}\n")
    p.wait_for_log(rf"PARENT {master}\n", count=2)
    assert p.output().count(f"BEFORE {master}\n") == 2
    support.wait_for_port(port)
    assert _get(port).endswith(b"ok")
