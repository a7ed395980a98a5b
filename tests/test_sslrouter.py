"""uWSGI's sslrouter (`sslrouter = ADDR,CERT,KEY`): TLS in, the bytes
passed to a node as the rawrouter passes them; its key the address, or
with sslrouter-sni the name the client asks for.

The nodes are the rawrouter tests'; ugu's sslrouter and the real uWSGI's
are checked on the same options.
"""

import ssl
import subprocess

import pytest

from tests import support, test_rawrouter
from tests.test_subscriptions import free_udp_port, send
from ugu.router.sslrouter import sni_key
from ugu.subscription import SUBSCRIBE, Announce

# The rawrouter tests' nodes.
nodes = test_rawrouter.nodes


@pytest.fixture(scope="module")
def cert(tmp_path_factory):
    """(certificate, key) files, self-signed for localhost."""
    return _self_signed(tmp_path_factory.mktemp("sslrouter"), "localhost")


def _self_signed(folder, name):
    support.need_openssl()
    pair = folder / "cert.pem", folder / "key.pem"
    support.self_signed(*pair, f"/CN={name}")
    return pair


def _sslrouter(start_server, server, cert, *args, option="sslrouter"):
    front = support.free_port()
    crt, key = cert
    value = (f"127.0.0.1:{front},{crt},{key}" if option == "sslrouter"
             else f"addr=127.0.0.1:{front},cert={crt},key={key}")
    proc = start_server(server, ["--master", f"--{option}", value, *args])
    # No probe of the port: a connection would be a session.
    proc.wait_for_log(r"spawned uWSGI sslrouter 1 \(pid")
    return proc, front


def _unverified():
    """A client's context that takes any certificate, the router's
    self-signed ones among them."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    return context


def _talk(port, name=None, line=b"hello\n"):
    with support.tls_connect(port, _unverified(), name) as s:
        s.sendall(line)
        try:
            return s.recv(4096)
        except (ssl.SSLError, ConnectionResetError):
            return b""


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("option", ["sslrouter", "sslrouter2"])
def test_tls_in_plain_out(start_server, nodes, cert, server, option):
    node = nodes()
    proc, front = _sslrouter(start_server, server, cert, "--sslrouter-to",
                             f"127.0.0.1:{node.port}", option=option)
    assert _talk(front) == b"echo:hello\n"
    assert node.lines == [b"hello\n"]


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_sni_names_the_subscribed_node(start_server, nodes, cert,
                                       server):
    """With sslrouter-sni the name asked for is the key; without a name,
    the address is."""
    a, b = nodes(), nodes()
    udp = free_udp_port()
    proc, front = _sslrouter(
        start_server, server, cert, "--sslrouter-sni",
        "--sslrouter-subscription-server", f"127.0.0.1:{udp}")
    send(udp, Announce(SUBSCRIBE, b"a.example",
                       f"127.0.0.1:{a.port}".encode()))
    send(udp, Announce(SUBSCRIBE, f"127.0.0.1:{front}".encode(),
                       f"127.0.0.1:{b.port}".encode()))
    proc.wait_for_log(f"127.0.0.1:{front} => new node: ")
    proc.wait_for_log("a.example => new node: ")
    assert _talk(front, "a.example", b"to a\n") == b"echo:to a\n"
    assert _talk(front, None, b"to b\n") == b"echo:to b\n"
    # A name no node has: closed, as uWSGI's.
    assert _talk(front, "none.example") == b""
    assert (a.lines, b.lines) == ([b"to a\n"], [b"to b\n"])


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_missing_certificate_stops_the_start(start_server, tmp_path,
                                               cert, server):
    proc = start_server(server, [
        "--master", "--sslrouter",
        f"127.0.0.1:{support.free_port()},{tmp_path}/none.pem,{cert[1]}",
        "--sslrouter-to", "127.0.0.1:1"])
    assert proc.wait() != 0
    assert f"unable to assign certificate {tmp_path}/none.pem for " \
           f"context \"sslrouter-127.0.0.1:" in proc.output()


@pytest.mark.parametrize("args, words", [
    (["--sslrouter", "127.0.0.1:1,only-a-cert"],
     "invalid sslrouter syntax must be socket,crt,key"),
    (["--sslrouter2", "addr=127.0.0.1:1,cert=x"],
     "needs addr, cert and key items"),
    (["--sslrouter2", "addr=127.0.0.1:1,bogus=x"], "is not one of addr="),
    (["--sslrouter-to", "127.0.0.1:1", "--socket",
      "127.0.0.1:{free}"], "add `sslrouter = ADDR,CERT,KEY`"),
])
def test_refused(procs, args, words):
    args = [a.format(free=support.free_port()) for a in args]
    proc = procs.ugu("--master", *args)
    assert proc.wait() != 0
    assert words in proc.output()


def test_an_sni_name_never_leads_out_of_a_base_folder():
    """The SNI name is the client's: one with a "/" or a NUL (or no
    usable IDNA form) is no key, and the router's address is used."""
    assert sni_key("a.example") == b"a.example"
    assert sni_key("b\u00fccher.example") == b"xn--bcher-kva.example"
    assert sni_key("admin/x") is None
    assert sni_key("a\0b") is None
    assert sni_key("../admin") is None
    assert sni_key("x" * 256) is None
    assert sni_key(None) is None


