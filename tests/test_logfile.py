"""Log files and dates: `logto`, `logto2`, `log-reopen`, `log-truncate`,
`logdate`, the log master (`log-master`, `log-maxsize`, `touch-logrotate`,
`touch-logreopen`, the master fifo's `l` and `L`, `log-drain`,
`log-filter`), `logfile-chmod`, `logfile-chown` and `daemonize`, each run
on ugu and on the real uWSGI with the same INI file where both can."""

import grp
import os
import pwd
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
from pathlib import Path

import pytest

from tests import support
from ugu.options.resolve import resolve

APP = textwrap.dedent('''
    import sys
    print("app imported")

    def application(environ, start_response):
        print("print from", environ["PATH_INFO"])
        sys.stderr.write("stderr from " + environ["PATH_INFO"] + "\\n")
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"ok"]
''')
CTIME = r"\w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}"
SERVERS = ["ugu", "uwsgi"]


@pytest.fixture
def site(tmp_path):
    (tmp_path / "app.py").write_text(APP)
    (tmp_path / "sub").mkdir()
    return tmp_path


def serve(start_server, server, site, *pairs):
    """A master serving the app on an http-socket, started in `site`;
    (process, port)."""
    port = support.free_port()
    support.write_ini(site / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"),
        ("wsgi-file", site / "app.py"), ("master", "true"), *pairs])
    p = start_server(server, ["--ini", "app.ini"], cwd=site)
    support.wait_for_port(port)
    return p, port


get = support.http10_get


def wait_in_file(path, pattern, count=1):
    """Wait until `pattern` has matched `count` times in the file."""
    def found():
        text = path.read_text() if path.exists() else ""
        return len(re.findall(pattern, text, re.M)) >= count
    support.wait_until(found, what=f"{pattern!r} in {path}")
    return path.read_text()


def request_line(path):
    return rf"\[pid: \d+\|app: 0\|req: \d+/\d+\] .* GET {path} => "


def lines(p):
    """The process's own output (its terminal), without uWSGI's lines
    about running as root."""
    return [line for line in p.output().splitlines()
            if "as root" not in line]


# -- logto ------------------------------------------------------------------

@pytest.mark.parametrize("server", SERVERS)
def test_logto_takes_messages_requests_and_prints(start_server, site,
                                                  server):
    """After the line naming the config, everything goes to the file:
    the workers' and the master's messages, request lines, and what the
    app prints on stdout and stderr.  A relative path is taken from where
    the instance started, before `chdir`."""
    p, port = serve(start_server, server, site, ("processes", "2"),
                    ("chdir", site / "sub"), ("logto", "app.log"))
    assert get(port, "/x").endswith(b"ok")
    log_file = site / "app.log"
    wait_in_file(log_file, request_line("/x"))
    p.stop()
    assert lines(p) == ["[uWSGI] getting INI configuration from app.ini"]
    assert not (site / "sub" / "app.log").exists()
    assert log_file.stat().st_mode & 0o777 == 0o640 & ~_umask()
    text = log_file.read_text()
    for line in ("app imported", "spawned uWSGI worker 2 ",
                 "print from /x", "stderr from /x"):
        assert line in text


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("reopen", [False, True])
def test_a_reload_keeps_the_file_unless_log_reopen(start_server, site,
                                                    server, reopen):
    """What logrotate meets: the file renamed, then a reload (HUP).  The
    instance keeps writing to the renamed file, unless `log-reopen`
    makes the new master open the path again once it has read its
    config."""
    p, port = serve(start_server, server, site, ("logto", "app.log"),
                    ("log-reopen", "true" if reopen else "false"))
    log_file, rotated = site / "app.log", site / "app.log.1"
    # Once a request is served: uWSGI's worker may miss a HUP sent
    # sooner, and never stop.
    assert get(port, "/before").endswith(b"ok")
    wait_in_file(log_file, request_line("/before"))
    log_file.rename(rotated)
    p.send_signal(signal.SIGHUP)
    after_reload = log_file if reopen else rotated
    wait_in_file(after_reload, r"^gracefully \(RE\)spawned uWSGI master")
    wait_in_file(after_reload, r"^spawned uWSGI worker 1 ")
    support.wait_for_port(port)
    assert get(port, "/after").endswith(b"ok")
    wait_in_file(after_reload, request_line("/after"))
    # The new master names its config before it reopens the file.
    wait_in_file(rotated, r"^\[uWSGI\] getting INI configuration")
    assert log_file.exists() == reopen
    p.stop()


