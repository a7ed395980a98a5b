"""uWSGI's fastrouter (`fastrouter = ADDR`): uwsgi requests passed to the
node of their key.

The key's choice and the mappers are checked alone; then real
fastrouters (ugu's and the real uWSGI's) pass requests to real workers,
with their log lines compared, and nginx's uwsgi_pass sits in front of
ugu's, the classic set-up.
"""

import json
import re
import socket

import pytest
import requests

from tests import support
from tests.test_interop import NGINX_CONF, UWSGI_PARAMS, nginx_binary
from tests.test_subscriptions import free_udp_port, send
from ugu.router.fastrouter import Settings, mapped_address, request_key
from ugu.protocol import encode_vars
from ugu.subscription import SUBSCRIBE, Announce

BASE_VARS = [("REQUEST_METHOD", "GET"), ("PATH_INFO", "/env"),
             ("REQUEST_URI", "/env"), ("QUERY_STRING", ""),
             ("SERVER_PROTOCOL", "HTTP/1.1"), ("SERVER_PORT", "80"),
             ("REMOTE_ADDR", "127.0.0.1"), ("REMOTE_PORT", "5000")]


def _block(pairs):
    return encode_vars([(k.encode(), v.encode()) for k, v in pairs])


# The key and the mappers.

@pytest.mark.parametrize("pairs, key", [
    ([("SERVER_NAME", "sn"), ("HTTP_HOST", "hh")], b"hh"),
    ([("HTTP_HOST", "hh"), ("SERVER_NAME", "sn")], b"hh"),
    ([("SERVER_NAME", "sn")], b"sn"),
    ([("UWSGI_FASTROUTER_KEY", "k"), ("HTTP_HOST", "hh")], b"k"),
    ([("HTTP_HOST", "x" * 256), ("SERVER_NAME", "sn")], b"sn"),
    ([("REQUEST_METHOD", "GET")], None),
    # Var by var, as uWSGI's reads them (each case tried on it): the
    # last HTTP_HOST, an empty one over SERVER_NAME, an empty
    # UWSGI_FASTROUTER_KEY, a SERVER_NAME after an empty one.
    ([("HTTP_HOST", "h1"), ("HTTP_HOST", "h2")], b"h2"),
    ([("SERVER_NAME", "sn"), ("HTTP_HOST", "")], None),
    ([("HTTP_HOST", ""), ("SERVER_NAME", "sn")], b"sn"),
    ([("HTTP_HOST", "hh"), ("UWSGI_FASTROUTER_KEY", "")], None),
    ([("UWSGI_FASTROUTER_KEY", "k"), ("UWSGI_FASTROUTER_KEY", "")], None),
    ([("SERVER_NAME", ""), ("SERVER_NAME", "sn")], b"sn"),
    ([("SERVER_NAME", "s1"), ("SERVER_NAME", "s2")], b"s1"),
    ([("HTTP_HOST", "hh"), ("HTTP_HOST", "x" * 256)], b"hh"),
])
def test_the_key_is_uwsgis(pairs, key):
    assert request_key(_block(pairs))[0] == key


def test_content_length_is_read():
    assert request_key(_block([("SERVER_NAME", "a"),
                               ("CONTENT_LENGTH", "12")])) == (b"a", 12)


def test_pattern_and_base():
    def settings(pattern=None, base=None):
        return Settings(60, 4096, 30, False, 0, (), pattern, base, (),
                        False, None, 17, False, None)
    assert mapped_address(settings(pattern="/run/%s.sock"), b"a.org") == \
        "/run/a.org.sock"
    assert mapped_address(settings(base="/run/"), b"a.org") == "/run/a.org"
    # A key never leads out of the folder: no node, as for no key.
    assert mapped_address(settings(base="/run/"), b"../x") is None
    assert mapped_address(settings(pattern="/run/%s.sock"), b"a/b") is None
    assert mapped_address(settings(base="/run/"), b"a\0b") is None


# Options refused with their reason.

