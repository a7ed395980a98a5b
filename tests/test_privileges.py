"""uWSGI's process and privilege options, run as root with real ids
beside the real uWSGI: the groups gid, add-gid and initgroups() give, the
ids taken as the config is read, chroot, file locks, envdirs, file-write,
binsh, prio, limit-nproc and force-cwd; unshare, the post-jail hooks
and pivot-root; where drop-after-init and drop-after-apps drop.

The real uWSGI cannot start its Python once it is no longer root here
(its Python lives under /root), so where a test drops the uid it compares
the lines said up to the drop, and serves requests with ugu alone.
"""

import ast
import grp
import os
import pwd
import re
import shutil
import signal
import subprocess
import tempfile
import textwrap
from pathlib import Path

import pytest

from tests import support
from tests.support import free_port, write_ini

pytestmark = pytest.mark.skipif(os.getuid() != 0,
                                reason="privileges are dropped by root")

APP = textwrap.dedent('''
    import os

    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        seen = {"node": os.uname().nodename, "uid": os.getuid(),
                "gid": os.getgid(), "groups": sorted(os.getgroups()), "cwd": os.getcwd(),
                "prio": os.getpriority(os.PRIO_PROCESS, 0),
                "root": sorted(os.listdir("/")),
                "env": {k: v for k, v in os.environ.items()
                        if k.startswith("PRIV_")}}
        return [repr(seen).encode()]
''')


@pytest.fixture
def site():
    """A folder every user can read (pytest's own are root's alone)."""
    with tempfile.TemporaryDirectory(dir="/tmp") as folder:
        os.chmod(folder, 0o755)
        path = Path(folder)
        (path / "app.py").write_text(APP)
        yield path


def _start(start_server, server, site, *pairs, name="priv.ini"):
    port = free_port()
    ini = write_ini(site / name, uwsgi=[
        ("master", "true"), ("processes", 1),
        ("http-socket", f"127.0.0.1:{port}"), *pairs])
    return start_server(server, ["--ini", str(ini)], cwd=site), port


def _seen(port):
    support.wait_for_port(port)
    return ast.literal_eval(support.get_body(port, "/").decode())


def _lines(p, first, last):
    """The lines of p's log from the one that starts with `first` to the
    one that starts with `last`, both kept; without the real uWSGI's
    reminder that it runs as root, which ugu does not say."""
    lines = [line for line in p.output().splitlines()
             if not line.startswith("uWSGI running as root")]
    start = next(i for i, l in enumerate(lines) if l.startswith(first))
    end = next(i for i, l in enumerate(lines) if l.startswith(last)
               and i >= start)
    return lines[start:end + 1]


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_add_gid_gives_the_additional_groups(start_server, site, server):
    """With gid, add-gid's groups (names or numbers) replace any other,
    and each is said but the group itself; the app sees them."""
    adm, data = grp.getgrnam("adm").gr_gid, grp.getgrnam("www-data").gr_gid
    p, port = _start(start_server, server, site, ("wsgi-file", "app.py"),
                     ("gid", "nogroup"), ("add-gid", "www-data"),
                     ("add-gid", str(adm)))
    seen = _seen(port)
    assert (seen["uid"], seen["gid"]) == (0, 65534)
    assert seen["groups"] == sorted([adm, data])
    assert _lines(p, "setgid()", "set additional group 33")[:3] == [
        "setgid() to 65534",
        *(f"set additional group {g} ({grp.getgrgid(g).gr_name})"
          for g in sorted([adm, data]))]


def _user_with_groups():
    """A user that /etc/group names as a member of a group other than
    its own (initgroups() gives it that group), else None."""
    for group in grp.getgrall():
        for name in group.gr_mem:
            try:
                user = pwd.getpwnam(name)
            except KeyError:
                continue
            if user.pw_uid and group.gr_gid != user.pw_gid:
                return user, group
    return None


