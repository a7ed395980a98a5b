"""The subscription system's finer options, each compared with the real
uWSGI on the same input: subscription-algo (how a pool's node is
chosen), subscription-dotsplit (a Host falling back to its parts),
subscribe-with-modifier1 and subscription-notify-socket (what the
announces carry, and the router's acknowledgement), and the deprecated
fastrouter/rawrouter-subscription-slot.
"""

import os
import re
import socket
import struct
import textwrap
import threading

import pytest
import requests

from tests import support
from tests.test_subscriptions import _router, free_udp_port, send
from ugu import protocol, subscription
from ugu.router.subscriptions import Table
from ugu.subscription import SUBSCRIBE, Announce

# The worker's pid; /slow makes the file the query names with ".in"
# added, then holds the request until the file itself exists.
APP = textwrap.dedent('''
    import os, time

    def application(environ, start_response):
        if environ["PATH_INFO"] == "/slow":
            path = environ["QUERY_STRING"]
            open(path + ".in", "w").close()
            for _ in range(500):
                if os.path.exists(path):
                    break
                time.sleep(0.01)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"%d" % os.getpid()]
''')


@pytest.fixture
def app(tmp_path):
    path = tmp_path / "app.py"
    path.write_text(APP)
    return path


def _vassal(start_server, server, app, udp, key, *extra):
    port = support.free_port()
    proc = start_server(server, [
        "--master", "--socket", f"127.0.0.1:{port}", "--wsgi-file",
        str(app), "--subscribe-to", f"127.0.0.1:{udp}:{key}", *extra])
    pid = int(proc.wait_for_log(
        r"spawned uWSGI worker 1 \(pid: (\d+)").group(1))
    return proc, pid


def _get(port, host, path="/"):
    return requests.get(f"http://127.0.0.1:{port}{path}",
                        headers={"Host": host}, timeout=10)


# subscription-algo

def _pool(algo, *references, weights=None):
    table = Table(17, lambda: 0.0, algo=algo)
    for index, _ in enumerate(references):
        weight = weights[index] if weights else 0
        table.announce(Announce(SUBSCRIBE, b"k", b"n:%d" % index,
                                weight=weight))
    pool = table.pool(b"k")
    for node, reference in zip(pool.nodes, references):
        node.reference = reference
    return table, pool


@pytest.mark.parametrize("references, chosen", [
    ((0, 0, 0), 2),      # a run of idle nodes: its last
    ((0, 0, 5), 1),
    ((3, 0, 0), 2),
    ((3, 1, 2), 1),
    ((2, 2), 0),
])
def test_lrc_takes_uwsgis_node(references, chosen):
    table, pool = _pool("lrc", *references)
    assert table.pick(pool) is pool.nodes[chosen]


def test_wlrc_weighs_the_connections():
    # 4/4 = 1 against 1/1: the heavier node, though busier.
    table, pool = _pool("wlrc", 1, 4, weights=[1, 8])
    assert table.pick(pool) is pool.nodes[1]
    table, pool = _pool("wlrc", 2, 1, weights=[1, 1])
    assert table.pick(pool) is pool.nodes[1]


def test_lrc_skips_the_nodes_tried():
    table, pool = _pool("lrc", 0, 0)
    assert table.pick(pool, (pool.nodes[1],)) is pool.nodes[0]
    assert table.pick(pool, tuple(pool.nodes)) is None


def test_a_nodes_connections_are_counted_until_closed():
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen()
        port = listener.getsockname()[1]
        table = Table(17, lambda: 0.0, algo="lrc")
        table.announce(Announce(SUBSCRIBE, b"k", b"127.0.0.1:%d" % port))
        node = table.pool(b"k").nodes[0]
        backends = [node.start_connect() for _ in range(2)]
        assert node.reference == 2
        for backend in backends:
            backend.close()
            backend.close()   # once only
        assert node.reference == 0


