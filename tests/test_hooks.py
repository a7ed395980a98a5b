"""Hooks (`exec-PHASE`, `hook-PHASE`) and Python imports (`import`,
`shared-import`), run with real processes: the phases' order beside the
real uWSGI, what each phase's command or action leaves behind (files the
test reads, pids), how a failure ends the instance, and the values
refused at start-up.
"""

import os
import re
import signal
import socket
import subprocess
import textwrap

import pytest

from tests import support
from tests.support import free_port, wait_until, write_ini

APP = textwrap.dedent('''
    import os
    print("APP LOADING", os.getpid())

    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
''')
# A module that says where it ran and appends its pid to PIDS.
MODULE = textwrap.dedent('''
    import os
    print("IMPORTED {name}", os.getpid())
    with open({pids!r}, "a") as f:
        f.write(f"{{os.getpid()}}\\n")
''')


def _module(folder, name):
    pids = folder / f"{name}.pids"
    (folder / f"{name}.py").write_text(MODULE.format(name=name,
                                                     pids=str(pids)))
    return pids


def _pids(path):
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def _base(tmp_path, port, *pairs, processes=2):
    (tmp_path / "app.py").write_text(APP)
    return write_ini(tmp_path / "hooks.ini", uwsgi=[
        ("master", "true"), ("processes", processes),
        ("http-socket", f"127.0.0.1:{port}"),
        ("wsgi-file", tmp_path / "app.py"), ("pythonpath", tmp_path),
        *pairs])


# Every phase a test instance passes, in uWSGI's order; as-root and
# as-user, which uWSGI runs up to four times as root, are left to
# test_as_root_and_as_user_once.
PHASE_PAIRS = [
    ("hook-asap", "print:HOOK asap"), ("exec-asap", "echo EXEC asap"),
    ("hook-pre-jail", "print:HOOK pre-jail"),
    ("exec-pre-jail", "echo EXEC pre-jail"),
    ("hook-in-jail", "print:HOOK in-jail"),
    ("exec-in-jail", "echo EXEC in-jail"),
    ("hook-pre-app", "print:HOOK pre-app"),
    ("exec-pre-app", "echo EXEC pre-app"),
    ("hook-post-app", "print:HOOK post-app"),
    ("exec-post-app", "echo EXEC post-app"),
    ("hook-master-start", "print:HOOK master-start"),
    ("hook-post-fork", "print:HOOK post-fork"),
    ("hook-accepting", "print:HOOK accepting"),
    ("hook-accepting-once", "print:HOOK accepting-once"),
    ("hook-accepting1", "print:HOOK accepting1"),
    ("hook-accepting1-once", "print:HOOK accepting1-once"),
    ("hook-as-user-atexit", "print:HOOK atexit"),
    ("exec-as-user-atexit", "echo EXEC atexit"),
    ("import", "imported"), ("shared-import", "shared"),
]
_MARK = re.compile(r"^(?:running .*|HOOK .*|EXEC .*|IMPORTED \w+|"
                   r"APP LOADING|spawned uWSGI (?:master|worker \d).*|"
                   r"goodbye to uWSGI\.)", re.M)


def _marks(text):
    """The hook lines and landmarks of a log, without pids."""
    return [re.sub(r" \(pid: .*| \d+$", "", m.group(0))
            for m in _MARK.finditer(text)]


