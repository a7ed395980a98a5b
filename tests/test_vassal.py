"""The worker vassal end to end: a real `ugu --ini` speaking the uwsgi
protocol on a free port, driven by a raw-socket client."""

import gzip
import json
import os
import re
import signal
import socket
import struct
import textwrap
import time

import pytest
import requests

from tests import support
from tests.support import read_to_eof, split_response, uwsgi_request

APP = textwrap.dedent('''
    import json, os, time

    def application(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/json":
            start_response("200 OK", [("Content-Type", "application/json")])
            return [b'{"ok": true}']
        if path == "/env":
            start_response("200 OK", [("Content-Type", "text/plain")])
            safe = {k: v if isinstance(v, str) else repr(v)
                    for k, v in environ.items()}
            return [json.dumps(safe).encode()]
        if path == "/echo":
            body = environ["wsgi.input"].read()
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [body]
        if path == "/lines":
            stream = environ["wsgi.input"]
            lines = [stream.readline()]
            while lines[-1]:
                lines.append(stream.readline())
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"%d:" % (len(lines) - 1), b"".join(lines)]
        if path == "/boom":
            raise RuntimeError("boom")
        if path == "/pid":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [str(os.getpid()).encode()]
        if path == "/slow":
            open("slow-started", "w").close()
            time.sleep(0.5)
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [b"late"]
        if path == "/big":
            # 16 MB in pieces, more than the socket buffers hold.
            start_response("200 OK", [("Content-Type", "text/plain")])
            return (b"x" * 65536 for _ in range(256))
        start_response("200 OK", [("Content-Type", "text/html")])
        return [b"<html>hello</html>"]
''')


@pytest.fixture
def site(tmp_path):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "app.py").write_text(APP)
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "base.css").write_text("h1 { color: red; }\n")
    with gzip.open(tmp_path / "static" / "base.css.gz", "wb") as f:
        f.write(b"h1 { color: red; }\n")
    (tmp_path / "secret.txt").write_text("secret")
    (tmp_path / "static-secret").mkdir()
    (tmp_path / "static-secret" / "x.txt").write_text("sibling")
    return tmp_path


def worker_ini(site, port, **extra):
    pairs = [("strict", "true"), ("master", "true"),
             ("socket", f"127.0.0.1:{port}"), ("processes", "2"),
             ("threads", "2"), ("pythonpath", "code/"), ("module", "app"),
             ("offload-threads", "1"), ("check-static", "static/"),
             ("static-gzip-all", "true"),
             ("collect-header", "Content-Type RESPONSE_CONTENT_TYPE"),
             ("response-route-if", "equal:${RESPONSE_CONTENT_TYPE};"
              "application/json addheader:uWSGI-Encoding: gzip"),
             ("response-route-if", "startswith:${RESPONSE_CONTENT_TYPE};"
              "text/html addheader:uWSGI-Encoding: gzip")]
    pairs += list(extra.items())
    return support.write_ini(site / "uwsgi.ini", uwsgi=pairs)


@pytest.fixture
def worker(site, procs):
    port = support.free_port()
    worker_ini(site, port)
    p = procs.ugu("--ini", "uwsgi.ini", cwd=site)
    p.wait_for_log(r"spawned uWSGI worker 2")
    support.wait_for_port(port)
    p.port = port
    return p


def test_page_with_routing_header(worker):
    status, headers, body = split_response(uwsgi_request(worker.port))
    assert status == "HTTP/1.1 200 OK"
    assert headers["content-type"] == "text/html"
    assert headers["uwsgi-encoding"] == "gzip"
    assert body == b"<html>hello</html>"


def test_json_marked_text_not(worker):
    _, headers, _ = split_response(uwsgi_request(worker.port, "/json"))
    assert headers["uwsgi-encoding"] == "gzip"
    _, headers, _ = split_response(uwsgi_request(worker.port, "/env"))
    assert "uwsgi-encoding" not in headers


def test_status_line_follows_request_protocol(worker):
    raw = uwsgi_request(worker.port, protocol="HTTP/1.0")
    assert raw.startswith(b"HTTP/1.0 200 OK\r\n")


def test_static_file_offloaded(worker, site):
    status, headers, body = split_response(
        uwsgi_request(worker.port, "/base.css"))
    assert status == "HTTP/1.1 200 OK"
    assert headers["content-type"] == "text/css"
    assert headers["content-length"] == str(len(body))
    assert "last-modified" in headers
    assert body == b"h1 { color: red; }\n"
    line = worker.wait_for_log(r"GET /base.css => .*")
    assert "via offload()" in line.group(0)
    assert re.search(r"\[pid: \d+\|app: -1\|req: -1/\d+\] ",
                     worker.output())


def test_an_empty_static_file_is_sent_without_a_via(worker, site):
    (site / "static" / "empty.txt").write_bytes(b"")
    status, headers, body = split_response(
        uwsgi_request(worker.port, "/empty.txt"))
    assert (status.endswith("200 OK"), body) == (True, b"")
    assert headers["content-length"] == "0"
    worker.wait_for_log(r"GET /empty\.txt => generated 0 bytes in \d+ "
                        r"msecs \(HTTP/1\.1 200\)")