@pytest.mark.parametrize("server", SERVERS)
def test_an_emperor_and_its_vassal_each_log_to_their_file(start_server,
                                                          site, server):
    """The Emperor's logto takes what a vassal says until the vassal
    opens its own file: that it found the Emperor, and its config."""
    (site / "vassals").mkdir()
    port = support.free_port()
    support.write_ini(site / "vassals" / "v.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"),
        ("wsgi-file", site / "app.py"), ("logto", site / "v.log")])
    support.write_ini(site / "emperor.ini", uwsgi=[
        ("emperor", site / "vassals"), ("logto", "emperor.log")])
    p = start_server(server, ["--ini", "emperor.ini"], cwd=site)
    support.wait_for_port(port)
    assert get(port, "/v").endswith(b"ok")
    vassal_log = wait_in_file(site / "v.log", request_line("/v"))
    emperor_log = wait_in_file(site / "emperor.log",
                               r"\[emperor\] vassal v\.ini is ready")
    p.stop()
    assert lines(p) == ["[uWSGI] getting INI configuration from "
                        "emperor.ini"]
    assert "*** has_emperor mode detected (fd: " in emperor_log
    assert "[uWSGI] getting INI configuration from v.ini" in emperor_log
    assert "*** starting uWSGI Emperor ***" in emperor_log
    assert "spawned uWSGI worker 1 " not in emperor_log
    assert "has_emperor" not in vassal_log
    assert vassal_log.startswith("*** Starting uWSGI ")
    assert "print from /v" in vassal_log


@pytest.mark.parametrize("server", SERVERS)
def test_logto2_opens_after_the_banner(start_server, site, server):
    """logto2 is opened once privileges are dropped: the banner is
    written where the instance started, what follows (from the chdir
    line) in the file, whose path is taken from the start folder."""
    p, port = serve(start_server, server, site, ("chdir", site / "sub"),
                    ("logto2", "app.log"))
    assert get(port, "/x").endswith(b"ok")
    text = wait_in_file(site / "app.log", request_line("/x"))
    p.stop()
    out = "\n".join(lines(p))
    assert "*** Starting uWSGI " in out and "chdir() to" not in out
    assert text.startswith(f"chdir() to {site / 'sub'}\n")
    assert "spawned uWSGI worker 1 " in text


def test_logto_that_cannot_be_opened_stops_the_start(site):
    support.write_ini(site / "app.ini", uwsgi=[
        ("http-socket", "127.0.0.1:0"), ("logto", site / "no" / "x.log")])
    result = run_ugu(site, "--ini", "app.ini")
    assert result.returncode == 1
    assert result.stderr.endswith(
        f"app.ini:3: option 'logto': cannot open log file "
        f"{site / 'no' / 'x.log'}: No such file or directory\n")


def run_ugu(site, *args):
    return subprocess.run([*support.UGU, *args], cwd=site, text=True,
                          capture_output=True, timeout=30,
                          stdin=subprocess.DEVNULL)


# -- loggers: logger, req-logger ---------------------------------------------

@pytest.mark.parametrize("server", SERVERS)
def test_file_loggers_make_files_of_logtos_mode(start_server, site, server):
    """`file:` loggers create their files as logto does: readable by the
    owner's group, not by everyone."""
    p, port = serve(start_server, server, site, ("logger", "file:msg.log"),
                    ("req-logger", "file:req.log"))
    assert get(port, "/x").endswith(b"ok")
    wait_in_file(site / "req.log", request_line("/x"))
    p.stop()
    for name in ("msg.log", "req.log"):
        assert (site / name).stat().st_mode & 0o777 == 0o640 & ~_umask()


@pytest.mark.parametrize("server", SERVERS)
def test_a_file_logger_reads_uwsgis_logfile_key(start_server, site, server):
    """`file:logfile=PATH` names the file, a backslash keeping a comma in
    it, as uWSGI's key=value lists do."""
    p, port = serve(start_server, server, site,
                    ("req-logger", "file:logfile=a\\,b.log"))
    assert get(port, "/x").endswith(b"ok")
    wait_in_file(site / "a,b.log", request_line("/x"))
    p.stop()


