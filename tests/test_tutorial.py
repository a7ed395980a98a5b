"""The tutorial's final setup, end to end: `ugu --master --emperor "*.ini"`
over the examples/ files (ports rewritten to free ones), talked to with a
real HTTP client."""

import gzip
import http.client
import os
import re
import shutil
import signal

import pytest
import requests

from tests import support

CSS = (support.EXAMPLES / "static" / "base.css").read_bytes()


PORTED_KEYS = {"http": "127.0.0.1:{http}", "http-to": "127.0.0.1:{worker}",
               "socket": "127.0.0.1:{worker}"}


def copy_examples(target, http_port, worker_port):
    """examples/ in `target`, the INI files pointed at the given ports
    whatever ports the examples name."""
    shutil.copytree(support.EXAMPLES, target,
                    ignore=shutil.ignore_patterns("logs", "__pycache__"))
    for name in ("http.ini", "uwsgi.ini"):
        path = target / name
        lines = []
        for line in path.read_text().splitlines():
            key = line.partition("=")[0].strip()
            if key in PORTED_KEYS:
                value = PORTED_KEYS[key].format(http=http_port,
                                                worker=worker_port)
                line = f"{key} = {value}"
            lines.append(line)
        path.write_text("\n".join(lines) + "\n")
    return target


def start_tutorial(procs, folder):
    """The Emperor over the examples copied to `folder/site`, once both
    vassals are ready."""
    http_port, worker_port = support.free_port(), support.free_port()
    site = copy_examples(folder / "site", http_port, worker_port)
    emperor = procs.ugu("--master", "--emperor", "*.ini", cwd=site)
    emperor.wait_for_log(r"\[emperor\] vassal uwsgi\.ini is ready to accept "
                         r"requests")
    support.wait_for_port(http_port)
    emperor.site, emperor.url = site, f"http://127.0.0.1:{http_port}"
    emperor.port, emperor.worker_port = http_port, worker_port
    return emperor


@pytest.fixture
def setup(tmp_path, procs):
    return start_tutorial(procs, tmp_path)


def raw_get(url, path, headers=None):
    """(response, body) without any client-side decoding."""
    host, port = url.removeprefix("http://").split(":")
    conn = http.client.HTTPConnection(host, int(port), timeout=10)
    conn.request("GET", path, headers=headers or {})
    response = conn.getresponse()
    body = response.read()
    conn.close()
    return response, body


def test_page(setup):
    r = requests.get(setup.url + "/", timeout=10)
    assert r.status_code == 200
    assert r.headers["Content-Type"] == "text/html"
    assert "Hello from ugu" in r.text
    assert 'href="base.css"' in r.text


def test_page_gzipped_by_the_router(setup):
    response, body = raw_get(setup.url, "/", {"Accept-Encoding": "gzip"})
    assert response.status == 200
    assert response.getheader("Content-Encoding") == "gzip"
    assert response.getheader("uWSGI-Encoding") is None
    assert b"Hello from ugu" in gzip.decompress(body)


def test_page_plain_without_accept_encoding(setup):
    response, body = raw_get(setup.url, "/", {"Accept-Encoding": "identity"})
    assert response.getheader("Content-Encoding") is None
    assert b"Hello from ugu" in body


def test_static_file(setup):
    response, body = raw_get(setup.url, "/base.css",
                             {"Accept-Encoding": "identity"})
    assert response.status == 200
    assert response.getheader("Content-Type") == "text/css"
    assert response.getheader("Content-Length") == str(len(CSS))
    assert response.getheader("Last-Modified")
    assert body == CSS


def test_static_gzip_variant(setup):
    response, body = raw_get(setup.url, "/base.css",
                             {"Accept-Encoding": "gzip"})
    assert response.getheader("Content-Encoding") == "gzip"
    assert gzip.decompress(body) == CSS


def test_missing_file_falls_through_to_the_app(setup):
    r = requests.get(setup.url + "/nope.css", timeout=10)
    assert r.status_code == 200
    assert "Hello from ugu" in r.text


def test_keepalive_serves_several_requests(setup):
    with requests.Session() as s:
        for _ in range(5):
            assert s.get(setup.url + "/", timeout=10).status_code == 200