def _run_phases(start, server, tmp_path):
    port = free_port()
    _module(tmp_path, "imported")
    _module(tmp_path, "shared")
    ini = _base(tmp_path, port, *PHASE_PAIRS)
    p = start(server, ["--ini", str(ini)], cwd=tmp_path)
    for _ in range(2):
        p.wait_for_log(r"(?m)^HOOK accepting$", count=2)
    p.wait_for_log(r"(?m)^HOOK accepting1-once$")
    p.stop()
    return p.output()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_phases_in_uwsgis_order(start_server, tmp_path, server):
    """Each phase's hooks, then its commands; the master's phases in
    uWSGI's order around the app's load and the spawns; each worker's
    after its spawn (post-fork, then accepting, -once on a first spawn,
    the 1 forms in worker 1 only); atexit after goodbye."""
    marks = _marks(_run_phases(start_server, server, tmp_path))
    master = marks[:marks.index("spawned uWSGI master process")]
    assert master == [
        'running "print:HOOK asap" (asap)...', "HOOK asap",
        'running "echo EXEC asap" (asap)...', "EXEC asap",
        'running "print:HOOK pre-jail" (pre-jail)...', "HOOK pre-jail",
        'running "echo EXEC pre-jail" (pre-jail)...', "EXEC pre-jail",
        'running "print:HOOK in-jail" (in-jail)...', "HOOK in-jail",
        'running "echo EXEC in-jail" (in-jail)...', "EXEC in-jail",
        "IMPORTED shared",
        'running "print:HOOK pre-app" (pre app)...', "HOOK pre-app",
        'running "echo EXEC pre-app" (pre app)...', "EXEC pre-app",
        "IMPORTED imported", "APP LOADING",
        'running "print:HOOK post-app" (post app)...', "HOOK post-app",
        'running "echo EXEC post-app" (post app)...', "EXEC post-app",
    ]
    rest = marks[len(master):]
    assert rest.index('running "print:HOOK master-start" (master-start)...') \
        > rest.index("spawned uWSGI worker 2")
    for phase, times in (("post-fork", 2), ("accepting", 2),
                         ("accepting-once", 2), ("accepting1", 1),
                         ("accepting1-once", 1)):
        assert rest.count(f'running "print:HOOK {phase}" ({phase})...') \
            == times, phase
    assert rest[rest.index("goodbye to uWSGI."):] == [
        "goodbye to uWSGI.",
        'running "print:HOOK atexit" (atexit)...', "HOOK atexit",
        f'running "echo EXEC atexit" (as uid: {os.getuid()} gid: '
        f'{os.getgid()}) ...', "EXEC atexit"]


def test_as_root_and_as_user_once(procs, tmp_path):
    """Started as root, as uWSGI: the as-root phase, the drop, then the
    as-user phase, its commands said with the ids they run as; once
    (uWSGI runs both again at each of its later privilege checks)."""
    if os.getuid() != 0:
        pytest.skip("the as-root and as-user phases run only as root")
    ini = _base(tmp_path, free_port(),
                ("hook-as-root", "print:ROOT"), ("exec-as-root", "id -u"),
                ("hook-as-user", "print:USER"), ("exec-as-user", "id -u"),
                ("uid", "nobody"), ("gid", "nogroup"),
                processes=1)
    p = procs.ugu("--ini", str(ini), cwd=tmp_path)
    p.wait_for_log(r"spawned uWSGI worker 1")
    nobody = int(subprocess.run(
        ["id", "-u", "nobody"], capture_output=True, text=True).stdout)
    p.wait_for_log(
        r'running "print:ROOT" \(as root\)\.\.\.\nROOT\n'
        r'running "id -u" \(as root\)\.\.\.\n0\n'
        r"(?:.*\n)*?setuid\(\) to \d+\n"
        r'running "print:USER" \(as user\)\.\.\.\nUSER\n'
        rf'running "id -u" \(as uid: {nobody} gid: \d+\) \.\.\.\n{nobody}\n')
    assert p.output().count("(as root)") == 2


