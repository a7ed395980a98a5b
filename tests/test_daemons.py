"""External daemons (`attach-daemon`): spawned beside the workers,
respawned when they die, stopped with the instance, each compared with the
real uWSGI where both behave alike.

A daemon runs in a session of its own, out of the test's process group:
every test records the groups its daemons ran in and `daemons` kills any
still alive at its end, after checking that none is.
"""

import json
import os
import re
import shutil
import signal
import socket
import stat
import sys
import tempfile
import textwrap
import time
import urllib.request
from pathlib import Path

import pytest

from tests import support
from tests.support import group_members, wait_until
from ugu.options.errors import ConfigError
from ugu.vassal.daemon_options import Daemon, parse
from ugu.vassal.daemons import throttle

APP = textwrap.dedent('''
    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
''')

# A daemon that reports how it was started (daemon-PID.json), then idles;
# TERM, INT or HUP is noted in signals.log and ends it; a "stubborn" one
# ignores TERM.
DAEMON = textwrap.dedent('''
    import json, os, signal, sys, time

    def noted(signum, frame):
        with open("signals.log", "a") as f:
            f.write(f"{os.getpid()} {signum}\\n")
        sys.exit(0)

    if sys.argv[1:] == ["stubborn"]:
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
    else:
        for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
            signal.signal(signum, noted)
    fds = sorted(int(fd) for fd in os.listdir("/proc/self/fd"))
    report = {"pid": os.getpid(), "ppid": os.getppid(),
              "pgid": os.getpgid(0), "sid": os.getsid(0),
              "cwd": os.getcwd(), "fds": fds,
              "stdin": os.readlink("/proc/self/fd/0"),
              "foo": os.environ.get("FOO"), "at": time.monotonic()}
    with open(f"daemon-{os.getpid()}.tmp", "w") as f:
        json.dump(report, f)
    os.rename(f"daemon-{os.getpid()}.tmp", f"daemon-{os.getpid()}.json")
    while True:
        time.sleep(1)
''')


@pytest.fixture
def site():
    folder = Path(tempfile.mkdtemp(prefix="ugu-daemons-"))
    (folder / "app.py").write_text(APP)
    (folder / "daemon.py").write_text(DAEMON)
    yield folder
    shutil.rmtree(folder)


@pytest.fixture
def daemons(site):
    """The daemons' reports.  Asked for first, so that its end comes after
    the instance's (`procs`): every group a daemon ran in must then be
    empty (it is emptied either way)."""
    watch = Reports(site)
    yield watch
    left = {pgid: group_members(pgid) for pgid in watch.groups()}
    for pgid, members in left.items():
        if members:
            os.killpg(pgid, signal.SIGKILL)
    assert not any(left.values()), f"daemons left running: {left}"


class Reports:
    def __init__(self, site):
        self.site = site

    def all(self):
        found = []
        for path in sorted(self.site.glob("daemon-*.json")):
            found.append(json.loads(path.read_text()))
        return found

    def wait(self, count=1, timeout=20):
        """The `count`th report, in the order the daemons started."""
        def enough():
            reports = sorted(self.all(), key=lambda r: r["at"])
            return reports if len(reports) >= count else None
        reports = wait_until(enough, timeout, what=f"{count} daemon(s)")
        return reports[count - 1]

    def groups(self):
        return {r["pgid"] for r in self.all()}

    def end(self, report):
        """Stop a daemon the instance leaves running, as a smart one."""
        os.killpg(report["pgid"], signal.SIGKILL)
        wait_until(lambda: not group_members(report["pgid"]), 5,
                   what="the daemon's group to empty")

    def signals(self):
        path = self.site / "signals.log"
        if not path.exists():
            return []
        return [tuple(map(int, line.split()))
                for line in path.read_text().splitlines()]


def command(*args):
    return " ".join([sys.executable, "daemon.py", *args])


