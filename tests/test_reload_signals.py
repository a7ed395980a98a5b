"""A signal that reaches a master while it re-executes itself (a reload):
the new image has not set its handlers yet, and a signal whose default
action ends a process must not end the instance (a second reload sent
at once, a stats request).  ugu's alone: the real uWSGI's new image dies
of such a signal, now and then (README: differences)."""

import signal
import textwrap

import pytest

from tests import support
from tests.support import free_port, write_ini

APP = textwrap.dedent('''
    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
''')


@pytest.mark.parametrize("second", [signal.SIGHUP, signal.SIGTERM,
                                    signal.SIGUSR1])
def test_a_signal_during_the_reexec_leaves_the_instance_running(
        start_server, tmp_path, second):
    port = free_port()
    (tmp_path / "app.py").write_text(APP)
    ini = write_ini(tmp_path / "app.ini", uwsgi=[
        ("master", "true"), ("http-socket", f"127.0.0.1:{port}"),
        ("wsgi-file", "app.py"), ("processes", "2")])
    p = start_server("ugu", ["--ini", str(ini)], cwd=tmp_path)
    support.wait_for_port(port)
    assert support.http10_get(port).endswith(b"ok")
    p.send_signal(signal.SIGHUP)
    # Said just before the exec: the next signal meets the new image.
    p.wait_for_log(r"(?m)^running /")
    p.send_signal(second)
    p.wait_for_log(r"gracefully \(RE\)spawned uWSGI master")
    support.wait_for_port(port)
    assert support.http10_get(port).endswith(b"ok")
    assert p.popen.poll() is None
    p.send_signal(signal.SIGINT)
    p.wait()
    assert "goodbye to uWSGI." in p.output()


def test_a_second_reload_of_the_emperor_leaves_its_vassals(start_server,
                                                            tmp_path):
    port = free_port()
    (tmp_path / "app.py").write_text(APP)
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    write_ini(vassals / "app.ini", uwsgi=[
        ("master", "true"), ("http-socket", f"127.0.0.1:{port}"),
        ("wsgi-file", tmp_path / "app.py")])
    p = start_server("ugu", ["--master", "--emperor", str(vassals)],
                     cwd=tmp_path)
    support.wait_for_port(port)
    assert support.http10_get(port).endswith(b"ok")
    p.send_signal(signal.SIGHUP)
    p.wait_for_log(r"(?m)^running /")
    p.send_signal(signal.SIGHUP)
    p.wait_for_log(r"gracefully \(RE\)spawned uWSGI master")
    p.wait_for_log(r"\[emperor\] vassal app\.ini has been spawned", count=2)
    support.wait_for_port(port)
    assert support.http10_get(port).endswith(b"ok")
    assert p.popen.poll() is None
