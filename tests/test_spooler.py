"""The spooler: tasks an app spools in a request, run by spooler
processes beside the workers, each test run on ugu and on the real
uWSGI with the same INI file; and task files one writes and the other
runs."""

import json
import os
import re
import signal
import socket
import textwrap
from urllib.parse import quote

import pytest

from ugu.options.resolve import resolve
from tests.support import get_json as get
from tests.support import (free_port, read_to_eof, wait_for_port,
                           wait_until, write_ini)

APP = textwrap.dedent('''\
    import json
    import os
    from urllib.parse import parse_qsl

    import uwsgi

    HERE = os.path.dirname(os.path.abspath(__file__))


    def note(name, value):
        with open(os.path.join(HERE, name), "a") as f:
            f.write(json.dumps(value) + "\\n")


    def attempts(task):
        """How many times this task has run, this time included."""
        note(f"runs-{task[b'id'].decode()}", 1)
        with open(os.path.join(HERE, f"runs-{task[b'id'].decode()}")) as f:
            return len(f.readlines())


    def task(args):
        note("done.txt", {
            "items": [[repr(k), repr(v)] for k, v in args.items()],
            "spooler": uwsgi.i_am_the_spooler(), "pid": os.getpid(),
            "cwd": os.getcwd(), "lock": attempt(uwsgi.lock)})
        act = args.get(b"act")
        if act == b"retry-once" and attempts(args) == 1:
            return uwsgi.SPOOL_RETRY
        if act == b"raise-once" and attempts(args) == 1:
            raise RuntimeError("not this time")
        if act == b"ignore":
            return uwsgi.SPOOL_IGNORE
        if act == b"none":
            return None if attempts(args) == 1 else uwsgi.SPOOL_OK
        if act == b"sleep":
            import time
            time.sleep(30)
        return uwsgi.SPOOL_OK


    if not os.environ.get("NO_FUNCTION"):
        uwsgi.spooler = task


    def attempt(call, *args):
        try:
            return repr(call(*args))
        except Exception as e:
            return repr(e)


    def answer(environ):
        path = environ["PATH_INFO"]
        query = dict(parse_qsl(environ["QUERY_STRING"]))
        if path == "/spool":
            args = {key.encode(): value.encode()
                    for key, value in query.items()}
            args[b"body"] = b"the body"
            found = uwsgi.spool(args)
            return {"path": found.decode(), "type": type(found).__name__,
                    "left": sorted(map(repr, args))}
        if path == "/info":
            return {"pid": uwsgi.spooler_pid(), "pids": uwsgi.spooler_pids(),
                    "spoolers": [d.decode() for d in uwsgi.spoolers],
                    "me": uwsgi.i_am_the_spooler(),
                    "jobs": [j.decode() for j in uwsgi.spooler_jobs()],
                    "values": [uwsgi.SPOOL_OK, uwsgi.SPOOL_RETRY,
                               uwsgi.SPOOL_IGNORE,
                               uwsgi.send_to_spooler is not None,
                               uwsgi.set_spooler_frequency(1)]}
        if path == "/errors":
            return [attempt(uwsgi.spool, [(b"a", b"b")]),
                    attempt(uwsgi.spool),
                    attempt(uwsgi.spool, {"a": b"b"}),
                    attempt(uwsgi.spool, {b"a": "b"}),
                    attempt(uwsgi.spool, {b"a": 5}),
                    attempt(uwsgi.spool, {b"body": "text"}),
                    attempt(uwsgi.spool, {b"spooler": b"/no/such/dir"}),
                    attempt(uwsgi.set_spooler_frequency, "1"),
                    attempt(uwsgi.spooler_get_task, b"x"),
                    attempt(uwsgi.spooler_get_task, "/no/such/task")]
        if path == "/task":
            return [[repr(k), repr(v)]
                    for k, v in uwsgi.spooler_get_task(query["path"]).items()]
        return None


    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps(answer(environ)).encode()]
''')

TASK_NAME = r"uwsgi_spoolfile_on_[^_/]+_\d+_\d+_\d+_\d+_\d+"


@pytest.fixture(params=["ugu", "uwsgi"])
def server(request):
    return request.param


