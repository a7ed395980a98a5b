"""An app that holds a thousand descriptors: the master's and the
workers' own descriptors are then numbered past 1024, which select()
refuses; the instance serves, reloads and stops as with a few."""

import http.client
import resource
import signal
import textwrap

import pytest

from tests import support

HELD = 1100
APP = textwrap.dedent(f'''
    import os
    import resource

    # Enough room for the files held and the server's own past them.
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, 4096), hard))
    HELD = [os.open(os.devnull, os.O_RDONLY) for _ in range({HELD})]

    def application(environ, start_response):
        body = str(max(HELD)).encode()
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("Content-Length", str(len(body)))])
        return [body]
''')


@pytest.fixture(autouse=True)
def room_for_the_files():
    hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
    if hard != resource.RLIM_INFINITY and hard < 2 * HELD:
        pytest.skip(f"the hard limit of open files ({hard}) leaves no room "
                    f"for an app holding {HELD}")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_an_app_holding_a_thousand_files_is_served_reloaded_and_stopped(
        start_server, tmp_path, server):
    (tmp_path / "app.py").write_text(APP)
    port = support.free_port()
    support.write_ini(tmp_path / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"), ("wsgi-file", "app.py"),
        ("master", "true"), ("processes", "2"), ("threads", "2"),
        # The real uWSGI's idle worker now and then sleeps through a
        # reload or stop, held for worker-reload-mercy (60 s by default).
        ("worker-reload-mercy", "2")])
    p = start_server(server, ["--ini", "app.ini"], cwd=tmp_path)
    support.wait_for_port(port)
    assert int(support.http10_get(port, "/").split(b"\r\n\r\n")[1]) >= HELD
    p.send_signal(signal.SIGHUP)
    p.wait_for_log(r"gracefully \(RE\)spawned uWSGI master")
    support.wait_for_port(port)
    assert support.http10_get(port, "/after").startswith(b"HTTP/1.0 200")
    p.send_signal(signal.SIGINT)
    p.wait()
    assert "goodbye to uWSGI." in p.output()
    assert "out of range" not in p.output()


@pytest.mark.parametrize("cores", [["--threads", "2"], ["--gevent", "10"]],
                         ids=["threads", "gevent"])
def test_a_keepalive_connection_waits_for_its_next_request(start_server,
                                                          tmp_path, cores):
    """ugu's http-socket keeps a connection (README): its wait for the
    next request watches descriptors past 1024, a thread's as a
    greenlet's."""
    (tmp_path / "app.py").write_text(APP)
    port = support.free_port()
    p = start_server("ugu", ["--http-socket", f"127.0.0.1:{port}",
                             "--wsgi-file", "app.py", "--master", *cores],
                     cwd=tmp_path)
    support.wait_for_port(port)
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
    try:
        for path in ("/one", "/two"):
            conn.request("GET", path)
            response = conn.getresponse()
            assert response.status == 200
            response.read()
    finally:
        conn.close()
    p.wait_for_log(r"GET /two => generated")
    assert "out of range" not in p.output()