@pytest.mark.parametrize("args, words", [
    ([], "has no node to pass requests to"),
    (["--fastrouter-to", "127.0.0.1:1", "--fastrouter-cheap"],
     "takes a fastrouter-subscription-server"),
    (["--fastrouter-to", "127.0.0.1:1", "--fastrouter-use-base", "/x/"],
     "keep one of them"),
])
def test_refused(procs, args, words):
    port = support.free_port()
    proc = procs.ugu("--master", "--fastrouter", f"127.0.0.1:{port}", *args)
    assert proc.wait() != 0
    assert words in proc.output()


def test_fastrouter_options_without_fastrouter_are_refused(procs):
    proc = procs.ugu("--master", "--fastrouter-to", "127.0.0.1:1",
                     "--socket", f"127.0.0.1:{support.free_port()}")
    assert proc.wait() != 0
    assert "add `fastrouter = ADDR`" in proc.output()


# End to end.

@pytest.fixture
def app(tmp_path):
    path = tmp_path / "app.py"
    path.write_text(support.ECHO_APP.read_text())
    return path


def _env(port, pairs, body=b""):
    """The app's environ, through a fastrouter; None if it closed the
    connection without an answer."""
    if body:
        pairs = [*pairs, ("CONTENT_LENGTH", str(len(body)))]
    block = _block(BASE_VARS + pairs)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(bytes([0]) + len(block).to_bytes(2, "little")
                  + bytes([0]) + block + body)
        try:
            raw = support.read_to_eof(s)
        except ConnectionResetError:
            return None
    if not raw:
        return None
    return json.loads(raw.partition(b"\r\n\r\n")[2])


def _fastrouter(start_server, server, app, *extra, processes=1):
    front, back = support.free_port(), support.free_port()
    proc = start_server(server, [
        "--master", "--fastrouter", f"127.0.0.1:{front}",
        "--fastrouter-to", f"127.0.0.1:{back}",
        "--fastrouter-processes", str(processes),
        "--socket", f"127.0.0.1:{back}", "--wsgi-file", str(app), *extra])
    proc.wait_for_log(r"spawned uWSGI fastrouter 1 \(pid")
    proc.wait_for_log(r"spawned uWSGI worker 1 \(pid")
    support.wait_for_port(front)
    return proc, front, back


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_requests_reach_the_node_with_their_vars(start_server, app,
                                                 server):
    proc, front, _ = _fastrouter(start_server, server, app)
    env = _env(front, [("SERVER_NAME", "sn.example"),
                       ("HTTP_HOST", "hh.example")], b"hello")
    assert (env["SERVER_NAME"], env["HTTP_HOST"], env["body"]) == (
        "sn.example", "hh.example", "hello")
    # No key: closed without a byte, as uWSGI's.
    assert _env(front, []) is None


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_dead_node_is_logged_and_skipped(start_server, app, server):
    dead = support.free_port()
    proc, front, _ = _fastrouter(start_server, server, app,
                                 "--fastrouter-to", f"127.0.0.1:{dead}")
    for _ in range(3):
        assert _env(front, [("HTTP_HOST", "a.example")])["HTTP_HOST"] == \
            "a.example"
    proc.wait_for_log(r"marking")
    lines = [line for line in proc.output().splitlines()
             if line.startswith("[uwsgi-fastrouter]")]
    assert lines == [
        f'[uwsgi-fastrouter] unable to connect() to node '
        f'"127.0.0.1:{dead}" (0 retries): Connection refused',
        f"[uwsgi-fastrouter] a.example => marking 127.0.0.1:{dead} as "
        f"failed"]


def test_quiet_keeps_only_the_marking_line(start_server, app):
    dead = support.free_port()
    proc, front, _ = _fastrouter(start_server, "ugu", app,
                                 "--fastrouter-to", f"127.0.0.1:{dead}",
                                 "--fastrouter-quiet")
    for _ in range(2):
        assert _env(front, [("HTTP_HOST", "q")]) is not None
    proc.wait_for_log("marking")
    assert "unable to connect()" not in proc.output()


