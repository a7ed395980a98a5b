"""Options of a worker's requests and ends, each run on ugu and on the
real uWSGI with the same app and clients: no-threads-wait,
check-interval, reload-on-fd and brutal-reload-on-fd."""

import http.client
import os
import signal
import textwrap
import threading
import time

import pytest

from tests import support

SERVERS = ["ugu", "uwsgi"]
SLOW_APP = textwrap.dedent('''
    import time

    def application(environ, start_response):
        print("app: started " + environ["PATH_INFO"], flush=True)
        # Core 0's request ends first, well before the other's.
        time.sleep(0.5 if environ.get("uwsgi.core", 0) == 0 else 3)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"done"]
''')


def serve(start_server, server, folder, app, *options):
    (folder / "app.py").write_text(app)
    port = support.free_port()
    p = start_server(server, ["--http-socket", f"127.0.0.1:{port}",
                              "--wsgi-file", "app.py", *options],
                     cwd=folder)
    support.wait_for_port(port)
    p.port = port
    return p


def get_in_background(port, path, answers):
    def get():
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        try:
            conn.request("GET", path)
            answers[path] = conn.getresponse().read()
        except (OSError, http.client.HTTPException) as e:
            answers[path] = e
        finally:
            conn.close()
    thread = threading.Thread(target=get)
    thread.start()
    return thread


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("no_wait", [False, True])
def test_no_threads_wait_cuts_the_other_threads_requests(
        tmp_path, start_server, server, no_wait):
    """A graceful reload while both threads serve a request: the worker
    waits for both, or under no-threads-wait for core 0's only, and the
    other's client is cut."""
    options = ["--master", "--threads", "2"]
    if no_wait:
        options.append("--no-threads-wait")
    p = serve(start_server, server, tmp_path, SLOW_APP, *options)
    p.wait_for_log(r"spawned uWSGI worker 1 ")
    answers = {}
    clients = [get_in_background(p.port, path, answers)
               for path in ("/a", "/b")]
    p.wait_for_log(r"app: started /a")
    p.wait_for_log(r"app: started /b")
    p.send_signal(signal.SIGHUP)
    for client in clients:
        client.join()
    done = [path for path, answer in answers.items() if answer == b"done"]
    assert len(done) == (1 if no_wait else 2), answers
    p.wait_for_log(r"spawned uWSGI worker 1 ", count=2)


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("interval, least, most", [
    (None, 0, 1.2), ("3", 1.5, 4)])
def test_check_interval_spaces_the_masters_checks(
        tmp_path, start_server, server, interval, least, most):
    """A file touched 0.3 s after the master's first wait began is seen
    at its first check: 1 s in by default, 3 s in with check-interval
    = 3 (nothing else wakes an idle master)."""
    trigger = tmp_path / "trigger"
    trigger.touch()
    # uWSGI compares whole seconds: the touch must change the second.
    os.utime(trigger, (1, 1))
    options = ["--master", "--touch-reload", str(trigger)]
    if interval:
        options += ["--check-interval", interval]
    p = serve(start_server, server, tmp_path, SLOW_APP, *options)
    p.wait_for_log(r"spawned uWSGI worker 1 ")
    time.sleep(0.3)
    os.utime(trigger)
    touched = time.monotonic()
    p.wait_for_log(r"\*\*\* .*trigger has been touched\.\.\. grace them "
                   r"all !!! \*\*\*")
    assert least < time.monotonic() - touched < most
    p.wait_for_log(r"spawned uWSGI worker 1 ", count=2)


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("option, value, said, how", [
    ("--reload-on-fd", "0:2 poked", r"fd 0 ready: poked", "gracefully"),
    ("--brutal-reload-on-fd", "0", r"fd 0 ready !!!", "brutally")])
