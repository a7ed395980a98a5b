"""The Emperor options of uWSGI 2.0 that ugu added late: wrappers tried
in turn, start and stop hooks, nofollow, tyrant-nofollow, procname,
graceful shutdown, magic exec; and those it refuses, saying why.

Stand-in vassals (tests/test_emperor.py's court) report their start on the
Emperor's output; each test waits on those lines, never on a clock.
"""

import json
import os
import re
import shutil
import signal
import socket
import stat
import tempfile
from pathlib import Path

import pytest

from tests.support import (UGU, free_port, http10_get, read_to_eof,
                           wait_for_port, wait_until)
from tests.test_emperor import (CTIME, ENV, WRAPPER, make_court,
                                start_emperor, vassal_up)
from ugu.emperor import monitor, ondemand, spawn
from ugu.emperor.emperor import Emperor
from ugu.emperor.vassal import Vassal
from ugu.link import ToVassal
from ugu.options import registry


@pytest.fixture
def court(tmp_path):
    return make_court(tmp_path / "vassals")


def defaults(**options):
    config = {o.name: [] if o.repeat else o.default
              for o in registry.OPTIONS}
    config.update({k.replace("_", "-"): v for k, v in options.items()})
    return config


# -- wrappers -------------------------------------------------------------

def test_override_is_tried_first_then_the_wrapper_then_fallbacks(
        procs, tmp_path, court):
    court.add("a.ini", send="1")
    fake = str(court.path / WRAPPER)
    emperor = procs.ugu("--emperor", str(court.path),
                        "--emperor-wrapper", "/nonexistent/wrapper",
                        "--emperor-wrapper-override", "/nonexistent/first",
                        "--emperor-wrapper-fallback", "/nonexistent/last",
                        "--emperor-wrapper-fallback", fake,
                        cwd=tmp_path, env=ENV)
    up = vassal_up(emperor, "a.ini")
    # The vassal's arguments, not ugu's interpreter flags, follow each.
    assert up["argv"][1:] == ["--ini", "a.ini"]
    assert ("[emperor] trying to use /nonexistent/first as binary "
            "wrapper ...\n"
            "execvp(): No such file or directory\n"
            "[emperor] binary path: /nonexistent/wrapper\n"
            "[emperor] is the uwsgi binary in your system PATH ?\n"
            "[emperor] trying to use /nonexistent/last as binary "
            "fallback ...\n"
            f"[emperor] trying to use {fake} as binary fallback ...\n"
            ) in emperor.output()


def test_an_override_that_runs_is_the_vassal(procs, tmp_path, court):
    court.add("a.ini", send="1")
    emperor = procs.ugu("--emperor", str(court.path),
                        "--emperor-wrapper", "/nonexistent/wrapper",
                        "--emperor-wrapper-override",
                        str(court.path / WRAPPER), cwd=tmp_path, env=ENV)
    vassal_up(emperor, "a.ini")
    assert "binary path" not in emperor.output()


# -- hooks ----------------------------------------------------------------

HOOK = """#!/bin/sh
echo "$HOOK_KIND $1 dir=$UWSGI_VASSALS_DIR pwd=$PWD uid=$(id -u)" >> "{log}"
exit 3
"""


