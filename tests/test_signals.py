"""uWSGI signals: handlers an app registers for numbers that timers,
crons, touched files and uwsgi.signal() raise, run by the process their
target names; each test run on ugu and on the real uWSGI with the same
INI file, and the same log lines looked for in both."""

import json
import os
import textwrap
import threading

import pytest

from tests.support import get_json as get
from tests.support import free_port, wait_for_port, wait_until, write_ini
from tests.test_stats import read_stats

APP = textwrap.dedent('''\
    import json
    import os
    import time

    import uwsgi

    # A spooler works in its own folder.
    MARKS = os.path.join(os.path.dirname(os.path.abspath(__file__)),
                         "marks.txt")


    def mark(signum):
        with open(MARKS, "a") as f:
            f.write(f"{signum} {uwsgi.worker_id()} {uwsgi.mule_id()}\\n")


    def spooler_mark(signum):
        with open(MARKS, "a") as f:
            f.write(f"{signum} spooler {os.getpid() in uwsgi.spooler_pids()}"
                    f"\\n")
        uwsgi.signal(33)


    def boom(signum):
        raise RuntimeError(f"boom {signum}")


    def attempt(call, *args):
        try:
            return repr(call(*args))
        except Exception as e:
            return repr(e)


    TARGETS = {10: "", 11: "workers", 12: "worker2", 13: "mule",
               14: "mules", 15: "mule1", 16: "active-workers",
               17: "worker9", 18: "bogus", 19: "mule7", 22: "farm_f1",
               23: "farm1", 24: "farm_nope", 25: "farm2"}
    AT_IMPORT = []
    if os.environ.get("TARGETS"):
        for signum, target in TARGETS.items():
            AT_IMPORT.append(attempt(uwsgi.register_signal, signum, target,
                                     mark))
        AT_IMPORT.append(attempt(uwsgi.register_signal, 20, "worker", boom))
        AT_IMPORT.append(attempt(uwsgi.register_signal, 10, "", mark))
        AT_IMPORT.append(attempt(uwsgi.register_signal, 21, "x" * 64, mark))
        AT_IMPORT += [attempt(uwsgi.signal_registered, 10),
                      attempt(uwsgi.signal_registered, 99),
                      attempt(uwsgi.signal, 10),
                      attempt(uwsgi.signal, "10")]
    if os.environ.get("TIMERS"):
        for signum in (97, 98, 99):
            uwsgi.register_signal(signum, "worker", mark)
        AT_IMPORT += [attempt(uwsgi.add_timer, 97, 1),
                      attempt(uwsgi.add_rb_timer, 99, 1, 2),
                      attempt(uwsgi.add_cron, 98, -1, -1, -1, -1, -1)]
    if os.environ.get("MARK"):
        for signum in map(int, os.environ["MARK"].split()):
            uwsgi.register_signal(signum, "worker", mark)
    if os.environ.get("SPOOLER"):
        uwsgi.register_signal(30, "spooler", spooler_mark)
        uwsgi.register_signal(31, "spooler", boom)
        uwsgi.register_signal(33, "workers", mark)
    if os.environ.get("SLOW"):
        uwsgi.register_signal(3, os.environ["SLOW"],
                              lambda signum: time.sleep(30))
    if os.environ.get("MONITOR"):
        AT_IMPORT += [attempt(uwsgi.add_file_monitor, 4,
                              os.environ["MONITOR"]),
                      attempt(uwsgi.add_file_monitor, 4, "x" * 300)]
    if os.environ.get("ALONE"):
        AT_IMPORT += [attempt(uwsgi.register_signal, 10, "", mark),
                      attempt(uwsgi.add_timer, 10, 1),
                      attempt(uwsgi.add_rb_timer, 10, 1),
                      attempt(uwsgi.add_cron, 10, -1, -1, -1, -1, -1),
                      attempt(uwsgi.signal, 10),
                      attempt(uwsgi.signal_registered, 10)]


    def application(environ, start_response):
        path = environ["PATH_INFO"]
        found = AT_IMPORT
        if path.startswith("/signal/"):
            found = uwsgi.signal(int(path[8:]))
        elif path == "/register":
            found = [attempt(uwsgi.register_signal, 40, "workers", mark),
                     uwsgi.signal_registered(40), uwsgi.signal(40)]
        elif path == "/workers":
            found = [worker["signals"] for worker in uwsgi.workers()]
        elif path == "/wait":
            uwsgi.signal(8)
            found = [repr(uwsgi.signal_wait(8)), uwsgi.signal_received()]
        elif path == "/slow":
            uwsgi.signal(10)
            with open("marks.txt", "a") as f:
                f.write("slow started\\n")
            while not os.path.exists("go"):
                os.sched_yield()
            with open("marks.txt", "a") as f:
                f.write("slow ended\\n")
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(found).encode()]
''')