def test_static_gzip_variant(worker):
    raw = uwsgi_request(worker.port, "/base.css",
                        headers=[("Accept-Encoding", "gzip, br")])
    _, headers, body = split_response(raw)
    assert headers["content-encoding"] == "gzip"
    assert headers["content-type"] == "text/css"
    assert gzip.decompress(body) == b"h1 { color: red; }\n"


def test_missing_static_falls_to_app(worker):
    _, headers, body = split_response(uwsgi_request(worker.port, "/no.css"))
    assert body == b"<html>hello</html>"


@pytest.mark.parametrize("path", ["/../secret.txt", "/%2e%2e/secret.txt",
                                  "/../static-secret/x.txt",
                                  "/base.css\x00.txt"])
def test_static_never_escapes(worker, path):
    _, _, body = split_response(uwsgi_request(worker.port, path))
    assert body == b"<html>hello</html>"


def test_not_modified_keeps_validators(worker):
    _, headers, _ = split_response(uwsgi_request(worker.port, "/base.css"))
    raw = uwsgi_request(worker.port, "/base.css", headers=[
        ("If-Modified-Since", headers["last-modified"])])
    status, again, body = split_response(raw)
    assert status == "HTTP/1.1 304 Not Modified"
    assert again["last-modified"] == headers["last-modified"]
    assert body == b""


def test_a_date_with_a_digit_python_alone_reads_is_not_placed(worker):
    """A superscript two is no digit of a date: the file is sent (the
    request died without an answer)."""
    raw = uwsgi_request(worker.port, "/base.css", headers=[
        ("If-Modified-Since", "Sat, \xb25 Dec 2026 10:00:00 GMT")])
    assert split_response(raw)[0] == "HTTP/1.1 200 OK"


def test_environ(worker):
    raw = uwsgi_request(worker.port, "/env?a=1", headers=[("X-Dup", "1")])
    env = json.loads(split_response(raw)[2])
    assert env["QUERY_STRING"] == "a=1"
    assert env["HTTP_X_DUP"] == "1"
    assert env["wsgi.multithread"] == "True"
    assert env["wsgi.multiprocess"] == "True"
    assert env["wsgi.url_scheme"] == "http"
    assert env["uwsgi.version"].startswith("b'2.0")


def test_post_body(worker):
    body = os.urandom(300_000)
    raw = uwsgi_request(worker.port, "/echo", method="POST", body=body)
    assert split_response(raw)[2] == body


@pytest.mark.parametrize("size", [100, 200_000])
def test_body_lines_across_the_packet_and_later_reads(worker, size):
    # The first recv brings the packet and the body's start; readline
    # must join what came with it and what the socket brings later.
    line = b"%s\n" % (b"x" * 99)
    body = line * (size // len(line)) + b"no newline at the end"
    raw = uwsgi_request(worker.port, "/lines", method="POST", body=body)
    lines = body.count(b"\n") + 1
    assert split_response(raw)[2] == b"%d:" % lines + body


def test_app_exception_gives_500_and_worker_survives(worker):
    status, _, _ = split_response(uwsgi_request(worker.port, "/boom"))
    assert status == "HTTP/1.1 500 Internal Server Error"
    worker.wait_for_log("RuntimeError: boom")
    # The app's frames, as uWSGI shows them; none of ugu's.
    trace = worker.output().rpartition("Traceback")[2]
    assert 'app.py", line ' in trace and "ugu/vassal" not in trace
    assert split_response(uwsgi_request(worker.port))[0].endswith("200 OK")


def test_request_log_line(worker):
    uwsgi_request(worker.port)
    line = worker.wait_for_log(
        r"\[pid: \d+\|app: 0\|req: \d+/\d+\] 127\.0\.0\.1 \(\) "
        r"\{\d+ vars in \d+ bytes\} \[\w{3} \w{3} [ \d]\d [\d:]{8} \d{4}\] "
        r"GET / => generated 18 bytes in \d+ msecs \(HTTP/1\.1 200\) "
        r"2 headers in 66 bytes \(1 switches on core \d\)")
    assert line


def refused(port, **kw):
    """True when the worker drops the request without a byte (a reset or
    a plain close)."""
    try:
        return uwsgi_request(port, **kw) == b""
    except ConnectionResetError:
        return True


def test_oversized_block_is_refused_and_next_served(worker):
    assert refused(worker.port, extra_vars=[("HTTP_X_BIG", "x" * 5000)])
    worker.wait_for_log(r"invalid request block size: \d+ \(max 4096\)")
    assert split_response(uwsgi_request(worker.port))[0].endswith("200 OK")


def test_unknown_modifier_closes(worker):
    assert refused(worker.port, modifier1=5)
    worker.wait_for_log(r"-- unavailable modifier requested: 5 --")


EMPTY_LINE = (r"Empty python request\. skip\.\n\[pid: \d+\|app: -1\|req: "
              r"-1/\d+\]  \(\) \{0 vars in 0 bytes\} \[[^]]+\]   => "
              r"generated 0 bytes in 0 msecs \( 0\) 0 headers in 0 bytes "
              r"\(0 switches on core 0\)")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_an_empty_vars_block_is_logged_and_closed(site, start_server,
                                                  server):
    """uWSGI's Python refuses it: no app sees an environ without vars."""
    port = support.free_port()
    argv = ["--socket", f"127.0.0.1:{port}", "--master", "--pythonpath",
            "code/", "--module", "app"]
    p = start_server(server, argv, cwd=site)
    support.wait_for_port(port)
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"\0\0\0\0")
        assert s.recv(100) == b""
    p.wait_for_log(EMPTY_LINE)
    assert split_response(uwsgi_request(port))[0].endswith("200 OK")


