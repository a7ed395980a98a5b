"""The uwsgi module's descriptor, file and request-var functions, and
set_user_harakiri(): answers, bodies and log lines beside the real
uWSGI's on the same INI file."""

import json
import socket
import struct
import textwrap
import threading

import pytest

from tests.support import free_port, get_body, wait_for_port, write_ini

APP = textwrap.dedent('''\
    import json
    import os
    import time

    import uwsgi

    HERE = os.path.dirname(os.path.abspath(__file__))
    AT_IMPORT = uwsgi.ready()


    def attempt(call):
        try:
            return repr(call())
        except Exception as e:
            return f"{type(e).__name__}: {e}"


    def descriptors(port):
        found = {"ready": [repr(AT_IMPORT), repr(uwsgi.ready())]}
        fd = uwsgi.connect(f"127.0.0.1:{port}", 5)
        found["connected"] = fd > 2
        for name, call in [
                ("is_connected", lambda: uwsgi.is_connected(fd)),
                ("send", lambda: uwsgi.send(fd, b"hi")),
                ("recv", lambda: uwsgi.recv(fd, 4)),
                ("close", lambda: uwsgi.close(fd)),
                ("recv closed", lambda: uwsgi.recv(fd)),
                ("send closed", lambda: uwsgi.send(fd, b"x")),
                ("refused", lambda: uwsgi.connect("127.0.0.1:1")),
                ("no unix socket", lambda: uwsgi.connect(HERE + "/none")),
                ("offload", lambda: uwsgi.offload("x", 3)),
                ("extract", lambda: uwsgi.extract(HERE + "/data.txt")),
                ("extract empty", lambda: uwsgi.extract("/dev/null")),
                ("parsefile", lambda: uwsgi.parsefile(HERE + "/packet")),
                ("parsefile text", lambda: uwsgi.parsefile(
                    HERE + "/data.txt")),
                ("parsefile missing", lambda: uwsgi.parsefile(
                    HERE + "/none")),
                ("embedded", lambda: uwsgi.embedded_data("x"))]:
            found[name] = attempt(call)
        return found


    def application(environ, start_response):
        path = environ["PATH_INFO"]
        query = environ["QUERY_STRING"]
        if path == "/sendfile":
            start_response("200 OK", [("Content-Type", "text/plain")])
            pos, size = map(int, query.split(","))
            sent = uwsgi.sendfile(HERE + "/data.txt", 0, pos, size)
            return [b"|" + repr(sent).encode()]
        if path == "/missing":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [repr(uwsgi.sendfile(HERE + "/none")).encode()]
        if path == "/addvar":
            added = [uwsgi.add_var("FOO", "bar"), uwsgi.add_var(b"BAZ", b"q"),
                     attempt(lambda: uwsgi.add_var("BIG", "x" * 70000)),
                     environ.get("FOO")]
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [json.dumps(added).encode()]
        if path == "/stuck":
            uwsgi.set_user_harakiri(1)
            time.sleep(30)
        elif path == "/quick":
            uwsgi.set_user_harakiri(1)
        start_response("200 OK", [("Content-Type", "application/json")])
        if path == "/descriptors":
            return [json.dumps(descriptors(int(query))).encode()]
        return [b"ok"]
''')
DATA = b"hello world, this is a file\n"


@pytest.fixture(params=["ugu", "uwsgi"])
def server(request):
    return request.param


def start(start_server, tmp_path, server, *pairs):
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "data.txt").write_bytes(DATA)
    block = b"".join(struct.pack("<H", len(item)) + item
                     for item in (b"a", b"1", b"bb", b""))
    (tmp_path / "packet").write_bytes(
        struct.pack("<BHB", 17, len(block), 0) + block)
    port = free_port()
    ini = write_ini(tmp_path / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"), ("processes", "1"),
        ("wsgi-file", "app.py"), *pairs])
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path)
    wait_for_port(port)
    p.wait_for_log(r"spawned uWSGI worker 1")
    return p, port