def test_lifecycle_lines(setup):
    requests.get(setup.url + "/", timeout=10)
    setup.wait_for_log(r"\[emperor\] vassal uwsgi\.ini is now loyal")
    out = setup.output()
    # The first request's line, then the loyalty, as uWSGI logs them.
    assert re.search(r"\|req: 1/1\] .*\n(.*\n)*announcing my loyalty to "
                     r"the Emperor\.\.\.\n", out)
    assert re.search(r"\[emperor\] vassal http\.ini has been spawned", out)
    assert re.search(r"\[emperor\] vassal uwsgi\.ini has been spawned", out)
    assert re.search(r"spawned uWSGI http 1 \(pid: \d+\)", out)
    assert re.search(r"spawned uWSGI worker 1 \(pid: \d+, cores: 2\)", out)
    assert "spawned 1 offload threads for uWSGI worker 1" in out
    assert re.search(r"\[pid: \d+\|app: 0\|req: \d+/\d+\] 127\.0\.0\.1 \(\) "
                     r"\{\d+ vars in \d+ bytes\} \[[^]]+\] GET / => "
                     r"generated \d+ bytes in \d+ msecs \(HTTP/1\.1 200\) "
                     r"2 headers in \d+ bytes \(1 switches on core \d\)", out)


def test_backend_down_gives_502_then_recovers(setup):
    worker_ini = setup.site / "uwsgi.ini"
    saved = worker_ini.read_text()
    worker_ini.unlink()
    setup.wait_for_log(r"\[emperor\] removed uwsgi instance uwsgi\.ini")
    r = requests.get(setup.url + "/", timeout=10)
    assert r.status_code == 502
    worker_ini.write_text(saved)
    setup.wait_for_log(r"\[emperor\] vassal uwsgi\.ini is ready to accept "
                       r"requests", count=2)
    support.wait_for_port(setup.worker_port)
    assert requests.get(setup.url + "/", timeout=10).status_code == 200


def test_killed_vassal_is_respawned(setup):
    masters = [int(p) for p in re.findall(
        r"spawned uWSGI master process \(pid: (\d+)\)", setup.output())]
    os.kill(_vassal_master(masters), signal.SIGKILL)
    setup.wait_for_log(r"\[emperor\] vassal uwsgi\.ini has been spawned",
                       count=2)

    def serving():
        try:
            return requests.get(setup.url + "/", timeout=5).status_code == 200
        except requests.RequestException:
            return False
    support.wait_until(serving, 10, what="the respawned vassal to serve")


def _vassal_master(masters):
    """The pid of the worker vassal's master among the spawned masters."""
    for pid in masters:
        try:
            cmdline = open(f"/proc/{pid}/cmdline", "rb").read()
        except OSError:
            continue
        if b"uwsgi.ini" in cmdline:
            return pid
    raise AssertionError(f"no master of uwsgi.ini among {masters}")


def test_sigint_stops_everything(setup):
    setup.send_signal(signal.SIGINT)
    assert setup.wait(15) == 0
    support.wait_until(lambda: not support.group_members(setup.pgid), 5,
                       what="every vassal to exit")


def test_vassals_across_folders_log_to_their_own_files(tmp_path, procs):
    """Steps 14-15: `--emperor "/srv/www/*/uwsgi.ini"`, each vassal with
    `chdir = %d` and its own request and message logs."""
    http_port, worker_port = support.free_port(), support.free_port()
    site = copy_examples(tmp_path / "examples", http_port, worker_port)
    www = tmp_path / "srv" / "www"
    for folder, source in (("http", "http.ini"), ("project", "uwsgi.ini")):
        (www / folder / "logs").mkdir(parents=True)
        text = (site / source).read_text() + (
            "chdir = %d\n"
            "req-logger = file:logs/request.log\n"
            "logger = file:logs/uwsgi.log\n")
        (www / folder / "uwsgi.ini").write_text(text)
    shutil.copytree(site / "code", www / "project" / "code")
    shutil.copytree(site / "static", www / "project" / "static")
    pattern = f"{www}/*/uwsgi.ini"
    emperor = procs.ugu("--master", "--emperor", pattern, cwd=tmp_path)
    project = www / "project" / "uwsgi.ini"
    emperor.wait_for_log(rf"\[emperor\] vassal {re.escape(str(project))} "
                         r"is ready to accept requests")
    support.wait_for_port(http_port)
    url = f"http://127.0.0.1:{http_port}"
    assert requests.get(url + "/", timeout=10).status_code == 200
    request_log = www / "project" / "logs" / "request.log"
    support.wait_until(lambda: "GET / => generated" in
                       request_log.read_text(), what="the request line")
    messages = (www / "project" / "logs" / "uwsgi.log").read_text()
    assert "spawned uWSGI worker 1" in messages
    assert "GET / =>" not in messages
    # As uWSGI: the log file has the vassal from its first line on, the
    # Emperor's output only the name of the config being read.
    assert messages.startswith("*** Starting uWSGI ")
    assert f"chdir() to {www / 'project'}/\n" in messages
    assert f"getting INI configuration from {project}\n" in \
        emperor.output()
    assert "*** Starting uWSGI 2.0.31 (ugu" not in emperor.output().split(
        "*** starting uWSGI Emperor ***")[1]
    router_log = (www / "http" / "logs" / "uwsgi.log").read_text()
    assert "spawned uWSGI http 1" in router_log