def test_start_and_stop_hooks_run_with_the_vassals_name(procs, tmp_path,
                                                        court):
    court.add("a.ini", send="1 5")
    calls = tmp_path / "calls"
    hook = tmp_path / "hook.sh"
    hook.write_text(HOOK.format(log=calls))
    hook.chmod(0o755)
    emperor = start_emperor(procs, tmp_path, "--emperor", str(court.path),
                            "--vassals-start-hook", str(hook),
                            "--vassals-stop-hook", str(hook))
    vassal_up(emperor, "a.ini")
    here = os.path.realpath(court.path)
    assert calls.read_text() == f" a.ini dir={here} pwd={court.path} uid=0\n"
    assert (f"[emperor] running vassal start-hook: {hook} a.ini\n"
            "[emperor] a.ini start-hook returned 3\n") in emperor.output()
    emperor.send_signal(signal.SIGINT)
    assert emperor.wait() == 0
    log = emperor.output()
    # Stopped at ragnarok (uWSGI forgets to stop them when a stop hook
    # is set) and hooked once, after its death.
    assert "fake vassal a.ini told to stop" in log
    assert re.search(rf"\[emperor\] running vassal stop-hook: {hook} a\.ini\n"
                     r"\[emperor\] a\.ini stop-hook returned 3\n"
                     rf"{CTIME}\[emperor\] removed uwsgi instance a\.ini\n",
                     log)
    assert log.count("stop-hook returned") == 1
    assert calls.read_text().count("a.ini") == 2


def test_a_missing_hook_is_said_and_the_vassal_starts(procs, tmp_path,
                                                      court):
    court.add("a.ini", send="1")
    emperor = start_emperor(procs, tmp_path, "--emperor", str(court.path),
                            "--vassals-start-hook", "/nonexistent/hook")
    vassal_up(emperor, "a.ini")
    assert ("[emperor] running vassal start-hook: /nonexistent/hook a.ini\n"
            "execvp(): No such file or directory\n"
            "[emperor] a.ini start-hook returned 1\n") in emperor.output()


def test_hooks_are_given_a_glob_monitors_folder(tmp_path):
    assert monitor.GlobMonitor("x/*.ini").home() == os.getcwd()


# -- nofollow -------------------------------------------------------------

def _linked(tmp_path):
    target = tmp_path / "target.ini"
    target.write_text("[uwsgi]\n")
    court = tmp_path / "court"
    court.mkdir()
    link = court / "link.ini"
    link.symlink_to(target)
    os.utime(target, (2000, 2000))
    os.utime(link, (1000, 1000), follow_symlinks=False)
    (court / "dangling.ini").symlink_to(tmp_path / "none.ini")
    return court, target


def test_nofollow_takes_a_links_own_mtime_and_keeps_dangling_links(
        tmp_path):
    court, _ = _linked(tmp_path)
    followed = monitor.DirMonitor(str(court)).scan()
    assert [(f.name, f.mtime) for f in followed] == [("link.ini", 2000)]
    kept = monitor.DirMonitor(str(court), nofollow=True).scan()
    assert [f.name for f in kept] == ["dangling.ini", "link.ini"]
    assert kept[1].mtime == 1000
    glob = monitor.monitor_for(str(court / "*.ini"), nofollow=True)
    assert [Path(f.name).name for f in glob.scan()] == ["dangling.ini",
                                                        "link.ini"]


def test_tyrant_nofollow_takes_the_owner_of_the_link(procs, tmp_path):
    public = Path(tempfile.mkdtemp(prefix="ugu-tyrant-"))
    try:
        public.chmod(0o755)
        court = make_court(public / "vassals")
        court.path.chmod(0o755)
        target = court.add("root-owned.txt")
        link = court.path / "link.ini"
        link.symlink_to(target)
        os.lchown(link, 65534, 65534)
        emperor = start_emperor(procs, tmp_path, "--emperor",
                                str(court.path), "--emperor-tyrant",
                                "--emperor-tyrant-nofollow",
                                court_path=court.path)
        emperor.wait_for_log(r"(?m)^\[emperor-tyrant\] dropping privileges "
                             r"to 65534 65534 for instance link\.ini$")
    finally:
        shutil.rmtree(public)


def test_tyrant_follows_links_by_default(tmp_path):
    target = tmp_path / "t.ini"
    target.write_text("")
    link = tmp_path / "l.ini"
    link.symlink_to(target)
    os.lchown(link, 65534, 65534)
    found = monitor.Found("l.ini", 0, str(tmp_path))
    tyrant = Emperor(defaults(emperor_tyrant=True), [])
    assert tyrant.owner(found) is False     # root's file: refused
    for option in ("emperor_tyrant_nofollow", "emperor_nofollow"):
        nofollow = Emperor(defaults(emperor_tyrant=True, **{option: True}),
                           [])
        assert nofollow.owner(found) == (65534, 65534)


