"""TLS on the workers' own sockets (`https-socket`, `ssl-socket`) and the
options of every TLS context (`sni`, `sni-regexp`, `sni-dir`,
`ssl-option`, `ssl-tmp-dir`, `https-session-context`), beside uWSGI's.

A pair of instances, ugu and the real uWSGI (master, one worker running
the echo app), each with an https-socket and an ssl-socket, answers the
same TLS clients: Python's ssl, requests and curl, verifying certificates
a CA made for the test signed.  Start-up errors are compared on their
own.
"""

import shutil
import socket
import ssl
import subprocess

import pytest
import requests

from tests import support

SERVERS = ("ugu", "uwsgi")
# OpenSSL's SSL_OP_NO_TLSv1_3.
NO_TLS_1_3 = 1 << 29


def _signed(folder, name, subject, alt=None):
    """NAME.crt and NAME.key, signed by the test's CA."""
    support.signed(folder / f"{name}.crt", folder / f"{name}.key", subject,
                   (folder / "ca.crt", folder / "ca.key"), alt)


@pytest.fixture(scope="module")
def certs(tmp_path_factory):
    """The test's folder: ca.crt, a CA; localhost, other, pattern-1.test
    and dir.test (in sni/), servers' certificates it signed; client, a
    client's, and stranger, a self-signed one; the echo app."""
    support.need_openssl()
    folder = tmp_path_factory.mktemp("tlssocket")
    support.self_signed(folder / "ca.crt", folder / "ca.key", "/CN=Test CA")
    for name in ("localhost", "other", "pattern-1.test"):
        _signed(folder, name, f"/CN={name}", name)
    _signed(folder, "client", "/C=IT/O=Acme/CN=client")
    # A client's certificate no CA of the servers' signed.
    support.self_signed(folder / "stranger.crt", folder / "stranger.key",
                        "/CN=stranger")
    (folder / "sni").mkdir()
    _signed(folder, "dir.test", "/CN=dir.test", "dir.test")
    for suffix in ("crt", "key"):
        shutil.move(folder / f"dir.test.{suffix}",
                    folder / "sni" / f"dir.test.{suffix}")
    shutil.copy(support.ECHO_APP, folder / "app.py")
    return folder


class Instance:
    """ugu or the real uWSGI with an https-socket (`https` after its
    address) and an ssl-socket."""

    def __init__(self, command, folder, https, *options):
        self.port = support.free_port()
        self.uwsgi_port = support.free_port()
        ini = support.write_ini(
            folder / f"{command[-1]}-{self.port}.ini",
            # The options first: uWSGI applies ssl-option only to the
            # contexts made after it.
            uwsgi=[*options, ("master", "true"), ("processes", "1"),
                   ("wsgi-file", "app.py"),
                   ("https-socket", f"127.0.0.1:{self.port},{https}"),
                   ("ssl-socket",
                    f"127.0.0.1:{self.uwsgi_port},localhost.crt,"
                    f"localhost.key")])
        self.process = support.Process([*command, "--ini", ini],
                                       cwd=folder)
        try:
            self.process.wait_for_log(r"spawned uWSGI worker 1")
            support.wait_for_port(self.port)
        except BaseException:
            self.process.stop()
            raise
        self.folder = folder
        self.ca = str(folder / "ca.crt")

    def url(self, path, host="localhost"):
        return f"https://{host}:{self.port}{path}"

    def client_context(self):
        return ssl.create_default_context(cafile=self.ca)

    def tls_connection(self, name="localhost", context=None, port=None):
        return support.tls_connect(port or self.port,
                                   context or self.client_context(), name)

    def served_name(self, name):
        """The name of the certificate served to a client asking for
        `name` (its SNI)."""
        context = self.client_context()
        context.check_hostname = False
        with self.tls_connection(name, context) as conn:
            return dict(pair[0] for pair in
                        conn.getpeercert()["subject"])["commonName"]


@pytest.fixture(scope="module")
def instances(certs, uwsgi_binary):
    pair = support.start_pair(
        Instance, uwsgi_binary, certs, "localhost.crt,localhost.key,,ca.crt",
        ("sni", "other other.crt,other.key"),
        ("sni-regexp", r"^pattern-\d+\.test$ pattern-1.test.crt,"
                       r"pattern-1.test.key"),
        ("sni-dir", "sni"), ("ssl-option", str(NO_TLS_1_3)))
    yield pair
    support.stop_pair(pair)