@pytest.mark.parametrize("router", ["ugu", "uwsgi"])
def test_lrc_sends_to_the_idle_node(start_server, tmp_path, app, router):
    """Of two idle nodes the later takes the request (the last of a run
    of idle ones); while it holds it, the next goes to the other.  (One
    after the other, uWSGI's requests may find the node of the one
    before still counted: its router lets go of the node's connection
    a moment after the client has its answer, and so may ugu's.)"""
    proc, http, udp = _router(start_server, router, tmp_path,
                              "--subscription-algo", "lrc")
    _, first = _vassal(start_server, "ugu", app, udp, "k.example")
    proc.wait_for_log(r"=> new node: ")
    _, second = _vassal(start_server, "ugu", app, udp, "k.example")
    proc.wait_for_log(r"=> new node: ", count=2)
    release = tmp_path / "release"
    with requests.Session() as held:
        result = []
        thread = threading.Thread(target=lambda: result.append(held.get(
            f"http://127.0.0.1:{http}/slow?{release}",
            headers={"Host": "k.example"}, timeout=10).text))
        thread.start()
        try:
            # Until the held request is in the worker: the router's
            # connection to it is open.
            support.wait_until(
                lambda: (tmp_path / "release.in").exists())
            assert _get(http, "k.example").text == str(first)
        finally:
            release.touch()
            thread.join()
    assert result == [str(second)]


def test_an_unknown_algo_is_refused(procs):
    proc = procs.ugu("--master", "--http", f"127.0.0.1:{support.free_port()}",
                     "--http-subscription-server",
                     f"127.0.0.1:{free_udp_port()}",
                     "--subscription-algo", "iphash")
    assert proc.wait() == 1
    assert "subscription-algo" in proc.output()
    assert "wrr" in proc.output() and "lrc" in proc.output()


# subscription-dotsplit

@pytest.mark.parametrize("router", ["ugu", "uwsgi"])
def test_dotsplit_falls_back_to_the_parent_keys(start_server, tmp_path,
                                               app, router):
    proc, http, udp = _router(start_server, router, tmp_path,
                              "--subscription-dotsplit")
    _, pid = _vassal(start_server, "ugu", app, udp, ".example.com")
    proc.wait_for_log(r"=> new node: ")
    assert _get(http, "www.example.com").text == str(pid)
    assert _get(http, "a.b.example.com").text == str(pid)
    assert _get(http, ".example.com").text == str(pid)
    # Five keys at most: a.b.c.d.e.example.com's fifth is .e.example.com.
    with pytest.raises(requests.RequestException) if router == "uwsgi" \
            else _nothing():
        answer = _get(http, "a.b.c.d.e.example.com")
        assert answer.status_code == 404
    # No fallback to "example.com" (no leading dot) for "example.com"
    # itself, nor for others.
    with pytest.raises(requests.RequestException) if router == "uwsgi" \
            else _nothing():
        assert _get(http, "example.com").status_code == 404


class _nothing:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


# What an announce carries: subscribe-with-modifier1 and
# subscription-notify-socket.

def _announce_of(start_server, server, app, tmp_path, *extra):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        sock.bind(("127.0.0.1", 0))
        sock.settimeout(10)
        udp = sock.getsockname()[1]
        port = support.free_port()
        start_server(server, [
            "--master", "--socket", f"127.0.0.1:{port}", "--wsgi-file",
            str(app), "--subscribe-to", f"127.0.0.1:{udp}:k.example,5",
            *extra])
        data = sock.recv(4096)
    return data[0], dict(protocol.decode_vars(data[4:]))


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_announces_carry_the_forced_modifier1_and_the_notify_socket(
        start_server, tmp_path, app, server):
    notify = str(tmp_path / "notify")
    first, pairs = _announce_of(start_server, server, app, tmp_path,
                                "--subscribe-with-modifier1", "300",
                                "--subscription-notify-socket", notify)
    assert first == 224
    assert pairs[b"modifier1"] == b"44"   # 300 in one byte
    assert pairs[b"notify"] == notify.encode()
    assert list(pairs)[-1] == b"notify"