def start(start_server, tmp_path, server, *pairs, env=None):
    """The app on an http-socket of its own, one worker, a spooler on
    tmp_path/spool unless `pairs` give their own; (process, port)."""
    (tmp_path / "app.py").write_text(APP)
    port = free_port()
    if not any(key == "spooler" for key, _ in pairs):
        pairs = (("spooler", "spool"), *pairs)
    ini = write_ini(tmp_path / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"), ("master", "true"),
        ("processes", "1"), ("wsgi-file", "app.py"), *pairs])
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path, env=env)
    wait_for_port(port)
    return p, port


def notes(tmp_path, count, name="done.txt"):
    """The first `count` lines the spooler function noted, once there."""
    path = tmp_path / name

    def there():
        return path.exists() and \
            len(path.read_text().splitlines()) >= count
    wait_until(there)
    return [json.loads(line) for line in path.read_text().splitlines()]


def tasks_in(folder):
    return sorted(name for name in os.listdir(folder)
                  if name.startswith("uwsgi_spoolfile_on_"))


def test_a_request_spools_a_task_the_spooler_runs(start_server, tmp_path,
                                                  server):
    """The spooler is spawned before the worker; a spooled task's file is
    named as uWSGI names it, the spooler is woken at once, hands the
    app's function the task's dict (in the spooler's folder, where
    uwsgi.lock is refused) and removes the file on SPOOL_OK, each step
    logged in uWSGI's words."""
    p, port = start(start_server, tmp_path, server)
    folder = os.path.realpath(tmp_path / "spool")
    spooler_pid = int(p.wait_for_log(
        rf"spawned the uWSGI spooler on dir {re.escape(folder)} with pid "
        rf"(\d+)\n(?:.*\n)*?spawned uWSGI worker 1 ")[1])
    info = get(port, "/info")
    assert info == {"pid": spooler_pid, "pids": [spooler_pid],
                    "spoolers": [folder], "me": None, "jobs": [],
                    "values": [-2, -1, 0, True, True]}
    spooled = get(port, "/spool?act=ok&id=1")
    assert re.fullmatch(rf"{re.escape(folder)}/({TASK_NAME})",
                        spooled["path"])
    # The body is taken out of the caller's dict.
    assert spooled["left"] == ["b'act'", "b'id'"]
    name = os.path.basename(spooled["path"])
    [done] = notes(tmp_path, 1)
    assert done == {
        "items": [["'spooler_task_name'", repr(name.encode())],
                  ["b'act'", "b'ok'"], ["b'id'", "b'1'"],
                  ["'body'", "b'the body'"]],
        "spooler": True, "pid": spooler_pid, "cwd": folder,
        "lock": "ValueError('The spooler cannot lock/unlock resources')"}
    escaped = re.escape(name)
    here = rf"\[spooler {re.escape(folder)} pid: {spooler_pid}\]"
    p.wait_for_log(
        rf"\[spooler\] written 28 bytes to file {re.escape(folder)}/"
        rf"{escaped}\n(?:.*\n)*?{here} managing request {escaped} \.\.\.\n"
        rf"(?:.*\n)*?{here} done with task {escaped} after 0 seconds\n")
    # The file goes just after that line, as uWSGI's.
    wait_until(lambda: tasks_in(folder) == [], what="no task file")
    p.stop()
    p.wait_for_log(rf"SIGINT/SIGTERM received\.\.\.killing workers\.\.\.\n"
                   rf"(?:.*\n)*?killing the spooler with pid {spooler_pid}\n"
                   rf"(?:.*\n)*?goodbye to uWSGI\.")
    # uWSGI says so when it reaps the spooler before its end (mostly).
    if server == "ugu":
        p.wait_for_log(rf"spooler \(pid: {spooler_pid}\) annihilated\n")