class Instance:
    """ugu, or the real uWSGI (`binary`), with an http-socket and the
    given options, in `site`."""

    def __init__(self, procs, site, binary=None, pairs=(), stdin=None):
        self.port = support.free_port()
        options = [("master", "true"), ("http-socket",
                                        f"127.0.0.1:{self.port}"),
                   ("wsgi-file", "app.py"), *pairs]
        if binary is None:
            options.insert(0, ("strict", "true"))
        if ("daemons-honour-stdin", "true") in options:
            # The instance's own stdin is /dev/null unless it honours it
            # too.
            options.append(("honour-stdin", "true"))
        support.write_ini(site / "instance.ini", uwsgi=options)
        argv = [binary] if binary else [*support.UGU]
        argv += ["--ini", "instance.ini"]
        if stdin:
            # The instance's own stdin, for the daemons to keep or not.
            argv = ["sh", "-c", 'exec "$@" < ' + stdin, "sh", *argv]
        self.p = procs.start(argv, cwd=site)

    def log(self, pattern, **kw):
        return self.p.wait_for_log(pattern, **kw)

    def ready(self):
        """Once its one worker has answered: uWSGI's worker loses a SIGINT
        that comes while it is still starting."""
        self.log(r"spawned uWSGI worker 1 ")
        support.wait_for_port(self.port)
        self.serving()
        return self

    def serving(self):
        url = f"http://127.0.0.1:{self.port}/"
        with urllib.request.urlopen(url, timeout=10) as r:
            assert r.read() == b"ok"


@pytest.fixture(params=["ugu", "uwsgi"])
def server(request):
    """None for ugu, else the real uWSGI's path."""
    if request.param == "ugu":
        return None
    return request.getfixturevalue("uwsgi_binary")


def _alive(pid):
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1]
    except OSError:
        return False
    return fields.split()[0] != "Z"


# -- the throttle, as uWSGI computes it ------------------------------------

def test_throttle_follows_uwsgi_rule():
    daemon = Daemon("cmd")
    assert throttle(daemon, 100) == 0         # never spawned
    daemon.respawns, daemon.last_spawn = 1, 100
    assert throttle(daemon, 100) == 1         # died at once
    assert throttle(daemon, 104) == 0         # lived past the window
    daemon.respawns = 5
    assert throttle(daemon, 101) == 4         # respawns - seconds lived
    assert throttle(daemon, 103) == 2
    daemon.respawns = 2
    assert throttle(daemon, 103) == 1         # never under a second
    daemon.respawns = 1000
    assert throttle(daemon, 100) == 300       # uWSGI's cap
    daemon.max_throttle = 7
    assert throttle(daemon, 100) == 7         # attach-daemon2's own


# -- the option lines --------------------------------------------------------

def test_attach_daemon2_reads_uwsgi_keys_and_escapes():
    d = parse("attach-daemon2", r"cmd=celery -Q a\,b,pidfile=/p,freq=3,"
                                r"daemonize=1,stopsignal=2,reload_signal=1,"
                                r"stdin=y,uid=65534,gid=65534,chdir=/tmp,"
                                r"max_throttle=9,notifypid=1,touch=/a;/b,"
                                r"control=yes")
    assert (d.command, d.pidfile, d.freq, d.daemonize) == \
        ("celery -Q a,b", "/p", 3, True)
    assert (d.stop_signal, d.reload_signal, d.honour_stdin) == (2, 1, True)
    assert (d.uid, d.gid, d.chdir, d.max_throttle) == (65534, 65534,
                                                        "/tmp", 9)
    assert (d.notifypid, d.touch, d.control) == (True, ("/a", "/b"), True)
    assert parse("attach-daemon2", "exec=x").stop_signal == signal.SIGTERM
    smart = parse("smart-attach-daemon2", "/run/d.pid,4 cmd -x")
    assert (smart.pidfile, smart.freq, smart.command, smart.daemonize) == \
        ("/run/d.pid", 4, "cmd -x", True)