@pytest.fixture(params=["ugu", "uwsgi"])
def server(request):
    return request.param


def start(start_server, tmp_path, server, *pairs, master=True):
    """The app on an http-socket of its own with `pairs` more options;
    (process, port)."""
    (tmp_path / "app.py").write_text(APP)
    port = free_port()
    ini = write_ini(tmp_path / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"),
        ("master", "true" if master else "false"),
        ("wsgi-file", "app.py"), *pairs])
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path)
    wait_for_port(port)
    return p, port


def marks(tmp_path):
    path = tmp_path / "marks.txt"
    return path.read_text().splitlines() if path.exists() else []


def wait_for_marks(tmp_path, wanted):
    """Wait until the handlers have written every line of `wanted` (as
    many times as it holds them); the lines written."""
    def done():
        found = marks(tmp_path)
        return all(found.count(line) >= wanted.count(line)
                   for line in wanted)
    wait_until(done)
    return marks(tmp_path)


def test_timers_and_crons_raise_signals(start_server, tmp_path, server):
    """A timer fires every second, an rb-timer as many times as told, a
    cron of wildcards at once (then once a minute); each in a worker,
    the cron said as uWSGI says it."""
    p, port = start(start_server, tmp_path, server, ("processes", "1"),
                    ("env", "TIMERS=1"))
    assert get(port, "/") == ["None", "None", "True"]
    p.wait_for_log(r"\[uwsgi-signal\] signum 99 registered \(wid: 0 "
                   r"modifier1: 0 target: worker\)\n")
    p.wait_for_log(r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} - "
                   r"\[uwsgi-cron\] routing signal 98\n")
    wait_for_marks(tmp_path, ["98 1 0", "97 1 0", "97 1 0", "99 1 0",
                              "99 1 0"])


def test_each_target_reaches_its_processes(start_server, tmp_path, server):
    """uwsgi.signal() from a request: the master routes the number to
    the processes its registration named."""
    p, port = start(start_server, tmp_path, server, ("processes", "2"),
                    ("mules", "2"), ("farm", "f1:2"), ("env", "TARGETS=1"))
    p.wait_for_log(r"spawned uWSGI mule 2 \(pid: \d+\)")
    for signum in (*range(10, 17), 22, 23):
        assert get(port, f"/signal/{signum}") is None
    found = wait_for_marks(tmp_path, [
        "11 1 0", "11 2 0", "12 2 0", "14 0 1", "14 0 2", "15 0 1",
        "16 1 0", "16 2 0", "22 0 2", "23 0 2"])
    assert len([m for m in found if m.startswith("10 ")]) == 1
    assert [m for m in found if m.startswith("13 ")] in (
        ["13 0 1"], ["13 0 2"])


def test_what_uwsgi_says_of_signals(start_server, tmp_path, server):
    """Registration lines and refusals, uwsgi.signal() before the master
    runs, and numbers that cannot go where their target says, in
    uWSGI's words, with what the module answers."""
    p, port = start(start_server, tmp_path, server, ("processes", "1"),
                    ("mules", "1"), ("farm", "f1:1"), ("env", "TARGETS=1"))
    assert get(port, "/") == ["None"] * 15 + [
        "ValueError('unable to register signal')",
        "ValueError('unable to register signal')", "True", "None", "None",
        "TypeError(\"'str' object cannot be interpreted as an integer\")"]
    p.wait_for_log(
        r"\[uwsgi-signal\] signum 10 registered \(wid: 0 modifier1: 0 "
        r"target: default, any worker\)\n(?:.*\n)*?"
        r"\[uwsgi-signal\] signum 11 registered \(wid: 0 modifier1: 0 "
        r"target: workers\)\n(?:.*\n)*?"
        r"\[uwsgi-signal\] you cannot re-register a signal as the master "
        r"!!!\n(?:.*\n)*?"
        r"uwsgi_signal_send\(\): Bad file descriptor \[core/signal\.c line "
        r"306\]\n")
    for signum in (17, 18, 19, 20, 24, 25, 99):
        assert get(port, f"/signal/{signum}") is None
    p.wait_for_log(r"invalid signal target: worker9\n(?:.*\n)*?"
                   r"could not deliver signal 17 to worker 9\n")
    p.wait_for_log(r"\^\^\^ UNSUPPORTED SIGNAL TARGET: bogus \^\^\^\n")
    p.wait_for_log(r"invalid signal target: mule7\n")
    p.wait_for_log(r"unknown farm: nope\n(?:.*\n)*?"
                   r"invalid signal target: farm2\n")
    p.wait_for_log(r"RuntimeError: boom 20\n(?:.*\n)*?.* - error managing "
                   r"signal 20 on worker 1\n")
    p.wait_for_log(r"\d{4} - error managing signal 99 on worker 1\n")


