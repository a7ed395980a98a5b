"""The Emperor: pure cores (monitor diff, blacklist, vassal record), then
real Emperor processes.

Most process tests run a stand-in vassal: the Emperor runs each vassal
through `emperor-wrapper`, a script beside the INI files that starts the
stand-in with the arguments a vassal gets.  The stand-in speaks the link
as its INI's `[fake]` section says, so every Emperor behaviour can be
driven without depending on the vassal master.  Tests at the end run the
real vassal master.
"""

import json
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import time
from pathlib import Path

import pytest

from tests.support import (REPO, children_of, free_port, group_members,
                           uwsgi_request, wait_for_port, wait_until,
                           write_ini)
from ugu.emperor import monitor, spawn
from ugu.emperor.monitor import Added, Changed, Found, Removed
from ugu.emperor.throttle import Blacklist, Verdict
from ugu.emperor.vassal import Vassal
from ugu.link import ToEmperor
from ugu.options.errors import ConfigError

CTIME = r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4} - "

FAKE_VASSAL = '''\
"""Stand-in for `python -m ugu --ini NAME`, driven by its [fake] section;
a config without one runs the real ugu."""
import configparser, json, os, signal, socket, sys, time

signal.signal(signal.SIGINT, signal.SIG_DFL)
name = sys.argv[-1]
ini = configparser.ConfigParser()
ini.read(name)
if not ini.has_section("fake"):
    os.execv(sys.executable, [sys.executable, "-P", "-m", "ugu",
                              *sys.argv[1:]])
fake = ini["fake"]


def say(what):
    # One write per line, so that vassals starting together never mix.
    os.write(1, f"fake vassal {name} {what}\\n".encode())


def open_fds():
    fds = []
    for fd in range(64):
        try:
            os.fstat(fd)
        except OSError:
            continue
        fds.append(fd)
    return fds


say("up " + json.dumps({"pid": os.getpid(), "cwd": os.getcwd(),
                        "fds": open_fds(), "argv": sys.argv,
                        "stdin": os.readlink("/proc/self/fd/0"),
                        "fd": os.environ["UWSGI_EMPEROR_FD"],
                        "uid": os.getuid(), "gid": os.getgid(),
                        "at": time.monotonic(),
                        "env": {k: v for k, v in os.environ.items()
                                if k.startswith("UWSGI_")}}))
link = socket.socket(fileno=int(os.environ["UWSGI_EMPEROR_FD"]))
for byte in fake.get("send", "").split():
    link.send(bytes([int(byte)]))
if "exit" in fake:
    sys.exit(int(fake["exit"]))
if fake.get("close-link"):
    link.close()
    while True:
        signal.pause()
while True:
    order = link.recv(1)
    if not order:
        say("lost its emperor")
        while fake.get("on-eof") == "ignore":
            signal.pause()
        sys.exit(0)
    if order == b"\\x00":
        say("told to stop")
        if fake.get("on-stop") != "ignore":
            sys.exit(0)
    elif order == b"\\x01":
        say("told to reload")
        link.send(b"\\x05")
'''


# -- monitor: the diff ----------------------------------------------------

def test_diff_reports_added_changed_and_removed():
    found = [Found("a.ini", 10, "/x"), Found("b.ini", 12, "/x")]
    events = monitor.diff({"b.ini": 11, "c.ini": 5}, found)
    assert events == [Added(found[0]), Changed(found[1]), Removed("c.ini")]


def test_diff_ignores_an_mtime_that_did_not_grow():
    found = [Found("a.ini", 10, "/x"), Found("b.ini", 3, "/x")]
    assert monitor.diff({"a.ini": 10, "b.ini": 4}, found) == []


# -- monitor: scanning the filesystem -------------------------------------

def _vassal_tree(tmp_path):
    (tmp_path / "v").mkdir()
    for name in ("a.ini", "b.ini", "notes.txt"):
        (tmp_path / "v" / name).write_text("[uwsgi]\n")
    (tmp_path / "v" / "dir.ini").mkdir()
    os.symlink(tmp_path / "missing.ini", tmp_path / "v" / "dangling.ini")
    os.utime(tmp_path / "v" / "a.ini", (1000, 1000.7))
    return tmp_path / "v"


def test_glob_monitor_names_vassals_as_matched(tmp_path, monkeypatch):
    _vassal_tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    found = monitor.GlobMonitor("v/*").scan()
    assert found == [Found("v/a.ini", 1000, str(tmp_path)),
                     Found("v/b.ini", found[1].mtime, str(tmp_path))]
    absolute = monitor.GlobMonitor(f"{tmp_path}/v/*.ini").scan()
    assert [f.name for f in absolute] == [f"{tmp_path}/v/a.ini",
                                          f"{tmp_path}/v/b.ini"]


def test_dir_monitor_names_vassals_bare_and_starts_them_inside(tmp_path):
    directory = _vassal_tree(tmp_path)
    found = monitor.DirMonitor(str(directory)).scan()
    assert [(f.name, f.cwd) for f in found] == [
        ("a.ini", str(directory)), ("b.ini", str(directory))]


def test_dir_monitor_on_a_missing_directory_finds_nothing(tmp_path):
    assert monitor.DirMonitor(str(tmp_path / "gone")).scan() == []


def test_monitor_for_chooses_like_uwsgi(tmp_path, monkeypatch):
    _vassal_tree(tmp_path)
    monkeypatch.chdir(tmp_path)
    assert isinstance(monitor.monitor_for("v"), monitor.DirMonitor)
    assert isinstance(monitor.monitor_for("v*"), monitor.DirMonitor)
    assert isinstance(monitor.monitor_for("v/*.ini"), monitor.GlobMonitor)
    assert isinstance(monitor.monitor_for("nothing/*"), monitor.GlobMonitor)
    forced = monitor.monitor_for("glob://v")
    assert isinstance(forced, monitor.GlobMonitor) and forced.pattern == "v"
    assert monitor.monitor_for("dir://v").directory == str(tmp_path / "v")
    with pytest.raises(ConfigError, match="zmq://"):
        monitor.monitor_for("zmq://tcp://127.0.0.1:5555")


