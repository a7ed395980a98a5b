"""log-encoder and log-req-encoder, on ugu and on the real uWSGI: the
bytes each encoder writes for a message, the chain's order, the lines
that announce them, and which lines each option encodes."""

import gzip
import os
import re
import subprocess
import textwrap
import time
import zlib

import pytest

from tests import support
from tests.test_logfile import serve

APP = textwrap.dedent('''
    def application(environ, start_response):
        print("say \\"hi\\"\\tback\\\\slash", environ["PATH_INFO"])
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
''')
SERVERS = ["ugu", "uwsgi"]


@pytest.fixture
def site(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


get = support.http10_get


def wait_in_file(path, pattern):
    def found():
        return path.exists() and re.search(pattern, path.read_bytes(),
                                           re.M)
    support.wait_until(found, what=f"{pattern!r} in {path}")
    return path.read_bytes()


def request_line(path):
    return rb"\[pid: \d+\|app: 0\|req: \d+/\d+\] [^\n]* GET " + \
        path.encode() + rb" => [^\n]*\)"


@pytest.mark.parametrize("server", SERVERS)
def test_json_prefix_suffix_nl_chain(start_server, site, server):
    """Each encoder rewrites what the one before it wrote: json escapes
    the message (without its newline in ${msg}, with it in ${msgnl}); a
    "$" not opening a var stays with the byte after it, an unknown var is
    left out.  The master's lines, the app's prints and request lines
    are encoded."""
    template = ('{"unix":${unix}, "msg":"${msg}", "nl":"${msgnl}", '
                '"x":"$x ${unknown} $$${msg}"}')
    p, port = serve(start_server, server, site, ("logto", "app.log"),
                    ("log-encoder", f"json {template}"),
                    ("log-encoder", "prefix [app]"),
                    ("log-encoder", "suffix <END>"), ("log-encoder", "nl"))
    assert get(port, "/x").endswith(b"ok")
    said = rb'say \\"hi\\"\\tback\\\\slash /x'
    wait_in_file(site / "app.log", said)
    wait_in_file(site / "app.log", request_line("/x"))
    p.stop()
    text = (site / "app.log").read_bytes()
    assert re.search(
        rb'^\[app\]\{"unix":(\d+), "msg":"' + said + rb'", "nl":"' +
        said + rb'\\n", "x":"\$x  \$\$' + said + rb'"\}<END>\n', text, re.M)
    unix = int(re.search(rb'"unix":(\d+)', text).group(1))
    assert abs(unix - time.time()) < 60
    assert re.search(rb'^\[app\]\{"unix":\d+, "msg":"' +
                     request_line("/x") + rb'", ', text, re.M)
    assert re.search(rb'^\[app\]\{"unix":\d+, "msg":"spawned uWSGI '
                     rb'master process \(pid: \d+\)", ', text, re.M)
    # The announcements go where the log was before logto took it.
    assert (f"[log-encoder] registered json {template}\n"
            "[log-encoder] registered prefix [app]\n"
            "[log-encoder] registered suffix <END>\n"
            "[log-encoder] registered nl\n") in p.output()


@pytest.mark.parametrize("server", SERVERS)
def test_format_with_strftime(start_server, site, server):
    """format writes the template as it is, ${strftime:...} the local
    time (%% in the INI file is a %), and no newline: the messages run
    on."""
    p, port = serve(start_server, server, site, ("logto", "app.log"),
                    ("log-encoder", "format [FOO ${strftime:%%d/%%m/%%Y "
                                    "%%H:%%M:%%S}] ${msg} (${micros})"))
    assert get(port, "/x").endswith(b"ok")
    wait_in_file(site / "app.log", rb"GET /x ")
    p.stop()
    text = (site / "app.log").read_bytes()
    line = re.search(rb'\)\[FOO (\S+ \S+)\] say "hi"\tback\\slash /x '
                     rb'\((\d+)\)\[FOO ', text)
    assert line
    stamp = time.mktime(time.strptime(line.group(1).decode(),
                                      "%d/%m/%Y %H:%M:%S"))
    assert abs(stamp - int(line.group(2)) / 1e6) < 2


def _members(data, decompressor):
    """The messages of a log of compressed streams, each on its own."""
    messages = []
    while data:
        d = decompressor()
        messages.append(d.decompress(data))
        data = d.unused_data
    return messages


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("name", ["gzip", "compress"])
def test_gzip_and_compress_write_a_stream_per_message(start_server, site,
                                                      server, name):
    """Each message, with its newline, becomes a gzip member (a zlib
    stream), with uWSGI's exact bytes."""
    p, port = serve(start_server, server, site, ("logto", "app.log"),
                    ("log-encoder", name))
    log_file = site / "app.log"
    assert get(port, "/x").endswith(b"ok")
    wbits = 31 if name == "gzip" else 15

    def told():
        data = log_file.read_bytes() if log_file.exists() else b""
        try:
            return _members(data, lambda: zlib.decompressobj(wbits))
        except zlib.error:
            return None
    support.wait_until(lambda: any(b"GET /x" in m for m in told() or ()),
                       what="the request line")
    p.stop()
    messages = told()
    assert b'say "hi"\tback\\slash /x\n' in messages
    data = log_file.read_bytes()
    message = b'say "hi"\tback\\slash /x\n'
    if name == "gzip":
        deflate = zlib.compressobj(-1, zlib.DEFLATED, -15, 9)
        body = deflate.compress(message) + \
            deflate.flush(zlib.Z_SYNC_FLUSH) + deflate.flush()
        expected = b"\x1f\x8b\x08\0\0\0\0\0\0\x03" + body + \
            zlib.crc32(message).to_bytes(4, "little") + \
            len(message).to_bytes(4, "little")
        assert gzip.decompress(expected) == message
    else:
        expected = zlib.compress(message)
    assert expected in data


@pytest.mark.parametrize("server", SERVERS)
def test_log_req_encoder_encodes_a_req_logger_s_lines(start_server, site,
                                                      server):
    """With a req-logger, log-req-encoder encodes the request lines it
    writes, and log-encoder the messages alone."""
    p, port = serve(start_server, server, site,
                    ("log-encoder", "prefix [G]"),
                    ("log-req-encoder", "prefix [R]"),
                    ("log-req-encoder", "suffix <E>"),
                    ("log-req-encoder", "nl"),
                    ("req-logger", f"file:{site / 'req.log'}"))
    assert get(port, "/x").endswith(b"ok")
    text = wait_in_file(site / "req.log", rb"<E>\n")
    p.wait_for_log(r"(?m)^\[G\]say ")
    p.stop()
    assert re.fullmatch(rb"\[R\]" + request_line("/x") + rb"\n<E>\n", text)
    assert "GET /x" not in p.output()
    assert "[log-req-encoder] registered suffix <E>\n" in p.output()


@pytest.mark.parametrize("server", SERVERS)
def test_log_req_encoder_without_req_logger(start_server, site, server):
    """Without a req-logger, request lines are messages: log-encoder
    encodes them, log-req-encoder nothing."""
    p, port = serve(start_server, server, site,
                    ("log-encoder", "prefix [G]"),
                    ("log-req-encoder", "prefix [R]"))
    assert get(port, "/x").endswith(b"ok")
    p.wait_for_log(r"(?m)^\[G\]\[pid: \d+\|app: 0\|req: 1/1\] .* GET /x ")
    p.stop()
    assert "[R]" not in p.output().replace("registered prefix [R]", "")


@pytest.mark.parametrize("server", SERVERS)
def test_an_unknown_encoder_ends_the_instance(site, server, request):
    port = support.free_port()
    support.write_ini(site / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"), ("master", "true"),
        ("log-encoder", "prefix [G]"), ("log-encoder", "rot13")])
    binary = support.UGU if server == "ugu" else \
        [request.getfixturevalue("uwsgi_binary")]
    done = subprocess.run([*binary, "--ini", "app.ini"], cwd=site,
                          timeout=30, capture_output=True, text=True,
                          stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert 'log encoder "rot13" not found' in done.stdout + done.stderr


def test_an_encoder_for_a_logger_no_line_names_is_refused(site):
    """uWSGI's NAME:LOGGER encodes for the logger of that name alone;
    where no `logger` line has it, it would encode nothing, and ugu
    says so."""
    done = subprocess.run(
        [*support.UGU, "--http-socket", "127.0.0.1:0", "--master",
         "--logger", "other file:other.log",
         "--log-encoder", "json:mylog {}"], cwd=site, timeout=30,
        capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert "option 'log-encoder': 'json:mylog {}' encodes for the logger " \
        "named 'mylog', and no `logger = mylog KIND:ARGS` line names " \
        "one" in done.stderr
    assert "registered" not in done.stderr


@pytest.mark.parametrize("server", SERVERS)
def test_threaded_logger_copies_the_children_lines(start_server, site,
                                                   server):
    """threaded-logger turns the log master on, a thread of the master
    copying the pipe: the children's lines reach the file, encoded, and
    on ugu the workers' last ones come before the master's last."""
    p, port = serve(start_server, server, site, ("logto", "app.log"),
                    ("threaded-logger", "true"),
                    ("log-encoder", "prefix [T]"))
    assert get(port, "/x").endswith(b"ok")
    wait_in_file(site / "app.log", rb"^\[T\]say ")
    wait_in_file(site / "app.log", rb"^\[T\]" + request_line("/x"))
    if server == "ugu":
        assert len(os.listdir(f"/proc/{p.pid}/task")) >= 2
    p.stop()
    text = (site / "app.log").read_bytes()
    assert b"[T]goodbye to uWSGI.\n" in text
    if server == "ugu":
        # uWSGI's master and logger thread each write the file at their
        # own offset, so its last lines now and then land over each other
        # (CI saw "goodbye" twice, then the tail of an overwritten line).
        assert text.endswith(b"[T]goodbye to uWSGI.\n")