@pytest.mark.parametrize("router", ["ugu", "uwsgi"])
def test_the_router_acknowledges_a_new_node(start_server, tmp_path, router):
    proc, http, udp = _router(start_server, router, tmp_path)
    path = str(tmp_path / "notify")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        sock.bind(path)
        sock.settimeout(10)
        send(udp, Announce(SUBSCRIBE, b"k.example", b"127.0.0.1:1",
                           notify=path.encode()))
        assert sock.recv(4096) == \
            b"[subscription ack] k.example => new node: 127.0.0.1:1"
        # Only for a new node: a second announce is no news.
        send(udp, Announce(SUBSCRIBE, b"k.example", b"127.0.0.1:1",
                           notify=path.encode()))
        send(udp, Announce(SUBSCRIBE, b"k.example", b"127.0.0.1:2",
                           notify=path.encode()))
        assert sock.recv(4096) == \
            b"[subscription ack] k.example => new node: 127.0.0.1:2"


def test_the_announce_keeps_its_notify_field():
    sent = Announce(SUBSCRIBE, b"k", b"a:1", notify=b"/run/n")
    assert subscription.decode(subscription.encode(sent)) == sent


# fastrouter/rawrouter-subscription-slot: deprecated, as in uWSGI.

@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("option", ["fastrouter-subscription-slot",
                                    "rawrouter-subscription-slot"])
def test_the_slot_options_are_deprecated(start_server, tmp_path, app,
                                         server, option):
    port = support.free_port()
    proc = start_server(server, [
        "--master", "--socket", f"127.0.0.1:{port}", "--wsgi-file",
        str(app), f"--{option}", "1000"])
    proc.wait_for_log(rf'\[WARNING\] option "{option}" is deprecated: '
                      r'useless thanks to the new implementation')
    proc.wait_for_log(r"spawned uWSGI worker 1")


# subscriptions-use-credentials and subscriptions-credentials-check.

@pytest.mark.parametrize("router, vassal", [("ugu", "ugu"),
                                            ("uwsgi", "ugu"),
                                            ("ugu", "uwsgi")])
def test_the_credentials_check_takes_the_keys_of_the_sender(
        start_server, tmp_path, app, router, vassal):
    """A key's file in the folder must belong to the announcing
    instance's uid and gid; none there, or another's, and its announces
    are dropped without a word."""
    if os.getuid() != 0:
        pytest.skip("giving a file to another uid needs root")
    keys = tmp_path / "keys"
    keys.mkdir()
    (keys / "ok.example").touch()
    other = keys / "other.example"
    other.touch()
    os.chown(other, 65534, 65534)
    server = str(tmp_path / "sub.sock")
    http = support.free_port()
    proc = start_server(router, [
        "--master", "--http", f"127.0.0.1:{http}",
        "--http-subscription-server", server,
        "--subscriptions-use-credentials",
        "--subscriptions-credentials-check", f"{keys}/"])
    proc.wait_for_log("subscription server bound on")
    support.wait_for_port(http)
    # The refused ones first: the socket keeps the announces in order,
    # so theirs are read before the one that is taken.
    for key in ("other.example", "missing.example", "ok.example"):
        port = support.free_port()
        one = start_server(vassal, [
            "--master", "--socket", f"127.0.0.1:{port}", "--wsgi-file",
            str(app), "--subscribe-to", f"{server}:{key}",
            "--subscriptions-use-credentials"])
        one.wait_for_log(rf"subscribing to {re.escape(server)}:{key}")
    proc.wait_for_log(r"ok.example => new node: ")
    assert _get(http, "ok.example").status_code == 200
    lines = [line for line in proc.output().splitlines()
             if "new node" in line or "new pool" in line]
    assert all("ok.example" in line for line in lines), lines


def test_credentials_and_a_udp_server_are_refused(procs):
    proc = procs.ugu("--master", "--http", f"127.0.0.1:{support.free_port()}",
                     "--http-subscription-server",
                     f"127.0.0.1:{free_udp_port()}",
                     "--subscriptions-use-credentials")
    assert proc.wait() == 1
    assert "http-subscription-server" in proc.output()
    assert "unix socket" in proc.output()


# Signed subscriptions: subscriptions-sign-check and the signatures of
# subscribe-to and subscribe2.