# -- procname, graceful shutdown, magic exec ------------------------------

def test_procname_names_a_lone_emperor(procs, tmp_path, court):
    emperor = start_emperor(procs, tmp_path, "--emperor", str(court.path),
                            "--emperor-procname", "my emperor")
    emperor.wait_for_log(r"starting uWSGI Emperor")
    wait_until(lambda: Path(f"/proc/{emperor.pid}/cmdline").read_bytes()
               .startswith(b"my emperor"), 5, what="the Emperor's title")


def test_graceful_shutdown_sends_the_graceful_stop():
    for graceful, order in ((False, ToVassal.STOP),
                            (True, ToVassal.GRACEFUL_STOP)):
        ours, theirs = socket.socketpair()
        with ours, theirs:
            emperor = Emperor(
                defaults(emperor_graceful_shutdown=graceful), [])
            emperor.stop(Vassal("a.ini", 1, ours, 0), 0.0)
            assert theirs.recv(1) == bytes([order])


def test_magic_exec_runs_executable_files_by_their_name(tmp_path):
    plain = tmp_path / "plain.ini"
    plain.write_text("[uwsgi]\n")
    script = tmp_path / "script.ini"
    script.write_text("#!/bin/sh\necho '[uwsgi]'\n")
    script.chmod(script.stat().st_mode | stat.S_IXUSR)
    magic = spawn.Templates(magic_exec=True)
    cwd = str(tmp_path)
    assert spawn.vassal_args("plain.ini", magic, cwd) == ["--ini",
                                                          "plain.ini"]
    # As uWSGI's: the name as the monitor has it (bare for a folder, so
    # the shell looks it up in PATH).
    assert spawn.vassal_args("script.ini", magic, cwd) == [
        "--ini", "exec://script.ini"]
    assert spawn.vassal_args("script.ini", spawn.Templates(), cwd) == [
        "--ini", "script.ini"]


def test_magic_exec_vassal_reads_its_scripts_output(procs, tmp_path):
    (tmp_path / "v").mkdir()
    script = tmp_path / "v" / "s.ini"
    script.write_text("#!/bin/sh\nprintf '[uwsgi]\\nsocket = 127.0.0.1:0"
                      "\\nmaster = true\\n'\n")
    script.chmod(0o755)
    emperor = procs.ugu("--emperor", "v/*.ini", "--emperor-magic-exec",
                        cwd=tmp_path, env=ENV)
    emperor.wait_for_log(r"getting INI configuration from exec://v/s\.ini")
    emperor.wait_for_log(r"vassal v/s\.ini is ready to accept requests")


# -- refused --------------------------------------------------------------

@pytest.mark.parametrize("option, reason", [
    ("emperor-extra-ext", "configurator"),
    ("emperor-use-clone", "namespaces"),
    ("emperor-proxy-socket", "jail"),
    ("call-as-emperor2", "dlsym"),
    ("call-as-vassal", "exec-as-vassal"),
    ("umount-as-emperor", "mount(2)"),
])
def test_options_ugu_lacks_are_refused_saying_why(procs, tmp_path, option,
                                                  reason):
    ini = tmp_path / "e.ini"
    ini.write_text(f"[uwsgi]\nemperor = {tmp_path}/none\n"
                   f"{option} = x\n")
    process = procs.ugu("--ini", str(ini), cwd=tmp_path, env=ENV)
    assert process.wait() == 1
    out = process.output()
    assert f"e.ini:3: option '{option}'" in out
    assert reason in out


# -- on demand ------------------------------------------------------------

