"""The Python plugin's options: pyargv, optimize, py-executable, eval,
paste (and ini-paste, paste-logger, a mounted paste file), pecan,
pymodule-alias, pyrun, python-worker-override, wsgi-strict,
wsgi-accept-buffer, start_response-nodelay and thread-stacksize, run
beside the real uWSGI on the same files; and the ones ugu refuses, with
why."""

import json
import os
import socket
import subprocess
import textwrap
from pathlib import Path

import pytest

from tests import support
from tests.support import UGU, free_port, get_body, wait_for_port, write_ini

SERVERS = ["ugu", "uwsgi"]

REPORT_APP = textwrap.dedent('''\
    import json
    import sys


    def application(environ, start_response):
        """A docstring, which optimize = 2 drops."""
        try:
            assert False
            asserted = "skipped"
        except AssertionError:
            asserted = "raised"
        start_response("200 OK", [("Content-Type", "application/json")])
        return [json.dumps({
            "argv": sys.argv, "executable": sys.executable,
            "optimize": sys.flags.optimize, "debug": __debug__,
            "assert": asserted, "doc": application.__doc__}).encode()]
    ''')


def serve(start_server, tmp_path, server, pairs, ready=r"WSGI app 0 .*"
          r"ready", files=None, env=None):
    """An instance on an http-socket of its own, from an INI file with
    `pairs`; (process, port) once its app is ready."""
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text)
    port = free_port()
    ini = write_ini(tmp_path / "app.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{port}"), *pairs])
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path, env=env)
    p.wait_for_log(ready)
    wait_for_port(port)
    return p, port


def exit_of(start_server, tmp_path, server, pairs, files=None,
            stdin=subprocess.DEVNULL):
    """The exit code and log of an instance that ends by itself."""
    for name, text in (files or {}).items():
        (tmp_path / name).write_text(text)
    ini = write_ini(tmp_path / "app.ini", uwsgi=pairs)
    p = start_server(server, ["--ini", str(ini)], cwd=tmp_path,
                     stdin=stdin)
    code = p.wait()
    return code, p.output()


@pytest.mark.parametrize("server", SERVERS)
def test_pyargv_optimize_and_executable(start_server, tmp_path, server):
    p, port = serve(start_server, tmp_path, server, [
        ("wsgi-file", "app.py"), ("pyargv", "one  two\tthree"),
        ("optimize", "2"), ("py-executable", "/opt/py/bin/python")],
        files={"app.py": REPORT_APP})
    assert json.loads(get_body(port, "/")) == {
        "argv": ["uwsgi", "one", "two", "three"],
        "executable": "/opt/py/bin/python", "optimize": 2, "debug": False,
        "assert": "skipped", "doc": None}


@pytest.mark.parametrize("server", SERVERS)
def test_defaults_give_the_app_uwsgis_argv(start_server, tmp_path, server):
    """Never ugu's own command line: an app that parses sys.argv at
    import would take the server's options for its own."""
    p, port = serve(start_server, tmp_path, server, [
        ("wsgi-file", "app.py")], files={"app.py": REPORT_APP})
    found = json.loads(get_body(port, "/"))
    assert found["argv"] == ["uwsgi"]
    assert (found["optimize"], found["debug"], found["assert"]) == \
        (0, True, "raised")


def test_short_optimize_flag_restarts_once_in_the_same_process(procs,
                                                               tmp_path):
    (tmp_path / "app.py").write_text(REPORT_APP)
    port = free_port()
    p = procs.ugu("--http-socket", f"127.0.0.1:{port}", "--wsgi-file",
                  "app.py", "-O", "1", "--pidfile", str(tmp_path / "pid"),
                  cwd=tmp_path, env={"PYTHONOPTIMIZE": "2"})
    p.wait_for_log(r"WSGI app 0 .*ready")
    wait_for_port(port)
    found = json.loads(get_body(port, "/"))
    assert (found["optimize"], found["debug"], found["assert"]) == \
        (1, False, "skipped")
    assert found["doc"] is not None
    assert (tmp_path / "pid").read_text().strip() == str(p.pid)
    assert p.output().count("*** Starting uWSGI") == 1