def test_import_in_master_or_in_each_lazy_worker(procs, tmp_path):
    """import runs where the apps load: once in the master, or in each
    worker with lazy-apps; shared-import always in the master, before
    the fork; a file path runs as a module named after it."""
    imported = _module(tmp_path, "imported")
    shared = _module(tmp_path, "shared")
    ini = _base(tmp_path, free_port(), ("lazy-apps", "true"),
                ("import", "imported"),
                ("shared-py-import", tmp_path / "shared.py"))
    p = procs.ugu("--ini", str(ini), cwd=tmp_path)
    p.wait_for_log(r"WSGI app 0 .*", count=2)
    # A lazy worker may load the app before the master says its spawn.
    p.wait_for_log(r"spawned uWSGI worker 2 ")
    workers = [int(m) for m in re.findall(
        r"spawned uWSGI worker \d \(pid: (\d+)", p.output())]
    assert _pids(shared) == [p.pid]
    wait_until(lambda: len(_pids(imported)) == 2, what="both imports")
    assert sorted(_pids(imported)) == sorted(workers)
    p.stop()

    (tmp_path / "imported.pids").unlink()
    ini = _base(tmp_path, free_port(), ("pyimport", "imported"))
    p = procs.ugu("--ini", str(ini), cwd=tmp_path)
    p.wait_for_log(r"spawned uWSGI worker 2")
    assert _pids(imported) == [p.pid]


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_failed_imports_are_said_and_the_app_loads(start_server, tmp_path,
                                                   server):
    """As uWSGI: a missing module or file is said, and the start goes
    on (the modules after it are imported, the app loads)."""
    imported = _module(tmp_path, "imported")
    ini = _base(tmp_path, free_port(), ("import", "no_such_module"),
                ("import", tmp_path / "missing.py"),
                ("import", "imported"), processes=1)
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path)
    p.wait_for_log(
        r"ModuleNotFoundError: No module named 'no_such_module'\n"
        rf"failed to open python file {tmp_path}/missing\.py\n"
        r"IMPORTED imported \d+\nAPP LOADING")
    p.wait_for_log(r"spawned uWSGI worker 1")
    assert len(_pids(imported)) == 1


def test_accepting_hooks_once_per_spawn(procs, tmp_path):
    """accepting in every worker at each spawn, accepting1 in worker 1;
    the -once forms at a slot's first spawn only: a respawned worker 1
    runs accepting and accepting1 again, not the -once ones."""
    log = tmp_path / "accepting.log"
    ini = _base(tmp_path, free_port(),
                *((f"hook-{phase}", f"appendn:{log} {phase}")
                  for phase in ("accepting", "accepting-once",
                                "accepting1", "accepting1-once")))
    p = procs.ugu("--ini", str(ini), cwd=tmp_path)
    wait_until(lambda: log.exists() and
               len(log.read_text().split()) == 6, what="6 hook lines")
    first = sorted(log.read_text().split())
    assert first == sorted(["accepting"] * 2 + ["accepting-once"] * 2
                           + ["accepting1", "accepting1-once"])
    pid = int(re.search(r"spawned uWSGI worker 1 \(pid: (\d+)",
                        p.output()).group(1))
    os.kill(pid, signal.SIGKILL)
    p.wait_for_log(r"Respawned uWSGI worker 1")
    wait_until(lambda: len(log.read_text().split()) == 8,
               what="the respawn's hooks")
    assert sorted(log.read_text().split()[6:]) == ["accepting",
                                                   "accepting1"]


def test_actions_leave_their_files(procs, tmp_path):
    """The actions ugu has, run at start-up: what each leaves behind."""
    made = tmp_path / "made"
    ini = _base(tmp_path, free_port(),
                ("hook-pre-app", f"mkdir:{made}"),
                ("hook-pre-app", f"write:{made}/w one two"),
                ("hook-pre-app", f"writen:{made}/n line"),
                ("hook-pre-app", f"append:{made}/n more"),
                ("hook-pre-app", f"appendn:{made}/n end"),
                ("hook-pre-app", f"creat:{made}/empty"),
                ("hook-pre-app", f"creat:{made}/gone"),
                ("hook-pre-app", f"unlink:{made}/gone"),
                ("hook-pre-app", f"chmod:{made}/w 600"),
                ("hook-pre-app", f"sticky:{made}"),
                ("hook-pre-app", "putenv:HOOKED=yes"),
                ("hook-pre-app", f"chdir:{made}"),
                ("hook-pre-app", "exec:echo $HOOKED > env"),
                ("hook-pre-app", "!safeexec:exit 7"),
                processes=1)
    p = procs.ugu("--ini", str(ini), cwd=tmp_path)
    p.wait_for_log(r"spawned uWSGI worker 1")
    assert (made / "w").read_text() == "one two"
    assert (made / "n").read_text() == "line\nmoreend\n"
    assert (made / "empty").read_text() == ""
    assert not (made / "gone").exists()
    assert (made / "w").stat().st_mode & 0o777 == 0o600
    assert made.stat().st_mode & 0o1000
    assert (made / "env").read_text() == "yes\n"
    # A private hook is not named; safeexec's failure is said, not fatal.
    p.wait_for_log(r'running --- PRIVATE HOOK --- \(pre app\)\.\.\.\n'
                   r'command "exit 7" exited with non-zero code: 7\n')