@pytest.fixture(params=SERVERS)
def server(request, instances):
    return instances[request.param]


def env_of(server, path="/env?a=1", **kw):
    response = requests.get(server.url(path), verify=server.ca,
                            headers={"X-Test": "yes"}, timeout=10, **kw)
    assert response.status_code == 200
    return response.json()


def test_the_sockets_are_bound_and_logged_as_uwsgi_does(instances):
    for instance in instances.values():
        for index, port in enumerate((instance.port, instance.uwsgi_port)):
            instance.process.wait_for_log(
                rf"uwsgi socket {index} bound to TCP address "
                rf"127\.0\.0\.1:{port} fd \d+\n")


def test_the_app_sees_the_vars_uwsgi_gives_an_https_socket(instances):
    seen = {}
    for name, instance in instances.items():
        env = env_of(instance)
        assert env["HTTPS"] == "on"
        assert env["wsgi.url_scheme"] == "https"
        assert env["SERVER_PORT"] == str(instance.port)
        seen[name] = {key: env[key] for key in env if key.isupper()
                      and key not in ("SERVER_PORT", "HTTP_HOST",
                                      "SERVER_NAME")}
    assert seen["ugu"] == seen["uwsgi"]


def test_the_request_line_counts_the_vars_as_uwsgi_does(instances):
    lines = {}
    for name, instance in instances.items():
        before = instance.process.output()
        env_of(instance, "/env?count=1")
        lines[name] = support.wait_until(
            lambda: [line for line in
                     instance.process.output()[len(before):].splitlines()
                     if "GET /env?count=1" in line])[0]
    counts = {name: line.split("{")[1].split("}")[0]
              for name, line in lines.items()}
    assert counts["ugu"] == counts["uwsgi"]


def test_a_client_certificate_is_verified_and_not_passed_on(instances):
    # uWSGI's https-socket asks for it and passes the app nothing of it
    # (its HTTP router's https passes HTTPS_DN and the others).
    for instance in instances.values():
        env = env_of(instance, cert=(str(instance.folder / "client.crt"),
                                     str(instance.folder / "client.key")))
        assert [key for key in env if key.startswith("HTTPS")] == ["HTTPS"]
        with pytest.raises(requests.exceptions.SSLError):
            env_of(instance, cert=(str(instance.folder / "stranger.crt"),
                                   str(instance.folder / "stranger.key")))


def test_bodies_go_through_tls_both_ways(server):
    body = bytes(range(256)) * 4096
    response = requests.post(server.url("/env"), data=body,
                             verify=server.ca, timeout=10)
    assert response.json()["body"].encode("latin-1") == body


def test_a_file_wrapper_answer_comes_whole(server):
    response = requests.get(server.url("/file"), verify=server.ca,
                            timeout=10)
    assert response.content == (server.folder / "app.py").read_bytes()


def test_curl_with_the_ca(server):
    curl = shutil.which("curl")
    if curl is None:
        pytest.skip("no curl command")
    for _ in range(3):
        result = subprocess.run(
            [curl, "-sS", "--cacert", server.ca, "--max-time", "10",
             "--resolve", f"localhost:{server.port}:127.0.0.1",
             server.url("/env?from=curl")], capture_output=True,
            timeout=20)
        assert result.returncode == 0, result.stderr
        assert b'"QUERY_STRING": "from=curl"' in result.stdout


def test_ssl_option_reaches_the_context(server):
    # SSL_OP_NO_TLSv1_3: TLS 1.2 it is.
    with server.tls_connection() as conn:
        assert conn.version() == "TLSv1.2"


@pytest.mark.parametrize("name, served", [
    ("localhost", "localhost"), ("other", "other"),
    ("pattern-17.test", "pattern-1.test"), ("dir.test", "dir.test"),
    ("unknown.test", "localhost")])
def test_sni_picks_the_certificate(server, name, served):
    assert server.served_name(name) == served
    assert env_of(server)["HTTPS"] == "on"


def test_sni_serves_the_requests_too(server):
    response = requests.get(server.url("/env"), verify=server.ca,
                            headers={"Host": "other"}, timeout=10)
    assert response.status_code == 200
    with server.tls_connection("other") as conn:
        conn.sendall(b"GET /env HTTP/1.0\r\nHost: other\r\n\r\n")
        assert b'"HTTPS": "on"' in support.read_to_eof(conn)