@pytest.mark.parametrize("no_initgroups", [False, True])
@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_uid_and_gid_take_the_users_groups(start_server, site, server,
                                           no_initgroups):
    """uid and gid: the user's groups, as initgroups() finds them, unless
    no-initgroups leaves none."""
    found = _user_with_groups()
    if found is None:
        pytest.skip("no user here is a member of another group")
    user, group = found
    extra = [("no-initgroups", "true")] if no_initgroups else []
    p, port = _start(start_server, server, site, ("wsgi-file", "app.py"),
                     ("uid", user.pw_name), ("gid", "nogroup"), *extra)
    p.wait_for_log(r"setuid\(\) to")
    said = [] if no_initgroups else \
        [f"set additional group {group.gr_gid} ({group.gr_name})"]
    assert _lines(p, "setgid()", "setuid()") == [
        "setgid() to 65534", *said, f"setuid() to {user.pw_uid}"]
    if server == "ugu":
        seen = _seen(port)
        assert (seen["uid"], seen["gid"]) == (user.pw_uid, 65534)
        assert set(seen["groups"]) == (set() if no_initgroups
                                       else {group.gr_gid, 65534})


def test_add_gid_without_gid_is_refused(procs, site):
    ini = write_ini(site / "priv.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{free_port()}"),
        ("wsgi-file", "app.py"), ("add-gid", "adm")])
    p = procs.ugu("--ini", str(ini), cwd=site)
    assert p.wait() == 1
    assert re.search(r"priv\.ini:4: option 'add-gid': add-gid sets the "
                     r"additional groups .*set gid too", p.output())


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_immediate_ids_are_taken_as_the_line_is_read(start_server, site,
                                                     server):
    """immediate-gid and immediate-uid act as their lines are read: a
    file included after them is read as that user (here one only root
    may read, which stops the start)."""
    secret = site / "secret.ini"
    secret.write_text("[uwsgi]\nprocesses = 1\n")
    secret.chmod(0o600)
    p, _ = _start(start_server, server, site, ("immediate-gid", "nogroup"),
                  ("immediate-uid", "nobody"), ("include", str(secret)),
                  ("wsgi-file", "app.py"))
    assert p.wait() == 1
    out = p.output()
    assert "immediate gid: 65534\nimmediate uid: 65534\n" in out
    assert "Permission denied" in out


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_flock_refuses_a_locked_file(procs, start_server, site, server):
    """flock: a file another instance holds stops the start; flock-wait
    waits for it."""
    lock = site / "the.lock"
    lock.touch()
    holder, port = _start(start_server, "ugu", site, ("flock", str(lock)),
                          ("wsgi-file", "app.py"), name="holder.ini")
    support.wait_for_port(port)
    p, _ = _start(start_server, server, site, ("flock", str(lock)),
                  ("wsgi-file", "app.py"))
    assert p.wait() == 1
    assert f"{lock} is locked by another instance" in p.output()
    waiter, port = _start(start_server, server, site,
                          ("flock-wait", str(lock)),
                          ("wsgi-file", "app.py"), name="waiter.ini")
    with pytest.raises(AssertionError):
        waiter.wait_for_log(r"spawned uWSGI worker 1", timeout=1)
    holder.stop()
    waiter.wait_for_log(r"spawned uWSGI worker 1")