def test_hook_touch(procs, tmp_path):
    """hook-touch FILE ACTION: the action, as the master sees the file
    change (or appear)."""
    touched, out = tmp_path / "touch-me", tmp_path / "out"
    ini = _base(tmp_path, free_port(),
                ("hook-touch", f"{touched} appendn:{out} touched"),
                processes=1)
    p = procs.ugu("--ini", str(ini), cwd=tmp_path)
    p.wait_for_log(rf"unable to stat\(\) {touched}, events will be "
                   rf"triggered as soon as the file is created")
    p.wait_for_log(r"spawned uWSGI worker 1")
    touched.write_text("")
    p.wait_for_log(rf'running "appendn:{out} touched" \(touch\)\.\.\.')
    wait_until(out.exists, what="the touch hook's file")
    assert out.read_text() == "touched\n"


def _ini_file(tmp_path, *pairs, processes=1):
    return ["--ini", str(_base(tmp_path, free_port(), *pairs,
                               processes=processes))]


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_failed_command_ends_the_start(start_server, tmp_path, server):
    """A failed exec-pre-app command ends the start (exit 1) with its
    status, in uWSGI's words; the app never loads."""
    p = start_server(server, _ini_file(tmp_path,
                                       ("exec-pre-app", "exit 3")),
                     cwd=tmp_path)
    assert p.wait() == 1
    assert re.search(r'running "exit 3" \(pre app\)\.\.\.\n'
                     r'command "exit 3" exited with non-zero code: 3\n',
                     p.output())
    assert "APP LOADING" not in p.output()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_fatal_hook_in_a_worker_destroys_the_instance(start_server,
                                                      tmp_path, server):
    """A fatal hook failing in a worker: uWSGI's FATAL line, and the
    master, told by the worker, kills the workers and exits."""
    p = start_server(server, _ini_file(tmp_path,
                                       ("hook-accepting1", "exec:false")),
                     cwd=tmp_path)
    p.wait_for_log(r'running "exec:false" \(accepting1\)\.\.\.\n'
                   r'command "false" exited with non-zero code: 1\n'
                   r".* - FATAL hook failed, destroying instance\n")
    p.wait_for_log(r"SIGINT/SIGTERM received\.\.\.killing workers\.\.\.")
    assert p.wait() == 0
    p.wait_for_log(r"goodbye to uWSGI\.")


def test_fatal_hook_in_the_master_before_the_workers(procs, tmp_path):
    """Before the fork ugu ends the start there (uWSGI goes on to load
    the app and spawn the workers, then kills them)."""
    p = procs.ugu(*_ini_file(tmp_path, ("hook-pre-app",
                                        f"write:{tmp_path}/no/such x")),
                  cwd=tmp_path)
    assert p.wait() == 1
    assert re.search(
        rf'running "write:{tmp_path}/no/such x" \(pre app\)\.\.\.\n'
        rf'open\("{tmp_path}/no/such"\): No such file or directory '
        rf"\[core/hooks\.c line 162\]\n"
        r".* - FATAL hook failed, destroying instance\n", p.output())
    assert "APP LOADING" not in p.output()