def test_scan_all_keeps_the_first_find_of_a_name(tmp_path):
    directory = _vassal_tree(tmp_path)
    first = monitor.DirMonitor(str(directory))
    second = monitor.GlobMonitor(f"{directory}/*.ini")
    names = [f.name for f in monitor.scan_all([first, first, second])]
    assert names == ["a.ini", "b.ini", f"{directory}/a.ini",
                     f"{directory}/b.ini"]


# -- throttle -------------------------------------------------------------

def test_blacklist_first_wait_is_the_step_in_microseconds_then_waits_grow():
    blacklist = Blacklist(step=1.0, ceiling=180.0)
    assert blacklist.due("a") == 0.0
    assert blacklist.failed("a", now=100.0) == []
    assert blacklist.due("a") == pytest.approx(100.001)
    assert blacklist.failed("a", now=101.0) == []
    assert blacklist.due("a") == pytest.approx(102.001)
    assert blacklist.failed("a", now=103.0) == [Verdict.BAD_BEHAVING]
    assert blacklist.due("a") == pytest.approx(105.001)
    assert blacklist.failed("a", now=106.0) == []
    assert blacklist.due("a") == pytest.approx(109.001)
    assert blacklist.due("b") == 0.0


def test_blacklist_halves_a_wait_that_reached_the_ceiling():
    blacklist = Blacklist(step=1.0, ceiling=2.5)
    verdicts = [blacklist.failed("a", now=float(t)) for t in range(7)]
    assert verdicts[4] == [Verdict.MAX_THROTTLE]
    assert verdicts[6] == [Verdict.MAX_THROTTLE]
    assert verdicts[5] == []
    assert blacklist.due("a") == pytest.approx(6.0 + 2.5005 / 2)


def test_loyalty_is_forgiven():
    blacklist = Blacklist(step=1.0, ceiling=180.0)
    for t in range(3):
        blacklist.failed("a", now=float(t))
    blacklist.forgive("a")
    assert blacklist.due("a") == 0.0
    assert blacklist.failed("a", now=10.0) == []


# -- the vassal record ----------------------------------------------------

def test_vassal_news_spawned_once_accepting_and_loyal_always():
    vassal = Vassal("a.ini", 1, None, 0)
    heard = [vassal.hear(b) for b in (1, 5, 1, 5, 17, 17, 26, 26, 22, 99)]
    assert heard == [ToEmperor.SPAWNED, ToEmperor.ACCEPTING, None,
                     ToEmperor.ACCEPTING, ToEmperor.LOYAL, ToEmperor.LOYAL,
                     ToEmperor.HEARTBEAT, ToEmperor.HEARTBEAT,
                     ToEmperor.STOP_ME, None]
    assert vassal.ready and vassal.loyal and vassal.accepting
    assert {"spawned", "accepting", "loyal", "heartbeat"} <= set(
        vassal.stamps)


def test_a_reload_counts_as_a_respawn_and_resets_readiness():
    vassal = Vassal("a.ini", 1, None, 10)
    vassal.hear(1)
    vassal.hear(5)
    vassal.reloaded(12)
    assert (vassal.mtime, vassal.respawns) == (12, 1)
    assert not vassal.ready and not vassal.accepting


def test_vassal_argv_puts_templates_around_the_config_as_uwsgi():
    templates = spawn.Templates(("--set", "a=1"), ("--inherit", "t.ini"))
    # -P: a folder named ugu where the vassal starts must not hide ugu.
    assert spawn.vassal_argv("v.ini", templates) == [
        sys.executable, "-P", "-m", "ugu", "--set", "a=1", "--ini", "v.ini",
        "--inherit", "t.ini"]
    wrapped = spawn.Templates(("--set", "a=1"), (), "my-uwsgi")
    assert spawn.vassal_argv("v.xml", wrapped) == [
        "my-uwsgi", "--set", "a=1", "--xml", "v.xml"]


def test_templates_keep_uwsgi_order():
    config = {"vassals-inherit-before": ["ib"],
              "vassals-include-before": ["cb"], "vassal-set": ["k=v"],
              "vassals-inherit": ["ia"], "vassals-include": ["ca"],
              "emperor-wrapper": None, "emperor-wrapper-override": [],
              "emperor-wrapper-fallback": [], "emperor-magic-exec": False,
              "vassals-start-hook": None, "safe-fd": []}
    templates = spawn.Templates.from_config(config)
    assert templates.before == ("--inherit", "ib", "--include", "cb",
                                "--set", "k=v")
    assert templates.after == ("--inherit", "ia", "--include", "ca")


def test_vassal_env_renames_uwsgi_vassal_variables():
    env = spawn.vassal_env({"UWSGI_VASSAL_PROCESSES": "2",
                            "UWSGI_PROCESSES": "9", "UWSGI_RELOADS": "3",
                            "PATH": "/bin"})
    assert env == {"UWSGI_PROCESSES": "2", "PATH": "/bin",
                   "UWSGI_EMPEROR_FD": "3"}


# -- real Emperor processes -----------------------------------------------

ENV = {"PYTHONPATH": str(REPO)}


@pytest.fixture
def court(tmp_path):
    """A directory of stand-in vassals: `court.add(name, **fake)`."""
    return make_court(tmp_path / "vassals")