BAD_PACKETS = {
    "modifier 5": struct.pack("<BHB", 5, 4, 0) + b"\x01\0A\0\0",
    "key overflows": struct.pack("<BHBH", 0, 10, 0, 200) + b"PATH_INF",
    "value overflows": struct.pack("<BHBH", 0, 8, 0, 1) + b"A\xf4\x01xxx",
    "zero-length key": struct.pack("<BHBHH", 0, 7, 0, 0, 3) + b"abc",
}


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_bad_packets_are_closed_not_reset(site, start_server, server):
    """As uWSGI: only a block larger than buffer-size is reset."""
    port = support.free_port()
    argv = ["--socket", f"127.0.0.1:{port}", "--master", "--pythonpath",
            "code/", "--module", "app"]
    start_server(server, argv, cwd=site)
    support.wait_for_port(port)
    for name, packet in BAD_PACKETS.items():
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(packet)
            assert s.recv(100) == b"", name
    with pytest.raises(ConnectionResetError):
        uwsgi_request(port, extra_vars=[("HTTP_X_BIG", "x" * 5000)])


def test_stalled_packets_and_bodies_close_without_stray_lines(site, procs):
    """socket-timeout: a half packet closes unsaid, as in uWSGI; a body
    that stalls fails the app's read (its traceback, its 500) and the
    connection closes, with no second error after it."""
    from ugu import protocol
    port = support.free_port()
    p = procs.ugu("--socket", f"127.0.0.1:{port}", "--master",
                  "--socket-timeout", "1", "--pythonpath", "code/",
                  "--module", "app", cwd=site)
    support.wait_for_port(port)
    packet = protocol.encode([(b"REQUEST_METHOD", b"POST"),
                              (b"REQUEST_URI", b"/echo"),
                              (b"PATH_INFO", b"/echo"),
                              (b"SERVER_PROTOCOL", b"HTTP/1.1"),
                              (b"CONTENT_LENGTH", b"100")])
    for sent in (b"\0\x10", packet + b"abc"):
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.sendall(sent)
            read_to_eof(s)
    p.wait_for_log(r"\[uwsgi-body-read\] Timeout reading 97 bytes\. "
                   r"Content-Length: 100 consumed: 3 left: 97\n")
    p.wait_for_log(r"\nOSError: timeout during read\(0\) on wsgi\.input\n")
    p.wait_for_log(r"POST /echo => generated \d+ bytes .*\(HTTP/1\.1 500\)")
    assert split_response(uwsgi_request(port))[0].endswith("200 OK")
    assert "error on request" not in p.output()


def test_worker_killed_is_respawned(worker):
    pid = int(split_response(uwsgi_request(worker.port, "/pid"))[2])
    os.kill(pid, signal.SIGKILL)
    worker.wait_for_log(rf"DAMN ! worker \d \(pid: {pid}\) died, killed by "
                        r"signal 9 :\( trying respawn \.\.\.")
    worker.wait_for_log(r"Respawned uWSGI worker \d \(new pid: \d+\)")
    assert split_response(uwsgi_request(worker.port))[0].endswith("200 OK")


def test_sigint_shuts_down_cleanly(worker):
    workers = support.children_of(worker.pid)
    worker.send_signal(signal.SIGINT)
    assert worker.wait() == 0
    assert "goodbye to uWSGI." in worker.output()
    support.wait_until(lambda: not support.group_members(worker.pgid), 5,
                       what="workers to exit")
    assert workers


def test_graceful_reload_keeps_serving(worker):
    before = support.children_of(worker.pid)
    worker.send_signal(signal.SIGHUP)
    worker.wait_for_log(r"gracefully \(RE\)spawned uWSGI master process")
    worker.wait_for_log(r"spawned uWSGI worker 2", count=2)
    assert split_response(uwsgi_request(worker.port))[0].endswith("200 OK")
    assert not set(before) & set(support.children_of(worker.pid))


def test_master_killed_takes_workers_along(worker):
    workers = support.children_of(worker.pid)
    assert len(workers) == 2
    worker.send_signal(signal.SIGKILL)
    support.wait_until(lambda: not set(workers) & set(
        support.group_members(worker.pgid)), 2,
        what="workers to die with their master")


def test_cheaper_starts_at_the_floor(site, procs):
    port = support.free_port()
    worker_ini(site, port, processes="4", cheaper="1")
    p = procs.ugu("--ini", "uwsgi.ini", cwd=site)
    p.wait_for_log(r"spawned uWSGI worker 1 \(pid: \d+, cores: 2\)")
    support.wait_for_port(port)
    assert split_response(uwsgi_request(port))[0].endswith("200 OK")
    assert "spawned uWSGI worker 2" not in p.output()


@pytest.mark.parametrize("option", ["processes", "threads",
                                    "socket-timeout"])
