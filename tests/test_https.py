"""The HTTP router's TLS listeners (`https = ADDR,CERT,KEY[,CIPHERS[,CA]]`
and `https-export-cert`), beside uWSGI's.

A pair of instances, ugu and the real uWSGI (master, one worker running
the echo app, an `http` and an `https` address, keepalive), answers the
same TLS clients: Python's ssl and requests verifying a self-signed
certificate made for the test, and curl.  Other pairs ask clients for a
certificate signed by a CA made for the test.  Start-up errors are
compared on their own.
"""

import json
import re
import shutil
import socket
import ssl
import subprocess

import pytest
import requests

from tests import support

# One TLS 1.2 suite, so that the list is seen to be used (TLS 1.3's
# suites are not OpenSSL's cipher list, in uWSGI as in ugu).
CIPHERS = "ECDHE-RSA-AES128-GCM-SHA256"
SERVERS = ("ugu", "uwsgi")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """The test's folder of certificates: cert.pem and key.pem, the
    server's, self-signed for localhost; ca.pem, a CA, and client.pem
    (with client.key), a client's certificate it signed; the echo app
    beside them."""
    support.need_openssl()
    folder = tmp_path_factory.mktemp("https")
    support.self_signed(folder / "cert.pem", folder / "key.pem",
                        "/CN=localhost", "localhost")
    ca = folder / "ca.pem", folder / "ca.key"
    support.self_signed(*ca, "/C=IT/O=Test CA/CN=ca")
    # A subject with a comma, an e-mail address and a byte past ASCII.
    support.signed(folder / "client.pem", folder / "client.key",
                   "/C=IT/ST=Lazio/O=Acme, Inc./OU=dev/CN=cli\u00e9nt one"
                   .encode().decode("unicode_escape") +
                   "/emailAddress=a@b.c", ca)
    shutil.copy(support.ECHO_APP, folder / "app.py")
    return folder


class Instance:
    """ugu or the real uWSGI with an `http` address and an `https` one
    with `https` after its address."""

    def __init__(self, command, folder, https, *options):
        self.http_port = support.free_port()
        self.port = support.free_port()
        ini = support.write_ini(
            folder / f"{command[-1]}-{self.port}.ini",
            uwsgi=[("master", "true"), ("processes", "1"),
                   ("wsgi-file", "app.py"), ("http-keepalive", "1"),
                   ("http-auto-chunked", "true"),
                   ("http", f"127.0.0.1:{self.http_port}"),
                   ("https", f"127.0.0.1:{self.port},{https}"), *options])
        self.process = support.Process([*command, "--ini", ini],
                                       cwd=folder)
        try:
            self.process.wait_for_log(r"spawned uWSGI http 1")
            support.wait_for_port(self.port)
        except BaseException:
            self.process.stop()
            raise
        self.folder = folder
        self.cert = str(folder / "cert.pem")

    def url(self, path):
        return f"https://localhost:{self.port}{path}"

    def client_context(self):
        return ssl.create_default_context(cafile=self.cert)

    def tls_connection(self, context=None):
        return support.tls_connect(self.port,
                                   context or self.client_context())


@pytest.fixture(scope="module")
def instances(certs, uwsgi_binary):
    pair = support.start_pair(Instance, uwsgi_binary, certs,
                              f"cert.pem,key.pem,{CIPHERS}")
    yield pair
    support.stop_pair(pair)


@pytest.fixture(params=SERVERS)
def server(request, instances):
    return instances[request.param]


def env_of(server, path="/env?a=1", **kw):
    response = requests.get(server.url(path), verify=server.cert,
                            headers={"X-Test": "yes"}, timeout=10, **kw)
    assert response.status_code == 200
    return response.json()


# The address lines and the vars.

def test_the_https_address_is_bound_and_logged_as_uwsgi_does(instances):
    for instance in instances.values():
        line = (rf"uWSGI http bound on 127\.0\.0\.1:{instance.port} "
                rf"fd \d+\n")
        instance.process.wait_for_log(line)


def test_the_app_sees_the_vars_uwsgi_sends_through_https(instances):
    seen = {}
    for name, instance in instances.items():
        env = env_of(instance)
        port = str(instance.port)
        assert env["SERVER_PORT"] == port
        assert env["HTTP_HOST"] == f"localhost:{port}"
        assert env["HTTPS"] == "on"
        assert env["wsgi.url_scheme"] == "https"
        seen[name] = [(key, env[key]) for key in env
                      if key.isupper() and key not in
                      ("SERVER_PORT", "HTTP_HOST", "REMOTE_PORT")]
    assert seen["ugu"] == seen["uwsgi"]
    # HTTPS where uWSGI puts it: after UWSGI_ROUTER, before REMOTE_ADDR.
    keys = [key for key, _ in seen["ugu"]]
    assert keys.index("HTTPS") == keys.index("UWSGI_ROUTER") + 1
    assert keys.index("REMOTE_ADDR") == keys.index("HTTPS") + 1


