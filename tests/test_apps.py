"""Python apps: mount, manage-script-name, app selection, callable, home,
pythonpath, env, chdir.  Expected values are uWSGI 2.0.31's, observed with
the same apps and requests."""

import os
import re
import socket
import subprocess
import sys
import textwrap

import pytest

from tests import support
from ugu.options.errors import ConfigError
from ugu.options.resolve import resolve
from ugu.vassal import app as apps
from ugu.vassal.app import App, Apps

ENV_APP = textwrap.dedent("""\
    import os
    TAG = os.path.basename(__file__)
    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        text = (f"{TAG} SN={environ.get('SCRIPT_NAME', '')!r} "
                f"PI={environ['PATH_INFO']!r} "
                f"E={os.environ.get('UGU_T_ENV')} CWD={os.getcwd()}")
        return [text.encode()]
    """)
FACTORY_APP = textwrap.dedent("""\
    def make():
        def app(environ, start_response):
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [f"mod SN={environ['SCRIPT_NAME']!r} "
                    f"PI={environ['PATH_INFO']!r}".encode()]
        return app
    app = make()
    """)


def mounted(*mountpoints, manage=True):
    return Apps([App(object(), i, mp) for i, mp in enumerate(mountpoints)],
                resolve(["--manage-script-name"] if manage else [], {}))


def chosen(all_apps, request_vars):
    """The app a worker serves the request with, as request.handle
    picks it."""
    return all_apps.select(request_vars) or \
        all_apps.choose(request_vars)[0]


def routed(all_apps, path, script_name=None):
    request_vars = {"PATH_INFO": path}
    if script_name is not None:
        request_vars["SCRIPT_NAME"] = script_name
    app = chosen(all_apps, request_vars)
    return (app.id if app else None, request_vars.get("SCRIPT_NAME"),
            request_vars["PATH_INFO"])


# -- selection, as observed from uWSGI --------------------------------------

@pytest.mark.parametrize("path, expected", [
    # No SCRIPT_NAME for "/" where the request had none.
    ("/", (0, None, "/")),
    ("/app2", (1, "/app2", "")),
    ("/app2/", (1, "/app2", "/")),
    ("/app2/x", (1, "/app2", "/x")),
    ("/app2x", (0, "", "/app2x")),
    ("/app2/deeper/env", (2, "/app2/deeper", "/env")),
    ("/blog/", (3, "/blog/", "")),
    ("/blog/a", (3, "/blog/", "a")),
    ("/zzz", (0, "", "/zzz")),
    # DEVIATIONS 16: uWSGI reads past the end of PATH_INFO here.
    ("/blog", (3, "/blog", "")),
])
def test_manage_script_name_takes_the_longest_mountpoint(path, expected):
    all_apps = mounted("", "/app2", "/app2/deeper", "/blog/")
    assert routed(all_apps, path) == expected


def test_without_manage_script_name_script_name_selects():
    all_apps = mounted("", "/app2", manage=False)
    assert routed(all_apps, "/app2/x") == (0, None, "/app2/x")
    assert routed(all_apps, "/x", "/app2") == (1, "/app2", "/x")
    assert chosen(all_apps, {"UWSGI_APPID": "/app2"}).id == 1


def test_the_first_app_loaded_is_the_default_wherever_mounted():
    all_apps = mounted("/a", "/b")
    assert routed(all_apps, "/b/x") == (1, "/b", "/x")
    assert routed(all_apps, "/c") == (0, "", "/c")
    all_apps = mounted("/a", "/", "", manage=False)
    assert chosen(all_apps, {"SCRIPT_NAME": "/zz"}).id == 0
    assert chosen(all_apps, {"SCRIPT_NAME": ""}).id == 2
    # An app that failed to load is none.
    config = resolve([], {})
    assert Apps([App(None, 0, ""), App(object(), 1, "/b")],
                config).default.id == 1
    assert not Apps([App(None, 0, "")], config)


# -- loading ----------------------------------------------------------------

@pytest.fixture
def code(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "path", [str(tmp_path), *sys.path])
    (tmp_path / "envapp.py").write_text(ENV_APP)
    (tmp_path / "factoryapp.py").write_text(FACTORY_APP)
    return tmp_path


def load(*argv):
    return apps.load_all(resolve(list(argv), {}))