def test_a_number_past_a_c_int_stops_the_start_at_its_line(
        site, procs, uwsgi_binary, option):
    """uWSGI reads these into a C int, and refuses the overflowed value
    (`must be > 0`); ugu names the file, line and limit, where Python
    would take the number whole and fail in mmap or setsockopt."""
    worker_ini(site, support.free_port(), **{option: "9" * 20})
    p = procs.ugu("--ini", "uwsgi.ini", cwd=site)
    assert p.wait() == 1
    assert re.search(rf"uwsgi\.ini:\d+: option '{option}': 9{{20}} is too "
                     r"large: uWSGI keeps this option in a C int, at most "
                     r"2147483647", p.output())
    assert "Traceback" not in p.output()
    theirs = procs.start([uwsgi_binary, "--ini", "uwsgi.ini"], cwd=site)
    assert theirs.wait() == 1


@pytest.mark.parametrize("option", ["processes", "threads"])
def test_workers_past_the_memory_stop_the_start(site, procs, uwsgi_binary,
                                                option):
    """Within a C int but past any memory: uWSGI says it cannot allocate
    its shared memory and exits 1; ugu too, naming the option."""
    worker_ini(site, support.free_port(), **{option: "2147483647"})
    p = procs.ugu("--ini", "uwsgi.ini", cwd=site)
    assert p.wait() == 1
    assert re.search(rf"option '{option}': unable to allocate the shared "
                     rf"memory of .* \(lower {option}\)", p.output())
    assert "Traceback" not in p.output()
    theirs = procs.start([uwsgi_binary, "--ini", "uwsgi.ini"], cwd=site)
    assert theirs.wait() == 1
    assert "unable to allocate" in theirs.output()


def test_cheaper_must_be_lower_than_processes(site, procs):
    worker_ini(site, support.free_port(), processes="2", cheaper="2")
    p = procs.ugu("--ini", "uwsgi.ini", cwd=site)
    assert p.wait() == 1
    assert "invalid cheaper value: must be lower than processes" in \
        p.output()


def test_missing_module_runs_in_dynamic_mode(site, procs):
    port = support.free_port()
    worker_ini(site, port, module="nosuchapp")
    p = procs.ugu("--ini", "uwsgi.ini", cwd=site)
    p.wait_for_log(r"\*\*\* no app loaded\. going in full dynamic mode")
    support.wait_for_port(port)
    raw = uwsgi_request(port, "/x")
    # Byte for byte what uWSGI's worker answers.
    assert raw == (b"HTTP/1.1 500 Internal Server Error\r\nConnection: close"
                   b"\r\nContent-Type: text/plain\r\n\r\nInternal Server "
                   b"Error")
    p.wait_for_log("--- no python application found")


def test_need_app_exits_22(site, procs):
    worker_ini(site, support.free_port(), module="nosuchapp")
    p = procs.ugu("--ini", "uwsgi.ini", "--need-app", cwd=site)
    assert p.wait() == 22
    assert "GAME OVER" in p.output()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_body_cut_short_is_not_taken_for_a_whole_one(site, start_server,
                                                     server):
    """The app's read fails with uWSGI's words, and its line says how
    much of the body came."""
    from ugu import protocol
    port = support.free_port()
    argv = ["--socket", f"127.0.0.1:{port}", "--master", "--pythonpath",
            "code/", "--module", "app"]
    p = start_server(server, argv, cwd=site)
    support.wait_for_port(port)
    pairs = [(b"REQUEST_METHOD", b"POST"), (b"PATH_INFO", b"/echo"),
             (b"REQUEST_URI", b"/echo"), (b"SERVER_PROTOCOL", b"HTTP/1.1"),
             (b"CONTENT_LENGTH", b"100000")]
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(protocol.encode(pairs) + b"x" * 7)
        s.shutdown(socket.SHUT_WR)
        read_to_eof(s)
    p.wait_for_log(r"\[uwsgi-body-read\] Error reading 99993 bytes\. "
                   r"Content-Length: 100000 consumed: 7 left: 99993 "
                   r"message: Client closed connection")
    p.wait_for_log(r"\nOSError: error during read\(0\) on wsgi\.input\n")
    p.wait_for_log(r"POST /echo => generated \d+ bytes in \d+ msecs "
                   r"\(HTTP/1\.1 500\)")
    assert "POST /echo => generated 7 bytes" not in p.output()
    assert split_response(uwsgi_request(port))[0].endswith("200 OK")


def test_a_client_gone_mid_response_is_one_line_as_in_uwsgi(worker):
    from ugu import protocol
    pairs = [(b"REQUEST_METHOD", b"GET"), (b"PATH_INFO", b"/big"),
             (b"REQUEST_URI", b"/big"), (b"SERVER_PROTOCOL", b"HTTP/1.1"),
             (b"REMOTE_ADDR", b"127.0.0.9")]
    with socket.create_connection(("127.0.0.1", worker.port)) as s:
        s.sendall(protocol.encode(pairs))
        assert s.recv(65536).startswith(b"HTTP/1.1 200 OK")
        # Closed with unread bytes: the worker's next write is reset.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
    # A verbose line, as uWSGI's: the time first.
    worker.wait_for_log(
        r"\n\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} - "
        r"uwsgi_response_write_body_do\(\): Connection reset by peer "
        r"\[core/writer\.c line 429\] during GET /big \(127\.0\.0\.9\)\n"
        r"OSError: write error\n")
    worker.wait_for_log(r"GET /big => generated \d+ bytes")
    assert "Traceback" not in worker.output()
    assert split_response(uwsgi_request(worker.port))[0].endswith("200 OK")