def echo_once():
    """A listener that answers what it reads on one connection; its
    port."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve():
        with listener:
            conn, _ = listener.accept()
            with conn:
                conn.sendall(conn.recv(100) + b"!")

    threading.Thread(target=serve, daemon=True).start()
    return listener.getsockname()[1]


def test_descriptor_and_file_functions(start_server, tmp_path, server):
    p, port = start(start_server, tmp_path, server, ("master", "true"))
    found = json.loads(get_body(port, f"/descriptors?{echo_once()}"))
    assert found == {
        "ready": ["None", "True"], "connected": True,
        "is_connected": "True", "send": "True", "recv": "b'hi!'",
        "close": "None", "recv closed": "None", "send closed": "None",
        "refused": "-1", "no unix socket": "-1", "offload": "b''",
        "extract": repr(DATA), "extract empty": "None",
        "parsefile": "{b'a': b'1', b'bb': b''}", "parsefile text": "None",
        "parsefile missing": "None",
        "embedded": "ValueError: unable to find symbol x"}
    p.wait_for_log(r"write\(\): Bad file descriptor "
                   r"\[plugins/python/uwsgi_pymodule\.c line 706\]")
    # Two lines (uWSGI's come in either order).
    p.wait_for_log(r'open\("[^"]*/none"\): No such file or directory '
                   r'\[plugins/python/uwsgi_pymodule\.c line 2451\]')
    p.wait_for_log(r'read\(\): No such file or directory '
                   r'\[plugins/python/uwsgi_pymodule\.c line 2471\]')


@pytest.mark.parametrize("query, body", [
    ("0,0", DATA), ("6,5", DATA[6:11]), ("100,0", b"")])
def test_sendfile(start_server, tmp_path, server, query, body):
    """The file's bytes go before the app's body, the head first."""
    p, port = start(start_server, tmp_path, server)
    assert get_body(port, f"/sendfile?{query}") == body + b"|True"


def test_sendfile_of_a_missing_file(start_server, tmp_path, server):
    p, port = start(start_server, tmp_path, server)
    assert get_body(port, "/missing") == b"None"
    p.wait_for_log(r'open\("[^"]*/none"\): No such file or directory '
                   r'\[plugins/python/uwsgi_pymodule\.c line 800\]')


def test_add_var_reaches_the_log_line(start_server, tmp_path, server):
    p, port = start(start_server, tmp_path, server, (
        "log-format", "%(uri) foo=%(var.FOO) baz=%(var.BAZ) vars=%(vars)"))
    assert json.loads(get_body(port, "/addvar")) == [
        True, True, "ValueError: unable to add request var, check your "
        "buffer size", None]
    p.wait_for_log(r"not enough buffer space to add BIG variable, consider "
                   r"increasing it with the --buffer-size option")
    p.wait_for_log(r"/addvar foo=bar baz=q vars=(\d+)")


def test_user_harakiri(start_server, tmp_path, server):
    """The master kills a worker past the deadline its app set; a request
    that ends first clears it."""
    p, port = start(start_server, tmp_path, server, ("master", "true"))
    assert get_body(port, "/quick") == b"ok"
    with pytest.raises(Exception):
        get_body(port, "/stuck")
    p.wait_for_log(r"HARAKIRI \[core 0\] 127\.0\.0\.1 - GET /stuck since")
    p.wait_for_log(r"HARAKIRI \(user\) triggered by worker 1 core 0 !!!")
    p.wait_for_log(r"Respawned uWSGI worker 1")
    assert get_body(port, "/") == b"ok"
    assert p.output().count("HARAKIRI ON WORKER") == 1


def test_user_harakiri_needs_a_master(start_server, tmp_path, server):
    p, port = start(start_server, tmp_path, server)
    assert get_body(port, "/quick") == b"ok"
    p.wait_for_log(r"!!! unable to set user harakiri without the master "
                   r"process !!!")
