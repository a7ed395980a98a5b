"""uWSGI's subscription system: a router's `http-subscription-server`
and the instances that announce themselves to it (`subscribe-to`,
`subscribe2`).

The packets and the pools are checked alone; then real routers (ugu's and
the real uWSGI's) route by Host to real vassals (ugu's and uWSGI's)
subscribed to them, both ways, and their log lines are compared.
"""

import re
import socket
import textwrap

import pytest
import requests

from tests import support
from ugu import subscription
from ugu.options.errors import ConfigError
from ugu.router.subscriptions import Table
from ugu.subscription import SUBSCRIBE, UNSUBSCRIBE, Announce

APP = textwrap.dedent('''
    import os

    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d %s" % (os.getpid(),
                            environ.get("HTTP_HOST", "").encode())]
''')


def free_udp_port():
    """A port free for TCP (support.free_port) and for UDP."""
    while True:
        port = support.free_port()
        with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port


def send(port, announce):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(subscription.encode(announce), ("127.0.0.1", port))


# The packets and the parsing of the options.

def test_packet_round_trip():
    sent = Announce(SUBSCRIBE, b"example.com", b"127.0.0.1:3031", 5, 1, 4,
                    0, 2)
    data = subscription.encode(sent)
    assert data[0] == 224 and data[3] == SUBSCRIBE
    assert subscription.decode(data) == sent
    gone = Announce(UNSUBSCRIBE, b"k", b"/tmp/s")
    assert subscription.encode(gone)[3] == UNSUBSCRIBE


def test_decode_refuses_what_is_no_subscription():
    good = subscription.encode(Announce(SUBSCRIBE, b"k", b"a:1"))
    assert subscription.decode(b"\x00" + good[1:]) is None  # modifier1 0
    assert subscription.decode(good[:3]) is None
    assert subscription.decode(good[:-2]) is None  # a cut var
    no_key = subscription.encode(Announce(SUBSCRIBE, b"", b"a:1"))
    assert subscription.decode(no_key) is None


def test_parse_subscribe_forms():
    parse = subscription.parse_subscribe
    sub = parse("127.0.0.1:4000:example.com", ["127.0.0.1:3031"])
    assert (sub.server, sub.key, sub.address, sub.modifier1) == (
        "127.0.0.1:4000", "example.com", None, 0)
    sub = parse("127.0.0.1:4000:example.com:8080,5", [])
    assert (sub.key, sub.modifier1) == ("example.com:8080", 5)
    sub = parse("/run/sub.sock:example.com", [])
    assert (sub.server, sub.key) == ("/run/sub.sock", "example.com")
    sub = parse("127.0.0.1:4000:k,5,sha256:/key.pem", [])
    assert (sub.key, sub.modifier1, sub.sign) == ("k", 5, "sha256:/key.pem")
    sub = parse("10.0.0.1:3031=127.0.0.1:4000:k", [])
    assert (sub.address, sub.server) == ("10.0.0.1:3031", "127.0.0.1:4000")
    sub = parse("=1=127.0.0.1:4000:k", ["a:1", "b:2"])
    assert sub.address == "b:2"


@pytest.mark.parametrize("text, words", [
    ("127.0.0.1:4000", "is no subscription"),
    ("example.com", "is no subscription"),
    ("=3=127.0.0.1:4000:k", "no socket 3"),
])
def test_parse_subscribe_refuses(text, words):
    with pytest.raises(ConfigError, match=words):
        subscription.parse_subscribe(text, ["a:1"])