@pytest.mark.parametrize("value, said", [
    ("logfile=a.log,maxsize=1000", "key 'maxsize': ugu's file: logger "
     "does not rotate its file; `logto = PATH` with `log-maxsize` (and "
     "`log-backupname`) does, for messages"),
    ("logfile=a.log,backupname=b.log", "key 'backupname': ugu's file: "),
    ("logfile=a.log,mode=600", "file: logger: 'mode=600' is not "
     "logfile=PATH (write file:PATH, or file:logfile=PATH)"),
    ("logfile=", "file: logger: the logfile key names no file")])
def test_a_file_logger_refuses_what_it_cannot_do(site, value, said):
    """uWSGI rotates the file at maxsize and ignores keys it does not
    know; ugu says so, rather than write to a file named `logfile=...`."""
    support.write_ini(site / "app.ini", uwsgi=[
        ("http-socket", "127.0.0.1:0"), ("master", "true"),
        ("logger", f"file:{value}")])
    result = run_ugu(site, "--ini", "app.ini")
    assert result.returncode == 1
    assert f"app.ini:4: option 'logger': {said}" in result.stderr
    assert sorted(os.listdir(site)) == ["app.ini", "app.py", "sub"]


@pytest.mark.parametrize("option", ["logger", "req-logger"])
def test_an_fd_logger_wants_an_open_descriptor(site, option):
    """uWSGI writes every line to a descriptor that is not open, and so
    loses them; ugu, started without fd 63, says so (and no traceback)."""
    result = run_ugu(site, "--http-socket", "127.0.0.1:0", "--master",
                     f"--{option}", "fd:63")
    assert result.returncode == 1
    assert result.stderr == (
        f"ugu: command line: option '{option}': logger 'fd:63': fd 63 is "
        "not open (Bad file descriptor): pass it to ugu open, or log to "
        "file:PATH\n")


# -- logdate ------------------------------------------------------------------

@pytest.mark.parametrize("option, value, prefix", [
    ("logdate", "true", CTIME + " - "), ("logdate", "ON", CTIME + " - "),
    ("log-date", "1", CTIME + " - "),
    ("logdate", "%%Y-%%m-%%d", r"\d{4}-\d\d-\d\d - "),
    ("logdate", "false", "false - "), ("logdate", "", " - "),
    # log-prefix is logdate under another name, in uWSGI too.
    ("log-prefix", "[app %%Y]", r"\[app \d{4}\] - "),
    # uWSGI has room for 63 bytes of date: a longer one is left out.
    ("logdate", "x" * 64, " - ")])
def test_logdate_prefixes_messages_as_uwsgi(site, uwsgi_binary, option,
                                            value, prefix):
    """Every message after the line naming the config carries the date
    (`processes = 0`: the instance says its first lines and ends)."""
    support.write_ini(site / "app.ini", uwsgi=[
        ("http-socket", "127.0.0.1:0"), ("processes", "0"),
        (option, value)])
    for argv in (support.UGU, [uwsgi_binary]):
        result = subprocess.run([*argv, "--ini", "app.ini"], cwd=site,
                                capture_output=True, text=True,
                                timeout=30, stdin=subprocess.DEVNULL)
        out = [line for line in result.stderr.splitlines()
               if "ugu: warning" not in line]
        assert out[0] == "[uWSGI] getting INI configuration from app.ini"
        assert re.fullmatch(prefix + r"\*\*\* Starting uWSGI .*", out[1])
        assert re.fullmatch(prefix + r"\*\*\* WARNING: you are running "
                            r"uWSGI without its master process manager "
                            r"\*\*\*", _line(out, "without its master"))


def _line(lines, text):
    return next(line for line in lines if text in line)