def test_a_readable_descriptor_reloads_the_instance(
        tmp_path, start_server, server, option, value, said, how):
    """Its bytes read (SIZE at a time) and said; one reload for what
    came at once, however many reads it takes.  (stdin, kept open by
    honour-stdin, is the descriptor the test can pass.)"""
    read_end, write_end = os.pipe()
    try:
        (tmp_path / "app.py").write_text(SLOW_APP)
        port = support.free_port()
        p = start_server(server, ["--http-socket", f"127.0.0.1:{port}",
                                  "--wsgi-file", "app.py", "--master",
                                  "--honour-stdin", option, value],
                         cwd=tmp_path, stdin=read_end)
        support.wait_for_port(port)
        kind = "graceful" if how == "gracefully" else "brutal"
        size = 2 if ":2" in value else 1
        p.wait_for_log(rf"added {kind} reload monitor for fd 0 \(read "
                       rf"size: {size}\)")
        os.write(write_end, b"abcd")
        date = r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}"
        p.wait_for_log(rf"{date} - \*\*\* {said} \*\*\*\n"
                       rf"\.\.\.{how} killing workers\.\.\.")
        if server == "uwsgi":
            # uWSGI's respawn after this re-exec came at times only after
            # 20 s on a loaded machine: its start, said above, is what
            # ugu is held to.
            return
        p.wait_for_log(r"spawned uWSGI worker 1 ", count=2)
        p.wait_for_log(r"reload monitor for fd 0", count=2)
        log = p.output()
        assert log.count("binary reloading uWSGI") == 1
        assert log.count(said) == 4 // size
    finally:
        os.close(read_end)
        os.close(write_end)


def test_a_descriptor_at_its_end_is_no_longer_watched(tmp_path, procs):
    """uWSGI 2.0 finds it ready for ever, reloading again and again
    (README's differences); ugu says so once and reloads nothing."""
    read_end, write_end = os.pipe()
    try:
        (tmp_path / "app.py").write_text(SLOW_APP)
        port = support.free_port()
        p = procs.ugu("--http-socket", f"127.0.0.1:{port}", "--wsgi-file",
                      "app.py", "--master", "--honour-stdin",
                      "--reload-on-fd", "0", cwd=tmp_path, stdin=read_end)
        support.wait_for_port(port)
        p.wait_for_log(r"added graceful reload monitor for fd 0")
        os.close(write_end)
        write_end = None
        p.wait_for_log(r"\[reload-on-fd\] fd 0 ended: no longer watched")
        assert support.get_body(port, "/") == b"done", p.output()
        assert "killing workers" not in p.output()
    finally:
        os.close(read_end)
        if write_end is not None:
            os.close(write_end)


def test_a_descriptor_not_open_is_refused(tmp_path, procs):
    p = procs.ugu("--http-socket", f"127.0.0.1:{support.free_port()}",
                  "--master", "--brutal-reload-on-fd", "57:4 x",
                  cwd=tmp_path)
    assert p.wait() == 1
    p.wait_for_log(r"option 'brutal-reload-on-fd': descriptor 57 is not "
                   r"open \(Bad file descriptor\): start ugu with it open")


STUBBORN_MULE = textwrap.dedent('''
    import signal, uwsgi
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    print("mule up", flush=True)
    while True:
        uwsgi.mule_get_msg()
''')


