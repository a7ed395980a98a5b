"""Config logic aliases and tests, the listing options, and the other
options of the config and Python layers that uWSGI users write: each run
in a real ugu process, compared with the real uWSGI where it has the same
thing."""

import re
import socket
import subprocess

import pytest

from tests import support

TIMEOUT = 20


def run(*argv, cwd=None, binary=None, stdin=subprocess.DEVNULL):
    """Run ugu (or `binary`) to its end: (status, stdout, stderr)."""
    command = [binary] if binary else support.UGU
    done = subprocess.run([*command, *argv], cwd=cwd, capture_output=True,
                          text=True, timeout=TIMEOUT, stdin=stdin)
    return done.returncode, done.stdout, done.stderr


def iprinted(*argv, binary=None):
    """What the iprint lines of `argv` print as it is read (the config
    then exits, bare `exit`: status 1)."""
    status, out, err = run(*argv, "--exit", binary=binary)
    assert status == 1, err
    return out.split()


# -- logic: aliases and the other tests --------------------------------------

def test_the_short_logic_names_test_as_the_long_ones(tmp_path):
    (tmp_path / "d").mkdir()
    argv = ["--ifenv", "HOME", "--iprint", "env=%(_)", "--endif",
            "--ifenv", "UGU_NO_SUCH_VAR", "--iprint", "noenv", "--endif",
            "--ifexists", str(tmp_path), "--iprint", "exists", "--endif",
            "--ifexists", str(tmp_path / "nope"), "--iprint", "noexists",
            "--endif",
            "--ifdir", str(tmp_path / "d"), "--iprint", "dir=%(_)",
            "--endif"]
    found = iprinted(*argv)
    assert found == [f"env={support.os.environ['HOME']}", "exists",
                     f"dir={tmp_path / 'd'}"]


def test_the_short_logic_names_in_an_ini(tmp_path):
    ini = tmp_path / "a.ini"
    ini.write_text("[uwsgi]\nifenv = HOME\niprint = env\nendif =\n"
                   "ifdir = /\niprint = dir%(_)\nendif =\n"
                   "ifplugin = python\niprint = py\nendif =\n")
    assert iprinted("--ini", str(ini)) == ["env", "dir/", "py"]


def test_if_hostname_match_searches_the_hostname():
    host = socket.gethostname()
    first = re.escape(host[0])
    argv = ["--if-hostname-match", f"^{first}", "--iprint", "m1=%(_)",
            "--endif",
            "--if-hostname-match", f"^{re.escape(host)}$", "--iprint",
            "m2", "--endif",
            "--if-hostname-match", "^ugu-no-such-host$", "--iprint", "m3",
            "--endif",
            "--if-not-hostname-match", "^ugu-no-such-host$", "--iprint",
            "n1", "--endif",
            "--if-not-hostname-match", f"^{first}", "--iprint", "n2",
            "--endif"]
    assert iprinted(*argv) == [f"m1=^{first}", "m2", "n1"]


def test_if_hostname_match_refuses_a_pattern_that_is_no_regexp():
    status, out, err = run("--if-hostname-match", "(", "--iprint", "in",
                           "--endif", "--iprint", "after", "--exit")
    # Reading goes on, the block's keys dropped; the start is refused.
    assert out.split() == ["after"]
    assert "option 'if-hostname-match': '(' is no regular expression" in err
    assert "fix the pattern" in err


# Plugins both have; and names neither has, or not by that name (uWSGI's
# Python plugin is "python" whatever its build).
BOTH_HAVE = ("python", "http", "gevent", "logfile", "corerouter",
             "fastrouter", "rawrouter", "sslrouter", "carbon", "zergpool",
             "cheaper_busyness", "router_static", "router_cache", "rpc")
NEITHER = ("python3", "nosuchplugin")


@pytest.mark.parametrize("binary", ["ugu", "uwsgi"])
def test_if_plugin_holds_for_the_plugins_ugu_has(binary, request):
    binary = None if binary == "ugu" else request.getfixturevalue(
        "uwsgi_binary")
    argv = []
    for name in BOTH_HAVE + NEITHER:
        argv += ["--if-plugin", name, "--iprint", f"+{name}", "--endif",
                 "--if-not-plugin", name, "--iprint", f"-{name}",
                 "--endif"]
    assert iprinted(*argv, binary=binary) == [
        *(f"+{n}" for n in BOTH_HAVE), *(f"-{n}" for n in NEITHER)]