def test_processes_stats_and_post_buffering(start_server, app):
    stats = support.free_port()
    proc, front, _ = _fastrouter(start_server, "ugu", app,
                                 "--fastrouter-stats", f"127.0.0.1:{stats}",
                                 "--fastrouter-post-buffering", "4",
                                 processes=2)
    proc.wait_for_log(r"spawned uWSGI fastrouter 2 \(pid")
    proc.wait_for_log(rf"\*\*\* fastrouter stats server enabled on "
                      rf"127.0.0.1:{stats} fd: \d+ \*\*\*")
    support.wait_for_port(stats)
    body = b"x" * 100000
    assert _env(front, [("HTTP_HOST", "p")], body)["body"] == \
        body.decode()
    with socket.create_connection(("127.0.0.1", stats), timeout=10) as s:
        doc = json.loads(support.read_to_eof(s))
    assert doc["fastrouter"] == [f"127.0.0.1:{front}"]
    assert doc["cheap"] == 0 and "active_sessions" in doc
    assert proc.stop() == 0
    assert re.search(r'gateway "uWSGI fastrouter 2" has been buried',
                     proc.output())


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_subscription_server_and_fallback_key(start_server, app, server):
    front, udp = support.free_port(), free_udp_port()
    proc = start_server(server, [
        "--master", "--fastrouter", f"127.0.0.1:{front}",
        "--fastrouter-subscription-server", f"127.0.0.1:{udp}",
        "--fastrouter-subscription-fallback-key", "default.example"])
    proc.wait_for_log("uWSGI fastrouter subscription server bound on "
                      f"127.0.0.1:{udp} fd")
    support.wait_for_port(front)
    back = support.free_port()
    node = start_server(server, [
        "--master", "--socket", f"127.0.0.1:{back}", "--wsgi-file",
        str(app), "--subscribe-to", f"127.0.0.1:{udp}:default.example"])
    proc.wait_for_log("default.example => new node: ")
    env = _env(front, [("HTTP_HOST", "other.example")])
    assert env["HTTP_HOST"] == "other.example"
    send(udp, Announce(SUBSCRIBE, b"dead.example",
                       b"127.0.0.1:%d" % support.free_port()))
    proc.wait_for_log("dead.example => new node: ")
    # Its only node fails and leaves: the fallback key's takes it.
    assert _env(front, [("HTTP_HOST", "dead.example")])["HTTP_HOST"] == \
        "dead.example"
    proc.wait_for_log(r"\[uwsgi-fastrouter\] dead.example => marking ")
    assert node.stop() == 0
    proc.wait_for_log(r"\[uWSGI fastrouter pid \d+\] default.example => "
                      rf"marking 127.0.0.1:{back} as failed")


def test_cheap_accepts_once_a_node_subscribes(start_server, app):
    front, udp = support.free_port(), free_udp_port()
    proc = start_server("ugu", [
        "--master", "--fastrouter", f"127.0.0.1:{front}",
        "--fastrouter-subscription-server", f"127.0.0.1:{udp}",
        "--fastrouter-cheap"])
    proc.wait_for_log("starting uWSGI fastrouter in cheap mode")
    proc.wait_for_log(r"spawned uWSGI fastrouter 1 \(pid")
    back = support.free_port()
    start_server("ugu", [
        "--master", "--socket", f"127.0.0.1:{back}", "--wsgi-file",
        str(app), "--subscribe-to", f"127.0.0.1:{udp}:c.example"])
    proc.wait_for_log(r"\[uWSGI fastrouter pid \d+\] leaving cheap mode")
    assert _env(front, [("HTTP_HOST", "c.example")])["HTTP_HOST"] == \
        "c.example"


def test_use_pattern(start_server, app):
    front, back = support.free_port(), support.free_port()
    proc = start_server("ugu", [
        "--master", "--fastrouter", f"127.0.0.1:{front}",
        "--fastrouter-use-pattern", "127.0.0.1:%s",
        "--socket", f"127.0.0.1:{back}", "--wsgi-file", str(app)])
    proc.wait_for_log(r"spawned uWSGI worker 1 \(pid")
    support.wait_for_port(front)
    assert _env(front, [("UWSGI_FASTROUTER_KEY", str(back))]) is not None


