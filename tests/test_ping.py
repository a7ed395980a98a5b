"""`ping`, `ping-timeout` and `nagios`: ugu as uWSGI's ping client and
Nagios check, against ugu's and the real uWSGI's uwsgi sockets, and
against a fake instance for the answers ugu's own never give."""

import socket
import subprocess
import threading

import pytest

from tests.support import UGU, free_port, uwsgi_request, write_ini

APP = """\
import uwsgi
def application(environ, start_response):
    if environ['PATH_INFO'] == '/warn':
        uwsgi.set_warning_message('disk full')
    start_response('200 OK', [])
    return [b'ok']
"""


def run(argv, *args):
    return subprocess.run([*argv, *args], capture_output=True, text=True,
                          timeout=30)


def start(start_server, server, tmp_path, port):
    (tmp_path / "app.py").write_text(APP)
    ini = write_ini(tmp_path / "ping.ini", uwsgi=[
        ("master", "true"), ("wsgi-file", "app.py"),
        ("socket", f"127.0.0.1:{port}")])
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path)
    p.wait_for_log("spawned uWSGI worker 1")
    return p


def clients(uwsgi_binary):
    return (UGU, [uwsgi_binary])


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_ping_and_nagios_of_an_instance_that_is_up(
        start_server, tmp_path, uwsgi_binary, server):
    """Either client, against either server: exit 0, the PING line on
    stderr (ping) or Nagios's OK line on stdout (nagios); the server
    logs PING and no request."""
    port = free_port()
    p = start(start_server, server, tmp_path, port)
    for argv in clients(uwsgi_binary):
        done = run(argv, "--ping", f"127.0.0.1:{port}")
        assert (done.returncode, done.stdout) == (0, "")
        assert done.stderr.endswith(
            f"PING uwsgi host 127.0.0.1:{port} (timeout: 3)\n")
        done = run(argv, "--ping", f"127.0.0.1:{port}", "--ping-timeout", "5")
        assert done.stderr.endswith("(timeout: 5)\n")
        assert done.returncode == 0
        done = run(argv, "--nagios", "--socket", f"127.0.0.1:{port}")
        assert (done.returncode, done.stdout) == (
            0, "UWSGI OK: armed and ready\n")
    p.wait_for_log(r"(?m)^PING$", count=6)
    assert "GET" not in p.output()


def test_a_warning_message_is_reported_by_both_clients(
        start_server, tmp_path, uwsgi_binary):
    """uWSGI's set_warning_message() (ugu lacks it): ping logs the
    message and exits 2, nagios prints a WARNING and exits 1."""
    port = free_port()
    start(start_server, "uwsgi", tmp_path, port)
    uwsgi_request(port, "/warn")
    for argv in clients(uwsgi_binary):
        done = run(argv, "--ping", f"127.0.0.1:{port}")
        assert done.returncode == 2
        assert done.stderr.endswith(
            f"[WARNING] node 127.0.0.1:{port} message: disk full\n")
        done = run(argv, "--nagios", "--socket", f"127.0.0.1:{port}")
        assert (done.returncode, done.stdout) == (
            1, "UWSGI WARNING: disk full\n")


class Fake:
    """A listening socket that answers each connection with `reply`
    (None: reads and then holds it open, answering nothing)."""

    def __init__(self, reply):
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.port = self.sock.getsockname()[1]
        self.reply, self.held = reply, []
        threading.Thread(target=self._serve, daemon=True).start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            conn.recv(4)
            if self.reply is None:
                self.held.append(conn)
            else:
                conn.sendall(self.reply)
                conn.close()

    def close(self):
        self.sock.close()
        for conn in self.held:
            conn.close()


@pytest.mark.parametrize("client", ["ugu", "uwsgi"])
def test_failures_give_uwsgis_statuses(tmp_path, client, request):
    argv = UGU if client == "ugu" else [request.getfixturevalue(
        "uwsgi_binary")]
    closed = free_port()
    done = run(argv, "--ping", f"127.0.0.1:{closed}")
    assert (done.returncode, done.stdout) == (1, "")
    done = run(argv, "--nagios", "--socket", f"127.0.0.1:{closed}")
    assert done.returncode == 2
    assert done.stdout.startswith(
        "UWSGI CRITICAL: could not connect() to workers ")
    done = run(argv, "--nagios", "--socket", str(tmp_path / "no.sock"))
    assert (done.returncode, done.stdout) == (
        2, "UWSGI CRITICAL: could not connect() to workers No such file or "
        "directory\n")
    done = run(argv, "--nagios")
    assert (done.returncode, done.stdout) == (
        3, "UWSGI UNKNOWN: you have specified an invalid socket\n")
    silent = Fake(None)
    try:
        done = run(argv, "--ping", f"127.0.0.1:{silent.port}",
                   "--ping-timeout", "1")
        assert done.returncode == 1
        done = run(argv, "--nagios", "--socket", f"127.0.0.1:{silent.port}",
                   "--socket-timeout", "1")
        assert (done.returncode, done.stdout) == (
            2, "UWSGI CRITICAL: error reading response\n")
    finally:
        silent.close()
    closing = Fake(b"")
    try:
        done = run(argv, "--ping", f"127.0.0.1:{closing.port}")
        assert done.returncode == 1
    finally:
        closing.close()