@pytest.mark.parametrize("pairs, message", [
    ([("hook-pre-app", "call:some_c_function")],
     r"option 'hook-pre-app': hook action 'call' is not one ugu has .*"
     r"ugu has append, appendn, cd, chdir"),
    ([("hook-accepting", "print")],
     r"option 'hook-accepting': 'print' is not ACTION:ARGS"),
    ([("hook-touch", "/tmp/file")],
     r"option 'hook-touch': '/tmp/file' is not FILE ACTION:ARGS"),
    ([("call-post-jail", "some_c_function")],
     r"call-post-jail.*C function.*exec- option"),
    ([("hook-as-vassal", "print:x")], r"hook-as-vassal.*Emperor"),
    ([("hook-master-start", "unix_signal:20 suspend_resume_them_all")],
     r"option 'hook-master-start': unix_signal names "
     r"'suspend_resume_them_all', which ugu's master does not have .*"
     r"ugu's has gracefully_kill_them_all, kill_them_all"),
    ([("hook-pre-app", "unix_signal:15 kill_them_all")],
     r"option 'hook-pre-app': hook action 'unix_signal' binds a signal of "
     r"ugu's master: write it in hook-master-start"),
])
def test_refused_at_start(procs, tmp_path, pairs, message):
    """What ugu cannot run as uWSGI does stops the start, naming the
    file, the option and what it has instead."""
    p = procs.ugu(*_ini_file(tmp_path, *pairs), cwd=tmp_path)
    assert p.wait() == 1
    assert re.search(message, p.output()), p.output()
    assert "hooks.ini" in p.output()


def test_emperor_messages_run_their_hooks(procs, tmp_path):
    """A vassal's emperor-reload hook when its file is touched, its
    emperor-stop hook when the file is removed: after uWSGI's
    "received message" line, before the workers are told."""
    court = tmp_path / "court"
    court.mkdir()
    out = tmp_path / "out"
    (tmp_path / "app.py").write_text(APP)
    vassal = write_ini(court / "v.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{free_port()}"),
        ("wsgi-file", tmp_path / "app.py"),
        ("hook-emperor-reload", f"appendn:{out} reload"),
        ("hook-emperor-stop", f"appendn:{out} stop")])
    emperor = procs.ugu("--emperor", str(court), "--emperor-freq", "1",
                        cwd=tmp_path)
    emperor.wait_for_log(r"spawned uWSGI worker 1")
    os.utime(vassal, (vassal.stat().st_mtime + 5,) * 2)
    emperor.wait_for_log(
        r"received message 1 from emperor\n"
        rf'running "appendn:{out} reload" \(emperor-reload\)\.\.\.\n'
        r"\.\.\.gracefully killing workers\.\.\.")
    emperor.wait_for_log(r"spawned uWSGI worker 1", count=2)
    vassal.unlink()
    emperor.wait_for_log(
        r"received message 0 from emperor\n"
        rf'running "appendn:{out} stop" \(emperor-stop\)\.\.\.\n')
    emperor.wait_for_log(r"goodbye to uWSGI")
    assert out.read_text() == "reload\nstop\n"