def test_flock_of_a_missing_file_is_refused(procs, site):
    ini = write_ini(site / "priv.ini", uwsgi=[
        ("flock2", str(site / "missing")), ("wsgi-file", "app.py"),
        ("http-socket", f"127.0.0.1:{free_port()}")])
    p = procs.ugu("--ini", str(ini), cwd=site)
    assert p.wait() == 1
    assert re.search(r"priv\.ini:2: option 'flock2': open\(\".*missing\"\)"
                     r": No such file or directory", p.output())


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_envdirs_binsh_file_write_and_prio(start_server, site, server):
    """early-envdir and envdir set the app's environment (an empty file
    unsets, hidden files are skipped, trailing blanks go); binsh runs
    the hooks' commands; file-write writes before the drop; prio is the
    workers' nice (negative too)."""
    early, late = site / "early", site / "late"
    early.mkdir()
    late.mkdir()
    (early / "PRIV_A").write_text("one\n\n")
    (late / "PRIV_B").write_text("two \t\n")
    (late / "PRIV_GONE").write_text("")
    (late / ".PRIV_HIDDEN").write_text("x")
    target = site / "written"
    p, port = _start(
        start_server, server, site, ("early-envdir", str(early)),
        ("envdir", str(late)), ("binsh", str(site / "nowhere")),
        ("binsh", "/bin/bash"), ("exec-asap", "echo SHELL=$0 $PRIV_A"),
        ("file-write", f"{target}=hello world"), ("prio", -3),
        ("wsgi-file", "app.py"))
    seen = _seen(port)
    assert seen["env"] == {"PRIV_A": "one", "PRIV_B": "two"}
    assert seen["prio"] == -3
    assert target.read_text() == "hello world\n"
    out = p.output()
    assert "SHELL=/bin/bash one\n" in out
    assert f'writing "hello world" to "{target}" ...\n' in out
    assert "scheduler priority set to -3\n" in out


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_limit_nproc_cuts_the_workers(start_server, site, server):
    p, port = _start(start_server, server, site, ("limit-nproc", 3),
                     ("processes", 4), ("wsgi-file", "app.py"))
    support.wait_for_port(port)
    assert _lines(p, "limiting number", "!!!") == [
        "limiting number of processes to 3...",
        "your processes number limit is 3",
        "!!! number of workers adjusted to 2 due to system limits !!!"]
    p.wait_for_log(r"spawned uWSGI worker 2 ")
    assert "spawned uWSGI worker 3 " not in p.output()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_force_cwd_is_where_a_reload_starts(start_server, site, server):
    forced = site / "forced"
    forced.mkdir()
    shutil.copy(site / "app.py", forced / "app.py")
    p, port = _start(start_server, server, site, ("force-cwd", str(forced)),
                     ("wsgi-file", str(site / "app.py")))
    p.wait_for_log(r"spawned uWSGI worker 1 ")
    _seen(port)
    # The real uWSGI may miss a SIGHUP that comes before its master's
    # loop has begun: sent again until it reloads.
    for attempt in range(5):
        p.send_signal(signal.SIGHUP)
        try:
            p.wait_for_log(r"chdir\(\) to ", timeout=2)
            break
        except AssertionError:
            continue
    p.wait_for_log(rf"chdir\(\) to {re.escape(str(forced))}\n")
    p.wait_for_log(r"spawned uWSGI worker 1 ", count=2)


def _unshare_works():
    return shutil.which("unshare") and subprocess.run(
        ["unshare", "--mount", "true"], capture_output=True).returncode == 0


JAIL = textwrap.dedent('''\
    set -e
    J=$1; shift
    mkdir -p $J/usr $J/etc $J/dev $J/root $J/work $J/tmp
    ln -sfn usr/lib $J/lib; ln -sfn usr/lib64 $J/lib64; ln -sfn usr/bin $J/bin
    for d in usr etc dev root work tmp; do mount --bind /$d $J/$d; done
    exec "$@"
''')


@pytest.mark.skipif(not _unshare_works(),
                    reason="needs unshare(1) and mounts of its own")
@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_chroot_before_the_drop(procs, request, site, server):
    """chroot: said and done before the drop; the folder is not changed
    (chdir then moves in the jail), the app sees the jail's root.  The
    jail gets the system's folders, mounted in a mount namespace of the
    test's own that ends with the instance."""
    jail = site / "jail"
    jail.mkdir()
    shutil.copy(site / "app.py", jail / "app.py")
    script = site / "jail.sh"
    script.write_text(JAIL)
    port = free_port()
    ini = write_ini(site / "priv.ini", uwsgi=[
        ("master", "true"), ("processes", 1),
        ("http-socket", f"127.0.0.1:{port}"), ("chroot", str(jail)),
        ("chdir", "/"), ("wsgi-file", "/app.py"), ("gid", "nogroup")])
    binary = support.UGU if server == "ugu" else \
        [request.getfixturevalue("uwsgi_binary")]
    p = procs.start(["unshare", "--mount", "--propagation", "private",
                     "sh", str(script), str(jail), *binary,
                     "--ini", str(ini)], cwd=site)
    seen = _seen(port)
    assert seen["root"] == ["app.py", "bin", "dev", "etc", "lib", "lib64",
                            "root", "tmp", "usr", "work"]
    assert (seen["cwd"], seen["uid"], seen["gid"]) == ("/", 0, 65534)
    assert _lines(p, "chroot()", "setgid()") == [
        f"chroot() to {jail}", "setgid() to 65534"]


@pytest.mark.skipif(not _unshare_works(), reason="needs namespaces")
@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_unshare_then_the_post_jail_hooks(start_server, site, server):
    """unshare's lines add up; the post-jail phase runs after it (hooks
    then commands), between pre-jail and the drop; the app is in the new
    namespaces (its own host name), the machine's is left alone."""
    host = os.uname().nodename
    p, port = _start(start_server, server, site, ("unshare", "uts"),
                     ("unshare", "ipc"), ("exec-pre-jail", "echo PRE"),
                     ("exec-post-jail", "hostname jailhost"),
                     ("hook-post-jail", "print:POST"),
                     ("wsgi-file", "app.py"))
    assert _seen(port)["node"] == "jailhost"
    assert os.uname().nodename == host
    assert _lines(p, 'running "echo PRE"', 'running "hostname') == [
        'running "echo PRE" (pre-jail)...', "PRE",
        "[linux-namespace] applied unshare() mask: 201326592",
        'running "print:POST" (post-jail)...', "POST",
        'running "hostname jailhost" (post-jail)...']