@pytest.mark.parametrize("server", SERVERS)
def test_optimize_says_iprint_once(tmp_path, request, server):
    """ugu reads the config again under -O; what iprint said as the
    first reading read it is not said again."""
    ini = write_ini(tmp_path / "a.ini", uwsgi=[
        ("iprint", "said as read"), ("print", "said once read"),
        ("optimize", "1"), ("socket", tmp_path / "nowhere" / "s.sock")])
    argv = list(UGU) if server == "ugu" else \
        [request.getfixturevalue("uwsgi_binary")]
    done = subprocess.run([*argv, str(ini)], cwd=tmp_path,
                          capture_output=True, text=True, timeout=30,
                          stdin=subprocess.DEVNULL)
    assert (done.returncode, done.stdout) == \
        (1, "said as read\nsaid once read\n"), done.stderr


@pytest.mark.parametrize("server", SERVERS)
def test_optimize_in_a_config_read_from_stdin(tmp_path, request, server):
    """The config read from stdin (`--ini -`) is read again by the
    process optimize starts, though stdin was read to its end."""
    argv = list(UGU) if server == "ugu" else \
        [request.getfixturevalue("uwsgi_binary")]
    text = (f"[uwsgi]\noptimize = 1\nprint = from stdin\n"
            f"socket = {tmp_path / 'nowhere' / 's.sock'}\n")
    done = subprocess.run([*argv, "--ini", "-"], cwd=tmp_path, input=text,
                          capture_output=True, text=True, timeout=30)
    assert (done.returncode, done.stdout) == (1, "from stdin\n"), \
        done.stderr
    assert "No such file or directory" in done.stderr
    assert "cannot find section" not in done.stderr


# One line, as an INI value is.
EVAL = ('application = lambda environ, start_response: start_response('
        '"200 OK", [("Content-Type", "text/plain")]) and '
        '[b"from eval " + __name__.encode()]')


@pytest.mark.parametrize("server", SERVERS)
def test_eval_is_the_app(start_server, tmp_path, server):
    p, port = serve(start_server, tmp_path, server, [("eval", EVAL)])
    assert get_body(port, "/") == b"from eval uwsgi_eval_config"
    assert "WSGI app 0 (mountpoint='') ready" in p.output()


@pytest.mark.parametrize("server", SERVERS)
def test_eval_after_a_loaded_app_is_skipped(start_server, tmp_path, server):
    p, port = serve(start_server, tmp_path, server, [
        ("wsgi-file", "app.py"), ("eval", "raise SystemExit(9)")],
        files={"app.py": REPORT_APP})
    assert json.loads(get_body(port, "/"))["argv"] == ["uwsgi"]
    assert "mountpoint  already configured. skip." in p.output()


@pytest.mark.parametrize("server", SERVERS)
def test_eval_that_does_not_compile_ends_the_instance(start_server,
                                                      tmp_path, server):
    code, out = exit_of(start_server, tmp_path, server, [
        ("http-socket", f"127.0.0.1:{free_port()}"),
        ("eval", "def application(:")])
    assert code == 22
    assert "failed to compile eval code" in out
    assert "SyntaxError" in out


@pytest.mark.parametrize("server", SERVERS)
def test_eval_without_the_callable_is_a_failed_load(start_server, tmp_path,
                                                    server):
    p, port = serve(start_server, tmp_path, server, [("eval", "x = 1")],
                    ready=r"going in full dynamic mode")
    assert "unable to load app 0 (mountpoint='') (callable not found or " \
           "import error)" in p.output()


# A PasteDeploy file with its [uwsgi] section and a logging config.
PASTE_INI = textwrap.dedent('''\
    [uwsgi]
    http-socket = 127.0.0.1:$(TEST_PORT)
    pythonpath = %d
    master = true

    [app:main]
    paste.app_factory = pasteapp:make_app
    greeting = hello

    [loggers]
    keys = root

    [handlers]
    keys = console

    [formatters]
    keys = plain

    [logger_root]
    level = INFO
    handlers = console

    [handler_console]
    class = StreamHandler
    args = (sys.stderr,)
    formatter = plain

    [formatter_plain]
    format = PASTELOG %(levelname)s %(message)s
    ''')
