"""The HTTP router's options that its corerouter siblings share in uWSGI:
several router processes (http-processes), their subscriptions passed
between them, the router's stats server (http-stats), and the node
mappers (http-use-base, http-use-pattern, http-use-socket).

Real routers (ugu's and the real uWSGI's, where cheap) route real
requests to real workers; their log lines and answers are compared.
"""

import json
import os
import re
import signal
import socket
import textwrap

import pytest
import requests

from tests import support
from tests.test_subscriptions import free_udp_port, send
from ugu.subscription import SUBSCRIBE, Announce

APP = textwrap.dedent('''
    import os

    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%s %s" % (environ.get("HTTP_HOST", "-").encode(),
                            environ.get("SERVER_NAME", "-").encode())]
''')


@pytest.fixture
def app(tmp_path):
    path = tmp_path / "app.py"
    path.write_text(APP)
    return path


def _get(port, host="a.example", path="/"):
    return requests.get(f"http://127.0.0.1:{port}{path}",
                        headers={"Host": host, "Connection": "close"},
                        timeout=10)


def _stats(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        return json.loads(support.read_to_eof(s))


# http-processes

@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_processes_share_the_socket_and_the_subscriptions(start_server,
                                                          app, server):
    front, udp = support.free_port(), free_udp_port()
    router = start_server(server, [
        "--master", "--http", f"127.0.0.1:{front}", "--http-workers", "3",
        "--http-subscription-server", f"127.0.0.1:{udp}"])
    for index in (1, 2, 3):
        router.wait_for_log(rf"spawned uWSGI http {index} \(pid: \d+\)")
    support.wait_for_port(front)
    back = support.free_port()
    start_server(server, [
        "--master", "--socket", f"127.0.0.1:{back}", "--wsgi-file",
        str(app), "--subscribe-to", f"127.0.0.1:{udp}:a.example"])
    # The one process the kernel gave the announce to passed it on.
    router.wait_for_log(r"a.example => new node: ", count=3)
    lines = re.findall(r"\[uwsgi-subscription for pid (\d+)\] a.example "
                       r"=> new node: 127.0.0.1:(\d+)", router.output())
    assert sorted(port for _, port in lines) == [str(back)] * 3
    assert len({pid for pid, _ in lines}) == 3
    # Each new connection may land on any process: every one knows.
    for _ in range(12):
        reply = _get(front)
        assert reply.status_code == 200 and \
            reply.text.startswith("a.example ")
    router.stop()
    for index in (1, 2, 3):
        assert re.search(rf'gateway "uWSGI http {index}" has been buried',
                         router.output())


def test_processes_are_respawned_and_refused_below_one(procs, app):
    front, back = support.free_port(), support.free_port()
    router = procs.ugu("--master", "--http", f"127.0.0.1:{front}",
                       "--http-processes", "2", "--socket",
                       f"127.0.0.1:{back}", "--wsgi-file", str(app))
    router.wait_for_log(r"spawned uWSGI http 2 \(pid: (\d+)\)")
    pid = int(re.search(r"spawned uWSGI http 2 \(pid: (\d+)\)",
                        router.output()).group(1))
    support.wait_for_port(front)
    os.kill(pid, signal.SIGKILL)
    router.wait_for_log(r"respawned uWSGI http 2 \(pid: \d+\)")
    assert _get(front).status_code == 200
    bad = procs.ugu("--master", "--http", f"127.0.0.1:{support.free_port()}",
                    "--http-processes", "0", "--socket",
                    f"127.0.0.1:{support.free_port()}", "--wsgi-file",
                    str(app))
    assert bad.wait() != 0
    assert "http-processes" in bad.output() and \
        "write 1 or more" in bad.output()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_fastrouter_processes_pass_subscriptions_on(start_server, server):
    front, udp = support.free_port(), free_udp_port()
    router = start_server(server, [
        "--master", "--fastrouter", f"127.0.0.1:{front}",
        "--fastrouter-processes", "2",
        "--fastrouter-subscription-server", f"127.0.0.1:{udp}"])
    router.wait_for_log(r"spawned uWSGI fastrouter 2 \(pid")
    support.wait_for_port(front)
    send(udp, Announce(SUBSCRIBE, b"b.example", b"127.0.0.1:9"))
    router.wait_for_log(r"b.example => new node: 127.0.0.1:9", count=2)
    pids = re.findall(r"\[uwsgi-subscription for pid (\d+)\] b.example "
                      r"=> new node", router.output())
    assert len(set(pids)) == 2


# http-stats

@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_stats_server_lists_sockets_nodes_and_sessions(start_server, app,
                                                       server):
    front, stats, back = (support.free_port() for _ in range(3))
    dead = support.free_port()
    router = start_server(server, [
        "--master", "--http", f"127.0.0.1:{front}",
        "--http-stats-server", f"127.0.0.1:{stats}",
        "--http-to", f"127.0.0.1:{dead}", "--http-to", f"127.0.0.1:{back}",
        "--socket", f"127.0.0.1:{back}", "--wsgi-file", str(app)])
    router.wait_for_log(rf"\*\*\* http stats server enabled on "
                        rf"127.0.0.1:{stats} fd: \d+ \*\*\*")
    support.wait_for_port(front)
    support.wait_for_port(stats)
    for _ in range(2):
        assert _get(front).status_code == 200
    with socket.create_connection(("127.0.0.1", front), timeout=10) as s:
        # A head begun: a session open in the process that took it.
        s.sendall(b"GET / HTTP/1.1\r\n")
        doc = support.wait_until(
            lambda: (d := _stats(stats))["active_sessions"] and d,
            timeout=10)
    assert list(doc) == ["version", "pid", "uid", "gid", "cwd",
                         "active_sessions", "http", "static_nodes", "cheap"]
    assert doc["http"] == [f"127.0.0.1:{front}"]
    assert doc["active_sessions"] == 1 and doc["cheap"] == 0
    assert [n["name"] for n in doc["static_nodes"]] == [
        f"127.0.0.1:{dead}", f"127.0.0.1:{back}"]
    assert all(set(n) == {"name", "hits", "grace"}
               for n in doc["static_nodes"])
    assert doc["static_nodes"][0]["hits"] == 0