@pytest.mark.parametrize("value, words", [
    ("pidfile=/p", "you need to specify a 'command' key"),
    ("cmd=x,ns_pid=1", "key 'ns_pid': a daemon in a PID namespace"),
    ("cmd=x,legion=a", "unknown key 'legion'"),
    ("cmd=x,daemonize=0", "key 'daemonize' is on whatever its value"),
    ("cmd=x,stopsignal=TERM", "'TERM' is not a number"),
    ("cmd=x,y", "'y' is not KEY=VALUE"),
])
def test_attach_daemon2_refuses_what_it_cannot_honour(value, words):
    with pytest.raises(ConfigError, match=re.escape(words)):
        parse("attach-daemon2", value)


# -- lifecycle, side by side with uWSGI ------------------------------------

def test_a_daemon_starts_after_the_workers_and_stops_with_sigint(
        daemons, procs, site, server):
    cmd = command()
    v = Instance(procs, site, server, [("attach-daemon", cmd),
                                       ("env", "FOO=bar")]).ready()
    report = daemons.wait()
    shell = report["ppid"]
    # Its shell leads a session of its own, out of the master's group.
    assert report["sid"] == report["pgid"] == shell != v.p.pgid
    assert Path(f"/proc/{shell}/cmdline").read_bytes() == \
        b"/bin/sh\0-c\0" + cmd.encode() + b"\0"
    assert int(Path(f"/proc/{shell}/stat").read_text().rsplit(")", 1)[1]
               .split()[1]) == v.p.pid
    assert report["cwd"] == str(site)
    assert report["stdin"] == "/dev/null"
    # stdio only (and the descriptor that listed them).
    assert report["fds"] == [0, 1, 2, 3]
    assert report["foo"] == "bar"
    log = v.p.output()
    assert f'[uwsgi-daemons] spawning "{cmd}" (uid: {os.getuid()} gid: ' \
           f'{os.getgid()})\n' in log
    assert log.index("spawned uWSGI worker 1") < \
        log.index("[uwsgi-daemons] spawning")
    v.p.send_signal(signal.SIGINT)
    assert v.p.wait() == 0
    assert re.search(rf"SIGINT/SIGTERM received\.\.\.killing workers\.\.\.\n"
                     rf"(?:.*\n)*?"
                     rf"\[uwsgi-daemons\] stopping daemon \(pid: {shell}\): "
                     rf"{re.escape(cmd)}\n", v.p.output())
    assert daemons.signals() == [(report["pid"], signal.SIGTERM)]
    assert not group_members(report["pgid"])


def test_a_dead_daemon_is_respawned_and_a_quick_death_throttled(
        daemons, procs, site, server):
    cmd = command()
    v = Instance(procs, site, server, [("attach-daemon", cmd)]).ready()
    first = daemons.wait()
    os.kill(first["pid"], signal.SIGKILL)
    second = daemons.wait(2)
    assert second["pgid"] != first["pgid"]
    v.log(rf'\[uwsgi-daemons\] throttling "{re.escape(cmd)}" for 1 '
          rf'seconds\n\[uwsgi-daemons\] respawning "{re.escape(cmd)}" '
          rf'\(uid: \d+ gid: \d+\)\n')
    assert not group_members(first["pgid"])
    v.p.send_signal(signal.SIGINT)
    assert v.p.wait() == 0
    v.log(rf"stopping daemon \(pid: {second['ppid']}\)")


@pytest.mark.parametrize("signum, words", [
    (signal.SIGHUP, "gracefully"), (signal.SIGTERM, "brutally")])
