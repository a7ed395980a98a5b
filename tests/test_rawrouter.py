"""uWSGI's rawrouter (`rawrouter = ADDR`): a TCP proxy, each connection
passed to the node of the router's address.

The nodes are small TCP servers of the test's own (threads on real
sockets); ugu's rawrouter and the real uWSGI's are checked on the same
options and log lines.
"""

import json
import socket
import threading

import pytest

from tests import support
from tests.test_subscriptions import free_udp_port, send
from ugu.router.rawrouter import Settings, mapped_address, xclient_line
from ugu.subscription import SUBSCRIBE, Announce


class Node:
    """A node on 127.0.0.1 (or a unix socket at `path`) that answers each
    line with `echo:` and the line; `greeting`: its first line, sent as
    soon as it accepts, as an SMTP server's; after an XCLIENT line it
    greets again, as Postfix does."""

    def __init__(self, greeting=None, path=None):
        family = socket.AF_UNIX if path else socket.AF_INET
        self.sock = socket.socket(family, socket.SOCK_STREAM)
        self.sock.bind(str(path) if path else ("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = None if path else self.sock.getsockname()[1]
        self.greeting = greeting
        self.lines = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,),
                             daemon=True).start()

    def _serve(self, conn):
        with conn, conn.makefile("rb") as lines:
            if self.greeting:
                conn.sendall(self.greeting)
            for line in lines:
                self.lines.append(line)
                if line.startswith(b"XCLIENT "):
                    conn.sendall(b"220 again\r\n")
                else:
                    conn.sendall(b"echo:" + line)

    def close(self):
        self.sock.close()


@pytest.fixture
def nodes():
    made = []

    def make(**kw):
        made.append(Node(**kw))
        return made[-1]
    yield make
    for node in made:
        node.close()


def _talk(port, line=b"hello\n", first=False):
    """What the router sends back for `line`: its answer (after the
    node's first line, with `first`), until it closes."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        got = s.recv(4096) if first else b""
        s.sendall(line)
        while not got.endswith(b"\n") or got == b"" or \
                got.count(b"\n") < (2 if first else 1):
            more = s.recv(4096)
            if not more:
                break
            got += more
    return got


def _closed_unanswered(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"hello\n")
        try:
            return support.read_to_eof(s) == b""
        except ConnectionResetError:
            return True


def _rawrouter(start_server, server, *args):
    front = support.free_port()
    proc = start_server(server, ["--master", "--rawrouter",
                                 f"127.0.0.1:{front}", *args])
    # Bound, listening, before it is spawned; no connection to probe it,
    # for one would reach a node.
    proc.wait_for_log(r"spawned uWSGI rawrouter 1 \(pid")
    return proc, front


def _lines(proc):
    return [line for line in proc.output().splitlines()
            if line.startswith("[uwsgi-rawrouter]")]


# The pure parts.

def test_pattern_base_and_xclient_line():
    def settings(pattern=None, base=None):
        return Settings(60, 4096, 30, False, (), pattern, base, (), 3,
                        False, 17, False, None)
    # The key is the router's own address: written in the config, it may
    # hold a "/" (a unix socket).
    assert mapped_address(settings(pattern="%s.node"), "/run/r.sock") == \
        "/run/r.sock.node"
    assert mapped_address(settings(base="/run/"), "a:1") == "/run/a:1"
    assert xclient_line("10.0.0.1") == b"XCLIENT ADDR=10.0.0.1\r\n"


# Options refused with their reason.

@pytest.mark.parametrize("args, words", [
    (["--rawrouter-to", "127.0.0.1:1", "--rawrouter-zerg", "x"],
     "only ugu's HTTP router takes a zerg server's sockets"),
    (["--rawrouter-to", "127.0.0.1:1", "--rawrouter-use-socket"],
     "keep one of them"),
    ([], "the rawrouter has no node to pass requests to"),
    (["--rawrouter-to", "127.0.0.1:1", "--rawrouter-cheap"],
     "takes a rawrouter-subscription-server"),
    (["--rawrouter-to", "127.0.0.1:1", "--rawrouter-use-pattern", "x%s"],
     "keep one of them"),
])
def test_refused(procs, args, words):
    proc = procs.ugu("--master", "--rawrouter",
                     f"127.0.0.1:{support.free_port()}", *args)
    assert proc.wait() != 0
    assert words in proc.output()


def test_rawrouter_options_without_rawrouter_are_refused(procs):
    proc = procs.ugu("--master", "--rawrouter-to", "127.0.0.1:1",
                     "--socket", f"127.0.0.1:{support.free_port()}")
    assert proc.wait() != 0
    assert "add `rawrouter = ADDR`" in proc.output()


# End to end, ugu and uWSGI alike.

@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_bytes_both_ways_and_the_node_speaks_first(start_server, nodes,
                                                   server):
    """The node's greeting comes at once: the rawrouter's socket does
    not wait for the client's first bytes to accept (uWSGI's is
    undeferred, its fastrouter's and http's are not)."""
    node = nodes(greeting=b"220 ready\r\n")
    proc, front = _rawrouter(start_server, server,
                             "--rawrouter-to", f"127.0.0.1:{node.port}")
    with socket.create_connection(("127.0.0.1", front), timeout=2) as s:
        assert s.recv(4096) == b"220 ready\r\n"
        s.sendall(b"\x00binary\xff\n")
        assert s.recv(4096) == b"echo:\x00binary\xff\n"


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_xclient_replaces_the_greeting(start_server, nodes, server):
    node = nodes(greeting=b"220 first\r\n")
    proc, front = _rawrouter(start_server, server,
                             "--rawrouter-to", f"127.0.0.1:{node.port}",
                             "--rawrouter-xclient")
    assert _talk(front, b"EHLO me\r\n", first=True) == \
        b"220 again\r\necho:EHLO me\r\n"
    assert node.lines[:2] == [b"XCLIENT ADDR=127.0.0.1\r\n",
                              b"EHLO me\r\n"]


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_dead_nodes_fallbacks_and_max_retries(start_server, nodes, server):
    """The first node fails and is marked; each fallback is a retry, and
    rawrouter-max-retries bounds them: the live fallback past it is
    never tried."""
    node = nodes()
    dead = [support.free_port() for _ in range(3)]
    proc, front = _rawrouter(
        start_server, server, "--rawrouter-to", f"127.0.0.1:{dead[0]}",
        "--rawrouter-fallback", f"127.0.0.1:{dead[1]}",
        "--rawrouter-fallback", f"127.0.0.1:{node.port}",
        "--rawrouter-max-retries", "2")
    assert _talk(front) == b"echo:hello\n"
    key = f"127.0.0.1:{front}"
    assert _lines(proc) == [
        f'[uwsgi-rawrouter] unable to connect() to node '
        f'"127.0.0.1:{dead[0]}" (0 retries): Connection refused',
        f"[uwsgi-rawrouter] {key} => marking 127.0.0.1:{dead[0]} as "
        f"failed",
        f'[uwsgi-rawrouter] unable to connect() to node '
        f'"127.0.0.1:{dead[1]}" (1 retries): Connection refused']


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_max_retries_exhausted_closes(start_server, nodes, server):
    node = nodes()
    dead = [support.free_port() for _ in range(2)]
    proc, front = _rawrouter(
        start_server, server, "--rawrouter-to", f"127.0.0.1:{dead[0]}",
        "--rawrouter-fallback", f"127.0.0.1:{dead[1]}",
        "--rawrouter-fallback", f"127.0.0.1:{node.port}",
        "--rawrouter-max-retries", "1")
    assert _closed_unanswered(front)
    proc.wait_for_log(rf'"127.0.0.1:{dead[1]}" \(1 retries\)')
    assert len(_lines(proc)) == 3 and not node.lines


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_subscribed_for_the_routers_address(start_server, nodes, server):
    node = nodes()
    udp = free_udp_port()
    proc, front = _rawrouter(
        start_server, server,
        "--rawrouter-subscription-server", f"127.0.0.1:{udp}")
    key = f"127.0.0.1:{front}"
    # No node for the key yet: closed without a byte.
    assert _closed_unanswered(front)
    send(udp, Announce(SUBSCRIBE, key.encode(),
                       f"127.0.0.1:{node.port}".encode()))
    proc.wait_for_log(f"{key} => new node: ")
    assert _talk(front) == b"echo:hello\n"


def test_use_pattern_with_a_unix_address(procs, nodes, tmp_path):
    """The key is the address as written, a path here: the pattern makes
    it the node's."""
    front = tmp_path / "r.sock"
    nodes(path=f"{front}.node")
    proc = procs.ugu("--master", "--rawrouter", str(front),
                     "--rawrouter-use-pattern", "%s.node")
    proc.wait_for_log(r"spawned uWSGI rawrouter 1 \(pid")
    support.wait_until(front.exists)
    with socket.socket(socket.AF_UNIX) as s:
        s.settimeout(10)
        support.wait_until(lambda: s.connect_ex(str(front)) == 0)
        s.sendall(b"hi\n")
        assert s.recv(4096) == b"echo:hi\n"