WRAPPER = "fake-vassal"


def make_court(directory):
    directory.mkdir(parents=True)
    (directory / "fake_vassal.py").write_text(FAKE_VASSAL)
    wrapper = directory / WRAPPER
    wrapper.write_text(f'#!/bin/sh\nexec "{sys.executable}" '
                       f'"{directory / "fake_vassal.py"}" "$@"\n')
    wrapper.chmod(0o755)

    class Court:
        path = directory

        def add(self, name, **fake):
            pairs = [(k.replace("_", "-"), v) for k, v in fake.items()]
            return write_ini(directory / name, uwsgi=[("master", "true")],
                             fake=pairs)
    return Court()


def start_emperor(procs, tmp_path, *args, court_path=None):
    """The Emperor, run in tmp_path; where a court was made (by default
    the fixture's, tmp_path/vassals), its vassals are the stand-ins."""
    wrapper = (court_path or tmp_path / "vassals") / WRAPPER
    if wrapper.exists():
        args = (*args, "--emperor-wrapper", str(wrapper))
    return procs.ugu(*args, cwd=tmp_path, env=ENV)


def vassal_up(emperor, name, count=1, timeout=10):
    """The stand-in's report of its start, as a dict."""
    match = emperor.wait_for_log(rf"fake vassal {re.escape(name)} up (.*)",
                                 count=count, timeout=timeout)
    return json.loads(match.group(1))


def count(emperor, pattern):
    return len(re.findall(pattern, emperor.output()))


def gone(pid):
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1]
    except OSError:
        return True
    return fields.split()[0] == "Z"


def cpu_seconds(pid):
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def test_vassal_is_spawned_with_its_link_and_nothing_else(procs, tmp_path,
                                                          court):
    court.add("a.ini", send="1 5 17")
    emperor = start_emperor(procs, tmp_path, "--emperor", str(court.path))
    up = vassal_up(emperor, "a.ini")
    assert up["argv"][-2:] == ["--ini", "a.ini"]
    assert up["cwd"] == str(court.path)
    assert up["fd"] == "3" and up["fds"] == [0, 1, 2, 3]
    assert up["stdin"] == "/dev/null"
    for news in ("has been spawned", "is ready to accept requests",
                 "is now loyal"):
        emperor.wait_for_log(rf"(?m)^{CTIME}\[emperor\] vassal a\.ini "
                             rf"{news}$")
    # Every uWSGI instance's first line, the warning of one without a
    # master, then the Emperor's.
    assert re.match(r"\*\*\* Starting uWSGI 2\.0\.31 .* \*\*\*\n"
                    r"\*\*\* WARNING: you are running uWSGI without its "
                    r"master process manager \*\*\*\n"
                    r"\*\*\* starting uWSGI Emperor \*\*\*\n",
                    emperor.output())


def test_broken_vassal_is_throttled_while_others_run(procs, tmp_path,
                                                     court):
    """A vassal whose config fails (the real ugu, exiting 1 at once) is
    held back 0.3 ms, 0.3, 0.6, 0.9 s, each time until a later scan
    (every second here, and whenever the Emperor wakes); the Emperor
    idles in between, while a healthy vassal is left alone."""
    court.add("good.ini", send="1 5")
    (tmp_path / "broken").mkdir()
    write_ini(tmp_path / "broken" / "bad.ini",
              uwsgi=[("strict", "true"), ("no-such-option", "1")])
    emperor = start_emperor(procs, tmp_path, "--emperor", str(court.path),
                            "--emperor", "broken/*.ini",
                            "--emperor-throttle", "300", "--emperor-freq", "1")
    good = vassal_up(emperor, "good.ini")
    removed = r"\[emperor\] removed uwsgi instance broken/bad\.ini"
    emperor.wait_for_log(removed)
    start, cpu = time.monotonic(), cpu_seconds(emperor.pid)
    emperor.wait_for_log(removed, count=5)
    elapsed = time.monotonic() - start
    cpu = cpu_seconds(emperor.pid) - cpu
    assert 3.0 <= elapsed < 12
    assert cpu < 0.5, f"the Emperor used {cpu:.2f}s of CPU throttling"
    log = emperor.output()
    unloyal = ("[emperor] unloyal bad behaving vassal found: broken/bad.ini "
               "throttling it...")
    assert log.count(unloyal) == 1
    removals = [m.start() for m in re.finditer(removed, log)]
    assert removals[2] < log.index(unloyal) < removals[3]
    assert "[strict-mode] unknown config directive: no-such-option" in log
    assert count(emperor, r"curse the uwsgi instance good\.ini") == 0
    assert not gone(good["pid"])


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM,
                                    signal.SIGQUIT])
def test_ragnarok_stops_every_vassal_and_exits_0(procs, tmp_path, court,
                                                 signum):
    court.add("a.ini", send="1 5")
    court.add("b.ini", send="1 5")
    emperor = start_emperor(procs, tmp_path, "--emperor", str(court.path))
    for name in ("a.ini", "b.ini"):
        emperor.wait_for_log(rf"vassal {name} is ready to accept requests")
    emperor.send_signal(signum)
    assert emperor.wait() == 0
    log = emperor.output()
    assert "\n[emperor] *** RAGNAROK EVOKED ***\n" in log
    for name in ("a.ini", "b.ini"):
        assert f"[emperor] stop the uwsgi instance {name}\n" in log
        assert f"fake vassal {name} told to stop" in log
        assert f"[emperor] removed uwsgi instance {name}\n" in log
    assert re.search(rf"{CTIME}The Emperor is buried\.\n$", log)
    assert "curse" not in log
    wait_until(lambda: not group_members(emperor.pgid), 5,
               what="the Emperor's process group to empty")