# -- listing options ---------------------------------------------------------

def listed(output, title):
    """The names a list logged, between its title and its end line."""
    lines = output.splitlines()
    start = lines.index(f"*** uWSGI loaded {title} ***")
    end = next(i for i, line in enumerate(lines)
               if i > start and line.startswith("--- end of "))
    return lines[start + 1:end]


LISTS = [
    ("logger-list", "loggers"), ("loggers-list", "loggers"),
    ("loop-list", "loop engines"), ("router-list", "routers"),
    ("routers-list", "routers"), ("alarm-list", "alarms"),
    ("alarms-list", "alarms"), ("cheaper-algo-list", "cheaper algorithms"),
    ("clock-list", "clocks"), ("imperial-monitor-list", "imperial monitors"),
]
# The lists where ugu has all that the reference uWSGI has.
SAME = {"alarms", "cheaper algorithms", "clocks", "imperial monitors"}


@pytest.mark.parametrize("option, title", LISTS)
def test_a_list_is_logged_in_uwsgis_words(option, title, uwsgi_binary):
    _, _, ours = run(f"--{option}")
    _, _, theirs = run(f"--{option}", binary=uwsgi_binary)
    # The block, byte for byte in form: a blank line, the title, the
    # names, the end line, a blank line.
    block = re.search(r"\n\*\*\* uWSGI loaded .*? \*\*\*\n(.*\n)*?"
                      r"--- end of .* list ---\n\n", ours)
    assert block, ours
    end = f"--- end of {title} list ---"
    assert end in ours and end in theirs
    mine, real = listed(ours, title), listed(theirs, title)
    assert mine, ours
    if title in SAME:
        assert mine == real
    else:
        # Only what ugu has, in uWSGI's order.
        assert [name for name in real if name in mine] == mine


def test_plugins_list_names_ugus_plugins_in_uwsgis_form(uwsgi_binary):
    _, _, ours = run("--plugin-list")
    _, _, theirs = run("--plugins-list", binary=uwsgi_binary)
    generic = listed(ours, "generic plugins")
    real = listed(theirs, "generic plugins")
    assert [name for name in real if name in generic] == generic
    request = ours.split("*** uWSGI loaded request plugins ***\n")[1]
    assert request.startswith("0: python\n173: rpc\n"
                              "--- end of plugins list ---\n\n")
    assert "0: python\n" in theirs and "173: rpc\n" in theirs


def test_lists_come_after_show_config_and_the_instance_starts(tmp_path):
    port = support.free_port()
    ini = tmp_path / "a.ini"
    ini.write_text(f"[uwsgi]\nhttp-socket = 127.0.0.1:{port}\n"
                   "module = tests.echo_app\nshow-config = true\n"
                   "clock-list = true\nloop-list = true\n")
    with support.ugu(str(ini), cwd=support.REPO) as p:
        support.wait_for_port(port)
        out = p.output()
    config = out.index(";end of configuration")
    loops = out.index("*** uWSGI loaded loop engines ***")
    clocks = out.index("*** uWSGI loaded clocks ***")
    # uWSGI's order: the loop engines before the clocks.
    assert config < loops < clocks < out.index("*** Starting uWSGI")


def test_dump_options_prints_every_name_and_exits(uwsgi_binary):
    status, out, err = run("--dump-options", "--socket", ":0")
    assert status == 0 and err == ""
    names = out.split("\n")[:-1]
    assert names[:5] == ["ini", "strict", "set", "set-placeholder",
                         "set-ph"]
    assert "dump-options" in names and "workers" in names
    # Options ugu refuses are not its own.
    assert "legion" not in names
    _, theirs, _ = run("--dump-options", binary=uwsgi_binary)
    # Else uWSGI's names (the reference is built without JSON).
    assert set(names) - set(theirs.split()) <= {
        "usage", "connect-and-read", "json", "js"}


def test_python_version_prints_and_exits_as_read(uwsgi_binary):
    ours = run("--python-version", "--socket", ":0", "--iprint", "later")
    assert ours[:2] == (0, f"{support.sys.version.split()[0]}\n")
    theirs = run("--python-version", binary=uwsgi_binary)
    assert re.fullmatch(r"3\.[0-9]+\.[0-9]+\S*\n", theirs[1])


# -- lazy, mode, offload-thread, py-sharedarea -------------------------------