def test_without_a_master_there_are_no_signals(start_server, tmp_path,
                                                 server):
    p, port = start(start_server, tmp_path, server, ("env", "ALONE=1"),
                    master=False)
    assert get(port, "/") == [
        "ValueError('unable to register signal')",
        "ValueError('unable to add timer')",
        "ValueError('unable to add rb_timer')",
        "ValueError('unable to add cron')", "None", "None"]
    p.wait_for_log(r"you cannot register signals without a master\n"
                   r"(?:.*\n)*?uwsgi_signal_send\(\): Bad file descriptor")


def test_a_worker_registers_at_run_time(start_server, tmp_path, server):
    """A handler registered in a request is that worker's, said with its
    wid; the number, unknown to the master, goes to any worker."""
    p, port = start(start_server, tmp_path, server, ("processes", "1"))
    assert get(port, "/register") == ["None", True, None]
    p.wait_for_log(r"\[uwsgi-signal\] signum 40 registered \(wid: 1 "
                   r"modifier1: 0 target: workers\)\n")
    wait_for_marks(tmp_path, ["40 1 0"])


def test_a_handler_waits_for_the_request(start_server, tmp_path, server):
    """A worker of one core runs a handler between requests: the one the
    request raised runs once the request has ended."""
    p, port = start(start_server, tmp_path, server, ("processes", "1"),
                    ("env", "MARK=10"), ("stats", tmp_path / "stats.sock"))
    answer = []
    request = threading.Thread(target=lambda: answer.append(
        get(port, "/slow")))
    request.start()
    wait_for_marks(tmp_path, ["slow started"])
    (tmp_path / "go").write_text("")
    request.join(10)
    assert wait_for_marks(tmp_path, ["10 1 0"]) == [
        "slow started", "slow ended", "10 1 0"]
    # Counted in uwsgi.workers() and the stats, as uWSGI counts the
    # handlers run.
    assert get(port, "/workers") == [1]
    doc = json.loads(read_stats(str(tmp_path / "stats.sock")))
    assert [w["signals"] for w in doc["workers"]] == [1]
    assert doc["signal_queue"] == doc["workers"][0]["signal_queue"] == 0


def test_timer_options_and_touch_signal(start_server, tmp_path, server):
    """timer and rbtimer (and their signal-* names) in the INI file, and
    touch-signal raising its number when the file is touched."""
    touched = tmp_path / "touched"
    touched.write_text("")
    p, port = start(start_server, tmp_path, server, ("processes", "1"),
                    ("env", "MARK=5 6 7 8"), ("timer", "5 1"),
                    ("signal-rbtimer", "6 1"), ("signal-bufsize", "4096"),
                    ("touch-signal", f"{touched} 7"))
    wait_for_marks(tmp_path, ["5 1 0", "6 1 0"])
    later = touched.stat().st_mtime + 10
    os.utime(touched, (later, later))
    p.wait_for_log(r"\d{4} - \[uwsgi-touch-signal\] raising 7\n")
    wait_for_marks(tmp_path, ["7 1 0"])


def test_threads_and_gevent_run_handlers(procs, tmp_path):
    """A worker of several cores runs the handler on an idle one; a
    gevent worker in a greenlet of its loop."""
    (tmp_path / "app.py").write_text(APP)
    for mode, value in (("threads", "2"), ("gevent", "4")):
        port = free_port()
        p = procs.ugu("--http-socket", f"127.0.0.1:{port}", "--master",
                      f"--{mode}", value, "--wsgi-file", "app.py",
                      "--env", "MARK=30", cwd=tmp_path)
        wait_for_port(port)
        assert get(port, "/signal/30") is None
        wait_for_marks(tmp_path, ["30 1 0"])
        p.stop()
        (tmp_path / "marks.txt").unlink()


def test_signal_wait_runs_the_handler_in_the_request(start_server,
                                                     tmp_path, server):
    p, port = start(start_server, tmp_path, server, ("processes", "1"),
                    ("env", "MARK=8"))
    assert get(port, "/wait") == ["b''", 8]
    assert marks(tmp_path) == ["8 1 0"]