def test_parse_subscribe2():
    sub = subscription.parse_subscribe2(
        "server=127.0.0.1:4000,key=example.com,socket=0,weight=3,"
        "modifier1=7", ["127.0.0.1:3031"])
    assert (sub.server, sub.key, sub.address, sub.weight,
            sub.modifier1) == ("127.0.0.1:4000", "example.com",
                               "127.0.0.1:3031", 3, 7)
    with pytest.raises(ConfigError, match="needs server= and key="):
        subscription.parse_subscribe2("server=127.0.0.1:4000", [])
    with pytest.raises(ConfigError, match="unknown item 'colour=red'"):
        subscription.parse_subscribe2("server=a:1,key=k,colour=red", [])
    sub = subscription.parse_subscribe2(
        "server=a:1,key=k,sign=sha1:/key.pem", [])
    assert sub.sign == "sha1:/key.pem"


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_subscribe2_names_the_sni_files(start_server, tmp_path, app,
                                        server):
    """sni_key, sni_crt and sni_ca go in the announce as given, for a TLS
    router to add a context of the key's name (test_sslrouter)."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as udp:
        udp.bind(("127.0.0.1", 0))
        udp.settimeout(20)
        port = support.free_port()
        start_server(server, [
            "--master", "--socket", f"127.0.0.1:{port}", "--wsgi-file",
            str(app), "--subscribe2",
            f"server=127.0.0.1:{udp.getsockname()[1]},key=s.example,"
            f"sni_key=/k.pem,sni_crt=/c.pem,sni_ca=/ca.pem"])
        announce = subscription.decode(udp.recv(4096))
    assert (announce.key, announce.sni_key, announce.sni_crt,
            announce.sni_ca) == (b"s.example", b"/k.pem", b"/c.pem",
                                 b"/ca.pem")


def test_keys_file(tmp_path):
    keys = tmp_path / "keys"
    keys.write_text("# comment\none.example\ntwo.example,5\n")
    sub = subscription.parse_subscribe(f"127.0.0.1:4000:@{keys}", [])
    assert sub.keys() == [("one.example", 0), ("two.example", 5)]


# The pools.

def _table(clock=lambda: 0.0, tolerance=17):
    return Table(tolerance, clock)


def _announce(table, address, key=b"k", weight=0, command=SUBSCRIBE):
    table.announce(Announce(command, key, address, weight=weight))


def test_round_robin_starts_with_the_last_node():
    """uWSGI's wrr with equal weights: the last node, then the others in
    order, and round again."""
    table = _table()
    for port in (1, 2, 3):
        _announce(table, b"127.0.0.1:%d" % port)
    pool = table.pool(b"k")
    picked = [table.pick(pool).name for _ in range(6)]
    assert picked == ["127.0.0.1:3", "127.0.0.1:1", "127.0.0.1:2"] * 2


def test_weights_give_requests_in_a_row():
    table = _table()
    _announce(table, b"127.0.0.1:1", weight=2)
    _announce(table, b"127.0.0.1:2", weight=1)
    pool = table.pool(b"k")
    picked = [table.pick(pool).name[-1] for _ in range(6)]
    assert picked == ["2", "1", "1"] * 2


def test_unsubscribe_and_tolerance_drop_nodes(capfd):
    now = [100.0]
    table = _table(lambda: now[0], tolerance=3)
    _announce(table, b"127.0.0.1:1")
    _announce(table, b"127.0.0.1:2")
    _announce(table, b"127.0.0.1:2", command=UNSUBSCRIBE)
    assert [n.name for n in table.pool(b"k").nodes] == ["127.0.0.1:1"]
    now[0] += 3.5
    assert table.pool(b"k") is None
    err = capfd.readouterr().err
    assert "new pool: k (hash key: " in err
    assert "k => marking 127.0.0.1:2 as failed\n" in err
    assert ("k => marking 127.0.0.1:1 as failed (no announce received in "
            "3 seconds)") in err


def test_the_server_resolves_no_name(monkeypatch):
    """An announced name is resolved when a request first goes to its
    node, in that request's greenlet, never by the subscription server,
    whose every announce would wait on a slow resolver (uWSGI resolves
    none: its nodes are numeric IPv4)."""
    asked = []
    listener = socket.create_server(("127.0.0.1", 0))

    def getaddrinfo(host, port, *args, **kw):
        asked.append(host)
        return [(socket.AF_INET, socket.SOCK_STREAM, 6, "",
                 ("127.0.0.1", listener.getsockname()[1]))]

    monkeypatch.setattr(socket, "getaddrinfo", getaddrinfo)
    table = _table()
    _announce(table, b"node.example:3031")
    _announce(table, b"127.0.0.1:3032")
    _announce(table, b"[::1]:3033")
    _announce(table, b"/run/node.sock")
    assert asked == []
    named, _, ipv6, _ = table.pool(b"k").nodes
    with listener:
        for _ in range(2):
            backend = named.connect(5)
            assert backend.sock.getpeername() == listener.getsockname()
            backend.close()
    assert asked == ["node.example"]
    assert ipv6.address == ("::1", 3033)


def test_sni_files_a_router_without_tls_by_name_says_it_leaves(capfd):
    table = _table()
    for _ in range(2):
        table.announce(Announce(SUBSCRIBE, b"s.example:443", b"127.0.0.1:1",
                                sni_key=b"/k.pem", sni_crt=b"/c.pem"))
    said = capfd.readouterr().err
    assert said.count('no SSL context added for "s.example": only an '
                      'sslrouter takes sni_key and sni_crt') == 1


def test_hash_key_is_uwsgis():
    """The numbers the real uWSGI printed for these keys."""
    from ugu.options.expand import djb33x
    assert djb33x(b"localhost:52039") % 0xFFFF == 4360
    assert djb33x(b"example.org") % 0xFFFF == 44017


# End to end.

@pytest.fixture
def app(tmp_path):
    path = tmp_path / "app.py"
    path.write_text(APP)
    return path


def _router(start_server, server, tmp_path, *extra):
    http, udp = support.free_port(), free_udp_port()
    proc = start_server(server, [
        "--master", "--http", f"127.0.0.1:{http}",
        "--http-subscription-server", f"127.0.0.1:{udp}", *extra])
    proc.wait_for_log("subscription server bound on")
    support.wait_for_port(http)
    return proc, http, udp


def _vassal(start_server, server, app, udp, key, *extra):
    port = support.free_port()
    proc = start_server(server, [
        "--master", "--socket", f"127.0.0.1:{port}", "--wsgi-file",
        str(app), "--subscribe-to", f"127.0.0.1:{udp}:{key}", *extra])
    proc.wait_for_log(r"spawned uWSGI worker 1 \(pid: (\d+)")
    return proc, port


def _get(port, host):
    return requests.get(f"http://127.0.0.1:{port}/",
                        headers={"Host": host}, timeout=10)


def _worker_pid(proc):
    return int(proc.wait_for_log(
        r"spawned uWSGI worker 1 \(pid: (\d+)").group(1))


PAIRS = [("ugu", "ugu"), ("uwsgi", "ugu"), ("ugu", "uwsgi")]


@pytest.mark.parametrize("router, vassal", PAIRS)
def test_requests_go_by_host_to_the_subscribed_nodes(
        start_server, tmp_path, app, router, vassal):
    proc, http, udp = _router(start_server, router, tmp_path)
    one, port1 = _vassal(start_server, vassal, app, udp, "a.example")
    two, port2 = _vassal(start_server, vassal, app, udp, "a.example")
    other, port3 = _vassal(start_server, vassal, app, udp, "b.example")
    proc.wait_for_log(r"=> new node: ", count=3)
    pids = {_worker_pid(one), _worker_pid(two)}
    answers = [_get(http, "a.example").text for _ in range(4)]
    assert {int(a.split()[0]) for a in answers} == pids
    # Round robin: each node in turn.
    assert answers[0] != answers[1] and answers[0] == answers[2]
    assert _get(http, "b.example").text == \
        f"{_worker_pid(other)} b.example"
    # An instance that stops takes itself back.
    assert two.stop() == 0
    assert f"unsubscribing from 127.0.0.1:{udp}:a.example" in two.output()
    proc.wait_for_log(rf"\[uWSGI http pid \d+\] a.example => marking "
                      rf"127.0.0.1:{port2} as failed")
    for _ in range(3):
        assert _get(http, "a.example").text == \
            f"{_worker_pid(one)} a.example"
    router_lines = [line for line in proc.output().splitlines()
                    if "subscription for pid" in line]
    assert [re.sub(r"pid \d+", "pid N", line) for line in router_lines] \
        == [f"[uwsgi-subscription for pid N] {text}" for text in (
            "new pool: a.example (hash key: 11383)",
            f"a.example => new node: 127.0.0.1:{port1}",
            f"a.example => new node: 127.0.0.1:{port2}",
            "new pool: b.example (hash key: 38443)",
            f"b.example => new node: 127.0.0.1:{port3}")]


@pytest.mark.parametrize("router", ["ugu", "uwsgi"])
def test_a_silent_node_is_dropped_after_the_tolerance(
        start_server, tmp_path, router):
    proc, http, udp = _router(start_server, router, tmp_path,
                              "--subscription-tolerance", "1")
    dead = support.free_port()
    send(udp, Announce(SUBSCRIBE, b"c.example", b"127.0.0.1:%d" % dead))
    proc.wait_for_log("c.example => new node")
    # uWSGI counts whole seconds: more than one has passed after two.
    _sleepless_wait(2.2)
    try:
        status = _get(http, "c.example").status_code
    except requests.ConnectionError:
        status = None   # uWSGI closes without an answer
    proc.wait_for_log(rf"c.example => marking 127.0.0.1:{dead} as failed "
                      rf"\(no announce received in 1 seconds\)")
    assert status == (404 if router == "ugu" else None)


def _sleepless_wait(seconds):
    """Let time pass by waiting on a socket nobody writes to."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        s.settimeout(seconds)
        try:
            s.recv(1)
        except TimeoutError:
            pass


