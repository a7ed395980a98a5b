"""The workers' sockets are numbered in the order the config gives them,
whatever their option (`socket`, `uwsgi-socket`, `http-socket`,
`http11-socket`), as uWSGI numbers them: the "uwsgi socket N" lines, the
stats' sockets list and the router's default node (socket 0) follow it.
The real ugu and the real uWSGI, from the command line and from an INI."""

import json
import re
import socket

import pytest

from tests import support

APP = '''
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"hello"]
'''
BOTH = pytest.mark.parametrize("server", ["ugu", "uwsgi"])
BOUND = re.compile(r"uwsgi socket (\d+) bound to (?:TCP|UNIX) address (\S+)")


def _bound(process, count):
    """{socket number: address} once `count` sockets are bound."""
    process.wait_for_log(r"spawned uWSGI worker 1")
    found = dict(BOUND.findall(process.output()))
    assert len(found) == count, process.output()
    return {int(number): address for number, address in found.items()}


def _answers_http(address):
    if address.startswith("/"):
        with socket.socket(socket.AF_UNIX) as s:
            s.settimeout(10)
            s.connect(address)
            s.sendall(b"GET / HTTP/1.0\r\n\r\n")
            raw = support.read_to_eof(s)
    else:
        raw = support.http10_get(int(address.rpartition(":")[2]))
    return raw.startswith(b"HTTP/1.") and raw.endswith(b"hello")


def _answers_uwsgi(address):
    raw = support.uwsgi_request(int(address.rpartition(":")[2]))
    return b" 200 " in raw.split(b"\r\n")[0] and raw.endswith(b"hello")


@BOTH
def test_command_line_order_numbers_the_sockets(start_server, tmp_path,
                                                server):
    (tmp_path / "app.py").write_text(APP)
    ports = [support.free_port() for _ in range(4)]
    unix = str(tmp_path / "http.sock")
    wanted = [("--http-socket", f"127.0.0.1:{ports[0]}"),
              ("--socket", f"127.0.0.1:{ports[1]}"),
              ("--http11-socket", f"127.0.0.1:{ports[2]}"),
              ("--uwsgi-socket", f"127.0.0.1:{ports[3]}"),
              ("--http-socket", unix)]
    stats = support.free_port()
    p = start_server(server, [
        *(word for pair in wanted for word in pair), "--wsgi-file",
        "app.py", "--master", "--stats", f"127.0.0.1:{stats}"],
        cwd=tmp_path)
    bound = _bound(p, len(wanted))
    assert [bound[n] for n in range(len(wanted))] == \
        [address for _, address in wanted]
    assert _answers_http(bound[0]) and _answers_http(bound[2])
    assert _answers_http(bound[4])
    assert _answers_uwsgi(bound[1]) and _answers_uwsgi(bound[3])
    support.wait_for_port(stats)
    with socket.create_connection(("127.0.0.1", stats), 10) as s:
        document = json.loads(support.read_to_eof(s))
    assert [entry["name"] for entry in document["sockets"]] == \
        [address for _, address in wanted]


@BOTH
def test_ini_order_numbers_the_sockets_and_protocol_applies(
        start_server, tmp_path, server):
    """`protocol = http` makes each `socket` speak HTTP wherever it
    stands; a `uwsgi-socket` still speaks uwsgi."""
    (tmp_path / "app.py").write_text(APP)
    ports = [support.free_port() for _ in range(4)]
    wanted = [("uwsgi-socket", f"127.0.0.1:{ports[0]}"),
              ("http11-socket", f"127.0.0.1:{ports[1]}"),
              ("socket", f"127.0.0.1:{ports[2]}"),
              ("http-socket", f"127.0.0.1:{ports[3]}")]
    ini = support.write_ini(tmp_path / "order.ini", uwsgi=[
        *wanted, ("protocol", "http"), ("wsgi-file", "app.py"),
        ("master", "true")])
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path)
    bound = _bound(p, len(wanted))
    assert [bound[n] for n in range(len(wanted))] == \
        [address for _, address in wanted]
    assert _answers_uwsgi(bound[0])
    assert all(_answers_http(bound[n]) for n in (1, 2, 3))


def test_router_forwards_to_the_first_socket_given(procs, tmp_path):
    """With no http-to the router's node is socket 0: here the
    http-socket written first, which the router cannot speak to (ugu
    says so; uWSGI's requests get no answer)."""
    (tmp_path / "app.py").write_text(APP)
    router, first, second = (support.free_port() for _ in range(3))
    p = procs.ugu("--http", f"127.0.0.1:{router}",
                  "--http-socket", f"127.0.0.1:{first}",
                  "--socket", f"127.0.0.1:{second}",
                  "--wsgi-file", "app.py", "--master", cwd=tmp_path)
    p.wait_for_log(r"forwards to the first socket, an http-socket")
    assert _bound(p, 2) == {0: f"127.0.0.1:{first}",
                            1: f"127.0.0.1:{second}"}


@BOTH
@pytest.mark.parametrize("option", ["socket", "http-socket"])
def test_an_empty_socket_address_stops_the_start(start_server, tmp_path,
                                                 server, option):
    """`socket =` left empty: uWSGI stops with its words, rather than
    bind a unix socket without a name; so does ugu, naming the line."""
    (tmp_path / "app.py").write_text(APP)
    ini = tmp_path / "empty.ini"
    ini.write_text(f"[uwsgi]\nhttp-socket = 127.0.0.1:"
                   f"{support.free_port()}\n{option} =\n"
                   f"wsgi-file = app.py\n")
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path)
    assert p.wait(30) == 1
    assert "invalid/empty uwsgi socket name" in p.output()
    assert "bound to UNIX address" not in p.output()
    if server == "ugu":
        assert f"empty.ini:3: option '{option}'" in p.output()