@pytest.fixture
def keys(tmp_path):
    """(the private key's file, the folder of public keys, with
    k.example's)."""
    pytest.importorskip("cryptography")
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    private = tmp_path / "private.pem"
    private.write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    folder = tmp_path / "keys"
    folder.mkdir()
    (folder / "k.example.pem").write_bytes(key.public_key().public_bytes(
        serialization.Encoding.PEM,
        serialization.PublicFormat.SubjectPublicKeyInfo))
    return private, folder


def _signed(private, command=SUBSCRIBE, address=b"127.0.0.1:1",
            unix=None):
    """A signed announce for k.example, made now or at `unix`."""
    from ugu.subscription_sign import Signer
    signer = Signer(f"sha256:{private}", "subscribe-to")
    if unix is None:
        return subscription.encode(
            Announce(command, b"k.example", address), signer)
    pairs = [(b"key", b"k.example"), (b"address", address),
             (b"unix", b"%d" % unix)]
    pairs.append((b"sign", signer(protocol.encode_vars(pairs))))
    return protocol.encode(pairs, 224, command)


def _send_raw(udp, data):
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.sendto(data, ("127.0.0.1", udp))


def test_a_signed_announce_reads_back(keys):
    private, folder = keys
    announce = subscription.decode(_signed(private))
    assert announce.sign and announce.unix > 0
    from ugu.subscription_sign import Checker
    checker = Checker(f"sha256:{folder}", 60, (), pid=1)
    taken, key = checker.new_pool(announce, (0, 0, 0))
    assert taken and key is not None
    forged = subscription.decode(_signed(private).replace(
        b"127.0.0.1:1", b"127.0.0.1:2"))
    assert not checker.check(type("P", (), {"public_key": key})(), forged,
                             (0, 0, 0))


@pytest.mark.parametrize("router, vassal", [("ugu", "ugu"),
                                            ("uwsgi", "ugu"),
                                            ("ugu", "uwsgi")])
def test_only_signed_announces_are_taken(start_server, tmp_path, app,
                                         keys, router, vassal):
    private, folder = keys
    proc, http, udp = _router(start_server, router, tmp_path,
                              "--subscriptions-sign-check",
                              f"sha256:{folder}")
    # Unsigned, and signed for a key without a public one: dropped, and
    # read before the signed one that follows.
    for key in ("k.example", "other.example,0,sha256:" + str(private)):
        port = support.free_port()
        one = start_server(vassal, [
            "--master", "--socket", f"127.0.0.1:{port}", "--wsgi-file",
            str(app), "--subscribe-to", f"127.0.0.1:{udp}:{key}"])
        one.wait_for_log(rf"subscribing to 127.0.0.1:{udp}:"
                         rf"{re.escape(key)}")
    signed, pid = _vassal(start_server, vassal, app, udp,
                          f"k.example,0,sha256:{private}")
    proc.wait_for_log(r"k.example => new node: ")
    assert _get(http, "k.example").text == str(pid)
    # An unsigned unsubscribe is not heard; the signed one is.
    address = re.search(r"k.example => new node: (\S+)",
                        proc.output()).group(1)
    send(udp, subscription.Announce(1, b"k.example", address.encode()))
    # Read in order: once the next node is in, the unsubscribe was read.
    _send_raw(udp, _signed(private, address=b"127.0.0.1:9"))
    proc.wait_for_log(r"k.example => new node: 127.0.0.1:9")
    assert "as failed" not in proc.output()
    assert signed.stop() == 0
    proc.wait_for_log(rf"k.example => marking {re.escape(address)} as "
                      rf"failed")
    assert proc.output().count("as failed") == 1
    lines = [line for line in proc.output().splitlines()
             if "new node" in line or "new pool" in line]
    assert len(lines) == 3, lines
    # The same packet again: a copy, refused for the node it names.
    data = _signed(private, address=b"127.0.0.1:1")
    _send_raw(udp, data)
    proc.wait_for_log(r"k.example => new node: 127.0.0.1:1")
    _send_raw(udp, data)
    proc.wait_for_log(r"\[uwsgi-subscription for pid \d+\] invalid "
                      r"\(sniffed \?\) packet sent for slot: k.example "
                      r"node: 127.0.0.1:1 unix_check: \d+")