PASTE_APP = textwrap.dedent('''\
    import logging


    def make_app(global_conf, greeting="hi", **local):
        log = logging.getLogger("pasteapp")

        def app(environ, start_response):
            log.warning("serving %s", environ["PATH_INFO"])
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [f"{greeting} from {global_conf['here']}".encode()]
        return app
    ''')


@pytest.fixture
def paste_dir(tmp_path):
    """A folder with the paste app and its file, and the options that
    give the real uWSGI (whose Python lacks it) ugu's PasteDeploy."""
    deploy = pytest.importorskip("paste.deploy")
    folder = tmp_path / "site"
    folder.mkdir()
    (folder / "pasteapp.py").write_text(PASTE_APP)
    (folder / "app.ini").write_text(PASTE_INI)
    deps = tmp_path / "deps"
    deps.mkdir()
    (deps / "paste").symlink_to(Path(deploy.__file__).parent.parent)
    return folder, deps


def _paste_args(server, deps):
    return [] if server == "ugu" else ["--pythonpath", str(deps)]


@pytest.mark.parametrize("server", SERVERS)
def test_ini_paste_logged_reads_the_uwsgi_section_and_the_loggers(
        start_server, tmp_path, paste_dir, server):
    folder, deps = paste_dir
    port = free_port()
    p = start_server(server, [*_paste_args(server, deps), "--ini-paste-logged",
                              "site/app.ini"], cwd=tmp_path,
                     env={"TEST_PORT": str(port)})
    p.wait_for_log(r"spawned uWSGI worker 1")
    wait_for_port(port)
    assert get_body(port, "/x") == f"hello from {folder}".encode()
    p.wait_for_log(r"PASTELOG WARNING serving /x")
    assert f"Loading paste environment: config:{tmp_path}/site/app.ini" \
        in p.output()


@pytest.mark.parametrize("server", SERVERS)
def test_paste_and_paste_logger(start_server, tmp_path, paste_dir, server):
    folder, deps = paste_dir
    port = free_port()
    p = start_server(server, [
        *_paste_args(server, deps), "--http-socket", f"127.0.0.1:{port}",
        "--pythonpath", str(folder), "--paste",
        f"config:{folder}/app.ini", "--paste-logger"], cwd=tmp_path)
    p.wait_for_log(r"WSGI app 0 .*ready")
    wait_for_port(port)
    assert get_body(port, "/y") == f"hello from {folder}".encode()
    p.wait_for_log(r"PASTELOG WARNING serving /y")


@pytest.mark.parametrize("server", SERVERS)
def test_a_mounted_ini_is_a_paste_app(start_server, tmp_path, paste_dir,
                                      server):
    folder, deps = paste_dir
    port = free_port()
    p = start_server(server, [
        *_paste_args(server, deps), "--http-socket", f"127.0.0.1:{port}",
        "--pythonpath", str(folder), "--manage-script-name", "--mount",
        f"/p=config:{folder}/app.ini"], cwd=tmp_path)
    p.wait_for_log(r"WSGI app 0 \(mountpoint='/p'\) ready")
    wait_for_port(port)
    assert get_body(port, "/p/z") == f"hello from {folder}".encode()


@pytest.mark.parametrize("server", SERVERS)
def test_a_paste_app_that_fails_ends_the_instance(start_server, tmp_path,
                                                  paste_dir, server):
    folder, deps = paste_dir
    (folder / "app.ini").write_text("[app:main]\nuse = egg:nothere\n")
    ini = write_ini(tmp_path / "run.ini", uwsgi=[
        ("http-socket", f"127.0.0.1:{free_port()}"),
        ("paste", f"config:{folder}/app.ini")])
    p = start_server(server, [*_paste_args(server, deps), "--ini",
                              str(ini)], cwd=tmp_path)
    assert p.wait() == 22
    assert "Traceback" in p.output()


@pytest.mark.parametrize("server", SERVERS)
def test_pecan_calls_pecan_deploy(start_server, tmp_path, server):
    """The loader's contract, with a stand-in for Pecan's deploy()."""
    (tmp_path / "fake" / "pecan").mkdir(parents=True)
    (tmp_path / "fake" / "pecan" / "__init__.py").write_text("")
    (tmp_path / "fake" / "pecan" / "deploy.py").write_text(textwrap.dedent(
        '''\
        def deploy(config):
            def app(environ, start_response):
                start_response("200 OK", [])
                return [b"pecan app of " + config.encode()]
            return app
        '''))
    p, port = serve(start_server, tmp_path, server, [
        ("pythonpath", str(tmp_path / "fake")), ("pecan", "config.py")])
    assert get_body(port, "/") == b"pecan app of config.py"
    assert "Loading pecan environment: config.py" in p.output()