def test_retry_ignore_and_errors_keep_the_task(start_server, tmp_path,
                                               server):
    """SPOOL_RETRY, an exception and an answer that is not an int leave
    the task for the next scan (spooler-frequency); SPOOL_IGNORE is
    uWSGI's "not mine", said as a missing function, and never done."""
    p, port = start(start_server, tmp_path, server,
                    ("spooler-frequency", "1"))
    for number, act in enumerate(("retry-once", "raise-once", "none",
                                  "ignore"), 1):
        get(port, f"/spool?act={act}&id={number}")
    folder = tmp_path / "spool"
    wait_until(lambda: len(tasks_in(folder)) == 1, timeout=15)
    runs = {number: len((tmp_path / f"runs-{number}").read_text().split())
            for number in (1, 2, 3)}
    assert runs == {1: 2, 2: 2, 3: 2}
    [left] = tasks_in(folder)
    assert [line for line in notes(tmp_path, 8)
            if line["items"][0][1] == repr(left.encode())][0]["items"][1] \
        == ["b'act'", "b'ignore'"]
    p.wait_for_log(r"unable to find the spooler function, have you loaded "
                   r"it into the spooler process \?\n")
    p.wait_for_log(r"Traceback \(most recent call last\):\n(?:.*\n)*?"
                   r"RuntimeError: not this time\n")


def test_what_spool_refuses(start_server, tmp_path, server):
    """As uWSGI's Python 3 module: a dict of bytes only, an unknown
    spooler said in the log; spooler_get_task reads a task file."""
    p, port = start(start_server, tmp_path, server)
    p.wait_for_log(r"spawned uWSGI worker 1 ")
    not_dict = "The argument of spooler callable must be a dictionary"
    only_bytes = "spooler callable dictionary must contains only bytes"
    assert get(port, "/errors") == [
        f"ValueError({not_dict!r})", f"ValueError({not_dict!r})",
        f"ValueError({only_bytes!r})", f"ValueError({only_bytes!r})",
        f"ValueError({only_bytes!r})", f"ValueError({only_bytes!r})",
        "ValueError('unable to spool job')",
        "TypeError(\"'str' object cannot be interpreted as an integer\")",
        "TypeError('spooler_get_task() argument 1 must be str, not "
        "bytes')", "None"]
    p.wait_for_log(r'\[uwsgi-spooler\] unable to find spooler '
                   r'"/no/such/dir"\n')


def test_several_folders_and_processes(start_server, tmp_path, server):
    """One spooler per folder and process, spawned in the order of the
    lines; `spooler=` sends a task to another folder's spoolers."""
    p, port = start(start_server, tmp_path, server, ("spooler", "one"),
                    ("spooler", "two"), ("spooler-processes", "2"))
    one, two = (os.path.realpath(tmp_path / name) for name in ("one", "two"))
    found = p.wait_for_log(
        "".join(rf"spawned the uWSGI spooler on dir {re.escape(folder)} "
                rf"with pid (\d+)\n(?:.*\n)*?"
                for folder in (one, one, two, two)))
    pids = [int(pid) for pid in found.groups()]
    info = get(port, "/info")
    assert (info["pid"], info["pids"], info["spoolers"]) == (
        pids[0], pids, [one, one, two, two])
    spooled = get(port, f"/spool?act=ok&id=1&spooler={quote(two)}")
    assert os.path.dirname(spooled["path"]) == two
    [done] = notes(tmp_path, 1)
    assert (done["pid"] in pids[2:], done["cwd"]) == (True, two), (done, pids)
    assert done["items"][3] == ["b'spooler'", repr(two.encode())]


def test_a_killed_spooler_is_respawned(start_server, tmp_path, server):
    """kill -9, and spooler-max-tasks: the master says so and spawns
    another, which runs the next tasks."""
    p, port = start(start_server, tmp_path, server,
                    ("spooler-max-tasks", "1"))
    folder = re.escape(os.path.realpath(tmp_path / "spool"))
    first = int(p.wait_for_log(rf"spawned the uWSGI spooler on dir {folder} "
                               rf"with pid (\d+)\n")[1])
    os.kill(first, signal.SIGKILL)
    again = rf"OOOPS the spooler is no more\.\.\.trying respawn\.\.\.\n" \
            rf"(?:.*\n)*?spawned the uWSGI spooler on dir {folder} with pid " \
            rf"(\d+)\n"
    second = int(p.wait_for_log(again)[1])
    wait_until(lambda: get(port, "/info")["pids"] == [second])
    get(port, "/spool?act=ok&id=1")
    assert notes(tmp_path, 1)[0]["pid"] == second
    p.wait_for_log(rf"\[spooler {folder} pid: {second}\] maximum number of "
                   rf"tasks reached \(1\) recycling \.\.\.\n")
    third = int(p.wait_for_log(again, count=2)[1])
    wait_until(lambda: get(port, "/info")["pids"] == [third])
    get(port, "/spool?act=ok&id=2")
    assert notes(tmp_path, 2)[1]["pid"] == third