def test_the_ssl_socket_speaks_uwsgi_over_tls(instances):
    from ugu import protocol as codec
    answers = {}
    pairs = [("REQUEST_METHOD", "GET"), ("REQUEST_URI", "/env"),
             ("PATH_INFO", "/env"), ("QUERY_STRING", ""),
             ("SERVER_PROTOCOL", "HTTP/1.1"), ("SERVER_NAME", "test"),
             ("SERVER_PORT", "80"), ("REMOTE_ADDR", "10.0.0.1")]
    packet = codec.encode([(k.encode(), v.encode()) for k, v in pairs])
    for name, instance in instances.items():
        with instance.tls_connection(port=instance.uwsgi_port) as conn:
            conn.sendall(packet)
            raw = support.read_to_eof(conn)
        status, headers, body = support.split_response(raw)
        assert status == "HTTP/1.1 200 OK"
        env = requests.models.complexjson.loads(body)
        # uWSGI's ssl-socket adds no HTTPS: the vars are the packet's.
        answers[name] = {k: v for k, v in env.items() if k.isupper()}
        assert answers[name]["REMOTE_ADDR"] == "10.0.0.1"
        assert "HTTPS" not in answers[name]
    assert answers["ugu"] == answers["uwsgi"]


def test_a_plain_http_client_gets_no_answer(server):
    raw = support.answer_to_raw(server.port,
                                b"GET /env HTTP/1.1\r\nHost: x\r\n\r\n")
    assert b"HTTP/1" not in raw
    assert env_of(server)["HTTPS"] == "on"


def test_a_client_that_refuses_the_certificate_disturbs_no_other(server):
    with pytest.raises(ssl.SSLCertVerificationError):
        server.tls_connection(context=ssl.create_default_context()).close()
    assert env_of(server)["HTTPS"] == "on"


def test_clients_at_once(server):
    results = support.at_once(lambda: env_of(server)["HTTPS"], 6)
    assert results == ["on"] * 6


def test_no_error_in_the_log(instances):
    output = instances["ugu"].process.output()
    assert "Traceback" not in output
    assert "error on request" not in output


# Start-up errors.

def _start_up_error(command, folder, *options):
    ini = support.write_ini(folder / "bad.ini", uwsgi=[
        ("master", "true"), ("wsgi-file", "app.py"), *options])
    process = support.Process([*command, "--ini", ini], cwd=folder)
    try:
        status = process.wait()
    finally:
        process.stop()
    return status, process.output()


@pytest.mark.parametrize("option, fields, line", [
    ("https-socket", "{addr},nope.pem,{key}", '[uwsgi-ssl] unable to '
     'assign certificate nope.pem for context "{addr}"'),
    ("ssl-socket", "{addr},{cert},nope.pem", '[uwsgi-ssl] unable to '
     'assign key nope.pem for context "{addr}"'),
    ("https-socket", "{addr},{cert},{key},NO-SUCH-CIPHER", '[uwsgi-ssl] '
     'unable to set requested ciphers (NO-SUCH-CIPHER) for context '
     '"{addr}"'),
    ("https-socket", "{addr},{cert}", "invalid https-socket syntax must "
     "be socket,crt,key"),
])
def test_start_up_errors_say_what_uwsgi_says(certs, uwsgi_binary, option,
                                             fields, line):
    names = {"addr": f"127.0.0.1:{support.free_port()}",
             "cert": "localhost.crt", "key": "localhost.key"}
    expected = line.format(**names)
    for command in (support.UGU, [uwsgi_binary]):
        status, output = _start_up_error(command, certs,
                                         (option, fields.format(**names)))
        assert status == 1, output
        assert expected in output, output


def test_https_session_context_names_the_https_context(certs,
                                                       uwsgi_binary):
    address = f"127.0.0.1:{support.free_port()}"
    for command in (support.UGU, [uwsgi_binary]):
        # Before `https`: uWSGI names the context as it reads that line.
        status, output = _start_up_error(
            command, certs, ("https-session-context", "shop"),
            ("https", f"{address},nope.pem,localhost.key"))
        assert status == 1, output
        assert ('unable to assign certificate nope.pem for context "shop"'
                in output), output