def test_on_demand_socket_names_as_uwsgi_finds_them(tmp_path):
    found = monitor.Found("a.ini", 0, str(tmp_path))
    (tmp_path / "a.ini.sock").write_text("127.0.0.1:9\tcomment\nmore\n")
    assert ondemand.Finder(extension=".sock").socket_name(found) == \
        "127.0.0.1:9"
    (tmp_path / "a.ini.sock").write_text("\n")
    assert ondemand.Finder(extension=".sock").socket_name(found) is None
    assert ondemand.Finder(extension=".none").socket_name(found) is None
    assert ondemand.Finder(directory="/run/x").socket_name(
        monitor.Found("v/app.prod.ini", 0, "/")) == "/run/x/app.prod.socket"
    # The command gets the name as its argument, run where the vassal is.
    command = ondemand.Finder(command="echo $PWD/")
    assert command.socket_name(found) == f"{tmp_path}/ a.ini"
    assert ondemand.Finder(command="true").socket_name(found) is None


def test_on_demand_vassal_starts_at_the_first_connection_and_goes_back(
        procs, tmp_path, court):
    court.add("a.ini", send="1 22")
    socks = tmp_path / "socks"
    socks.mkdir()
    emperor = start_emperor(procs, tmp_path, "--emperor",
                            str(court.path / "*.ini"),
                            "--emperor-on-demand-dir", str(socks))
    path = socks / "a.socket"
    emperor.wait_for_log(
        rf'(?m)^\[uwsgi-emperor\] {re.escape(str(court.path))}/a\.ini -> '
        rf'"on demand" instance detected, waiting for connections on '
        rf'socket "{re.escape(str(path))}" \.\.\.$')
    assert stat.S_IMODE(path.stat().st_mode) == 0o666
    assert "fake vassal" not in emperor.output()
    name = f"{court.path}/a.ini"
    for run in (1, 2):
        with socket.socket(socket.AF_UNIX) as client:
            client.connect(str(path))
            up = vassal_up(emperor, name, count=run)
        assert up["stdin"].startswith("socket:[")
        assert up["fds"] == [0, 1, 2, 3]
        # It asks to stop (22): it waits on its socket again.
        emperor.wait_for_log(rf"{CTIME}\[emperor\] bringing back instance "
                             rf"{re.escape(name)} to on-demand mode",
                             count=run)
        emperor.wait_for_log(
            rf'(?m)^\[uwsgi-emperor\] {re.escape(name)} -> back to '
            rf'"on demand" mode, waiting for connections on socket '
            rf'"{re.escape(str(path))}" \.\.\.$', count=run)
    assert "removed uwsgi instance" not in emperor.output()
    emperor.send_signal(signal.SIGINT)
    assert emperor.wait() == 0


def test_on_demand_vassal_serves_on_the_emperors_socket(procs, tmp_path):
    port = free_port()
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    (tmp_path / "app.py").write_text(
        "def application(env, start_response):\n"
        "    start_response('200 OK', [('Content-Type', 'text/plain')])\n"
        "    return [b'woken']\n")
    (vassals / "a.ini").write_text(
        "[uwsgi]\nmaster = true\nprocesses = 1\nprotocol = http\n"
        f"wsgi-file = {tmp_path / 'app.py'}\n")
    (vassals / "a.ini.sock").write_text(f"127.0.0.1:{port}\n")
    stats_port = free_port()
    emperor = procs.ugu("--emperor", str(vassals),
                        "--emperor-on-demand-ext", ".sock",
                        "--emperor-stats", f"127.0.0.1:{stats_port}",
                        cwd=tmp_path, env=ENV)
    emperor.wait_for_log(r'"on demand" instance detected')
    with socket.create_connection(("127.0.0.1", stats_port), 5) as s:
        (waiting,) = json.loads(read_to_eof(s))["vassals"]
    assert (waiting["id"], waiting["pid"], waiting["on_demand"]) == (
        "a.ini", -1, f"127.0.0.1:{port}")
    answer = http10_get(port)
    assert answer.startswith(b"HTTP/1.0 200 OK") and \
        answer.endswith(b"\r\n\r\nwoken")
    emperor.wait_for_log(rf"(?m)^uwsgi socket 0 inherited INET address "
                         rf"127\.0\.0\.1:{port} fd 0$")
    emperor.send_signal(signal.SIGINT)
    assert emperor.wait() == 0


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_imperial_monitor_list_names_the_schemes(start_server, tmp_path,
                                                 server):
    (tmp_path / "v").mkdir()
    emperor = start_server(server, ["--emperor", str(tmp_path / "v"),
                                    "--imperial-monitors-list"],
                           cwd=tmp_path, env=ENV)
    emperor.wait_for_log(r"\*\*\* starting uWSGI Emperor \*\*\*")
    assert ("\n*** uWSGI loaded imperial monitors ***\ndir\nglob\n"
            "--- end of imperial monitors list ---\n\n") in emperor.output()