@pytest.mark.skipif(not _unshare_works(), reason="needs namespaces")
@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_unshare_skips_empty_names(start_server, site, server):
    """uWSGI's tokenizer skips an empty name between commas, or at
    either end; ugu refused it as an unknown subsystem ''."""
    p, port = _start(start_server, server, site, ("unshare", ",uts,,ipc,"),
                     ("wsgi-file", "app.py"))
    _seen(port)
    p.wait_for_log(r"\[linux-namespace\] applied unshare\(\) mask: "
                   r"201326592\n")


def test_jailed_runs_the_post_jail_hooks(procs, site):
    ini = write_ini(site / "priv.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{free_port()}"), ("jailed", "true"),
        ("exec-post-jail", "echo IN A JAIL"), ("wsgi-file", "app.py")])
    p = procs.ugu("--ini", str(ini), cwd=site)
    p.wait_for_log(r'running "echo IN A JAIL" \(post-jail\)\.\.\.\n'
                   r"IN A JAIL\n")


def test_an_unknown_namespace_is_refused(procs, site):
    ini = write_ini(site / "priv.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{free_port()}"),
        ("unshare", "net,bogus"), ("wsgi-file", "app.py")])
    p = procs.ugu("--ini", str(ini), cwd=site)
    assert p.wait() == 1
    assert re.search(r"priv\.ini:3: option 'unshare': unknown namespace "
                     r"subsystem: bogus \(write some of ", p.output())


@pytest.mark.skipif(not _unshare_works(), reason="needs namespaces")
def test_pivot_root_after_a_mount_namespace(procs, site):
    """pivot-root in the instance's own mount namespace (unshare =
    mount), the new root mounted by a post-jail command: the app sees
    the new root, the old one under PUT_OLD, and runs from /.  (The real
    uWSGI jails itself again at each of its later privilege checks,
    where the post-jail command, left outside, fails: see README.)"""
    jail = site / "jail"
    (jail / "old").mkdir(parents=True)
    shutil.copy(site / "app.py", jail / "app.py")
    script = site / "jail.sh"
    script.write_text("mount --bind $1 $1\n" + JAIL.replace(
        "exec \"$@\"\n", ""))
    port = free_port()
    ini = write_ini(site / "priv.ini", uwsgi=[
        ("master", "true"), ("processes", 1),
        ("http-socket", f"127.0.0.1:{port}"), ("unshare", "mount"),
        ("exec-post-jail", f"sh {script} {jail}"),
        ("pivot-root", f"{jail} {jail}/old"),
        ("exec-as-root", f"test -f /old{jail}/app.py"),
        ("wsgi-file", "/app.py")])
    p = procs.ugu("--ini", str(ini), cwd=site)
    seen = _seen(port)
    assert seen["cwd"] == "/"
    assert "old" in seen["root"] and "app.py" in seen["root"]
    assert "[linux-namespace] applied unshare() mask: 131072" in p.output()
    with open("/proc/self/mountinfo") as mounts:
        assert str(jail) not in mounts.read()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_reload_goes_on_where_force_cwd_is_not(start_server, site,
                                                 server):
    """A folder the reload cannot go to is said, and the reload goes on
    from where the instance is."""
    p, port = _start(start_server, server, site, ("force-cwd", "/nowhere"),
                     ("wsgi-file", str(site / "app.py")))
    p.wait_for_log(r"spawned uWSGI worker 1 ")
    _seen(port)
    for attempt in range(5):
        p.send_signal(signal.SIGHUP)
        try:
            p.wait_for_log(r"chdir\(\) to ", timeout=2)
            break
        except AssertionError:
            continue
    p.wait_for_log(r"chdir\(\) to /nowhere\nuwsgi_reload\(\)/chdir\(\): No "
                   r"such file or directory \[core/master_utils\.c line "
                   r"453\]\n")
    p.wait_for_log(r"spawned uWSGI worker 1 ", count=2)
    assert _seen(port)["cwd"] == str(site)