READY = r"WSGI app 0 \(mountpoint=''\) ready"


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_lazy_loads_in_the_workers_and_a_reload_keeps_the_master(
        start_server, tmp_path, server):
    (tmp_path / "app.py").write_text(
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [b'hi']\n")
    port = support.free_port()
    ini = support.write_ini(tmp_path / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"), ("master", "true"),
        ("lazy", "true"), ("processes", "2"), ("wsgi-file", "app.py")])
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path)
    p.wait_for_log(READY, count=2)
    support.wait_for_port(port)
    p.send_signal(support.signal.SIGHUP)
    p.wait_for_log(r"Respawned uWSGI worker 2", timeout=30)
    p.wait_for_log(READY, count=4)
    assert support.http10_get(port).endswith(b"hi")
    out = p.output()
    assert "Gracefully killing worker 1 (pid: " in out
    assert "Gracefully killing worker 2 (pid: " in out
    # The master neither says a reload nor reads its config again.
    assert "...gracefully killing workers..." not in out
    assert out.count("getting INI configuration from") == 1
    assert p.popen.poll() is None


def test_lazy_with_need_app_ends_the_worker_without_a_word(tmp_path):
    (tmp_path / "app.py").write_text("x = 1\n")
    status, out, err = run("--lazy", "--need-app", "--http-socket",
                           f"127.0.0.1:{support.free_port()}",
                           "--wsgi-file", "app.py", cwd=tmp_path)
    assert status != 0
    assert "GAME OVER" not in err


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_mode_is_the_apps_uwsgi_mode(start_server, tmp_path, server):
    from tests.evalapp import run as ask
    from tests.evalapp import start
    _, port = start(start_server, tmp_path, server, ("mode", "staging"),
                    ("offload-thread", "1"))
    assert ask(port, "uwsgi.mode") == ["b'staging'"]


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_py_sharedarea_is_a_bytearray_each_process_has(start_server,
                                                       tmp_path, server):
    from tests.evalapp import run as ask
    from tests.evalapp import start
    p, port = start(start_server, tmp_path, server, ("sharedarea", "1"),
                    ("py-sharedarea", "100"), ("py-sharedarea", "10"))
    assert ask(port, "uwsgi.sharedarea_write(1, 0, b'hello')",
               "uwsgi.sharedarea_read(1, 0, 5)",
               "len(uwsgi.sharedarea_memoryview(1))",
               "bytes(uwsgi.sharedarea_object(1)[:5])",
               "type(uwsgi.sharedarea_object(2)).__name__",
               "len(uwsgi.sharedarea_object(2))",
               "uwsgi.sharedarea_read(3, 0, 1)") == [
        "None", "b'hello'", "100", "b'hello'", "'bytearray'", "10",
        "ValueError: error calling uwsgi_sharedarea_read()"]
    out = p.output()
    for number in range(3):
        assert re.search(rf"sharedarea {number} created at 0x[0-9a-f]+ "
                         r"\(1 pages, area at 0x[0-9a-f]+\)", out)


def test_py_sharedarea_needs_a_size(tmp_path):
    status, _, err = run("--py-sharedarea", "0", "--http-socket",
                         f"127.0.0.1:{support.free_port()}", cwd=tmp_path)
    assert status == 1
    assert "option 'py-sharedarea': '0' is not a size" in err


# -- pyshell -----------------------------------------------------------------