# -- safe-fd --------------------------------------------------------------

@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("safe", [False, True])
def test_safe_fd_stays_open_in_the_vassals(procs, request, tmp_path,
                                           server, safe):
    """The Emperor closes every descriptor of a vassal it starts but its
    own; safe-fd names one that stays open (here fd 7, which the Emperor
    was started with)."""
    vassals = tmp_path / "vassals"
    vassals.mkdir()
    port = free_port()
    (tmp_path / "app.py").write_text(
        "def application(e, s):\n    s('200 OK', [])\n    return [b'ok']\n")
    (vassals / "v.ini").write_text(
        f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\n"
        f"wsgi-file = {tmp_path / 'app.py'}\n"
        f"pidfile = {tmp_path / 'v.pid'}\n")
    binary = (request.getfixturevalue("uwsgi_binary"),) \
        if server == "uwsgi" else tuple(UGU)
    argv = [*binary, "--emperor", str(vassals)]
    if safe:
        argv += ["--safe-fd", "7"]
    procs.start(["sh", "-c", f'exec "$@" 7>>{tmp_path / "seven"}', "sh",
                 *argv], cwd=tmp_path)
    wait_until(lambda: (tmp_path / "v.pid").exists() and
               (tmp_path / "v.pid").read_text().strip(),
               what="the vassal's pidfile")
    # The pidfile comes before the socket listens.
    wait_for_port(port)
    http10_get(port, "/")
    pid = int((tmp_path / "v.pid").read_text())
    # Any descriptor of the vassal's (its own may take the number 7).
    links = {os.readlink(f"/proc/{pid}/fd/{fd}")
             for fd in os.listdir(f"/proc/{pid}/fd")}
    assert (str(tmp_path / "seven") in links) == safe


def test_a_negative_safe_fd_is_refused(procs, tmp_path):
    emperor = procs.ugu("--emperor", str(tmp_path), "--safe-fd", "-1")
    assert emperor.wait() == 1
    assert "option 'safe-fd': must be >= 0" in emperor.output()


# -- chdir, force-cwd, and where a master's reload starts again -----------