def _reload(p):
    """SIGHUP until the instance says its reload (the real uWSGI may
    miss one sent before its master's loop has begun)."""
    for attempt in range(5):
        p.send_signal(signal.SIGHUP)
        try:
            p.wait_for_log(r"binary reloading uWSGI", timeout=2)
            return
        except AssertionError:
            continue


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_shared_socket_is_named_by_number(start_server, site, server):
    """shared-socket binds first; `=0` names it; a reload keeps it, said
    as kept and inherited."""
    port = free_port()
    ini = write_ini(site / "priv.ini", uwsgi=[
        ("master", "true"), ("processes", 1),
        ("shared-socket", f"127.0.0.1:{port}"),
        ("socket", f"127.0.0.1:{free_port()}"), ("http-socket", "=0"),
        ("wsgi-file", "app.py")])
    p = start_server(server, ["--ini", str(ini)], cwd=site)
    p.wait_for_log(r"spawned uWSGI worker 1 ")
    assert _seen(port)["uid"] == 0
    address = f"127.0.0.1:{port}"
    out = p.output()
    fd = re.search(rf"uwsgi shared socket 0 bound to TCP address "
                   rf"{address} fd (\d+)\n", out).group(1)
    assert f"uwsgi socket 1 mapped to shared socket 0 ({address}) fd " \
           f"{fd}\n" in out
    _reload(p)
    p.wait_for_log(rf"uwsgi shared socket 0 inherited TCP address "
                   rf"{address} fd {fd}\n")
    assert f"found fd {fd} mapped to socket 1 ({address})\n" \
           f"found fd {fd} mapped to shared socket 0 ({address})\n" \
           in p.output()
    p.wait_for_log(r"spawned uWSGI worker 1 ", count=2)
    assert _seen(port)["uid"] == 0


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_the_router_on_a_shared_socket(start_server, site, server):
    port = free_port()
    ini = write_ini(site / "priv.ini", uwsgi=[
        ("master", "true"), ("processes", 1),
        ("shared-socket", f"127.0.0.1:{port}"), ("http", "=0"),
        ("socket", "127.0.0.1:0"), ("wsgi-file", "app.py")])
    p = start_server(server, ["--ini", str(ini)], cwd=site)
    assert _seen(port)["uid"] == 0
    assert re.search(rf"uWSGI http bound on 127\.0\.0\.1:{port} fd \d+\n",
                     p.output())


def _free_privileged_port():
    import socket
    for port in range(1023, 900, -1):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    return None


def test_a_port_under_1024_for_the_workers_of_a_user(procs, site):
    """The reason for shared-socket: bound as root, served by nobody."""
    port = _free_privileged_port()
    if port is None:
        pytest.skip("no free port under 1024")
    ini = write_ini(site / "priv.ini", uwsgi=[
        ("master", "true"), ("processes", 1),
        ("shared-socket", f"127.0.0.1:{port}"), ("http-socket", "=0"),
        ("uid", "nobody"), ("gid", "nogroup"),
        ("wsgi-file", str(site / "app.py"))])
    p = procs.ugu("--ini", str(ini), cwd=site)
    seen = _seen(port)
    assert (seen["uid"], seen["gid"]) == (65534, 65534)
    out = p.output()
    assert out.index("uwsgi shared socket 0 bound") < \
        out.index("setuid() to 65534") < \
        out.index("uwsgi socket 0 mapped to shared socket 0")


def test_a_shared_socket_not_there_is_refused(procs, site):
    ini = write_ini(site / "priv.ini", uwsgi=[
        ("shared-socket", f"127.0.0.1:{free_port()}"),
        ("http-socket", "=1"), ("wsgi-file", "app.py")])
    p = procs.ugu("--ini", str(ini), cwd=site)
    assert p.wait() == 1
    assert re.search(r"priv\.ini:3: option 'http-socket': unable to use "
                     r"shared socket 1: the shared-socket lines give =0 "
                     r"to =0", p.output())