@pytest.fixture
def uwsgi_setup(tmp_path, procs, uwsgi_binary):
    """The same two files run by the real uWSGI."""
    http_port, worker_port = support.free_port(), support.free_port()
    site = copy_examples(tmp_path / "uwsgi-site", http_port, worker_port)
    emperor = procs.start([uwsgi_binary, "--master", "--emperor", "*.ini"],
                          cwd=site)
    emperor.wait_for_log(r"vassal uwsgi\.ini is ready to accept requests")
    support.wait_for_port(http_port)
    emperor.url = f"http://127.0.0.1:{http_port}"
    return emperor


CASES = [("/", "identity"), ("/", "gzip"), ("/base.css", "identity"),
         ("/base.css", "gzip"), ("/nope.css", "identity")]


def test_same_answers_as_uwsgi(setup, uwsgi_setup):
    for path, accept in CASES:
        headers = {"Accept-Encoding": accept}
        ours, our_body = raw_get(setup.url, path, headers)
        theirs, their_body = raw_get(uwsgi_setup.url, path, headers)
        case = f"{path} with Accept-Encoding: {accept}"
        assert ours.status == theirs.status, case
        for name in ("Content-Type", "Content-Encoding", "Last-Modified"):
            assert ours.getheader(name) == theirs.getheader(name), \
                f"{name} of {case}"
        assert _decoded(ours, our_body) == _decoded(theirs, their_body), \
            case


def test_same_request_log_figures_as_uwsgi(setup, uwsgi_setup):
    """The vars and header figures of the request line match uWSGI's
    (collected vars included), for the page and for the static file."""
    for path in ("/base.css", "/"):
        headers = {"Accept-Encoding": "identity", "User-Agent": "t/1"}
        raw_get(setup.url, path, headers)
        raw_get(uwsgi_setup.url, path, headers)
        pattern = (r"\{(\d+) vars in (\d+) bytes\} \[[^]]+\] GET "
                   + re.escape(path) + r" => generated \d+ bytes in \d+ "
                   r"msecs (?:via \w+\(\) )?\(HTTP/1\.1 200\) "
                   r"(\d+ headers in \d+ bytes)")
        ours = setup.wait_for_log(pattern).groups()
        theirs = uwsgi_setup.wait_for_log(pattern).groups()
        assert (ours[0], ours[2]) == (theirs[0], theirs[2]), path
        # uWSGI's router reports REMOTE_PORT as a number from 0 to 65535
        # that is not the client's port, so it may have up to four digits
        # fewer than ours (an ephemeral port has five).
        assert 0 <= int(ours[1]) - int(theirs[1]) <= 4, path


def _decoded(response, body):
    if response.getheader("Content-Encoding") == "gzip":
        return gzip.decompress(body)
    return body


START_LINES = re.compile(
    r"^(\[uWSGI\] getting INI|\[uwsgi-static\] added check|\*\*\* Starting "
    r"uWSGI|\*\*\* dumping internal response|collecting header|building "
    r"mime-types|uwsgi socket 0 bound|\*\*\* Operational MODE|added code/ "
    r"to pythonpath|WSGI app 0 |spawned uWSGI master|spawned uWSGI "
    r"worker 1 )", re.M)


def start_lines(procs, argv, site):
    p = procs.start([*argv, "--ini", "uwsgi.ini"], cwd=site)
    p.wait_for_log(r"spawned uWSGI worker 1 ")
    return [m[1] for m in START_LINES.finditer(p.output())]


def test_the_worker_vassal_starts_in_uwsgis_order(procs, tmp_path,
                                                  uwsgi_binary):
    """The tutorial's uwsgi.ini on its own: its start-up lines come in
    the order uWSGI's do."""
    ours = copy_examples(tmp_path / "ugu", support.free_port(),
                         support.free_port())
    theirs = copy_examples(tmp_path / "uwsgi", support.free_port(),
                           support.free_port())
    order = start_lines(procs, support.UGU, ours)
    assert len(order) == 12
    assert order == start_lines(procs, [uwsgi_binary], theirs)
