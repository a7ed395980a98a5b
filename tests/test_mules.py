"""Mules: processes beside the workers that an app's requests hand work
to with uwsgi.mule_msg(), each test run on ugu and on the real uWSGI
with the same INI file."""

import os
import re
import signal
import textwrap

import pytest

from tests.support import get_json as get
from tests.support import free_port, wait_for_port, wait_until, write_ini

APP = textwrap.dedent('''\
    import json
    import os

    import uwsgi

    if os.environ.get("HOOK"):
        def hook(message):
            with open("hooked.txt", "a") as f:
                f.write(repr(message) + "\\n")

        uwsgi.mule_msg_hook = hook


    def attempt(call, *args):
        try:
            return repr(call(*args))
        except Exception as e:
            return repr(e)


    def application(environ, start_response):
        path = environ["PATH_INFO"]
        if path == "/first":
            found = [uwsgi.mule_msg(b"0123456789abcdef", 1)]
        elif path == "/rest":
            found = [uwsgi.mule_msg("h\\u00e9llo", 1),
                     uwsgi.mule_msg(b"to the farm", b"f1"),
                     uwsgi.mule_msg(b"y" * 70000, 1),
                     uwsgi.farm_msg("f1", b"by farm_msg"),
                     uwsgi.mule_msg(b"to the bare one", 2),
                     uwsgi.mule_id(), uwsgi.in_farm()]
        elif path == "/errors":
            found = [attempt(uwsgi.mule_get_msg),
                     attempt(uwsgi.farm_get_msg),
                     attempt(uwsgi.mule_msg, b"x", "f1"),
                     attempt(uwsgi.mule_msg, b"x", b"nope"),
                     attempt(uwsgi.mule_msg, b"x", 1.5),
                     attempt(uwsgi.mule_msg, bytearray(b"x")),
                     attempt(uwsgi.mule_msg, memoryview(b"x")),
                     attempt(uwsgi.mule_msg, 7),
                     attempt(uwsgi.mule_msg, b"x", 9),
                     attempt(uwsgi.mule_msg, b"z" * 300000, 1)]
        elif path == "/fill":
            sent = 0
            while sent < 10000 and uwsgi.mule_msg(b"f" * 1000, 1):
                sent += 1
            found = [sent]
        else:
            found = [attempt(uwsgi.mule_msg, b"x")]
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(found).encode()]
''')

MULE = textwrap.dedent('''\
    import uwsgi


    def note(value):
        with open("received.txt", "a") as f:
            f.write(repr(value) + "\\n")


    note([uwsgi.mule_id(), uwsgi.in_farm(), uwsgi.in_farm("f1"),
          uwsgi.in_farm("f2")])
    note(uwsgi.mule_get_msg(buffer_size=10))
    note(uwsgi.mule_get_msg(timeout=1))
    while True:
        message = uwsgi.mule_get_msg()
        note(message if len(message) < 100 else len(message))
''')

SLEEPER = textwrap.dedent('''\
    import signal
    import time

    if open("ignore-hup").read():
        signal.signal(signal.SIGHUP, signal.SIG_IGN)
    with open("sleeping.txt", "a") as f:
        f.write("sleeping\\n")
    while True:
        time.sleep(60)
''')


@pytest.fixture(params=["ugu", "uwsgi"])
def server(request):
    return request.param


def start(start_server, tmp_path, server, *pairs):
    """The app on an http-socket of its own with `pairs` more options;
    (process, port)."""
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "mule.py").write_text(MULE)
    (tmp_path / "sleeper.py").write_text(SLEEPER)
    if not (tmp_path / "ignore-hup").exists():
        (tmp_path / "ignore-hup").write_text("")
    port = free_port()
    ini = write_ini(tmp_path / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"), ("master", "true"),
        ("processes", "1"), ("wsgi-file", "app.py"), *pairs])
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path)
    wait_for_port(port)
    return p, port


def received(tmp_path, name="received.txt"):
    path = tmp_path / name
    return path.read_text().splitlines() if path.exists() else []


def wait_for_lines(tmp_path, count, name="received.txt"):
    wait_until(lambda: len(received(tmp_path, name)) >= count)
    return received(tmp_path, name)


