"""The HTTP router's TLS listeners (`https = ADDR,CERT,KEY[,CIPHERS]`),
beside uWSGI's.

One instance of each server (master, one worker running the echo app, an
`http` and an `https` address, keepalive) answers the same TLS clients:
Python's ssl and requests verifying a self-signed certificate made for
the test, and curl.  Start-up errors are compared on their own.
"""

import json
import shutil
import socket
import ssl
import subprocess
import threading

import pytest
import requests

from tests import support

# One TLS 1.2 suite, so that the list is seen to be used (TLS 1.3's
# suites are not OpenSSL's cipher list, in uWSGI as in ugu).
CIPHERS = "ECDHE-RSA-AES128-GCM-SHA256"
SERVERS = ("ugu", "uwsgi")


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """(folder, certificate, key): a self-signed certificate for
    localhost, with the echo app beside it."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("no openssl command to make the test certificate with")
    folder = tmp_path_factory.mktemp("https")
    cert, key = folder / "cert.pem", folder / "key.pem"
    subprocess.run([openssl, "req", "-x509", "-newkey", "rsa:2048",
                    "-nodes", "-subj", "/CN=localhost", "-days", "1",
                    "-addext", "subjectAltName=DNS:localhost",
                    "-keyout", key, "-out", cert],
                   check=True, capture_output=True)
    shutil.copy(support.ECHO_APP, folder / "app.py")
    return folder, cert, key


class Instance:
    """ugu or the real uWSGI with an `http` and an `https` address."""

    def __init__(self, command, certs):
        folder, cert, key = certs
        self.http_port = support.free_port()
        self.port = support.free_port()
        ini = support.write_ini(
            folder / f"{command[-1]}.ini",
            uwsgi=[("master", "true"), ("processes", "1"),
                   ("wsgi-file", "app.py"), ("http-keepalive", "1"),
                   ("http-auto-chunked", "true"),
                   ("http", f"127.0.0.1:{self.http_port}"),
                   ("https", f"127.0.0.1:{self.port},{cert},{key},"
                             f"{CIPHERS}")])
        self.process = support.Process([*command, "--ini", ini],
                                       cwd=folder)
        try:
            self.process.wait_for_log(r"spawned uWSGI http 1")
            support.wait_for_port(self.port)
        except BaseException:
            self.process.stop()
            raise
        self.cert = str(cert)

    def url(self, path):
        return f"https://localhost:{self.port}{path}"

    def client_context(self):
        return ssl.create_default_context(cafile=self.cert)

    def tls_connection(self, context=None):
        raw = socket.create_connection(("127.0.0.1", self.port), timeout=10)
        try:
            return (context or self.client_context()).wrap_socket(
                raw, server_hostname="localhost")
        except BaseException:
            raw.close()
            raise


@pytest.fixture(scope="module")
def instances(certs, uwsgi_binary):
    started = {}
    try:
        for name, command in (("ugu", support.UGU),
                              ("uwsgi", [uwsgi_binary])):
            started[name] = Instance(command, certs)
        yield started
    finally:
        for instance in started.values():
            instance.process.stop()


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

def _answer_to_raw(port, data):
    """What the server sends back to `data` on a plain TCP connection,
    until it closes (a reset counts as closing)."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(data)
        if not data:
            s.shutdown(socket.SHUT_WR)
        try:
            return support.read_to_eof(s)
        except ConnectionResetError:
            return b""


def test_a_plain_http_client_gets_no_answer(server):
    raw = _answer_to_raw(server.port,
                         b"GET /env HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"HTTP/1" not in raw
    assert env_of(server)["HTTPS"] == "on"


def test_a_client_that_closes_before_its_hello_is_told_why(server):
    # OpenSSL's decode_error alert, as uWSGI's router sends it.
    assert _answer_to_raw(server.port, b"") == b"\x15\x03\x03\x00\x02\x02\x32"


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
    results = []

    def client():
        results.append(env_of(server)["HTTPS"])
    threads = [threading.Thread(target=client) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    assert results == ["on"] * 8


def test_failed_handshakes_leave_no_error_in_the_log(instances):
    for instance in instances.values():
        output = instance.process.output()
        assert "Traceback" not in output
        assert "fast path failed" not in output


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
])
def test_start_up_errors_say_what_uwsgi_says(certs, uwsgi_binary, fields,
                                             line):
    folder, cert, key = certs
    names = {"addr": f"127.0.0.1:{support.free_port()}", "cert": cert,
             "key": key}
    expected = line.format(**names)
    for command in (support.UGU, [uwsgi_binary]):
        status, output = _start_up_error(command, folder,
                                         fields.format(**names))
        assert status == 1, output
        assert expected in output
        assert "spawned uWSGI http" not in output


def test_a_client_ca_is_refused_by_name(certs):
    folder, cert, key = certs
    status, output = _start_up_error(
        support.UGU, folder,
        f"127.0.0.1:{support.free_port()},{cert},{key},,{cert}")
    assert status == 1
    assert "bad.ini:4: option 'https': a client CA" in output