@pytest.mark.parametrize("server", SERVERS)
def test_logdate_leaves_request_lines_and_prints_alone(start_server, site,
                                                       server):
    p, port = serve(start_server, server, site, ("logdate", "true"),
                    ("show-config", "true"))
    assert get(port, "/x").endswith(b"ok")
    p.wait_for_log(request_line("/x"))
    p.send_signal(signal.SIGUSR1)
    p.wait_for_log(rf"{CTIME} - \tworker 1 app 0 \[\] requests: 1 ")
    p.stop()
    out = p.output()
    assert re.search(rf"^{CTIME} - spawned uWSGI worker 1 ", out, re.M)
    assert re.search(rf"^{CTIME} - goodbye to uWSGI\.$", out, re.M)
    assert re.search(r"^print from /x$", out, re.M)
    assert re.search(r"^app imported$", out, re.M)
    # show-config's dump: the date before each of uWSGI's messages.
    assert re.search(rf"^{CTIME} - \n;uWSGI instance configuration\n"
                     rf"\[uwsgi\]\n{CTIME} - ini = app.ini\n", out, re.M)
    assert re.search(rf"^{CTIME} - ;end of configuration\n\n", out, re.M)
    # SIGUSR1's dump too, and each line of its counters.
    assert re.search(rf"^{CTIME} - \tworkers total requests: 1\n{CTIME} - "
                     rf"-+\n{CTIME} - \tworker 1 app 0 ", out, re.M)


def test_verbose_lines_take_logdates_format(site):
    """Lines uWSGI always dates (the Emperor's news) use logdate's
    format where it gives one."""
    code = ("from ugu import log; log.use_logdate('%Y'); "
            "log.verbose('[emperor] news'); "
            "log.request_writer(str)('request')")
    result = subprocess.run([sys.executable, "-c", code],
                            capture_output=True, text=True, timeout=30,
                            cwd=support.REPO)
    assert re.fullmatch(r"\d{4} - \[emperor\] news\nrequest\n",
                        result.stderr)


# -- warnings -----------------------------------------------------------------

@pytest.mark.parametrize("text, warning", [
    ("log-reopen = true\n", "option 'log-reopen': does nothing without "
     "`logto = FILE`, as in uWSGI"),
    ("logto = a.log\nlogger = file:b.log\n", "option 'logto': does nothing "
     "beside `logger`, as in uWSGI: the logger takes every message"),
    ("log-date = off\n", "option 'log-date': 'off' is taken as a strftime "
     "format, as uWSGI takes it: every message starts 'off - ' (remove "
     "the line for undated messages)"),
    ("log-maxsize = 1000\n", "option 'log-maxsize': does nothing without "
     "`logto = FILE`, as in uWSGI")])
def test_likely_mistakes_are_warned_about(site, text, warning):
    (site / "app.ini").write_text(f"[uwsgi]\n{text}")
    config = resolve(["--ini", str(site / "app.ini")], {})
    assert [w for w in config.startup_warnings() if warning in w]


# -- the log master: log-maxsize, touch-logreopen -----------------------------

@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("backupname", [None, "app.old"])
def test_log_maxsize_rotates_the_file(start_server, site, server,
                                      backupname):
    """Once a second the master looks at the file's size: past
    log-maxsize, it says so at the end of the file, renames it (to
    log-backupname, else PATH.TIMESTAMP) and goes on in a new one, where
    the workers' lines follow too."""
    extra = [("log-backupname", backupname)] if backupname else []
    p, port = serve(start_server, server, site, ("processes", "2"),
                    ("logto", "app.log"), ("log-maxsize", "2000"), *extra)
    log_file = site / "app.log"
    for n in range(8):
        assert get(port, f"/r{n}").endswith(b"ok")
    rotated = support.wait_until(
        lambda: [f for f in site.glob("app.[lo]*") if f != log_file],
        what="a rotated log file")[0]
    said = wait_in_file(rotated, r"triggering rotation").splitlines()[-1]
    found = re.fullmatch(rf"{CTIME} - logsize: (\d+), triggering rotation "
                         rf"to ([\w.]+)\.\.\.", said)
    assert found and int(found[1]) > 2000 and found[2] == rotated.name
    if backupname:
        assert rotated.name == backupname
    else:
        assert re.fullmatch(r"app\.log\.\d{10}", rotated.name)
    assert os.stat(rotated).st_size == int(found[1]) + len(said) + 1
    assert get(port, "/after").endswith(b"ok")
    wait_in_file(log_file, request_line("/after"))
    assert "print from /after" in log_file.read_text()
    p.stop()