def test_the_plain_address_says_nothing_of_https(instances):
    for instance in instances.values():
        env = requests.get(f"http://127.0.0.1:{instance.http_port}/env",
                           timeout=10).json()
        assert "HTTPS" not in env
        assert env["wsgi.url_scheme"] == "http"


# Bodies both ways, and keepalive.

def test_bodies_go_through_tls_both_ways(server):
    body = bytes(range(256)) * 4096
    expected = requests.post(
        f"http://127.0.0.1:{server.http_port}/echo", data=body,
        timeout=10).text
    response = requests.post(server.url("/echo"), data=body,
                             verify=server.cert, timeout=10)
    assert response.status_code == 200
    assert response.text == expected


def test_a_chunked_body_is_dechunked_as_through_http(instances):
    # ugu only: uWSGI's router passes a chunked body on as it is, which
    # the app does not read (DEVIATIONS 5).
    server = instances["ugu"]
    body = bytes(range(256)) * 4096
    response = requests.post(server.url("/echo"), verify=server.cert,
                             data=iter([body[:1000], body[1000:]]),
                             timeout=10)
    assert response.text.startswith(f"{len(body)} ")


def test_a_large_answer_comes_whole(server):
    # /env answers with the body it read: many TLS records each way.
    body = b"y" * 300000
    response = requests.post(server.url("/env"), data=body,
                             verify=server.cert, timeout=10)
    assert response.json()["body"] == body.decode()


def test_keepalive_serves_requests_on_one_tls_connection(server):
    with requests.Session() as session:
        ports = {session.get(server.url("/env"), verify=server.cert,
                             timeout=10).json()["REMOTE_PORT"]
                 for _ in range(3)}
    assert len(ports) == 1


def test_curl_with_the_certificate_as_its_ca(server):
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("no curl command")
    result = subprocess.run(
        [curl, "-sS", "--cacert", server.cert, "--max-time", "10",
         server.url("/env?from=curl")], capture_output=True, timeout=20)
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["QUERY_STRING"] == "from=curl"


# The cipher list.

def test_the_cipher_list_is_used_for_tls_1_2(server):
    context = server.client_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    with server.tls_connection(context) as conn:
        assert conn.cipher()[0] == CIPHERS


def test_a_client_without_a_listed_cipher_is_refused(server):
    context = server.client_context()
    context.maximum_version = ssl.TLSVersion.TLSv1_2
    context.set_ciphers("ECDHE-RSA-AES256-GCM-SHA384")
    with pytest.raises(ssl.SSLError):
        server.tls_connection(context).close()
    assert env_of(server)["HTTPS"] == "on"


# Clients that fail, and the next one.