ALIAS_APP = textwrap.dedent('''\
    import sys

    import early
    import fromfile
    import late


    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [repr([early is sys.modules["json"], fromfile.WHO,
                      late.WHO]).encode()]
    ''')


@pytest.mark.parametrize("server", SERVERS)
def test_pymodule_aliases(start_server, tmp_path, server):
    p, port = serve(start_server, tmp_path, server, [
        ("pymodule-alias", "early=json"),
        ("pymodule-alias", f"fromfile={tmp_path}/one.py"),
        ("post-pymodule-alias", f"late={tmp_path}/two.py"),
        ("wsgi-file", "app.py")],
        files={"app.py": ALIAS_APP, "one.py": "WHO = __name__\n",
               "two.py": "WHO = __name__\n"})
    assert get_body(port, "/") == b"[True, 'fromfile', 'late']"
    out = p.output()
    assert 'mapped virtual pymodule "early" to real pymodule "json"' in out
    assert (f'mapped virtual pymodule "late" to real pymodule '
            f'"{tmp_path}/two.py"') in out


@pytest.mark.parametrize("server", SERVERS)
def test_a_module_alias_that_fails_ends_the_instance(start_server, tmp_path,
                                                     server):
    code, out = exit_of(start_server, tmp_path, server, [
        ("http-socket", f"127.0.0.1:{free_port()}"),
        ("pymodule-alias", "x=no_such_module_here")])
    assert code == 1
    assert "ModuleNotFoundError" in out


SCRIPT = textwrap.dedent('''\
    import sys

    import uwsgi

    print("script", sys.argv, __name__, uwsgi.worker_id())
    print("stdin", sys.stdin.read().strip())
    sys.exit(3)
    ''')


@pytest.mark.parametrize("server", SERVERS)
def test_pyrun_without_master_exits_with_the_scripts_code(
        start_server, tmp_path, server):
    r, w = os.pipe()
    os.write(w, b"from stdin\n")
    os.close(w)
    code, out = exit_of(start_server, tmp_path, server, [
        ("pyrun", "script.py"), ("pyargv", "a b")],
        files={"script.py": SCRIPT}, stdin=r)
    os.close(r)
    assert code == 3
    assert "*** Operational MODE: command ***" in out
    # Command mode has no master to warn about.
    assert "without its master" not in out
    assert "script ['script.py', 'a', 'b'] __main__ 1" in out
    assert "stdin from stdin" in out


@pytest.mark.parametrize("server", SERVERS)
def test_pyrun_with_master_ends_the_instance(start_server, tmp_path, server):
    code, out = exit_of(start_server, tmp_path, server, [
        ("master", "true"), ("python", "script.py")],
        files={"script.py": SCRIPT})
    assert code == 0
    assert "script ['script.py'] __main__ 1" in out
    assert "worker 1 buried after 0 seconds\ngoodbye to uWSGI." in out
    assert "DAMN" not in out


@pytest.mark.parametrize("server", SERVERS)
def test_pyrun_of_a_missing_file(start_server, tmp_path, server):
    code, out = exit_of(start_server, tmp_path, server, [
        ("py", "nothere.py")])
    assert code == 1
    assert ('open("nothere.py"): No such file or directory '
            '[plugins/python/python_plugin.c line 1940]') in out


@pytest.mark.parametrize("server", SERVERS)
def test_python_worker_override_replaces_the_workers_loop(
        start_server, tmp_path, server):
    p, _ = serve(start_server, tmp_path, server, [
        ("master", "true"), ("python-worker-override", "over.py")],
        ready=r"DAMN ! worker 1 \(pid: \d+\) died :\( trying respawn",
        files={"over.py": "import uwsgi\n"
                          "print('override in worker', uwsgi.worker_id(),"
                          " __name__)\n"})
    p.wait_for_log(r"override in worker 1 __main__", count=2)