def test_a_client_gone_before_the_head_still_logs_its_status(worker, site):
    """As uWSGI's line: the status and headers the app gave, though the
    head never reached the client."""
    from ugu import protocol
    pairs = [(b"REQUEST_METHOD", b"GET"), (b"PATH_INFO", b"/slow"),
             (b"REQUEST_URI", b"/slow"), (b"SERVER_PROTOCOL", b"HTTP/1.1"),
             (b"REMOTE_ADDR", b"127.0.0.9")]
    with socket.create_connection(("127.0.0.1", worker.port)) as s:
        s.sendall(protocol.encode(pairs))
        support.wait_until(lambda: (site / "slow-started").exists(), 10,
                           what="the app to start")
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER,
                     struct.pack("ii", 1, 0))
    worker.wait_for_log(
        r"uwsgi_response_writev_headers_and_body_do\(\): Connection reset "
        r"by peer \[core/writer\.c line 306\] during GET /slow")
    worker.wait_for_log(r"GET /slow => generated \d+ bytes in \d+ msecs "
                        r"\(HTTP/1\.1 200\) 1 headers in 0 bytes")


def test_without_master_worker_1_forks_the_others(site, procs):
    port = support.free_port()
    p = procs.ugu("--socket", f"127.0.0.1:{port}", "--processes", "2",
                  "--pythonpath", "code/", "--module", "app", cwd=site)
    p.wait_for_log(rf"spawned uWSGI worker 1 \(pid: {p.pid}, cores: 1\)")
    second = int(p.wait_for_log(r"spawned uWSGI worker 2 \(pid: (\d+)")
                 .group(1))
    assert support.children_of(p.pid) == [second]
    support.wait_for_port(port)
    assert split_response(uwsgi_request(port))[0].endswith("200 OK")
    assert "without its master process manager" in p.output()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_without_master_no_processes_loads_the_app_and_exits_0(
        site, start_server, server):
    port = support.free_port()
    p = start_server(server, ["--http-socket", f"127.0.0.1:{port}",
                              "--processes", "0", "--pythonpath", "code/",
                              "--module", "app"], cwd=site)
    assert p.wait() == 0
    p.wait_for_log(r"\*\*\* Operational MODE: no-workers \*\*\*\n"
                   r"(?:.*\n)*WSGI app 0 \(mountpoint=''\) ready")
    assert "spawned uWSGI worker" not in p.output()


# Without a master, worker 1's exit code is the instance's: uWSGI's end
# code, and its reload code where a graceful stop finds a lone core idle.
MASTERLESS_EXITS = [(signal.SIGINT, "1", 30), (signal.SIGTERM, "1", 30),
                    (signal.SIGHUP, "1", 17), (signal.SIGHUP, "2", 30)]


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("signum, threads, code", MASTERLESS_EXITS)
def test_without_master_exit_codes_are_uwsgis(site, start_server, server,
                                              signum, threads, code):
    port = support.free_port()
    argv = ["--http-socket", f"127.0.0.1:{port}", "--threads", threads,
            "--pythonpath", "code/", "--module", "app"]
    p = start_server(server, argv, cwd=site)
    support.wait_for_port(port)
    # Served, and closed by the server (a kept connection would hold the
    # core for the next request).  uWSGI closes before it logs, and its
    # core is idle only after the log line: signalled at the close, it
    # could find the core still busy.
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        assert read_to_eof(s).startswith(b"HTTP/1.1 200")
    p.wait_for_log(r"GET / => generated")
    p.send_signal(signum)
    assert p.wait() == code


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_without_master_a_router_alone_warns_and_exits_0(site, start_server,
                                                         server):
    port, pidfile = support.free_port(), site / "router.pid"
    p = start_server(server, ["--http", f"127.0.0.1:{port}", "--http-to",
                              f"127.0.0.1:{support.free_port()}",
                              "--pidfile", str(pidfile), "--vacuum"],
                     cwd=site)
    assert p.wait() == 0
    p.wait_for_log(r"spawned uWSGI http 1 \(pid: \d+\)\n(?:.*\n)*"
                   r"\.\.\.you should enable the master process\.\.\. "
                   r"really\.\.\.\nVACUUM: pidfile removed\.\n")
    assert "Operational MODE" not in p.output()
    assert not pidfile.exists()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_without_master_the_router_lives_as_long_as_worker_1(site,
                                                             start_server,
                                                             server):
    port = support.free_port()
    p = start_server(server, ["--http", f"127.0.0.1:{port}", "--pythonpath",
                              "code/", "--module", "app"], cwd=site)
    p.wait_for_log(r"spawned uWSGI http 1 \(pid: \d+\)")
    p.wait_for_log(r"spawned uWSGI worker 1 \(and the only\)")
    support.wait_for_port(port)
    assert requests.get(f"http://127.0.0.1:{port}/").text == \
        "<html>hello</html>"
    p.send_signal(signal.SIGINT)
    assert p.wait() == 30
    support.wait_until(lambda: not support.group_members(p.pgid),
                       what="the router to die with worker 1")