def test_a_plain_http_client_gets_no_answer(server):
    raw = support.answer_to_raw(server.port,
                                b"GET /env HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"HTTP/1" not in raw
    assert env_of(server)["HTTPS"] == "on"


def test_a_client_that_closes_before_its_hello_is_told_why(server):
    # OpenSSL's decode_error alert, as uWSGI's router sends it.
    assert support.answer_to_raw(server.port, b"") == \
        b"\x15\x03\x03\x00\x02\x02\x32"


def test_a_client_that_refuses_the_certificate_disturbs_no_other(server):
    with pytest.raises(ssl.SSLCertVerificationError):
        server.tls_connection(ssl.create_default_context()).close()
    assert env_of(server)["HTTPS"] == "on"


def test_a_stalled_handshake_holds_no_other_client(server):
    # A client that connects and says nothing: the next ones are served
    # all the same.
    with socket.create_connection(("127.0.0.1", server.port), timeout=10):
        assert env_of(server)["HTTPS"] == "on"


def test_handshakes_in_flight_at_once(server):
    results = support.at_once(lambda: env_of(server)["HTTPS"], 8)
    assert results == ["on"] * 8


def test_failed_handshakes_leave_no_error_in_the_log(instances):
    for instance in instances.values():
        output = instance.process.output()
        assert "Traceback" not in output
        assert "fast path failed" not in output


# Client certificates (`https = ...,CA` and `...,!CA`).

@pytest.fixture(scope="module")
def ca_instances(certs, uwsgi_binary):
    """Servers asking for a client certificate signed by ca.pem, and
    passing it as PEM too."""
    pair = support.start_pair(Instance, uwsgi_binary, certs,
                              "cert.pem,key.pem,,ca.pem",
                              ("https-export-cert", "true"))
    yield pair
    support.stop_pair(pair)


@pytest.fixture(scope="module")
def ca_required(certs, uwsgi_binary):
    pair = support.start_pair(Instance, uwsgi_binary, certs,
                              "cert.pem,key.pem,,!ca.pem")
    yield pair
    support.stop_pair(pair)


def _with_client_cert(instance, cert="client.pem", key="client.key"):
    return env_of(instance, "/env", cert=(str(instance.folder / cert),
                                          str(instance.folder / key)))


def test_a_client_certificate_reaches_the_app_as_uwsgi_passes_it(
        ca_instances):
    seen = {name: _with_client_cert(instance)
            for name, instance in ca_instances.items()}
    ugu_env = seen["ugu"]
    pem = (ca_instances["ugu"].folder / "client.pem").read_text()
    assert ugu_env["HTTPS_CC"] == pem
    # The name's bytes past ASCII written \xXX, as OpenSSL writes them.
    assert re.fullmatch(r"/C=IT/ST=Lazio/O=Acme, Inc\./OU=dev/"
                        r"CN=cli(\\x[0-9A-F]{2})+nt one/emailAddress=a@b\.c",
                        ugu_env["HTTPS_DN"])
    assert ugu_env["HTTPS_CLIENT_CERTIFICATE"].encode("latin-1") == \
        ssl.PEM_cert_to_DER_cert(pem)
    keys = {}
    for name, env in seen.items():
        keys[name] = [key for key in env if key.isupper()]
        for key in ("HTTPS", "HTTPS_CLIENT_CERTIFICATE", "HTTPS_DN",
                    "HTTPS_CC"):
            assert env[key] == ugu_env[key], (name, key)
    assert keys["ugu"] == keys["uwsgi"]


def test_without_a_client_certificate_only_https_is_said(ca_instances):
    for instance in ca_instances.values():
        env = env_of(instance)
        assert [key for key in env if key.startswith("HTTPS")] == ["HTTPS"]


def test_a_certificate_of_another_ca_is_refused(ca_instances):
    for instance in ca_instances.values():
        with pytest.raises(requests.exceptions.SSLError):
            _with_client_cert(instance, "cert.pem", "key.pem")
        assert "HTTPS_DN" in _with_client_cert(instance)


def test_a_required_client_certificate(ca_required):
    for instance in ca_required.values():
        with pytest.raises(requests.exceptions.ConnectionError):
            env_of(instance)
        env = _with_client_cert(instance)
        assert "HTTPS_DN" in env
        assert "HTTPS_CC" not in env


# Start-up errors.

def _start_up_error(command, folder, value):
    """(exit status, output) of an instance whose `https` is `value`."""
    ini = support.write_ini(folder / "bad.ini", uwsgi=[
        ("master", "true"), ("wsgi-file", "app.py"), ("https", value)])
    process = support.Process([*command, "--ini", ini], cwd=folder)
    try:
        status = process.wait()
    finally:
        process.stop()
    return status, process.output()


@pytest.mark.parametrize("fields, line", [
    ("{addr},nope.pem,{key}", '[uwsgi-ssl] unable to assign certificate '
     'nope.pem for context "http-{addr}"'),
    ("{addr},{cert},nope.pem", '[uwsgi-ssl] unable to assign key '
     'nope.pem for context "http-{addr}"'),
    ("{addr},{key},{cert}", '[uwsgi-ssl] unable to assign certificate '
     '{key} for context "http-{addr}"'),
    ("{addr},{cert},{key},NO-SUCH-CIPHER", '[uwsgi-ssl] unable to set '
     'requested ciphers (NO-SUCH-CIPHER) for context "http-{addr}"'),
    ("{addr},{cert}", "invalid https syntax must be socket,crt,key"),
    ("{addr},{cert},{key},,nope.pem", '[uwsgi-ssl] unable to set ssl '
     'verify locations (nope.pem) for context "http-{addr}"'),
])
def test_start_up_errors_say_what_uwsgi_says(certs, uwsgi_binary, fields,
                                             line):
    names = {"addr": f"127.0.0.1:{support.free_port()}",
             "cert": "cert.pem", "key": "key.pem"}
    expected = line.format(**names)
    for command in (support.UGU, [uwsgi_binary]):
        status, output = _start_up_error(command, certs,
                                         fields.format(**names))
        assert status == 1, output
        assert expected in output
        assert "spawned uWSGI http" not in output