def test_no_mercy_for_a_vassal_that_ignores_stop(procs, tmp_path, court):
    court.add("stubborn.ini", send="1", on_stop="ignore")
    emperor = start_emperor(procs, tmp_path, "--emperor", str(court.path),
                            "--reload-mercy", "1")
    emperor.wait_for_log(r"vassal stubborn\.ini has been spawned")
    emperor.send_signal(signal.SIGINT)
    assert emperor.wait() == 0
    log = emperor.output()
    assert "fake vassal stubborn.ini told to stop" in log
    assert re.search(rf"{CTIME}\[emperor\] NO MERCY for vassal "
                     r"stubborn\.ini !!!\n", log)
    assert "[emperor] removed uwsgi instance stubborn.ini" in log
    wait_until(lambda: not group_members(emperor.pgid), 5,
               what="the Emperor's process group to empty")


def test_a_second_ragnarok_says_the_mercy_left(procs, tmp_path, court):
    """uWSGI's Emperor gives its vassals 30 s where reload-mercy is 0."""
    court.add("stubborn.ini", send="1", on_stop="ignore")
    emperor = start_emperor(procs, tmp_path, "--emperor", str(court.path))
    stubborn = vassal_up(emperor, "stubborn.ini")
    emperor.send_signal(signal.SIGINT)
    emperor.wait_for_log(r"fake vassal stubborn\.ini told to stop")
    emperor.send_signal(signal.SIGINT)
    emperor.wait_for_log(r"\n\[emperor\] \*\*\* RAGNAROK ALREADY EVOKED "
                         r"\(mercyless in (30|29) seconds\)\*\*\*\n")
    os.kill(stubborn["pid"], signal.SIGKILL)
    assert emperor.wait() == 0
    assert "NO MERCY" not in emperor.output()


def test_kill_9_of_the_emperor_takes_every_vassal_down(procs, tmp_path,
                                                       court):
    court.add("a.ini", on_eof="ignore")
    court.add("b.ini", on_eof="ignore")
    emperor = start_emperor(procs, tmp_path, "--emperor", str(court.path))
    pids = [vassal_up(emperor, name)["pid"] for name in ("a.ini", "b.ini")]
    emperor.send_signal(signal.SIGKILL)
    # They ignore the link's EOF: only the kernel's parent-death signal
    # can end them this fast.
    wait_until(lambda: all(gone(pid) for pid in pids), 2,
               what="the vassals to die with their Emperor")


def test_a_killed_loyal_vassal_is_cursed_and_respawned_at_once(
        procs, tmp_path, court):
    court.add("a.ini", send="1 5 17")
    emperor = start_emperor(procs, tmp_path, "--emperor", str(court.path))
    first = vassal_up(emperor, "a.ini")
    emperor.wait_for_log(r"vassal a\.ini is now loyal")
    os.kill(first["pid"], signal.SIGKILL)
    emperor.wait_for_log(rf"{CTIME}\[emperor\] curse the uwsgi instance "
                         rf"a\.ini \(pid: {first['pid']}\)\n{CTIME}"
                         r"\[emperor\] removed uwsgi instance a\.ini\n")
    # At once, not at the next emperor-freq (3 s) scan.
    second = vassal_up(emperor, "a.ini", count=2, timeout=2.5)
    assert second["pid"] != first["pid"]
    emperor.wait_for_log(r"vassal a\.ini has been spawned", count=2)


def test_a_killed_unloyal_vassal_comes_back_at_the_next_scan(
        procs, tmp_path, court):
    """As uWSGI's: held back a millisecond (the step read as
    microseconds), which the scan at its death misses; the next scan is
    emperor-freq seconds later."""
    court.add("a.ini", send="1 5")
    emperor = start_emperor(procs, tmp_path, "--emperor", str(court.path),
                            "--emperor-freq", "2")
    first = vassal_up(emperor, "a.ini")
    emperor.wait_for_log(r"vassal a\.ini is ready to accept requests")
    os.kill(first["pid"], signal.SIGKILL)
    emperor.wait_for_log(r"removed uwsgi instance a\.ini")
    removed = time.monotonic()
    vassal_up(emperor, "a.ini", count=2)
    assert time.monotonic() - removed >= 1.5


def test_removed_file_stops_its_vassal_for_good(procs, tmp_path, court):
    court.add("a.ini", send="1 5")
    court.add("b.ini", send="1 5")
    emperor = start_emperor(procs, tmp_path, "--emperor", str(court.path),
                            "--emperor-freq", "1")
    a = vassal_up(emperor, "a.ini")
    vassal_up(emperor, "b.ini")
    (court.path / "a.ini").unlink()
    emperor.wait_for_log(rf"{CTIME}\[emperor\] stop the uwsgi instance "
                         r"a\.ini\n")
    emperor.wait_for_log(r"fake vassal a\.ini told to stop")
    emperor.wait_for_log(r"\[emperor\] removed uwsgi instance a\.ini")
    wait_until(lambda: gone(a["pid"]), 5, what="a.ini to exit")
    court.add("c.ini")
    vassal_up(emperor, "c.ini")   # a later scan
    assert count(emperor, r"fake vassal a\.ini up") == 1
    assert "curse" not in emperor.output()


def test_touched_file_reloads_its_vassal(procs, tmp_path, court):
    path = court.add("a.ini", send="1 5")
    emperor = start_emperor(procs, tmp_path, "--emperor", str(court.path),
                            "--emperor-freq", "1")
    first = vassal_up(emperor, "a.ini")
    emperor.wait_for_log(r"vassal a\.ini is ready to accept requests")
    later = path.stat().st_mtime + 10
    os.utime(path, (later, later))
    emperor.wait_for_log(rf"{CTIME}\[emperor\] reload the uwsgi instance "
                         r"a\.ini\n")
    emperor.wait_for_log(r"fake vassal a\.ini told to reload")
    emperor.wait_for_log(r"vassal a\.ini is ready to accept requests",
                         count=2)
    assert count(emperor, r"fake vassal a\.ini up") == 1
    assert not gone(first["pid"])


