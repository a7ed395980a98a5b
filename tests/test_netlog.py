"""The loggers that send each message over a socket (`logger =
socket:ADDR`, `log-socket`, `rsyslog:`, `syslog`, `log-syslog`), with
rsyslog-packet-size, rsyslog-split-messages, log-master-bufsize and
log-master-stream: what a receiver the test binds gets, from ugu and
from the real uWSGI on the same INI file."""

import os
import re
import shutil
import signal
import socket
import subprocess
import textwrap
import time

import pytest

from tests import support

APP = textwrap.dedent('''
    import sys

    def application(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/long":
            print("L" * 300 + "END")
        else:
            print("print from", path)
        sys.stdout.flush()
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
''')
SERVERS = ["ugu", "uwsgi"]
# rsyslog's date: ctime's month, day and time.
STAMP = rb"\w{3} [ \d]\d \d\d:\d\d:\d\d"
REQUEST = rb"\[pid: \d+\|app: 0\|req: 1/1\] 127\.0\.0\.1 \(\) "


@pytest.fixture
def site(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


def serve(start_server, server, site, *pairs):
    # The real uWSGI's idle worker now and then sleeps on through the
    # SIGINT and its master waits worker-reload-mercy (60 s) for it before
    # its goodbye, the line these tests wait for; 2 s keeps the goodbye.
    port = support.free_port()
    support.write_ini(site / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"),
        ("wsgi-file", site / "app.py"), ("master", "true"),
        ("worker-reload-mercy", "2"), *pairs])
    p = start_server(server, ["--ini", "app.ini"], cwd=site)
    support.wait_for_port(port)
    return p, port


def one(got, pattern):
    """The one datagram that matches `pattern`."""
    found = [d for d in got if re.search(pattern, d)]
    assert len(found) == 1, got
    return found[0]


# -- socket -----------------------------------------------------------------

@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("unix", [False, True])
def test_log_socket_sends_each_message_after_its_prefix(
        start_server, site, receivers, server, unix):
    """Every message, the master's, the app's prints and the request
    lines, is one datagram: the prefix, then the message with its
    newline."""
    r = receivers(site / "log.sock" if unix else None)
    p, port = serve(start_server, server, site,
                    ("log-socket", f"{r.address},[app]"))
    assert support.http10_get(port, "/x").endswith(b"ok")
    got = r.wait_for(rb"^\[app\]" + REQUEST)
    p.stop()
    got = r.wait_for(rb"^\[app\]goodbye to uWSGI\.\n\Z")
    assert got[0].startswith(b"[app]*** Starting uWSGI 2.0")
    assert all(d.startswith(b"[app]") and d.endswith(b"\n") and
               d.count(b"\n") == 1 for d in got), got
    assert b"[app]print from /x\n" in got
    assert re.fullmatch(rb"\[app\]" + REQUEST + rb".* GET /x => "
                        rb"generated 2 bytes in \d+ msecs \(HTTP/1\.0 "
                        rb"200\) 1 headers in 45 bytes \(1 switches on "
                        rb"core 0\)\n", one(got, REQUEST))
    # The terminal gets nothing but what came before the logger.
    assert "goodbye" not in p.output()


@pytest.mark.parametrize("server", SERVERS)
def test_through_the_log_master_each_line_is_a_datagram(
        start_server, site, receivers, server):
    r = receivers()
    p, port = serve(start_server, server, site, ("log-master", "true"),
                    ("log-drain", "^spawned"),
                    ("logger", f"socket:{r.address}"))
    support.http10_get(port, "/m")
    r.wait_for(REQUEST)
    p.stop()
    got = r.wait_for(rb"^goodbye to uWSGI\.\n\Z")
    assert all(d.endswith(b"\n") and d.count(b"\n") == 1 for d in got)
    assert b"print from /m\n" in got
    assert not any(d.startswith(b"spawned") for d in got)