def shell_instance(start_server, tmp_path, server, *options):
    (tmp_path / "app.py").write_text(
        "def application(environ, start_response):\n"
        "    start_response('200 OK', [])\n"
        "    return [b'served']\n")
    port = support.free_port()
    p = start_server(server, ["--master", "--http-socket",
                              f"127.0.0.1:{port}", "--wsgi-file", "app.py",
                              *options], cwd=tmp_path,
                     stdin=subprocess.PIPE)
    return p, port


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_pyshell_oneshot_reads_stdin_then_the_worker_serves(
        start_server, tmp_path, server):
    p, port = shell_instance(start_server, tmp_path, server,
                             "--pyshell-oneshot")
    p.popen.stdin.write(b"import uwsgi\nprint('shell says', 6 * 7, "
                        b"uwsgi.numproc)\nfor i in range(2):\n"
                        b"    print('line', i)\n\n")
    p.popen.stdin.close()
    p.wait_for_log(r"\.\.\.restoring worker 1 \(pid: [0-9]+\)\.\.\.")
    p.wait_for_log(r"Respawned uWSGI worker 1 \(new pid: [0-9]+\)")
    support.wait_for_port(port)
    assert support.http10_get(port).endswith(b"served")
    out = p.output()
    assert "shell says 42 1" in out
    assert "line 0\nline 1\n" in out
    assert ">>> " in out and "DAMN" not in out


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_pyshell_runs_again_at_each_respawn(start_server, tmp_path, server):
    p, _ = shell_instance(start_server, tmp_path, server, "--pyshell")
    p.popen.stdin.write(b"print('first', 1 + 1)\n")
    p.popen.stdin.close()
    p.wait_for_log(r"Respawned uWSGI worker 1 \(new pid: [0-9]+\)")
    # The respawned worker is in the shell again, at the end of stdin.
    p.wait_for_log(r">>> \nRespawned uWSGI worker 1", count=2)
    out = p.output()
    assert "first 2" in out
    assert "restoring" not in out and "DAMN" not in out


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_pyshell_with_code_runs_it(start_server, tmp_path, server):
    p, port = shell_instance(start_server, tmp_path, server,
                             "--pyshell-oneshot=import uwsgi; "
                             "print('code ran', uwsgi.numproc)")
    p.wait_for_log(r"code ran 1")
    p.wait_for_log(r"\.\.\.restoring worker 1")
    support.wait_for_port(port)
    assert support.http10_get(port).endswith(b"served")


# -- inject-before, inject-after ---------------------------------------------

def shown_config(output):
    lines = output.splitlines()
    start = lines.index(";uWSGI instance configuration") + 2
    return lines[start:lines.index(";end of configuration")]


@pytest.mark.parametrize("argv", [
    ["--inject-before", "b.txt", "--inject-after", "a.txt", "--ini",
     "main.ini", "--ini", "other.ini"],
    ["--ini", "main.ini", "--inject-after", "a.txt", "--ini", "other.ini"],
    ["--ini", "inside.ini"],
])
def test_injected_texts_go_around_each_file_read_after_them(
        tmp_path, uwsgi_binary, argv):
    """As uWSGI joins them: the texts as they are, the magic variables
    of the file they go around replaced in them."""
    (tmp_path / "b.txt").write_text("[uwsgi]\nk1 = before %n\n")
    (tmp_path / "main.ini").write_text("[uwsgi]\nk2 = main %n\n")
    (tmp_path / "a.txt").write_text("k3 = after %n\n")
    (tmp_path / "other.ini").write_text("[uwsgi]\nk4 = other\n")
    (tmp_path / "inside.ini").write_text(
        "[uwsgi]\ninject-after = a.txt\ninclude = other.ini\n")
    argv = [*argv, "--show-config"]
    ours = shown_config(run(*argv, cwd=tmp_path)[2])
    theirs = shown_config(run(*argv, cwd=tmp_path, binary=uwsgi_binary)[2])
    assert ours == theirs
    assert "k3 = after other" in ours


def test_a_line_of_an_injected_text_is_said_at_its_own_file(tmp_path):
    (tmp_path / "a.txt").write_text("k5 = x\n")
    (tmp_path / "s.ini").write_text("[uwsgi]\nstrict = true\nk2 = 1\n")
    status, _, err = run("--inject-after", "a.txt", "--ini", "s.ini",
                         cwd=tmp_path)
    assert status == 1
    assert "a.txt:1: option 'k5': [strict-mode] unknown config " \
        "directive: k5" in err
    assert "s.ini:3: option 'k2'" in err


def test_an_injected_file_that_cannot_be_read_is_said(tmp_path):
    (tmp_path / "s.ini").write_text("[uwsgi]\nprocesses = 1\n")
    status, _, err = run("--inject-before", "nope.txt", "--ini", "s.ini",
                         cwd=tmp_path)
    assert status == 1
    assert "option 'inject-before': cannot read nope.txt" in err


# -- refused, with why --------------------------------------------------------

@pytest.mark.parametrize("argv, words", [
    (["--python-raw", "raw.py"], "never calls the callable"),
    (["--no-site"], "put what the app imports on sys.path"),
    (["--dot-h"], "ugu is Python and loads none"),
    (["--config", "app.lua"], "configurator"),
    (["--py-programname", "/venv/bin/python"], "`home = /venv`"),
])
def test_refused_naming_the_option_and_the_fix(tmp_path, argv, words):
    status, _, err = run(*argv, cwd=tmp_path)
    assert status == 1
    assert f"option '{argv[0][2:]}': this uWSGI option is not " \
        "implemented by ugu yet;" in err
    assert words in err