BODY_APP = textwrap.dedent('''\
    import array


    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        if environ["PATH_INFO"] == "/bytes":
            return b"hey"
        return [b"<", array.array("b", b"abc"), b">"]
    ''')


@pytest.mark.parametrize("server", SERVERS)
@pytest.mark.parametrize("options, bytes_body, array_body", [
    ((), b"hey", b"<>"),
    ((("wsgi-strict", "true"),), b"", b"<>"),
    ((("wsgi-accept-buffers", "true"),), b"hey", b"<abc>"),
])
def test_wsgi_strict_and_accept_buffer(start_server, tmp_path, server,
                                       options, bytes_body, array_body):
    p, port = serve(start_server, tmp_path, server, [
        ("wsgi-file", "app.py"), *options], files={"app.py": BODY_APP})
    assert get_body(port, "/bytes") == bytes_body
    assert get_body(port, "/array") == array_body
    p.wait_for_log(r"GET /array => ")
    out = p.output()
    assert ("Unhandled object from iterator: array('b'" in out) == \
        (array_body == b"<>")
    assert ("Unhandled object from iterator: 104 (" in out) == \
        (bytes_body == b"")


@pytest.mark.parametrize("server", SERVERS)
def test_thread_stacksize(start_server, tmp_path, server):
    p, port = serve(start_server, tmp_path, server, [
        ("threads", "2"), ("threads-stacksize", "512"),
        ("wsgi-file", "app.py")], files={"app.py": REPORT_APP})
    assert json.loads(get_body(port, "/"))["argv"] == ["uwsgi"]
    assert "threads stack size set to 512k" in p.output()


# The app's body waits for the test to write its FIFO, after
# start_response: only a head sent at once can be read before that.
GATED_APP = textwrap.dedent('''\
    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain"),
                                  ("X-Gated", "yes")])
        with open("gate") as gate:
            opened = gate.read()
        return [b"the body after ", opened.encode()]
    ''')


def head_then_body(port, gate):
    """(head, rest) of a GET whose head is read before `gate`, the
    app's FIFO, is opened and written."""
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(b"GET / HTTP/1.0\r\n\r\n")
        head = b""
        while b"\r\n\r\n" not in head:
            head += s.recv(4096)
        gate.write_text("the gate")
        s.shutdown(socket.SHUT_WR)
        return head, support.read_to_eof(s)


@pytest.mark.parametrize("server", SERVERS)
def test_start_response_nodelay_sends_the_head_at_once(
        start_server, tmp_path, server):
    os.mkfifo(tmp_path / "gate")
    p, port = serve(start_server, tmp_path, server, [
        ("wsgi-file", "app.py"), ("start_response-nodelay", "true")],
        files={"app.py": GATED_APP})
    head, rest = head_then_body(port, tmp_path / "gate")
    status, headers, body = support.split_response(head + rest)
    assert status == "HTTP/1.0 200 OK"
    assert headers["x-gated"] == "yes"
    assert body == b"the body after the gate"
    p.wait_for_log(r"GET / => generated 23 bytes .* \(HTTP/1.0 200\) "
                   r"2 headers in 59 bytes \(2 switches")


def run_ugu(*args, cwd):
    return subprocess.run([*UGU, *args], cwd=cwd, capture_output=True,
                          text=True, timeout=30, stdin=subprocess.DEVNULL)


def test_a_stack_python_refuses_is_said(tmp_path):
    result = run_ugu("--http-socket", f"127.0.0.1:{free_port()}",
                     "--thread-stacksize", "16", cwd=tmp_path)
    assert result.returncode == 1
    assert "set thread-stacksize = 32 or more" in result.stderr


@pytest.mark.parametrize("option, words", [
    ("web3", "PEP 444"), ("wsgi-lite", "no handler"),
])
def test_refused_with_why(tmp_path, option, words):
    result = run_ugu(f"--{option}=x", cwd=tmp_path)
    assert result.returncode == 1
    assert option in result.stderr and words in result.stderr


def test_invalid_alias_is_refused_naming_the_option(tmp_path):
    result = run_ugu("--http-socket", f"127.0.0.1:{free_port()}",
                     "--pymodule-alias", "nothing", cwd=tmp_path)
    assert result.returncode == 1
    assert "invalid pymodule-alias syntax: nothing" in result.stderr
