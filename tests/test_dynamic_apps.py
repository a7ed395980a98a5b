"""Dynamic apps (UWSGI_SCRIPT, UWSGI_MODULE, UWSGI_CALLABLE, UWSGI_FILE,
UWSGI_CHDIR as a front server's uwsgi_param sends them), vhost,
no-default-app and max-apps: the same requests to ugu and to the real
uWSGI get the same answers and the same log lines."""

import re
import textwrap

import pytest

from tests import support

TAG_APP = textwrap.dedent("""\
    import os
    def application(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [f"{TAG} {os.getcwd()} {environ.get('SCRIPT_NAME')!r} "
                f"{environ.get('UWSGI_APPID')!r}".encode()]
    app = application
    """)

# The lines compared: the apps' loads and failures, and every request's.
COMPARED = re.compile(r"^(WSGI app |unable to load app |ERROR: |--- no |"
                      r"VirtualHosting |chdir\(\): |\w*Error: |.*\[pid: )")
VARYING = [(re.compile(r"pid: \d+"), "pid: P"),
           (re.compile(r"interpreter 0x[0-9a-f]+"), "interpreter I"),
           (re.compile(r"\[\w{3} \w{3} [ \d]\d [\d:]{8} \d{4}\]"), "[D]"),
           (re.compile(r"in \d+ msecs"), "in M msecs"),
           # A load may take a second on a busy machine.
           (re.compile(r"ready in \d+ seconds"), "ready in S seconds")]


@pytest.fixture
def apps_folder(tmp_path):
    folder = tmp_path / "apps"
    (folder / "other").mkdir(parents=True)
    for name in ("appa", "appb"):
        (folder / f"{name}.py").write_text(f"TAG = {name!r}\n" + TAG_APP)
    (folder / "other" / "filec.py").write_text("TAG = 'C'\n" + TAG_APP)
    return folder


def served(binary, argv, requests, cwd):
    """(answers, compared log lines) of `requests` ((path, extra vars))
    sent one by one to a server with one worker, and the pid of its
    master."""
    port = support.free_port()
    p = support.Process([*binary, "--master", "--socket",
                         f"127.0.0.1:{port}", *argv], cwd=cwd)
    try:
        p.wait_for_log(r"spawned uWSGI worker 1 ")
        answers = [support.uwsgi_request(port, path, extra_vars=extra)
                   for path, extra in requests]
        p.wait_for_log(r"\[pid: ", count=len(requests))
        lines = [line for line in p.output().splitlines()
                 if COMPARED.match(line)]
    finally:
        p.stop(timeout=2)
    return answers, lines, p.pid


def normalised(lines):
    out = []
    for line in lines:
        for pattern, fixed in VARYING:
            line = pattern.sub(fixed, line)
        out.append(line)
    return out


def assert_as_uwsgi(uwsgi_binary, argv, requests, cwd):
    """Both servers' answers and lines, ugu's (raw) returned."""
    ugu = served(support.UGU, argv, requests, cwd)
    real = served([uwsgi_binary], argv, requests, cwd)
    assert ugu[0] == real[0]
    assert normalised(ugu[1]) == normalised(real[1])
    return ugu


def script(name, mountpoint=""):
    return ("/", [("SCRIPT_NAME", mountpoint), ("UWSGI_SCRIPT", name)])


def test_the_worker_loads_what_the_request_names(uwsgi_binary, apps_folder):
    other = str(apps_folder / "other")
    requests = [
        script("appa"),
        ("/", []),
        ("/b", [("SCRIPT_NAME", "/b"), ("UWSGI_MODULE", "appb"),
                ("UWSGI_CALLABLE", "app")]),
        # Once loaded, the app's key wins over the vars naming another.
        ("/b", [("SCRIPT_NAME", "/b"), ("UWSGI_SCRIPT", "appa")]),
        # Failures fall back to the default app.
        script("nosuch", "/y"),
        ("/z", [("SCRIPT_NAME", "/z"), ("UWSGI_CALLABLE", "nosuch")]),
        script("appb:nosuch", "/w"),
        # The default app then runs in UWSGI_CHDIR's folder too: uWSGI's
        # worker stays there.
        ("/c", [("SCRIPT_NAME", "/c"),
                ("UWSGI_FILE", f"{other}/filec.py"),
                ("UWSGI_CHDIR", other)]),
        ("/", []),
        ("/d", [("SCRIPT_NAME", "/d"),
                ("UWSGI_FILE", f"{apps_folder}/appb.py"),
                ("UWSGI_CHDIR", "/nonexistent")]),
        ("/d", [("SCRIPT_NAME", "/d")]),
    ]
    answers, lines, master = assert_as_uwsgi(uwsgi_binary, [], requests,
                                             apps_folder)
    assert answers[2].endswith(b"\r\n\r\nappb " + str(apps_folder).encode()
                               + b" '/b' None")
    assert answers[7].endswith(f"C {other} '/c' None".encode())
    assert answers[8].endswith(f"appa {other} '' None".encode())
    assert lines[0].endswith("(default app)")
    # Loaded in the worker that serves the request, not in the master.
    loader = re.search(r"pid: (\d+)", lines[0])[1]
    assert loader == re.search(r"\[pid: (\d+)", lines[1])[1]
    assert loader != str(master)