@pytest.mark.parametrize("router", ["ugu", "uwsgi"])
def test_an_old_signed_announce_opens_no_pool(start_server, tmp_path,
                                              keys, router):
    private, folder = keys
    proc, http, udp = _router(start_server, router, tmp_path,
                              "--subscriptions-sign-check",
                              f"sha256:{folder}",
                              "--subscriptions-sign-check-tolerance", "30")
    _send_raw(udp, _signed(private, unix=1000))
    proc.wait_for_log(r"invalid \(sniffed \?\) packet sent for slot: "
                      r"k.example node: 127.0.0.1:1 unix_check: 1000")
    # A fresh one is taken.
    _send_raw(udp, _signed(private, address=b"127.0.0.1:2"))
    proc.wait_for_log(r"k.example => new node: 127.0.0.1:2")
    assert "new node: 127.0.0.1:1" not in proc.output()


@pytest.mark.parametrize("args, words", [
    (["--subscriptions-sign-check", "nodigest:/tmp"], "no digest"),
    (["--subscriptions-sign-check", "/tmp"], "DIGEST:DIR"),
])
def test_bad_sign_checks_are_refused(procs, args, words):
    proc = procs.ugu("--master", "--http", f"127.0.0.1:{support.free_port()}",
                     "--http-subscription-server",
                     f"127.0.0.1:{free_udp_port()}", *args)
    assert proc.wait() == 1
    assert words in proc.output()
    assert "subscriptions-sign-check" in proc.output()


def test_a_signature_without_its_key_is_refused(procs, tmp_path):
    proc = procs.ugu("--master", "--socket",
                     f"127.0.0.1:{support.free_port()}", "--subscribe-to",
                     f"127.0.0.1:{free_udp_port()}:k,0,sha256:"
                     f"{tmp_path}/none.pem")
    assert proc.wait() == 1
    assert "none.pem" in proc.output() and "subscribe-to" in proc.output()


@pytest.mark.parametrize("router", ["ugu", "uwsgi"])
def test_a_skipped_uid_needs_no_signature(start_server, tmp_path, keys,
                                          router):
    if os.getuid() != 0:
        pytest.skip("sending another uid's credentials needs root")
    _, folder = keys
    server = str(tmp_path / "sub.sock")
    http = support.free_port()
    proc = start_server(router, [
        "--master", "--http", f"127.0.0.1:{http}",
        "--http-subscription-server", server,
        "--subscriptions-use-credentials",
        "--subscriptions-sign-check", f"sha256:{folder}",
        "--subscriptions-sign-skip-uid", "1000"])
    proc.wait_for_log("subscription server bound on")
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM) as sock:
        for uid, address in ((1001, b"127.0.0.3:1"), (1000, b"127.0.0.3:2")):
            ids = struct.pack("3i", os.getpid(), uid, 0)
            sock.sendmsg([subscription.encode(Announce(
                SUBSCRIBE, b"k.example", address))],
                [(socket.SOL_SOCKET, socket.SCM_CREDENTIALS, ids)], 0,
                server)
    proc.wait_for_log(r"k.example => new node: 127.0.0.3:2")
    assert "127.0.0.3:1" not in proc.output()


def test_every_router_process_takes_a_signed_node(start_server, tmp_path,
                                                   app, keys):
    """The process that reads a signed announce checks it and passes it
    on to the others, which take it (README, difference 70)."""
    private, folder = keys
    proc, http, udp = _router(start_server, "ugu", tmp_path,
                              "--http-processes", "2",
                              "--subscriptions-sign-check",
                              f"sha256:{folder}")
    proc.wait_for_log(r"spawned uWSGI http 2")
    _, pid = _vassal(start_server, "ugu", app, udp,
                     f"k.example,0,sha256:{private}")
    proc.wait_for_log(r"k.example => new node: ", count=2)
    # New connections each: the kernel spreads them over both processes.
    assert {_get(http, "k.example").text for _ in range(20)} == {str(pid)}