def test_a_reload_stops_the_daemon_first_and_starts_it_again(
        daemons, procs, site, server, signum, words):
    cmd = command()
    v = Instance(procs, site, server, [("attach-daemon", cmd)]).ready()
    first = daemons.wait()
    v.p.send_signal(signum)
    # In this order; a worker's request line may come between them.
    v.log(rf"\[uwsgi-daemons\] stopping daemon \(pid: {first['ppid']}\): "
          rf"{re.escape(cmd)}\n(?:.*\n)*?\.\.\.{words} killing "
          rf"workers\.\.\.\n")
    second = daemons.wait(2)
    # A new instance: its first spawn, not a respawn.
    v.log(rf'gracefully \(RE\)spawned uWSGI master process(.*\n)*'
          rf'\[uwsgi-daemons\] spawning "{re.escape(cmd)}"')
    assert "respawning" not in v.p.output()
    assert not group_members(first["pgid"])
    assert (first["pid"], signal.SIGTERM) in daemons.signals()
    v.p.send_signal(signal.SIGINT)
    assert v.p.wait() == 0
    assert not group_members(second["pgid"])


def test_a_reload_of_the_workers_leaves_the_daemon_alone(
        daemons, procs, site, server):
    for name in ("workers", "chain"):
        (site / name).write_text("")
    v = Instance(procs, site, server, [
        ("attach-daemon", command()), ("touch-workers-reload", "workers"),
        ("touch-chain-reload", "chain")]).ready()
    report = daemons.wait()
    _touch(site / "workers")
    v.log(r"worker 1 killed successfully")
    _touch(site / "chain")
    v.log(r"chain reloading complete", timeout=20)
    assert "stopping daemon" not in v.p.output()
    assert _alive(report["pid"]) and len(daemons.all()) == 1
    v.p.send_signal(signal.SIGINT)
    assert v.p.wait() == 0


def test_a_daemon_deaf_to_sigterm_is_killed_after_reload_mercy(
        daemons, procs, site, server):
    # The shell, and the daemon after it, ignore SIGTERM.
    cmd = "trap '' TERM; " + command("stubborn")
    v = Instance(procs, site, server, [("attach-daemon", cmd),
                                       ("reload-mercy", "1")]).ready()
    report = daemons.wait()
    v.p.send_signal(signal.SIGINT)
    assert v.p.wait() == 0
    v.log(rf"\[uwsgi-daemons\] daemon did not die in time, killing "
          rf"\(pid: {report['ppid']}\): {re.escape(cmd)}\n")
    wait_until(lambda: not group_members(report["pgid"]), 5,
               what="the daemon's group to empty")


def test_daemons_honour_stdin_keeps_the_instance_stdin(
        daemons, procs, site, server):
    (site / "input.txt").write_text("")
    v = Instance(procs, site, server, [("attach-daemon", command()),
                                       ("daemons-honour-stdin", "true")],
                 stdin="input.txt").ready()
    assert daemons.wait()["stdin"] == str(site / "input.txt")
    v.p.send_signal(signal.SIGINT)
    assert v.p.wait() == 0


# -- smart daemons, watched through a pidfile -----------------------------

def test_smart2_daemon_is_detached_respawned_and_left_running(
        daemons, procs, site, server):
    cmd = command()
    pidfile = site / "daemon.pid"
    v = Instance(procs, site, server, [
        ("smart-attach-daemon2", f"{pidfile} {cmd}")]).ready()
    first = daemons.wait()
    # The master wrote the pidfile: the shell's pid, a session leader.
    assert int(pidfile.read_text()) == first["pgid"] == first["ppid"]
    # In this order; a worker's request line may come between them.
    v.log(rf"writing pidfile to {re.escape(str(pidfile))}\n(?:.*\n)*?"
          rf'\[uwsgi-daemons\] spawning "{re.escape(cmd)}" \(uid: \d+ '
          rf"gid: \d+\)\n")
    v.log(rf'\[uwsgi-daemons\] found changed pid for "{re.escape(cmd)}" '
          rf"\(old_pid: \d+ new_pid: {first['pgid']}\)")
    os.killpg(first["pgid"], signal.SIGKILL)
    second = daemons.wait(2)
    v.log(rf'\[uwsgi-daemons\] respawning "{re.escape(cmd)}"')
    v.p.send_signal(signal.SIGINT)
    assert v.p.wait() == 0
    assert "stopping daemon" not in v.p.output()
    # Left running, as uWSGI leaves it: the next instance takes it over.
    assert group_members(second["pgid"])
    again = Instance(procs, site, server, [
        ("smart-attach-daemon2", f"{pidfile} {cmd}")]).ready()
    again.log(rf'\[uwsgi-daemons\] found valid/active pidfile for '
              rf'"{re.escape(cmd)}" \(pid: {second["pgid"]}\)')
    assert "spawning" not in again.p.output()
    # Not the daemon's group: it is in a session of its own.
    again.p.stop(signal.SIGKILL)
    assert len(daemons.all()) == 2
    daemons.end(second)