def test_mount_targets_and_ids(code, capfd):
    loaded = load("--wsgi-file", "envapp.py", "--mount",
                  "/m=factoryapp:app", "--mount", "/f=factoryapp:make()")
    assert [(a.id, a.mountpoint) for a in loaded.loaded] == [
        (0, ""), (1, "/m"), (2, "/f")]
    err = capfd.readouterr().err
    assert "mounting factoryapp:app on /m\n" in err
    assert "WSGI app 1 (mountpoint='/m') ready in 0 seconds" in err
    assert err.count("(default app)") == 1


def test_module_callable_forms(code):
    [app] = load("--module", "factoryapp:make()").loaded
    assert app.callable.__name__ == "app"
    [app] = load("--module", "factoryapp", "--callable", "app").loaded
    assert app.callable.__name__ == "app"


def test_mount_of_a_bare_module_is_refused(code):
    with pytest.raises(ConfigError) as info:
        load("--mount", "/x=factoryapp")
    assert "name a .py or .wsgi file or module:callable" in str(info.value)
    with pytest.raises(ConfigError):
        load("--mount", "nomountpoint")


def test_a_failed_mount_of_a_file_is_fatal(code, capfd):
    """As uWSGI's mount loader: the process exits, need-app or not."""
    with pytest.raises(apps.MountFailed):
        load("--mount", "/x=missing.py")
    assert "failed to open python file missing.py\n" in \
        capfd.readouterr().err


def test_home_puts_the_environments_packages_first(code, capfd,
                                                   monkeypatch):
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    packages = code / "venv" / "lib" / version / "site-packages"
    (packages / "vpkg").mkdir(parents=True)
    (packages / "vpkg" / "__init__.py").write_text("X = 1\n")
    (packages / "extra.pth").write_text(str(code / "extra") + "\n")
    (code / "extra").mkdir()
    (code / "venv" / "pyvenv.cfg").write_text("home = /usr\n")
    monkeypatch.setattr(sys, "prefix", sys.prefix)
    monkeypatch.setattr(sys, "exec_prefix", sys.exec_prefix)
    apps.prepare(resolve(["--virtualenv", "venv"], {}))
    # After uWSGI's `.` and ``.
    assert sys.path[:4] == [".", "", str(packages), str(code / "extra")]
    assert sys.prefix == str(code / "venv")
    assert capfd.readouterr().err == ("PEP 405 virtualenv detected: venv\n"
                                      "Set PythonHome to venv\n")


def test_home_without_site_packages_is_refused(code):
    with pytest.raises(ConfigError) as info:
        apps.prepare(resolve(["-H", "nowhere"], {}))
    assert info.value.option == "home"


def test_pythonpath_globs_are_expanded(code, capfd):
    for name in ("lib1", "lib2"):
        (code / name).mkdir()
    (code / "file.py").write_text("")
    apps.prepare(resolve(["--pythonpath", "lib*", "--pp", "plain",
                          "--pythonpath", "file.py"], {}))
    assert sys.path[:4] == ["file.py", "plain", "lib2/", "lib1/"]
    assert capfd.readouterr().err == (
        "added lib1/ to pythonpath.\nadded lib2/ to pythonpath.\n"
        "added plain to pythonpath.\nadded file.py to pythonpath.\n")


# -- a real vassal, next to the real uWSGI ----------------------------------

REQUESTS = ["/", "/app2", "/app2/x", "/app2x", "/deep/er/env", "/blog/a"]


def serve_and_ask(procs, argv, cwd):
    port = support.free_port()
    p = procs.start([*argv, "--http-socket", f"127.0.0.1:{port}"], cwd=cwd)
    p.wait_for_log(r"spawned uWSGI worker 1")
    support.wait_for_port(port)
    answers = []
    for path in REQUESTS:
        raw = http_get(port, path)
        answers.append(raw.partition(b"\r\n\r\n")[2].decode())
    return p, answers


def http_get(port, path):
    import socket
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(f"GET {path} HTTP/1.0\r\nHost: x\r\n\r\n".encode())
        chunks = []
        while data := s.recv(65536):
            chunks.append(data)
    return b"".join(chunks)