@pytest.mark.parametrize("server", SERVERS)
def test_req_logger_socket_takes_request_lines_alone(
        start_server, site, receivers, server):
    r = receivers()
    p, port = serve(start_server, server, site,
                    ("req-logger", f"socket:{r.address}"))
    support.http10_get(port, "/y")
    got = r.wait_for(REQUEST)
    p.stop()
    assert len(got) == 1 and re.match(REQUEST + rb".* GET /y => ", got[0])
    assert "print from /y" in p.output()


@pytest.mark.parametrize("server", SERVERS)
def test_log_master_bufsize_cuts_a_longer_message(
        start_server, site, receivers, server):
    r = receivers()
    p, port = serve(start_server, server, site,
                    ("logger", f"socket:{r.address}"),
                    ("log-master-bufsize", "100"))
    support.http10_get(port, "/long")
    got = r.wait_for(REQUEST)
    p.stop()
    assert b"L" * 100 in got
    assert not any(b"END" in d for d in got)


@pytest.mark.parametrize("server", SERVERS)
def test_a_log_master_bufsize_past_a_c_int_is_taken(
        start_server, site, receivers, server):
    """3000000000 passes a C int: ugu's setsockopt() raised TypeError,
    and the start ended in a traceback; uWSGI takes it."""
    r = receivers()
    p, port = serve(start_server, server, site,
                    ("logger", f"socket:{r.address}"),
                    ("log-master-bufsize", "3000000000"))
    support.http10_get(port, "/long")
    got = r.wait_for(REQUEST)
    p.stop()
    assert any(b"L" * 300 + b"END" in d for d in got)


@pytest.mark.parametrize("server", SERVERS)
def test_log_master_stream_sends_what_was_read(start_server, site,
                                               receivers, server):
    """A stream keeps no bounds between writes: a datagram is what one
    read took, lines whole or not; together they are the log."""
    r = receivers()
    p, port = serve(start_server, server, site,
                    ("logger", f"socket:{r.address}"),
                    ("log-master-stream", "true"))
    support.http10_get(port, "/st")
    support.wait_until(lambda: re.search(REQUEST, b"".join(r.got)),
                       what="the request line")
    p.stop()
    support.wait_until(lambda: b"".join(r.got).endswith(
        b"goodbye to uWSGI.\n"), what="the last line")
    text = b"".join(r.got)
    assert text.startswith(b"*** Starting uWSGI 2.0")
    assert b"\nprint from /st\n" in text


# -- rsyslog ----------------------------------------------------------------

@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("split", [False, True])
def test_rsyslog_packets(start_server, site, receivers, server, split):
    """`<PRI>date IDENT: ` then the message without its newline; a
    longer one is cut into pieces of the packet size less 30 bytes, the
    pieces after the first sent only with rsyslog-split-messages."""
    r = receivers()
    p, port = serve(start_server, server, site,
                    ("logger", f"rsyslog:{r.address},myident,30"),
                    ("rsyslog-packet-size", "120"),
                    ("rsyslog-split-messages", str(split).lower()))
    support.http10_get(port, "/long")
    got = r.wait_for(REQUEST)
    p.stop()
    head = rb"<30>" + STAMP + rb" myident: "
    assert all(re.match(head, d) and not d.endswith(b"\n") for d in got)
    pieces = [d for d in got if re.match(head + rb"L", d)]
    texts = [re.sub(head, b"", d) for d in pieces]
    if split:
        assert texts == [b"L" * 90] * 3 + [b"L" * 30 + b"END"]
    else:
        assert texts == [b"L" * 90]
    line = one(got, head + REQUEST)
    assert len(line) == 119


@pytest.mark.parametrize("server", SERVERS)
def test_rsyslog_defaults_on_a_unix_socket(start_server, site, receivers,
                                           server):
    """Without an ident, the host's name and "uwsgi", at priority 29."""
    r = receivers(site / "syslog.sock")
    p, port = serve(start_server, server, site,
                    ("logger", f"rsyslog:{r.address}"))
    support.http10_get(port, "/z")
    got = r.wait_for(rb": print from /z")
    p.stop()
    host = socket.gethostname().encode()
    assert re.fullmatch(rb"<29>" + STAMP + rb" " + re.escape(host) +
                        rb" uwsgi: print from /z", one(got, b"print from"))