def test_use_base_keeps_keys_in_its_folder(start_server, app, tmp_path):
    """A key naming a socket of the base folder is served; one that climbs
    out of it (`../`) reaches nothing, though a socket is there."""
    front = support.free_port()
    (tmp_path / "sites").mkdir()
    inside, outside = tmp_path / "sites" / "a.org", tmp_path / "admin"
    proc = start_server("ugu", [
        "--master", "--fastrouter", f"127.0.0.1:{front}",
        "--fastrouter-use-base", f"{tmp_path}/sites/",
        "--socket", str(inside), "--socket", str(outside),
        "--wsgi-file", str(app)])
    proc.wait_for_log(r"spawned uWSGI worker 1 \(pid")
    support.wait_for_port(front)
    assert _env(front, [("UWSGI_FASTROUTER_KEY", "a.org")]) is not None
    assert _env(front, [("UWSGI_FASTROUTER_KEY", "../admin")]) is None


# nginx before the fastrouter.

NGINX_SERVER = """
    server {{
        listen 127.0.0.1:{port};
        server_name _;
        location / {{
            include uwsgi_params;
            uwsgi_param HTTP_HOST $host;
            uwsgi_pass 127.0.0.1:{fastrouter};
        }}
    }}"""


def test_nginx_uwsgi_pass_to_the_fastrouter(start_server, app, procs,
                                            tmp_path):
    binary = nginx_binary()
    if binary is None:
        pytest.skip("nginx is not installed")
    proc, front, _ = _fastrouter(start_server, "ugu", app)
    (tmp_path / "uwsgi_params").write_text("".join(
        f"uwsgi_param {name} {value};\n" for name, value in UWSGI_PARAMS))
    port = support.free_port()
    (tmp_path / "nginx.conf").write_text(NGINX_CONF.format(
        tmp=tmp_path, servers=NGINX_SERVER.format(port=port,
                                                  fastrouter=front)))
    procs.start([binary, "-p", str(tmp_path), "-e",
                 str(tmp_path / "error.log"), "-c", "nginx.conf", "-g",
                 f"daemon off; pid {tmp_path}/nginx.pid;"])
    support.wait_for_port(port)
    r = requests.post(f"http://127.0.0.1:{port}/env?q=1", data=b"abc",
                      headers={"Host": "n.example"}, timeout=10)
    env = r.json()
    assert (r.status_code, env["HTTP_HOST"], env["QUERY_STRING"],
            env["body"]) == (200, "n.example", "q=1", "abc")


def test_a_client_that_half_closes_still_gets_the_answer(start_server,
                                                         app):
    """README difference 33: uWSGI's fastrouter drops the answer."""
    proc, front, _ = _fastrouter(start_server, "ugu", app)
    block = _block(BASE_VARS + [("HTTP_HOST", "h")])
    with socket.create_connection(("127.0.0.1", front), timeout=10) as s:
        s.sendall(bytes([0]) + len(block).to_bytes(2, "little")
                  + bytes([0]) + block)
        s.shutdown(socket.SHUT_WR)
        raw = support.read_to_eof(s)
    assert raw.startswith(b"HTTP/1.1 200 OK")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_subscription_dotsplit_and_algo(start_server, app, server):
    """subscription-dotsplit and subscription-algo are the corerouters'
    too: a.b.example reaches .example's node, chosen by lrc."""
    front, udp = support.free_port(), free_udp_port()
    proc = start_server(server, [
        "--master", "--fastrouter", f"127.0.0.1:{front}",
        "--fastrouter-subscription-server", f"127.0.0.1:{udp}",
        "--subscription-dotsplit", "--subscription-algo", "lrc"])
    proc.wait_for_log("uWSGI fastrouter subscription server bound on")
    support.wait_for_port(front)
    back = support.free_port()
    start_server("ugu", [
        "--master", "--socket", f"127.0.0.1:{back}", "--wsgi-file",
        str(app), "--subscribe-to", f"127.0.0.1:{udp}:.example"])
    proc.wait_for_log(".example => new node: ")
    env = _env(front, [("HTTP_HOST", "a.b.example")])
    assert env["HTTP_HOST"] == "a.b.example"
    assert _env(front, [("HTTP_HOST", "a.b.other")]) is None