def test_sighup_reloads_and_sigusr1_lists_every_vassal(procs, tmp_path,
                                                       court):
    court.add("a.ini", send="1 5 17")
    court.add("b.ini", send="1 5")
    emperor = start_emperor(procs, tmp_path, "--emperor", str(court.path))
    emperor.wait_for_log(r"vassal a\.ini is now loyal")
    emperor.wait_for_log(r"vassal b\.ini is ready to accept requests")
    emperor.send_signal(signal.SIGHUP)
    for name in ("a.ini", "b.ini"):
        emperor.wait_for_log(rf"\[emperor\] reload the uwsgi instance "
                             rf"{name}")
        emperor.wait_for_log(rf"fake vassal {name} told to reload")
    emperor.send_signal(signal.SIGUSR1)
    mtime = int((court.path / "a.ini").stat().st_mtime)
    emperor.wait_for_log(rf"(?m)^vassal instance a\.ini \(last modified "
                         rf"{mtime}\) status 0 loyal 1 zerg 0$")
    emperor.wait_for_log(r"(?m)^vassal instance b\.ini \(last modified "
                         r"\d+\) status 0 loyal 0 zerg 0$")


def test_exit_26_exiles_a_vassal_until_its_file_changes(procs, tmp_path,
                                                        court):
    path = court.add("a.ini", exit="26")
    emperor = start_emperor(procs, tmp_path, "--emperor", str(court.path),
                            "--emperor-freq", "1")
    emperor.wait_for_log(r"\[emperor\] removed uwsgi instance a\.ini")
    court.add("b.ini")
    vassal_up(emperor, "b.ini")   # a later scan
    assert count(emperor, r"fake vassal a\.ini up") == 1
    later = path.stat().st_mtime + 10
    os.utime(path, (later, later))
    vassal_up(emperor, "a.ini", count=2)


def test_a_loyal_vassal_is_not_throttled(procs, tmp_path, court):
    """Its loyalty arrives just before it exits: the Emperor reads it
    before burying it, so the deaths feed no blacklist."""
    court.add("a.ini", send="1 17", exit="1")
    emperor = start_emperor(procs, tmp_path, "--emperor", str(court.path))
    emperor.wait_for_log(r"removed uwsgi instance a\.ini", count=4,
                         timeout=5)
    assert "unloyal" not in emperor.output()
    assert count(emperor, r"vassal a\.ini is now loyal") >= 4


def test_vassal_that_drops_its_link_is_cursed_then_killed(procs, tmp_path,
                                                          court):
    court.add("a.ini", close_link="true")
    emperor = start_emperor(procs, tmp_path, "--emperor", str(court.path),
                            "--emperor-curse-tolerance", "1")
    first = vassal_up(emperor, "a.ini")
    emperor.wait_for_log(rf"curse the uwsgi instance a\.ini "
                         rf"\(pid: {first['pid']}\)")
    emperor.wait_for_log(r"NO MERCY for vassal a\.ini !!!")
    emperor.wait_for_log(r"removed uwsgi instance a\.ini")
    assert gone(first["pid"])
    assert vassal_up(emperor, "a.ini", count=2)["pid"] != first["pid"]


def test_unknown_monitor_scheme_is_a_config_error(procs, tmp_path):
    emperor = start_emperor(procs, tmp_path, "--emperor", "zmq://x")
    assert emperor.wait() == 1
    assert "glob:// and dir://" in emperor.output()


def test_file_changes_are_seen_at_once_not_at_the_next_scan(
        procs, tmp_path, court):
    """With inotify, a 60 s emperor-freq does not delay anything."""
    court.add("a.ini", send="1 5")
    emperor = start_emperor(procs, tmp_path, "--emperor", str(court.path),
                            "--emperor-freq", "60")
    vassal_up(emperor, "a.ini")
    began = time.monotonic()
    court.add("b.ini", send="1 5")
    vassal_up(emperor, "b.ini", timeout=1)
    path = court.path / "a.ini"
    later = path.stat().st_mtime + 10
    os.utime(path, (later, later))
    emperor.wait_for_log(r"fake vassal a\.ini told to reload", timeout=1)
    (court.path / "b.ini").unlink()
    emperor.wait_for_log(r"fake vassal b\.ini told to stop", timeout=1)
    print(f"\nadd, touch, remove seen in {time.monotonic() - began:.3f} s")


def test_glob_monitor_watches_where_new_matches_appear(tmp_path):
    for site in ("a", "b"):
        (tmp_path / "www" / site).mkdir(parents=True)
    (tmp_path / "www" / "file.ini").write_text("")
    watched = monitor.GlobMonitor(f"{tmp_path}/www/*/uwsgi.ini")
    assert sorted(watched.directories()) == [
        str(tmp_path / "www"), str(tmp_path / "www" / "a"),
        str(tmp_path / "www" / "b")]
    assert monitor.DirMonitor(str(tmp_path)).directories() == [
        str(tmp_path)]


