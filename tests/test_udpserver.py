"""The master's UDP server (`udp`), on ugu and on the real uWSGI: the
line it logs for each packet, the packets it leaves out, and what it
says where it cannot bind."""

import re
import socket
import subprocess

import pytest

from tests import support

APP = "def application(e, sr):\n    sr('200 OK', [])\n    return [b'ok']\n"
SERVERS = ["ugu", "uwsgi"]


@pytest.fixture
def site(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


def start(start_server, site, server, udp_port, *pairs, sockets=True):
    http = support.free_port()
    support.write_ini(site / "app.ini", uwsgi=[
        *([("http-socket", f"127.0.0.1:{http}"),
           ("wsgi-file", site / "app.py")] if sockets else []),
        ("master", "true"), ("udp", f"127.0.0.1:{udp_port}"), *pairs])
    p = start_server(server, ["--ini", "app.ini"], cwd=site)
    support.wait_until(lambda: "UDP server enabled." in p.output() or
                       "unable to bind" in p.output(),
                       what="the UDP server's line")
    return p


def send(port, *packets):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        for packet in packets:
            s.sendto(packet, ("127.0.0.1", port))
        return s.getsockname()[1]


@pytest.mark.parametrize("server", SERVERS)
def test_each_packet_is_logged_after_its_sender(start_server, site,
                                                server):
    """After the spawn lines; a packet of several lines as it came; the multicast announce (first byte 73)
    left out."""
    port = support.free_port()
    p = start(start_server, site, server, port)
    sender = send(port, b"hello\n", b"Iannounce\n", b"two\nlines\n",
                  b"last\n")
    me = f"[udp:127.0.0.1:{sender}]"
    support.wait_until(lambda: f"{me} last" in p.output(),
                       what="the last packet's line")
    p.stop()
    out = p.output()
    assert f"{me} hello\n{me} two\nlines\n{me} last\n" in out
    assert "announce" not in out
    assert out.index("spawned uWSGI worker 1") < \
        out.index("UDP server enabled.") < out.index(me)


def test_a_packet_without_a_line_end_is_a_line_of_its_own(start_server,
                                                          site):
    """Also one cut at its first NUL byte, as uWSGI cuts it (uWSGI runs
    both into the next line)."""
    port = support.free_port()
    p = start(start_server, site, "ugu", port)
    sender = send(port, b"no newline", b"cut\0here\n", b"next\n")
    me = f"[udp:127.0.0.1:{sender}]"
    support.wait_until(lambda: f"{me} next" in p.output(),
                       what="the second packet's line")
    p.stop()
    assert f"{me} no newline\n{me} cut\n{me} next\n" in p.output()


@pytest.mark.parametrize("server", SERVERS)
def test_udp_alone_is_a_server(start_server, site, server):
    """Without a socket, the UDP server keeps the instance running."""
    port = support.free_port()
    p = start(start_server, site, server, port, sockets=False)
    sender = send(port, b"alone\n")
    support.wait_until(
        lambda: f"[udp:127.0.0.1:{sender}] alone" in p.output(),
        what="the packet's line")
    p.stop()
    assert "socket option is missing" not in p.output()


@pytest.mark.parametrize("server", SERVERS)
def test_a_port_taken_leaves_the_instance_without_it(start_server, site,
                                                     server):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as taken:
        taken.bind(("127.0.0.1", 0))
        p = start(start_server, site, server, taken.getsockname()[1])
        p.stop()
    assert re.search(r"bind\(\): Address already in use \[core/socket\.c "
                     r"line \d+\]\nunable to bind to udp socket\. SNMP "
                     r"services will be disabled\.\n", p.output())


@pytest.mark.parametrize("address, message", [
    ("nocolon", "option 'udp': 'nocolon' is no HOST:PORT"),
    ("localhost:5", "option 'udp': 'localhost' is no IPv4 address")])
def test_an_address_uwsgi_cannot_bind_is_refused(site, address, message):
    done = subprocess.run(
        [*support.UGU, "--master", "--udp", address], cwd=site,
        timeout=30, capture_output=True, text=True,
        stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert message in done.stderr