@pytest.mark.parametrize("option, value, words", [
    ("ssl-enable-sslv3", "true", "has no SSLv3"),
    # The error names the option by its name (ssl-enable3 is its alias).
    ("ssl-enable3", "true", "has no SSLv3"),
    ("ssl-verify-depth", "3", "cannot set OpenSSL's verification depth"),
    ("ssl-option", "many", "decimal number"),
    ("sni", "other.crt,other.key", "invalid sni syntax"),
])
def test_what_cannot_work_here_is_refused(certs, option, value, words):
    if option.endswith(("sslv3", "3")) and ssl.HAS_SSLv3:
        pytest.skip("this OpenSSL has SSLv3")
    status, output = _start_up_error(
        support.UGU, certs, ("https-socket",
                             f"127.0.0.1:{support.free_port()},"
                             f"localhost.crt,localhost.key"),
        (option, value))
    assert status == 1, output
    named = "ssl-enable-sslv3" if option == "ssl-enable3" else option
    assert f"option '{named}'" in output
    assert words in output


def test_ssl_tmp_dir_loads_pem_text(certs, tmp_path):
    # A certificate and key given as PEM text (a subscription's, say)
    # land in ssl-tmp-dir, named after the context.
    port = support.free_port()
    crt = (certs / "localhost.crt").read_text()
    key = (certs / "localhost.key").read_text()
    process = support.Process([
        *support.UGU, "--master", "--wsgi-file", "app.py",
        "--ssl-tmp-dir", str(tmp_path),
        "--https-socket", f"127.0.0.1:{port},{crt},{key}"], cwd=certs)
    try:
        process.wait_for_log(r"spawned uWSGI worker 1")
        support.wait_for_port(port)
        assert (tmp_path / f"127.0.0.1:{port}.crt").read_text() == crt
        assert (tmp_path / f"127.0.0.1:{port}.key").read_text() == key
        response = requests.get(f"https://localhost:{port}/env",
                                verify=str(certs / "ca.crt"), timeout=10)
        assert response.json()["HTTPS"] == "on"
    finally:
        process.stop()


def test_sni_reaches_the_http_router_too(certs, uwsgi_binary):
    for command in (support.UGU, [uwsgi_binary]):
        port = support.free_port()
        ini = support.write_ini(
            certs / f"router-{port}.ini",
            uwsgi=[("sni", "other other.crt,other.key"), ("master", "true"),
                   ("wsgi-file", "app.py"),
                   ("https", f"127.0.0.1:{port},localhost.crt,"
                             f"localhost.key"),
                   ("socket", f"127.0.0.1:{support.free_port()}")])
        process = support.Process([*command, "--ini", ini], cwd=certs)
        try:
            process.wait_for_log(r"spawned uWSGI http 1")
            support.wait_for_port(port)
            context = ssl.create_default_context(cafile=str(certs / "ca.crt"))
            with socket.create_connection(("127.0.0.1", port),
                                          timeout=10) as raw:
                with context.wrap_socket(raw,
                                         server_hostname="other") as conn:
                    conn.sendall(b"GET /env HTTP/1.0\r\nHost: other\r\n\r\n")
                    assert b'"HTTPS": "on"' in support.read_to_eof(conn)
        finally:
            process.stop()


def test_a_ca_in_sni_is_refused(certs):
    status, output = _start_up_error(
        support.UGU, certs, ("sni", "other other.crt,other.key,,ca.crt"),
        ("https-socket", f"127.0.0.1:{support.free_port()},localhost.crt,"
                         f"localhost.key"))
    assert status == 1, output
    assert "option 'sni'" in output
    assert "verify clients on the listener" in output


def test_a_gevent_worker_serves_tls(certs):
    pytest.importorskip("gevent")
    port = support.free_port()
    process = support.Process([
        *support.UGU, "--master", "--wsgi-file", "app.py", "--gevent", "8",
        "--https-socket", f"127.0.0.1:{port},localhost.crt,localhost.key"],
        cwd=certs)
    try:
        process.wait_for_log(r"spawned uWSGI worker 1")
        support.wait_for_port(port)
        body = b"z" * 300000

        def client():
            response = requests.post(f"https://localhost:{port}/env",
                                     data=body, timeout=10,
                                     verify=str(certs / "ca.crt"))
            return response.json()["body"] == body.decode()
        assert support.at_once(client, 4) == [True] * 4
    finally:
        process.stop()