def test_spooler_harakiri_kills_a_long_task(start_server, tmp_path, server):
    p, port = start(start_server, tmp_path, server,
                    ("spooler-harakiri", "1"))
    p.wait_for_log(r"spawned uWSGI worker 1 ")
    get(port, "/spool?act=sleep&id=1")
    pid = notes(tmp_path, 1)[0]["pid"]
    p.wait_for_log(rf"\*\*\* HARAKIRI ON THE SPOOLER \(pid: {pid}\) \*\*\*\n"
                   rf"(?:.*\n)*?OOOPS the spooler is no more\.\.\.trying "
                   rf"respawn\.\.\.\n", timeout=10)


@pytest.mark.parametrize("writer, runner", [("uwsgi", "ugu"),
                                            ("ugu", "uwsgi")])
def test_a_task_one_server_spools_the_other_runs(start_server, tmp_path,
                                                 writer, runner):
    """The task files are the same bytes: one server spools (its spooler
    has no function, and leaves the task), the other runs the task."""
    p, port = start(start_server, tmp_path, writer,
                    env={"NO_FUNCTION": "1"})
    spooled = get(port, "/spool?act=ok&id=1")
    name = os.path.basename(spooled["path"])
    p.wait_for_log(r"unable to find the spooler function")
    task = get(port, f"/task?path={quote(spooled['path'])}")
    raw = (tmp_path / "spool" / name).read_bytes()
    p.stop()
    # modifier1 17, the args' packet, then the body.
    packet = b"\x03\x00act\x02\x00ok\x02\x00id\x01\x001"
    assert raw == b"\x11" + len(packet).to_bytes(2, "little") + b"\x00" + \
        packet + b"the body"
    assert task == [["'spooler_task_name'", repr(spooled["path"].encode())],
                    ["b'act'", "b'ok'"], ["b'id'", "b'1'"],
                    ["'body'", "b'the body'"]]
    p, port = start(start_server, tmp_path, runner)
    [done] = notes(tmp_path, 1)
    assert done["items"] == [["'spooler_task_name'", repr(name.encode())],
                             ["b'act'", "b'ok'"], ["b'id'", "b'1'"],
                             ["'body'", "b'the body'"]]
    wait_until(lambda: tasks_in(tmp_path / "spool") == [])


def test_an_external_spooler_is_spooled_to_and_not_run(start_server,
                                                      tmp_path, server):
    """spooler-external: the folder (made where missing) is a spooler of
    the instance's, listed with pid 0, whose tasks another instance's
    spooler runs; no process is forked for it."""
    p, port = start(start_server, tmp_path, server,
                    ("spooler-external", "outside"), ("spooler", "spool"))
    p.wait_for_log(r"spawned uWSGI worker 1 ")
    outside = os.path.realpath(tmp_path / "outside")
    folder = os.path.realpath(tmp_path / "spool")
    info = get(port, "/info")
    assert info["pid"] == 0 and info["pids"][0] == 0
    assert info["spoolers"] == [outside, folder]
    assert "spawned the uWSGI spooler on dir " + outside not in p.output()
    spooled = get(port, "/spool?act=ok&id=1")
    assert os.path.dirname(spooled["path"]) == outside
    p.wait_for_log(rf"\[spooler\] written 28 bytes to file "
                   rf"{re.escape(spooled['path'])}\n")
    assert tasks_in(outside) == [os.path.basename(spooled["path"])]
    p.stop()
    # The instance that runs the folder's spooler runs the task.
    start(start_server, tmp_path, server, ("spooler", "outside"))
    [done] = notes(tmp_path, 1)
    assert done["items"][1:] == [["b'act'", "b'ok'"], ["b'id'", "b'1'"],
                                 ["'body'", "b'the body'"]]
    wait_until(lambda: tasks_in(outside) == [])