def test_mounts_env_and_chdir_as_uwsgi(procs, tmp_path, uwsgi_binary):
    (tmp_path / "code").mkdir()
    for name in ("envapp.py", "app2.py", "app3.py"):
        (tmp_path / "code" / name).write_text(ENV_APP)
    (tmp_path / "code" / "factoryapp.py").write_text(FACTORY_APP)
    ini = tmp_path / "apps.ini"
    ini.write_text("[uwsgi]\nchdir = %dcode\nwsgi-file = envapp.py\n"
                   "mount = /app2=app2.py\npythonpath = .\n"
                   "mount = /deep/er=factoryapp:app\nmount = /blog/=app3.py\n"
                   "manage-script-name = true\nenv = UGU_T_ENV=set\n"
                   "disable-logging = true\n")
    ugu, ours = serve_and_ask(procs, [*support.UGU, "--ini", str(ini)],
                              tmp_path)
    real, theirs = serve_and_ask(procs, [uwsgi_binary, "--ini", str(ini)],
                                 tmp_path)
    assert ours == theirs
    assert ours[1] == (f"app2.py SN='/app2' PI='' E=set "
                       f"CWD={tmp_path / 'code'}")
    log = ugu.output()
    assert "mounting factoryapp:app on /deep/er\n" in log
    assert f"chdir() to {tmp_path}/code\n" in log


FILE_APP = """
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    if environ["PATH_INFO"] == "/bytes":
        return b"a bytes object, not a list"
    return [("%s %s" % (__name__, __file__)).encode()]
"""


@pytest.mark.parametrize("target", ["apps/app.wsgi", "apps/noext",
                                    "apps/pkgapp", "apps/my-app.v2.py"])
def test_file_apps_load_as_uwsgi_loads_them(procs, tmp_path, uwsgi_binary,
                                            target):
    """Any extension or none, a package folder; uWSGI's module name, and
    __file__ as the path was given; a bytes body sent whole."""
    (tmp_path / "apps" / "pkgapp").mkdir(parents=True)
    for name in ("app.wsgi", "noext", "pkgapp/__init__.py", "my-app.v2.py"):
        (tmp_path / "apps" / name).write_text(FILE_APP)
    answers = []
    for argv in (support.UGU, [uwsgi_binary]):
        port = support.free_port()
        p = procs.start([*argv, "--http-socket", f"127.0.0.1:{port}",
                         "--wsgi-file", target], cwd=tmp_path)
        p.wait_for_log(r"spawned uWSGI worker 1")
        support.wait_for_port(port)
        answers.append([http_get(port, path).partition(b"\r\n\r\n")[2]
                        for path in ("/", "/bytes")])
        p.wait_for_log(r"GET /bytes => generated 26 bytes in \d+ msecs "
                       r"\(HTTP/1\.0 200\) 1 headers in \d+ bytes "
                       r"\(0 switches")
    assert answers[0] == answers[1]
    assert answers[0][1] == b"a bytes object, not a list"


@pytest.mark.parametrize("ini, line", [
    ("wsgi-file = apps/none.py\ncallable = app",
     'unable to find "application" callable in file apps/none.py'),
    ("wsgi-file = apps/none.py\ncallable = five",
     '"application" must be a callable object in file apps/none.py'),
    ("wsgi-file = apps/bad.py", "failed to compile apps/bad.py"),
    ("wsgi-file = apps", 'open("apps/__init__.py"): No such file or '
     "directory"),
])
def test_file_loading_failures_say_what_uwsgi_says(procs, tmp_path, ini,
                                                    line):
    (tmp_path / "apps").mkdir()
    (tmp_path / "apps" / "none.py").write_text("five = 5\n")
    (tmp_path / "apps" / "bad.py").write_text("def (\n")
    (tmp_path / "v.ini").write_text(f"[uwsgi]\nhttp-socket = 127.0.0.1:"
                                    f"{support.free_port()}\n{ini}\n")
    p = procs.ugu("--ini", "v.ini", cwd=tmp_path)
    p.wait_for_log(r"unable to load app 0 \(mountpoint=''\)")
    assert f"{line}\n" in p.output()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_a_mount_that_fails_ends_the_instance_with_22(start_server,
                                                       tmp_path, server):
    (tmp_path / "app.py").write_text(FILE_APP)
    argv = ["--master", "--http-socket", f"127.0.0.1:{support.free_port()}",
            "--wsgi-file", "app.py", "--mount", "/x=missing.py"]
    p = start_server(server, argv, cwd=tmp_path)
    assert p.wait() == 22
    assert "failed to open python file missing.py\n" in p.output()


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
def test_an_apps_traceback_keeps_the_frames_of_importlib_metadata(
        start_server, tmp_path, server):
    """Only the import machinery that ran the app is left out: a library
    in the importlib package that the app calls (importlib.metadata, as
    PasteDeploy's egg: URIs) keeps its frames, and its first exception
    of a chain keeps its Traceback line."""
    (tmp_path / "app.py").write_text(
        "import importlib.metadata\n"
        "importlib.metadata.version('no-such-distribution-here')\n")
    argv = ["--http-socket", f"127.0.0.1:{support.free_port()}",
            "--wsgi-file", "app.py", "--need-app"]
    p = start_server(server, argv, cwd=tmp_path)
    assert p.wait() == 22
    out = p.output()
    assert re.search(r'Traceback \(most recent call last\):\n  File "[^"]*'
                     r'/importlib/metadata/__init__\.py", line \d+, in '
                     r'from_name\n.*\nStopIteration\n', out, re.S), out
    assert "PackageNotFoundError: No package metadata was found for "\
        "no-such-distribution-here\n" in out


