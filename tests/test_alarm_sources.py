"""alarm-fd, alarm-segfault, alarm-msg-size and alarm-cheap, on ugu and
on the real uWSGI: the ALARM lines a `log` alarm writes."""

import array
import fcntl
import os
import re
import subprocess
import termios
import textwrap

import pytest

from tests import support

APP = textwrap.dedent('''
    import ctypes

    def application(environ, start_response):
        if environ["PATH_INFO"] == "/crash":
            ctypes.string_at(0)
        print("ALERT" + "x" * 50)
        start_response("200 OK", [])
        return [b"ok"]
''')
SERVERS = ["ugu", "uwsgi"]
ALARM = r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} - ALARM: "


@pytest.fixture
def site(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    return tmp_path


def serve(procs, request, server, site, *pairs, fd_from=None):
    """The server in `site`, its fd 7 opened from `fd_from` (read only)
    where given; (process, port)."""
    port = support.free_port()
    support.write_ini(site / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"),
        ("wsgi-file", site / "app.py"), ("master", "true"),
        ("alarm", "lg log:SAID"), *pairs])
    binary = [request.getfixturevalue("uwsgi_binary")] \
        if server == "uwsgi" else support.UGU
    redirect = f" 7<{fd_from}" if fd_from else ""
    p = procs.start(["sh", "-c", f'exec "$@"{redirect}', "sh", *binary,
                     "--ini", "app.ini"], cwd=site)
    support.wait_for_port(port)
    return p, port


def stop(p, server):
    # The real uWSGI is given less, as conftest's REFERENCE_MERCY.
    p.stop(timeout=2 if server == "uwsgi" else 10)


def alarms(p):
    return re.findall(ALARM + r"(.*)", p.output())


@pytest.fixture
def fifo(site):
    """A FIFO the test keeps open for writing (and reading, so that it
    never blocks): (its path, the test's descriptor)."""
    path = site / "alarm.fifo"
    os.mkfifo(path)
    fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
    yield path, fd
    try:
        os.close(fd)
    except OSError:
        pass


@pytest.mark.parametrize("server", SERVERS)
def test_alarm_fd_raises_for_each_size_read(procs, request, site, fifo,
                                            server):
    path, fd = fifo
    p, port = serve(procs, request, server, site,
                    ("alarm-fd", "lg 7:2 fd says: look"),
                    ("alarm-freq", "0"), fd_from=path)
    os.write(fd, b"abcd")
    support.wait_until(lambda: len(alarms(p)) >= 2, what="two alarms")
    stop(p, server)
    assert alarms(p) == ["SAID fd says: look"] * 2


def test_an_alarm_fd_size_the_memory_cannot_hold_is_read_all_the_same(
        procs, request, site, fifo):
    """read() allocates what it is asked for: the master asked for SIZE
    and died of MemoryError (uWSGI's dies of its malloc at the start).
    It asks for no more than a pipe holds, and goes on counting."""
    path, fd = fifo
    p, port = serve(procs, request, "ugu", site,
                    ("alarm-fd", "lg 7:99999999999999 never"),
                    fd_from=path)
    os.write(fd, b"abcd")
    # The master read it (the FIFO is empty) and still answers.
    support.wait_until(lambda: not _pending(fd), what="the bytes read")
    assert support.get_body(port, "/") == b"ok"
    stop(p, "ugu")
    assert "Traceback" not in p.output()
    assert alarms(p) == []


def _pending(fd):
    count = array.array("i", [0])
    fcntl.ioctl(fd, termios.FIONREAD, count)
    return count[0]


@pytest.mark.parametrize("server", SERVERS)
def test_alarm_fd_at_its_end_raises_and_stops(procs, request, site, fifo,
                                              server):
    path, fd = fifo
    p, port = serve(procs, request, server, site,
                    ("alarm-fd", "lg 7 the end"), fd_from=path)
    # The FIFO's only writer goes: the server reads its end.
    os.close(fd)
    support.wait_until(lambda: alarms(p), what="the alarm")
    stop(p, server)
    # The alarm's lines in their order; the master's alarm thread writes
    # them while a worker may write its own (uWSGI's spawn line).
    said = "".join(line for line in p.output().splitlines(True)
                   if "alarm" in line.lower())
    assert re.fullmatch(r"(?:.*\n)*\[uwsgi-alarm-fd\]/read\(\): Success "
                        r"\[core/alarm\.c line \d+\]\n\[uwsgi-alarm-fd\] i "
                        r"will stop monitoring fd 7\n" + ALARM +
                        "SAID the end\n", said)
    assert alarms(p) == ["SAID the end"]


@pytest.mark.parametrize("server", SERVERS)
def test_alarm_segfault(procs, request, site, server):
    """uWSGI raises it with the C backtrace it logs; ugu with its line."""
    p, port = serve(procs, request, server, site,
                    ("alarm-segfault", "lg"))
    support.http10_get(port, "/crash")
    support.wait_until(lambda: "Respawned uWSGI worker 1" in p.output(),
                       what="the worker's respawn")
    stop(p, server)
    pid = re.search(r"!!! uWSGI process (\d+) got Segmentation Fault !!!",
                    p.output())
    assert pid
    said = alarms(p)
    assert len(said) == 1
    if server == "ugu":
        assert said == [f"SAID !!! uWSGI process {pid[1]} got "
                        f"Segmentation Fault !!!"]
    else:
        assert said == [f"SAID *** backtrace of {pid[1]} ***"]


@pytest.mark.parametrize("server", SERVERS)
def test_a_segfault_message_longer_than_alarm_msg_size_is_not_raised(
        procs, request, site, server):
    p, port = serve(procs, request, server, site,
                    ("alarm-segfault", "lg"), ("alarm-msg-size", "20"))
    support.http10_get(port, "/crash")
    support.wait_until(lambda: "Respawned uWSGI worker 1" in p.output(),
                       what="the worker's respawn")
    stop(p, server)
    assert "got Segmentation Fault" in p.output()
    assert alarms(p) == []


@pytest.mark.parametrize("server", SERVERS)
def test_alarm_cheap_cuts_the_line_to_alarm_msg_size(procs, request, site,
                                                     server):
    p, port = serve(procs, request, server, site,
                    ("log-alarm", "lg ALERT"), ("alarm-cheap", "1"),
                    ("alarm-msg-size", "10"))
    support.http10_get(port, "/")
    support.wait_until(lambda: alarms(p), what="the alarm")
    stop(p, server)
    assert alarms(p)[0] == "SAID ALERTxxxxx"


@pytest.mark.parametrize("value, message", [
    ("lg 7", "invalid alarm-fd syntax: lg 7 (write it ALARM FD[:SIZE] "
             "MESSAGE)"),
    ("lg x:2 m", "invalid alarm-fd syntax: lg x:2 m (FD and SIZE are "
                 "numbers)"),
    ("lg 987 m", "fd 987 is not open"),
    ("lg 0 m", "fd 0 cannot be watched for reading"),
    ("nobody 0 m", "unable to find alarm \"nobody\"")])
def test_an_alarm_fd_ugu_cannot_watch_is_refused(site, value, message):
    """fd 0 is /dev/null here, which uWSGI's epoll refuses to watch."""
    done = subprocess.run(
        [*support.UGU, "--http-socket", "127.0.0.1:0", "--alarm",
         "lg log:x", "--alarm-fd", value], cwd=site, timeout=30,
        capture_output=True, text=True, stdin=subprocess.DEVNULL)
    assert done.returncode == 1
    assert "option 'alarm-fd'" in done.stderr
    assert message in done.stderr