def test_smart_daemon_is_followed_from_its_shell_to_its_pidfile(
        daemons, procs, site, server):
    """A smart daemon's command goes to the background by itself: here a
    shell that starts the daemon and writes its pid."""
    pidfile = site / "daemon.pid"
    cmd = f"{command()} & echo $! > {pidfile}"
    v = Instance(procs, site, server, [
        ("smart-attach-daemon", f"{pidfile},5 {cmd}")]).ready()
    report = daemons.wait()
    v.log(rf'\[uwsgi-daemons\] found changed pid for "{re.escape(cmd)}" '
          rf"\(old_pid: {report['pgid']} new_pid: {report['pid']}\)")
    v.p.send_signal(signal.SIGINT)
    assert v.p.wait() == 0
    assert _alive(report["pid"])
    daemons.end(report)


@pytest.mark.parametrize("value", ["daemon.pid", "daemon.pid,x sleep 9"])
def test_a_malformed_smart_daemon_is_refused_at_its_line(procs, site,
                                                         value):
    v = Instance(procs, site, pairs=[("smart-attach-daemon", value)])
    assert v.p.wait() == 1
    assert re.search(r"instance\.ini:\d+: option 'smart-attach-daemon': ",
                     v.p.output())


def test_a_smart_daemon_without_pidfile_is_refused_as_by_uwsgi(
        procs, site, uwsgi_binary):
    v = Instance(procs, site, uwsgi_binary,
                 [("smart-attach-daemon", "daemon.pid")])
    assert v.p.wait() == 1
    assert "invalid smart-attach-daemon syntax: daemon.pid\n" in \
        v.p.output()


# -- attach-daemon2 and control daemons ----------------------------------

def test_attach_daemon2_stop_and_reload_signals(daemons, procs, site,
                                                 server):
    cmd = command()
    v = Instance(procs, site, server, [("attach-daemon2", (
        f"cmd={cmd},stopsignal={int(signal.SIGINT)},"
        f"reloadsignal={int(signal.SIGHUP)}"))]).ready()
    first = daemons.wait()
    v.p.send_signal(signal.SIGHUP)
    second = daemons.wait(2)
    v.serving()
    v.p.send_signal(signal.SIGINT)
    assert v.p.wait() == 0
    assert sorted(daemons.signals()) == sorted([
        (first["pid"], signal.SIGHUP), (second["pid"], signal.SIGINT)])


def test_attach_daemon2_notifypid_tells_a_smart_daemon(daemons, procs,
                                                      site, server):
    """A smart daemon left running is still told of the end, with its
    stopsignal, once its pidfile has been followed to it."""
    cmd = command()
    v = Instance(procs, site, server, [("attach-daemon2", (
        f"cmd={cmd},pidfile={site / 'daemon.pid'},daemonize=1,"
        f"notifypid=1"))]).ready()
    report = daemons.wait()
    v.log(rf"found changed pid for .* new_pid: {report['pgid']}\)")
    v.p.send_signal(signal.SIGINT)
    assert v.p.wait() == 0
    wait_until(daemons.signals, 10, what="the daemon to be told")
    assert daemons.signals() == [(report["pid"], signal.SIGTERM)]
    assert "stopping daemon" not in v.p.output()