@pytest.mark.parametrize("manage", [True, False])
def test_mounts_alone_make_the_first_the_default_as_uwsgi(
        procs, tmp_path, uwsgi_binary, manage):
    for name in ("a.py", "b.py"):
        (tmp_path / name).write_text(ENV_APP)
    argv = ["--mount", "/app=a.py", "--mount", "/other=b.py"]
    if manage:
        argv.append("--manage-script-name")
    answers = []
    for binary in (support.UGU, [uwsgi_binary]):
        port = support.free_port()
        p = procs.start([*binary, *argv, "--http-socket",
                         f"127.0.0.1:{port}"], cwd=tmp_path)
        p.wait_for_log(r"spawned uWSGI worker 1")
        answers.append([http_get(port, path).partition(b"\r\n\r\n")[2]
                        for path in ("/app/x", "/other/y", "/zzz")])
        assert re.search(r"WSGI app 0 \(mountpoint='/app'\) .*"
                         r"\(default app\)", p.output())
    assert answers[0] == answers[1]
    assert answers[0][2].startswith(b"a.py SN='' PI='/zzz'")


PATH_APP = """import sys
def application(environ, start_response):
    start_response("200 OK", [("Content-Type", "text/plain")])
    return [repr(sys.path[:4]).encode()]
"""


def test_a_module_in_the_chdir_folder_loads_as_in_uwsgi(procs, tmp_path,
                                                        uwsgi_binary):
    """Django's guide: `chdir` to the project, `module = mysite.wsgi`,
    no pythonpath.  sys.path starts as uWSGI's: the pythonpath entries
    (last first), then `.` and ``."""
    project = tmp_path / "project"
    (project / "site_pkg").mkdir(parents=True)
    (project / "site_pkg" / "__init__.py").write_text("")
    (project / "site_pkg" / "wsgi.py").write_text(PATH_APP)
    for name in ("x", "y"):
        (tmp_path / name).mkdir()
    ini = tmp_path / "django.ini"
    ini.write_text(f"[uwsgi]\nchdir = {project}\nmodule = site_pkg.wsgi\n"
                   f"pythonpath = {tmp_path / 'x'}\n"
                   f"pythonpath = {tmp_path / 'y'}\n")
    answers = []
    for argv in (support.UGU, [uwsgi_binary]):
        port = support.free_port()
        p = procs.start([*argv, "--ini", str(ini), "--http-socket",
                         f"127.0.0.1:{port}"], cwd=tmp_path / "x")
        p.wait_for_log(r"spawned uWSGI worker 1")
        answers.append(http_get(port, "/").partition(b"\r\n\r\n")[2])
    assert answers[0] == answers[1] == repr(
        [f"{tmp_path}/y/", f"{tmp_path}/x/", ".", ""]).encode()


def test_request_log_names_the_selected_app(procs, tmp_path):
    (tmp_path / "envapp.py").write_text(ENV_APP)
    (tmp_path / "app2.py").write_text(ENV_APP)
    port = support.free_port()
    p = procs.ugu("--http-socket", f"127.0.0.1:{port}", "--wsgi-file",
                  "envapp.py", "--mount", "/app2=app2.py",
                  "--manage-script-name", cwd=tmp_path)
    p.wait_for_log(r"spawned uWSGI worker 1")
    http_get(port, "/app2/x")
    http_get(port, "/other")
    p.wait_for_log(r"\|app: 1\|req: 1/1\].* GET /app2/x ")
    p.wait_for_log(r"\|app: 0\|req: 1/2\].* GET /other ")