def test_stats_processes_and_quiet(start_server, nodes):
    node = nodes()
    stats = support.free_port()
    proc, front = _rawrouter(
        start_server, "ugu", "--rawrouter-to", f"127.0.0.1:{node.port}",
        "--rawrouter-to", f"127.0.0.1:{support.free_port()}",
        "--rawrouter-quiet", "--rawrouter-processes", "2",
        "--rawrouter-stats", f"127.0.0.1:{stats}")
    proc.wait_for_log(r"spawned uWSGI rawrouter 2 \(pid")
    proc.wait_for_log(rf"\*\*\* rawrouter stats server enabled on "
                      rf"127.0.0.1:{stats} fd: \d+ \*\*\*")
    for _ in range(4):
        assert _talk(front) == b"echo:hello\n"
    proc.wait_for_log("marking")
    assert "unable to connect()" not in proc.output()
    support.wait_for_port(stats)
    with socket.create_connection(("127.0.0.1", stats), timeout=10) as s:
        doc = json.loads(support.read_to_eof(s))
    assert doc["rawrouter"] == [f"127.0.0.1:{front}"]
    assert proc.stop() == 0
    assert 'gateway "uWSGI rawrouter 2" has been buried' in proc.output()


def test_a_half_closed_client_still_gets_the_answer(start_server, nodes):
    """README, differences: uWSGI's rawrouter ends the session when the
    client stops sending; ugu's tells the node and relays its answer."""
    node = nodes()
    proc, front = _rawrouter(start_server, "ugu", "--rawrouter-to",
                             f"127.0.0.1:{node.port}")
    with socket.create_connection(("127.0.0.1", front), timeout=10) as s:
        s.sendall(b"last\n")
        s.shutdown(socket.SHUT_WR)
        assert support.read_to_eof(s) == b"echo:last\n"
