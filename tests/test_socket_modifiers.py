"""http-socket-modifier1 and -modifier2 beside the real uWSGI: 0 and 30
are the Python plugin's, any other modifier1 leaves the request to its
routes and static files alone (no plugin of a Python server serves it),
and modifier2 shows in log-format."""

import re
import socket

import pytest

from tests import support

APP = """def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [environ["PATH_INFO"].encode()]
"""


def get(port, path):
    """(status line, body) of an HTTP/1.0 GET, or None for a close with
    nothing sent."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        raw = support.read_to_eof(s)
    if not raw:
        return None
    status, _, body = support.split_response(raw)
    return status.split(" ", 1)[1], body


def answers(procs, argv, tmp_path, modifier1, modifier2):
    (tmp_path / "app.py").write_text(APP)
    port = support.free_port()
    p = procs.start([*argv, "--http-socket", f"127.0.0.1:{port}",
                     "--wsgi-file", "app.py", "--master",
                     "--http-socket-modifier1", str(modifier1),
                     "--http-socket-modifier2", str(modifier2),
                     "--log-format", "LOG %(modifier1) %(modifier2) %(uri)",
                     "--route", "^/r$ return:403",
                     "--check-static", str(tmp_path)], cwd=tmp_path)
    p.wait_for_log(r"spawned uWSGI worker 1")
    support.wait_for_port(port)
    found = [get(port, "/x"), get(port, "/r"), get(port, "/app.py")]
    if modifier1 % 256 in (0, 30):
        p.wait_for_log(r"LOG ", count=3)
    else:
        p.wait_for_log(r"unavailable modifier")
    p.stop()
    lines = re.findall(r"^(?:LOG .*|-- unavailable .*)$", p.output(),
                       re.MULTILINE)
    return found, lines


@pytest.mark.parametrize("modifier1, modifier2", [
    (5, 7), (30, 263), (256, 0), (0, 9)])
def test_modifiers_as_uwsgi(procs, uwsgi_binary, tmp_path, modifier1,
                            modifier2):
    ours = answers(procs, support.UGU, tmp_path, modifier1, modifier2)
    assert ours == answers(procs, [uwsgi_binary], tmp_path, modifier1,
                           modifier2)
    found, lines = ours
    assert found[1] == ("403 Forbidden", b"Forbidden")
    assert found[2][0] == "200 OK"
    if modifier1 == 5:
        # Routes make uWSGI look for static files; no request line.
        assert found[0] is None
        assert lines == ["-- unavailable modifier requested: 5 --"]
    else:
        assert found[0] == ("200 OK", b"/x")
        assert f"LOG 0 {modifier2 % 256} /x" in lines