def test_quick_deaths_are_throttled_with_growing_waits(procs, tmp_path,
                                                       court):
    court.add("dies.ini", exit="1")
    emperor = start_emperor(procs, tmp_path, "--emperor", str(court.path),
                            "--emperor-throttle", "700", "--emperor-freq",
                            "1")
    cpu = cpu_seconds(emperor.pid)
    starts = [vassal_up(emperor, "dies.ini", count=n)["at"]
              for n in range(1, 6)]
    cpu = cpu_seconds(emperor.pid) - cpu
    gaps = [b - a for a, b in zip(starts, starts[1:])]
    print(f"\ngaps between spawns: {[round(g, 2) for g in gaps]}, "
          f"Emperor CPU {cpu:.2f} s")
    # Held back 0.7 ms, 0.7, 1.4, 2.1 s after each death, and then
    # until the next scan: at least a second apart, then two, then three.
    for gap, least in zip(gaps, (1, 1, 2, 3)):
        assert gap >= least - 0.05
    assert cpu < 0.5


def test_sigurg_clears_the_blacklist(procs, tmp_path, court):
    court.add("dies.ini", exit="1")
    emperor = start_emperor(procs, tmp_path, "--emperor", str(court.path),
                            "--emperor-throttle", "60000")
    vassal_up(emperor, "dies.ini", count=2)
    emperor.wait_for_log(r"removed uwsgi instance dies\.ini", count=2)
    emperor.send_signal(signal.SIGURG)
    emperor.wait_for_log(rf"{CTIME}\[emperor\] cleaning up blacklist \.\.\.")
    vassal_up(emperor, "dies.ini", count=3, timeout=5)


def test_stop_me_stops_the_vassal_and_the_scan_brings_it_back(
        procs, tmp_path, court):
    court.add("idle.ini", send="1 17 22")
    emperor = start_emperor(procs, tmp_path, "--emperor", str(court.path),
                            "--emperor-freq", "1")
    first = vassal_up(emperor, "idle.ini")
    emperor.wait_for_log(r"stop the uwsgi instance idle\.ini")
    emperor.wait_for_log(r"fake vassal idle\.ini told to stop")
    assert vassal_up(emperor, "idle.ini", count=2)["pid"] != first["pid"]
    assert "curse" not in emperor.output()


def test_a_silent_vassal_is_respawned_once_it_has_beaten(procs, tmp_path,
                                                         court):
    court.add("beats.ini", send="1 26")
    court.add("never.ini", send="1")
    emperor = start_emperor(procs, tmp_path, "--emperor", str(court.path),
                            "--emperor-required-heartbeat", "1")
    first = vassal_up(emperor, "beats.ini")
    emperor.wait_for_log(r"(?m)^\[emperor\] vassal beats\.ini sent no "
                         r"heartbeat in last 1 seconds, brutally respawning "
                         r"it\.\.\.$")
    assert vassal_up(emperor, "beats.ini", count=2)["pid"] != first["pid"]
    assert "never.ini sent no heartbeat" not in emperor.output()
    assert count(emperor, r"fake vassal never\.ini up") == 1


def test_vassal_set_and_uwsgi_vassal_variables(procs, tmp_path, court):
    court.add("a.ini")
    emperor = procs.ugu("--emperor", str(court.path), "--vassal-set",
                        "processes=2", "--vassals-set", "x=y",
                        "--emperor-wrapper", str(court.path / WRAPPER),
                        cwd=tmp_path,
                        env={**ENV, "UWSGI_VASSAL_HARAKIRI": "30"})
    up = vassal_up(emperor, "a.ini")
    assert up["argv"][1:] == ["--set", "processes=2", "--set", "x=y",
                              "--ini", "a.ini"]
    assert up["env"]["UWSGI_HARAKIRI"] == "30"
    assert "UWSGI_VASSAL_HARAKIRI" not in up["env"]


def _runnable_by_others(path):
    path = Path(os.path.realpath(path))
    return all(p.stat().st_mode & 0o001 for p in (path, *path.parents))


def test_tyrant_runs_each_vassal_as_its_files_owner(procs, tmp_path):
    # Outside pytest's private tmp, so that the owner can read its files.
    public = Path(tempfile.mkdtemp(prefix="ugu-tyrant-"))
    try:
        public.chmod(0o755)
        court = make_court(public / "vassals")
        court.path.chmod(0o755)
        os.chown(court.add("nobody.ini"), 65534, 65534)
        court.add("root.ini")
        emperor = start_emperor(procs, tmp_path, "--emperor",
                                str(court.path), "--emperor-tyrant",
                                court_path=court.path)
        emperor.wait_for_log(r"(?m)^\[emperor-tyrant\] dropping privileges "
                             r"to 65534 65534 for instance nobody\.ini$")
        if _runnable_by_others(sys.executable):
            up = vassal_up(emperor, "nobody.ini")
            assert (up["uid"], up["gid"]) == (65534, 65534)
        else:
            # This interpreter lives where nobody may not exec it (/root):
            # the wrapper's exec refused for want of permission shows the
            # switch.
            emperor.wait_for_log(r"fake_vassal\.py.*[Pp]ermission denied|"
                                 r"[Pp]ermission denied.*fake_vassal\.py|"
                                 r"exec: .*: Permission denied")
        emperor.wait_for_log(r"(?m)^\[emperor-tyrant\] invalid permissions "
                             r"for vassal root\.ini$")
        assert "fake vassal root.ini up" not in emperor.output()
    finally:
        shutil.rmtree(public)


# -- with a master --------------------------------------------------------