def test_no_node_is_404_and_a_dead_one_502(start_server, tmp_path):
    proc, http, udp = _router(start_server, "ugu", tmp_path)
    response = _get(http, "nobody.example")
    assert response.status_code == 404
    dead = support.free_port()
    send(udp, Announce(SUBSCRIBE, b"d.example", b"127.0.0.1:%d" % dead))
    proc.wait_for_log("d.example => new node")
    assert _get(http, "d.example").status_code == 502
    proc.wait_for_log(rf'\[uwsgi-http\] unable to connect\(\) to node '
                      rf'"127.0.0.1:{dead}" \(0 retries\): Connection '
                      rf'refused')
    proc.wait_for_log(rf"\[uwsgi-http\] d.example => marking "
                      rf"127.0.0.1:{dead} as failed")
    # The node has gone with its failure: the Host has no pool now.
    assert _get(http, "d.example").status_code == 404


def test_subscribe2_and_the_fallback_key(start_server, tmp_path, app):
    proc, http, udp = _router(start_server, "ugu", tmp_path,
                              "--http-subscription-fallback-key",
                              "default.example")
    vassal, port = _vassal(
        start_server, "ugu", app, udp, "x.example", "--subscribe2",
        f"server=127.0.0.1:{udp},key=default.example,weight=2")
    proc.wait_for_log("default.example => new node")
    pid = _worker_pid(vassal)
    assert _get(http, "unknown.example").text == f"{pid} unknown.example"
    assert (f"subscribing to server=127.0.0.1:{udp},key=default.example,"
            f"weight=2") in vassal.output()