def test_a_request_hands_work_to_mules(start_server, tmp_path, server):
    """A script mule gets what a worker sends it, its farm's and its
    share of farm_msg, as bytes, cut to the buffer it reads with, b""
    when its wait times out; a bare mule hands its messages to the
    app's mule_msg_hook."""
    p, port = start(start_server, tmp_path, server, ("mule", "mule.py"),
                    ("mule", ""), ("farm", "f1:1"), ("env", "HOOK=1"))
    p.wait_for_log(r"created farm 1 name: f1 mules:1\n")
    p.wait_for_log(r"spawned uWSGI worker 1 \(pid: \d+, cores: 1\)\n"
                   r"(?:.*\n)*?spawned uWSGI mule 1 \(pid: \d+\)\n"
                   r"(?:.*\n)*?spawned uWSGI mule 2 \(pid: \d+\)\n")
    assert wait_for_lines(tmp_path, 1) == ["[1, True, True, None]"]
    assert get(port, "/first") == [True]
    assert wait_for_lines(tmp_path, 3)[1:] == ["b'0123456789'", "b''"]
    assert get(port, "/rest") == [True, True, True, None, True, 0, None]
    # In the order the mule polls its queues: its own first.
    assert sorted(wait_for_lines(tmp_path, 7)[3:]) == sorted([
        "b'h\\xc3\\xa9llo'", "b'to the farm'", "65536", "b'by farm_msg'"])
    assert wait_for_lines(tmp_path, 1, "hooked.txt") == [
        "b'to the bare one'"]


def test_what_mule_msg_refuses(start_server, tmp_path, server):
    """Types, ids and sizes as uWSGI's module takes or refuses them,
    with its log lines; a bare mule without a hook says what it got."""
    p, port = start(start_server, tmp_path, server, ("mule", "mule.py"),
                    ("mules", "1"), ("farm", "f1:1,2"))
    p.wait_for_log(r"created farm 1 name: f1 mules:1,2\n")
    p.wait_for_log(r"spawned uWSGI mule 2 \(pid: \d+\)")
    assert get(port, "/errors") == [
        "ValueError('you can receive mule messages only in a mule !!!')",
        "ValueError('you can receive farm messages only in a mule !!!')",
        "ValueError('invalid mule')", "ValueError('unknown farm')",
        "ValueError('invalid mule')",
        "TypeError('mule_msg() argument 1 must be read-only bytes-like "
        "object, not bytearray')",
        "TypeError('mule_msg() argument 1 must be read-only bytes-like "
        "object, not memoryview')",
        "TypeError(\"a bytes-like object is required, not 'int'\")",
        "False", "False"]
    p.wait_for_log(r"mule_send_msg\(\): Bad file descriptor \[core/mule\.c "
                   r"line 28\]\n(?:.*\n)*?mule_send_msg\(\): Message too "
                   r"long \[core/mule\.c line 28\]\n")


def test_a_bare_mule_says_what_it_got(start_server, tmp_path, server):
    p, port = start(start_server, tmp_path, server, ("mules", "1"))
    p.wait_for_log(r"spawned uWSGI mule 1 \(pid: \d+\)")
    assert get(port, "/") == ["True"]
    p.wait_for_log(r"\*\*\* mule 1 received a 1 bytes message \*\*\*\n")


def test_a_full_queue_refuses(start_server, tmp_path, server):
    """mule-msg-size sizes the queue of a mule that does not read: the
    send that does not fit returns False, said with the buffer's size."""
    p, port = start(start_server, tmp_path, server, ("mule", "sleeper.py"),
                    ("mule-msg-size", "4096"))
    p.wait_for_log(r"spawned uWSGI mule 1 \(pid: \d+\)")
    sent = get(port, "/fill")[0]
    assert 0 < sent < 10000
    found = p.wait_for_log(r"\*\*\* MULE MSG QUEUE IS FULL: buffer size "
                           r"(\d+) bytes \(you can tune it with "
                           r"--mule-msg-size\) \*\*\*\n")
    # What the kernel makes of 4096 (it doubles it), and the messages
    # that then fit: the same for both servers on this machine.
    assert (int(found[1]), sent) == _full_queue_facts(tmp_path)


def _full_queue_facts(tmp_path):
    """A SEQPACKET pair as uWSGI makes it, filled as /fill fills it."""
    import socket
    a, b = socket.socketpair(socket.AF_UNIX, socket.SOCK_SEQPACKET)
    try:
        for end in (a, b):
            end.setblocking(False)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
            end.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
        sent = 0
        try:
            while sent < 10000:
                a.send(b"f" * 1000)
                sent += 1
        except BlockingIOError:
            pass
        return a.getsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF), sent
    finally:
        a.close()
        b.close()


def mule_pid(p, mule_id, count=1):
    return int(p.wait_for_log(rf"spawned uWSGI mule {mule_id} \(pid: "
                              rf"(\d+)\)", count=count)[1])