def test_master_respawns_the_emperor_and_stops_on_sigint(procs, tmp_path,
                                                         court):
    court.add("a.ini", send="1 5", on_eof="ignore")
    master = start_emperor(procs, tmp_path, "--master", "--emperor",
                           str(court.path))
    master.wait_for_log(rf"(?m)^spawned uWSGI master process "
                        rf"\(pid: {master.pid}\)$")
    first = vassal_up(master, "a.ini")
    emperor = wait_until(lambda: children_of(master.pid), 5,
                         what="the Emperor")[0]
    os.kill(emperor, signal.SIGKILL)
    master.wait_for_log(rf"{CTIME}!!! Emperor died !!!")
    wait_until(lambda: gone(first["pid"]), 2,
               what="the vassal to die with its Emperor")
    second = vassal_up(master, "a.ini", count=2)
    assert count(master, r"\*\*\* starting uWSGI Emperor \*\*\*") == 2
    master.send_signal(signal.SIGINT)
    assert master.wait() == 0
    log = master.output()
    assert "SIGINT/SIGTERM received...killing workers...\n" in log
    assert "[emperor] *** RAGNAROK EVOKED ***" in log
    assert re.search(r"The Emperor has been buried \(pid: \d+\)\n"
                     r"goodbye to uWSGI\.\n$", log)
    assert gone(second["pid"])
    wait_until(lambda: not group_members(master.pgid), 5,
               what="the master's process group to empty")


def test_master_reloads_on_sigterm_in_place(procs, tmp_path, court):
    court.add("a.ini", send="1 5")
    master = start_emperor(procs, tmp_path, "--master", "--emperor",
                           str(court.path))
    first = vassal_up(master, "a.ini")
    master.send_signal(signal.SIGTERM)
    master.wait_for_log(r"\.\.\.brutally killing workers\.\.\.\n")
    master.wait_for_log(r"binary reloading uWSGI\.\.\.")
    master.wait_for_log(rf"gracefully \(RE\)spawned uWSGI master process "
                        rf"\(pid: {master.pid}\)")
    second = vassal_up(master, "a.ini", count=2)
    assert gone(first["pid"]) and second["pid"] != first["pid"]


# -- with the real vassal master ------------------------------------------

APP = textwrap.dedent('''\
    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hello from the vassal"]
''')


@pytest.fixture
def app_vassal(tmp_path):
    """A real vassal config in tmp_path/vassals: (path, port)."""
    directory = tmp_path / "vassals"
    directory.mkdir()
    (directory / "app.py").write_text(APP)
    port = free_port()
    path = write_ini(directory / "app.ini", uwsgi=[
        ("master", "true"), ("socket", f"127.0.0.1:{port}"),
        ("chdir", "%d"), ("wsgi-file", "app.py")])
    return path, port


def test_real_vassal_reports_spawned_ready_and_loyal(procs, tmp_path,
                                                     app_vassal):
    path, port = app_vassal
    emperor = start_emperor(procs, tmp_path, "--emperor",
                            "vassals/*.ini")
    emperor.wait_for_log(r"\[emperor\] vassal vassals/app\.ini has been "
                         r"spawned")
    emperor.wait_for_log(r"\[emperor\] vassal vassals/app\.ini is ready to "
                         r"accept requests")
    assert b"hello from the vassal" in uwsgi_request(port)
    emperor.wait_for_log(r"\[emperor\] vassal vassals/app\.ini is now "
                         r"loyal")
    emperor.send_signal(signal.SIGINT)
    assert emperor.wait() == 0
    wait_until(lambda: not group_members(emperor.pgid), 5,
               what="the Emperor's process group to empty")


def test_a_vassal_of_many_workers_is_ready_once(procs, tmp_path,
                                                app_vassal):
    """Worker 1 alone tells the Emperor the vassal accepts, as uWSGI's:
    one line a vassal, not one a worker."""
    path, port = app_vassal
    with path.open("a") as ini:
        ini.write("processes = 3\nhook-accepting = print:worker up\n")
    emperor = start_emperor(procs, tmp_path, "--emperor",
                            "vassals/*.ini")
    emperor.wait_for_log(r"worker up\n", count=3)
    assert b"hello from the vassal" in uwsgi_request(port)
    # The loyal byte comes after every worker's own on the one link.
    emperor.wait_for_log(r"vassal vassals/app\.ini is now loyal")
    assert count(emperor, r"vassal vassals/app\.ini is ready to accept "
                          r"requests") == 1


def test_real_vassal_respawns_reloads_and_stops(procs, tmp_path,
                                                app_vassal):
    path, port = app_vassal
    emperor = start_emperor(procs, tmp_path, "--emperor",
                            "vassals/*.ini", "--emperor-freq", "1")
    ready = r"vassal vassals/app\.ini is ready to accept requests"
    emperor.wait_for_log(ready)
    vassal = children_of(emperor.pid)[0]
    os.kill(vassal, signal.SIGKILL)
    emperor.wait_for_log(rf"curse the uwsgi instance vassals/app\.ini "
                         rf"\(pid: {vassal}\)")
    emperor.wait_for_log(ready, count=2)
    wait_for_port(port)
    assert b"hello from the vassal" in uwsgi_request(port)
    later = path.stat().st_mtime + 10
    os.utime(path, (later, later))
    emperor.wait_for_log(r"reload the uwsgi instance vassals/app\.ini")
    emperor.wait_for_log(ready, count=3)
    assert b"hello from the vassal" in uwsgi_request(port)
    path.unlink()
    emperor.wait_for_log(r"stop the uwsgi instance vassals/app\.ini")
    emperor.wait_for_log(r"removed uwsgi instance vassals/app\.ini",
                         count=2)
    wait_until(lambda: group_members(emperor.pgid) == [emperor.pid], 10,
               what="only the Emperor to be left")


def test_ctrl_c_ends_master_emperor_and_real_vassals(procs, tmp_path,
                                                     app_vassal):
    """Ctrl-C signals the whole foreground group at once."""
    path, port = app_vassal
    master = start_emperor(procs, tmp_path, "--master", "--emperor",
                           "vassals/*.ini")
    master.wait_for_log(r"vassal vassals/app\.ini is ready to accept")
    assert b"hello from the vassal" in uwsgi_request(port)
    os.killpg(master.pgid, signal.SIGINT)
    assert master.wait() == 0
    assert master.output().endswith("goodbye to uWSGI.\n")
    wait_until(lambda: not group_members(master.pgid), 5,
               what="the master's process group to empty")