def test_a_vassal_failing_after_its_config_is_read_says_the_link_once(
        tmp_path):
    """The has_emperor line is said as the vassal starts, and not again
    with an error raised after the reading (a port taken)."""
    emperor_end, vassal_end = socket.socketpair()
    with emperor_end, vassal_end, socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        env = {k: v for k, v in os.environ.items()
               if not k.startswith("UWSGI_")}
        env["UWSGI_EMPEROR_FD"] = str(vassal_end.fileno())
        result = subprocess.run(
            [*support.UGU, "--http-socket",
             f"127.0.0.1:{taken.getsockname()[1]}", "--wsgi-file",
             str(support.ECHO_APP)], cwd=tmp_path, env=env,
            pass_fds=[vassal_end.fileno()], capture_output=True, text=True,
            stdin=subprocess.DEVNULL, timeout=60)
    assert result.returncode == 1
    assert "cannot bind" in result.stderr
    assert result.stderr.count("*** has_emperor mode detected") == 1


def test_a_broken_vassal_config_exits_1_alone(tmp_path):
    """What the emperor sees of a broken vassal: exit 1 and one line,
    after uWSGI's line naming the file read; tests/test_emperor.py checks
    that the other vassals keep running."""
    (tmp_path / "bad.ini").write_text("[uwsgi]\nstrict = true\n"
                                      "processes = four\n")
    env = {k: v for k, v in os.environ.items() if not k.startswith("UWSGI_")}
    result = subprocess.run([*support.UGU, "--ini", "bad.ini"],
                            cwd=tmp_path, env=env, capture_output=True,
                            text=True, stdin=subprocess.DEVNULL, timeout=60)
    assert result.returncode == 1
    assert result.stderr == (
        "[uWSGI] getting INI configuration from bad.ini\n"
        "ugu: bad.ini:3: option 'processes': 'four' is not a number; uWSGI "
        "reads it as 0 (write a plain number)\n")


@pytest.mark.parametrize("server", ["ugu", "uwsgi"])
@pytest.mark.parametrize("mounts, expected", [
    # No app at "": the default (the first loaded) serves every request.
    (("/a=a.py", "/b=b.py"), ["a.py", "a.py", "a.py", "a.py"]),
    # The app at "" serves them, whatever SCRIPT_NAME says.
    (("/a=a.py", "=root.py", "/b=b.py"),
     ["root.py", "root.py", "root.py", "root.py"]),
])
def test_ignore_script_name_chooses_the_app_without_script_name(
        tmp_path, start_server, server, mounts, expected):
    """SCRIPT_NAME as the front server sends it, or as
    manage-script-name makes it: ignored in choosing the app, and still
    the app's (UWSGI_APPID still chooses)."""
    for name in ("a.py", "b.py", "root.py"):
        (tmp_path / name).write_text(ENV_APP)
    port, http_port = support.free_port(), support.free_port()
    argv = ["--socket", f"127.0.0.1:{port}", "--http-socket",
            f"127.0.0.1:{http_port}", "--ignore-script-name",
            "--manage-script-name"]
    for mount in mounts:
        argv += ["--mount", mount]
    start_server(server, argv, cwd=tmp_path)
    support.wait_for_port(port)
    support.wait_for_port(http_port)
    answers = [
        support.get_body(http_port, "/b/x"),
        support.get_body(http_port, "/z"),
        support.split_response(support.uwsgi_request(
            port, "/x", extra_vars=[("SCRIPT_NAME", "/b")]))[2],
        support.split_response(support.uwsgi_request(
            port, "/x", extra_vars=[("SCRIPT_NAME", "/a")]))[2],
    ]
    assert [a.split()[0].decode() for a in answers] == expected
    assert b"SN='/b' PI='/x'" in answers[0]
    by_appid = support.split_response(support.uwsgi_request(
        port, "/x", extra_vars=[("UWSGI_APPID", "/b")]))[2]
    assert by_appid.startswith(b"b.py ")