def _vassals(tmp_path):
    """v/a.ini, a vassal both servers run, in `tmp_path`."""
    (tmp_path / "app.py").write_text(
        "def application(e, s):\n    s('200 OK', [])\n    return [b'ok']\n")
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "a.ini").write_text(
        f"[uwsgi]\nhttp-socket = 127.0.0.1:0\n"
        f"wsgi-file = {tmp_path / 'app.py'}\n")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_chdir_is_said_and_glob_patterns_still_match_from_the_start(
        start_server, tmp_path, server):
    _vassals(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    emperor = start_server(server, ["--emperor", "v/*.ini",
                                    "--chdir", "elsewhere"],
                           cwd=tmp_path, env=ENV)
    emperor.wait_for_log(r"\[emperor\] vassal v/a\.ini has been spawned")
    assert re.search(r"\*\*\* Starting uWSGI .*\n(.*\n)*chdir\(\) to "
                     r"elsewhere\n(.*\n)*\*\*\* starting uWSGI Emperor",
                     emperor.output())


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_chdir_to_no_folder_stops_the_emperor(start_server, tmp_path,
                                                 server):
    _vassals(tmp_path)
    emperor = start_server(server, ["--emperor", "v/*.ini",
                                    "--chdir", "missing"],
                           cwd=tmp_path, env=ENV)
    assert emperor.wait() == 1
    out = emperor.output()
    assert "chdir() to missing\n" in out
    assert "No such file or directory" in out
    assert "starting uWSGI Emperor" not in out


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_force_cwd_is_where_glob_patterns_match_from(start_server, tmp_path,
                                                      server):
    _vassals(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    emperor = start_server(server, ["--emperor", "v/*.ini",
                                    "--force-cwd", str(tmp_path)],
                           cwd=tmp_path / "elsewhere", env=ENV)
    emperor.wait_for_log(r"\[emperor\] vassal v/a\.ini has been spawned")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_masters_reload_buries_the_emperor_then_says_where_it_restarts(
        start_server, tmp_path, server):
    """uWSGI's order: the Emperor is waited for before the reload's
    lines, which say the folder the new image starts from."""
    _vassals(tmp_path)
    (tmp_path / "elsewhere").mkdir()
    master = start_server(server, ["--master", "--emperor", "v/*.ini",
                                   "--chdir", "elsewhere"],
                          cwd=tmp_path, env=ENV)
    ready = r"\[emperor\] vassal v/a\.ini is ready to accept requests"
    master.wait_for_log(ready)
    master.send_signal(signal.SIGHUP)
    master.wait_for_log(r"gracefully \(RE\)spawned uWSGI master process")
    master.wait_for_log(ready, count=2)
    home = re.escape(os.path.realpath(tmp_path))
    assert re.search(r"waiting for Emperor death\.\.\.\n(.*\n)*"
                     r"The Emperor has been buried \(pid: \d+\)\n"
                     r"\.\.\.gracefully killing workers\.\.\.\n"
                     r"binary reloading uWSGI\.\.\.\n"
                     rf"chdir\(\) to {home}\n"
                     r"closing all non-uwsgi socket fds > 2 "
                     r"\(max_fd = \d+\)\.\.\.\n"
                     r"running ", master.output())


# -- the start-up options of an instance that is an Emperor ---------------

@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("master", [False, True])
def test_the_emperor_writes_its_pidfiles_and_vacuum_takes_them_away(
        start_server, tmp_path, server, master):
    """pidfile and pidfile2 hold the Emperor's pid, or its master's;
    safe-pidfile is a master's only."""
    _vassals(tmp_path)
    argv = ["--emperor", "v/*.ini", "--pidfile", "p1", "--pidfile2", "p2",
            "--safe-pidfile", "sp", "--vacuum"]
    emperor = start_server(server, [*argv, "--master"] if master else argv,
                           cwd=tmp_path, env=ENV)
    emperor.wait_for_log(r"\[emperor\] vassal v/a\.ini is ready to accept "
                         r"requests")
    for name in ("p1", "p2"):
        assert (tmp_path / name).read_text().strip() == str(emperor.pid)
    assert (tmp_path / "sp").exists() == master
    emperor.send_signal(signal.SIGINT)
    assert emperor.wait() == 0
    out = emperor.output()
    assert "VACUUM: pidfile removed.\nVACUUM: pidfile2 removed.\n" in out
    assert not any((tmp_path / name).exists() for name in ("p1", "p2", "sp"))


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_an_emperor_waiting_for_a_socket_in_vain_exits_1(start_server,
                                                         tmp_path, server):
    _vassals(tmp_path)
    port = free_port()
    emperor = start_server(server, ["--emperor", "v/*.ini",
                                    "--wait-for-socket", f"127.0.0.1:{port}",
                                    "--wait-for-socket-timeout", "1"],
                           cwd=tmp_path, env=ENV)
    assert emperor.wait() == 1
    out = emperor.output()
    assert f"waiting for 127.0.0.1:{port} (max 1 seconds) ...\n" in out
    assert "starting uWSGI Emperor" not in out


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_envdir_prio_and_limit_nproc_reach_the_vassals(start_server,
                                                       tmp_path, server):
    _vassals(tmp_path)
    with open(tmp_path / "v" / "a.ini", "a") as f:
        f.write(f"pidfile = {tmp_path / 'a.pid'}\n")
    (tmp_path / "envd").mkdir()
    (tmp_path / "envd" / "ENVD_X").write_text("from the envdir")
    emperor = start_server(server, ["--emperor", "v/*.ini",
                                    "--envdir", "envd", "--prio", "5",
                                    "--limit-nproc", "5000"],
                           cwd=tmp_path, env=ENV)
    emperor.wait_for_log(r"\[emperor\] vassal v/a\.ini is ready to accept "
                         r"requests")
    vassal = int((tmp_path / "a.pid").read_text())
    environ = Path(f"/proc/{vassal}/environ").read_bytes().split(b"\0")
    assert b"ENVD_X=from the envdir" in environ
    for pid in (emperor.pid, vassal):
        assert os.getpriority(os.PRIO_PROCESS, pid) == 5
        assert re.search(r"Max processes\s+5000\s+5000",
                         Path(f"/proc/{pid}/limits").read_text())
    out = emperor.output()
    assert "limiting number of processes to 5000...\n" in out
    assert "scheduler priority set to 5\n" in out


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("option, signum, line", [
    ("die-on-term", signal.SIGTERM, "goodbye to uWSGI.\n"),
    ("exit-on-reload", signal.SIGHUP, "uWSGI: GAME OVER (insert coin)\n"),
])
def test_a_masters_end_options_end_it(start_server, tmp_path, server,
                                      option, signum, line):
    _vassals(tmp_path)
    master = start_server(server, ["--master", "--emperor", "v/*.ini",
                                   f"--{option}"], cwd=tmp_path, env=ENV)
    master.wait_for_log(r"\[emperor\] vassal v/a\.ini is ready to accept "
                        r"requests")
    master.send_signal(signum)
    assert master.wait() == 0
    out = master.output()
    assert out.endswith(line)
    assert "binary reloading" not in out


@pytest.mark.parametrize("option, value", [
    ("touch-reload", "t"), ("master-fifo", "f"), ("attach-daemon", "true"),
    ("cron", "-1 -1 -1 -1 -1 true"), ("spooler", "spool"),
    ("shared-socket", "127.0.0.1:0"), ("chroot", "/")])
def test_what_the_emperor_does_not_run_is_refused(procs, tmp_path, option,
                                                  value):
    _vassals(tmp_path)
    emperor = procs.ugu("--emperor", "v/*.ini", f"--{option}", value,
                        cwd=tmp_path, env=ENV)
    assert emperor.wait() == 1
    assert f"ugu: command line: option '{option}': ugu's Emperor does not " \
           f"run it yet" in emperor.output()


def test_an_emperor_failing_under_a_master_is_said_without_a_traceback(
        procs, tmp_path):
    _vassals(tmp_path)
    master = procs.ugu("--master", "--emperor", "v/*.ini",
                       "--emperor-pidfile", str(tmp_path / "no" / "p"),
                       cwd=tmp_path, env=ENV)
    master.wait_for_log(r"!!! Emperor died !!!", count=2)
    out = master.output()
    assert "ugu: command line: option 'emperor-pidfile': cannot write " \
           f"{tmp_path / 'no' / 'p'}: No such file or directory\n" in out
    assert "Traceback" not in out