@pytest.mark.parametrize("server", SERVERS)
def test_touch_logreopen_reopens_the_file(start_server, site, server):
    """logrotate's way: the file moved away, then the trigger touched.
    The master says so at the end of the old file, and in the new one,
    where every process then writes."""
    trigger = site / "reopen"
    trigger.touch()
    p, port = serve(start_server, server, site, ("processes", "2"),
                    ("logto", "app.log"), ("touch-logreopen", trigger))
    log_file, moved = site / "app.log", site / "app.log.1"
    assert get(port, "/one").endswith(b"ok")
    wait_in_file(log_file, request_line("/one"))
    log_file.rename(moved)
    # Later by seconds: uWSGI compares whole seconds.
    later = trigger.stat().st_mtime + 10
    os.utime(trigger, (later, later))
    text = wait_in_file(log_file, r"^\[\d+\] app\.log reopened\.$")
    assert text.startswith("[")
    assert re.search(r"^\[\d+\] logsize: \d+, triggering log-reopen\.\.\.\n"
                     r"\Z", moved.read_text(), re.M)
    for n in range(4):
        assert get(port, f"/two{n}").endswith(b"ok")
    text = wait_in_file(log_file, request_line(r"/two\d"), count=4)
    assert "print from /two0" in text
    assert "has been touched" not in text + moved.read_text()
    p.stop()


@pytest.mark.parametrize("server", SERVERS)
def test_touch_logrotate_rotates_the_file(start_server, site, server):
    trigger = site / "rotate"
    trigger.touch()
    p, port = serve(start_server, server, site, ("logto", "app.log"),
                    ("touch-logrotate", trigger),
                    ("log-backupname", "app.old"))
    assert get(port, "/one").endswith(b"ok")
    wait_in_file(site / "app.log", request_line("/one"))
    later = trigger.stat().st_mtime + 10
    os.utime(trigger, (later, later))
    text = wait_in_file(site / "app.old", r"triggering rotation")
    assert re.search(rf"^{CTIME} - logsize: \d+, triggering rotation to "
                     rf"app\.old\.\.\.\n\Z", text, re.M)
    assert get(port, "/two").endswith(b"ok")
    wait_in_file(site / "app.log", request_line("/two"))
    p.stop()


@pytest.mark.parametrize("server", SERVERS)
def test_the_log_master_keeps_the_workers_last_lines_in_order(
        start_server, site, server):
    """A graceful reload: the worker's farewell, written into the pipe,
    is in the file before the master's line about its end."""
    # One worker, that has served: uWSGI's may miss a HUP before.
    p, port = serve(start_server, server, site, ("logto", "app.log"),
                    ("log-maxsize", "1000000"))
    log_file = site / "app.log"
    assert get(port, "/one").endswith(b"ok")
    wait_in_file(log_file, request_line("/one"))
    p.send_signal(signal.SIGHUP)
    text = wait_in_file(log_file, r"^gracefully \(RE\)spawned uWSGI master")
    assert text.index("Gracefully killing worker 1 ") < \
        text.index("worker 1 buried after ")
    p.stop()


def test_master_fifo_reopens_and_rotates_the_file(start_server, site):
    """`l` and `L` to the master fifo: the file reopened, then rotated,
    for the workers' lines too (uWSGI, without its log master, moves
    the master's lines alone)."""
    fifo = site / "fifo"
    p, port = serve(start_server, "ugu", site, ("processes", "2"),
                    ("logto", "app.log"), ("master-fifo", fifo))
    log_file, moved = site / "app.log", site / "app.log.1"
    assert get(port, "/one").endswith(b"ok")
    wait_in_file(log_file, request_line("/one"))
    log_file.rename(moved)
    fifo.write_text("l")
    wait_in_file(log_file, r"^\[\d+\] app\.log reopened\.$")
    assert moved.read_text().endswith(" triggering log-reopen...\n")
    for n in range(3):
        assert get(port, f"/two{n}").endswith(b"ok")
    wait_in_file(log_file, request_line(r"/two\d"), count=3)
    fifo.write_text("L")
    rotated = support.wait_until(lambda: list(site.glob("app.log.??*")),
                                 what="the rotated file")[0]
    text = wait_in_file(rotated, r"triggering rotation to app\.log\.\d+")
    assert "GET /two2 =>" in text
    assert get(port, "/three").endswith(b"ok")
    wait_in_file(log_file, request_line("/three"))
    p.stop()


