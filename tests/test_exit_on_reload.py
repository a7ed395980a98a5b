"""exit-on-reload beside the real uWSGI: a reload ends the instance."""

import re
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


_get = support.http10_get


@pytest.mark.parametrize("reload", [signal.SIGHUP, signal.SIGTERM])
@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_reload_ends_the_instance(start_server, tmp_path, server, reload):
    """A graceful (HUP) or brutal (TERM) reload buries the workers, says
    uWSGI's GAME OVER instead of re-executing, then ends as a shutdown
    does (the atexit hooks, vacuum) and exits 0."""
    port = free_port()
    (tmp_path / "app.py").write_text(APP)
    pidfile = tmp_path / "app.pid"
    ini = write_ini(tmp_path / "app.ini", uwsgi=[
        ("master", "true"), ("http-socket", f"127.0.0.1:{port}"),
        ("wsgi-file", tmp_path / "app.py"), ("exit-on-reload", "true"),
        ("pidfile", pidfile), ("vacuum", "true"),
        ("hook-as-user-atexit", "print:AT EXIT")])
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path)
    support.wait_for_port(port)
    # A worker that has served: uWSGI's may miss a signal before.
    assert _get(port).endswith(b"ok")
    p.send_signal(reload)
    assert p.wait() == 0
    out = p.output()
    assert re.search(r"\.\.\.(?:gracefully|brutally) killing workers\.\.\.\n"
                     r"(?:.*\n)*?worker 1 buried after \d+ seconds\n"
                     r"(?:.*\n)*?uWSGI: GAME OVER \(insert coin\)\n"
                     r'running "print:AT EXIT" \(atexit\)\.\.\.\n'
                     r"AT EXIT\n"
                     r"VACUUM: pidfile removed\.\n", out), out
    assert "goodbye" not in out and "binary reloading" not in out
    assert not pidfile.exists()