def test_start_unsubscribed_waits_for_the_fifo(start_server, tmp_path,
                                               app):
    proc, http, udp = _router(start_server, "ugu", tmp_path)
    fifo = tmp_path / "fifo"
    vassal, port = _vassal(start_server, "ugu", app, udp, "f.example",
                           "--start-unsubscribed", "--master-fifo",
                           str(fifo), "--subscribe-freq", "1")
    support.wait_until(fifo.exists, what="the master fifo")
    assert _get(http, "f.example").status_code == 404
    assert "subscribing to" not in vassal.output()
    with open(fifo, "w") as f:
        f.write("S")
    vassal.wait_for_log("subscriptions re-enabled")
    proc.wait_for_log("f.example => new node")
    assert _get(http, "f.example").status_code == 200


@pytest.mark.parametrize("args, words", [
    (["--http-subscription-server", "127.0.0.1:{udp}", "--socket",
      "127.0.0.1:{tcp}"], "add `http = ADDR`"),
    (["--http", "127.0.0.1:{tcp}", "--http-subscription-server",
      "127.0.0.1:{udp}", "--http-to", "127.0.0.1:1"], "remove http-to"),
    (["--socket", "127.0.0.1:{tcp}", "--subscribe-to", "127.0.0.1:{udp}"],
     "is no subscription"),
])
def test_refused_configs(procs, args, words):
    udp, tcp = free_udp_port(), support.free_port()
    argv = [a.format(udp=udp, tcp=tcp) for a in args]
    proc = procs.ugu("--master", *argv)
    assert proc.wait() == 1
    assert words in proc.output()


# A host no resolver takes (a label over 63 bytes: Python's idna codec
# raises UnicodeError, no gaierror) and a port of a digit that is no
# ASCII one ("\xb2", superscript two, which str.isdigit() accepts).
ODD_ADDRESSES = [b"a" * 64 + b":80", b"127.0.0.1:\xb2"]


@pytest.mark.parametrize("router", ["ugu", "uwsgi"])
def test_an_odd_address_leaves_the_server_reading(start_server, tmp_path,
                                                  router):
    proc, http, udp = _router(start_server, router, tmp_path)
    for i, address in enumerate(ODD_ADDRESSES):
        send(udp, Announce(SUBSCRIBE, b"odd%d.example" % i, address))
    dead = support.free_port()
    send(udp, Announce(SUBSCRIBE, b"e.example", b"127.0.0.1:%d" % dead))
    proc.wait_for_log(rf"e.example => new node: 127.0.0.1:{dead}")
    if router == "uwsgi":
        return
    # Each odd node fails as a name nobody knows, and takes its pool.
    for i, address in enumerate(ODD_ADDRESSES):
        assert _get(http, f"odd{i}.example").status_code == 502
    assert _get(http, "e.example").status_code == 502
    assert "Traceback" not in proc.output()


def test_a_port_past_65535_wraps_as_uwsgis_htons(start_server, tmp_path,
                                                  app):
    """uWSGI connects to an announced port modulo 65536 (htons() of the
    number); ugu's router raised OverflowError in its loop, logged a
    traceback and left the client without an answer."""
    proc, http, udp = _router(start_server, "ugu", tmp_path)
    node, port = _vassal(start_server, "ugu", app, free_udp_port(),
                         "unused.example")
    support.wait_for_port(port)
    send(udp, Announce(SUBSCRIBE, b"wrap.example",
                       b"127.0.0.1:%d" % (port + 65536)))
    # 10**20 - 1, 65535 modulo 65536: a port nothing listens on here.
    send(udp, Announce(SUBSCRIBE, b"huge.example",
                       b"127.0.0.1:" + b"9" * 20))
    proc.wait_for_log("huge.example => new node")
    assert _get(http, "wrap.example").status_code == 200
    assert _get(http, "huge.example").status_code == 502
    assert "Traceback" not in proc.output()