def test_the_emperor_refuses_log_rotation(site):
    result = run_ugu(site, "--emperor", str(site), "--logto", "e.log",
                     "--log-maxsize", "1000")
    assert result.returncode == 1
    assert "option 'log-maxsize': ugu rotates and reopens a vassal's " \
        "logto file, not the Emperor's yet" in result.stderr


@pytest.mark.parametrize("option, args", [
    ("log-master", []), ("log-drain", ["x"]),
    ("log-encoder", ["prefix [e]"]), ("log-req-encoder", ["nl"]),
    ("threaded-logger", [])])
def test_the_emperor_refuses_a_log_master(site, option, args):
    result = run_ugu(site, "--emperor", str(site), f"--{option}", *args)
    assert result.returncode == 1
    assert f"option '{option}': ugu's log master runs in vassals, not in " \
        f"the Emperor yet" in result.stderr


# -- daemonize ----------------------------------------------------------------

def detached(site, argv):
    """Run a daemonizing instance from `site`: (the output of the command,
    which ends at once, and the daemon's pid, process group and session),
    once its pidfile names a live process (daemonize2 writes it before it
    detaches too)."""
    result = subprocess.run(argv, cwd=site, capture_output=True, text=True,
                            timeout=30, stdin=subprocess.DEVNULL)
    assert result.returncode == 0, result.stderr
    pidfile = site / "app.pid"

    def daemon():
        text = pidfile.read_text().strip() if pidfile.exists() else ""
        try:
            stat = Path(f"/proc/{text}/stat").read_text() if text else ""
        except FileNotFoundError:
            return None
        fields = stat.rsplit(")", 1)[-1].split()
        return fields and (int(text), int(fields[2]), int(fields[3]))
    return result.stderr, *support.wait_until(daemon, what="a pidfile")


def stop_daemon(pid, group):
    """SIGINT to the daemon, as to any master; what is left of its
    process group is killed, so that nothing outlives the test."""
    try:
        os.kill(pid, signal.SIGINT)
        support.wait_until(lambda: pid not in support.group_members(group),
                           what="the daemon to end")
    finally:
        for member in support.group_members(group):
            os.kill(member, signal.SIGKILL)


def daemon_binary(server, request):
    if server == "ugu":
        return support.UGU
    return [request.getfixturevalue("uwsgi_binary")]


@pytest.mark.parametrize("server", SERVERS)
def test_daemonize_detaches_and_logs_to_the_file(site, server, request):
    """The command ends (0) once the instance is in the background: a
    grandchild, in a session of its own that it does not lead, reading
    /dev/null, logging to the file.  A reload keeps it there."""
    port = support.free_port()
    support.write_ini(site / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"),
        ("wsgi-file", site / "app.py"), ("master", "true"),
        ("daemonize", "app.log"), ("pidfile", site / "app.pid")])
    out, pid, group, session = detached(
        site, [*daemon_binary(server, request), "--ini", "app.ini"])
    try:
        assert out.splitlines() == [
            "[uWSGI] getting INI configuration from app.ini"]
        assert session not in (pid, os.getsid(0)) and group == session
        assert os.readlink(f"/proc/{pid}/fd/0") == "/dev/null"
        assert os.readlink(f"/proc/{pid}/fd/2") == str(site / "app.log")
        support.wait_for_port(port)
        assert get(port, "/d").endswith(b"ok")
        text = wait_in_file(site / "app.log", request_line("/d"))
        assert f"spawned uWSGI master process (pid: {pid})" in text
        os.kill(pid, signal.SIGHUP)
        wait_in_file(site / "app.log",
                     rf"^gracefully \(RE\)spawned uWSGI master process "
                     rf"\(pid: {pid}\)")
        support.wait_for_port(port)
        assert get(port, "/again").endswith(b"ok")
        wait_in_file(site / "app.log", request_line("/again"))
    finally:
        stop_daemon(pid, group)
    assert "goodbye to uWSGI." in (site / "app.log").read_text()