def test_without_master_a_router_alone_serves_on_orphaned(site, procs):
    """What uWSGI's router mostly does: it asks to die with its parent
    only after the fork, and the parent has usually exited by then."""
    node, port = support.free_port(), support.free_port()
    procs.ugu("--master", "--socket", f"127.0.0.1:{node}", "--pythonpath",
              "code/", "--module", "app", cwd=site)
    p = procs.ugu("--http", f"127.0.0.1:{port}", "--http-to",
                  f"127.0.0.1:{node}", cwd=site)
    assert p.wait() == 0
    router = int(p.wait_for_log(r"spawned uWSGI http 1 \(pid: (\d+)")
                 .group(1))
    support.wait_for_port(node)
    assert requests.get(f"http://127.0.0.1:{port}/").text == \
        "<html>hello</html>"
    os.kill(router, signal.SIGINT)
    support.wait_until(lambda: not support.group_members(p.pgid),
                       what="the router to stop")


PRINTER = """
print("printed at import")


def application(environ, start_response):
    print("printed by a request")
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [b"ok"]
"""


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_app_prints_go_to_the_log_on_stderr(site, procs, request, tmp_path,
                                            server):
    """uWSGI's Python writes sys.stdout to fd 2 when stdin is no
    terminal: `>/dev/null` must not hide what an app prints."""
    (site / "code" / "printer.py").write_text(PRINTER)
    port = support.free_port()
    argv = ["--http-socket", f"127.0.0.1:{port}", "--pythonpath", "code/",
            "--module", "printer"]
    binary = support.UGU if server == "ugu" else \
        [request.getfixturevalue("uwsgi_binary")]
    stdout = tmp_path / "stdout"
    p = support.Process([*binary, *argv], cwd=site, stdout_path=stdout)
    try:
        support.wait_for_port(port)
        assert requests.get(f"http://127.0.0.1:{port}/").text == "ok"
        p.wait_for_log("printed by a request")
        assert "printed at import" in p.output()
        assert stdout.read_text() == ""
    finally:
        p.stop()


STATIC_NAMES = ["a.js", "a.xml", "a.tar.gz", "A.JS", "x.zz", "README",
                "a.css", "x.ii", "x.cm"]


def static_types(procs, argv, root, mimefile=None):
    port = support.free_port()
    extra = ["--mimefile", str(mimefile)] if mimefile else []
    p = procs.start([*argv, "--http-socket", f"127.0.0.1:{port}",
                     "--check-static", str(root), "--master", *extra])
    p.wait_for_log(r"spawned uWSGI worker 1")
    found = {}
    for name in STATIC_NAMES:
        r = requests.get(f"http://127.0.0.1:{port}/{name}", timeout=10)
        assert r.status_code == 200
        found[name] = r.headers.get("Content-Type")
    return found


@pytest.mark.parametrize("own_file", [False, True],
                         ids=["etc-mime-types", "mimefile"])
def test_static_content_types_are_uwsgis(procs, tmp_path, uwsgi_binary,
                                         own_file):
    """The type of a file's last extension, case and all, from
    /etc/mime.types or the mimefile alone (its first line for an
    extension winning)."""
    root = tmp_path / "static"
    root.mkdir()
    for name in STATIC_NAMES:
        (root / name).write_text("x")
    mimefile = tmp_path / "my.types"
    mimefile.write_text("text/first zz\ntext/second zz\ntext/css css\n"
                        "  text/indented ii\n# text/comment cm\n"
                        "text/x-hash hh # cm\n")
    mimefile = mimefile if own_file else None
    ours = static_types(procs, support.UGU, root, mimefile)
    assert ours == static_types(procs, [uwsgi_binary], root, mimefile)
    if own_file:
        assert ours["x.zz"] == "text/first" and ours["a.js"] is None
        assert ours["x.ii"] is None and ours["x.cm"] == "text/x-hash"


def test_a_missing_mimefile_is_named_as_uwsgi_names_it(procs, tmp_path,
                                                       uwsgi_binary):
    """Each mimefile's line, in order; one that cannot be read is passed
    over with uWSGI's words and the others still count."""
    (tmp_path / "my.types").write_text("text/first zz\n")
    lines = []
    for argv in (support.UGU, [uwsgi_binary]):
        port = support.free_port()
        p = procs.start([*argv, "--http-socket", f"127.0.0.1:{port}",
                         "--check-static", str(tmp_path), "--master",
                         "--mimefile", str(tmp_path / "missing.types"),
                         "--mimefile", str(tmp_path / "my.types")])
        p.wait_for_log(r"spawned uWSGI worker 1")
        lines.append([line.replace(str(tmp_path), "DIR")
                      for line in p.output().splitlines()
                      if ".types" in line])
    assert lines[0] == ["!!! no DIR/missing.types file found !!!",
                        "building mime-types dictionary from file "
                        "DIR/my.types...1 entry found"]
    assert lines[0] == lines[1]


ESCAPES = ["/%C3%BCn%C3%AF.txt", "/%2e%2e/outside/secret.txt", "/out-link",
           "/out-dir", "/out-dir/", "/", "//"]


