"""The HTTP router's cheap mode (`http-cheap`): no connection accepted
while no node is subscribed, on ugu and on the real uWSGI alike."""

import json
import socket

import pytest

from tests import support
from tests.test_subscriptions import free_udp_port, send
from ugu.subscription import SUBSCRIBE, UNSUBSCRIBE, Announce

APP = '''
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"cheap-ok"]
'''


def _stats_cheap(port):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as s:
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return json.loads(data)["cheap"]


def _get(port, timeout):
    with socket.create_connection(("127.0.0.1", port), timeout=timeout) as s:
        s.sendall(b"GET / HTTP/1.0\r\nHost: c.example\r\n\r\n")
        data = b""
        while chunk := s.recv(65536):
            data += chunk
    return data


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_cheap_accepts_only_while_a_node_is_subscribed(start_server, server,
                                                       tmp_path):
    app = tmp_path / "app.py"
    app.write_text(APP)
    front, udp, stats, back = (support.free_port(), free_udp_port(),
                               support.free_port(), support.free_port())
    proc = start_server(server, [
        "--master", "--http", f"127.0.0.1:{front}",
        "--http-subscription-server", f"127.0.0.1:{udp}", "--http-cheap",
        "--http-stats", f"127.0.0.1:{stats}",
        "--socket", f"127.0.0.1:{back}", "--wsgi-file", str(app)])
    proc.wait_for_log("starting uWSGI http in cheap mode")
    proc.wait_for_log(r"spawned uWSGI http 1 \(pid")
    support.wait_for_port(stats)
    assert _stats_cheap(stats) == 1
    # Bound, but not accepted: the request waits in the backlog.
    with pytest.raises(socket.timeout):
        _get(front, 0.5)
    send(udp, Announce(SUBSCRIBE, b"c.example", f"127.0.0.1:{back}".encode()))
    proc.wait_for_log(r"\[uWSGI http pid \d+\] leaving cheap mode\.\.\.")
    assert _get(front, 5).endswith(b"cheap-ok")
    assert _stats_cheap(stats) == 0
    send(udp, Announce(UNSUBSCRIBE, b"c.example",
                       f"127.0.0.1:{back}".encode()))
    proc.wait_for_log(r"\[uWSGI http pid \d+\] no more nodes available\. "
                      r"Going cheap\.\.\.")
    assert _stats_cheap(stats) == 1
    with pytest.raises(socket.timeout):
        _get(front, 0.5)


@pytest.mark.parametrize("args, words", [
    (["--http", "{port}", "--http-to", "127.0.0.1:1"],
     "add one, or remove http-cheap"),
    (["--socket", "{port}"], "add `http = ADDR`"),
])
def test_cheap_refused_where_it_would_do_nothing(procs, args, words):
    port = f"127.0.0.1:{support.free_port()}"
    proc = procs.ugu("--master", "--http-cheap",
                     *[a.format(port=port) for a in args])
    assert proc.wait() != 0
    out = proc.output()
    assert "http-cheap" in out and words in out