def test_attach_daemon2_chdir_uid_and_gid(procs, site, server):
    site.chmod(0o755)
    (site / "open").mkdir()
    (site / "open").chmod(0o777)
    # Backquotes: $(...) in a config is an environment variable.
    cmd = "echo $$ `id -u` `id -g` `pwd` > who; exec sleep 60"
    v = Instance(procs, site, server, [("attach-daemon2", (
        f"cmd={cmd},chdir={site / 'open'},uid=65534,gid=65534"))]).ready()
    who = wait_until(lambda: (site / "open" / "who").exists() and
                     (site / "open" / "who").read_text().split(), 20,
                     what="the daemon's report")
    group = int(who[0])
    try:
        assert who[1:] == ["65534", "65534", str(site / "open")]
        v.log(rf'spawning "{re.escape(cmd)}" \(uid: 65534 gid: 65534\)')
        v.p.send_signal(signal.SIGINT)
        assert v.p.wait() == 0
        assert not group_members(group)
    finally:
        if group_members(group):
            os.killpg(group, signal.SIGKILL)


def test_attach_daemon2_touch_restarts_the_daemon(daemons, procs, site,
                                                  server):
    (site / "restart").write_text("")
    cmd = command()
    v = Instance(procs, site, server, [
        ("attach-daemon2", f"cmd={cmd},touch=restart;later")]).ready()
    first = daemons.wait()
    v.log(r"unable to stat\(\) later, events will be triggered as soon as "
          r"the file is created")
    _touch(site / "restart")
    v.log(rf'\*\*\* restart has been touched\.\.\. reloading daemon '
          rf'"{re.escape(cmd)}" \(pid: {first["ppid"]}\) !!! \*\*\*')
    second = daemons.wait(2)
    assert (first["pid"], signal.SIGTERM) in daemons.signals()
    v.p.send_signal(signal.SIGINT)
    assert v.p.wait() == 0
    assert not group_members(second["pgid"])


def test_a_control_daemon_ends_the_instance_gracefully(daemons, procs, site,
                                                       server):
    (site / "go").write_text("")
    control = f"{command()} & while [ -e go ]; do sleep 0.1; done; exit 3"
    v = Instance(procs, site, server, [
        ("attach-control-daemon", control)]).ready()
    report = daemons.wait()
    (site / "go").unlink()
    assert v.p.wait() == 0
    out = v.p.output()
    assert re.search(rf" - graceful shutdown triggered\.\.\.\n(.*\n)*"
                     rf"\[uwsgi-daemons\] stopping daemon \(pid: "
                     rf"{report['pgid']}\): {re.escape(control)}\n(.*\n)*"
                     rf'daemon "{re.escape(control)}" \(pid: '
                     rf"{report['pgid']}\) annihilated\n", out)
    if server is None:
        # What the control daemon's shell left behind is stopped too.
        assert (report["pid"], signal.SIGTERM) in daemons.signals()
    else:
        # uWSGI looks for the shell only, and leaves the rest running.
        assert _alive(report["pid"])
        daemons.end(report)


# -- where ugu does more than uWSGI ----------------------------------------

def test_what_outlives_the_shell_is_still_stopped(daemons, procs, site):
    """uWSGI waits for the shell only: a program it started that ignores
    SIGTERM runs on after the instance.  ugu waits for the daemon's whole
    process group, and kills it after reload-mercy."""
    cmd = command("stubborn")
    v = Instance(procs, site, pairs=[("attach-daemon", cmd)]).ready()
    report = daemons.wait()
    started = time.monotonic()
    v.p.send_signal(signal.SIGINT)
    assert v.p.wait() == 0
    # The default mercy, 3 s, as uWSGI's where reload-mercy is unset.
    assert time.monotonic() - started >= 2.5
    v.log(rf"\[uwsgi-daemons\] daemon did not die in time, killing "
          rf"\(pid: {report['ppid']}\)")
    wait_until(lambda: not group_members(report["pgid"]), 5,
               what="the daemon's group to empty")