def test_kill_9_of_the_emperor_takes_real_vassals_down(procs, tmp_path,
                                                       app_vassal):
    path, port = app_vassal
    emperor = start_emperor(procs, tmp_path, "--emperor", "vassals/*.ini")
    emperor.wait_for_log(r"vassal vassals/app\.ini is ready to accept")
    emperor.send_signal(signal.SIGKILL)
    wait_until(lambda: not group_members(emperor.pgid), 2,
               what="the vassal master and its workers to die")


def test_a_folder_named_ugu_where_vassals_start_is_not_imported(
        procs, tmp_path, app_vassal):
    """A checkout of ugu beside the configs: vassals, and a vassal's
    reload, run the installed ugu, not the folder of that name."""
    path, port = app_vassal
    (tmp_path / "ugu").mkdir()
    (tmp_path / "ugu" / "__init__.py").write_text(
        'raise SystemExit("the folder named ugu was imported")\n')
    # As the `ugu` script runs it: the working directory not on sys.path.
    emperor = procs.start([sys.executable, "-P", "-m", "ugu", "--emperor",
                           "vassals/*.ini", "--emperor-freq", "1"],
                          cwd=tmp_path, env=ENV)
    ready = r"vassal vassals/app\.ini is ready to accept requests"
    emperor.wait_for_log(ready)
    assert b"hello from the vassal" in uwsgi_request(port)
    later = path.stat().st_mtime + 10
    os.utime(path, (later, later))
    emperor.wait_for_log(r"binary reloading uWSGI\.\.\.")
    emperor.wait_for_log(ready, count=2)
    wait_for_port(port)
    assert b"hello from the vassal" in uwsgi_request(port)
    assert "the folder named ugu was imported" not in emperor.output()


def test_each_worker_process_announces_its_loyalty(procs, tmp_path,
                                                   app_vassal):
    """As in uWSGI: a worker's first request sends the byte, and a
    respawned worker is a new process that sends it again."""
    path, port = app_vassal
    emperor = start_emperor(procs, tmp_path, "--emperor", "vassals/*.ini")
    emperor.wait_for_log(r"vassal vassals/app\.ini is ready to accept "
                         r"requests")
    assert b"hello from the vassal" in uwsgi_request(port)
    loyal = r"\[emperor\] vassal vassals/app\.ini is now loyal"
    emperor.wait_for_log(loyal)
    [master] = children_of(emperor.pid)
    [worker] = children_of(master)
    os.kill(worker, signal.SIGKILL)
    emperor.wait_for_log(r"Respawned uWSGI worker 1")
    wait_until(lambda: children_of(master) not in ([], [worker]), 5,
               what="the new worker")
    assert b"hello from the vassal" in uwsgi_request(port)
    emperor.wait_for_log(loyal, count=2)


# Ctrl-C just as the master forks the Emperor.  The child holds the
# master's handlers until it drops them: a signal that comes then must wait
# for it to have its own, not be lost with them.  This runner sends the
# group a SIGINT right after the fork and makes the child slow to drop the
# handlers, as a loaded machine may.
FORK_RACE = '''
import os, signal, sys, time
from ugu import proc
from ugu.cli import main

top = os.getpid()
real_fork, real_reset = os.fork, proc.reset_signals


def fork():
    pid = real_fork()
    if pid and os.getpid() == top:
        os.killpg(0, signal.SIGINT)
    return pid


def reset_signals():
    if os.getpid() != top:
        time.sleep(1)
    real_reset()


os.fork, proc.reset_signals = fork, reset_signals
sys.exit(main(sys.argv[1:]))
'''


def test_ctrl_c_as_the_emperor_is_forked_ends_it(procs, tmp_path):
    p = procs.start([sys.executable, "-c", FORK_RACE, "--master",
                     "--emperor", str(tmp_path / "*.ini")], cwd=tmp_path,
                    env={"PYTHONPATH": str(REPO)})
    try:
        assert p.wait(timeout=15) == 0
    except subprocess.TimeoutExpired:
        raise AssertionError(f"still running after Ctrl-C:\n{p.output()}")
    assert re.search(r"The Emperor has been buried \(pid: \d+\)\n"
                     r"goodbye to uWSGI.\n$", p.output())


def test_a_reload_goes_on_without_its_loggers_file(procs, tmp_path, court):
    """A master Emperor reloaded (SIGHUP) once its logger's folder is
    gone goes on, as uWSGI's: its lines are dropped until the file can
    be made again, and then reach it."""
    court.add("a.ini")
    logs = tmp_path / "logs"
    logs.mkdir()
    said = logs / "emperor.log"
    emperor = start_emperor(procs, tmp_path, "--master", "--emperor",
                            str(court.path), "--emperor-freq", "1",
                            "--logger", f"file:{said}")
    wait_until(lambda: said.exists() and "fake vassal a.ini up"
               in said.read_text(), what="the Emperor's first lines")
    said.unlink()
    logs.rmdir()
    emperor.send_signal(signal.SIGHUP)
    # The reloaded Emperor writes where its file will be, /dev/null.
    wait_until(lambda: os.readlink(f"/proc/{emperor.pid}/fd/2")
               == os.devnull, what="the reloaded Emperor")
    logs.mkdir()
    court.add("b.ini", send="1 5")
    wait_until(lambda: said.exists() and "vassal b.ini is ready to "
               "accept requests" in said.read_text(),
               what="a line of the reloaded Emperor in the file")
    assert emperor.popen.poll() is None