# -- syslog -----------------------------------------------------------------

# What the servers need of /dev, besides the log.
NODES = ("null", "zero", "urandom", "random")
NEEDS_NAMESPACE = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("unshare"),
    reason="the syslog logger writes to /dev/log: the test mounts its "
           "own /dev in a mount namespace, which needs root")


@NEEDS_NAMESPACE
@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("value, head", [
    ("myapp,local2", b"<150>"), ("", b"<30>")])
def test_log_syslog_writes_to_dev_log(procs, request, site, server, value,
                                      head):
    """libc's syslog(): `<PRI>date IDENT: message` with its newline, at
    priority info of the facility (daemon, ident uwsgi, by default)."""
    dev = site / "dev"
    dev.mkdir()
    for name in NODES:
        (dev / name).touch()
    (dev / "shm").mkdir()
    r = support.Receiver(dev / "log")
    try:
        port = support.free_port()
        binary = [request.getfixturevalue("uwsgi_binary")] \
            if server == "uwsgi" else support.UGU
        option = f"--log-syslog={value}" if value else "--log-syslog"
        argv = [*binary, "--master", "--http-socket", f"127.0.0.1:{port}",
                "--wsgi-file", str(site / "app.py"), option]
        mounts = "".join(f"mount --bind /dev/{name} {dev}/{name} && "
                         for name in (*NODES, "shm"))
        script = f'{mounts}mount --bind {dev} /dev && exec "$@"'
        p = procs.start(["unshare", "-m", "sh", "-c", script, "sh", *argv],
                        cwd=site)
        support.wait_for_port(port)
        support.http10_get(port, "/s")
        got = r.wait_for(rb": print from /s")
        p.stop()
    finally:
        r.close()
    ident = b"myapp" if value else b"uwsgi"
    assert re.fullmatch(re.escape(head) + STAMP + rb" " + ident +
                        rb": print from /s\n", one(got, b"print from"))


# -- logto, logto2 and daemonize to HOST:PORT --------------------------------

@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("option", ["logto", "logto2"])
def test_logto_an_address_sends_each_write_over_udp(
        start_server, site, receivers, server, option):
    """A logto (or logto2) value with a colon is a UDP HOST:PORT: every
    line, the master's, the app's prints and the request lines, is a
    datagram of its own, and no file is made."""
    r = receivers()
    host = r.address.replace("127.0.0.1", "localhost")
    p, port = serve(start_server, server, site, ("processes", "2"),
                    (option, host))
    assert support.http10_get(port, "/u").endswith(b"ok")
    r.wait_for(REQUEST)
    p.stop()
    got = r.wait_for(rb"^goodbye to uWSGI\.\n\Z")
    assert all(d.endswith(b"\n") and d.count(b"\n") == 1 for d in got)
    assert b"print from /u\n" in got
    assert any(d.startswith(b"spawned uWSGI worker 2 ") for d in got)
    assert re.fullmatch(REQUEST + rb".* GET /u => generated 2 bytes in "
                        rb"\d+ msecs \(HTTP/1\.0 200\) 1 headers in 45 "
                        rb"bytes \(1 switches on core \d\)\n",
                        one(got, REQUEST))
    assert "goodbye" not in p.output()
    assert not (site / host).exists()
    # uWSGI's master lseek()s the socket every second to size the file,
    # and logs its failure each time; ugu does not (see README).
    if server == "ugu":
        assert not any(b"lseek" in d for d in got)