ATEXIT_APP = textwrap.dedent('''
    import atexit
    import os

    def bye():
        with open({out!r}, "a") as f:
            f.write(f"{{os.getpid()}}\\n")

    atexit.register(bye)

    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
''')


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("options, on_int, on_hup", [
    ((), True, True),
    (("--lazy-apps",), True, True),
    (("--skip-atexit",), False, True),
    (("--skip-atexit-teardown",), False, False),
])
def test_atexit_functions_run_in_the_workers(start_server, tmp_path, server,
                                             options, on_int, on_hup):
    """The app's atexit functions run in each worker at its end (a
    reload's graceful end, SIGINT's), never in the master; skip-atexit
    leaves them out at SIGINT's, skip-atexit-teardown always."""
    out = tmp_path / "atexit.pids"
    (tmp_path / "ae.py").write_text(ATEXIT_APP.format(out=str(out)))
    p = start_server(server, [
        "--master", "--processes", "2", "--http-socket",
        f"127.0.0.1:{free_port()}", "--wsgi-file", str(tmp_path / "ae.py"),
        # Signalled before then, uWSGI's worker may not have its handlers.
        "--hook-accepting", "print:READY", *options], cwd=tmp_path)
    p.wait_for_log(r"(?m)^READY$", count=2)
    first = {int(m) for m in re.findall(r"spawned uWSGI worker \d \(pid: "
                                        r"(\d+)", p.output())}
    p.send_signal(signal.SIGHUP)
    p.wait_for_log(r"(?m)^READY$", count=4)
    assert set(_pids(out)) == (first if on_hup else set())
    spawned = {int(m) for m in re.findall(r"spawned uWSGI worker \d \(pid: "
                                          r"(\d+)", p.output())}
    p.send_signal(signal.SIGINT)
    p.wait()
    p.wait_for_log(r"goodbye to uWSGI")
    second = spawned - first if on_int else set()
    assert set(_pids(out)) == (first if on_hup else set()) | second


@pytest.mark.parametrize("option", ["--hook-asap", "--exec-pre-app",
                                    "--shared-import"])
def test_the_emperor_refuses_hooks_and_imports(procs, tmp_path, option):
    """The Emperor runs no hooks of ugu's: its own are refused, not left
    unrun."""
    p = procs.ugu("--emperor", str(tmp_path / "*.ini"), option, "x:y",
                  cwd=tmp_path)
    assert p.wait() == 1
    assert re.search(rf"option '{option[2:]}': ugu's Emperor runs only its "
                     rf"own hooks", p.output()), p.output()


def test_commands_in_a_gevent_worker(procs, tmp_path):
    """A gevent worker's commands (after its monkey-patch) run and are
    waited for as anywhere else, and the worker goes on to serve."""
    port = free_port()
    ini = _base(tmp_path, port, ("gevent", 10),
                ("hook-post-fork", "exec:echo forked"),
                ("exec-pre-app", "echo pre-app"),
                ("hook-accepting", "exec:echo accepting"), processes=1)
    p = procs.ugu("--ini", str(ini), cwd=tmp_path)
    p.wait_for_log(r"(?m)^forked\n(?:.*\n)*?^pre-app\n(?:.*\n)*?"
                   r"^APP LOADING \d+\n(?:.*\n)*?^accepting$")
    support.wait_for_port(port)
    with socket.create_connection(("127.0.0.1", port)) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        assert support.read_to_eof(s).endswith(b"ok")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_reload_runs_the_phases_again_but_pre_jail(start_server, tmp_path,
                                                     server):
    """A reload re-runs the start's phases but pre-jail (a first start's
    only), the atexit ones before it, and the -once hooks again: a
    reloaded master's spawns are first spawns, as in uWSGI."""
    phases = ("asap", "pre-jail", "in-jail", "pre-app", "post-app",
              "master-start", "accepting-once", "as-user-atexit")
    ini = _base(tmp_path, free_port(),
                *((f"hook-{phase}", f"print:PHASE {phase}")
                  for phase in phases), processes=1)
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path)
    p.wait_for_log(r"(?m)^PHASE accepting-once$")
    p.send_signal(signal.SIGHUP)
    p.wait_for_log(r"(?m)^PHASE accepting-once$", count=2)
    said = re.findall(r"(?m)^PHASE (\S+)$", p.output())
    assert said == [*phases[:-1], "as-user-atexit",
                    *(phase for phase in phases[:-1] if phase != "pre-jail")]


def _get(port):
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(b"GET / HTTP/1.0\r\n\r\n")
        return support.read_to_eof(client)