@pytest.mark.parametrize("server", SERVERS)
def test_touch_mules_reload_respawns_the_mules(tmp_path, start_server,
                                               server):
    """SIGHUP for each mule, each respawned unsaid; one that ignores it
    is killed past mule-reload-mercy."""
    (tmp_path / "mule.py").write_text("import uwsgi\nprint('mule up', "
                                      "flush=True)\nwhile True:\n"
                                      "    uwsgi.mule_get_msg()\n")
    (tmp_path / "stubborn.py").write_text(STUBBORN_MULE)
    trigger = tmp_path / "trigger"
    trigger.touch()
    os.utime(trigger, (1, 1))
    p = serve(start_server, server, tmp_path, SLOW_APP, "--master",
              "--mule=mule.py", "--mule=stubborn.py",
              "--mule-reload-mercy", "1", "--touch-mules-reload",
              str(trigger))
    p.wait_for_log(r"mule up", count=2)
    # uWSGI's master reads the file's time at its first check, a
    # second into its loop: a touch before it would go unseen.
    time.sleep(1.5)
    os.utime(trigger)
    p.wait_for_log(r"\*\*\* .*trigger has been touched\.\.\. mules reload "
                   r"!!! \*\*\*")
    p.wait_for_log(r"spawned uWSGI mule 1 ", count=2)
    p.wait_for_log(r"mule 2 \(pid: \d+\) is taking too much time to "
                   r"die\.\.\.NO MERCY !!!")
    p.wait_for_log(r"spawned uWSGI mule 2 ", count=2)
    p.wait_for_log(r"mule up", count=4)
    assert "OOOPS" not in p.output()


@pytest.mark.parametrize("server", SERVERS)
def test_touch_spoolers_reload_kills_and_respawns_the_spooler(
        tmp_path, start_server, server):
    """uWSGI's spoolers ignore the SIGHUP; its mercy for them is none, so
    the next check kills the spooler, and it is respawned."""
    (tmp_path / "spool").mkdir()
    trigger = tmp_path / "trigger"
    trigger.touch()
    os.utime(trigger, (1, 1))
    p = serve(start_server, server, tmp_path, SLOW_APP, "--master",
              "--spooler", str(tmp_path / "spool"),
              "--touch-spoolers-reload", str(trigger))
    p.wait_for_log(r"spawned the uWSGI spooler on dir ")
    time.sleep(1.5)
    os.utime(trigger)
    p.wait_for_log(r"\*\*\* .*trigger has been touched\.\.\. spoolers "
                   r"reload !!! \*\*\*")
    p.wait_for_log(r" - spooler 1 \(pid: \d+\) is taking too much time to "
                   r"die\.\.\.NO MERCY !!!")
    p.wait_for_log(r"OOOPS the spooler is no more\.\.\.trying respawn\.\.\.")
    p.wait_for_log(r"spawned the uWSGI spooler on dir ", count=2)


@pytest.mark.parametrize("option, why", [
    ("propagate-touch", "an app's own touch-reload file"),
    ("backtrace-depth=5", "the C backtrace uWSGI logs")])
def test_the_options_ugu_leaves_out_say_why(option, why):
    from ugu.options.errors import ConfigError
    from ugu.options.resolve import resolve
    with pytest.raises(ConfigError) as info:
        resolve([f"--{option}"], {})
    assert why in str(info.value)


def test_a_read_size_the_memory_cannot_hold_reloads_all_the_same(
        tmp_path, procs):
    """uWSGI's master allocates SIZE at once and dies of it; ugu's died
    of Python's MemoryError: it now asks for no more than a pipe holds,
    and reloads."""
    read_end, write_end = os.pipe()
    try:
        (tmp_path / "app.py").write_text(SLOW_APP)
        port = support.free_port()
        p = procs.ugu("--http-socket", f"127.0.0.1:{port}", "--wsgi-file",
                      "app.py", "--master", "--honour-stdin",
                      "--reload-on-fd", "0:99999999999999 poked",
                      cwd=tmp_path, stdin=read_end)
        support.wait_for_port(port)
        p.wait_for_log(r"added graceful reload monitor for fd 0 \(read "
                       r"size: 99999999999999\)")
        os.write(write_end, b"abcd")
        p.wait_for_log(r"\*\*\* fd 0 ready: poked \*\*\*")
        p.wait_for_log(r"spawned uWSGI worker 1 ", count=2)
        assert "Traceback" not in p.output()
        assert support.get_body(port, "/") == b"done"
    finally:
        os.close(read_end)
        os.close(write_end)