@pytest.mark.parametrize("server", SERVERS)
def test_logto_an_address_goes_on_after_a_reload(start_server, site,
                                                 receivers, server):
    r = receivers()
    p, port = serve(start_server, server, site, ("logto", r.address))
    assert support.http10_get(port, "/before").endswith(b"ok")
    r.wait_for(rb"GET /before => ")
    p.send_signal(signal.SIGHUP)
    r.wait_for(rb"^gracefully \(RE\)spawned uWSGI master")
    support.wait_for_port(port)
    assert support.http10_get(port, "/after").endswith(b"ok")
    r.wait_for(rb"GET /after => ")
    p.stop()
    r.wait_for(rb"^goodbye to uWSGI\.\n\Z")


def test_a_stopped_receiver_of_logto_fails_no_print(start_server, site,
                                                     receivers):
    """The app's print() goes on when nothing receives the datagrams:
    they are lost (uWSGI's connected socket fails the write after a
    refused one, and the print with it)."""
    r = receivers()
    address = r.address
    r.close()
    p, port = serve(start_server, "ugu", site, ("logto", address))
    for _ in range(3):
        assert support.http10_get(port, "/x").endswith(b"ok")
    p.stop()


def test_logto_address_leaves_rotation_inert(start_server, site,
                                             receivers):
    """A UDP address has no size and nothing to reopen: touch-logrotate
    is said to do nothing (uWSGI's lseek() fails and it goes no
    further), and no file is made of it."""
    r = receivers()
    p, port = serve(start_server, "ugu", site, ("logto", r.address),
                    ("touch-logrotate", site / "rotate"))
    (site / "rotate").touch()
    assert support.http10_get(port, "/r").endswith(b"ok")
    r.wait_for(REQUEST)
    p.stop()
    assert "option 'touch-logrotate': does nothing where the log goes " \
        "to a UDP address, which has nothing to rotate or reopen" in \
        p.output()
    assert sorted(os.listdir(site)) == ["app.ini", "app.py", "rotate"]


@pytest.mark.parametrize("value, message", [
    (":1717", "':1717' is no UDP address: write HOST:PORT"),
    ("127.0.0.1:", "'127.0.0.1:' is no UDP address: write HOST:PORT"),
    ("no.such.host.invalid:5",
     "cannot resolve 'no.such.host.invalid' to an IPv4 address")])
@pytest.mark.parametrize("option", ["logto", "logto2"])
def test_logto_a_bad_address_stops_the_start(site, option, value,
                                             message):
    """uWSGI says `invalid udp address`, or fails to connect(), and
    exits; ugu names the option and the fix.  No file is made."""
    done = subprocess.run(
        [*support.UGU, "--http-socket", "127.0.0.1:0", f"--{option}",
         value], cwd=site, timeout=30, capture_output=True, text=True,
        stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert f"option '{option}': {message}" in done.stderr
    assert os.listdir(site) == ["app.py"]


# -- refused ----------------------------------------------------------------

@pytest.mark.parametrize("argv, message", [
    (["--log-syslog=myapp,nowhere"],
     "logger 'syslog:myapp,nowhere': 'nowhere' is no syslog facility"),
    (["--logger", "socket"],
     "logger 'socket': name the address to send to"),
    (["--logger", "rsyslog:"],
     "logger 'rsyslog:': name the syslog server"),
    (["--log-socket", "no.such.host.invalid:5"],
     "cannot resolve 'no.such.host.invalid'")])
def test_what_ugu_cannot_send_to_is_refused(site, argv, message):
    done = subprocess.run(
        [*support.UGU, "--http-socket", "127.0.0.1:0", "--master", *argv],
        cwd=site, timeout=30, capture_output=True, text=True,
        stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert message in done.stderr
    assert "option 'logger'" in done.stderr


def test_a_stopped_receiver_loses_lines_not_the_instance(
        start_server, site, receivers):
    r = receivers()
    address = r.address
    r.close()
    p, port = serve(start_server, "ugu", site,
                    ("logger", f"socket:{address}"))
    for _ in range(3):
        assert support.http10_get(port, "/x").endswith(b"ok")
        time.sleep(0.05)
    p.stop()