SLOW_APP = textwrap.dedent('''
    import time

    def application(environ, start_response):
        print("SLOW START", flush=True)
        time.sleep(0.5)
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"finished"]
''')


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_unix_signal_makes_sigterm_graceful(start_server, tmp_path, server):
    """uWSGI's recipe: unix_signal:15 gracefully_kill_them_all.  SIGTERM
    then ends the instance (not a reload), the request in flight
    answered first; a number no handler takes is said in uWSGI's line,
    and the hook still succeeds."""
    port = free_port()
    (tmp_path / "slow.py").write_text(SLOW_APP)
    ini = write_ini(tmp_path / "hooks.ini", uwsgi=[
        ("master", "true"), ("processes", 1),
        ("http-socket", f"127.0.0.1:{port}"),
        ("wsgi-file", tmp_path / "slow.py"),
        ("hook-master-start", "unix_signal:15 gracefully_kill_them_all"),
        ("hook-master-start", "unix_signal:9 kill_them_all")])
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path)
    p.wait_for_log(r'running "unix_signal:9 kill_them_all" '
                   r'\(master-start\)\.\.\.\n'
                   r"sigaction\(\): Invalid argument "
                   r"\[core/utils\.c line 1958\]\n")
    support.wait_for_port(port)
    with socket.create_connection(("127.0.0.1", port)) as client:
        client.sendall(b"GET / HTTP/1.0\r\n\r\n")
        p.wait_for_log(r"SLOW START")
        p.send_signal(signal.SIGTERM)
        assert support.read_to_eof(client).endswith(b"finished")
    assert p.wait() == 0
    assert re.search(r".* - graceful shutdown triggered\.\.\.\n(?:.*\n)*?"
                     r"Gracefully killing worker 1 \(pid: \d+\)\.\.\.\n"
                     r"(?:.*\n)*?goodbye to uWSGI\.\n", p.output())
    assert "reloading" not in p.output()
    # uWSGI's gracefully_kill_them_all waits for its workers unsaid.
    assert "buried" not in p.output()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_unix_signal_binds_the_reload_and_the_shutdown(start_server,
                                                       tmp_path, server):
    """grace_them_all on SIGUSR2 reloads gracefully (bound again by the
    reloaded master's hook); kill_them_all on SIGHUP ends the instance
    brutally, in uWSGI's line."""
    port = free_port()
    ini = _base(tmp_path, port,
                ("hook-master-start", "unix_signal:12 grace_them_all"),
                ("hook-master-start", "unix_signal:1 kill_them_all"),
                processes=1)
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path)
    bound = r'running "unix_signal:1 kill_them_all" \(master-start\)'
    p.wait_for_log(bound)
    # A worker that has served: uWSGI's may miss a HUP before.
    support.wait_for_port(port)
    assert _get(port).endswith(b"ok")
    p.send_signal(signal.SIGUSR2)
    p.wait_for_log(r"\.\.\.gracefully killing workers\.\.\.\n(?:.*\n)*?"
                   r"gracefully \(RE\)spawned uWSGI master process")
    p.wait_for_log(bound, count=2)
    assert _get(port).endswith(b"ok")
    p.send_signal(signal.SIGHUP)
    p.wait_for_log(r"SIGINT/SIGTERM received\.\.\.killing workers\.\.\.")
    assert p.wait() == 0
    p.wait_for_log(r"goodbye to uWSGI\.")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_unix_signal_without_its_function(start_server, tmp_path, server):
    """A value without SIGNUM FUNCTION fails when the master runs it, in
    uWSGI's line, and the failed hook ends the instance."""
    p = start_server(server, _ini_file(
        tmp_path, ("hook-master-start", "unix_signal:15")), cwd=tmp_path)
    p.wait_for_log(r'running "unix_signal:15" \(master-start\)\.\.\.\n'
                   r"invalid unix_signal syntax, must be <signum> <func>\n"
                   r".* - FATAL hook failed, destroying instance\n")
    p.wait_for_log(r"SIGINT/SIGTERM received\.\.\.killing workers\.\.\.")