def test_mules_respawn_reload_and_stop(start_server, tmp_path, server):
    """A mule killed is respawned, in uWSGI's lines, under its title; a
    reload stops and spawns the mules again, a shutdown stops them."""
    p, port = start(start_server, tmp_path, server, ("mule", "sleeper.py"),
                    ("auto-procname", "true"))
    first = mule_pid(p, 1)
    wait_until(lambda: _title(first) == "uWSGI mule 1")
    os.kill(first, signal.SIGKILL)
    p.wait_for_log(rf"OOOPS mule 1 \(pid: {first}\) crippled\.\.\.trying "
                   rf"respawn\.\.\.\n")
    second = mule_pid(p, 1, count=2)
    wait_until(lambda: _title(second) == "uWSGI mule 1")
    p.send_signal(signal.SIGHUP)
    p.wait_for_log(rf"\.\.\.gracefully killing workers\.\.\.\n(?:.*\n)*?"
                   rf"mule 1 \(pid: {second}\) annihilated\n(?:.*\n)*?"
                   rf"binary reloading uWSGI")
    third = mule_pid(p, 1, count=3)
    # Once the new worker serves (uWSGI's may miss a SIGINT before).
    assert get(port, "/") == ["True"]
    p.stop(signal.SIGINT)
    assert re.search(rf"SIGINT/SIGTERM received\.\.\.killing workers\.\.\."
                     rf"\n(?:.*\n)*?mule 1 \(pid: {third}\) annihilated\n"
                     rf"(?:.*\n)*?goodbye to uWSGI\.", p.output()), p.output()


def _title(pid):
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            return f.read().split(b"\0")[0].decode().strip()
    except OSError:
        return None


def test_a_mule_script_that_ends_is_respawned(start_server, tmp_path,
                                              server):
    """A script (FILE.py) or a callable (module:callable) that returns
    ends its mule, which the master respawns."""
    (tmp_path / "once.py").write_text(
        "import uwsgi\n"
        "with open('runs.txt', 'a') as f:\n"
        "    f.write(f'script in {uwsgi.mule_id()}\\n')\n")
    (tmp_path / "jobs.py").write_text(
        "import uwsgi\n"
        "def main():\n"
        "    with open('runs.txt', 'a') as f:\n"
        "        f.write(f'callable in {uwsgi.mule_id()}\\n')\n")
    p, _ = start(start_server, tmp_path, server, ("mule", "once.py"),
                 ("mule", "jobs:main"))
    for mule_id in (1, 2):
        first = mule_pid(p, mule_id)
        p.wait_for_log(rf"OOOPS mule {mule_id} \(pid: {first}\) crippled"
                       rf"\.\.\.trying respawn\.\.\.\n")
        mule_pid(p, mule_id, count=2)
    # Each ran twice: before and after its respawn.
    runs = wait_for_lines(tmp_path, 4, "runs.txt")
    assert sorted(set(runs)) == ["callable in 2", "script in 1"]


def test_a_mule_past_its_mercy_is_killed(start_server, tmp_path, server):
    """A mule that ignores the reload's SIGHUP is killed once
    mule-reload-mercy has passed."""
    (tmp_path / "ignore-hup").write_text("yes")
    p, port = start(start_server, tmp_path, server, ("mule", "sleeper.py"),
                    ("mule-reload-mercy", "1"))
    first = mule_pid(p, 1)
    wait_for_lines(tmp_path, 1, "sleeping.txt")
    # Served first: uWSGI's young worker can miss the reload's signal,
    # and its reload then waits out the workers' 60 s mercy.
    get(port, "/errors")
    p.send_signal(signal.SIGHUP)
    p.wait_for_log(rf"mule 1 \(pid: {first}\) is taking too much time to "
                   rf"die\.\.\.NO MERCY !!!\n(?:.*\n)*?mule 1 \(pid: "
                   rf"{first}\) annihilated\n")
    mule_pid(p, 1, count=2)


def test_a_farm_without_its_mules_stops_the_start(start_server, tmp_path,
                                                  server):
    for value, said in (("f1", r"invalid farm value \(f1\) must be in "
                                r"the form name:mule\[,muleN\]\."),
                        ("f1:1,3", r"invalid mule id: 3")):
        ini = write_ini(tmp_path / "app.ini", uwsgi=[
            ("http-socket", f"127.0.0.1:{free_port()}"), ("master", "true"),
            ("mules", "2"), ("farm", value)])
        p = start_server(server, ["--ini", str(ini)], cwd=tmp_path)
        assert p.wait() != 0
        assert re.search(said, p.output()), p.output()