def test_a_throttled_respawn_does_not_hold_the_master(procs, site):
    """The throttle sleeps in the new child: meanwhile the master keeps
    its workers, and a shutdown ends the sleeping child at once.  (uWSGI's
    sleeping child still has its master's signal handlers: the SIGTERM
    that stops it makes it act as a second master, killing workers and
    holding the shutdown for worker-reload-mercy.)"""
    v = Instance(procs, site, pairs=[("attach-daemon", "exit 1")]).ready()
    v.log(r'throttling "exit 1" for 2 seconds')
    [sleeping] = [pid for pid in support.children_of(v.p.pid)
                  if os.getsid(pid) == pid]
    worker = [pid for pid in support.children_of(v.p.pid)
              if pid != sleeping][0]
    os.kill(worker, signal.SIGKILL)
    v.log(rf"DAMN ! worker \d \(pid: {worker}\) died, killed by signal 9 "
          rf":\( trying respawn \.\.\.\nRespawned uWSGI worker \d", timeout=1)
    started = time.monotonic()
    v.p.send_signal(signal.SIGINT)
    assert v.p.wait() == 0
    # Not a second more of the throttle's two.
    assert time.monotonic() - started < 1.2
    v.log(rf'stopping daemon \(pid: {sleeping}\): exit 1')
    wait_until(lambda: not group_members(sleeping), 5,
               what="the sleeping daemon to end")


# -- under the Emperor ------------------------------------------------------

def test_the_emperor_stops_a_vassals_daemon(daemons, procs, site):
    vassals = site / "vassals"
    vassals.mkdir()
    port = support.free_port()
    ini = support.write_ini(vassals / "app.ini", uwsgi=[
        ("master", "true"), ("http-socket", f"127.0.0.1:{port}"),
        ("chdir", str(site)), ("wsgi-file", "app.py"),
        ("attach-daemon", command())])
    emperor = procs.ugu("--emperor", "vassals/*.ini", cwd=site,
                        env={"PYTHONPATH": str(support.REPO)})
    emperor.wait_for_log(r"vassal vassals/app\.ini is ready to accept")
    first = daemons.wait()
    later = ini.stat().st_mtime + 10
    os.utime(ini, (later, later))
    second = daemons.wait(2)
    assert not group_members(first["pgid"])
    emperor.send_signal(signal.SIGINT)
    assert emperor.wait() == 0
    assert not group_members(second["pgid"])


def _touch(path, ahead=5):
    later = time.time() + ahead
    os.utime(path, (later, later))


def _write_fifo(path, letters):
    assert stat.S_ISFIFO(path.stat().st_mode)
    fd = os.open(path, os.O_WRONLY | os.O_NONBLOCK)
    try:
        os.write(fd, letters.encode())
    finally:
        os.close(fd)


def test_the_stats_list_the_daemons_as_uwsgis_do(daemons, procs, site,
                                                 server):
    """Between cwd and locks: each daemon's command, pid and respawns
    (uWSGI's is always 0: ugu's counts the spawns after the first)."""
    stats = support.free_port()
    cmd = command()
    v = Instance(procs, site, server, [("attach-daemon", cmd),
                                       ("stats", f"127.0.0.1:{stats}")])
    v.ready()
    report = daemons.wait()
    doc = json.loads(read_to_eof_from(stats))
    keys = list(doc)
    assert keys[keys.index("cwd") + 1:keys.index("locks")] == ["daemons"]
    assert doc["daemons"] == [{"cmd": cmd, "pid": report["ppid"],
                               "respawns": 0}]


def read_to_eof_from(port):
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        return support.read_to_eof(s)