@pytest.fixture(scope="module")
def site_cert(tmp_path_factory):
    """(certificate, key) files of a second name, site.example."""
    return _self_signed(tmp_path_factory.mktemp("sslrouter-site"),
                        "site.example")


def _served_name(port, name):
    """The CN of the certificate the router shows a client asking for
    `name`."""
    with support.tls_connect(port, _unverified(), name) as s:
        der = s.getpeercert(binary_form=True)
    pem = ssl.DER_cert_to_PEM_cert(der)
    subject = subprocess.run(["openssl", "x509", "-noout", "-subject"],
                             input=pem, capture_output=True, text=True,
                             check=True).stdout
    return subject.rpartition("=")[2].strip()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_an_announce_adds_a_context_for_its_name(start_server, nodes, cert,
                                                 site_cert, tmp_path,
                                                 server):
    """An announce with sni_key and sni_crt (files on the router's
    machine) gives clients asking for its key's name (before any ':')
    that certificate; others keep the router's own; a second announce
    with other files changes nothing; files that do not load add
    nothing.  ugu refuses sni_ca: Python gives a connection another
    context without its request for a client certificate."""
    node = nodes()
    udp = free_udp_port()
    proc, front = _sslrouter(
        start_server, server, cert, "--sslrouter-sni",
        "--sslrouter-subscription-server", f"127.0.0.1:{udp}")
    crt, key = (str(path).encode() for path in site_cert)
    address = f"127.0.0.1:{node.port}".encode()
    send(udp, Announce(SUBSCRIBE, b"site.example:8443", address,
                       sni_key=key, sni_crt=crt))
    proc.wait_for_log(r"added SSL context for site\.example\n")
    base = str(cert[0]).encode()
    send(udp, Announce(SUBSCRIBE, b"site.example:8443", address,
                       sni_key=str(cert[1]).encode(), sni_crt=base))
    missing = str(tmp_path / "none.pem").encode()
    send(udp, Announce(SUBSCRIBE, b"other.example", address,
                       sni_key=missing, sni_crt=missing))
    proc.wait_for_log(r'DANGER unable to initialize context for '
                      r'"other\.example"\n')
    if server == "ugu":
        send(udp, Announce(SUBSCRIBE, b"ca.example", address,
                           sni_key=key, sni_crt=crt, sni_ca=base))
        proc.wait_for_log(r'no SSL context added for "ca\.example": ugu '
                          r'cannot ask clients for a certificate by name')
        assert _served_name(front, "ca.example") == "localhost"
    assert _served_name(front, "site.example") == "site.example"
    assert _served_name(front, "other.example") == "localhost"
    assert _served_name(front, None) == "localhost"


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_dotsplit_finds_a_subscribed_context_by_a_parent_name(
        start_server, nodes, cert, site_cert, server):
    """With subscription-dotsplit a client asking for www.site.example
    gets the certificate an announce added for .site.example."""
    node = nodes()
    udp = free_udp_port()
    proc, front = _sslrouter(
        start_server, server, cert, "--subscription-dotsplit",
        "--sslrouter-subscription-server", f"127.0.0.1:{udp}")
    crt, key = (str(path).encode() for path in site_cert)
    send(udp, Announce(SUBSCRIBE, b".site.example",
                       f"127.0.0.1:{node.port}".encode(),
                       sni_key=key, sni_crt=crt))
    proc.wait_for_log(r"added SSL context for \.site\.example\n")
    assert _served_name(front, "www.site.example") == "site.example"
    assert _served_name(front, "a.b.site.example") == "site.example"
    assert _served_name(front, "www.other.example") == "localhost"