def static_escapes(procs, argv, site):
    """Each request's status and body, then the security lines logged."""
    port = support.free_port()
    p = procs.start([*argv, "--http-socket", f"127.0.0.1:{port}",
                     "--check-static", "static", "--master", "--wsgi-file",
                     "app.py"], cwd=site)
    p.wait_for_log(r"spawned uWSGI worker 1")
    answers = []
    for path in ESCAPES:
        r = requests.get(f"http://127.0.0.1:{port}{path}", timeout=10)
        answers.append((path, r.status_code, r.content))
    p.stop()
    lines = [line.replace(str(site), "SITE") for line in
             p.output().splitlines() if "security error" in line]
    return answers, lines


def test_static_names_and_escapes_are_uwsgis(procs, tmp_path, uwsgi_binary):
    """A UTF-8 file name is served; a file or folder outside the root is
    not, and is named in the log as uWSGI names it."""
    (tmp_path / "app.py").write_text(
        "def application(e, sr):\n"
        "    sr('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'app ' + e['PATH_INFO'].encode('latin-1')]\n")
    static, outside = tmp_path / "static", tmp_path / "outside"
    static.mkdir()
    outside.mkdir()
    (static / "ünï.txt").write_text("utf8\n")
    (outside / "secret.txt").write_text("secret\n")
    (static / "out-link").symlink_to(outside / "secret.txt")
    (static / "out-dir").symlink_to(outside)
    ours = static_escapes(procs, support.UGU, tmp_path)
    assert ours[0][0] == ("/%C3%BCn%C3%AF.txt", 200, b"utf8\n")
    assert len(ours[1]) == 3
    assert ours == static_escapes(procs, [uwsgi_binary], tmp_path)


SINCE = ["Tue, 02 Jan 2024 03:04:05 GMT", "Tue, 02 Jan 2024 03:04:04 GMT",
         "Wednesday, 03-Jan-24 03:04:05 GMT", "Wed Jan  3 03:04:05 2024",
         "Wed, 03 jan 2024 03:04:05 GMT", "Tue, 2 Jan 2024 03:04:05 GMT",
         "Tue, 02 Jan 2024 03:04:05 +0100", "Thu, 01 Jan 1970 00:00:00 GMT",
         "garbage", "Wed, 03 Jul 2024 03:04:05 GMT"]


def not_modified_statuses(procs, argv, root):
    port = support.free_port()
    procs.start([*argv, "--http-socket", f"127.0.0.1:{port}",
                 "--check-static", str(root), "--master"])
    support.wait_for_port(port)
    return [requests.get(f"http://127.0.0.1:{port}/a.txt", timeout=10,
                         headers={"If-Modified-Since": since}).status_code
            for since in SINCE]


def test_if_modified_since_is_read_as_uwsgi_reads_it(procs, tmp_path,
                                                      uwsgi_binary):
    """RFC 1123's layout only, by position, the zone ignored."""
    (tmp_path / "a.txt").write_text("a")
    os.utime(tmp_path / "a.txt", (1704164645, 1704164645))
    ours = not_modified_statuses(procs, support.UGU, tmp_path)
    assert ours == [304, 200, 200, 200, 200, 200, 304, 200, 200, 304]
    assert ours == not_modified_statuses(procs, [uwsgi_binary], tmp_path)


SHRINKING = 24 * 1024 * 1024


def shrunk_mid_send(procs, argv, root):
    """The body bytes a keepalive client gets of a file cut to half its
    size while it is sent, then the lines logged about it."""
    big = root / "big.bin"
    big.write_bytes(b"x" * SHRINKING)
    port = support.free_port()
    p = procs.start([*argv, "--http-socket", f"127.0.0.1:{port}",
                     "--check-static", str(root), "--master"])
    p.wait_for_log(r"spawned uWSGI worker 1")
    requests.get(f"http://127.0.0.1:{port}/", timeout=10)  # worker ready
    with socket.socket() as s:
        # A small window: most of the file is still unsent at the cut.
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 128 * 1024)
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        s.sendall(b"GET /big.bin HTTP/1.1\r\nHost: x\r\n\r\n")
        raw = s.recv(65536)
        os.truncate(big, SHRINKING // 2)
        # The connection ends: the client is not left waiting for the
        # rest of the Content-Length.
        raw += read_to_eof(s)
    p.wait_for_log(r"GET /big\.bin => ")
    lines = [re.sub(r"^.* - |\[pid.*\] GET| in \d+ msecs| \(\d+ switc.*",
                    "", line)
             for line in p.output().splitlines() if "big.bin" in line]
    return len(raw.partition(b"\r\n\r\n")[2]), lines


def test_a_file_that_shrinks_while_sent_fails_as_in_uwsgi(procs, tmp_path,
                                                          uwsgi_binary):
    """sendfile() finding the file's end early is a failed write: logged
    with errno 0's words, nothing counted as generated, connection
    closed."""
    ours = shrunk_mid_send(procs, support.UGU, tmp_path)
    assert ours == (SHRINKING // 2, [
        "uwsgi_response_sendfile_do(): Success [core/writer.c line 655] "
        "during GET /big.bin (127.0.0.1)",
        " /big.bin => generated 0 bytes via sendfile() (HTTP/1.1 200) "
        "3 headers in 131 bytes"])
    assert ours == shrunk_mid_send(procs, [uwsgi_binary], tmp_path)