def test_vhost_keys_apps_by_host_and_script_name(uwsgi_binary, apps_folder):
    host = "HTTP_HOST"
    requests = [
        ("/", [(host, "a.example"), ("UWSGI_SCRIPT", "appa")]),
        ("/", [(host, "b.example"), ("UWSGI_SCRIPT", "appb:app")]),
        ("/", [(host, "a.example")]),
        # No default app: a key with a host starts with no '/'.
        ("/", [(host, "c.example")]),
        ("/", []),      # SERVER_NAME "test" stands for the host
        ("/s", [("SCRIPT_NAME", "/s"), ("UWSGI_SCRIPT", "appa")]),
        ("/s", [("SCRIPT_NAME", "/s"), (host, "z")]),
        ("/q", [("UWSGI_APPID", "a.example|")]),
    ]
    for option in ("--vhost", "--vhost-host"):
        answers, lines, _ = assert_as_uwsgi(uwsgi_binary, [option],
                                            requests, apps_folder)
        assert answers[0].endswith(b" '' 'a.example|'")
        assert b" 500 " in answers[3]
        assert lines[0] == "VirtualHosting mode enabled."
        assert lines[2].startswith("a.example [pid: ")


def test_no_default_app_and_max_apps(uwsgi_binary, apps_folder):
    requests = [
        ("/", []),
        ("/o", [("SCRIPT_NAME", "/o")]),
        script("appb:app", "/b"),
        script("appb:app", "/c"),
        script("appa", "/b"),
    ]
    answers, lines, _ = assert_as_uwsgi(
        uwsgi_binary, ["--module", "appa", "--no-default-app",
                       "--max-apps", "2"], requests, apps_folder)
    assert [b" 500 " in a for a in answers] == [False, True, False, True,
                                                 False]
    assert "ERROR: you cannot load more than 2 apps in a worker" in lines
    assert not any("(default app)" in line for line in lines)


def test_a_failed_app_leaves_its_id_to_the_next(uwsgi_binary, apps_folder):
    argv = ["--module", "nosuch", "--mount", "/b=appb:app", "--max-apps",
            "1", "--mount", "/c=appa:application"]
    _, lines, _ = assert_as_uwsgi(uwsgi_binary, argv,
                                  [("/b", [("SCRIPT_NAME", "/b")])],
                                  apps_folder)
    assert lines[2].startswith("WSGI app 0 (mountpoint='/b') ready")
    assert lines[3] == "ERROR: you cannot load more than 1 apps in a worker"


def test_uwsgi_pyhome_is_refused_unless_it_is_ugus_own(procs, apps_folder):
    """uWSGI gives such an app an interpreter of its own on that
    virtualenv; ugu's apps share one, so only its own home can be
    honoured."""
    import sys
    port = support.free_port()
    p = procs.ugu("--master", "--socket", f"127.0.0.1:{port}",
                  cwd=apps_folder)
    p.wait_for_log(r"spawned uWSGI worker 1 ")
    refused = support.uwsgi_request(port, "/p", extra_vars=[
        ("SCRIPT_NAME", "/p"), ("UWSGI_SCRIPT", "appa"),
        ("UWSGI_PYHOME", "/nonexistent")])
    assert b" 500 " in refused.split(b"\r\n")[0]
    p.wait_for_log(r"ugu cannot load an app on UWSGI_PYHOME /nonexistent: "
                   r"a worker's apps share one Python")
    p.wait_for_log(r"unable to load app 0 \(mountpoint='/p'\)")
    served = support.uwsgi_request(port, "/p", extra_vars=[
        ("SCRIPT_NAME", "/p"), ("UWSGI_SCRIPT", "appa"),
        ("UWSGI_PYHOME", sys.prefix)])
    assert served.endswith(b" '/p' None")