@pytest.mark.parametrize("server", SERVERS)
def test_daemonize2_detaches_once_the_app_is_loaded(site, server, request):
    """What comes before (the app loading, a failure) is said where the
    command runs; the file, opened from the chdir folder, has the rest,
    and the pidfile the daemon's pid."""
    port = support.free_port()
    support.write_ini(site / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"),
        ("wsgi-file", site / "app.py"), ("master", "true"),
        ("chdir", site / "sub"), ("daemonize2", "app.log"),
        ("pidfile", site / "app.pid")])
    out, pid, group, _ = detached(
        site, [*daemon_binary(server, request), "--ini", "app.ini"])
    try:
        assert "app imported" in out
        assert out.rstrip().endswith("*** daemonizing uWSGI ***")
        text = wait_in_file(site / "sub" / "app.log",
                            rf"spawned uWSGI master process \(pid: {pid}\)")
        assert text.startswith(f"writing pidfile to {site / 'app.pid'}\n")
        support.wait_for_port(port)
        assert get(port, "/d").endswith(b"ok")
        wait_in_file(site / "sub" / "app.log", request_line("/d"))
    finally:
        stop_daemon(pid, group)


@pytest.mark.parametrize("server", SERVERS)
def test_a_vassal_does_not_daemonize(start_server, site, server):
    """Under an Emperor, which keeps its vassal's pid, daemonize only
    names the vassal's log file."""
    (site / "vassals").mkdir()
    port = support.free_port()
    support.write_ini(site / "vassals" / "v.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"),
        ("wsgi-file", site / "app.py"), ("daemonize", site / "v.log")])
    p = start_server(server, ["--emperor", site / "vassals"], cwd=site)
    support.wait_for_port(port)
    assert get(port, "/v").endswith(b"ok")
    text = wait_in_file(site / "v.log", request_line("/v"))
    master = int(re.search(r"spawned uWSGI master process \(pid: (\d+)\)",
                           text)[1])
    assert master in support.children_of(p.pid)
    p.stop()


def test_daemonize2_is_refused_to_the_emperor(site):
    result = run_ugu(site, "--emperor", str(site), "--daemonize2", "e.log")
    assert result.returncode == 1
    assert "option 'daemonize2': the Emperor has no app to load first: " \
        "use daemonize" in result.stderr


def test_daemonize2_is_refused_to_a_router_without_master(site):
    """uWSGI's router dies with the process daemonize2 leaves."""
    result = run_ugu(site, "--http", "127.0.0.1:0", "--wsgi-file",
                     str(site / "app.py"), "--daemonize2", "x.log")
    assert result.returncode == 1
    assert "option 'daemonize2': without a master the http router would " \
        "die" in result.stderr
    assert not (site / "x.log").exists()


@pytest.mark.parametrize("server", SERVERS)
def test_log_truncate_empties_the_file_at_start(site, server, request):
    (site / "app.log").write_text("from before\n")
    support.write_ini(site / "app.ini", uwsgi=[
        ("http-socket", "127.0.0.1:0"), ("processes", "0"),
        ("logto", "app.log"), ("log-truncate", "true")])
    subprocess.run([*daemon_binary(server, request), "--ini", "app.ini"],
                   cwd=site, timeout=30, capture_output=True,
                   stdin=subprocess.DEVNULL)
    text = (site / "app.log").read_text()
    assert text.startswith("*** Starting uWSGI ")
    assert "from before" not in text


# -- the log master's regexps, and the file's owner and mode ---------------

DAEMON_SAYS = "echo daemon says hi; echo secret daemon; exec sleep 60"


@pytest.mark.parametrize("server", SERVERS)
def test_log_drain_and_log_filter_choose_the_lines(start_server, site,
                                                   server):
    """log-drain drops what it matches, then log-filter keeps only what
    one of its regexps matches: the app's and the daemon's output too,
    which the log master reads from its pipe, and the master's own."""
    p, port = serve(start_server, server, site, ("processes", "2"),
                    ("logto", "app.log"), ("log-drain", "^secret"),
                    ("log-filter", "(print|stderr) from|daemon|app imp"),
                    ("log-filter", r"GET /b\b"),
                    ("attach-daemon", DAEMON_SAYS))
    log_file = site / "app.log"
    for path in ("/a", "/b"):
        assert get(port, path).endswith(b"ok")
    wait_in_file(log_file, request_line("/b"))
    wait_in_file(log_file, "daemon says hi")
    p.stop()
    text = log_file.read_text()
    assert re.search(request_line("/b"), text)
    assert not re.search(request_line("/a"), text)
    for kept in ("app imported", "daemon says hi", "print from /a",
                 "print from /b", "stderr from /a"):
        assert kept in text
    assert "\nsecret" not in text
    for dropped in ("spawned uWSGI worker", "GET /a"):
        assert dropped not in text


