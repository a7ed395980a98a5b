"""`reaper`: after each request the worker reaps the children its app
left to end as zombies, as uWSGI's waitpid(-1, WNOHANG) after each
request; without it they stay zombies.  Beside the real uWSGI."""

import textwrap

import pytest

from tests import support

# /fork leaves a child that has ended (a zombie, unreaped) and answers
# its pid; /state?PID answers that process's state, as the next request
# of the same worker finds it.
APP = textwrap.dedent('''
    import os, time

    def _state(pid):
        try:
            with open(f"/proc/{pid}/stat") as f:
                return f.read().rsplit(")", 1)[1].split()[0]
        except FileNotFoundError:
            return "gone"

    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        if environ["PATH_INFO"] == "/fork":
            pid = os.fork()
            if pid == 0:
                os._exit(0)
            deadline = time.monotonic() + 10
            while _state(pid) != "Z" and time.monotonic() < deadline:
                time.sleep(0.01)
            return [str(pid).encode()]
        return [_state(environ["QUERY_STRING"]).encode()]
''')


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("reaper, state", [(True, "gone"), (False, "Z")])
def test_reaper_reaps_the_apps_children_after_each_request(
        start_server, tmp_path, server, reaper, state):
    (tmp_path / "app.py").write_text(APP)
    port = support.free_port()
    p = start_server(server, [
        "--master", "--http-socket", f"127.0.0.1:{port}",
        "--wsgi-file", "app.py", *(["--reaper"] if reaper else [])],
        cwd=tmp_path)
    p.wait_for_log(r"spawned uWSGI worker 1")
    support.wait_for_port(port)
    child = support.get_body(port, "/fork").decode()
    # One worker of one core: the first request has ended, reaper and
    # all, before the second one runs.
    assert support.get_body(port, f"/state?{child}").decode() == state