def slow_get(port, request):
    """The bytes answered to a request by a client that takes a pause
    after the first ones: the server's socket fills, and its sendfile()
    has to wait (a client that keeps pace may never make it wait)."""
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 128 * 1024)
        s.settimeout(10)
        s.connect(("127.0.0.1", port))
        s.sendall(request)
        first = s.recv(65536)
        time.sleep(0.3)     # the client's pace, not a wait for readiness
        return first + read_to_eof(s)


def sendfile_switches(procs, argv, root):
    """The switches in the log lines of a big static file sent through an
    http-socket and through a uwsgi socket."""
    from ugu import protocol
    http_port, uwsgi_port = support.free_port(), support.free_port()
    p = procs.start([*argv, "--http-socket", f"127.0.0.1:{http_port}",
                     "--socket", f"127.0.0.1:{uwsgi_port}", "--check-static",
                     str(root), "--master"])
    p.wait_for_log(r"spawned uWSGI worker 1")
    support.wait_for_port(uwsgi_port)
    packet = protocol.encode([(b"REQUEST_METHOD", b"GET"),
                              (b"REQUEST_URI", b"/big.bin"),
                              (b"PATH_INFO", b"/big.bin")])
    for port, request in ((http_port, b"GET /big.bin HTTP/1.0\r\n\r\n"),
                          (uwsgi_port, packet)):
        raw = slow_get(port, request)
        assert len(split_response(raw)[2]) == SHRINKING
    p.wait_for_log(r"GET /big\.bin => ", count=2)
    lines = re.findall(r"GET /big\.bin => .*", p.output())
    return [int(re.search(r"(\d+) switches", line)[1]) for line in lines]


def test_sendfile_counts_its_waits_as_switches_as_uwsgi_does(
        procs, tmp_path, uwsgi_binary):
    """A file bigger than the socket's buffer makes sendfile() wait for
    room; uWSGI's log line counts each wait among the switches (how many
    depends on the client's pace: only that there are some is compared)."""
    (tmp_path / "big.bin").write_bytes(b"x" * SHRINKING)
    for argv in (support.UGU, [uwsgi_binary]):
        switches = sendfile_switches(procs, argv, tmp_path)
        assert all(count > 0 for count in switches), (argv, switches)


def test_a_vars_block_met_again_gives_a_fresh_dict():
    """The worker decodes a block once; each request still gets vars of
    its own to change (routes add to them)."""
    from ugu import protocol
    from ugu.vassal.worker import _decoded_vars
    block = protocol.encode_vars([(b"PATH_INFO", b"/again"),
                                  (b"REMOTE_PORT", b"40001")])
    first, count = _decoded_vars(block)
    first["RESPONSE_CONTENT_TYPE"] = "text/html"
    second, count_again = _decoded_vars(block)
    assert second == {"PATH_INFO": "/again", "REMOTE_PORT": "40001"}
    assert count == count_again == 2


PATHS_APP = """def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [("SN=%r PI=%r" % (environ["SCRIPT_NAME"],
                              environ["PATH_INFO"])).encode()]
"""


def test_modifier_30_is_served_as_uwsgi_serves_it(procs, tmp_path,
                                                  uwsgi_binary):
    """nginx's `uwsgi_modifier1 30` with a SCRIPT_NAME: uWSGI 2.0 on
    Python 3 leaves PATH_INFO whole, and apps behind it route so."""
    (tmp_path / "paths.py").write_text(PATHS_APP)
    answers = []
    for binary in (support.UGU, [uwsgi_binary]):
        port = support.free_port()
        p = procs.start([*binary, "--master", "--socket",
                         f"127.0.0.1:{port}", "--wsgi-file", "paths.py"],
                        cwd=tmp_path)
        p.wait_for_log(r"spawned uWSGI worker 1")
        raw = uwsgi_request(port, "/app/env", modifier1=30,
                            extra_vars=[("SCRIPT_NAME", "/app")])
        answers.append(split_response(raw)[-1])
    assert answers[0] == answers[1] == b"SN='/app' PI='/app/env'"


WRAPPER_APP = """import os
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    if environ["PATH_INFO"] == "/text":
        return [b"hello"]
    return environ["wsgi.file_wrapper"](open(__file__, "rb"))
"""


@pytest.mark.parametrize("offload", [[], ["--offload-threads", "1"]],
                         ids=["sendfile", "offload"])
def test_break_drops_the_body_of_a_file(procs, tmp_path, offload):
    """A response route's `break` leaves a head with no body: a file,
    static or the app's file_wrapper, is not sent after it either."""
    (tmp_path / "static").mkdir()
    (tmp_path / "static" / "s.txt").write_text("static body\n")
    (tmp_path / "wrapper.py").write_text(WRAPPER_APP)
    port = support.free_port()
    p = procs.ugu("--master", "--socket", f"127.0.0.1:{port}",
                  "--wsgi-file", "wrapper.py", "--check-static", "static",
                  "--response-route-run", "break:", *offload, cwd=tmp_path)
    p.wait_for_log(r"spawned uWSGI worker 1")
    for path in ("/s.txt", "/app", "/text"):
        status, headers, body = split_response(uwsgi_request(port, path))
        assert (status, headers.get("content-length", "0"), body) == \
            ("HTTP/1.1 200 OK", "0", b"")
    # As uWSGI logs it: no body went out.
    p.wait_for_log(r"GET /text => generated 0 bytes")