def test_a_line_written_in_pieces_is_matched_whole(site):
    """A line a child writes in pieces is matched whole, once its end
    comes."""
    site.joinpath("app.py").write_text(textwrap.dedent('''
        import os

        def application(environ, start_response):
            for piece in (b"sec", b"ret ", b"line\\n", b"kept ", b"line\\n"):
                os.write(2, piece)
            start_response("200 OK", [])
            return [b"ok"]
    '''))
    port = support.free_port()
    p = support.ugu("--http-socket", f"127.0.0.1:{port}", "--wsgi-file",
                    site / "app.py", "--log-drain", "^secret", cwd=site)
    try:
        support.wait_for_port(port)
        assert get(port, "/").endswith(b"ok")
        p.wait_for_log("kept line")
    finally:
        p.stop()
    assert "secret" not in p.output()


@pytest.mark.parametrize("server", SERVERS)
def test_log_master_alone_writes_what_the_children_write(start_server,
                                                         site, server):
    """Without a file: the master copies the children's lines to its
    own terminal."""
    p, port = serve(start_server, server, site, ("log-master", "true"))
    assert get(port, "/x").endswith(b"ok")
    p.wait_for_log(request_line("/x"))
    p.wait_for_log("print from /x")
    p.stop()


@pytest.mark.parametrize("server", SERVERS)
def test_logfile_chmod_gives_the_file_its_mode(start_server, site, server):
    p, port = serve(start_server, server, site, ("logto", "app.log"),
                    ("logfile-chmod", "604"))
    assert get(port, "/x").endswith(b"ok")
    wait_in_file(site / "app.log", request_line("/x"))
    p.stop()
    assert (site / "app.log").stat().st_mode & 0o777 == 0o604


@pytest.mark.parametrize("value", ["0644", "64", "648"])
def test_logfile_chmod_wants_three_octal_digits(site, uwsgi_binary, value):
    """uWSGI's words, and neither starts."""
    ini = support.write_ini(site / "app.ini", uwsgi=[
        ("http-socket", "127.0.0.1:0"), ("logfile-chmod", value)])
    ugu = run_ugu(site, "--ini", "app.ini")
    uwsgi = subprocess.run([uwsgi_binary, "--ini", ini], cwd=site,
                           capture_output=True, text=True, timeout=20)
    assert ugu.returncode == uwsgi.returncode == 1
    said = f"invalid chmod value: {value}"
    assert ugu.stderr.endswith(f"app.ini:3: option 'logfile-chmod': "
                               f"{said}\n")
    assert said in uwsgi.stdout + uwsgi.stderr


@pytest.mark.skipif(os.getuid() != 0, reason="logfile-chown acts as root "
                    "only, and these tests do not run as root")
@pytest.mark.parametrize("chown", [False, True])
def test_logfile_chown_gives_the_file_to_uid(start_server, chown):
    """Before privileges drop, so that the user can reopen the file.
    (ugu alone: the reference uWSGI's Python, under /root, does not load
    as nobody.)"""
    # Where nobody can read the app (pytest's own folders are root's).
    site = Path(tempfile.mkdtemp(prefix="ugu-logfile-"))
    site.chmod(0o755)
    site.joinpath("app.py").write_text(APP)
    site.joinpath("app.py").chmod(0o644)
    extra = [("logfile-chown", "true")] if chown else []
    p, port = serve(start_server, "ugu", site, ("logto", "app.log"),
                    ("uid", "nobody"), ("gid", "nogroup"), *extra)
    assert get(port, "/x").endswith(b"ok")
    wait_in_file(site / "app.log", request_line("/x"))
    p.stop()
    owner = (site / "app.log").stat()
    shutil.rmtree(site)
    nobody = pwd.getpwnam("nobody").pw_uid
    assert (owner.st_uid == nobody) is chown
    assert (owner.st_gid == grp.getgrnam("nogroup").gr_gid) is chown