def test_spooler_external_brings_the_master():
    """As `spooler`, as uWSGI's options of the master do."""
    assert resolve(["--spooler-external", "x"], {})["master"] is True


TASKS = textwrap.dedent('''\
    import json
    import os

    import uwsgi


    def run(args):
        with open(os.environ["NOTES"], "a") as f:
            f.write(json.dumps([args[b"id"].decode(), os.getcwd()]) + "\\n")
        return uwsgi.SPOOL_OK


    uwsgi.spooler = run
''')


def task_file(path, pairs, modified=None):
    """A task file as uWSGI writes one, at `path`."""
    packet = b"".join(len(text).to_bytes(2, "little") + text
                      for pair in pairs for text in pair)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"\x11" + len(packet).to_bytes(2, "little") + b"\x00" +
                     packet)
    if modified:
        os.utime(path, (modified, modified))


def test_ordered_priorities_chdir_import_and_quiet(start_server, tmp_path,
                                                   server):
    """spooler-ordered runs the priority folders first, in number order,
    then the tasks beside them; a task for later (its mtime, `at`) waits;
    spooler-import brings the function, spooler-chdir is where it runs,
    spooler-quiet leaves out the task lines."""
    (tmp_path / "tasks.py").write_text(TASKS)
    elsewhere = (tmp_path / "elsewhere").resolve()
    elsewhere.mkdir()
    name = "uwsgi_spoolfile_on_h_1_{}_2_3_4"
    folder = tmp_path / "spool"
    for priority, number in (("10", "1"), ("2", "2"), (None, "3")):
        where = folder / priority if priority else folder
        task_file(where / name.format(number), [(b"id", number.encode())])
    task_file(folder / name.format(4), [(b"id", b"later")],
              modified=2 ** 31 - 1)
    p, port = start(start_server, tmp_path, server,
                    ("spooler-ordered", "true"),
                    ("spooler-import", "tasks.py"),
                    ("spooler-chdir", elsewhere), ("spooler-quiet", "true"),
                    env={"NO_FUNCTION": "1",
                         "NOTES": str(tmp_path / "notes.txt")})
    found = notes(tmp_path, 3, "notes.txt")
    assert found == [[number, str(elsewhere)] for number in "213"]
    assert tasks_in(folder) == [name.format(4)]
    assert tasks_in(folder / "2") == tasks_in(folder / "10") == []
    p.stop()
    assert "managing request" not in p.output()
    assert "done with task" not in p.output()


def read_stats(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
        return json.loads(read_to_eof(conn))


def test_the_stats_list_the_spoolers(start_server, tmp_path, server):
    """Each spooler process with its tasks and respawns, after the
    workers, with uWSGI's keys."""
    stats = free_port()
    p, port = start(start_server, tmp_path, server,
                    ("stats", f"127.0.0.1:{stats}"))
    folder = os.path.realpath(tmp_path / "spool")
    first = int(p.wait_for_log(r"spawned the uWSGI spooler on dir .* with "
                               r"pid (\d+)\n")[1])
    get(port, "/spool?act=ok&id=1")
    notes(tmp_path, 1)
    p.wait_for_log(r"done with task")
    found = read_stats(stats)
    assert list(found)[-1] == "spoolers"
    assert found["spoolers"] == [{"dir": folder, "pid": first, "tasks": 1,
                                  "respawns": 0, "running": 0}]
    os.kill(first, signal.SIGKILL)
    second = int(p.wait_for_log(r"spawned the uWSGI spooler on dir .* with "
                                r"pid (\d+)\n", count=2)[1])
    respawned = [{"dir": folder, "pid": second, "tasks": 0, "respawns": 1,
                  "running": 0}]
    seen = []
    try:
        wait_until(lambda: seen.append(read_stats(stats)["spoolers"])
                   or seen[-1] == respawned)
    except TimeoutError:
        raise AssertionError(f"the stats still say {seen[-1]}, not "
                             f"{respawned}") from None