def test_harakiri_times_a_handler(start_server, tmp_path, server):
    """A worker's handler runs under harakiri, as a request does: the
    master kills a worker stuck in one, in harakiri's lines."""
    p, port = start(start_server, tmp_path, server, ("processes", "1"),
                    ("harakiri", "1"), ("env", "SLOW=worker"))
    assert get(port, "/signal/3") is None
    p.wait_for_log(r"\*\*\* HARAKIRI ON WORKER 1 \(pid: \d+, try: 1, "
                   r"graceful: yes\) \*\*\*\n(?:.*\n)*?"
                   r"DAMN ! worker 1 \(pid: \d+\) died, killed by signal 9 "
                   r":\( trying respawn \.\.\.\n")


def test_file_monitors_raise_signals(start_server, tmp_path, server):
    """add_file_monitor's file and fs-signal's directory, watched by the
    master through inotify, raise their signals when they change."""
    watched = tmp_path / "watched"
    watched.write_text("")
    folder = tmp_path / "folder"
    folder.mkdir()
    p, port = start(start_server, tmp_path, server, ("processes", "1"),
                    ("env", "MARK=4 5"), ("env", f"MONITOR={watched}"),
                    ("fs-signal", f"{folder} 5"), ("fs-signal", "bad"))
    assert get(port, "/") == ["None", "ValueError('unable to add file "
                                      "monitor')"]
    p.wait_for_log(r"uwsgi_add_file_monitor: invalid filename length\n")
    p.wait_for_log(rf'\[uwsgi-fsmon\] invalid syntax: "bad"\n(?:.*\n)*?'
                   rf'\[uwsgi-fsmon\] registered monitor for "{folder}"\n')

    def changed(path, line):
        # The master may not watch yet: changed until it has seen it.
        with open(path, "a") as f:
            f.write("x")
        return line in marks(tmp_path)
    wait_until(lambda: changed(watched, "4 1 0"))
    wait_until(lambda: changed(folder / "entry", "5 1 0"))
    p.wait_for_log(rf' - \[uwsgi-fsmon\] detected event on "{folder}"\n')


def test_mule_harakiri_times_a_mules_handler(start_server, tmp_path,
                                             server):
    p, port = start(start_server, tmp_path, server, ("processes", "1"),
                    ("mules", "1"), ("mule-harakiri", "1"),
                    ("env", "SLOW=mule1"))
    p.wait_for_log(r"spawned uWSGI mule 1 \(pid: \d+\)")
    assert get(port, "/signal/3") is None
    p.wait_for_log(r"\*\*\* HARAKIRI ON MULE 1 HANDLING SIGNAL 3 \(pid: "
                   r"\d+\) \*\*\*\n(?:.*\n)*?OOOPS mule 1 \(pid: \d+\) "
                   r"crippled\.\.\.trying respawn\.\.\.\n")


def test_a_spooler_runs_the_spoolers_handlers(start_server, tmp_path,
                                              server):
    """A signal for the "spooler" target reaches a spooler between its
    scans; what its handler raises goes through the master; a failing
    handler is said with the spooler's pid."""
    p, port = start(start_server, tmp_path, server, ("processes", "1"),
                    ("spooler", str(tmp_path / "spool")),
                    ("env", "SPOOLER=1"))
    p.wait_for_log(r"\[uwsgi-signal\] signum 30 registered \(wid: 0 "
                   r"modifier1: 0 target: spooler\)\n")
    pid = p.wait_for_log(r"spawned the uWSGI spooler on dir .* with pid "
                         r"(\d+)\n").group(1)
    assert get(port, "/signal/30") is None
    wait_for_marks(tmp_path, ["30 spooler True", "33 1 0"])
    assert get(port, "/signal/31") is None
    p.wait_for_log(rf"RuntimeError: boom 31\n(?:.*\n)*?.* - error managing "
                   rf"signal 31 on spooler {pid}\n")


def test_a_signal_for_no_spooler(start_server, tmp_path, server):
    p, port = start(start_server, tmp_path, server, ("processes", "1"),
                    ("env", "MARK=1"), ("env", "SPOOLER=1"))
    assert get(port, "/signal/30") is None
    p.wait_for_log(r"uwsgi_signal_send\(\): Bad file descriptor \[core/"
                   r"signal\.c line 306\]\n(?:.*\n)*?"
                   r"could not deliver signal 30 to the spooler\n")


def test_spooler_harakiri_times_a_spoolers_handler(start_server, tmp_path,
                                                   server):
    p, port = start(start_server, tmp_path, server, ("processes", "1"),
                    ("spooler", str(tmp_path / "spool")),
                    ("spooler-harakiri", "1"), ("env", "SLOW=spooler"))
    pid = p.wait_for_log(r"spawned the uWSGI spooler on dir .* with pid "
                         r"(\d+)\n").group(1)
    assert get(port, "/signal/3") is None
    p.wait_for_log(rf"\*\*\* HARAKIRI ON THE SPOOLER \(pid: {pid}\) "
                   rf"\*\*\*\n")