def test_a_user_cannot_take_other_ids():
    """Started as a user, whose ids only root could change, ugu stops on
    a uid or gid other than that user's, as uWSGI's does (`cannot
    setuid() as non-root user`), and takes the user's own.  (Checked in
    a forked child: the Python here is not one nobody may run.)"""
    from ugu.options.errors import ConfigError
    from ugu.vassal import hygiene
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            os.setgid(65534)
            os.setuid(65534)
            hygiene.drop_privileges(
                {"add-gid": (), "gid": "65534", "uid": "65534"})
            try:
                hygiene.drop_privileges(
                    {"add-gid": (), "gid": None, "uid": "root"})
            except ConfigError as e:
                if e.reason.startswith("cannot setuid() as non-root user"):
                    code = 0
        finally:
            os._exit(code)
    assert os.waitpid(pid, 0)[1] == 0


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_lone_emperor_takes_uid_and_gid(start_server, tmp_path, server):
    """The Emperor reigns as the user uid and gid name, as uWSGI's, which
    drops them before it starts the Emperor (its vassals then run as
    that user too)."""
    # A folder nobody may enter (uWSGI's Emperor goes into it), not
    # under pytest's, which is root's alone.
    with tempfile.TemporaryDirectory() as court:
        os.chmod(court, 0o755)
        p = start_server(server, ["--emperor", court, "--uid", "nobody",
                                  "--gid", "nogroup"], cwd=tmp_path)
        p.wait_for_log(r"\*\*\* starting uWSGI Emperor \*\*\*")
        assert "setgid() to 65534\nsetuid() to 65534\n" in p.output()
        status = Path(f"/proc/{p.pid}/status").read_text()
        assert re.search(r"(?m)^Uid:\t65534\t65534\t", status)
        assert re.search(r"(?m)^Gid:\t65534\t65534\t", status)
        p.send_signal(signal.SIGINT)
        assert p.wait() == 0


# Says the uid its module was imported with, and the worker's.
IMPORTER = textwrap.dedent('''
    import os

    IMPORTED_AS = os.getuid()
    print("imported as uid", IMPORTED_AS, flush=True)

    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [repr((IMPORTED_AS, os.getuid())).encode()]
''')
# The start's lines that tell where the drop came.
DROP_ORDER = re.compile(r"^(uwsgi socket 0 bound|setuid\(\) to|imported as"
                        r" uid|WSGI app 0 \(mountpoint='[^']*'\) ready)"
                        r"[^\n]*", re.MULTILINE)


def _drop_order(p):
    """The start's lines that tell where the drop came, once the app
    is ready and the user taken."""
    p.wait_for_log(r"WSGI app 0 .*ready")
    p.wait_for_log(r"setuid\(\) to 65534")
    said = [m.group(0) for m in DROP_ORDER.finditer(p.output())]
    shown = {"uwsgi socket 0 bound": "bound", "setuid() to": "setuid",
             "WSGI app 0": "ready"}
    return [next((short for start, short in shown.items()
                  if line.startswith(start)), line) for line in said]


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("option, order", [
    ("drop-after-init", ["bound", "setuid", "imported as uid 65534",
                         "ready"]),
    ("drop-after-apps", ["bound", "imported as uid 0", "ready",
                         "setuid"]),
])
def test_where_privileges_drop(start_server, site, server, option, order):
    """After the sockets are bound (drop-after-init), or once the master
    has loaded the apps as root (drop-after-apps); the workers run as
    the user either way.  (The real uWSGI's Python, under /root, cannot
    import what a request needs once it is nobody: ugu alone serves
    one.)"""
    (site / "importer.py").write_text(IMPORTER)
    p, port = _start(start_server, server, site, ("uid", "nobody"),
                     ("gid", "nogroup"), (option, "true"),
                     ("wsgi-file", str(site / "importer.py")))
    assert _drop_order(p) == order
    if server == "ugu":
        imported_as = 0 if option == "drop-after-apps" else 65534
        assert support.get_body(port, "/") == \
            repr((imported_as, 65534)).encode()


def test_a_lazy_app_loads_after_drop_after_apps(procs, site):
    """Where the master loads no app (lazy-apps), each worker loads its
    own after the drop.  (The real uWSGI's worker cannot load one as
    nobody: its Python is under /root.)"""
    (site / "importer.py").write_text(IMPORTER)
    p, port = _start(lambda _, argv, **kw: procs.ugu(*argv, **kw), "ugu",
                     site, ("uid", "nobody"), ("gid", "nogroup"),
                     ("drop-after-apps", "true"), ("lazy-apps", "true"),
                     ("wsgi-file", str(site / "importer.py")))
    assert _drop_order(p) == ["bound", "setuid", "imported as uid 65534",
                              "ready"]
    assert support.get_body(port, "/") == repr((65534, 65534)).encode()
